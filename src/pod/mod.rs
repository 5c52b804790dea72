//! The pod as its sandbox and containers both see it, below both of them: the pod's request,
//! namespaces, files and user namespace worked out from its record (`PodContextParts`, what
//! the specs of the pause process and of every container are generated from), the bundle's
//! `config.json` both write, and the CRI's label selectors. `sandbox/` and `container/` import
//! this; it imports neither.

mod bundle;
mod context;
mod net_dev;
mod status;

use std::collections::HashMap;

pub use bundle::{update_spec_resources, write_spec};
pub use context::{
    PodContextParts, PodFiles, is_node, namespace_options, needs_pause, pod_config, pod_userns,
};
pub use net_dev::NetDev;
pub use status::{sandbox_state, sandbox_status};

/// Whether `labels` has every key of a CRI label `selector` with the same value.
pub fn labels_match(labels: &HashMap<String, String>, selector: &HashMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}
