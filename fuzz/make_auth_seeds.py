#!/usr/bin/env python3
# Usage: fuzz/make_auth_seeds.py fuzz/corpus/server_input [fuzz/corpus/stun_parse]
# Written independently of tern (Python hashlib/hmac), so the state-machine
# test that replays these seeds cross-checks tern's SHA-256 authentication.
# Seeds for fuzz/corpus: SHA-256 / USERHASH / PASSWORD-ALGORITHM(S) requests
# with a nonce valid for the server_input target (key [1;32], client
# 192.0.2.1, unix 1_700_000_000), so mutations reach the algorithm checks.
import base64, hashlib, hmac, struct, sys, os, zlib
out = sys.argv[1]
def attr(t, v):
    return struct.pack("!HH", t, len(v)) + v + b"\0" * ((4 - len(v) % 4) % 4)
def nonce():
    ts = struct.pack("!I", 1_700_000_000)
    tag = hmac.new(bytes([1]*32), ts + bytes([192,0,2,1]), hashlib.sha256).digest()[:9]
    return b"obMatJos2AAAD" + base64.urlsafe_b64encode(ts + tag).rstrip(b"=")
def msg(method, tid, attrs, key=None, sha256=True):
    body = b"".join(attrs)
    hdr = lambda n: struct.pack("!HHI", method, n, 0x2112A442) + tid
    if key is not None:
        n = 32 if sha256 else 20
        L = len(body) + 4 + n
        mac = hmac.new(key, hdr(L) + body, hashlib.sha256 if sha256 else hashlib.sha1).digest()[:n]
        body += attr(0x1C if sha256 else 0x08, mac)
    L = len(body) + 8
    crc = (zlib.crc32(hdr(L) + body) ^ 0x5354554E) & 0xFFFFFFFF
    body += attr(0x8028, struct.pack("!I", crc))
    return hdr(len(body)) + body
k256 = hashlib.sha256(b"u:r:p").digest()
uh = hashlib.sha256(b"u:r").digest()
offered = bytes.fromhex("0002000000010000")
common = [attr(0x14, b"r"), attr(0x15, nonce())]
rt = attr(0x19, bytes([17,0,0,0]))
seeds = {
  "sha256_refresh": msg(0x0004, b"\x07"*12, [attr(0x06, b"u")] + common + [attr(0x8002, offered), attr(0x1D, bytes.fromhex("00020000"))], k256),
  "userhash_refresh": msg(0x0004, b"\x08"*12, [attr(0x1E, uh)] + common + [attr(0x8002, offered), attr(0x1D, bytes.fromhex("00020000"))], k256),
  "bid_down_md5_only": msg(0x0004, b"\x09"*12, [attr(0x06, b"u")] + common + [attr(0x8002, bytes.fromhex("00010000")), attr(0x1D, bytes.fromhex("00010000"))], hashlib.md5(b"u:r:p").digest(), False),
  "unknown_algorithm": msg(0x0003, b"\x0a"*12, [rt, attr(0x06, b"u")] + common + [attr(0x8002, offered), attr(0x1D, bytes.fromhex("00030004aabbccdd"))], k256),
  "short_userhash": msg(0x0003, b"\x0b"*12, [rt, attr(0x1E, uh[:31])] + common, k256),
}
# RFC 6062 (TCP mode: a first piece with an odd byte, then 0xFF separators).
md5 = hashlib.md5(b"u:r:p").digest()
def xor_peer(ip, port):
    p = port ^ 0x2112
    a = bytes(b ^ m for b, m in zip(ip, struct.pack("!I", 0x2112A442)))
    return attr(0x12, struct.pack("!BBH", 0, 1, p) + a)
def tcp_seed(m, index):
    # Piece `index` (even: a client frame; index % 4 == 2: the second connection).
    assert b"\xff" not in m, "a 0xFF would split the message"
    return b"\x01" + b"\xff" * index + m
connect = lambda tid: msg(0x000A, tid, [xor_peer(bytes([8,8,8,8]), 1), attr(0x06, b"u")] + common, md5, False)
bind = lambda tid: msg(0x000B, tid, [attr(0x2A, bytes.fromhex("01020304")), attr(0x06, b"u")] + common, md5, False)
def clean(make):
    for t in range(1, 250):
        m = make(bytes([t]) * 12)
        if b"\xff" not in m:
            return m
seeds["tcp_connect"] = tcp_seed(clean(connect), 4)
seeds["tcp_connection_bind"] = tcp_seed(clean(bind), 2)
if len(sys.argv) > 2:  # the stun_parse corpus: the bare ConnectionBind
    open(os.path.join(sys.argv[2], "rfc6062_connection_bind"), "wb").write(clean(bind))
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    open(os.path.join(out, name), "wb").write(data)
