//! Sweep expansion: the cartesian product of the axes, in a stable order, each point with a stable id.

use serde::Serialize;

use super::{
    Axes, BatchPolicy, Channel, LoadPoint, Pin, Placement, Provider, Runtime, SessionKnobs,
    Transfer,
};

/// The most points one scenario may expand to; a guard against a typo that multiplies axes.
pub const MAX_POINTS: usize = 10_000;

/// One configuration to measure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    /// Position in the sweep, from 0.
    pub index: usize,
    /// Stable id built from the parameters, e.g. `w2-t1-pipe-cpu-c4`; it does not change when other
    /// points are added, so results can be matched across runs.
    pub id: String,
    pub workers: usize,
    pub intra_threads: usize,
    pub transfer: Transfer,
    /// How requests and replies travel (`socket` or `spin`).
    pub channel: Channel,
    pub placement: Placement,
    pub pin: Pin,
    pub provider: Provider,
    pub load: LoadPoint,
    /// Requests each worker runs at the same time, from its own threads on shared sessions (1: one
    /// at a time).
    pub worker_concurrency: usize,
    pub runtime: Runtime,
    /// ONNX Runtime's session options at this point.
    pub session: SessionKnobs,
    /// The batch size bound to every model's batch dim; `None` without a `batch` axis.
    pub batch: Option<usize>,
    /// Dynamic batching (`[batching]`); `None` without it.
    pub batching: Option<BatchPolicy>,
}

/// Every combination of the session-option axes, the last varying fastest.
fn session_combinations(axes: &Axes) -> Vec<SessionKnobs> {
    let mut out = Vec::new();
    for &graph_optimization in &axes.graph_optimization {
        for &execution_mode in &axes.execution_mode {
            for &inter_threads in &axes.inter_threads {
                for &intra_spinning in &axes.intra_spinning {
                    for &cpu_arena in &axes.cpu_arena {
                        for &memory_pattern in &axes.memory_pattern {
                            out.push(SessionKnobs {
                                graph_optimization,
                                execution_mode,
                                inter_threads,
                                intra_spinning,
                                cpu_arena,
                                memory_pattern,
                            });
                        }
                    }
                }
            }
        }
    }
    out
}

