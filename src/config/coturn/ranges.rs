//! coturn's peer address ranges (`A-B`, a single IP, or `A/len`) as
//! intervals, set difference on them, and their minimal CIDR cover.
//!
//! coturn lets `allowed-peer-ip` beat `denied-peer-ip`; in tern `peers.deny`
//! beats `peers.allow`. The import therefore writes `denied − allowed` as
//! tern's deny list, which refuses exactly the addresses coturn refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use super::options::Opts;

/// An inclusive interval of addresses of one family (IPv4 values are < 2³²).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Range {
    pub(super) v6: bool,
    pub(super) lo: u128,
    pub(super) hi: u128,
}

impl Range {
    /// Every address in `net`.
    pub(super) fn of_net(net: IpNet) -> Self {
        let (lo, hi) = (num(net.network()), num(net.broadcast()));
        Self {
            v6: net.network().is_ipv6(),
            lo,
            hi,
        }
    }
}

fn num(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn ip(v6: bool, n: u128) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(n))
    } else {
        // invariant: IPv4 ranges only hold values < 2^32 (built from Ipv4Addr).
        IpAddr::V4(Ipv4Addr::from(u32::try_from(n).expect("IPv4 value")))
    }
}

/// Parses `A-B`, `A` or `A/len` (coturn accepts the first two; the third is
/// accepted because operators write it).
pub(super) fn parse(s: &str) -> Result<Range, String> {
    let s = s.trim();
    if let Ok(net) = s.parse::<IpNet>() {
        return Ok(Range::of_net(net.trunc()));
    }
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let parse_ip = |t: &str| {
        t.trim()
            .parse::<IpAddr>()
            .map_err(|_| format!("{t:?} is not an IP address"))
    };
    let (a, b) = (parse_ip(a)?, parse_ip(b)?);
    if a.is_ipv6() != b.is_ipv6() {
        return Err(format!("{a} and {b} are of different families"));
    }
    let (lo, hi) = (num(a), num(b));
    if lo > hi {
        return Err(format!("{a} is above {b}"));
    }
    Ok(Range {
        v6: a.is_ipv6(),
        lo,
        hi,
    })
}

/// Sorts and merges overlapping or adjacent ranges.
pub(super) fn merge(mut ranges: Vec<Range>) -> Vec<Range> {
    ranges.sort();
    let mut out: Vec<Range> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            // `hi + 1` would overflow at the top of the space; compare with `>=` first.
            Some(last) if last.v6 == r.v6 && (last.hi >= r.lo || last.hi + 1 == r.lo) => {
                last.hi = last.hi.max(r.hi);
            }
            _ => out.push(r),
        }
    }
    out
}

/// `from − minus`, merged.
pub(super) fn subtract(from: &[Range], minus: &[Range]) -> Vec<Range> {
    let mut cur = merge(from.to_vec());
    for m in merge(minus.to_vec()) {
        let mut next = Vec::with_capacity(cur.len() + 1);
        for r in cur {
            if r.v6 != m.v6 || m.hi < r.lo || m.lo > r.hi {
                next.push(r);
                continue;
            }
            if m.lo > r.lo {
                next.push(Range { hi: m.lo - 1, ..r });
            }
            if m.hi < r.hi {
                next.push(Range { lo: m.hi + 1, ..r });
            }
        }
        cur = next;
    }
    cur
}

/// The fewest CIDRs covering exactly `r`.
pub(super) fn cidrs(r: Range) -> Vec<IpNet> {
    let width: u32 = if r.v6 { 128 } else { 32 };
    let mut out = Vec::new();
    let mut lo = r.lo;
    loop {
        // The largest block that starts at `lo` (alignment) and ends by `hi`.
        let align = lo.trailing_zeros().min(width);
        let span = r.hi - lo; // lo <= hi: loop invariant
        let fits = match span.checked_add(1) {
            Some(n) => 127 - n.leading_zeros(),
            None => 128,
        };
        let bits = align.min(fits);
        // invariant: the prefix length is at most `width`.
        let prefix = u8::try_from(width - bits).expect("prefix fits u8");
        out.push(IpNet::new(ip(r.v6, lo), prefix).expect("prefix <= width"));
        let next = if bits == 128 {
            None
        } else {
            lo.checked_add(1u128 << bits)
        };
        match next {
            Some(n) if n <= r.hi => lo = n,
            _ => return out,
        }
    }
}

