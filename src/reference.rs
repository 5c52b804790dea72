//! Image references (`[registry/]repository[:tag][@digest]`), parsed and normalised the way
//! docker and containerd do (distribution/reference's `ParseNormalizedNamed`).
//!
//! The grammar is written out here instead of delegating to `oci_client::Reference` (oci-spec's
//! parser) because that parser hard-codes docker.io as the default registry, rejects IPv6
//! registry hosts, accepts uppercase hex in digests and reports only "invalid reference format".
//! Each check below mirrors one of distribution/reference's regexps, and a test cross-checks the
//! results against oci-spec's parser on the inputs where both are meant to agree.

use std::fmt;
use std::net::Ipv6Addr;

const DOCKER_HUB: &str = "docker.io";
/// Docker rewrites only this legacy host to `docker.io` in references.
const DOCKER_HUB_LEGACY: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
const DEFAULT_TAG: &str = "latest";
/// distribution/reference's `NameTotalLengthMax`, counted over `registry/repository`.
const NAME_TOTAL_LENGTH_MAX: usize = 255;
const TAG_LENGTH_MAX: usize = 128;

/// A parsed, normalised image reference. Always has a tag, a digest, or both.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

/// Why a reference (or the configured default registry) was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid image reference {}: {reason}", crate::validate::quote(input))]
    Invalid {
        input: String,
        reason: InvalidReason,
    },
    #[error("invalid default registry {registry:?}: {reason}")]
    InvalidDefaultRegistry {
        registry: String,
        reason: InvalidReason,
    },
}

/// The specific rule a reference broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidReason {
    #[error("reference is empty")]
    Empty,
    #[error("a reference must not contain a URL scheme (drop the \"scheme://\" prefix)")]
    Scheme,
    #[error("a 64-character hex string is an image ID, not a repository name")]
    HexIdentifier,
    #[error("repository name is empty")]
    EmptyName,
    #[error("repository name {} must be lowercase", crate::validate::quote(.0))]
    Uppercase(String),
    #[error("repository name {} has an empty path component", crate::validate::quote(.0))]
    EmptyComponent(String),
    #[error(
        "repository path component {} is invalid: use lowercase letters and digits, \
         separated by '.', '_', '__' or runs of '-'",
        crate::validate::quote(.0)
    )]
    BadComponent(String),
    #[error("repository name is longer than {NAME_TOTAL_LENGTH_MAX} characters")]
    NameTooLong,
    #[error("registry host {} is invalid: {}", crate::validate::quote(.0), .1)]
    BadRegistry(String, &'static str),
    #[error("tag is empty")]
    EmptyTag,
    #[error("tag {} is invalid: it must match [A-Za-z0-9_][A-Za-z0-9_.-]*", crate::validate::quote(.0))]
    BadTag(String),
    #[error("tag is longer than {TAG_LENGTH_MAX} characters")]
    TagTooLong,
    #[error("digest {} is not of the form algorithm:hex", crate::validate::quote(.0))]
    BadDigestFormat(String),
    #[error("digest algorithm {} is not supported (sha256, sha384, sha512 are)", crate::validate::quote(.0))]
    UnsupportedDigestAlgorithm(String),
    #[error(
        "digest {} is invalid: {algorithm} needs exactly {len} lowercase hex characters",
        crate::validate::quote(digest)
    )]
    BadDigestHex {
        digest: String,
        algorithm: &'static str,
        len: usize,
    },
}

