use super::*;

/// A frame as bytes.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    frame_header(&mut out, payload.len(), kind, flags, stream);
    out.extend_from_slice(payload);
    out.to_vec()
}

/// A request's header block as gRPC's C core writes its first one: `:authority` a literal
/// with incremental indexing under the static table's name (index 1), `:path` likewise
/// (index 4), `:method POST` and `:scheme http` indexed.
fn c_core_first_block(authority: &[u8], path: &[u8]) -> Vec<u8> {
    let mut b = vec![0x83, 0x86];
    for (index, value) in [(0x44u8, path), (0x41, authority)] {
        b.push(index);
        b.push(value.len() as u8);
        b.extend_from_slice(value);
    }
    b
}

/// Its next request on the same connection: the same two literals, now in the dynamic table
/// (62: the last added, `:authority`; 63: `:path`), as indexed fields.
const C_CORE_NEXT_BLOCK: [u8; 4] = [0x83, 0x86, 0x80 | 63, 0x80 | 62];

const SOCKET_AUTHORITY: &[u8] = b"%2Frun%2Fcrius%2Fcrius.sock";
const PATH: &[u8] = b"/runtime.v1.RuntimeService/Version";

/// A client's side of a connection: preface, SETTINGS, two requests with a DATA frame each.
fn c_core_connection(authority: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let data = frame(0x0, END_STREAM, 1, b"\0\0\0\0\x04\x0a\x02v1");
    let mut c = PREFACE.to_vec();
    c.extend(frame(0x4, 0, 0, &[]));
    c.extend(frame(
        HEADERS,
        END_HEADERS,
        1,
        &c_core_first_block(authority, PATH),
    ));
    c.extend(&data);
    c.extend(frame(HEADERS, END_HEADERS, 3, &C_CORE_NEXT_BLOCK));
    c.extend(frame(0x0, END_STREAM, 3, b"\0\0\0\0\x00"));
    (c, data)
}

/// Runs `input` through a fixer, fed `chunk` bytes at a time.
fn run(input: &[u8], chunk: usize) -> Vec<u8> {
    let mut fix = Fixer::new();
    let mut out = Vec::new();
    for piece in input.chunks(chunk) {
        fix.input.extend_from_slice(piece);
        while fix.process().unwrap() {}
        out.extend_from_slice(&fix.output.split());
    }
    out
}

/// The frames after the preface: (type, flags, stream, payload).
fn frames(mut bytes: &[u8]) -> Vec<(u8, u8, u32, Vec<u8>)> {
    assert_eq!(&bytes[..PREFACE.len()], PREFACE);
    bytes = &bytes[PREFACE.len()..];
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let len = usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]);
        let stream = u32::from_be_bytes(bytes[5..9].try_into().unwrap());
        out.push((
            bytes[3],
            bytes[4],
            stream,
            bytes[FRAME_HEADER..FRAME_HEADER + len].to_vec(),
        ));
        bytes = &bytes[FRAME_HEADER + len..];
    }
    out
}

/// Decodes the header blocks of `frames` in order, as h2 would (one context).
fn decoded_blocks(frames: &[(u8, u8, u32, Vec<u8>)]) -> Vec<Vec<(String, String)>> {
    let mut decoder = Decoder::new();
    let mut blocks = Vec::new();
    let mut block = Vec::new();
    for (kind, flags, _, payload) in frames {
        let (fragment, end) = match *kind {
            HEADERS => {
                let (_, f) = headers_payload(*flags, payload).unwrap();
                (f.to_vec(), flags & END_HEADERS != 0)
            }
            CONTINUATION => (payload.clone(), flags & END_HEADERS != 0),
            _ => continue,
        };
        block.extend(fragment);
        if end {
            let headers = decoder.decode(&block).unwrap();
            blocks.push(
                headers
                    .into_iter()
                    .map(|(n, v)| (String::from_utf8(n).unwrap(), String::from_utf8(v).unwrap()))
                    .collect(),
            );
            block.clear();
        }
    }
    blocks
}

fn header<'a>(block: &'a [(String, String)], name: &str) -> &'a str {
    &block.iter().find(|(n, _)| n == name).unwrap().1
}

