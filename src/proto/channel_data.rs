//! ChannelData messages (RFC 8656 §12.4) and channel numbers.

/// A valid channel number, 0x4000–0x4FFF (RFC 8656 §12).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct ChannelNumber(u16);

impl ChannelNumber {
    pub const MIN: u16 = 0x4000;
    pub const MAX: u16 = 0x4FFF;

    pub fn new(n: u16) -> Option<Self> {
        (Self::MIN..=Self::MAX).contains(&n).then_some(Self(n))
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

/// Why bytes are not a ChannelData message.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum ChannelDataError {
    #[error("truncated: need {expected} bytes, have {actual}")]
    Truncated { expected: usize, actual: usize },
    #[error("channel number {0:#06x} outside 0x4000-0x4FFF")]
    BadChannel(u16),
}

/// A ChannelData message borrowing the datagram.
#[derive(Clone, Copy, Debug)]
pub struct ChannelData<'a> {
    pub channel: ChannelNumber,
    pub payload: &'a [u8],
}

impl<'a> ChannelData<'a> {
    /// Parses a datagram: 4-byte header, then `length` bytes of payload.
    /// Trailing bytes beyond the length (padding) are allowed and ignored.
    pub fn parse(buf: &'a [u8]) -> Result<Self, ChannelDataError> {
        todo!("{buf:?}")
    }
}

/// Writes the 4-byte ChannelData header.
pub fn write_header(channel: ChannelNumber, len: u16) -> [u8; 4] {
    let c = channel.0.to_be_bytes();
    let l = len.to_be_bytes();
    [c[0], c[1], l[0], l[1]]
}
