//! `Status`: RuntimeReady and NetworkReady conditions.

use tonic::Status;

use super::CriServer;
use crate::api;

pub async fn handle(
    server: &CriServer,
    request: api::StatusRequest,
) -> Result<api::StatusResponse, Status> {
    let runtime = api::RuntimeCondition {
        r#type: "RuntimeReady".to_string(),
        status: true,
        reason: String::new(),
        message: String::new(),
    };
    let network = match crate::network::default_network_file(&server.config.network.network_dir) {
        Some(_) => api::RuntimeCondition {
            r#type: "NetworkReady".to_string(),
            status: true,
            reason: String::new(),
            message: String::new(),
        },
        None => api::RuntimeCondition {
            r#type: "NetworkReady".to_string(),
            status: false,
            reason: "NetworkPluginNotReady".to_string(),
            message: format!(
                "no CNI network configuration found in {}",
                server.config.network.network_dir.display()
            ),
        },
    };
    let mut info = std::collections::HashMap::new();
    if request.verbose {
        info.insert(
            "config".to_string(),
            serde_json::to_string(server.config.as_ref())
                .map_err(|e| Status::internal(format!("Status: {e}")))?,
        );
    }
    Ok(api::StatusResponse {
        status: Some(api::RuntimeStatus {
            conditions: vec![runtime, network],
        }),
        info,
        // The CRI names the default handler "" (what the kubelet and critest look up); the
        // configured names follow.
        runtime_handlers: std::iter::once(String::new())
            .chain(server.engine.runtimes.handler_names())
            .map(|name| {
                let f = server.engine.runtimes.features(&name);
                api::RuntimeHandler {
                    name,
                    features: Some(api::RuntimeHandlerFeatures {
                        recursive_read_only_mounts: f.recursive_read_only_mounts,
                        user_namespaces: f.user_namespaces,
                    }),
                }
            })
            .collect(),
        features: Some(api::RuntimeFeatures {
            // Merge and Strict are both honoured (src/oci/process.rs), and ContainerStatus
            // reports the resulting groups.
            supplemental_groups_policy: true,
            // Host-network pods are never put in a user namespace.
            user_namespaces_host_network: false,
            // Mount.mount_options are not applied yet.
            mount_options: false,
        }),
    })
}
