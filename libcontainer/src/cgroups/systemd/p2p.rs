//! A peer-to-peer connection to systemd's private socket (`/run/systemd/private`), for hosts
//! with systemd but no dbus daemon.
//!
//! systemd stamps what it sends there with the sender `org.freedesktop.systemd1` (there is no
//! bus to hand it a unique name), which zbus rejects as an invalid unique name (its reader
//! thread panics, and calls never return). So zbus gets one end of a socketpair and two relay
//! threads sit between it and systemd: requests pass unchanged, and once authentication is
//! over, systemd's messages lose their sender field, which nothing here needs.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

/// The SENDER header field's code.
const FIELD_SENDER: u8 = 7;
/// The D-Bus limit on a message's size.
const MAX_MESSAGE: usize = 128 << 20;

/// Connects to `path` and returns the stream zbus should use.
pub(crate) fn connect(path: &Path) -> io::Result<UnixStream> {
    let upstream = UnixStream::connect(path)?;
    let (ours, relay) = UnixStream::pair()?;
    let begun = Arc::new(AtomicBool::new(false));
    let (up_read, relay_read) = (upstream.try_clone()?, relay.try_clone()?);
    let b = begun.clone();
    thread::Builder::new()
        .name("systemd-p2p-tx".into())
        .spawn(move || to_systemd(relay_read, upstream, &b))?;
    thread::Builder::new()
        .name("systemd-p2p-rx".into())
        .spawn(move || from_systemd(up_read, relay, &begun))?;
    Ok(ours)
}

