//! `[batching]`: dynamic batching, as an inference server does it ([`crate::load::batcher`] runs it).
//!
//! ```toml
//! [batching]
//! max_batch = [1, 8]     # requests per run at most; 1 is no batching. A list is a sweep axis.
//! max_delay = "2ms"      # the longest the oldest request of a batch waits for others
//! idle = "wait"          # "wait": wait for a full batch even while a worker idles; "send": don't
//! ```
//!
//! Every combination of the three lists is a sweep axis value: one [`BatchPolicy`] per point. A
//! model joins requests along its batch dim (the dim named `batch`, or its `batch_dim`), so each
//! model needs one; the static `[sweep] batch` axis binds the same dim and cannot be combined.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::raw::{OneOrMany, RawBatching};
use super::source::KeyPath;
use super::workload::duration_key;
use super::{Errors, Runtime, Transfer};

/// The longest `max_delay` accepted: a batch that waits longer is a typo, not a policy.
pub(crate) const MAX_DELAY_LIMIT: Duration = Duration::from_secs(10);

/// Whether a forming batch waits for more requests while a worker is idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum IdlePolicy {
    /// Wait until the batch is full or `max_delay` has passed, whatever the workers do (Triton's
    /// dynamic batcher with a queue delay): fuller batches, longer waits at low load.
    Wait,
    /// Send at once while a worker holding the model has nothing in flight: batches form only
    /// from requests that queued while every worker was busy.
    Send,
}

impl IdlePolicy {
    pub(crate) const ALL: [IdlePolicy; 2] = [IdlePolicy::Wait, IdlePolicy::Send];

    pub(crate) fn name(self) -> &'static str {
        match self {
            IdlePolicy::Wait => "wait",
            IdlePolicy::Send => "send",
        }
    }
}

/// One point's dynamic batching.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BatchPolicy {
    /// The most requests in one run; 1 turns batching off.
    pub(crate) max_batch: usize,
    /// The longest the oldest request of a forming batch waits for others.
    #[serde(serialize_with = "as_micros")]
    pub(crate) max_delay: Duration,
    pub(crate) idle: IdlePolicy,
}

fn as_micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_micros() as u64)
}

impl BatchPolicy {
    /// The part of a point id that names it: `mb8-d2ms`, `-send` added for that policy.
    pub(crate) fn id(&self) -> String {
        let delay = humantime::format_duration(self.max_delay)
            .to_string()
            .replace(' ', "");
        let mut id = format!("mb{}-d{delay}", self.max_batch);
        if self.idle == IdlePolicy::Send {
            id.push_str("-send");
        }
        id
    }
}

/// The `[batching]` table as sweep axis values: `[None]` without the table, else one policy per
/// combination of `max_batch` × `max_delay` × `idle`, the last varying fastest.
pub(super) fn resolve(raw: Option<&RawBatching>, e: &mut Errors) -> Vec<Option<BatchPolicy>> {
    let Some(raw) = raw else { return vec![None] };
    let key = KeyPath::default().key("batching");
    let max_batch: Vec<usize> = match &raw.max_batch {
        None => {
            e.push(
                &key.key("max_batch"),
                "[batching] needs `max_batch`, the most requests in one run",
                "e.g. `max_batch = [1, 8]` to compare batching with none",
            );
            return vec![None];
        }
        Some(v) => list(v, &key.key("max_batch"), e)
            .into_iter()
            .filter_map(|n| match usize::try_from(n) {
                Ok(n) if n >= 1 => Some(n),
                _ => {
                    e.push(
                        &key.key("max_batch"),
                        format!("must be at least 1, got {n}"),
                        "1 runs every request alone; e.g. `max_batch = 8`",
                    );
                    None
                }
            })
            .collect(),
    };
    let max_delay: Vec<Duration> = match &raw.max_delay {
        None => vec![Duration::from_millis(1)],
        Some(v) => list(v, &key.key("max_delay"), e)
            .iter()
            .filter_map(|s| {
                let d = duration_key(s, &key.key("max_delay"), true, e)?;
                if d > MAX_DELAY_LIMIT {
                    e.push(
                        &key.key("max_delay"),
                        format!("`{s}` is longer than the 10s limit"),
                        "a batch waits milliseconds, e.g. `max_delay = \"2ms\"`",
                    );
                    return None;
                }
                Some(d)
            })
            .collect(),
    };
    let idle: Vec<IdlePolicy> = match &raw.idle {
        None => vec![IdlePolicy::Wait],
        Some(v) => list(v, &key.key("idle"), e)
            .iter()
            .filter_map(|s| {
                let p = IdlePolicy::ALL.into_iter().find(|p| p.name() == s);
                if p.is_none() {
                    e.push(
                        &key.key("idle"),
                        format!("unknown value `{s}`"),
                        "use \"wait\" (wait for a full batch while a worker idles) or \"send\"",
                    );
                }
                p
            })
            .collect(),
    };
    let mut out = Vec::new();
    for &max_batch in &max_batch {
        for &max_delay in &max_delay {
            for &idle in &idle {
                let p = Some(BatchPolicy {
                    max_batch,
                    max_delay,
                    idle,
                });
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
    }
    if out.is_empty() { vec![None] } else { out }
}

fn list<T: Clone>(v: &OneOrMany<T>, key: &KeyPath, e: &mut Errors) -> Vec<T> {
    let v = v.to_vec();
    if v.is_empty() {
        e.push(
            key,
            "the list is empty, so the sweep has no points",
            "give at least one value",
        );
    }
    v
}

/// Whether any point batches (a policy with `max_batch` above 1).
pub(crate) fn batches(axis: &[Option<BatchPolicy>]) -> bool {
    axis.iter().flatten().any(|p| p.max_batch > 1)
}

/// What dynamic batching cannot be combined with, said once for the whole scenario.
pub(super) fn refuse_combinations(
    axis: &[Option<BatchPolicy>],
    static_batch: bool,
    transfers: &[Transfer],
    runtimes: &[Runtime],
    e: &mut Errors,
) {
    if !batches(axis) {
        return;
    }
    let key = KeyPath::default().key("batching");
    if static_batch {
        e.push(
            &key,
            "[batching] joins requests along the batch dim that `[sweep] batch` binds to one size",
            "sweep either `batch` (a fixed batch per request) or [batching] (requests joined by \
             the server), not both",
        );
    }
    if transfers.contains(&Transfer::Device) {
        e.push(
            &key,
            "the device transfer keeps each sample on the GPU at its own shape, so it cannot \
             join requests into batches",
            "use transfer = \"pipe\", \"shm\" or \"index\" with [batching]",
        );
    }
    if transfers.contains(&Transfer::Index) && runtimes.contains(&Runtime::Torch) {
        e.push(
            &key,
            "the torch worker cannot join `index` samples into batches",
            "use transfer = \"pipe\" or \"shm\" with the torch runtime and [batching]",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_ids_name_batch_delay_and_the_send_policy() {
        let p = BatchPolicy {
            max_batch: 8,
            max_delay: Duration::from_millis(2),
            idle: IdlePolicy::Wait,
        };
        assert_eq!(p.id(), "mb8-d2ms");
        let q = BatchPolicy {
            max_delay: Duration::from_micros(500),
            idle: IdlePolicy::Send,
            ..p
        };
        assert_eq!(q.id(), "mb8-d500us-send");
    }
}
