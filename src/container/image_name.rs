//! The image a container reports in `Container`/`ContainerStatus`, decided once at creation.
//!
//! Kubelet puts the image id (what `PullImage` answered) in `ContainerConfig.image.image` and,
//! since 1.30, the name the user wrote in `user_specified_image`. Like containerd and cri-o,
//! crius reports that name as `image.image`, so `kubectl describe` shows `busybox:1.36` rather
//! than a bare id, and a repo digest of the same repository as `image_ref` (kubelet's
//! `imageID`). `image_id` stays the image id.

use crate::api;
use crate::image::ImageRecord;
use crate::image::reference::ImageRef;

/// `(name, image_ref)` of a container made from `image`, asked for with `spec`.
///
/// The name is `user_specified_image`; without it (older kubelets, crictl), the request's image
/// unless that is an id, which gives way to the image's first tag. `image_ref` is the repo
/// digest in the repository of that name, else the first repo digest, else the image id.
pub fn reported(image: &ImageRecord, spec: &api::ImageSpec) -> (String, String) {
    let name = if !spec.user_specified_image.is_empty() {
        spec.user_specified_image.clone()
    } else if is_id(&spec.image, image) {
        image
            .repo_tags
            .first()
            .cloned()
            .unwrap_or_else(|| spec.image.clone())
    } else {
        spec.image.clone()
    };
    let image_ref = same_repository(image, &name)
        .or_else(|| image.repo_digests.first().cloned())
        .unwrap_or_else(|| image.id.clone());
    (name, image_ref)
}

/// Whether `name` is the image's id, with or without `sha256:`.
fn is_id(name: &str, image: &ImageRecord) -> bool {
    let hex = |s: &str| s.strip_prefix("sha256:").unwrap_or(s).to_owned();
    !name.is_empty() && hex(name) == hex(&image.id)
}

/// The repo digest whose repository is the one `name` names. Registries are not compared: a
/// short name may have been resolved on any unqualified-search registry or mirror.
fn same_repository(image: &ImageRecord, name: &str) -> Option<String> {
    let wanted = ImageRef::parse(name, "docker.io").ok()?;
    let suffix = format!("/{}", wanted.repository());
    image
        .repo_digests
        .iter()
        .find(|d| {
            d.split_once('@')
                .is_some_and(|(repo, _)| repo.ends_with(&suffix))
        })
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    fn image() -> ImageRecord {
        ImageRecord {
            id: ID.into(),
            manifest_digest: "sha256:aaaa".into(),
            repo_tags: vec![
                "docker.io/library/busybox:1.36".into(),
                "registry.local/tools/bb:v1".into(),
            ],
            repo_digests: vec![
                "docker.io/library/busybox@sha256:aaaa".into(),
                "registry.local/tools/bb@sha256:bbbb".into(),
            ],
            layers: vec![],
            size: 0,
            user: String::new(),
            extra_blobs: vec![],
        }
    }

    fn spec(image: &str, user: &str) -> api::ImageSpec {
        api::ImageSpec {
            image: image.into(),
            user_specified_image: user.into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_name_the_user_wrote_is_reported_with_a_digest_of_its_repository() {
        assert_eq!(
            reported(&image(), &spec(ID, "registry.local/tools/bb:v1")),
            (
                "registry.local/tools/bb:v1".into(),
                "registry.local/tools/bb@sha256:bbbb".into()
            )
        );
        assert_eq!(
            reported(&image(), &spec(ID, "busybox:1.36")),
            (
                "busybox:1.36".into(),
                "docker.io/library/busybox@sha256:aaaa".into()
            )
        );
    }

    #[test]
    fn without_a_user_name_an_id_gives_way_to_the_first_tag() {
        let (name, image_ref) = reported(&image(), &spec(ID, ""));
        assert_eq!(name, "docker.io/library/busybox:1.36");
        assert_eq!(image_ref, "docker.io/library/busybox@sha256:aaaa");
        let (name, _) = reported(&image(), &spec(ID.trim_start_matches("sha256:"), ""));
        assert_eq!(name, "docker.io/library/busybox:1.36");
    }

    #[test]
    fn a_name_in_the_request_is_kept_as_written() {
        let (name, image_ref) = reported(&image(), &spec("registry.local/tools/bb:v1", ""));
        assert_eq!(name, "registry.local/tools/bb:v1");
        assert_eq!(image_ref, "registry.local/tools/bb@sha256:bbbb");
    }

    #[test]
    fn an_image_without_tags_or_digests_reports_its_id() {
        let bare = ImageRecord {
            repo_tags: vec![],
            repo_digests: vec![],
            ..image()
        };
        assert_eq!(reported(&bare, &spec(ID, "")), (ID.into(), ID.into()));
    }
}
