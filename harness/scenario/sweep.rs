//! Sweep expansion: the cartesian product of the axes, in a stable order, each point with a stable
//! id. The axes, and each one's part of an id, are declared once in [`super::axes`].

pub use super::axes::{Axes, Point};

/// The most points one scenario may expand to; a guard against a typo that multiplies axes.
pub(crate) const MAX_POINTS: usize = 10_000;

/// Expands the axes in the order of their declaration (`axes::list::ALL`), the last
/// varying fastest: workers, intra_threads, the session options (graph_optimization,
/// execution_mode, inter_threads, intra_spinning, cpu_arena, memory_pattern, prepacking),
/// transfer, channel, placement, pin, provider, batch, batching, load (concurrency or rate),
/// worker_concurrency, runtime; so the runtimes of one configuration run back to back. Returns
/// `Err(n)` when the product of the axes' sizes exceeds [`MAX_POINTS`].
pub fn expand(axes: &Axes) -> Result<Vec<Point>, usize> {
    let n = super::axes::size(axes);
    if n > MAX_POINTS {
        return Err(n);
    }
    let lens = super::axes::lens(axes);
    let mut points = Vec::with_capacity(n);
    if n == 0 {
        return Ok(points);
    }
    // An odometer over the axes' value indexes, the last turning fastest.
    let mut at = vec![0; lens.len()];
    loop {
        let mut point = super::axes::point_at(axes, &at);
        point.index = points.len();
        points.push(point);
        let Some(turn) = (0..lens.len()).rev().find(|&k| at[k] + 1 < lens[k]) else {
            return Ok(points);
        };
        at[turn] += 1;
        at[turn + 1..].fill(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{ExecutionMode, GraphOptimization, LoadPoint, Runtime};
    use proptest::prelude::*;

    fn axes(w: Vec<usize>, t: Vec<usize>, c: Vec<usize>) -> Axes {
        Axes {
            workers: w,
            intra_threads: t,
            load: c
                .into_iter()
                .map(|concurrency| LoadPoint::Closed { concurrency })
                .collect(),
            ..Axes::single()
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