#[test]
fn a_socket_path_authority_becomes_localhost_in_every_request() {
    let (input, data) = c_core_connection(SOCKET_AUTHORITY);
    for chunk in [1, 7, input.len()] {
        let out = run(&input, chunk);
        let frames = frames(&out);
        let blocks = decoded_blocks(&frames);
        assert_eq!(blocks.len(), 2, "chunk {chunk}");
        for block in &blocks {
            assert_eq!(header(block, ":authority"), "localhost");
            assert_eq!(header(block, ":path"), "/runtime.v1.RuntimeService/Version");
            assert_eq!(header(block, ":method"), "POST");
            assert_eq!(header(block, ":scheme"), "http");
            // Each is one that h2 takes.
            assert!(Authority::try_from(header(block, ":authority")).is_ok());
        }
        // Everything but the header blocks is as it came.
        assert_eq!(frames[0], (0x4, 0, 0, Vec::new()));
        assert_eq!(frames[2].3, data[FRAME_HEADER..]);
        assert_eq!((frames[1].1, frames[1].2), (END_HEADERS, 1));
        assert_eq!((frames[3].1, frames[3].2), (END_HEADERS, 3));
    }
}

#[test]
fn an_authority_h2_takes_leaves_the_connection_byte_for_byte() {
    for authority in [&b"localhost"[..], b"localhost:10000", b"crius.sock"] {
        let (input, _) = c_core_connection(authority);
        assert_eq!(
            run(&input, 5),
            input,
            "{}",
            String::from_utf8_lossy(authority)
        );
    }
}

#[test]
fn padding_priority_and_continuation_frames_are_read_and_a_large_block_is_split() {
    // One block over two frames: a padded HEADERS frame with a priority, then CONTINUATION.
    let big = vec![b'x'; 20_000];
    let mut block = c_core_first_block(b"%2Fs", PATH);
    // `x-big: <20000 bytes>`, a literal without indexing and a new name.
    block.extend([0x00, 5]);
    block.extend(b"x-big");
    block.extend([0x7f, 0xa1, 0x9b, 0x01]); // 20000 = 127 + 19873 (0xa1 0x9b 0x01)
    block.extend(&big);
    let (head, tail) = block.split_at(10);
    let mut payload = vec![3];
    payload.extend([0x80, 0, 0, 1, 15]);
    payload.extend(head);
    payload.extend([0, 0, 0]);
    let mut input = PREFACE.to_vec();
    input.extend(frame(HEADERS, PADDED | PRIORITY, 5, &payload));
    // CONTINUATION frames of at most 16384 bytes, as the client's peer allows.
    let mut rest = tail;
    while !rest.is_empty() {
        let n = rest.len().min(MAX_FRAME);
        let flags = if n == rest.len() { END_HEADERS } else { 0 };
        input.extend(frame(CONTINUATION, flags, 5, &rest[..n]));
        rest = &rest[n..];
    }
    let out = run(&input, 4096);
    let frames = frames(&out);
    assert!(frames.iter().all(|f| f.3.len() <= MAX_FRAME));
    assert_eq!(frames[0].0, HEADERS);
    assert_eq!(frames[0].1, PRIORITY, "padding dropped, not the last frame");
    assert_eq!(&frames[0].3[..5], &[0x80, 0, 0, 1, 15]);
    assert!(frames[1..].iter().all(|f| f.0 == CONTINUATION && f.2 == 5));
    assert_eq!(frames.last().unwrap().1, END_HEADERS);
    let blocks = decoded_blocks(&frames);
    assert_eq!(header(&blocks[0], ":authority"), "localhost");
    assert_eq!(header(&blocks[0], "x-big").len(), 20_000);
}

#[test]
fn a_header_block_interrupted_by_another_frame_ends_the_connection() {
    let mut input = PREFACE.to_vec();
    input.extend(frame(HEADERS, 0, 1, &[0x83]));
    input.extend(frame(0x0, 0, 1, b"x"));
    let mut fix = Fixer::new();
    fix.input.extend_from_slice(&input);
    let err = loop {
        match fix.process() {
            Ok(true) => {}
            Ok(false) => panic!("accepted"),
            Err(e) => break e,
        }
    };
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
}

#[tokio::test]
async fn reads_through_the_adapter_give_the_fixed_stream() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (input, _) = c_core_connection(SOCKET_AUTHORITY);
    let (mut client, server) = tokio::io::duplex(64);
    let writer = tokio::spawn(async move {
        client.write_all(&input).await.unwrap();
        client.shutdown().await.unwrap();
        // Kept open until read: the duplex ends when both halves are gone.
        client
    });
    let mut fixed = AuthorityFix::new(server);
    let mut out = Vec::new();
    fixed.read_to_end(&mut out).await.unwrap();
    drop(writer.await.unwrap());
    let blocks = decoded_blocks(&frames(&out));
    assert_eq!(blocks.len(), 2);
    assert!(
        blocks
            .iter()
            .all(|b| header(b, ":authority") == "localhost")
    );
}

#[test]
fn a_connection_that_is_not_http2_passes_untouched() {
    let mut input = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    // Bytes that would read as a HEADERS frame header without END_HEADERS.
    input.extend(frame(HEADERS, 0, 1, &[0x83]));
    assert_eq!(run(&input, 3), input);
}
