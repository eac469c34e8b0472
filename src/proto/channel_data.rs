//! ChannelData messages (RFC 8656 §12.4) and channel numbers.

/// A channel number with ChannelData's demultiplexing bits (0b01):
/// 0x4000–0x7FFF, the range RFC 5766 §11 allowed.
///
/// Which numbers a ChannelBind may use is narrower by default, see
/// [`ChannelRange`]; this type only says the two leading bits are right, so
/// the stream deframer and the client can frame any ChannelData.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct ChannelNumber(u16);

impl ChannelNumber {
    pub const MIN: u16 = 0x4000;
    pub const MAX: u16 = 0x7FFF;

    /// ```
    /// use tern::proto::channel_data::ChannelNumber;
    ///
    /// assert!(ChannelNumber::new(0x4000).is_some());
    /// assert!(ChannelNumber::new(0x7FFF).is_some());
    /// assert!(ChannelNumber::new(0x3FFF).is_none() && ChannelNumber::new(0x8000).is_none());
    /// ```
    pub fn new(n: u16) -> Option<Self> {
        (Self::MIN..=Self::MAX).contains(&n).then_some(Self(n))
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

/// The channel numbers the server binds and relays.
///
/// RFC 8656 §12 (<https://www.rfc-editor.org/rfc/rfc8656#section-12>): "The
/// channel number MUST be in the range 0x4000 through 0x4FFF (inclusive)";
/// 0x5000–0x7FFF are reserved so TURN can be multiplexed with other
/// protocols (RFC 7983). RFC 5766 §11 allowed 0x4000–0x7FFF, and some
/// clients still pick from it: coturn's `turnutils_uclient` draws a random
/// number in 0x4000–0x7FFF for every channel (`stun_set_channel_bind_request_str`
/// in `ns_turn_msg.c`, when the caller passes 0, as uclient does), so about
/// three in four of its binds fall outside the RFC 8656 range.
///
/// ```
/// use tern::proto::channel_data::{ChannelNumber, ChannelRange};
///
/// let n = ChannelNumber::new(0x5000).unwrap();
/// assert!(!ChannelRange::Rfc8656.contains(n));
/// assert!(ChannelRange::Rfc5766.contains(n));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum ChannelRange {
    /// 0x4000–0x4FFF (RFC 8656 §12), the default.
    #[default]
    Rfc8656,
    /// 0x4000–0x7FFF (RFC 5766 §11), for old clients; config
    /// `allocation.rfc5766_channel_range = true`.
    Rfc5766,
}

impl ChannelRange {
    /// Highest number of the RFC 8656 range.
    pub const RFC8656_MAX: u16 = 0x4FFF;

    #[inline]
    pub fn contains(self, n: ChannelNumber) -> bool {
        match self {
            Self::Rfc8656 => n.0 <= Self::RFC8656_MAX,
            Self::Rfc5766 => true,
        }
    }
}

/// Why bytes are not a ChannelData message.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum ChannelDataError {
    #[error("truncated: need {expected} bytes, have {actual}")]
    Truncated { expected: usize, actual: usize },
    #[error("channel number {0:#06x} outside 0x4000-0x7FFF")]
    BadChannel(u16),
}

/// Length of the ChannelData header (channel number + length).
pub const HEADER_LEN: usize = 4;

/// A ChannelData message borrowing the datagram.
#[derive(Clone, Copy, Debug)]
pub struct ChannelData<'a> {
    pub channel: ChannelNumber,
    pub payload: &'a [u8],
}

impl<'a> ChannelData<'a> {
    /// Parses a datagram: 4-byte header, then `length` bytes of payload.
    /// Trailing bytes beyond the length (padding) are allowed and ignored.
    ///
    /// RFC 8656 §12.4 (<https://www.rfc-editor.org/rfc/rfc8656#section-12.4>):
    /// the Length field "specifies the length in bytes of the application
    /// data field (i.e., it does not include the size of the ChannelData
    /// header)"; over UDP the padding "is not required and MAY be omitted".
    pub fn parse(buf: &'a [u8]) -> Result<Self, ChannelDataError> {
        let Some((header, rest)) = buf.split_at_checked(HEADER_LEN) else {
            return Err(ChannelDataError::Truncated {
                expected: HEADER_LEN,
                actual: buf.len(),
            });
        };
        let number = u16::from_be_bytes([header[0], header[1]]);
        let channel = ChannelNumber::new(number).ok_or(ChannelDataError::BadChannel(number))?;
        let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
        let Some(payload) = rest.get(..len) else {
            return Err(ChannelDataError::Truncated {
                // Cannot overflow: len <= 65,535.
                expected: HEADER_LEN + len,
                actual: buf.len(),
            });
        };
        Ok(Self { channel, payload })
    }
}

/// Writes the 4-byte ChannelData header.
pub fn write_header(channel: ChannelNumber, len: u16) -> [u8; 4] {
    let c = channel.0.to_be_bytes();
    let l = len.to_be_bytes();
    [c[0], c[1], l[0], l[1]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_valid_with_and_without_padding() {
        let d = ChannelData::parse(&[0x40, 0x01, 0x00, 0x03, 1, 2, 3]).unwrap();
        assert_eq!(d.channel.get(), 0x4001);
        assert_eq!(d.payload, &[1, 2, 3]);
        let d = ChannelData::parse(&[0x7F, 0xFF, 0x00, 0x03, 1, 2, 3, 0, 9, 9]).unwrap();
        assert_eq!(d.channel.get(), 0x7FFF);
        assert_eq!(d.payload, &[1, 2, 3]);
        let d = ChannelData::parse(&[0x40, 0x00, 0x00, 0x00]).unwrap();
        assert!(d.payload.is_empty());
        let h = write_header(ChannelNumber::new(0x4ABC).unwrap(), 0x0102);
        assert_eq!(h, [0x4A, 0xBC, 0x01, 0x02]);
    }

    #[test]
    fn hostile_inputs() {
        for n in 0..4 {
            assert_eq!(
                ChannelData::parse(&[0x40; 4][..n]).unwrap_err(),
                ChannelDataError::Truncated {
                    expected: 4,
                    actual: n
                }
            );
        }
        assert_eq!(
            ChannelData::parse(&[0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4]).unwrap_err(),
            ChannelDataError::Truncated {
                expected: 9,
                actual: 8
            }
        );
        assert_eq!(
            ChannelData::parse(&[0x80, 0x00, 0x00, 0x00]).unwrap_err(),
            ChannelDataError::BadChannel(0x8000)
        );
        assert_eq!(
            ChannelData::parse(&[0x3F, 0xFF, 0x00, 0x00]).unwrap_err(),
            ChannelDataError::BadChannel(0x3FFF)
        );
        assert_eq!(
            ChannelData::parse(&[0xFF, 0xFF, 0xFF, 0xFF]).unwrap_err(),
            ChannelDataError::BadChannel(0xFFFF)
        );
    }
}
