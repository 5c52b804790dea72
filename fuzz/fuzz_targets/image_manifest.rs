//! Manifests, indexes and image configs as a hostile registry serves them: the classifier and
//! the serde models never panic; an index's platform choice, a manifest's config descriptor check
//! and the config's summary run on whatever parsed. Errors must not repeat a large input whole
//! (they end up in gRPC answers).
#![no_main]

use crius::fuzzing::{
    Digest, Fetched, check_config_descriptor, parse_config, parse_manifest, select_platform,
};
use libfuzzer_sys::fuzz_target;

const PLATFORMS: &[(&str, &str, Option<&str>)] = &[
    ("linux", "amd64", None),
    ("linux", "arm64", Some("v8")),
    ("linux", "arm", Some("v7")),
];

fn bounded(input: &[u8], msg: String) {
    assert!(
        msg.len() <= 4096,
        "a {}-byte document gave a {}-byte error: {msg:.300}",
        input.len(),
        msg.len()
    );
}

fuzz_target!(|data: &[u8]| {
    let digest = Digest::of(data);
    match parse_manifest(data, &digest) {
        Ok(Fetched::Index(index)) => {
            for p in PLATFORMS {
                if let Some((d, _size)) = select_platform(&index, *p) {
                    assert!(d.to_string().contains(':'));
                }
            }
        }
        Ok(Fetched::Manifest(m)) => {
            let config = m.config();
            let _ = check_config_descriptor(
                &config.media_type().to_string(),
                config.size(),
                data,
                &digest,
            );
            for layer in m.layers() {
                let _ = Digest::parse(layer.digest().as_ref());
            }
        }
        Err(e) => bounded(data, e.to_string()),
    }
    match parse_config(data, &digest) {
        Ok(summary) => {
            for d in &summary.diff_ids {
                let _ = Digest::parse(&d.to_string()).expect("a parsed diff_id prints as a digest");
            }
        }
        Err(e) => bounded(data, e.to_string()),
    }
});
