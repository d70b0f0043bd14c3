//! Dynamic batching, as an inference server does it: requests for one model wait in a queue and go
//! to a worker together, as one run of up to `max_batch` requests. The run goes out as soon as the
//! batch is full or its oldest request has waited `max_delay`; with the `send` idle policy, also
//! at once while a worker that holds the model has nothing to do.
//!
//! Two layers, as in [`crate::commands::capacity`](mod@crate::commands::capacity)'s search:
//!
//! - [`decide`] is the policy: a pure function of the queue's length and age, the clock and
//!   whether a worker is idle. It is tested on its own.
//! - [`Batcher`] is the queue, driven by the requests themselves (the load generator runs on one
//!   thread, without tasks of its own). The first request to find a model's queue empty leads: it
//!   waits as [`decide`] says, takes the batch, and runs it; the others wait for their result. When
//!   a batch leaves requests behind, the first of them leads the next one.
//!
//! Each request's latency still runs from its own intended send time, so its wait in the queue is
//! inside it; the load generator records that wait on its own as well.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::time::Instant;

use tokio::sync::{Notify, oneshot};

use crate::load::timer::PreciseTimer;
pub(crate) use crate::scenario::{BatchPolicy as Policy, IdlePolicy};

/// What the leader of a forming batch does now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Take up to `max_batch` requests from the queue and run them.
    Send,
    /// Wait for more requests until this instant (or until one arrives, or a worker goes idle).
    WaitUntil(Instant),
}

/// The policy: `queued` requests wait, the oldest since `oldest`; `worker_idle` says whether a
/// worker holding the model has nothing in flight.
pub(crate) fn decide(
    policy: &Policy,
    queued: usize,
    oldest: Instant,
    now: Instant,
    worker_idle: bool,
) -> Decision {
    let deadline = oldest + policy.max_delay;
    if queued >= policy.max_batch || now >= deadline {
        return Decision::Send;
    }
    match policy.idle {
        IdlePolicy::Send if worker_idle => Decision::Send,
        IdlePolicy::Send | IdlePolicy::Wait => Decision::WaitUntil(deadline),
    }
}

/// A queued request: its item (what the load generator needs to run it) and how it hears back.
struct Waiter<T, R> {
    item: T,
    since: Instant,
    reply: Option<oneshot::Sender<Message<R>>>,
}

enum Message<R> {
    /// Your batch ran; here is your result.
    Done(R),
    /// You are first in the queue now: lead the next batch.
    Lead,
}

/// What [`Batcher::join`] hands back.
pub(crate) enum Joined<T, R> {
    /// Another request led the batch this one was in; this is its result.
    Done(R),
    /// This request leads: run `batch` (its own item first), then [`Batch::finish`] it.
    Lead(Batch<T, R>),
}

/// A batch taken from a queue: the items to run as one, and the others' ways back.
pub(crate) struct Batch<T, R> {
    pub(crate) items: Vec<T>,
    /// When each item joined its queue, in the order of `items`.
    pub(crate) joined: Vec<Instant>,
    followers: Vec<Option<oneshot::Sender<Message<R>>>>,
}

impl<T, R> Batch<T, R> {
    /// Hands each follower its result; `results[0]` is the leader's own, returned.
    pub(crate) fn finish(self, results: Vec<R>) -> R {
        let mut results = results.into_iter();
        let own = results.next().expect("a batch holds its leader");
        for (tx, r) in self.followers.into_iter().zip(results) {
            if let Some(tx) = tx {
                // A follower that went away (its phase was cancelled) needs no answer.
                let _ = tx.send(Message::Done(r));
            }
        }
        own
    }
}

/// The queues of one phase, one per model.
pub(crate) struct Batcher<T, R> {
    policy: Policy,
    queues: RefCell<Vec<VecDeque<Waiter<T, R>>>>,
    /// Wakes a model's leader: its batch is full.
    full: Vec<Notify>,
    /// Wakes every leader: a worker finished a run (it may be idle now).
    freed: Notify,
}

impl<T, R> Batcher<T, R> {
    pub(crate) fn new(policy: Policy, models: usize) -> Batcher<T, R> {
        Batcher {
            policy,
            queues: RefCell::new((0..models).map(|_| VecDeque::new()).collect()),
            full: (0..models).map(|_| Notify::new()).collect(),
            freed: Notify::new(),
        }
    }

    /// Tells waiting leaders that a worker finished a run: with the `send` policy, an idle worker
    /// ends their wait.
    pub(crate) fn worker_freed(&self) {
        self.freed.notify_waiters();
    }

