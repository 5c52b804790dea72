//! SPDY/3 header compression: one zlib stream per direction for the whole connection, primed
//! with the dictionary of the SPDY/3 draft, each header block ended by a sync flush.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::SpdyError;

/// The 1423-byte dictionary of the SPDY/3 draft, section 2.6.10.1.
const DICTIONARY: &[u8] = include_bytes!("dictionary.bin");
/// Most bytes a header block may inflate to; k8s peers send a few short headers.
const MAX_HEADER_BLOCK: usize = 256 * 1024;

pub struct HeaderCompressor {
    z: Compress,
}

impl HeaderCompressor {
    pub fn new() -> Result<Self, SpdyError> {
        let mut z = Compress::new(Compression::default(), true);
        z.set_dictionary(DICTIONARY)
            .map_err(|e| SpdyError::Zlib(e.to_string()))?;
        Ok(HeaderCompressor { z })
    }

    pub fn compress(&mut self, input: &[u8]) -> Result<Vec<u8>, SpdyError> {
        let mut out = Vec::with_capacity(input.len() + 64);
        let start = self.z.total_in();
        loop {
            let done = (self.z.total_in() - start) as usize;
            out.reserve(256);
            self.z
                .compress_vec(&input[done..], &mut out, FlushCompress::Sync)
                .map_err(|e| SpdyError::Zlib(e.to_string()))?;
            let done = (self.z.total_in() - start) as usize;
            // A sync flush is complete once all input went in and the output did not fill up.
            if done == input.len() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }
}

pub struct HeaderDecompressor {
    z: Decompress,
}

impl HeaderDecompressor {
    pub fn new() -> Self {
        HeaderDecompressor {
            z: Decompress::new(true),
        }
    }

    pub fn decompress(&mut self, input: &[u8]) -> Result<Vec<u8>, SpdyError> {
        let mut out = Vec::with_capacity(input.len() * 4 + 256);
        let start = self.z.total_in();
        loop {
            let done = (self.z.total_in() - start) as usize;
            out.reserve(1024);
            match self
                .z
                .decompress_vec(&input[done..], &mut out, FlushDecompress::Sync)
            {
                Ok(Status::StreamEnd) => return Err(SpdyError::Zlib("header stream ended".into())),
                Ok(_) => {}
                // The first block asks for the dictionary (the stream's FDICT flag).
                Err(e) if e.needs_dictionary().is_some() => {
                    self.z
                        .set_dictionary(DICTIONARY)
                        .map_err(|e| SpdyError::Zlib(e.to_string()))?;
                }
                Err(e) => return Err(SpdyError::Zlib(e.to_string())),
            }
            if out.len() > MAX_HEADER_BLOCK {
                return Err(SpdyError::Protocol("header block too large".into()));
            }
            let done = (self.z.total_in() - start) as usize;
            if done == input.len() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }
}

/// Header blocks: `[count u32]` then `[len u32][name][len u32][value]` per header; several
/// values of one name are joined by NUL. Names are lowercase on the wire.
pub fn encode_block(headers: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    for (name, value) in headers {
        for part in [name.to_ascii_lowercase().as_bytes(), value.as_bytes()] {
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part);
        }
    }
    out
}

/// Headers with lowercase names, multi-values split at NUL.
pub fn decode_block(block: &[u8]) -> Result<Vec<(String, String)>, SpdyError> {
    let bad = || SpdyError::Protocol("malformed header block".into());
    let mut rest = block;
    let take_u32 = |rest: &mut &[u8]| -> Result<usize, SpdyError> {
        let (head, tail) = rest.split_first_chunk::<4>().ok_or_else(bad)?;
        *rest = tail;
        Ok(u32::from_be_bytes(*head) as usize)
    };
    let count = take_u32(&mut rest)?;
    let mut headers = Vec::new();
    for _ in 0..count {
        let field = |rest: &mut &[u8]| -> Result<String, SpdyError> {
            let len = take_u32(rest)?;
            if rest.len() < len {
                return Err(bad());
            }
            let (value, tail) = rest.split_at(len);
            *rest = tail;
            Ok(String::from_utf8_lossy(value).into_owned())
        };
        let name = field(&mut rest)?.to_ascii_lowercase();
        let value = field(&mut rest)?;
        for part in value.split('\0') {
            headers.push((name.clone(), part.to_owned()));
        }
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_round_trip_through_both_zlib_streams() {
        let mut c = HeaderCompressor::new().unwrap();
        let mut d = HeaderDecompressor::new();
        for i in 0..3 {
            let port = i.to_string();
            let block = encode_block(&[("streamType", "data"), ("port", &port)]);
            let wire = c.compress(&block).unwrap();
            let back = decode_block(&d.decompress(&wire).unwrap()).unwrap();
            assert_eq!(
                back,
                vec![
                    ("streamtype".to_string(), "data".to_string()),
                    ("port".to_string(), port.clone())
                ]
            );
        }
        assert_eq!(DICTIONARY.len(), 1423);
    }

    #[test]
    fn malformed_blocks_are_errors() {
        assert!(decode_block(&[0, 0, 0, 1, 0, 0, 0, 9, b'a']).is_err());
        assert!(decode_block(&[0, 0]).is_err());
        assert_eq!(decode_block(&[0, 0, 0, 0]).unwrap(), vec![]);
    }
}
