//! The static `batch` sweep axis: which dim of a model's inputs it binds, and where.
//!
//! A `[sweep] batch = [1, 8]` point binds every model's batch dim to its value, and the point runs
//! on inputs of that shape (`Scenario::at_batch` rebinds the shapes and generates the samples for
//! the point). The batch dim is the dim named `batch` unless the model's `batch_dim` says
//! otherwise: another name, or an input axis index whose dim is dynamic. A model without such a
//! dim is refused when `batch` is swept. Without the axis nothing changes: the models keep their
//! `dims`.

use serde::{Deserialize, Serialize};

use crate::model::onnx::{Dim, IoInfo};

/// The dim `batch` binds when a model does not say: the conventional name.
pub(crate) const DEFAULT_BATCH_DIM: &str = "batch";

/// Which dim of a model is its batch dim (`batch_dim`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BatchDim {
    /// The dim of this name, in every input that has it.
    Name(String),
    /// The dim at this position of every input whose dim there is dynamic.
    Axis(usize),
}

impl Default for BatchDim {
    fn default() -> Self {
        BatchDim::Name(DEFAULT_BATCH_DIM.to_string())
    }
}

impl std::fmt::Display for BatchDim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchDim::Name(n) => write!(f, "the dim named `{n}`"),
            BatchDim::Axis(a) => write!(f, "the dynamic dim at axis {a}"),
        }
    }
}

/// Where a model's batch dim is: `(input, position)` for every input that has it (inputs by their
/// index in the model's resolved inputs).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(crate) struct BatchBinding {
    pub(crate) at: Vec<(usize, usize)>,
}

impl BatchBinding {
    /// `shapes` with the batch dim of each input set to `batch`.
    pub(crate) fn apply(&self, shapes: &mut [Vec<i64>], batch: usize) {
        for &(input, pos) in &self.at {
            if let Some(d) = shapes.get_mut(input).and_then(|s| s.get_mut(pos)) {
                *d = batch as i64;
            }
        }
    }
}

/// The places of `dim` in `inputs` (their ONNX signatures, in the model's input order), and the
/// dim names bound with them (a named dim found by its axis binds its name in every input). Empty
/// when the model has no such dynamic dim.
pub(crate) fn find(inputs: &[&IoInfo], dim: &BatchDim) -> (BatchBinding, Vec<String>) {
    let mut names: Vec<String> = match dim {
        BatchDim::Name(n) => vec![n.clone()],
        BatchDim::Axis(_) => Vec::new(),
    };
    let mut at = Vec::new();
    if let BatchDim::Axis(a) = dim {
        for io in inputs.iter().filter(|io| io.rank_known) {
            match io.dims.get(*a) {
                Some(Dim::Named(n)) if !names.contains(n) => names.push(n.clone()),
                _ => {}
            }
        }
    }
    for (i, io) in inputs.iter().enumerate() {
        if !io.rank_known {
            continue;
        }
        for (pos, d) in io.dims.iter().enumerate() {
            let hit = match (d, dim) {
                (Dim::Named(n), _) => names.contains(n),
                (Dim::Unknown, BatchDim::Axis(a)) => pos == *a,
                _ => false,
            };
            if hit {
                at.push((i, pos));
            }
        }
    }
    (BatchBinding { at }, names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(name: &str, dims: Vec<Dim>) -> IoInfo {
        IoInfo {
            name: name.into(),
            dtype: Ok(crate::model::tensor::DType::F32),
            dims,
            rank_known: true,
            kind: crate::model::onnx::ValueKind::Tensor,
        }
    }

    #[test]
    fn the_batch_dim_is_found_by_name_or_by_axis() {
        let x = io(
            "x",
            vec![
                Dim::Named("N".into()),
                Dim::Fixed(3),
                Dim::Named("seq".into()),
            ],
        );
        let m = io(
            "mask",
            vec![Dim::Named("N".into()), Dim::Named("seq".into())],
        );
        let c = io("c", vec![Dim::Fixed(1)]);
        let inputs = [&x, &m, &c];
        let (b, names) = find(&inputs, &BatchDim::default());
        assert!(b.at.is_empty() && names == ["batch"]);
        let (b, names) = find(&inputs, &BatchDim::Name("N".into()));
        assert_eq!((b.at, names), (vec![(0, 0), (1, 0)], vec!["N".to_string()]));
        // By axis: the name found there binds every input that has it, wherever it is.
        let (b, names) = find(&inputs, &BatchDim::Axis(2));
        assert_eq!(b.at, [(0, 2), (1, 1)]);
        assert_eq!(names, ["seq"]);
        // An unnamed dynamic dim is bound at its axis only.
        let u = io("u", vec![Dim::Unknown, Dim::Fixed(4)]);
        let (b, _) = find(&[&u], &BatchDim::Axis(0));
        assert_eq!(b.at, [(0, 0)]);
        let (b, _) = find(&[&u], &BatchDim::Axis(1));
        assert!(b.at.is_empty(), "a fixed dim is not a batch dim");
    }

    #[test]
    fn apply_sets_the_batch_dim_of_each_input() {
        let b = BatchBinding {
            at: vec![(0, 0), (1, 1)],
        };
        let mut shapes = vec![vec![1, 3], vec![2, 1, 5]];
        b.apply(&mut shapes, 8);
        assert_eq!(shapes, [vec![8, 3], vec![2, 8, 5]]);
    }
}