    /// Queues `item` for model `m` and waits: for its result, or to lead a batch. `now` is when
    /// the request reached the queue; `worker_idle` says whether a worker holding `m` has
    /// nothing in flight.
    pub(crate) async fn join(
        &self,
        m: usize,
        item: T,
        now: Instant,
        worker_idle: impl Fn() -> bool,
    ) -> anyhow::Result<Joined<T, R>> {
        let (tx, rx) = oneshot::channel();
        let leads = {
            let mut queues = self.queues.borrow_mut();
            let q = &mut queues[m];
            q.push_back(Waiter {
                item,
                since: now,
                reply: Some(tx),
            });
            if q.len() >= self.policy.max_batch {
                self.full[m].notify_one();
            }
            q.len() == 1
        };
        if !leads {
            match rx.await {
                Ok(Message::Done(r)) => return Ok(Joined::Done(r)),
                Ok(Message::Lead) => {}
                Err(_) => anyhow::bail!("a batch leader went away without an answer"),
            }
        }
        // Leading: this request is first in the queue until it takes its batch.
        let mut timer: Option<PreciseTimer> = None;
        loop {
            let (queued, oldest) = {
                let queues = self.queues.borrow();
                (queues[m].len(), queues[m][0].since)
            };
            match decide(&self.policy, queued, oldest, Instant::now(), worker_idle()) {
                Decision::Send => break,
                Decision::WaitUntil(t) => {
                    let timer = match &mut timer {
                        Some(t) => t,
                        None => timer.insert(PreciseTimer::new()?),
                    };
                    tokio::select! {
                        r = timer.sleep_until(t) => r?,
                        _ = self.full[m].notified() => {}
                        _ = self.freed.notified(), if self.policy.idle == IdlePolicy::Send => {}
                    }
                }
            }
        }
        let mut queues = self.queues.borrow_mut();
        let q = &mut queues[m];
        let take = q.len().min(self.policy.max_batch);
        let mut items = Vec::with_capacity(take);
        let mut joined = Vec::with_capacity(take);
        let mut followers = Vec::with_capacity(take.saturating_sub(1));
        for (k, w) in q.drain(..take).enumerate() {
            items.push(w.item);
            joined.push(w.since);
            if k > 0 {
                followers.push(w.reply);
            }
        }
        if let Some(next) = q.front_mut().and_then(|w| w.reply.take()) {
            // The next batch's leader; if it went away, the one after it is told when it is
            // first (its own join found the queue non-empty, so it waits for this message).
            if next.send(Message::Lead).is_err() {
                q.pop_front();
                if let Some(w) = q.front_mut().and_then(|w| w.reply.take()) {
                    let _ = w.send(Message::Lead);
                }
            }
        }
        Ok(Joined::Lead(Batch {
            items,
            joined,
            followers,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use std::time::Duration;

    fn policy(max_batch: usize, delay_ms: u64, idle: IdlePolicy) -> Policy {
        Policy {
            max_batch,
            max_delay: Duration::from_millis(delay_ms),
            idle,
        }
    }

    #[test]
    fn a_batch_goes_when_full_or_when_its_oldest_has_waited_max_delay() {
        let p = policy(4, 2, IdlePolicy::Wait);
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        assert_eq!(decide(&p, 4, t0, t0, false), Decision::Send);
        assert_eq!(decide(&p, 1, t0, ms(1), false), Decision::WaitUntil(ms(2)));
        assert_eq!(decide(&p, 3, t0, ms(2), false), Decision::Send);
        // `wait` holds a request back even while a worker idles; `send` does not.
        assert_eq!(decide(&p, 1, t0, t0, true), Decision::WaitUntil(ms(2)));
        let eager = policy(4, 2, IdlePolicy::Send);
        assert_eq!(decide(&eager, 1, t0, t0, true), Decision::Send);
        assert_eq!(decide(&eager, 1, t0, t0, false), Decision::WaitUntil(ms(2)));
        // max_batch 1 is no batching: every request goes at once.
        assert_eq!(
            decide(&policy(1, 50, IdlePolicy::Wait), 1, t0, t0, false),
            Decision::Send
        );
    }

    /// Runs `n` requests through a batcher on one thread, as the load generator does: each
    /// leader "runs" its batch by answering every item with the batch's size.
    fn run_requests(p: Policy, n: usize) -> Vec<usize> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let b: Batcher<usize, usize> = Batcher::new(p, 1);
            let request = |i: usize| {
                let b = &b;
                async move {
                    match b.join(0, i, Instant::now(), || false).await.unwrap() {
                        Joined::Done(size) => size,
                        Joined::Lead(batch) => {
                            let size = batch.items.len();
                            assert_eq!(batch.items[0], *batch.items.iter().min().unwrap());
                            tokio::task::yield_now().await;
                            batch.finish(vec![size; size])
                        }
                    }
                }
            };
            futures::future::join_all((0..n).map(request)).await
        })
    }

    #[test]
    fn requests_that_arrive_together_leave_in_full_batches_and_the_rest_waits_max_delay() {
        let sizes = run_requests(policy(4, 5, IdlePolicy::Wait), 10);
        // Ten requests at once: two full batches of 4, then 2 that waited out the delay.
        assert_eq!(sizes, [4, 4, 4, 4, 4, 4, 4, 4, 2, 2]);
        let sizes = run_requests(policy(1, 5, IdlePolicy::Wait), 3);
        assert_eq!(sizes, [1, 1, 1]);
    }

    #[test]
    fn a_lone_request_waits_out_max_delay_then_goes_alone() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let b: Batcher<u32, u32> = Batcher::new(policy(8, 3, IdlePolicy::Wait), 2);
        let t0 = Instant::now();
        let joined = rt.block_on(b.join(1, 7, t0, || true)).unwrap();
        let Joined::Lead(batch) = joined else {
            panic!("a lone request leads its own batch")
        };
        assert!(t0.elapsed() >= Duration::from_millis(3));
        assert_eq!(batch.items, [7]);
        assert_eq!(batch.finish(vec![9]), 9);
        // With `send`, an idle worker takes it at once.
        let eager: Batcher<u32, u32> = Batcher::new(policy(8, 1000, IdlePolicy::Send), 1);
        let joined = eager
            .join(0, 1, Instant::now(), || true)
            .now_or_never()
            .expect("no wait while a worker idles")
            .unwrap();
        assert!(matches!(joined, Joined::Lead(b) if b.items == [1]));
    }
}
