//! `CheckpointPod`: UNIMPLEMENTED, for the reason `CheckpointContainer` is (no CRIU support).

use tonic::Status;

use super::rpc;
use crate::api;

pub async fn handle(
    _request: api::CheckpointPodRequest,
) -> Result<api::CheckpointPodResponse, Status> {
    rpc::unsupported("CheckpointPod", super::NO_CHECKPOINTS)
}
