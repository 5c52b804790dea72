//! The `:authority` of gRPC clients built on gRPC's C core (Python's `grpcio`, C++, Ruby).
//!
//! For a `unix:` target such a client sends the socket path, percent-encoded, as the request's
//! `:authority` (`%2Frun%2Fcrius%2Fcrius.sock`, or `run%2Fcrius%2Fcrius.sock` for
//! `unix:///run/…`; C core ≥ 1.57). HTTP/2 allows no `%` or `/` in a host, and h2 (under tonic)
//! refuses the stream with RST_STREAM(PROTOCOL_ERROR) before crius sees it — every call fails.
//! grpc-go, under containerd and cri-o, does not look at the authority, so those answer them.
//!
//! [`AuthorityFix`] sits between the socket and h2 and reads the client's side of the
//! connection. It decodes the first request's header block (HPACK, `loona-hpack`); if its
//! `:authority` is one h2 accepts (grpc-go's and tonic's `localhost`, crictl, the kubelet) the
//! connection is passed through unchanged from then on, byte for byte. Otherwise every header
//! block of that connection is decoded with the client's compression context and encoded anew
//! for h2 with `:authority: localhost` — what the client would send with
//! `grpc.default_authority=localhost`. Everything else (DATA, SETTINGS, …, and the whole
//! server-to-client side) passes through untouched. Handlers never read the authority.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BytesMut};
use loona_hpack::{Decoder, Encoder};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::codegen::http::uri::Authority;
use tonic::transport::server::Connected;

/// What a client's connection starts with (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADER: usize = 9;
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// The largest frame payload every HTTP/2 peer takes (SETTINGS_MAX_FRAME_SIZE's initial value;
/// tonic does not raise it): the frames this layer writes stay within it.
const MAX_FRAME: usize = 16_384;
/// The largest header block this layer holds while it is being received.
const MAX_BLOCK: usize = 1 << 20;
/// The dynamic table size h2 announces (SETTINGS_HEADER_TABLE_SIZE's initial value): the
/// client's encoder works within it, and so does this layer's towards h2.
const TABLE_SIZE: usize = 4096;
/// What a refused authority is replaced with.
const LOCALHOST: &[u8] = b"localhost";

/// The client's side of one connection, with refused `:authority` values replaced (see the
/// module docs); writes go straight to the socket.
pub struct AuthorityFix<S> {
    inner: S,
    fix: Fixer,
    eof: bool,
}

impl<S> AuthorityFix<S> {
    pub fn new(inner: S) -> Self {
        AuthorityFix {
            inner,
            fix: Fixer::new(),
            eof: false,
        }
    }
}

/// The frame-level state of the client's byte stream.
struct Fixer {
    /// Read from the client, not looked at yet.
    input: BytesMut,
    /// Ready for h2.
    output: BytesMut,
    state: State,
    mode: Mode,
    /// A header block whose CONTINUATION frames are still coming.
    pending: Option<Block>,
}

enum State {
    /// Bytes of the connection preface still to pass.
    Preface(usize),
    /// At a frame boundary.
    FrameHeader,
    /// Bytes of a frame's payload still to pass unchanged.
    Forward(usize),
    /// Everything passes unchanged from here on.
    PassThrough,
}

