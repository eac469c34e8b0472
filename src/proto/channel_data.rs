//! ChannelData messages (RFC 8656 §12.4) and channel numbers.

/// A valid channel number, 0x4000–0x7FFF.
///
/// RFC 8656 §12 narrowed the range to 0x4000–0x4FFF and reserved the rest;
/// RFC 5766 §11 allowed 0x4000–0x7FFF, and clients still use it (coturn's
/// `turnutils_uclient` picks random numbers up to 0x7FFF, and coturn accepts
/// them). tern accepts the RFC 5766 range so those clients work; numbers
/// with the top bits of ChannelData's demultiplexing (0b01) are all it needs.
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
