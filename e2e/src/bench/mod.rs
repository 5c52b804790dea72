//! What `pod-bench` measures beyond its own daemon's numbers, for `hack/bench.sh`, which runs
//! it against crius and Debian's containerd side by side: every lifecycle RPC timed on its own
//! ([`lifecycle`]), the memory a node pays per pod ([`footprint`]), many pods at once and many
//! clients at once ([`density`]), a loopback registry serving the busybox test image and a pause
//! image for both runtimes ([`serve`]), and the percentiles they share ([`stats`]). The suite's
//! options and its JSON answer are in [`suite`].

pub mod density;
pub mod footprint;
pub mod lifecycle;
pub mod phases;
pub mod serve;
pub mod stats;
pub mod suite;
