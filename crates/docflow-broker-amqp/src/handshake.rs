//! The protocol headers and the SASL exchange (AMQP 1.0 part 5, section 5.3).

use docflow_amqp::frame::{FrameType, HEADER_LEN, MIN_MAX_FRAME_SIZE, ProtocolHeader};
use docflow_amqp::sasl::{SaslCode, SaslFrame, SaslMechanisms, SaslOutcome};

use crate::ConnectionError;
use crate::io::{Reader, Writer};

/// The mechanisms offered: `MSSBCBS` for the .NET SDK, `ANONYMOUS` for Python and JavaScript.
/// Either way the real authorisation is the CBS token put afterwards.
pub(crate) const MECHANISMS: [&str; 2] = ["MSSBCBS", "ANONYMOUS"];

/// Reads the first header (answering SASL if asked) and leaves the connection right after the
/// AMQP header, which it has answered.
pub(crate) async fn handshake(
    reader: &mut Reader,
    writer: &mut Writer,
) -> Result<(), ConnectionError> {
    let mut header = read_header(reader, writer).await?;
    if header == ProtocolHeader::Sasl {
        writer.write(&ProtocolHeader::Sasl.bytes()).await?;
        sasl(reader, writer).await?;
        header = read_header(reader, writer).await?;
        if header != ProtocolHeader::Amqp {
            writer.write(&ProtocolHeader::Amqp.bytes()).await?;
            return Err(ConnectionError::Protocol(
                "a second SASL header after SASL".into(),
            ));
        }
    }
    // A plain AMQP header without SASL is accepted as anonymous.
    writer.write(&ProtocolHeader::Amqp.bytes()).await?;
    Ok(())
}

async fn read_header(
    reader: &mut Reader,
    writer: &mut Writer,
) -> Result<ProtocolHeader, ConnectionError> {
    let bytes = reader.read_exact(HEADER_LEN).await?;
    match ProtocolHeader::read(&bytes) {
        Ok(Some(header)) => Ok(header),
        Ok(None) => Err(ConnectionError::Protocol("short protocol header".into())),
        Err(e) => {
            // Part 2, section 2.2: answer with the header we support, then close.
            writer.write(&ProtocolHeader::Amqp.bytes()).await?;
            Err(ConnectionError::Protocol(e.to_string()))
        }
    }
}

async fn sasl(reader: &mut Reader, writer: &mut Writer) -> Result<(), ConnectionError> {
    let mut out = Vec::new();
    let mechanisms = SaslFrame::Mechanisms(SaslMechanisms {
        mechanisms: MECHANISMS.iter().map(|m| m.to_string()).collect(),
    });
    encode(&mechanisms, &mut out)?;
    writer.write(&out).await?;
    let frame = reader.next_frame(MIN_MAX_FRAME_SIZE).await?;
    if frame.frame_type != FrameType::Sasl {
        return Err(ConnectionError::Protocol("expected sasl-init".into()));
    }
    let code = match SaslFrame::decode(&frame.body) {
        Ok(SaslFrame::Init(init)) if MECHANISMS.contains(&init.mechanism.as_str()) => SaslCode::Ok,
        Ok(SaslFrame::Init(_)) => SaslCode::Auth,
        Ok(other) => {
            return Err(ConnectionError::Protocol(format!(
                "expected sasl-init, got {other:?}"
            )));
        }
        Err(e) => return Err(ConnectionError::Protocol(e.to_string())),
    };
    out.clear();
    encode(
        &SaslFrame::Outcome(SaslOutcome {
            code,
            additional_data: None,
        }),
        &mut out,
    )?;
    writer.write(&out).await?;
    if code == SaslCode::Ok {
        Ok(())
    } else {
        Err(ConnectionError::Protocol(
            "unsupported SASL mechanism".into(),
        ))
    }
}

fn encode(frame: &SaslFrame, out: &mut Vec<u8>) -> Result<(), ConnectionError> {
    frame
        .encode_frame(out)
        .map_err(|e| ConnectionError::Protocol(e.to_string()))
}
