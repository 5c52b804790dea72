//! Tar entry names turned into safe, layer-relative component lists.

/// A path inside the layer: no empty, `.` or `..` components, no NUL bytes.
/// An empty component list names the layer root itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LayerPath {
    components: Vec<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PathError {
    /// A `..` component: the only way a relative name can leave the layer.
    Escapes,
    /// A NUL byte cannot be passed to the kernel (only PAX records can carry one).
    Nul,
    /// More than [`MAX_DEPTH`] components.
    TooDeep,
}

/// The deepest path a layer may hold. Removing a tree (garbage collection, the start-up wipe of
/// `tmp/`) holds a directory fd per level, so a layer much deeper than the daemon's open-file
/// limit could never be deleted; real images stay far below this.
pub(super) const MAX_DEPTH: usize = 256;

impl LayerPath {
    /// Absolute names are taken relative to the layer root, as docker does;
    /// `.` components are dropped and any `..` is refused outright rather
    /// than resolved, so a name can never climb out of the layer.
    pub(super) fn parse(raw: &[u8]) -> Result<Self, PathError> {
        if raw.contains(&0) {
            return Err(PathError::Nul);
        }
        let mut components = Vec::new();
        for component in raw.split(|b| *b == b'/') {
            match component {
                b"" | b"." => {}
                b".." => return Err(PathError::Escapes),
                name => components.push(name.to_vec()),
            }
            if components.len() > MAX_DEPTH {
                return Err(PathError::TooDeep);
            }
        }
        Ok(Self { components })
    }

    pub(super) fn components(&self) -> &[Vec<u8>] {
        &self.components
    }

    /// The parent's components and the final name; `None` for the layer root.
    pub(super) fn split_last(&self) -> Option<(&[u8], &[Vec<u8>])> {
        self.components
            .split_last()
            .map(|(name, parent)| (name.as_slice(), parent))
    }
}

/// Renders the first `count` components for error messages.
pub(super) fn display_prefix(components: &[Vec<u8>], count: usize) -> String {
    let joined: Vec<&[u8]> = components.iter().take(count).map(Vec::as_slice).collect();
    display(&joined.join(&b'/'))
}

/// How much of a name an error message shows.
const SHOWN_BYTES: usize = 100;

/// A tar name for messages and logs: lossy UTF-8, and beyond [`SHOWN_BYTES`] bytes its start and
/// its length, so a 64 KiB PAX path never fills an error.
pub(super) fn display(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    if text.len() <= SHOWN_BYTES {
        return text.into_owned();
    }
    let mut cut = SHOWN_BYTES;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}… ({} bytes)", &text[..cut], raw.len())
}

/// What an entry's final name means in the OCI whiteout convention.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Whiteout<'a> {
    /// An ordinary name.
    None,
    /// `.wh.<name>`: `<name>` is deleted from lower layers.
    Delete(&'a [u8]),
    /// `.wh..wh..opq`: the parent directory hides lower layers' contents.
    Opaque,
    /// Other `.wh..wh.*` names are aufs bookkeeping (e.g. `.wh..wh.plnk`).
    AufsMetadata,
}

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const META_PREFIX: &[u8] = b".wh..wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";

pub(super) fn whiteout(name: &[u8]) -> Whiteout<'_> {
    if name == OPAQUE_MARKER {
        Whiteout::Opaque
    } else if name.starts_with(META_PREFIX) {
        Whiteout::AufsMetadata
    } else if let Some(deleted) = name.strip_prefix(WHITEOUT_PREFIX) {
        Whiteout::Delete(deleted)
    } else {
        Whiteout::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(raw: &str) -> Vec<String> {
        match LayerPath::parse(raw.as_bytes()) {
            Ok(path) => path
                .components()
                .iter()
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect(),
            Err(e) => panic!("{raw:?} was rejected: {e:?}"),
        }
    }

    #[test]
    fn absolute_and_dotted_names_are_normalised_beneath_the_root() {
        assert_eq!(parts("/etc/x"), ["etc", "x"]);
        assert_eq!(parts("./a//./b/"), ["a", "b"]);
        assert!(parts("./").is_empty());
    }

    #[test]
    fn any_parent_component_is_refused() {
        for raw in ["..", "../x", "a/../../x", "a/..", "/../x"] {
            assert_eq!(
                LayerPath::parse(raw.as_bytes()),
                Err(PathError::Escapes),
                "{raw}"
            );
        }
        assert_eq!(LayerPath::parse(b"a\0b"), Err(PathError::Nul));
    }

    #[test]
    fn paths_deeper_than_the_bound_are_refused() {
        let at_bound = "d/".repeat(MAX_DEPTH);
        assert_eq!(parts(&at_bound).len(), MAX_DEPTH);
        let deeper = "d/".repeat(MAX_DEPTH + 1);
        assert_eq!(LayerPath::parse(deeper.as_bytes()), Err(PathError::TooDeep));
    }

    #[test]
    fn whiteout_names_are_classified() {
        assert_eq!(whiteout(b".wh.foo"), Whiteout::Delete(b"foo"));
        assert_eq!(whiteout(b".wh..wh..opq"), Whiteout::Opaque);
        assert_eq!(whiteout(b".wh..wh.plnk"), Whiteout::AufsMetadata);
        assert_eq!(whiteout(b"foo.wh."), Whiteout::None);
    }
}
