//! The layer byte stream: decompression, diff_id hashing and error attribution.

use std::fmt;
use std::io::{self, BufReader, Read};

use flate2::bufread::MultiGzDecoder;
use sha2::{Digest, Sha256};

use super::{Compression, UnpackError};

/// Big reads keep syscalls and decoder calls cheap on multi-GB layers.
const READ_BUFFER: usize = 128 * 1024;

/// Where in the pipeline an I/O error arose.
#[derive(Debug, Clone, Copy)]
enum Stage {
    Source,
    Decompress,
}

/// Errors pass through the tar parser as plain `io::Error`s; this tag lets
/// us still tell a broken source or a corrupt compressed stream from a
/// malformed tar.
#[derive(Debug)]
struct StageError {
    stage: Stage,
    source: io::Error,
}

impl fmt::Display for StageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.source.fmt(f)
    }
}

impl std::error::Error for StageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

fn is_tagged(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<StageError>())
}

fn tag(e: io::Error, stage: Stage) -> io::Error {
    // Interrupted must stay recognisable so readers retry; an inner stage's
    // tag is the more precise one.
    if is_tagged(&e) || e.kind() == io::ErrorKind::Interrupted {
        return e;
    }
    io::Error::new(e.kind(), StageError { stage, source: e })
}

struct Tagged<R> {
    inner: R,
    stage: Stage,
}

impl<R: Read> Read for Tagged<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| tag(e, self.stage))
    }
}

type Source<R> = BufReader<Tagged<R>>;

// One decoder per layer, never moved around: its size does not matter (zlib-rs's state is big).
#[allow(clippy::large_enum_variant)]
enum Decoder<R: Read> {
    Plain(Source<R>),
    Gzip(Tagged<MultiGzDecoder<Source<R>>>),
    Zstd(Tagged<zstd::stream::read::Decoder<'static, Source<R>>>),
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(r) => r.read(buf),
            Self::Gzip(r) => r.read(buf),
            Self::Zstd(r) => r.read(buf),
        }
    }
}

/// The uncompressed tar stream, hashed as it is read.
pub(super) struct LayerStream<R: Read> {
    inner: Decoder<R>,
    hasher: Sha256,
}

impl<R: Read> Read for LayerStream<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

impl<R: Read> LayerStream<R> {
    pub(super) fn new(reader: R, compression: Compression) -> io::Result<Self> {
        let source = BufReader::with_capacity(
            READ_BUFFER,
            Tagged {
                inner: reader,
                stage: Stage::Source,
            },
        );
        let inner = match compression {
            Compression::None => Decoder::Plain(source),
            Compression::Gzip => Decoder::Gzip(Tagged {
                // Multi-member: some tools write layers as concatenated gzip members.
                inner: MultiGzDecoder::new(source),
                stage: Stage::Decompress,
            }),
            Compression::Zstd => Decoder::Zstd(Tagged {
                inner: zstd::stream::read::Decoder::with_buffer(source)
                    .map_err(|e| tag(e, Stage::Decompress))?,
                stage: Stage::Decompress,
            }),
        };
        Ok(Self {
            inner,
            hasher: Sha256::new(),
        })
    }

    /// Reads to the end of the stream - the diff_id covers everything after
    /// the end-of-archive marker too - and returns `sha256:<hex>`.
    pub(super) fn finish(mut self) -> io::Result<String> {
        io::copy(&mut self, &mut io::sink())?;
        Ok(format!("sha256:{}", hex::encode(self.hasher.finalize())))
    }
}

/// Maps an error met while reading the layer stream to what actually failed.
pub(super) fn read_error(e: io::Error, compression: Compression) -> UnpackError {
    if !is_tagged(&e) {
        return UnpackError::Tar(e);
    }
    let kind = e.kind();
    let tagged = match e.into_inner().map(|inner| inner.downcast::<StageError>()) {
        Some(Ok(tagged)) => tagged,
        Some(Err(other)) => return UnpackError::Tar(io::Error::new(kind, other)),
        None => return UnpackError::Tar(io::Error::from(kind)),
    };
    match tagged.stage {
        Stage::Source => UnpackError::Read(tagged.source),
        Stage::Decompress => UnpackError::Decompress {
            compression,
            source: tagged.source,
        },
    }
}
