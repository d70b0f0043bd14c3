//! The end-to-end tests, in one test binary with a module per area.
//!
//! Each integration-test binary links the whole `bench` crate again: as 26 binaries, building and
//! linking them took most of a clean CI run on 2 cores. As modules of this one binary they link once.
//! A test that measures time lives in its area's `mod alone` and takes `common::exclusive()`, which
//! keeps every other test's sweeps off the machine while it runs (see `common`); `scripts/test.sh`
//! runs those tests after all the others (`--skip ::alone::`, then `::alone::`). A test that checks
//! folders, flags or columns accepts a run whose points only timing made invalid
//! (`common::assert_ok_timing_aside`).
//!
//! Adding an area: a file `tests/it/NAME.rs` that starts with a `//!` paragraph and
//! `use crate::common;` (if it needs the helpers), and a `mod NAME;` line here. `cargo test --test
//! it NAME::` runs only its tests.

mod common;

mod architecture;
mod axes;
mod batching;
mod broken_results;
mod capacity;
mod compare;
mod concurrency;
mod corpus;
mod docs;
mod faults;
mod gpu;
mod knobs;
mod load;
mod model_first;
mod pypi_models;
mod queueing;
mod reference;
mod report;
mod rough_edges;
mod scenario_errors;
mod shard;
mod shm_memory;
mod sweep;
mod testdata;
mod torch;
// Built only with the cargo feature `tract` (`scripts/test.sh` turns it on).
#[cfg(feature = "tract")]
mod tract;
mod transfer;
mod wild;
