//! Framing of STUN messages and ChannelData on stream transports (TCP, TLS),
//! RFC 8656 §12.5 and RFC 8489 §6.2.2.

/// Why a stream cannot be framed; the connection must be closed.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum FrameError {
    #[error("first byte {0:#04x} starts neither STUN nor ChannelData")]
    BadFirstByte(u8),
    #[error("frame of {len} bytes exceeds the maximum {max}")]
    TooLong { len: usize, max: usize },
}

/// Length of the frame at the start of `buf`, including ChannelData padding
/// to a multiple of 4 on streams; `Ok(None)` if more bytes are needed to know
/// (fewer than 4 buffered). Never reads past `buf`.
pub fn frame_len(buf: &[u8], max: usize) -> Result<Option<usize>, FrameError> {
    todo!("{buf:?}{max}")
}
