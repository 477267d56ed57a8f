//! Framing (part 2, sections 2.2 and 2.3; SASL's protocol header in part 5, section 5.3.1):
//! the 8-byte protocol headers that open a connection, and frames read incrementally from a
//! byte buffer as they arrive from a socket.

use thiserror::Error;

/// Bytes in a protocol header and in a frame header.
pub const HEADER_LEN: usize = 8;

/// The smallest `max-frame-size` a peer may announce (part 2, section 2.7.1,
/// MIN-MAX-FRAME-SIZE), and so the limit that holds before `open` is exchanged.
pub const MIN_MAX_FRAME_SIZE: u32 = 512;

/// The protocol header of plain AMQP 1.0.0 (protocol id 0).
pub const AMQP_HEADER: [u8; 8] = *b"AMQP\x00\x01\x00\x00";

/// The protocol header that starts a SASL exchange (protocol id 3, part 5, section 5.3.1).
pub const SASL_HEADER: [u8; 8] = *b"AMQP\x03\x01\x00\x00";

/// The bytes of a heartbeat: an AMQP frame with no body (part 2, section 2.4.5).
pub const HEARTBEAT: [u8; 8] = [0, 0, 0, 8, 2, 0, 0, 0];

/// Which protocol a peer's 8-byte header asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolHeader {
    /// AMQP 1.0.0 frames follow.
    Amqp,
    /// A SASL exchange follows, then another protocol header.
    Sasl,
}

impl ProtocolHeader {
    /// The header's 8 bytes, to send in reply or to open a connection.
    pub fn bytes(self) -> [u8; 8] {
        match self {
            ProtocolHeader::Amqp => AMQP_HEADER,
            ProtocolHeader::Sasl => SASL_HEADER,
        }
    }

    /// Reads a protocol header from the start of `buf`: `Ok(None)` until 8 bytes are there.
    ///
    /// An `AMQP` header for another protocol id or version is
    /// [`FrameError::UnsupportedProtocol`] (reply with the header you support, then close:
    /// part 2, section 2.2); anything else is [`FrameError::NotAmqp`].
    pub fn read(buf: &[u8]) -> Result<Option<Self>, FrameError> {
        if !starts_like_amqp(buf) {
            let mut header = [0; 8];
            let n = buf.len().min(8);
            header[..n].copy_from_slice(&buf[..n]);
            return Err(FrameError::NotAmqp { header });
        }
        let Some(bytes) = buf.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let mut header = [0; 8];
        header.copy_from_slice(bytes);
        match header {
            AMQP_HEADER => Ok(Some(ProtocolHeader::Amqp)),
            SASL_HEADER => Ok(Some(ProtocolHeader::Sasl)),
            _ => Err(FrameError::UnsupportedProtocol { header }),
        }
    }
}

/// Whether the first bytes of a connection could be an AMQP protocol header (they are a
/// prefix of `AMQP`, or start with it). Use it to tell AMQP from HTTP on a shared port: no
/// HTTP method starts with `A`, `AM`, `AMQ` or `AMQP`.
pub fn starts_like_amqp(prefix: &[u8]) -> bool {
    let n = prefix.len().min(4);
    prefix[..n] == b"AMQP"[..n]
}

/// The two frame types of AMQP 1.0 (part 2, section 2.3.1 and part 5, section 5.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameType {
    /// Type 0: performatives on a channel.
    Amqp,
    /// Type 1: the SASL frames, before the AMQP header.
    Sasl,
}

impl FrameType {
    fn code(self) -> u8 {
        match self {
            FrameType::Amqp => 0,
            FrameType::Sasl => 1,
        }
    }
}

/// One frame, borrowing its bytes from the read buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// AMQP or SASL.
    pub frame_type: FrameType,
    /// The channel (a session); SASL frames ignore it.
    pub channel: u16,
    /// The extended header between byte 8 and the data offset: unused by AMQP 1.0, kept so a
    /// caller can see it.
    pub extended_header: &'a [u8],
    /// The body: a performative (and a transfer's payload), or empty for a heartbeat.
    pub body: &'a [u8],
}

impl Frame<'_> {
    /// Whether this is an empty frame, which only keeps the connection alive.
    pub fn is_heartbeat(&self) -> bool {
        self.body.is_empty()
    }
}

/// What [`read_frame`] found at the start of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrame<'a> {
    /// Not a whole frame yet: read at least `needed` more bytes, then try again.
    Incomplete {
        /// Bytes missing before the frame can be complete.
        needed: usize,
    },
    /// A whole frame, using the first `len` bytes of the buffer.
    Frame {
        /// The frame.
        frame: Frame<'a>,
        /// Bytes to drop from the buffer once the frame is handled.
        len: usize,
    },
}

