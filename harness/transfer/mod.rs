//! How tensor bytes travel between the parent and a worker, one file per transfer mode.
//!
//! The `pipe` mode needs nothing here: the bytes ride inside the frames of [`crate::protocol`]. The
//! `shm` mode writes inputs once into a slot of a shared-memory arena and sends only the slot id; the
//! worker hands ONNX Runtime a view over its own mapping of the same pages, and outputs come back
//! through the slot's output region.
//!
//! - [`shm`]: the arena (an anonymous `memfd` mapped `MAP_SHARED` by both processes), its slot
//!   layout, and the descriptors that say where each tensor lies in a slot.
//! - [`throughput`]: measures `pipe` against `shm` against a plain `memcpy`, 4 KiB to 64 MiB, in one
//!   run, so the ratios come from the same machine at the same moment.

pub mod shm;
pub mod throughput;
