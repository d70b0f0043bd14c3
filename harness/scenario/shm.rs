//! How much memory an `shm` point's shared-memory arena may come to hold, checked against the
//! scenario's budget (`[transfer] shm_budget_mib`) while the scenario is resolved, so `bench
//! validate` refuses a point whose arena cannot fit before any worker starts.
//!
//! It lives here rather than in `transfer::shm` because the scenario cannot depend on the transfer
//! modes (they depend on it); `transfer::shm::slot_pool` sizes the arena with these same functions,
//! so what validate accepts is what a run builds.
//!
//! An arena has one slot per request that can be in flight ([`slots`]). Each slot has room for the
//! largest sample ([`input_bytes`]) and for the largest outputs whose size the ONNX signature gives
//! before running ([`known_output_bytes`]). The budget counts those: `slots × (input + known
//! output)`. An output with a dim that is only known after running (a detector's box count) gets
//! whatever room the budget leaves, up to [`UNKNOWN_OUTPUT_BYTES`] a slot ([`unknown_room`]); one
//! that outgrows it comes back inline for that request (see `transfer::shm`). So an arena never
//! holds more than the budget, whatever the model outputs.
//!
//! Pure functions of the resolved scenario, tested below.

use std::collections::HashMap;

use super::source::KeyPath;
use super::spec::{LoadPoint, LoadSpec, ModelSource, ModelSpec, Workload};
use super::sweep::Point;
use super::vocabulary::Transfer;
use crate::model::onnx::{Dim, ValueKind};
use crate::model::tensor::{DType, TensorData};

/// The budget when the scenario sets none, MiB. Slots are touched only when used, so this bounds
/// what the arena may come to hold, not what it takes at start.
pub(crate) const DEFAULT_BUDGET_MIB: u64 = 8192;

/// The largest budget a scenario may set, MiB (1 TiB).
pub(crate) const MAX_BUDGET_MIB: u64 = 1 << 20;

/// The most room a slot gets for outputs whose size is unknown before running: 16 MiB.
pub(crate) const UNKNOWN_OUTPUT_BYTES: u64 = 16 << 20;

/// The most slots an open-loop point gets (per member of the widest group); requests beyond wait.
pub(crate) const MAX_OPEN_LOOP_SLOTS: usize = 1024;

const MIB: u64 = 1 << 20;

/// The largest number of models one request fans out to: 1, or the widest ensemble group.
pub(crate) fn fanout(workload: &Workload) -> usize {
    workload
        .groups
        .iter()
        .map(|g| g.members.len())
        .max()
        .unwrap_or(1)
        .max(1)
}

/// Slots of an arena: one per request that can be in flight. Closed loop: `concurrency` × the
/// fan-out. Open loop: `max_in_flight`, at most [`MAX_OPEN_LOOP_SLOTS`], × the fan-out.
pub(crate) fn slots(load: LoadPoint, max_in_flight: usize, fanout: usize) -> usize {
    let requests = match load {
        LoadPoint::Closed { concurrency } => concurrency,
        LoadPoint::Open { .. } => max_in_flight.min(MAX_OPEN_LOOP_SLOTS),
    };
    requests.saturating_mul(fanout.max(1))
}

/// Bytes of the largest sample of any model (the tensors' bytes, without alignment padding).
pub(crate) fn input_bytes(models: &[ModelSpec]) -> u64 {
    models
        .iter()
        .flat_map(|m| &m.samples)
        .map(|s| s.iter().map(|t| t.bytes.len() as u64).sum::<u64>())
        .max()
        .unwrap_or(0)
}

/// Each output's type and shape when the ONNX signature and the dims the inputs bound give it
/// before running; `None` for an output with a dim only known after running (or of unknown rank,
/// or not a tensor). Empty for a synthetic model, which sends nothing back worth a slot.
pub(crate) fn output_shapes(m: &ModelSpec) -> Vec<Option<(DType, Vec<i64>)>> {
    if let ModelSource::Synthetic(_) = m.source {
        return Vec::new();
    }
    // Dim names the inputs bound, e.g. `batch = 1`.
    let mut bound = HashMap::new();
    for (spec, io) in m.inputs.iter().zip(&m.declared_inputs) {
        for (d, &v) in io.dims.iter().zip(&spec.shape) {
            if let Dim::Named(n) = d {
                bound.insert(n.clone(), v);
            }
        }
    }
    m.outputs
        .iter()
        .map(|o| {
            if o.kind != ValueKind::Tensor || !o.rank_known {
                return None;
            }
            // A string output's size is known only once its values are.
            let dtype = o.dtype.clone().ok().filter(|&d| d != DType::Str)?;
            let shape = o
                .dims
                .iter()
                .map(|d| match d {
                    Dim::Fixed(n) if *n >= 0 => Some(*n),
                    Dim::Named(n) => bound.get(n).copied(),
                    Dim::Fixed(_) | Dim::Unknown => None,
                })
                .collect::<Option<Vec<i64>>>()?;
            Some((dtype, shape))
        })
        .collect()
}

