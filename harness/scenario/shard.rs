//! Splitting one sweep across machines: `bench sweep --shard I/N` runs only the points whose index
//! modulo `N` is `I`, so `N` machines (a Kubernetes Indexed Job, a Slurm array) each run a share and
//! `bench merge` puts the shares back together.
//!
//! The assignment depends only on a point's index in the full sweep, which is stable for a given
//! scenario file: every point belongs to exactly one shard, whatever machine computes it, and
//! neighbouring points (which usually differ only in the load) go to different machines, so the
//! shares take about the same time.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::scenario::Point;

/// One share of a sweep: shard `index` of `count` (0-based, `index < count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Shard {
    pub(crate) index: usize,
    pub(crate) count: usize,
}

impl Shard {
    /// Whether the point with this index (its position in the full sweep) belongs to this shard.
    pub(crate) fn contains(&self, point_index: usize) -> bool {
        point_index % self.count == self.index
    }

    /// The shard's points of a full sweep, in sweep order, with their original indexes and ids.
    pub(crate) fn select(&self, points: &[Point]) -> Vec<Point> {
        points
            .iter()
            .filter(|p| self.contains(p.index))
            .cloned()
            .collect()
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    /// Parses `I/N`, e.g. `0/3`.
    fn from_str(s: &str) -> Result<Shard, String> {
        let usage = "write it as I/N with 0 <= I < N, e.g. --shard 0/3 for the first of 3 machines";
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not I/N; {usage}"))?;
        let num = |v: &str, what: &str| {
            v.trim()
                .parse::<usize>()
                .map_err(|_| format!("`{s}`: {what} `{v}` is not a whole number; {usage}"))
        };
        let index = num(i, "the shard index")?;
        let count = num(n, "the shard count")?;
        if count == 0 {
            return Err(format!(
                "`{s}`: the shard count must be at least 1; {usage}"
            ));
        }
        if index >= count {
            return Err(format!(
                "`{s}`: shard index {index} is out of range for {count} shard(s), indexes are 0 to {} \
                 (0-based, as JOB_COMPLETION_INDEX and SLURM_ARRAY_TASK_ID count)",
                count - 1
            ));
        }
        Ok(Shard { index, count })
    }
}

/// What `run.json` records about a sharded sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ShardInfo {
    pub(crate) index: usize,
    pub(crate) count: usize,
    /// The indexes of the points that belong to this shard (run or not yet run).
    pub(crate) points: Vec<usize>,
    /// The points of the whole sweep, all shards together.
    pub(crate) sweep_points: usize,
}

impl ShardInfo {
    pub(crate) fn new(shard: Shard, all_points: &[Point]) -> ShardInfo {
        ShardInfo {
            index: shard.index,
            count: shard.count,
            points: shard.select(all_points).iter().map(|p| p.index).collect(),
            sweep_points: all_points.len(),
        }
    }

    pub(crate) fn shard(&self) -> Shard {
        Shard {
            index: self.index,
            count: self.count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_i_of_n() {
        assert_eq!("0/3".parse(), Ok(Shard { index: 0, count: 3 }));
        assert_eq!("2/3".parse(), Ok(Shard { index: 2, count: 3 }));
        assert_eq!("0/1".parse(), Ok(Shard { index: 0, count: 1 }));
        assert_eq!(Shard { index: 4, count: 7 }.to_string(), "4/7");
    }

    #[test]
    fn rejects_bad_shards_with_a_fix() {
        for (bad, says) in [
            ("3/3", "out of range for 3 shard(s), indexes are 0 to 2"),
            ("0/0", "at least 1"),
            ("1", "is not I/N"),
            ("a/3", "the shard index `a` is not a whole number"),
            ("1/-2", "the shard count `-2` is not a whole number"),
            ("", "is not I/N"),
        ] {
            let e = bad.parse::<Shard>().unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
            assert!(
                e.contains("--shard 0/3") || e.contains("0-based"),
                "{bad}: {e}"
            );
        }
    }

    proptest! {
        #[test]
        fn every_point_belongs_to_exactly_one_shard(count in 1usize..64, points in 0usize..500) {
            for p in 0..points {
                let owners = (0..count)
                    .filter(|&i| Shard { index: i, count }.contains(p))
                    .count();
                prop_assert_eq!(owners, 1);
            }
            // Shares differ by at most one point.
            let sizes: Vec<usize> = (0..count)
                .map(|i| (0..points).filter(|&p| Shard { index: i, count }.contains(p)).count())
                .collect();
            let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            prop_assert!(hi - lo <= 1);
            prop_assert_eq!(sizes.iter().sum::<usize>(), points);
        }

        #[test]
        fn parse_round_trips(count in 1usize..10_000, seed in any::<usize>()) {
            let s = Shard { index: seed % count, count };
            prop_assert_eq!(s.to_string().parse::<Shard>(), Ok(s));
        }
    }
}
