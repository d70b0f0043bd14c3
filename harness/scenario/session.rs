//! ONNX Runtime's session options as sweep axes: graph optimisation, execution mode and inter-op
//! threads, intra-op spinning, the CPU memory arena, memory patterns and prepacking.
//!
//! Each is a `[sweep]` key whose default is what bench did before it was an axis (ONNX Runtime's
//! own default, except `graph_optimization = "all"`), so a scenario without them measures what it
//! always did, and only a point with a value other than the default names it in its id. Each is
//! declared once as an axis in [`super::axes::list`] (key, parser, id fragment, column, flag);
//! this file holds their value types and the [`SessionKnobs`] a point carries. They reach the
//! worker in its `Setup` and become session options in `runtime::ort::build_session`. Other
//! runtimes have no such options: a non-default value with `runtime = "tract"` or `"torch"` is
//! refused; synthetic models have no session and ignore them, as they ignore `intra_threads`.

use serde::{Deserialize, Serialize};

/// ONNX Runtime's graph optimisation level (`graph_optimization`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GraphOptimization {
    /// No graph rewrites at all.
    Disable,
    /// Level 1: constant folding, redundant-node elimination, semantics-preserving fusions.
    Basic,
    /// Level 2: also the complex fusions (GEMM + activation, GELU, layer norm, ...).
    Extended,
    /// Every level, layout optimisations included: what bench always used (the default).
    All,
}

impl GraphOptimization {
    /// In the order of the levels, but the default, `all`, listed first.
    pub(crate) const ALL: [GraphOptimization; 4] = [
        GraphOptimization::All,
        GraphOptimization::Disable,
        GraphOptimization::Basic,
        GraphOptimization::Extended,
    ];
    pub(crate) fn name(self) -> &'static str {
        match self {
            GraphOptimization::Disable => "disable",
            GraphOptimization::Basic => "basic",
            GraphOptimization::Extended => "extended",
            GraphOptimization::All => "all",
        }
    }
}

/// ONNX Runtime's execution mode (`execution_mode`): the graph's nodes one at a time, or
/// independent branches at once on the inter-op thread pool (`inter_threads`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionMode {
    Sequential,
    Parallel,
}

impl ExecutionMode {
    pub(crate) const ALL: [ExecutionMode; 2] = [ExecutionMode::Sequential, ExecutionMode::Parallel];
    pub(crate) fn name(self) -> &'static str {
        match self {
            ExecutionMode::Sequential => "sequential",
            ExecutionMode::Parallel => "parallel",
        }
    }
}

/// The session options of one point, as its workers set them on every ONNX Runtime session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SessionKnobs {
    pub graph_optimization: GraphOptimization,
    pub execution_mode: ExecutionMode,
    /// Inter-op threads: used by the `parallel` execution mode only.
    pub inter_threads: usize,
    /// `session.intra_op.allow_spinning`: intra-op threads busy-wait for work a while before they
    /// sleep (ONNX Runtime's default), or sleep at once.
    pub intra_spinning: bool,
    /// The CPU memory arena (`enable_cpu_mem_arena`).
    pub cpu_arena: bool,
    /// Memory patterns (`enable_mem_pattern`): allocations planned from the first run's shapes.
    pub memory_pattern: bool,
    /// Prepacking (`session.disable_prepacking` when off): constant weights are laid out once, at
    /// load, in the form the kernels read fastest (ONNX Runtime's default), at the cost of memory.
    pub prepacking: bool,
}

impl Default for SessionKnobs {
    /// What bench set before these were axes: ONNX Runtime's defaults, with every graph
    /// optimisation and one inter-op thread.
    fn default() -> Self {
        SessionKnobs {
            graph_optimization: GraphOptimization::All,
            execution_mode: ExecutionMode::Sequential,
            inter_threads: 1,
            intra_spinning: true,
            cpu_arena: true,
            memory_pattern: true,
            prepacking: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_graph_optimization_comes_first() {
        // `ALL` lists the default first, as the scenario reference and `--help` do.
        assert_eq!(
            GraphOptimization::ALL[0],
            SessionKnobs::default().graph_optimization
        );
        assert_eq!(
            ExecutionMode::ALL[0],
            SessionKnobs::default().execution_mode
        );
    }
}