/// A model's outputs before running: the bytes of those whose size is known, and whether any is
/// not known.
pub(crate) fn known_output_bytes(m: &ModelSpec) -> (u64, bool) {
    let mut known = 0u64;
    let mut unknown = false;
    for o in output_shapes(m) {
        match o.and_then(|(d, s)| TensorData::checked_numel(&s)?.checked_mul(d.size())) {
            Some(n) => known = known.saturating_add(n as u64),
            None => unknown = true,
        }
    }
    (known, unknown)
}

/// What one arena needs: its slots, and each slot's input room and known output room, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Need {
    pub(crate) slots: usize,
    pub(crate) input: u64,
    pub(crate) known_output: u64,
}

impl Need {
    /// `slots × (input + known_output)`, saturating.
    pub(crate) fn total(&self) -> u64 {
        (self.slots as u64).saturating_mul(self.input.saturating_add(self.known_output))
    }

    /// Whether it fits in `budget` bytes.
    pub(crate) fn fits(&self, budget: u64) -> bool {
        self.total() <= budget
    }

    /// The most slots of this size that fit in `budget` bytes (unbounded for empty slots).
    pub(crate) fn max_slots(&self, budget: u64) -> u64 {
        match self.input.saturating_add(self.known_output) {
            0 => u64::MAX,
            per_slot => budget / per_slot,
        }
    }
}

/// Room per slot for outputs of unknown size: what `budget` leaves once every slot has its known
/// room (`per_slot` bytes), at most [`UNKNOWN_OUTPUT_BYTES`]; 0 when nothing is left.
pub(crate) fn unknown_room(budget: u64, slots: usize, per_slot: u64) -> u64 {
    (budget / (slots.max(1) as u64))
        .saturating_sub(per_slot)
        .min(UNKNOWN_OUTPUT_BYTES)
}

/// The arena of an `shm` point: its slots and room, before alignment.
pub(crate) fn need(
    models: &[ModelSpec],
    workload: &Workload,
    load: &LoadSpec,
    point: LoadPoint,
) -> Need {
    Need {
        slots: slots(point, load.max_in_flight, fanout(workload)),
        input: input_bytes(models),
        known_output: models
            .iter()
            .map(|m| known_output_bytes(m).0)
            .max()
            .unwrap_or(0),
    }
}

/// `n` bytes in MiB, one decimal.
fn mib(n: u64) -> String {
    format!("{:.1} MiB", n as f64 / MIB as f64)
}

/// One problem: the key to point at, the message and the fix.
pub(super) struct OverBudget {
    pub(crate) key: KeyPath,
    pub(crate) message: String,
    pub(crate) hint: String,
}