/// Why a frame or protocol header was refused; the broker answers with a connection error
/// (`amqp:connection:framing-error`) and closes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// The first bytes of the connection are not `AMQP`.
    #[error("protocol header {header:02x?} does not start with AMQP")]
    NotAmqp {
        /// The first (up to) 8 bytes, zero-padded.
        header: [u8; 8],
    },
    /// An `AMQP` header for a protocol id or version that is not AMQP or SASL 1.0.0.
    #[error("protocol header {header:02x?} asks for an unsupported protocol id or version")]
    UnsupportedProtocol {
        /// The 8 bytes received.
        header: [u8; 8],
    },
    /// The frame's size field (bytes 0-3) is smaller than a frame header.
    #[error("frame size field (bytes 0-3) is {size}, less than the 8-byte header")]
    SizeTooSmall {
        /// The declared size.
        size: u32,
    },
    /// The frame is larger than the negotiated `max-frame-size`.
    #[error("frame size field (bytes 0-3) is {size}, above the max-frame-size {max}")]
    TooLarge {
        /// The declared size.
        size: u32,
        /// The limit in force.
        max: u32,
    },
    /// The data offset (byte 4) is below 2 or points past the frame's end.
    #[error("frame data offset (byte 4) is {doff} words, invalid for a {size}-byte frame")]
    BadDataOffset {
        /// The data offset in 4-byte words.
        doff: u8,
        /// The frame size.
        size: u32,
    },
    /// The frame type (byte 5) is neither 0 (AMQP) nor 1 (SASL).
    #[error("frame type (byte 5) is 0x{frame_type:02x}, neither AMQP (0) nor SASL (1)")]
    UnknownType {
        /// The type byte.
        frame_type: u8,
    },
    /// A frame to encode would exceed the 4 GiB that a frame's size field can express.
    #[error("a frame body of {len} bytes cannot be framed (4 GiB limit)")]
    BodyTooLarge {
        /// The body's length.
        len: usize,
    },
}

/// Reads one frame from the start of `buf`, refusing any frame above `max_frame_size` as soon
/// as its size field is there (before its body is buffered).
///
/// Use [`MIN_MAX_FRAME_SIZE`] until `open` has been exchanged, then the smaller of the two
/// peers' `max-frame-size` values.
pub fn read_frame(buf: &[u8], max_frame_size: u32) -> Result<ReadFrame<'_>, FrameError> {
    let Some(size_bytes) = buf.get(..4) else {
        return Ok(ReadFrame::Incomplete {
            needed: HEADER_LEN - buf.len(),
        });
    };
    let size = u32::from_be_bytes([size_bytes[0], size_bytes[1], size_bytes[2], size_bytes[3]]);
    if size < HEADER_LEN as u32 {
        return Err(FrameError::SizeTooSmall { size });
    }
    if size > max_frame_size {
        return Err(FrameError::TooLarge {
            size,
            max: max_frame_size,
        });
    }
    let len = size as usize;
    if buf.len() < HEADER_LEN {
        return Ok(ReadFrame::Incomplete {
            needed: HEADER_LEN - buf.len(),
        });
    }
    let doff = buf[4];
    let data_start = usize::from(doff) * 4;
    if doff < 2 || data_start > len {
        return Err(FrameError::BadDataOffset { doff, size });
    }
    let frame_type = match buf[5] {
        0 => FrameType::Amqp,
        1 => FrameType::Sasl,
        frame_type => return Err(FrameError::UnknownType { frame_type }),
    };
    if buf.len() < len {
        return Ok(ReadFrame::Incomplete {
            needed: len - buf.len(),
        });
    }
    Ok(ReadFrame::Frame {
        frame: Frame {
            frame_type,
            channel: u16::from_be_bytes([buf[6], buf[7]]),
            extended_header: &buf[HEADER_LEN..data_start],
            body: &buf[data_start..len],
        },
        len,
    })
}

/// Appends a frame whose body `write_body` writes straight into `out` (no copy of the body).
///
/// On error `out` is left as it was.
pub fn encode_frame_with(
    frame_type: FrameType,
    channel: u16,
    out: &mut Vec<u8>,
    write_body: impl FnOnce(&mut Vec<u8>),
) -> Result<(), FrameError> {
    let start = out.len();
    out.extend([0, 0, 0, 0, 2, frame_type.code()]);
    out.extend(channel.to_be_bytes());
    write_body(out);
    let size = out.len() - start;
    match u32::try_from(size) {
        Ok(size) => {
            out[start..start + 4].copy_from_slice(&size.to_be_bytes());
            Ok(())
        }
        Err(_) => {
            out.truncate(start);
            Err(FrameError::BodyTooLarge {
                len: size - HEADER_LEN,
            })
        }
    }
}

