//! Framing of STUN messages and ChannelData on stream transports (TCP, TLS),
//! RFC 8656 §12.5 and RFC 8489 §6.2.2.

use super::channel_data::HEADER_LEN as CHANNEL_HEADER_LEN;
use super::stun::HEADER_LEN as STUN_HEADER_LEN;

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
///
/// The first two bits demultiplex (RFC 8656 §12.5, RFC 7983): `00` is STUN,
/// whose total length is 20 + the header length field; `01` is ChannelData,
/// 4 + its length field rounded up to 4, because "over TCP and TLS-over-TCP,
/// the ChannelData message MUST be padded to a multiple of four bytes".
/// Only the first 4 bytes are needed in both cases. The frame is not
/// validated beyond that; the caller parses it.
pub fn frame_len(buf: &[u8], max: usize) -> Result<Option<usize>, FrameError> {
    let Some(&[b0, _, l0, l1]) = buf.first_chunk::<4>() else {
        return Ok(None);
    };
    let len = usize::from(u16::from_be_bytes([l0, l1]));
    // Neither sum can overflow: len <= 65,535.
    let total = match b0 >> 6 {
        0b00 => STUN_HEADER_LEN + len,
        0b01 => CHANNEL_HEADER_LEN + ((len + 3) & !3),
        _ => return Err(FrameError::BadFirstByte(b0)),
    };
    if total > max {
        return Err(FrameError::TooLong { len: total, max });
    }
    Ok(Some(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_four_bytes() {
        for n in 0..4 {
            assert_eq!(frame_len(&[0; 4][..n], 1000), Ok(None));
        }
    }

    #[test]
    fn stun_and_channel_data_lengths() {
        assert_eq!(frame_len(&[0x00, 0x01, 0x00, 0x08], 1000), Ok(Some(28)));
        assert_eq!(
            frame_len(&[0x01, 0x01, 0x00, 0x00, 0x21], 1000),
            Ok(Some(20))
        );
        assert_eq!(frame_len(&[0x40, 0x00, 0x00, 0x05], 1000), Ok(Some(12)));
        assert_eq!(frame_len(&[0x40, 0x00, 0x00, 0x08], 1000), Ok(Some(12)));
        assert_eq!(frame_len(&[0x40, 0x00, 0x00, 0x00], 1000), Ok(Some(4)));
        assert_eq!(
            frame_len(&[0x7F, 0xFF, 0xFF, 0xFF], usize::MAX),
            Ok(Some(4 + 65_536))
        );
        assert_eq!(
            frame_len(&[0x00, 0x01, 0xFF, 0xFC], usize::MAX),
            Ok(Some(20 + 65_532))
        );
    }

    #[test]
    fn bad_first_byte_and_too_long() {
        assert_eq!(
            frame_len(&[0x80, 0, 0, 0], 1000),
            Err(FrameError::BadFirstByte(0x80))
        );
        assert_eq!(
            frame_len(&[0xC0, 0, 0, 0], 1000),
            Err(FrameError::BadFirstByte(0xC0))
        );
        assert_eq!(
            frame_len(&[0x00, 0x01, 0x01, 0x00], 200),
            Err(FrameError::TooLong { len: 276, max: 200 })
        );
        assert_eq!(
            frame_len(&[0x40, 0x00, 0x00, 0xC5], 200),
            Err(FrameError::TooLong { len: 204, max: 200 })
        );
        assert_eq!(frame_len(&[0x40, 0x00, 0x00, 0xC4], 200), Ok(Some(200)));
    }
}