enum Mode {
    /// The first header block has not been seen: the decoder follows the client's context.
    Undecided(Box<Decoder<'static>>),
    /// Every header block is decoded and encoded anew.
    Rewrite(Box<(Decoder<'static>, Encoder<'static>)>),
}

/// One header block: its HEADERS frame's stream and flags, its fragments, and the frames as
/// they came.
struct Block {
    stream: u32,
    end_stream: bool,
    priority: Option<[u8; 5]>,
    fragment: Vec<u8>,
    raw: Vec<u8>,
}

fn invalid(message: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

impl Fixer {
    fn new() -> Fixer {
        let mut decoder = Decoder::new();
        decoder.set_max_allowed_table_size(TABLE_SIZE);
        Fixer {
            input: BytesMut::new(),
            output: BytesMut::new(),
            state: State::Preface(PREFACE.len()),
            mode: Mode::Undecided(Box::new(decoder)),
            pending: None,
        }
    }

    fn passing_through(&self) -> bool {
        matches!(self.state, State::PassThrough)
    }

    /// Whether the input so far goes on the connection preface (`left` bytes of it to come).
    fn preface_matches(&self, left: usize) -> bool {
        let seen = PREFACE.len() - left;
        let n = left.min(self.input.len());
        self.input[..n] == PREFACE[seen..seen + n]
    }

    /// Moves what it can from `input` to `output`; false when it needs more input.
    fn process(&mut self) -> io::Result<bool> {
        match self.state {
            State::Preface(left) if !self.preface_matches(left) => {
                // Not HTTP/2: h2 refuses it on its own.
                self.state = State::PassThrough;
                Ok(true)
            }
            State::Preface(left) | State::Forward(left) => {
                let n = left.min(self.input.len());
                if n == 0 && left > 0 {
                    return Ok(false);
                }
                self.output.extend_from_slice(&self.input.split_to(n));
                self.state = match (&self.state, left - n) {
                    (_, 0) => State::FrameHeader,
                    (State::Preface(_), rest) => State::Preface(rest),
                    (_, rest) => State::Forward(rest),
                };
                Ok(true)
            }
            State::PassThrough => {
                if self.input.is_empty() {
                    return Ok(false);
                }
                let all = self.input.split();
                self.output.extend_from_slice(&all);
                Ok(true)
            }
            State::FrameHeader => self.frame(),
        }
    }

    /// At a frame boundary: a header block's frame is taken whole, any other passes on.
    fn frame(&mut self) -> io::Result<bool> {
        if self.input.len() < FRAME_HEADER {
            return Ok(false);
        }
        let h = &self.input[..FRAME_HEADER];
        let len = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
        let (kind, flags) = (h[3], h[4]);
        let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
        let in_block = self.pending.is_some();
        let block_frame = kind == HEADERS && !in_block || kind == CONTINUATION && in_block;
        if !block_frame {
            if in_block {
                // h2 ends the connection for this (RFC 9113 §6.10); so do we.
                return Err(invalid("a header block was interrupted by another frame"));
            }
            self.output
                .extend_from_slice(&self.input.split_to(FRAME_HEADER));
            self.state = State::Forward(len);
            return Ok(true);
        }
        let held = self.pending.as_ref().map_or(0, |b| b.raw.len());
        if held + FRAME_HEADER + len > MAX_BLOCK {
            return Err(invalid("a header block is larger than 1 MiB"));
        }
        if self.input.len() < FRAME_HEADER + len {
            return Ok(false);
        }
        let raw = self.input.split_to(FRAME_HEADER + len);
        let payload = &raw[FRAME_HEADER..];
        if kind == CONTINUATION {
            if let Some(block) = self.pending.as_mut() {
                block.fragment.extend_from_slice(payload);
                block.raw.extend_from_slice(&raw);
            }
        } else {
            let Some((priority, fragment)) = headers_payload(flags, payload) else {
                // Malformed: h2 ends the connection with its own error.
                self.output.extend_from_slice(&raw);
                self.state = State::PassThrough;
                return Ok(true);
            };
            self.pending = Some(Block {
                stream,
                end_stream: flags & END_STREAM != 0,
                priority,
                fragment: fragment.to_vec(),
                raw: raw.to_vec(),
            });
        }
        if flags & END_HEADERS != 0
            && let Some(block) = self.pending.take()
        {
            self.finish(block)?;
        }
        Ok(true)
    }

    /// A whole header block: passed as it came, or encoded anew (see the module docs).
    fn finish(&mut self, block: Block) -> io::Result<()> {
        match &mut self.mode {
            Mode::Undecided(decoder) => {
                let Ok(headers) = decoder.decode(&block.fragment) else {
                    // h2 finds the same fault in the same bytes.
                    self.output.extend_from_slice(&block.raw);
                    self.state = State::PassThrough;
                    return Ok(());
                };
                if !headers.iter().any(|(n, v)| refused_authority(n, v)) {
                    self.output.extend_from_slice(&block.raw);
                    self.state = State::PassThrough;
                    return Ok(());
                }
                if let Some((_, v)) = headers.iter().find(|(n, v)| refused_authority(n, v)) {
                    tracing::debug!(
                        authority = %String::from_utf8_lossy(v),
                        "a client sent an :authority HTTP/2 does not allow (a gRPC C-core client on a unix socket); its calls are served as localhost"
                    );
                }
                let decoder = std::mem::take(decoder.as_mut());
                let mut encoder = Encoder::new();
                encoder.set_max_table_size(TABLE_SIZE);
                self.mode = Mode::Rewrite(Box::new((decoder, encoder)));
                self.emit(&block, headers);
                Ok(())
            }
            Mode::Rewrite(codec) => {
                let headers = codec
                    .0
                    .decode(&block.fragment)
                    .map_err(|_| invalid("a header block does not decode"))?;
                self.emit(&block, headers);
                Ok(())
            }
        }
    }

    /// Encodes `headers`, refused authorities replaced, as `block`'s frames.
    fn emit(&mut self, block: &Block, headers: Vec<(Vec<u8>, Vec<u8>)>) {
        let Mode::Rewrite(codec) = &mut self.mode else {
            return;
        };
        let encoded = codec.1.encode(headers.iter().map(|(n, v)| {
            let v: &[u8] = if refused_authority(n, v) {
                LOCALHOST
            } else {
                v
            };
            (n.as_slice(), v)
        }));
        write_block(&mut self.output, block, &encoded);
    }
}

/// The priority and the block fragment of a HEADERS frame's payload; `None` if malformed.
fn headers_payload(flags: u8, payload: &[u8]) -> Option<(Option<[u8; 5]>, &[u8])> {
    let mut rest = payload;
    let mut pad = 0;
    if flags & PADDED != 0 {
        pad = usize::from(*rest.first()?);
        rest = &rest[1..];
    }
    let mut priority = None;
    if flags & PRIORITY != 0 {
        priority = Some(rest.get(..5)?.try_into().ok()?);
        rest = &rest[5..];
    }
    let end = rest.len().checked_sub(pad)?;
    Some((priority, &rest[..end]))
}

/// Whether `name` is `:authority` and h2 refuses `value` (as its server does, with http's
/// parser).
fn refused_authority(name: &[u8], value: &[u8]) -> bool {
    name == b":authority" && Authority::try_from(value).is_err()
}

/// `block`'s HEADERS frame (and CONTINUATION frames as needed) carrying `encoded`.
fn write_block(out: &mut BytesMut, block: &Block, encoded: &[u8]) {
    let prefix = if block.priority.is_some() { 5 } else { 0 };
    let first = encoded.len().min(MAX_FRAME - prefix);
    let mut flags = if block.end_stream { END_STREAM } else { 0 };
    if block.priority.is_some() {
        flags |= PRIORITY;
    }
    if first == encoded.len() {
        flags |= END_HEADERS;
    }
    frame_header(out, prefix + first, HEADERS, flags, block.stream);
    if let Some(p) = &block.priority {
        out.extend_from_slice(p);
    }
    out.extend_from_slice(&encoded[..first]);
    let mut rest = &encoded[first..];
    while !rest.is_empty() {
        let n = rest.len().min(MAX_FRAME);
        let flags = if n == rest.len() { END_HEADERS } else { 0 };
        frame_header(out, n, CONTINUATION, flags, block.stream);
        out.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
    }
}

fn frame_header(out: &mut BytesMut, len: usize, kind: u8, flags: u8, stream: u32) {
    let len = len.to_be_bytes();
    let n = len.len();
    out.extend_from_slice(&len[n - 3..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
}

impl<S: AsyncRead + Unpin> AsyncRead for AuthorityFix<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            let fix = &mut this.fix;
            if !fix.output.is_empty() {
                let n = buf.remaining().min(fix.output.len());
                buf.put_slice(&fix.output[..n]);
                fix.output.advance(n);
                return Poll::Ready(Ok(()));
            }
            if fix.passing_through() && fix.input.is_empty() {
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            if fix.process()? {
                continue;
            }
            if this.eof {
                // A frame cut short: h2 sees the same end.
                let rest = fix.input.split();
                if rest.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                fix.output.extend_from_slice(&rest);
                continue;
            }
            let mut chunk = [0u8; 8192];
            let mut read = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            if read.filled().is_empty() {
                this.eof = true;
            } else {
                fix.input.extend_from_slice(read.filled());
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for AuthorityFix<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl<S: Connected> Connected for AuthorityFix<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests;