impl ImageRef {
    /// Parses `s`; a name without a registry host gets `default_registry` (e.g. "docker.io");
    /// docker.io single-component repos get "library/"; no tag and no digest → tag "latest".
    pub fn parse(s: &str, default_registry: &str) -> Result<ImageRef, ReferenceError> {
        let invalid = |reason| ReferenceError::Invalid {
            input: s.to_owned(),
            reason,
        };

        if s.is_empty() {
            return Err(invalid(InvalidReason::Empty));
        }
        if s.contains("://") {
            return Err(invalid(InvalidReason::Scheme));
        }
        // Docker refuses these so that an image ID is never mistaken for a repository name.
        if s.len() == 64 && is_lower_hex(s) {
            return Err(invalid(InvalidReason::HexIdentifier));
        }

        let (rest, digest) = match s.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest)),
            None => (s, None),
        };
        if let Some(d) = digest {
            validate_digest(d).map_err(invalid)?;
        }

        let (domain, remainder) = split_domain(rest);
        // The path never contains ':', so the first one (after the host) starts the tag.
        let (path, tag) = match remainder.split_once(':') {
            Some((path, tag)) => (path, Some(tag)),
            None => (remainder, None),
        };
        validate_path(path).map_err(invalid)?;
        if let Some(t) = tag {
            validate_tag(t).map_err(invalid)?;
        }

        let registry = match domain {
            Some(d) => {
                validate_domain(d).map_err(invalid)?;
                normalize_registry(d)
            }
            None => {
                validate_domain(default_registry).map_err(|reason| {
                    ReferenceError::InvalidDefaultRegistry {
                        registry: default_registry.to_owned(),
                        reason,
                    }
                })?;
                normalize_registry(default_registry)
            }
        };

        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("{OFFICIAL_REPO_PREFIX}{path}")
        } else {
            path.to_owned()
        };
        if registry.len() + 1 + repository.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(invalid(InvalidReason::NameTooLong));
        }

        let tag = match (tag, digest) {
            (None, None) => Some(DEFAULT_TAG.to_owned()),
            (t, _) => t.map(str::to_owned),
        };
        Ok(ImageRef {
            registry,
            repository,
            tag,
            digest: digest.map(str::to_owned),
        })
    }

    /// True when `s` names no registry (docker's rule: the first component is a registry only
    /// if it contains '.' or ':' or is "localhost").
    pub fn is_short_name(s: &str) -> bool {
        let name = s.split_once('@').map_or(s, |(name, _)| name);
        split_domain(name).0.is_none()
    }

    pub fn registry(&self) -> &str {
        &self.registry
    }

    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// `registry/repository`, e.g. "docker.io/library/busybox".
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// "docker.io/library/busybox:latest" when there is a tag.
    pub fn repo_tag(&self) -> Option<String> {
        self.tag.as_ref().map(|t| format!("{}:{t}", self.name()))
    }

    /// "docker.io/library/busybox@sha256:…" for a given manifest digest.
    pub fn repo_digest(&self, manifest_digest: &str) -> String {
        format!("{}@{manifest_digest}", self.name())
    }

    /// The same reference on another registry host (for mirrors): keeps repository/tag/digest.
    pub fn with_registry(&self, registry: &str) -> ImageRef {
        ImageRef {
            registry: normalize_registry(registry),
            ..self.clone()
        }
    }
}

impl fmt::Display for ImageRef {
    /// Full form: `name[:tag][@digest]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// For handing a parsed reference to `oci_client::Client`, which pulls by digest when one is set.
impl From<&ImageRef> for oci_client::Reference {
    fn from(r: &ImageRef) -> Self {
        let (registry, repository) = (r.registry.clone(), r.repository.clone());
        match (r.tag.clone(), r.digest.clone()) {
            (Some(t), Some(d)) => {
                oci_client::Reference::with_tag_and_digest(registry, repository, t, d)
            }
            (None, Some(d)) => oci_client::Reference::with_digest(registry, repository, d),
            (t, None) => oci_client::Reference::with_tag(
                registry,
                repository,
                t.unwrap_or_else(|| DEFAULT_TAG.to_owned()),
            ),
        }
    }
}

fn normalize_registry(registry: &str) -> String {
    if registry == DOCKER_HUB_LEGACY {
        DOCKER_HUB.to_owned()
    } else {
        registry.to_owned()
    }
}

/// distribution's `splitDockerDomain`, minus its newest twist (an uppercase first component
/// counts as a host): the first component is a host only if it has '.' or ':' or is "localhost".
fn split_domain(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `host[:port]`, where host is a DNS name (`[a-zA-Z0-9]` components, inner '-') or `[ipv6]`.
fn validate_domain(domain: &str) -> Result<(), InvalidReason> {
    let bad = |why| Err(InvalidReason::BadRegistry(domain.to_owned(), why));
    let (host, port) = if domain.starts_with('[') {
        let Some(end) = domain.find(']') else {
            return bad("unterminated '[' in IPv6 address");
        };
        let (host, after) = domain.split_at(end + 1);
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return bad("expected ':port' after the IPv6 address"),
            },
        }
    } else {
        match domain.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (domain, None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return bad("port must be a non-empty decimal number");
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        // distribution only allows hex digits and ':' here; parsing also rejects nonsense like "[:::]".
        let hex_colon = inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
        if !hex_colon || inner.parse::<Ipv6Addr>().is_err() {
            return bad("not a valid IPv6 address");
        }
        return Ok(());
    }
    if host.is_empty() {
        return bad("host name is empty");
    }
    for label in host.split('.') {
        let bytes = label.as_bytes();
        let ok = match (bytes.first(), bytes.last()) {
            (Some(first), Some(last)) => {
                first.is_ascii_alphanumeric()
                    && last.is_ascii_alphanumeric()
                    && bytes
                        .iter()
                        .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
            }
            _ => false,
        };
        if !ok {
            return bad("host name labels are letters, digits and inner '-', separated by '.'");
        }
    }
    Ok(())
}

/// Path components: `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`, joined by '/'.
fn validate_path(path: &str) -> Result<(), InvalidReason> {
    if path.is_empty() {
        return Err(InvalidReason::EmptyName);
    }
    // Checked first so that "Busybox" gets the precise message rather than "bad component".
    if path.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(InvalidReason::Uppercase(path.to_owned()));
    }
    for component in path.split('/') {
        if component.is_empty() {
            return Err(InvalidReason::EmptyComponent(path.to_owned()));
        }
        if !valid_component(component) {
            return Err(InvalidReason::BadComponent(component.to_owned()));
        }
    }
    Ok(())
}