/// Expands the axes. The last axis varies fastest: workers, intra_threads, the session options
/// (graph_optimization, execution_mode, inter_threads, intra_spinning, cpu_arena, memory_pattern),
/// transfer, channel, placement, pin, provider, batch, load (concurrency or rate), worker_concurrency,
/// runtime; so the runtimes
/// of one configuration run back to back. Returns `Err(n)` when the product exceeds
/// [`MAX_POINTS`].
pub fn expand(axes: &Axes) -> Result<Vec<Point>, usize> {
    let sessions = axes
        .graph_optimization
        .len()
        .saturating_mul(axes.execution_mode.len())
        .saturating_mul(axes.inter_threads.len())
        .saturating_mul(axes.intra_spinning.len())
        .saturating_mul(axes.cpu_arena.len())
        .saturating_mul(axes.memory_pattern.len());
    let n = axes.workers.len()
        * axes.intra_threads.len()
        * sessions
        * axes.batch.len()
        * axes.batching.len()
        * axes.transfer.len()
        * axes.channel.len()
        * axes.placement.len()
        * axes.pin.len()
        * axes.provider.len()
        * axes.load.len()
        * axes.worker_concurrency.len()
        * axes.runtime.len();
    if n > MAX_POINTS {
        return Err(n);
    }
    let sessions = session_combinations(axes);
    let mut points = Vec::with_capacity(n);
    for &workers in &axes.workers {
        for &intra_threads in &axes.intra_threads {
            for &session in &sessions {
                for (&transfer, &channel) in axes
                    .transfer
                    .iter()
                    .flat_map(|t| axes.channel.iter().map(move |c| (t, c)))
                {
                    for &placement in &axes.placement {
                        for &pin in &axes.pin {
                            for &provider in &axes.provider {
                                for (&batch, &batching) in axes
                                    .batch
                                    .iter()
                                    .flat_map(|b| axes.batching.iter().map(move |p| (b, p)))
                                {
                                    for (&load, &worker_concurrency) in
                                        axes.load.iter().flat_map(|l| {
                                            axes.worker_concurrency.iter().map(move |k| (l, k))
                                        })
                                    {
                                        for &runtime in &axes.runtime {
                                            let mut point = Point {
                                                index: points.len(),
                                                id: String::new(),
                                                workers,
                                                intra_threads,
                                                transfer,
                                                channel,
                                                placement,
                                                pin,
                                                provider,
                                                load,
                                                worker_concurrency,
                                                runtime,
                                                session,
                                                batch,
                                                batching,
                                            };
                                            point.id = point_id(&point);
                                            points.push(point);
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(points)
}

/// A point's id. The defaults stay out of it (placement `replicate`, pin `none`, runtime `ort`,
/// worker_concurrency 1, the session options' defaults, no `batch` axis or `[batching]`), so ids
/// of simple sweeps stay short and ids from before an axis existed stay the same. The session
/// options follow the threads (`w1-t2-nospin-pipe-cpu-c4`); the batch or batching policy comes
/// just before the load (`...-cpu-b8-c4`, `...-cpu-mb8-d2ms-r500`); a worker_concurrency of `k`
/// adds `-k{k}` after the load (`bench capacity` drops the load part wherever it stands to name a
/// configuration).
fn point_id(p: &Point) -> String {
    let Point {
        workers,
        intra_threads,
        transfer,
        channel,
        placement,
        pin,
        provider,
        load,
        worker_concurrency,
        runtime,
        session,
        batch,
        batching,
        ..
    } = *p;
    let mut id = format!(
        "w{workers}-t{intra_threads}{}-{}",
        session.id_part(),
        transfer.name()
    );
    if channel != Channel::Socket {
        id.push('-');
        id.push_str(channel.name());
    }
    if placement != Placement::Replicate {
        id.push('-');
        id.push_str(placement.name());
    }
    if pin != Pin::None {
        id.push_str("-pin");
    }
    id.push('-');
    id.push_str(provider.name());
    if let Some(b) = batch {
        id.push_str(&format!("-b{b}"));
    }
    if let Some(p) = batching {
        id.push('-');
        id.push_str(&p.id());
    }
    id.push('-');
    id.push_str(&load.id());
    if worker_concurrency != 1 {
        id.push_str(&format!("-k{worker_concurrency}"));
    }
    if runtime != Runtime::Ort {
        id.push('-');
        id.push_str(runtime.name());
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{ExecutionMode, GraphOptimization};
    use proptest::prelude::*;

    fn axes(w: Vec<usize>, t: Vec<usize>, c: Vec<usize>) -> Axes {
        Axes {
            workers: w,
            intra_threads: t,
            transfer: vec![Transfer::Pipe],
            channel: vec![Channel::Socket],
            placement: vec![Placement::Replicate],
            pin: vec![Pin::None],
            provider: vec![Provider::Cpu],
            load: c
                .into_iter()
                .map(|concurrency| LoadPoint::Closed { concurrency })
                .collect(),
            worker_concurrency: vec![1],
            runtime: vec![Runtime::Ort],
            graph_optimization: vec![GraphOptimization::All],
            execution_mode: vec![ExecutionMode::Sequential],
            inter_threads: vec![1],
            intra_spinning: vec![true],
            cpu_arena: vec![true],
            memory_pattern: vec![true],
            batch: vec![None],
            batching: vec![None],
        }
    }

    #[test]
    fn session_options_and_batch_mark_the_id_only_when_not_the_default() {
        let mut a = axes(vec![1], vec![2], vec![4]);
        a.intra_spinning = vec![true, false];
        a.graph_optimization = vec![GraphOptimization::Disable, GraphOptimization::All];
        let ids: Vec<_> = expand(&a).unwrap().into_iter().map(|p| p.id).collect();
        assert_eq!(
            ids,
            [
                "w1-t2-opt-disable-pipe-cpu-c4",
                "w1-t2-opt-disable-nospin-pipe-cpu-c4",
                "w1-t2-pipe-cpu-c4",
                "w1-t2-nospin-pipe-cpu-c4",
            ]
        );
        let mut a = axes(vec![1], vec![1], vec![1, 4]);
        a.batch = vec![Some(1), Some(8)];
        a.execution_mode = vec![ExecutionMode::Parallel];
        a.inter_threads = vec![2];
        a.cpu_arena = vec![false];
        a.memory_pattern = vec![false];
        let p = expand(&a).unwrap();
        let ids: Vec<_> = p.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "w1-t1-par-i2-noarena-nomempat-pipe-cpu-b1-c1",
                "w1-t1-par-i2-noarena-nomempat-pipe-cpu-b1-c4",
                "w1-t1-par-i2-noarena-nomempat-pipe-cpu-b8-c1",
                "w1-t1-par-i2-noarena-nomempat-pipe-cpu-b8-c4",
            ]
        );
        assert_eq!(p[2].batch, Some(8));
        assert!(!p[0].session.cpu_arena && p[0].session.inter_threads == 2);
    }

    #[test]
    fn worker_concurrency_marks_the_id_only_when_not_one() {
        let mut a = axes(vec![1, 2], vec![1], vec![4]);
        a.worker_concurrency = vec![1, 2];
        let p = expand(&a).unwrap();
        let ids: Vec<_> = p.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "w1-t1-pipe-cpu-c4",
                "w1-t1-pipe-cpu-c4-k2",
                "w2-t1-pipe-cpu-c4",
                "w2-t1-pipe-cpu-c4-k2"
            ]
        );
        assert_eq!(p[1].worker_concurrency, 2);
    }

    #[test]
    fn the_session_options_count_in_the_size_guard() {
        let mut a = axes((1..=100).collect(), (1..=50).collect(), vec![1]);
        a.intra_spinning = vec![true, false];
        assert_eq!(expand(&a).map(|p| p.len()), Ok(MAX_POINTS));
        a.cpu_arena = vec![true, false];
        assert_eq!(expand(&a).map(|p| p.len()), Err(2 * MAX_POINTS));
    }

    #[test]
    fn order_and_ids_are_stable() {
        let p = expand(&axes(vec![1, 2], vec![1], vec![1, 4])).unwrap();
        let ids: Vec<_> = p.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "w1-t1-pipe-cpu-c1",
                "w1-t1-pipe-cpu-c4",
                "w2-t1-pipe-cpu-c1",
                "w2-t1-pipe-cpu-c4"
            ]
        );
        assert_eq!(p[3].index, 3);
    }

    #[test]
    fn runtimes_vary_fastest_and_only_others_than_ort_mark_the_id() {
        let mut a = axes(vec![1, 2], vec![1], vec![4]);
        a.runtime = vec![Runtime::Torch, Runtime::Ort];
        let p = expand(&a).unwrap();
        let ids: Vec<_> = p.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "w1-t1-pipe-cpu-c4-torch",
                "w1-t1-pipe-cpu-c4",
                "w2-t1-pipe-cpu-c4-torch",
                "w2-t1-pipe-cpu-c4"
            ]
        );
        assert_eq!(p[0].runtime, Runtime::Torch);
        a.runtime = vec![Runtime::Tract];
        assert_eq!(expand(&a).unwrap()[0].id, "w1-t1-pipe-cpu-c4-tract");
    }

    #[test]
    fn size_guard() {
        let big: Vec<usize> = (1..=100).collect();
        assert_eq!(
            expand(&axes(big.clone(), big.clone(), vec![1])).map(|p| p.len()),
            Ok(MAX_POINTS)
        );
        assert_eq!(
            expand(&axes(big.clone(), big.clone(), vec![1, 2])).map(|p| p.len()),
            Err(100 * 100 * 2)
        );
    }

    proptest! {
        #[test]
        fn product_size_unique_ids(w in prop::collection::btree_set(1usize..64, 1..5),
                                   t in prop::collection::btree_set(1usize..16, 1..4),
                                   c in prop::collection::btree_set(1usize..256, 1..4)) {
            let a = axes(w.iter().copied().collect(), t.iter().copied().collect(), c.iter().copied().collect());
            let p = expand(&a).unwrap();
            prop_assert_eq!(p.len(), w.len() * t.len() * c.len());
            let ids: std::collections::HashSet<_> = p.iter().map(|p| p.id.clone()).collect();
            prop_assert_eq!(ids.len(), p.len());
            prop_assert!(p.iter().enumerate().all(|(i, p)| p.index == i));
        }
    }
}