/// The minimal CIDR list for a set of ranges.
pub(super) fn cidr_list(ranges: &[Range]) -> Vec<IpNet> {
    merge(ranges.to_vec()).into_iter().flat_map(cidrs).collect()
}

const LOOPBACK: [&str; 2] = ["127.0.0.0/8", "::1/128"];
/// coturn's no-multicast-peers: "224.0.0.0 and above, and FFXX:*".
const MULTICAST: [&str; 2] = ["224.0.0.0/3", "ff00::/8"];

fn nets(cidrs: &[&str]) -> Vec<Range> {
    // invariant: the constants above are valid CIDRs.
    cidrs
        .iter()
        .map(|c| Range::of_net(c.parse().expect("CIDR")))
        .collect()
}

/// tern's (allow, deny) for coturn's peer options. coturn's allowed-peer-ip
/// beats denied-peer-ip and tern's deny beats allow, so deny = denied −
/// allowed. The allow list keeps loopback closed unless coturn allowed
/// loopback peers (then it opens it whole), and multicast closed when
/// coturn refused it: an allowed-peer-ip never opened those in coturn.
pub(super) fn peer_lists(o: &Opts) -> (Vec<Range>, Vec<Range>) {
    let allowed: Vec<Range> = o.allowed.iter().map(|(_, r)| *r).collect();
    let mut closed = Vec::new();
    if o.allow_loopback.is_none() {
        closed.extend(nets(&LOOPBACK));
    }
    if o.no_multicast.is_some() {
        closed.extend(nets(&MULTICAST));
    }
    let mut allow = subtract(&allowed, &closed);
    if o.allow_loopback.is_some() {
        allow.extend(nets(&LOOPBACK));
    }
    let denied: Vec<Range> = o.denied.iter().map(|(_, r)| *r).collect();
    (allow, subtract(&denied, &allowed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(s: &str) -> Vec<String> {
        cidrs(parse(s).unwrap())
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn ranges_become_minimal_cidrs() {
        assert_eq!(nets("83.166.64.0-83.166.95.255"), ["83.166.64.0/19"]);
        assert_eq!(nets("10.0.0.0-10.255.255.255"), ["10.0.0.0/8"]);
        assert_eq!(nets("192.0.2.7"), ["192.0.2.7/32"]);
        assert_eq!(
            nets("10.0.0.1-10.0.0.6"),
            ["10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/31", "10.0.0.6/32"]
        );
        assert_eq!(nets("0.0.0.0-255.255.255.255"), ["0.0.0.0/0"]);
        assert_eq!(nets("::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), ["::/0"]);
        assert_eq!(
            nets("fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
            ["fc00::/7"]
        );
        assert_eq!(nets("172.16.0.0/12"), ["172.16.0.0/12"]);
    }

    #[test]
    fn bad_ranges_are_refused() {
        assert!(parse("10.0.0.9-10.0.0.1").is_err());
        assert!(parse("10.0.0.1-::1").is_err());
        assert!(parse("nope").is_err());
    }

    #[test]
    fn allowed_holes_are_cut_out_of_denied() {
        let denied = [parse("83.166.64.0-83.166.95.255").unwrap()];
        let allowed = [parse("83.166.68.45").unwrap()];
        let left: Vec<String> = cidr_list(&subtract(&denied, &allowed))
            .iter()
            .map(ToString::to_string)
            .collect();
        // Every address but .68.45, in as few blocks as possible.
        assert!(!left.iter().any(|n| {
            n.parse::<IpNet>()
                .unwrap()
                .contains(&"83.166.68.45".parse::<IpAddr>().unwrap())
        }));
        let total: u128 = left
            .iter()
            .map(|n| 1u128 << (32 - n.parse::<IpNet>().unwrap().prefix_len()))
            .sum();
        assert_eq!(total, 8192 - 1);
        assert_eq!(left.len(), 13, "{left:?}");
    }

    #[test]
    fn merge_joins_adjacent_and_keeps_families_apart() {
        let m = merge(vec![
            parse("10.0.0.0-10.0.0.127").unwrap(),
            parse("10.0.0.128-10.0.0.255").unwrap(),
            parse("::a-::f").unwrap(),
        ]);
        assert_eq!(m.len(), 2);
        assert_eq!(cidrs(m[0])[0].to_string(), "10.0.0.0/24");
    }
}
