//! Process creation: the fork helpers, the parent–child sync channel, and the code that runs
//! inside the container (init and exec'd processes).

pub mod channel;
pub mod fork;
pub mod init;
pub mod ns_child;
