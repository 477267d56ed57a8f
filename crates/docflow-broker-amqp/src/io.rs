//! Frames over the socket: a bounded read buffer that yields whole frames, and writes.

use docflow_amqp::frame::{self, FrameError, FrameType, ReadFrame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::ConnectionError;

/// Bytes read from the socket at a time.
const CHUNK: usize = 16 * 1024;

/// One frame, copied out of the read buffer.
#[derive(Debug)]
pub(crate) struct OwnedFrame {
    pub(crate) frame_type: FrameType,
    pub(crate) channel: u16,
    pub(crate) body: Vec<u8>,
}

/// The read side: never buffers more than one frame (bounded by `max_frame_size`) plus one
/// chunk.
pub(crate) struct Reader {
    read: OwnedReadHalf,
    buf: Vec<u8>,
    chunk: Box<[u8; CHUNK]>,
}

impl Reader {
    pub(crate) fn new(read: OwnedReadHalf) -> Self {
        Self {
            read,
            buf: Vec::new(),
            chunk: Box::new([0; CHUNK]),
        }
    }

    /// Takes the next `n` bytes once they are buffered (`None` until then).
    pub(crate) fn take(&mut self, n: usize) -> Option<Vec<u8>> {
        (self.buf.len() >= n).then(|| self.buf.drain(..n).collect())
    }

    /// Takes a whole frame out of the buffer if one is there.
    pub(crate) fn take_frame(
        &mut self,
        max_frame_size: u32,
    ) -> Result<Option<OwnedFrame>, FrameError> {
        match frame::read_frame(&self.buf, max_frame_size)? {
            ReadFrame::Incomplete { .. } => Ok(None),
            ReadFrame::Frame { frame, len } => {
                let owned = OwnedFrame {
                    frame_type: frame.frame_type,
                    channel: frame.channel,
                    body: frame.body.to_vec(),
                };
                self.buf.drain(..len);
                Ok(Some(owned))
            }
        }
    }

    /// Reads more bytes from the socket (cancel safe). `Ok(false)` at end of stream.
    pub(crate) async fn fill(&mut self) -> Result<bool, ConnectionError> {
        let n = self.read.read(&mut self.chunk[..]).await?;
        self.buf.extend_from_slice(&self.chunk[..n]);
        Ok(n > 0)
    }

    /// Reads until a whole frame is buffered.
    pub(crate) async fn next_frame(
        &mut self,
        max_frame_size: u32,
    ) -> Result<OwnedFrame, ConnectionError> {
        loop {
            if let Some(frame) = self
                .take_frame(max_frame_size)
                .map_err(|e| ConnectionError::Protocol(e.to_string()))?
            {
                return Ok(frame);
            }
            if !self.fill().await? {
                return Err(ConnectionError::Protocol(
                    "the peer closed the socket mid-frame".into(),
                ));
            }
        }
    }

    /// Reads until `n` bytes are buffered, then takes them.
    pub(crate) async fn read_exact(&mut self, n: usize) -> Result<Vec<u8>, ConnectionError> {
        loop {
            if let Some(bytes) = self.take(n) {
                return Ok(bytes);
            }
            if !self.fill().await? {
                return Err(ConnectionError::Protocol(
                    "the peer closed the socket during the handshake".into(),
                ));
            }
        }
    }
}

/// The write side.
pub(crate) struct Writer {
    write: OwnedWriteHalf,
}

impl Writer {
    pub(crate) fn new(write: OwnedWriteHalf) -> Self {
        Self { write }
    }

    pub(crate) async fn write(&mut self, bytes: &[u8]) -> Result<(), ConnectionError> {
        self.write.write_all(bytes).await?;
        Ok(())
    }

    pub(crate) async fn shutdown(&mut self) {
        let _ = self.write.shutdown().await;
    }
}
