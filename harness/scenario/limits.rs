//! What each point starts (worker processes, compute threads) and the limits past which a sweep
//! is refused before anything is spawned, unless `--force`.
//!
//! A typo such as `workers = 10000` used to pass `bench validate`, then spawned workers for minutes
//! before something gave way. Each point's footprint is known from the scenario alone, so it is
//! said up front (`bench validate`, `--dry-run`, the sweep's first line) and checked against two
//! limits:
//!
//! - at most [`MAX_PROCESSES`] worker processes in a point, whatever the machine: each is a
//!   process with its own runtime, sessions and memory;
//! - at most [`MAX_THREADS_PER_CPU`] compute threads at once per CPU this process may use
//!   (`workers × worker_concurrency × intra_threads`: each worker runs `worker_concurrency`
//!   requests at a time, each on `intra_threads` threads): beyond that the
//!   point measures the scheduler, not the deployment. Lighter oversubscription is measured, and
//!   flagged (`oversubscribed`).
//!
//! The limits are problems a person can overrule: `--force` runs such points anyway.

use super::sweep::Point;

/// The most worker processes one point may start without `--force`.
pub(crate) const MAX_PROCESSES: usize = 256;

/// The most compute threads at once per usable CPU without `--force`.
pub(crate) const MAX_THREADS_PER_CPU: usize = 8;

/// What one point starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Footprint {
    /// Worker processes.
    pub(crate) processes: usize,
    /// Compute threads running at once: each worker runs `worker_concurrency` requests at a time,
    /// each on `intra_threads` threads.
    pub(crate) threads: usize,
}

/// What `point` starts.
pub(crate) fn footprint(point: &Point) -> Footprint {
    Footprint {
        processes: point.workers,
        threads: point
            .workers
            .saturating_mul(point.worker_concurrency)
            .saturating_mul(point.intra_threads),
    }
}

/// The CPUs this process may use (its affinity and CPU quota), as the limits count them.
pub(crate) fn usable_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A limit some points pass: which key to lower, what is wrong, and what to do.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OverLimit {
    /// `workers`, `worker_concurrency` or `intra_threads`, under `[sweep]`.
    pub(crate) key: &'static str,
    pub(crate) message: String,
    pub(crate) hint: String,
}

/// The limits that `points` pass on a machine with `cpus` usable CPUs: one entry per limit, about
/// the largest point past it.
pub(crate) fn check(points: &[Point], cpus: usize) -> Vec<OverLimit> {
    let mut out = Vec::new();
    // A point past the process limit is past the thread limit too on most machines: it is told
    // once, for its processes.
    let over = |f: fn(&Footprint) -> usize, max: usize| -> Option<(&Point, usize)> {
        let past: Vec<&Point> = points
            .iter()
            .filter(|p| f(&footprint(p)) > max)
            .filter(|p| max == MAX_PROCESSES || footprint(p).processes <= MAX_PROCESSES)
            .collect();
        let worst = past.iter().max_by_key(|p| f(&footprint(p)))?;
        Some((worst, past.len()))
    };
    let others = |n: usize| match n {
        1 => String::new(),
        n => format!(" ({} points are over it)", n),
    };
    if let Some((p, n)) = over(|f| f.processes, MAX_PROCESSES) {
        out.push(OverLimit {
            key: "workers",
            message: format!(
                "point {} would start {} worker processes, more than the limit of {MAX_PROCESSES}{}",
                p.id,
                p.workers,
                others(n)
            ),
            hint: format!(
                "lower `workers` (at most {MAX_PROCESSES}), or pass --force to start them anyway"
            ),
        });
    }
    let max_threads = cpus.max(1).saturating_mul(MAX_THREADS_PER_CPU);
    if let Some((p, n)) = over(|f| f.threads, max_threads) {
        out.push(OverLimit {
            key: if p.intra_threads > 1 {
                "intra_threads"
            } else if p.worker_concurrency > 1 {
                "worker_concurrency"
            } else {
                "workers"
            },
            message: format!(
                "point {} would run {} compute threads at once ({} workers × {}{} intra_threads), \
                 more than {MAX_THREADS_PER_CPU} per CPU on the {cpus} CPU(s) bench may use \
                 ({max_threads}){}",
                p.id,
                footprint(p).threads,
                p.workers,
                if p.worker_concurrency > 1 {
                    format!("{} worker_concurrency × ", p.worker_concurrency)
                } else {
                    String::new()
                },
                p.intra_threads,
                others(n)
            ),
            hint: "lower `workers`, `worker_concurrency` or `intra_threads`, or pass --force to \
                   run it anyway (the CSV flags it as oversubscribed)"
                .into(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(workers: usize, intra_threads: usize) -> Point {
        Point {
            id: format!("w{workers}-t{intra_threads}"),
            workers,
            intra_threads,
            ..Point::default()
        }
    }

    /// Regression: `workers = 10000` passed validation and spawned workers for minutes.
    #[test]
    fn ten_thousand_workers_are_over_the_process_limit() {
        let found = check(&[point(2, 1), point(10_000, 1)], 2);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].key, "workers");
        assert!(
            found[0].message.starts_with(
                "point w10000-t1 would start 10000 worker processes, more than the limit of 256"
            ),
            "{}",
            found[0].message
        );
        assert!(found[0].hint.contains("--force"), "{}", found[0].hint);
        // Another point over the thread limit alone is told apart.
        let found = check(&[point(10_000, 1), point(20, 1)], 2);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[1]
                .message
                .starts_with("point w20-t1 would run 20 compute threads")
        );
    }

    #[test]
    fn threads_are_counted_per_usable_cpu() {
        assert_eq!(
            footprint(&point(4, 3)),
            Footprint {
                processes: 4,
                threads: 12
            }
        );
        // 2 CPUs: up to 16 threads at once.
        assert!(check(&[point(8, 2), point(16, 1), point(3, 2)], 2).is_empty());
        let found = check(&[point(5, 4), point(9, 2), point(4, 4)], 2);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].key, "intra_threads");
        assert!(
            found[0]
                .message
                .starts_with("point w5-t4 would run 20 compute threads at once")
                && found[0].message.ends_with("(2 points are over it)"),
            "{}",
            found[0].message
        );
        assert!(check(&[point(256, 1)], 64).is_empty());
        assert_eq!(check(&[point(257, 1)], 64).len(), 1);
    }
}
