//! Worker processes: the child's main loop ([`child`]) and the parent's handle on each child
//! ([`pool`]), which starts them as [`spawn`] does. A worker is this same binary started as
//! `bench worker`, so both sides share one definition of the protocol.

pub mod child;
pub mod pool;
pub mod spawn;
