//! Worker processes: the child's main loop ([`child`]) and the parent's handle on each child
//! ([`pool`]). A worker is this same binary started as `bench worker`, so both sides share one
//! definition of the protocol.

pub mod child;
pub mod pool;
