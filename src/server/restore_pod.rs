//! `RestorePod`: UNIMPLEMENTED. crius makes no checkpoints, and restoring one needs CRIU.

use tonic::Status;

use super::rpc;
use crate::api;

pub async fn handle(_request: api::RestorePodRequest) -> Result<api::RestorePodResponse, Status> {
    rpc::unsupported("RestorePod", super::NO_CHECKPOINTS)
}