fn valid_component(c: &str) -> bool {
    let bytes = c.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !is_lower_alnum(first) || !is_lower_alnum(last) {
        return false;
    }
    // Every maximal run of non-alphanumerics must be one allowed separator.
    bytes
        .split(|b| is_lower_alnum(*b))
        .filter(|sep| !sep.is_empty())
        .all(|sep| matches!(sep, b"." | b"_" | b"__") || sep.iter().all(|b| *b == b'-'))
}

/// Tags: `[\w][\w.-]{0,127}` with ASCII `\w`.
fn validate_tag(tag: &str) -> Result<(), InvalidReason> {
    let bytes = tag.as_bytes();
    let Some(&first) = bytes.first() else {
        return Err(InvalidReason::EmptyTag);
    };
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    if !word(first) || !bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-') {
        return Err(InvalidReason::BadTag(tag.to_owned()));
    }
    if bytes.len() > TAG_LENGTH_MAX {
        return Err(InvalidReason::TagTooLong);
    }
    Ok(())
}

/// `algorithm:hex` with go-digest's registered algorithms and their exact lowercase-hex lengths.
fn validate_digest(digest: &str) -> Result<(), InvalidReason> {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(InvalidReason::BadDigestFormat(digest.to_owned()));
    };
    let (algorithm, len) = match algorithm {
        "sha256" => ("sha256", 64),
        "sha384" => ("sha384", 96),
        "sha512" => ("sha512", 128),
        "" => return Err(InvalidReason::BadDigestFormat(digest.to_owned())),
        other => return Err(InvalidReason::UnsupportedDigestAlgorithm(other.to_owned())),
    };
    if hex.len() != len || !is_lower_hex(hex) {
        return Err(InvalidReason::BadDigestHex {
            digest: digest.to_owned(),
            algorithm,
            len,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const H64: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn parse(s: &str) -> ImageRef {
        match ImageRef::parse(s, "docker.io") {
            Ok(r) => r,
            Err(e) => panic!("{s:?} should parse: {e}"),
        }
    }

    fn reason(s: &str) -> InvalidReason {
        match ImageRef::parse(s, "docker.io") {
            Err(ReferenceError::Invalid { input, reason }) => {
                assert_eq!(input, s);
                reason
            }
            other => panic!("{s:?} should be invalid, got {other:?}"),
        }
    }

    #[test]
    fn normalises_like_docker() {
        let d = format!("sha256:{H64}");
        let d512 = format!("sha512:{H64}{H64}");
        // (input, registry, repository, tag, digest)
        type Case<'a> = (String, &'a str, &'a str, Option<&'a str>, Option<&'a str>);
        let cases: Vec<Case> = vec![
            (
                "busybox".into(),
                "docker.io",
                "library/busybox",
                Some("latest"),
                None,
            ),
            (
                "library/busybox".into(),
                "docker.io",
                "library/busybox",
                Some("latest"),
                None,
            ),
            (
                "docker.io/busybox:1.36".into(),
                "docker.io",
                "library/busybox",
                Some("1.36"),
                None,
            ),
            (
                "user/repo".into(),
                "docker.io",
                "user/repo",
                Some("latest"),
                None,
            ),
            (
                "localhost/repo".into(),
                "localhost",
                "repo",
                Some("latest"),
                None,
            ),
            (
                "localhost:5000/a/b:t".into(),
                "localhost:5000",
                "a/b",
                Some("t"),
                None,
            ),
            (
                "127.0.0.1:5000/x".into(),
                "127.0.0.1:5000",
                "x",
                Some("latest"),
                None,
            ),
            (
                "[::1]:5000/x".into(),
                "[::1]:5000",
                "x",
                Some("latest"),
                None,
            ),
            ("[fe80::1]/x:v".into(), "[fe80::1]", "x", Some("v"), None),
            (
                "quay.io/a/b/c:v1".into(),
                "quay.io",
                "a/b/c",
                Some("v1"),
                None,
            ),
            (
                format!("repo@{d}"),
                "docker.io",
                "library/repo",
                None,
                Some(&d),
            ),
            (
                format!("repo:tag@{d}"),
                "docker.io",
                "library/repo",
                Some("tag"),
                Some(&d),
            ),
            (
                "index.docker.io/library/busybox".into(),
                "docker.io",
                "library/busybox",
                Some("latest"),
                None,
            ),
            (
                "index.docker.io/busybox".into(),
                "docker.io",
                "library/busybox",
                Some("latest"),
                None,
            ),
            // Not a host: no '.', ':' or "localhost", so it is a docker.io namespace.
            (
                "myhost/app".into(),
                "docker.io",
                "myhost/app",
                Some("latest"),
                None,
            ),
            // No '/', so "localhost:5000" is repo "localhost" with tag "5000", as in docker.
            (
                "localhost:5000".into(),
                "docker.io",
                "library/localhost",
                Some("5000"),
                None,
            ),
            (
                "a.b-c--d.io/x".into(),
                "a.b-c--d.io",
                "x",
                Some("latest"),
                None,
            ),
            (
                "docker.io/a.b-c_d__e---f".into(),
                "docker.io",
                "library/a.b-c_d__e---f",
                Some("latest"),
                None,
            ),
            (
                "Example.COM/app:V1".into(),
                "Example.COM",
                "app",
                Some("V1"),
                None,
            ),
            (
                format!("r@{d512}"),
                "docker.io",
                "library/r",
                None,
                Some(&d512),
            ),
        ];
        for (input, registry, repository, tag, digest) in &cases {
            let r = parse(input);
            assert_eq!(r.registry(), *registry, "{input}");
            assert_eq!(r.repository(), *repository, "{input}");
            assert_eq!(r.tag(), *tag, "{input}");
            assert_eq!(r.digest(), *digest, "{input}");
        }
    }

    #[test]
    fn rejects_with_reasons() {
        assert_eq!(reason(""), InvalidReason::Empty);
        assert_eq!(
            reason("UPPER/case"),
            InvalidReason::Uppercase("UPPER/case".into())
        );
        assert_eq!(
            reason("Busybox"),
            InvalidReason::Uppercase("Busybox".into())
        );
        assert_eq!(reason("a//b"), InvalidReason::EmptyComponent("a//b".into()));
        assert_eq!(reason("a/b/"), InvalidReason::EmptyComponent("a/b/".into()));
        assert_eq!(reason("quay.io/"), InvalidReason::EmptyName);
        assert_eq!(reason("repo:"), InvalidReason::EmptyTag);
        assert_eq!(
            reason("repo:bad tag"),
            InvalidReason::BadTag("bad tag".into())
        );
        assert_eq!(reason("repo:.tag"), InvalidReason::BadTag(".tag".into()));
        assert_eq!(reason("repo:a:b"), InvalidReason::BadTag("a:b".into()));
        assert_eq!(
            reason(&format!("repo:{}", "t".repeat(129))),
            InvalidReason::TagTooLong
        );
        assert!(ImageRef::parse(&format!("repo:{}", "t".repeat(128)), "docker.io").is_ok());
        assert!(matches!(
            reason("repo@sha256:abc"),
            InvalidReason::BadDigestHex { len: 64, .. }
        ));
        assert!(matches!(
            reason(&format!("repo@sha256:{}", H64.to_uppercase())),
            InvalidReason::BadDigestHex { .. }
        ));
        assert!(matches!(
            reason(&format!("repo@sha512:{H64}")),
            InvalidReason::BadDigestHex { len: 128, .. }
        ));
        assert_eq!(
            reason("repo@md5:d41d8cd98f00b204e9800998ecf8427e"),
            InvalidReason::UnsupportedDigestAlgorithm("md5".into())
        );
        assert!(matches!(
            reason("repo@sha256"),
            InvalidReason::BadDigestFormat(_)
        ));
        assert!(matches!(
            reason(&format!("repo@:{H64}")),
            InvalidReason::BadDigestFormat(_)
        ));
        assert!(matches!(
            reason(&format!("repo@sha256:{H64}@x")),
            InvalidReason::BadDigestHex { .. }
        ));
        assert_eq!(reason(":tag"), InvalidReason::EmptyName);
        assert_eq!(reason("http://host/repo"), InvalidReason::Scheme);
        assert_eq!(reason(H64), InvalidReason::HexIdentifier);
        assert_eq!(reason("a/-b"), InvalidReason::BadComponent("-b".into()));
        assert_eq!(reason("a/b._c"), InvalidReason::BadComponent("b._c".into()));
        assert_eq!(
            reason("a/b___c"),
            InvalidReason::BadComponent("b___c".into())
        );
        assert_eq!(reason("a/b c"), InvalidReason::BadComponent("b c".into()));
        assert!(matches!(reason("host:/x"), InvalidReason::BadRegistry(..)));
        assert!(matches!(
            reason("host:50a/x"),
            InvalidReason::BadRegistry(..)
        ));
        assert!(matches!(
            reason("-bad.io/x"),
            InvalidReason::BadRegistry(..)
        ));
        assert!(matches!(reason("a..b/x"), InvalidReason::BadRegistry(..)));
        // oci-spec (like docker's regexp) accepts this as a path with no host; it is neither.
        assert!(matches!(reason("a.b_c/x"), InvalidReason::BadRegistry(..)));
        assert!(matches!(reason("[::1/x"), InvalidReason::BadRegistry(..)));
        assert!(matches!(
            reason("[zz::1]:5000/x"),
            InvalidReason::BadRegistry(..)
        ));
        assert!(matches!(
            reason("[::1]5000/x"),
            InvalidReason::BadRegistry(..)
        ));
        let long = format!("quay.io/{}", "a".repeat(250));
        assert_eq!(reason(&long), InvalidReason::NameTooLong);
    }

    #[test]
    fn error_message_names_input_and_reason() {
        let msg = match ImageRef::parse("repo:bad tag", "docker.io") {
            Err(e) => e.to_string(),
            Ok(r) => panic!("parsed {r}"),
        };
        assert!(msg.contains("\"repo:bad tag\""), "{msg}");
        assert!(msg.contains("tag \"bad tag\" is invalid"), "{msg}");
    }

    #[test]
    fn default_registry() {
        let r = ImageRef::parse("busybox", "quay.io").unwrap();
        assert_eq!(r.to_string(), "quay.io/busybox:latest");
        let r = ImageRef::parse("busybox", "index.docker.io").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
        // An explicit registry ignores the default.
        let r = ImageRef::parse("docker.io/busybox", "quay.io").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
        assert!(matches!(
            ImageRef::parse("busybox", "bad host"),
            Err(ReferenceError::InvalidDefaultRegistry { .. })
        ));
    }

    #[test]
    fn short_names() {
        for s in [
            "busybox",
            "library/busybox",
            "user/repo:tag",
            "repo@sha256:x",
            "myhost/app",
        ] {
            assert!(ImageRef::is_short_name(s), "{s}");
        }
        for s in [
            "docker.io/busybox",
            "localhost/repo",
            "localhost:5000/a",
            "quay.io/a/b",
            "[::1]:5000/x",
            "host:5000/x@sha256:y",
        ] {
            assert!(!ImageRef::is_short_name(s), "{s}");
        }
    }

    #[test]
    fn formatting() {
        let d = format!("sha256:{H64}");
        let r = parse("busybox");
        assert_eq!(r.name(), "docker.io/library/busybox");
        assert_eq!(
            r.repo_tag().as_deref(),
            Some("docker.io/library/busybox:latest")
        );
        assert_eq!(r.repo_digest(&d), format!("docker.io/library/busybox@{d}"));
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");

        let r = parse(&format!("quay.io/a/b:v1@{d}"));
        assert_eq!(r.to_string(), format!("quay.io/a/b:v1@{d}"));
        let r = parse(&format!("quay.io/a/b@{d}"));
        assert_eq!(r.repo_tag(), None);
        assert_eq!(r.to_string(), format!("quay.io/a/b@{d}"));
        // Display output parses back to the same reference.
        assert_eq!(parse(&r.to_string()), r);
        let r = parse("[::1]:5000/x:t");
        assert_eq!(r.to_string(), "[::1]:5000/x:t");
        assert_eq!(parse(&r.to_string()), r);
    }

    #[test]
    fn mirrors() {
        let d = format!("sha256:{H64}");
        let r = parse(&format!("busybox:1@{d}"));
        let m = r.with_registry("mirror.local:5000");
        assert_eq!(
            m.to_string(),
            format!("mirror.local:5000/library/busybox:1@{d}")
        );
        assert_eq!(m.with_registry("index.docker.io"), r);
    }

    #[test]
    fn converts_to_oci_client_reference() {
        let d = format!("sha256:{H64}");
        let o = oci_client::Reference::from(&parse(&format!("quay.io/a/b:v1@{d}")));
        assert_eq!(o.registry(), "quay.io");
        assert_eq!(o.repository(), "a/b");
        assert_eq!(o.tag(), Some("v1"));
        assert_eq!(o.digest(), Some(d.as_str()));
        let o = oci_client::Reference::from(&parse("busybox"));
        assert_eq!(o.whole(), "docker.io/library/busybox:latest");
    }

    /// oci-spec's parser follows the same distribution grammar; agree with it wherever our rules
    /// are not deliberately stricter or wider. Known differences, tested in `rejects_with_reasons`:
    /// oci-spec accepts uppercase digest hex, a host with '_' ("a.b_c/x") and "UPPER/case" (as
    /// docker.io/UPPER/case, which docker rejects), and it rejects IPv6 hosts.
    #[test]
    fn agrees_with_oci_spec_parser() {
        let d = format!("sha256:{H64}");
        let inputs = [
            "busybox".to_owned(),
            "library/busybox".into(),
            "docker.io/busybox:1.36".into(),
            "user/repo".into(),
            "localhost/repo".into(),
            "localhost:5000/a/b:t".into(),
            "127.0.0.1:5000/x".into(),
            "quay.io/a/b/c:v1".into(),
            format!("repo@{d}"),
            format!("repo:tag@{d}"),
            "index.docker.io/library/busybox".into(),
            "localhost:5000".into(),
            "a.b-c--d.io/x".into(),
            "b.gcr.io/test.example.com/my-app:test.example.com".into(),
            "xn--n3h.com/myimage:xn--n3h.com".into(),
            "a//b".into(),
            "repo:".into(),
            "repo:bad tag".into(),
            "repo@sha256:abc".into(),
            "repo@md5:d41d8cd98f00b204e9800998ecf8427e".into(),
            ":tag".into(),
            "http://host/repo".into(),
            "a/-b".into(),
            "a/b___c".into(),
            "-bad.io/x".into(),
            format!("repo:{}", "t".repeat(129)),
        ];
        for input in &inputs {
            let ours = ImageRef::parse(input, "docker.io");
            let theirs = oci_client::Reference::try_from(input.as_str());
            match (&ours, &theirs) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a.registry(), b.registry(), "{input}");
                    assert_eq!(a.repository(), b.repository(), "{input}");
                    assert_eq!(a.tag(), b.tag(), "{input}");
                    assert_eq!(a.digest(), b.digest(), "{input}");
                }
                (Err(_), Err(_)) => {}
                _ => panic!("{input:?}: ours {ours:?}, oci-spec {theirs:?}"),
            }
        }
    }

    /// Found by the image_reference fuzz target: a bad digest was repeated whole in the error,
    /// so a huge reference gave a huge gRPC message.
    #[test]
    fn a_huge_bad_digest_is_quoted_briefly() {
        let input = format!("busybox@sha256:{}", "g".repeat(1 << 20));
        let message = ImageRef::parse(&input, "docker.io")
            .unwrap_err()
            .to_string();
        assert!(
            message.len() < 1024,
            "{} bytes: {message:.200}",
            message.len()
        );
        assert!(
            message.contains("needs exactly 64 lowercase hex characters"),
            "{message}"
        );
    }
}