/// Client → systemd, verbatim; notes when the client ends authentication (`BEGIN`).
fn to_systemd(mut from: UnixStream, mut to: UnixStream, begun: &AtomicBool) {
    let mut buf = [0u8; 16 * 1024];
    let mut auth = Vec::new();
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if !begun.load(Ordering::SeqCst) {
            auth.extend_from_slice(&buf[..n]);
            // Set before forwarding: systemd sends binary only in answer to what follows.
            if auth.windows(7).any(|w| w == b"BEGIN\r\n") {
                begun.store(true, Ordering::SeqCst);
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

/// systemd → client: the authentication lines verbatim, then whole messages without sender.
/// The client may send `BEGIN` before the server's last line (zbus pipelines
/// `NEGOTIATE_UNIX_FD` and `BEGIN`), so a line is told from a message by its first byte: every
/// server reply (OK, REJECTED, DATA, ERROR, AGREE_UNIX_FD) is upper case, a message starts with
/// its endianness, `l` or `B`, and only after `BEGIN`.
fn from_systemd(mut from: UnixStream, mut to: UnixStream, begun: &AtomicBool) {
    let mut buf = [0u8; 16 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    'relay: loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        while let Some(&first) = pending.first() {
            let len = if begun.load(Ordering::SeqCst) && matches!(first, b'l' | b'B') {
                match message_len(&pending) {
                    Ok(Some(len)) => len,
                    Ok(None) => break,
                    Err(()) => break 'relay,
                }
            } else {
                match pending.windows(2).position(|w| w == b"\r\n") {
                    Some(i) => i + 2,
                    None if pending.len() > 16 * 1024 => break 'relay,
                    None => break,
                }
            };
            let chunk: Vec<u8> = pending.drain(..len).collect();
            let out = if chunk.ends_with(b"\r\n") && !matches!(first, b'l' | b'B') {
                chunk
            } else {
                strip_sender(&chunk).unwrap_or(chunk)
            };
            if to.write_all(&out).is_err() {
                break 'relay;
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

fn align(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

fn read_u32(b: &[u8], at: usize, le: bool) -> Option<u32> {
    let s: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(if le {
        u32::from_le_bytes(s)
    } else {
        u32::from_be_bytes(s)
    })
}

/// The size of the first message in `b` once it is complete, `None` while it is not; `Err`
/// for bytes that are no D-Bus message.
fn message_len(b: &[u8]) -> Result<Option<usize>, ()> {
    if b.len() < 16 {
        return Ok(None);
    }
    let le = match b[0] {
        b'l' => true,
        b'B' => false,
        _ => return Err(()),
    };
    let body = read_u32(b, 4, le).ok_or(())? as usize;
    let fields = read_u32(b, 12, le).ok_or(())? as usize;
    let total = align(16 + fields, 8) + body;
    if total > MAX_MESSAGE {
        return Err(());
    }
    Ok((b.len() >= total).then_some(total))
}

/// End (exclusive, relative to the fields array) of the header field starting at `p`; only the
/// types header fields have (s, o, g, u).
fn field_end(f: &[u8], p: usize, le: bool) -> Option<usize> {
    let sig_len = *f.get(p + 1)? as usize;
    let sig = f.get(p + 2..p + 2 + sig_len)?;
    let v = p + 2 + sig_len + 1;
    match sig {
        b"s" | b"o" => {
            let v = align(v, 4);
            Some(v + 4 + read_u32(f, v, le)? as usize + 1)
        }
        b"g" => Some(v + 1 + *f.get(v)? as usize + 1),
        b"u" => Some(align(v, 4) + 4),
        _ => None,
    }
}

/// `msg` without its SENDER header field; `None` when it has none or cannot be parsed (then it
/// is passed on as it is).
fn strip_sender(msg: &[u8]) -> Option<Vec<u8>> {
    let le = msg[0] == b'l';
    let fields_len = read_u32(msg, 12, le)? as usize;
    let fields = msg.get(16..16 + fields_len)?;
    let body = msg.get(align(16 + fields_len, 8)..)?;
    let mut kept = Vec::with_capacity(fields_len);
    let mut found = false;
    let mut p = 0;
    // The array starts 8-aligned and each entry does too, so whole entries move by multiples of
    // 8 and their inner alignment holds.
    while p < fields_len {
        let end = field_end(fields, p, le)?;
        if end > fields_len {
            return None;
        }
        if fields[p] == FIELD_SENDER {
            found = true;
        } else {
            kept.resize(align(kept.len(), 8), 0);
            kept.extend_from_slice(&fields[p..end]);
        }
        p = align(end, 8);
    }
    if !found {
        return None;
    }
    let mut out = Vec::with_capacity(msg.len());
    out.extend_from_slice(&msg[..12]);
    let n = u32::try_from(kept.len()).ok()?;
    out.extend_from_slice(&if le { n.to_le_bytes() } else { n.to_be_bytes() });
    out.extend_from_slice(&kept);
    out.resize(align(out.len(), 8), 0);
    out.extend_from_slice(body);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A method return as systemd sends it on its private socket: REPLY_SERIAL, DESTINATION
    /// absent, SENDER "org.freedesktop.systemd1", SIGNATURE "o", body an object path.
    fn systemd_reply(le: bool) -> Vec<u8> {
        let u32b = |n: u32| if le { n.to_le_bytes() } else { n.to_be_bytes() };
        let mut f = Vec::new();
        // (5, <u 3>)
        f.extend_from_slice(&[5, 1, b'u', 0]);
        f.extend_from_slice(&u32b(3));
        // (7, <s "org.freedesktop.systemd1">)
        f.extend_from_slice(&[7, 1, b's', 0]);
        let s = b"org.freedesktop.systemd1";
        f.extend_from_slice(&u32b(s.len() as u32));
        f.extend_from_slice(s);
        f.push(0);
        f.resize(align(f.len(), 8), 0);
        // (8, <g "o">)
        f.extend_from_slice(&[8, 1, b'g', 0, 1, b'o', 0]);
        let mut body = Vec::new();
        let path = b"/org/freedesktop/systemd1/job/42";
        body.extend_from_slice(&u32b(path.len() as u32));
        body.extend_from_slice(path);
        body.push(0);
        let mut m = vec![if le { b'l' } else { b'B' }, 2, 1, 1];
        m.extend_from_slice(&u32b(body.len() as u32));
        m.extend_from_slice(&u32b(9));
        m.extend_from_slice(&u32b(f.len() as u32));
        m.extend_from_slice(&f);
        m.resize(align(m.len(), 8), 0);
        m.extend_from_slice(&body);
        m
    }

    #[test]
    fn the_sender_field_is_removed() {
        for le in [true, false] {
            let m = systemd_reply(le);
            assert_eq!(message_len(&m), Ok(Some(m.len())));
            assert_eq!(message_len(&m[..m.len() - 1]), Ok(None));
            let out = strip_sender(&m).unwrap();
            assert_eq!(message_len(&out), Ok(Some(out.len())));
            assert!(!out.windows(24).any(|w| w == b"org.freedesktop.systemd1"));
            // Reply serial and signature survive, the body is unchanged.
            assert_eq!(&out[16..24], &m[16..24]);
            assert_eq!(&out[24..31], &[8, 1, b'g', 0, 1, b'o', 0]);
            assert!(out.ends_with(b"/org/freedesktop/systemd1/job/42\0"));
            // No sender: nothing to do.
            assert_eq!(strip_sender(&out), None);
        }
        assert_eq!(message_len(b"garbage and more bytes"), Err(()));
    }

    #[test]
    fn relay_passes_auth_then_strips() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("private");
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let server = thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 64];
            let n = s.read(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"\0AUTH EXTERNAL 30\r\n");
            s.write_all(b"OK 0123456789abcdef0123456789abcdef\r\n")
                .unwrap();
            let n = s.read(&mut buf).unwrap();
            // zbus sends BEGIN before the server's answer to NEGOTIATE_UNIX_FD.
            assert_eq!(&buf[..n], b"NEGOTIATE_UNIX_FD\r\nBEGIN\r\n");
            s.write_all(b"AGREE_UNIX_FD\r\n").unwrap();
            s.write_all(&systemd_reply(true)).unwrap();
        });
        let mut c = connect(&sock).unwrap();
        c.write_all(b"\0AUTH EXTERNAL 30\r\n").unwrap();
        let mut line = [0u8; 37];
        c.read_exact(&mut line).unwrap();
        assert!(line.starts_with(b"OK "));
        c.write_all(b"NEGOTIATE_UNIX_FD\r\nBEGIN\r\n").unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got).unwrap();
        server.join().unwrap();
        let mut want = b"AGREE_UNIX_FD\r\n".to_vec();
        want.extend(strip_sender(&systemd_reply(true)).unwrap());
        assert_eq!(got, want);
    }
}
