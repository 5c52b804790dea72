//! From the store's image record to the CRI `Image` message.

use crate::api;
use crate::image::ImageRecord;

/// `pinned`: the image is the configured pause image, which the kubelet's image GC must keep.
pub fn to_cri(image: &ImageRecord, pinned: Option<&str>) -> api::Image {
    let (uid, username) = user_of(&image.user);
    api::Image {
        id: image.id.clone(),
        repo_tags: image.repo_tags.clone(),
        repo_digests: image.repo_digests.clone(),
        size: image.size,
        uid: uid.map(|value| api::Int64Value { value }),
        username,
        spec: Some(api::ImageSpec {
            image: image.id.clone(),
            ..Default::default()
        }),
        pinned: pinned == Some(image.id.as_str()),
    }
}

/// The config's `User` is `name`, `uid`, `name:group` or `uid:gid`: kubelet wants the uid when it is
/// numeric (to enforce runAsNonRoot), else the name.
fn user_of(user: &str) -> (Option<i64>, String) {
    let who = user.split(':').next().unwrap_or_default();
    if who.is_empty() {
        return (None, String::new());
    }
    match who.parse::<i64>() {
        Ok(uid) => (Some(uid), String::new()),
        Err(_) => (None, who.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_user_gives_uid_and_a_name_gives_username() {
        assert_eq!(user_of("1000"), (Some(1000), String::new()));
        assert_eq!(user_of("1000:50"), (Some(1000), String::new()));
        assert_eq!(user_of("app:app"), (None, "app".to_string()));
        assert_eq!(user_of(""), (None, String::new()));
    }
}