/// The `shm` points whose arena does not fit in `budget_mib`, one problem per load value (the
/// arena does not depend on the other axes). `max_in_flight_set`: the scenario writes
/// `[load] max_in_flight`, so an open-loop problem can point at it.
pub(super) fn check(
    models: &[ModelSpec],
    workload: &Workload,
    load: &LoadSpec,
    points: &[Point],
    budget_mib: u64,
    max_in_flight_set: bool,
) -> Vec<OverBudget> {
    let budget = budget_mib.saturating_mul(MIB);
    let root = KeyPath::default();
    let shm: Vec<&Point> = points
        .iter()
        .filter(|p| p.transfer == Transfer::Shm)
        .collect();
    let Some(first) = shm.first() else {
        return Vec::new();
    };
    // Reads each ONNX signature once, not once per point. A dynamic batching point's slots hold
    // `max_batch` requests' samples and outputs.
    let base = need(models, workload, load, first.load);
    let per_run = |p: &Point| p.batching.map_or(1, |b| b.max_batch) as u64;
    let need = |lp: LoadPoint, k: u64| Need {
        slots: slots(lp, load.max_in_flight, fanout(workload)),
        input: base.input.saturating_mul(k),
        known_output: base.known_output.saturating_mul(k),
    };
    let mut seen: Vec<((LoadPoint, u64), Vec<&str>)> = Vec::new();
    for p in shm {
        let at = (p.load, per_run(p));
        if !need(at.0, at.1).fits(budget) {
            match seen.iter_mut().find(|(l, _)| *l == at) {
                Some((_, ids)) => ids.push(&p.id),
                None => seen.push((at, vec![&p.id])),
            }
        }
    }
    seen.into_iter()
        .map(|((lp, k), ids)| {
            let n = need(lp, k);
            let fit = n.max_slots(budget) / fanout(workload) as u64;
            let (key, axis, lower) = match lp {
                LoadPoint::Closed { concurrency } => (
                    root.key("load").key("concurrency"),
                    format!("concurrency = {concurrency}"),
                    format!("lower `concurrency` to {fit} or less"),
                ),
                LoadPoint::Open { rate } => (
                    if max_in_flight_set {
                        root.key("load").key("max_in_flight")
                    } else {
                        root.key("sweep").key("transfer")
                    },
                    format!(
                        "rate = {rate}, max_in_flight = {} (at most {MAX_OPEN_LOOP_SLOTS} slots)",
                        load.max_in_flight
                    ),
                    format!("set `[load] max_in_flight = {fit}` or less"),
                ),
            };
            let fix = if fit == 0 {
                "raise `[transfer] shm_budget_mib`, or use `transfer = \"pipe\"`".to_string()
            } else {
                format!(
                    "{lower}, raise `[transfer] shm_budget_mib` (now {budget_mib}), or use \
                     `transfer = \"pipe\"`"
                )
            };
            OverBudget {
                key,
                message: format!(
                    "the shm arena of point {} ({axis}) needs {} slot(s) × ({} input + {} known \
                     output) = {}, over the `[transfer] shm_budget_mib` of {budget_mib} MiB",
                    ids.join(", "),
                    n.slots,
                    mib(n.input),
                    mib(n.known_output),
                    mib(n.total()),
                ),
                hint: fix,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_the_load_and_the_fanout() {
        assert_eq!(slots(LoadPoint::Closed { concurrency: 4 }, 10_000, 3), 12);
        let open = LoadPoint::Open { rate: 5.0 };
        assert_eq!(slots(open, 10_000, 1), MAX_OPEN_LOOP_SLOTS);
        assert_eq!(slots(open, 200, 2), 400);
        assert_eq!(
            slots(
                LoadPoint::Closed {
                    concurrency: usize::MAX
                },
                1,
                2
            ),
            usize::MAX
        );
    }

    #[test]
    fn the_budget_counts_slots_times_input_and_known_output() {
        // The detector: a 640×640 float input, 100,000 clients.
        let input = 3 * 640 * 640 * 4;
        let n = Need {
            slots: 100_000,
            input,
            known_output: 0,
        };
        assert_eq!(n.total(), 100_000 * 4_915_200);
        assert!(!n.fits(DEFAULT_BUDGET_MIB * MIB));
        assert_eq!(n.max_slots(DEFAULT_BUDGET_MIB * MIB), 1747);
        let ok = Need { slots: 1747, ..n };
        assert!(ok.fits(DEFAULT_BUDGET_MIB * MIB));
        assert!(!Need { slots: 1748, ..n }.fits(DEFAULT_BUDGET_MIB * MIB));
        // Saturates instead of wrapping.
        let huge = Need {
            slots: usize::MAX,
            input: u64::MAX,
            known_output: 1,
        };
        assert_eq!(huge.total(), u64::MAX);
        assert_eq!(
            Need {
                slots: 9,
                input: 0,
                known_output: 0
            }
            .max_slots(0),
            u64::MAX
        );
    }

    #[test]
    fn unknown_outputs_get_what_the_budget_leaves_up_to_16_mib() {
        assert_eq!(unknown_room(8 << 30, 1, 1000), UNKNOWN_OUTPUT_BYTES);
        assert_eq!(unknown_room(1000 * 100, 100, 400), 600);
        assert_eq!(unknown_room(1000, 100, 400), 0, "nothing left");
        assert_eq!(unknown_room(1000, 0, 0), 1000, "no slots counts as one");
    }
}
