//! `CheckpointContainer`: UNIMPLEMENTED. Checkpoints need CRIU driven through the OCI runtime's
//! `checkpoint`/`restore`, which crius does not integrate.

use tonic::Status;

use super::rpc;
use crate::api;

pub async fn handle(
    _request: api::CheckpointContainerRequest,
) -> Result<api::CheckpointContainerResponse, Status> {
    rpc::unsupported("CheckpointContainer", super::NO_CHECKPOINTS)
}
