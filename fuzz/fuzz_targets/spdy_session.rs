//! The SPDY/3.1 server session on a hostile byte stream: the real reader (frame heads, header
//! block inflation with the SPDY dictionary, stream table, FIN/RST handling) and writer run on an
//! in-memory connection; each stream the input opens is read to its end and answered. The
//! session must end (the input is finite) without a panic.
#![no_main]

use crius::fuzzing::SpdySession;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");
    let input = data.to_vec();
    rt.block_on(async move {
        let mut session = SpdySession::start(std::io::Cursor::new(input), tokio::io::sink());
        let mut tasks = Vec::new();
        while let Some(mut stream) = session.streams.recv().await {
            assert!(stream.id <= 0x7fff_ffff);
            let _ = stream.header("streamType");
            tasks.push(tokio::spawn(async move {
                let mut n = 0usize;
                while let Some(chunk) = stream.input.recv().await {
                    n += chunk.len();
                }
                stream.output.write(bytes_of(n)).await;
                stream.output.close().await;
            }));
        }
        for t in tasks {
            t.await.expect("stream task");
        }
        session.shutdown().await;
    });
});

fn bytes_of(n: usize) -> bytes::Bytes {
    bytes::Bytes::from(n.to_string().into_bytes())
}
