//! `ImageFsInfo`: bytes and inodes the image store uses, on which filesystem.

use std::time::{SystemTime, UNIX_EPOCH};

use tonic::Status;

use super::CriServer;
use crate::api;

pub async fn handle(
    server: &CriServer,
    _request: api::ImageFsInfoRequest,
) -> Result<api::ImageFsInfoResponse, Status> {
    let usage = server.images.usage()?;
    let mountpoint = crate::libcontainer::mounts::mountpoint_of(server.images.store_dir())
        .map_err(|e| Status::internal(format!("ImageFsInfo: {e}")))?;
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or_default();
    let fs = api::FilesystemUsage {
        timestamp,
        fs_id: Some(api::FilesystemIdentifier {
            mountpoint: mountpoint.display().to_string(),
        }),
        used_bytes: Some(api::UInt64Value { value: usage.bytes }),
        inodes_used: Some(api::UInt64Value {
            value: usage.inodes,
        }),
    };
    Ok(api::ImageFsInfoResponse {
        image_filesystems: vec![fs.clone()],
        container_filesystems: vec![fs],
    })
}