/// Appends a frame with the given body bytes.
pub fn encode_frame(
    frame_type: FrameType,
    channel: u16,
    body: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), FrameError> {
    encode_frame_with(frame_type, channel, out, |out| out.extend_from_slice(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Part 2, section 2.2: "AMQP" %d0 1 0 0; part 5, section 5.3.1: "AMQP" %d3 1 0 0.
    #[test]
    fn protocol_headers() {
        assert_eq!(&AMQP_HEADER, &[0x41, 0x4d, 0x51, 0x50, 0, 1, 0, 0]);
        assert_eq!(
            ProtocolHeader::read(&SASL_HEADER),
            Ok(Some(ProtocolHeader::Sasl))
        );
        assert_eq!(
            ProtocolHeader::read(&AMQP_HEADER),
            Ok(Some(ProtocolHeader::Amqp))
        );
        assert_eq!(ProtocolHeader::read(b"AMQ"), Ok(None));
        assert_eq!(ProtocolHeader::Sasl.bytes(), SASL_HEADER);
        assert_eq!(
            ProtocolHeader::read(b"AMQP\x02\x01\x00\x00"),
            Err(FrameError::UnsupportedProtocol {
                header: *b"AMQP\x02\x01\x00\x00"
            })
        );
        assert!(matches!(
            ProtocolHeader::read(b"GET / HTTP/1.1"),
            Err(FrameError::NotAmqp { header }) if &header == b"GET / HT"
        ));
        assert!(starts_like_amqp(b"AM"));
        assert!(starts_like_amqp(b""));
        assert!(!starts_like_amqp(b"POST"));
    }

    // Part 2, section 2.3.1: size, doff, type, channel; body from doff*4.
    #[test]
    fn frames_are_read_once_complete() {
        let mut bytes = Vec::new();
        encode_frame(FrameType::Amqp, 5, &[0x00, 0x53, 0x17, 0x45], &mut bytes).unwrap();
        assert_eq!(bytes, [0, 0, 0, 12, 2, 0, 0, 5, 0x00, 0x53, 0x17, 0x45]);
        for cut in 0..bytes.len() {
            let needed = match read_frame(&bytes[..cut], 512).unwrap() {
                ReadFrame::Incomplete { needed } => needed,
                ReadFrame::Frame { .. } => panic!("a frame from {cut} bytes"),
            };
            assert!(needed >= 1 && cut + needed <= bytes.len());
        }
        bytes.extend([0xaa]);
        let ReadFrame::Frame { frame, len } = read_frame(&bytes, 512).unwrap() else {
            panic!("no frame");
        };
        assert_eq!(len, 12);
        assert_eq!(frame.frame_type, FrameType::Amqp);
        assert_eq!(frame.channel, 5);
        assert_eq!(frame.body, [0x00, 0x53, 0x17, 0x45]);
        assert!(frame.extended_header.is_empty());
        assert!(!frame.is_heartbeat());
    }

    #[test]
    fn extended_headers_are_skipped() {
        let bytes = [0, 0, 0, 13, 3, 1, 0, 0, 9, 9, 9, 9, 0x40];
        let ReadFrame::Frame { frame, .. } = read_frame(&bytes, 512).unwrap() else {
            panic!("no frame");
        };
        assert_eq!(frame.frame_type, FrameType::Sasl);
        assert_eq!(frame.extended_header, [9, 9, 9, 9]);
        assert_eq!(frame.body, [0x40]);
    }

    // Part 2, section 2.4.5: an empty frame is a heartbeat.
    #[test]
    fn heartbeats_are_empty_frames() {
        let mut bytes = Vec::new();
        encode_frame(FrameType::Amqp, 0, &[], &mut bytes).unwrap();
        assert_eq!(bytes, HEARTBEAT);
        let ReadFrame::Frame { frame, len } = read_frame(&HEARTBEAT, 512).unwrap() else {
            panic!("no frame");
        };
        assert_eq!(len, 8);
        assert!(frame.is_heartbeat());
    }

    #[test]
    fn bad_frames_are_refused_early() {
        // Over the limit: refused from the size field alone.
        assert_eq!(
            read_frame(&[0, 0, 2, 1], 512),
            Err(FrameError::TooLarge {
                size: 513,
                max: 512
            })
        );
        assert_eq!(
            read_frame(&[0, 0, 0, 7, 2, 0, 0, 0], 512),
            Err(FrameError::SizeTooSmall { size: 7 })
        );
        assert_eq!(
            read_frame(&[0, 0, 0, 8, 1, 0, 0, 0], 512),
            Err(FrameError::BadDataOffset { doff: 1, size: 8 })
        );
        assert_eq!(
            read_frame(&[0, 0, 0, 8, 3, 0, 0, 0], 512),
            Err(FrameError::BadDataOffset { doff: 3, size: 8 })
        );
        assert_eq!(
            read_frame(&[0, 0, 0, 8, 2, 7, 0, 0], 512),
            Err(FrameError::UnknownType { frame_type: 7 })
        );
    }
}
