//! ONNX Runtime's session options as sweep axes: graph optimisation, execution mode and inter-op
//! threads, intra-op spinning, the CPU memory arena and memory patterns.
//!
//! Each is a `[sweep]` key whose default is what bench did before it was an axis (ONNX Runtime's
//! own default, except `graph_optimization = "all"`), so a scenario without them measures what it
//! always did, and only a point with a value other than the default names it in its id
//! ([`SessionKnobs::id_part`]). They reach the worker in its `Setup` and become session options in
//! `runtime::ort::build_session`. Other runtimes have no such options: a non-default value with
//! `runtime = "tract"` or `"torch"` is refused (`refuse_other_runtimes`); synthetic models have
//! no session and ignore them, as they ignore `intra_threads`.

use serde::{Deserialize, Serialize};

use super::{Axes, Errors, KeyPath, Runtime};

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
    /// In the order of the levels; the default, `all`, is listed first so that it is the value of an
    /// absent axis (see `named_axis`).
    pub const ALL: [GraphOptimization; 4] = [
        GraphOptimization::All,
        GraphOptimization::Disable,
        GraphOptimization::Basic,
        GraphOptimization::Extended,
    ];
    pub fn name(self) -> &'static str {
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
    pub const ALL: [ExecutionMode; 2] = [ExecutionMode::Sequential, ExecutionMode::Parallel];
    pub fn name(self) -> &'static str {
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
        }
    }
}

impl SessionKnobs {
    /// The part of a point id these settings add: empty for the defaults, so ids from before the
    /// axes existed stay the same; else e.g. `-opt-basic-par-i2-nospin-noarena-nomempat`.
    pub fn id_part(&self) -> String {
        let d = SessionKnobs::default();
        let mut id = String::new();
        if self.graph_optimization != d.graph_optimization {
            id.push_str("-opt-");
            id.push_str(self.graph_optimization.name());
        }
        if self.execution_mode != d.execution_mode {
            id.push_str("-par");
        }
        if self.inter_threads != d.inter_threads {
            id.push_str(&format!("-i{}", self.inter_threads));
        }
        if !self.intra_spinning {
            id.push_str("-nospin");
        }
        if !self.cpu_arena {
            id.push_str("-noarena");
        }
        if !self.memory_pattern {
            id.push_str("-nomempat");
        }
        id
    }

