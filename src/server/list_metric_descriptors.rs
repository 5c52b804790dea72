//! `ListMetricDescriptors`: the cAdvisor families `ListPodSandboxMetrics` reports
//! (`metrics/cri.rs`).

use tonic::Status;

use crate::api;
use crate::metrics::cri;

pub async fn handle(
    _request: api::ListMetricDescriptorsRequest,
) -> Result<api::ListMetricDescriptorsResponse, Status> {
    Ok(api::ListMetricDescriptorsResponse {
        descriptors: cri::descriptors(),
    })
}
