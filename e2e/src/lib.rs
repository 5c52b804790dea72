//! End-to-end harness for crius.
//!
//! crius is driven as a black box: the tests start the real `crius` binary (see [`daemon`]) with a
//! generated configuration in a temporary directory and talk CRI to it over its unix socket
//! ([`cri`]). The images it pulls are built here from Debian's static busybox ([`layer`],
//! [`images`]) and pushed to throw-away `docker-registry` instances ([`registry`]), optionally
//! behind a fault-injecting HTTP proxy ([`proxy`]) or guarded by a bearer-token server
//! ([`token_server`]). Pod tests get a CNI bridge network of their own and the pod RPCs as
//! plain calls ([`pods`]). Nothing here reaches past the loopback
//! interface.

pub mod bench;
pub mod cgroups;
pub mod cri;
pub mod critest_images;
pub mod daemon;
pub mod images;
pub mod layer;
pub mod pods;
pub mod proxy;
pub mod registry;
pub mod streaming_client;
pub mod tls;
pub mod token_server;
pub mod util;

pub use daemon::{Crius, CriusBuilder};
pub use images::{PushedImage, PushedIndex};
pub use pods::{PodFlow, TestNetwork};
pub use proxy::{BlobFault, Proxy};
pub use registry::{RegistryMode, TestRegistry};
pub use token_server::{Grant, TokenAuth, TokenServer};
