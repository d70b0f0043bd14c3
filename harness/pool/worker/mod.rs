//! Worker processes: the child's main loop ([`child`]) and the parent's handle on each child
//! ([`pool`]), which starts them as [`spawn`] does. A worker is this same binary started as
//! `bench worker`, so both sides share one definition of the protocol. A worker that dies is
//! reported with how it ended ([`fate`]): the signal that killed it, not only its closed socket.

pub mod child;
mod fate;
pub mod pool;
pub mod spawn;
