//! The image reference parser: never panics, and what it accepts is normalised for good - the
//! printed form of a parsed reference parses back to the same reference, with the name within
//! the length limit and a tag or a digest always present. Errors quote the input only briefly.
#![no_main]

use crius::fuzzing::ImageRef;
use libfuzzer_sys::fuzz_target;

/// Default registries a node may configure: Docker Hub (with its `library/` rule) and another.
const DEFAULTS: &[&str] = &["docker.io", "registry.example:5000"];

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = ImageRef::is_short_name(s);
    for default in DEFAULTS {
        match ImageRef::parse(s, default) {
            Ok(r) => {
                assert!(
                    r.tag().is_some() || r.digest().is_some(),
                    "{s:?}: no tag, no digest"
                );
                assert!(r.name().len() <= 255, "{s:?}: name over 255 bytes");
                let printed = r.to_string();
                let again = ImageRef::parse(&printed, default).unwrap_or_else(|e| {
                    panic!("{s:?} parsed to {printed:?}, which does not parse: {e}")
                });
                assert_eq!(again, r, "{s:?} printed as {printed:?} parses differently");
                let _ = r.repo_tag();
                let _ = oci_client_reference(&r);
                let mirrored = r.with_registry("mirror.example");
                assert_eq!(mirrored.repository(), r.repository());
            }
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    msg.len() <= 4096,
                    "a {}-byte input gave a {}-byte error: {msg:.300}",
                    s.len(),
                    msg.len()
                );
            }
        }
    }
});

/// The conversion a pull hands to the registry client.
fn oci_client_reference(r: &ImageRef) -> String {
    r.repo_digest("sha256:0000000000000000000000000000000000000000000000000000000000000000")
}
