//! SPDY/3.1 frames: the few the k8s streaming protocols use, read from and written to bytes.

use super::SpdyError;

pub const SYN_STREAM: u16 = 1;
pub const SYN_REPLY: u16 = 2;
pub const RST_STREAM: u16 = 3;
pub const SETTINGS: u16 = 4;
pub const PING: u16 = 6;
pub const GOAWAY: u16 = 7;
pub const HEADERS: u16 = 8;
pub const WINDOW_UPDATE: u16 = 9;

pub const FLAG_FIN: u8 = 0x01;
const VERSION: u16 = 3;
/// Largest frame accepted; the length field allows 16 MiB.
pub const MAX_FRAME: usize = 16 * 1024 * 1024 - 1;

/// RST_STREAM status codes.
pub const RST_REFUSED_STREAM: u32 = 3;
pub const RST_CANCEL: u32 = 5;

/// A frame header: the 8 bytes every frame starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    Control { kind: u16, flags: u8, len: usize },
    Data { stream: u32, flags: u8, len: usize },
}

impl Head {
    pub fn parse(b: [u8; 8]) -> Result<Head, SpdyError> {
        let flags = b[4];
        let len = u32::from_be_bytes([0, b[5], b[6], b[7]]) as usize;
        if b[0] & 0x80 != 0 {
            let version = u16::from_be_bytes([b[0] & 0x7f, b[1]]);
            if version != VERSION {
                return Err(SpdyError::Protocol(format!("SPDY version {version}")));
            }
            let kind = u16::from_be_bytes([b[2], b[3]]);
            Ok(Head::Control { kind, flags, len })
        } else {
            let stream = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & 0x7fff_ffff;
            Ok(Head::Data { stream, flags, len })
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Head::Control { len, .. } | Head::Data { len, .. } => *len,
        }
    }
}

fn control(out: &mut Vec<u8>, kind: u16, flags: u8, payload: &[&[u8]]) {
    let len: usize = payload.iter().map(|p| p.len()).sum();
    out.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
    out.extend_from_slice(&kind.to_be_bytes());
    out.push(flags);
    out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    for p in payload {
        out.extend_from_slice(p);
    }
}

/// SYN_REPLY with an already compressed header block.
pub fn syn_reply(out: &mut Vec<u8>, stream: u32, flags: u8, block: &[u8]) {
    control(out, SYN_REPLY, flags, &[&stream.to_be_bytes(), block]);
}

pub fn rst_stream(out: &mut Vec<u8>, stream: u32, status: u32) {
    control(
        out,
        RST_STREAM,
        0,
        &[&stream.to_be_bytes(), &status.to_be_bytes()],
    );
}

pub fn ping(out: &mut Vec<u8>, id: u32) {
    control(out, PING, 0, &[&id.to_be_bytes()]);
}

pub fn goaway(out: &mut Vec<u8>, last_stream: u32) {
    control(
        out,
        GOAWAY,
        0,
        &[&last_stream.to_be_bytes(), &0u32.to_be_bytes()],
    );
}

/// A DATA frame header; the payload follows (at most [`MAX_FRAME`] bytes).
pub fn data_head(out: &mut Vec<u8>, stream: u32, flags: u8, len: usize) {
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.push(flags);
    out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
}

/// The stream id at the start of a control frame's payload.
pub fn stream_id(payload: &[u8]) -> Result<u32, SpdyError> {
    let head = payload
        .first_chunk::<4>()
        .ok_or_else(|| SpdyError::Protocol("short control frame".into()))?;
    Ok(u32::from_be_bytes(*head) & 0x7fff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_parse_what_is_written() {
        let mut out = Vec::new();
        ping(&mut out, 7);
        let head = Head::parse(out[..8].try_into().unwrap()).unwrap();
        assert_eq!(
            head,
            Head::Control {
                kind: PING,
                flags: 0,
                len: 4
            }
        );
        assert_eq!(stream_id(&out[8..]).unwrap(), 7);
        let mut out = Vec::new();
        data_head(&mut out, 5, FLAG_FIN, 70000);
        assert_eq!(
            Head::parse(out[..8].try_into().unwrap()).unwrap(),
            Head::Data {
                stream: 5,
                flags: FLAG_FIN,
                len: 70000
            }
        );
        let mut v2 = [0x80, 2, 0, 1, 0, 0, 0, 0];
        assert!(Head::parse(v2).is_err());
        v2[1] = 3;
        assert!(Head::parse(v2).is_ok());
    }
}
