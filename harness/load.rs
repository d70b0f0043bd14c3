//! Load generation. This version drives a closed loop: `concurrency` clients, each sending its next
//! request as soon as the previous one is answered. Every client runs on the parent's single runtime
//! thread, so the parent adds no cross-thread wake-ups of its own.
//!
//! In a closed loop the intended send time is the actual send time, so latency is measured from the
//! moment the request is handed to the socket until its reply is decoded.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::distr::{Distribution, weighted::WeightedIndex};
use rand_chacha::ChaCha8Rng;

use crate::metrics::ModelRecord;
use crate::scenario::{Limit, ModelSpec};
use crate::worker::pool::{Pool, Reply};

/// What a phase measured.
#[derive(Debug, Clone)]
pub struct PhaseResult {
    /// One record per model, in scenario order.
    pub models: Vec<ModelRecord>,
    /// From the first send to the last reply.
    pub elapsed: Duration,
}

impl PhaseResult {
    pub fn sent(&self) -> u64 {
        self.models.iter().map(|m| m.ok() + m.error_count()).sum()
    }
}

/// Runs one closed-loop phase until `limit` is reached.
///
/// `mix` weights the models; `seed` fixes each client's sequence of model choices; `cancel` stops
/// issuing new requests early (the requests in flight still complete).
pub async fn closed_loop(
    pool: &Pool,
    models: &[ModelSpec],
    mix: &[f64],
    concurrency: usize,
    limit: Limit,
    seed: u64,
    cancel: &tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<PhaseResult> {
    let weights =
        WeightedIndex::new(mix).map_err(|e| anyhow::anyhow!("invalid mix weights: {e}"))?;
    let records = RefCell::new(vec![ModelRecord::default(); models.len()]);
    let issued = Cell::new(0u64);
    let next_id = Cell::new(0u64);
    let start = Instant::now();
    let deadline = match limit {
        Limit::Duration(d) => Some(start + d),
        Limit::Requests(_) => None,
    };
    let keep_going = || {
        if *cancel.borrow() {
            return false;
        }
        match limit {
            Limit::Requests(n) => issued.get() < n,
            Limit::Duration(_) => Instant::now() < deadline.expect("duration limit has a deadline"),
        }
    };
    let last_reply = Cell::new(start);

    let client = |c: usize| {
        let weights = &weights;
        let records = &records;
        let keep_going = &keep_going;
        let issued = &issued;
        let next_id = &next_id;
        let last_reply = &last_reply;
        async move {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(c as u64);
            let mut frame = Vec::new();
            let mut sample_index = c;
            while keep_going() {
                issued.set(issued.get() + 1);
                let m = weights.sample(&mut rng);
                let spec = &models[m];
                let sample = &spec.samples[sample_index % spec.samples.len()];
                sample_index += 1;
                let id = next_id.get();
                next_id.set(id + 1);
                let worker = pool.least_loaded(c);
                let sent = Instant::now();
                let reply = worker.call(id, m as u32, sample, &mut frame).await;
                let done = Instant::now();
                last_reply.set(last_reply.get().max(done));
                let mut recs = records.borrow_mut();
                match &reply {
                    Reply::Done { compute_ns, .. } => recs[m].record_ok(done - sent, *compute_ns),
                    Reply::Failed(msg) => recs[m].record_error("runtime_error", msg),
                    Reply::Lost(msg) => {
                        // The worker is gone: this client stops rather than spin on a dead socket.
                        recs[m].record_error("worker_lost", msg);
                        break;
                    }
                }
            }
        }
    };
    futures::future::join_all((0..concurrency).map(client)).await;
    Ok(PhaseResult {
        models: records.into_inner(),
        elapsed: last_reply.get() - start,
    })
}