    /// The settings by `[sweep]` key, as run.json records them for each point.
    pub fn settings(&self) -> [(&'static str, String); 6] {
        [
            ("graph_optimization", self.graph_optimization.name().into()),
            ("execution_mode", self.execution_mode.name().into()),
            ("inter_threads", self.inter_threads.to_string()),
            ("intra_spinning", self.intra_spinning.to_string()),
            ("cpu_arena", self.cpu_arena.to_string()),
            ("memory_pattern", self.memory_pattern.to_string()),
        ]
    }
}

/// The `[sweep]` keys of the session options whose axis holds a value other than the default,
/// with that value.
fn non_defaults(axes: &Axes) -> Vec<(&'static str, String)> {
    let d = SessionKnobs::default();
    let mut out = Vec::new();
    if let Some(v) = axes
        .graph_optimization
        .iter()
        .find(|&&v| v != d.graph_optimization)
    {
        out.push(("graph_optimization", format!("\"{}\"", v.name())));
    }
    if let Some(v) = axes.execution_mode.iter().find(|&&v| v != d.execution_mode) {
        out.push(("execution_mode", format!("\"{}\"", v.name())));
    }
    if let Some(v) = axes.inter_threads.iter().find(|&&v| v != d.inter_threads) {
        out.push(("inter_threads", v.to_string()));
    }
    for (key, axis, default) in [
        ("intra_spinning", &axes.intra_spinning, d.intra_spinning),
        ("cpu_arena", &axes.cpu_arena, d.cpu_arena),
        ("memory_pattern", &axes.memory_pattern, d.memory_pattern),
    ] {
        if let Some(v) = axis.iter().find(|&&v| v != default) {
            out.push((key, v.to_string()));
        }
    }
    out
}

/// The axes' session options as run.json's effective settings record them (`sweep.KEY` = the
/// values, comma-separated), only for the axes the scenario sets to something other than the
/// default: runs from before the axes existed record none, and `bench compare` still matches them.
pub fn settings(axes: &Axes) -> Vec<(String, String)> {
    let d = SessionKnobs::default();
    let join = |v: Vec<String>| v.join(", ");
    let mut out = Vec::new();
    let mut add = |key: &str, default: bool, values: Vec<String>| {
        if !default {
            out.push((format!("sweep.{key}"), join(values)));
        }
    };
    add(
        "graph_optimization",
        axes.graph_optimization == [d.graph_optimization],
        axes.graph_optimization
            .iter()
            .map(|v| v.name().into())
            .collect(),
    );
    add(
        "execution_mode",
        axes.execution_mode == [d.execution_mode],
        axes.execution_mode
            .iter()
            .map(|v| v.name().into())
            .collect(),
    );
    add(
        "inter_threads",
        axes.inter_threads == [d.inter_threads],
        axes.inter_threads.iter().map(|v| v.to_string()).collect(),
    );
    add(
        "intra_spinning",
        axes.intra_spinning == [d.intra_spinning],
        axes.intra_spinning.iter().map(|v| v.to_string()).collect(),
    );
    add(
        "cpu_arena",
        axes.cpu_arena == [d.cpu_arena],
        axes.cpu_arena.iter().map(|v| v.to_string()).collect(),
    );
    add(
        "memory_pattern",
        axes.memory_pattern == [d.memory_pattern],
        axes.memory_pattern.iter().map(|v| v.to_string()).collect(),
    );
    out
}

/// Refuses session options other than the defaults on a sweep that runs tract or torch: they are
/// ONNX Runtime's, and those runtimes have nothing to set them on. `inter_threads` without the
/// `parallel` mode is refused too: ONNX Runtime would ignore it.
pub(super) fn refuse_other_runtimes(axes: &Axes, e: &mut Errors) {
    let key = KeyPath::default().key("sweep");
    let others: Vec<&str> = axes
        .runtime
        .iter()
        .filter(|&&r| r != Runtime::Ort)
        .map(|r| r.name())
        .collect();
    if !others.is_empty() {
        for (k, v) in non_defaults(axes) {
            e.push(
                &key.key(k),
                format!(
                    "`{k} = {v}` is an ONNX Runtime session option, and this sweep also runs {} \
                     (`sweep.runtime`), which has no such setting",
                    others.join(" and ")
                ),
                format!(
                    "sweep `{k}` in a scenario whose `runtime` is \"ort\" only, or remove \
                     {} from `sweep.runtime`",
                    others
                        .iter()
                        .map(|o| format!("\"{o}\""))
                        .collect::<Vec<_>>()
                        .join(" and ")
                ),
            );
        }
    }
    let d = SessionKnobs::default();
    if axes.inter_threads.iter().any(|&t| t != d.inter_threads)
        && !axes.execution_mode.contains(&ExecutionMode::Parallel)
    {
        e.push(
            &key.key("inter_threads"),
            "inter-op threads run independent branches of the graph in the `parallel` execution \
             mode only; with `sequential` ONNX Runtime ignores them",
            "add `execution_mode = \"parallel\"` (or [\"sequential\", \"parallel\"]) to [sweep], \
             or remove `inter_threads`",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_add_nothing_to_an_id() {
        assert_eq!(SessionKnobs::default().id_part(), "");
        let k = SessionKnobs {
            graph_optimization: GraphOptimization::Basic,
            execution_mode: ExecutionMode::Parallel,
            inter_threads: 2,
            intra_spinning: false,
            cpu_arena: false,
            memory_pattern: false,
        };
        assert_eq!(k.id_part(), "-opt-basic-par-i2-nospin-noarena-nomempat");
    }

    #[test]
    fn the_default_graph_optimization_comes_first() {
        // `named_axis` takes the first value as the default of an absent axis.
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
