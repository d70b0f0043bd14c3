//! ONNX Runtime's session options ("session knobs") as sweep axes: graph optimisation, execution
//! mode and inter-op threads, intra-op spinning, the CPU memory arena, memory patterns and
//! prepacking.
//!
//! Each is a `[sweep]` key whose default is what bench did before it was an axis (ONNX Runtime's
//! own default, except `graph_optimization = "all"`), so a scenario without them measures what it
//! always did, and only a point with a value other than the default names it in its id. They reach
//! the worker in its `Setup` and become session options in `runtime::ort::build_session`. Other
//! runtimes have no such options: a non-default value with `runtime = "tract"` or `"torch"` is
//! refused; synthetic models have no session and ignore them, as they ignore `intra_threads`.
//!
//! **Each knob is one item of `with_session_knobs!`**: its name, type and default, its `bench
//! run` flag's value name and `--help` line, and its point-id fragment. A knob lives in several
//! typed homes, and each is declared by expanding that one list (the "callback" pattern:
//! `with_session_knobs!(m! { args })` expands `m! { { args } name { ... } name { ... } ... }`):
//!
//! - here, [`SessionKnobs`] (the value a point carries to its workers), its defaults, its
//!   [`NAMES`](SessionKnobs::NAMES), and [`knob_type`] (each knob's type by its name, which the
//!   other expansions use, so they need no imports for a knob's type);
//! - `axes/knobs.rs`: each knob's sweep axis (key, flag, parser, id fragment, column, `run.json`
//!   key, validate's part) and the `(name, value)` pairs of `Setup`'s wire form;
//! - `axes/list.rs`: the knobs' lists in `Axes`, and their place in the sweep's order;
//! - `raw.rs`: the `RawSweep` fields (serde reads the keys and names them among the known ones);
//! - `report/mod.rs`: the `Row` columns (`results.csv`), where they always stood.
//!
//! So a new knob is its item below, the line of `runtime::ort::build_session` that applies it,
//! and its docs (`docs/reference/scenario.md`, `columns.md`); see `docs/development.md`. A knob
//! of a new enum type also needs the enum (here, with `ALL` and `name`, as the two below) and its
//! line in `axes/values.rs`'s `named!`; a bool or a count needs neither.

use serde::{Deserialize, Serialize};

/// The session knobs, in the sweep's order (which is the id's, the columns' and the wire's): hands
/// them to `$callback`, after `{ $args }`. Each knob is `name { doc; type: T = default, flag:
/// "VALUE,...", help: "...", id: |value| fragment }`, where `id` gives the point id's fragment
/// (`None` leaves the value out, as every default does, so ids of before the knob stay the same)
/// and `T` is a `Knob` type (`axes/values.rs`: `bool`, `usize` or a named enum).
/// The types and expressions are expanded here and in `axes/knobs.rs`, which imports every item of
/// this module; the other expansions take only the names, and a knob's type from [`knob_type`].
macro_rules! with_session_knobs {
    ($callback:ident! { $($args:tt)* }) => {
        $callback! {
            { $($args)* }

            graph_optimization {
                /// ONNX Runtime's graph optimisation level.
                type: GraphOptimization = GraphOptimization::All,
                flag: "LEVEL,...",
                help: "ONNX Runtime's graph optimisation levels: disable, basic (level 1), \
                       extended (level 2), all (`[sweep] graph_optimization`; default all).",
                id: |v| (v != GraphOptimization::All).then(|| format!("opt-{}", v.name())),
            }
            execution_mode {
                /// ONNX Runtime's execution mode: the graph's nodes one at a time, or independent
                /// branches at once on `inter_threads`.
                type: ExecutionMode = ExecutionMode::Sequential,
                flag: "MODE,...",
                help: "ONNX Runtime's execution modes: sequential, or parallel on \
                       `--inter-threads` (`[sweep] execution_mode`; default sequential).",
                id: |v| (v == ExecutionMode::Parallel).then(|| "par".into()),
            }
            inter_threads {
                /// Inter-op threads: used by the `parallel` execution mode only.
                type: usize = 1,
                flag: "N,...",
                help: "ONNX Runtime inter-op threads of the parallel execution mode (`[sweep] \
                       inter_threads`; default 1).",
                id: |v| (v != 1).then(|| format!("i{v}")),
            }
            intra_spinning {
                /// `session.intra_op.allow_spinning`: intra-op threads busy-wait for work a while
                /// before they sleep (ONNX Runtime's default), or sleep at once.
                type: bool = true,
                flag: "BOOL,...",
                help: "ONNX Runtime's intra-op threads busy-wait for work before they sleep: \
                       true, false (`[sweep] intra_spinning`; default true).",
                id: |on| (!on).then(|| "nospin".into()),
            }
            cpu_arena {
                /// The CPU memory arena (`enable_cpu_mem_arena`).
                type: bool = true,
                flag: "BOOL,...",
                help: "ONNX Runtime's CPU memory arena: true, false (`[sweep] cpu_arena`; \
                       default true).",
                id: |on| (!on).then(|| "noarena".into()),
            }
            memory_pattern {
                /// Memory patterns (`enable_mem_pattern`): allocations planned from the first
                /// run's shapes.
                type: bool = true,
                flag: "BOOL,...",
                help: "ONNX Runtime's memory patterns, allocations planned from the first run: \
                       true, false (`[sweep] memory_pattern`; default true).",
                id: |on| (!on).then(|| "nomempat".into()),
            }
            prepacking {
                /// Prepacking (`session.disable_prepacking` when off): constant weights are laid
                /// out once, at load, in the form the kernels read fastest (ONNX Runtime's
                /// default), at the cost of memory.
                type: bool = true,
                flag: "BOOL,...",
                help: "ONNX Runtime's prepacking of constant weights \
                       (`session.disable_prepacking` when false): true, false (`[sweep] \
                       prepacking`; default true).",
                id: |on| (!on).then(|| "noprepack".into()),
            }
        }
    };
}
pub(crate) use with_session_knobs;

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

/// Declares [`SessionKnobs`], its defaults and names, and [`knob_type`], from the knobs' list.
macro_rules! session_knobs {
    ({} $( $name:ident {
        $(#[$doc:meta])*
        type: $ty:ty = $default:expr,
        $($rest:tt)*
    } )*) => {
        /// The session options of one point, as its workers set them on every ONNX Runtime
        /// session: one field per knob of `with_session_knobs!`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub struct SessionKnobs {
            $( $(#[$doc])* pub $name: $ty, )*
        }

        impl SessionKnobs {
            /// What bench set before these were axes: ONNX Runtime's defaults, with every graph
            /// optimisation and one inter-op thread.
            pub const DEFAULT: SessionKnobs = SessionKnobs { $( $name: $default, )* };
            /// The knobs' names (their `[sweep]` keys and columns), in the list's order.
            pub const NAMES: &'static [&'static str] = &[$( stringify!($name) ),*];
        }

        /// Each knob's type, by the knob's name (`knob_type::prepacking` is `bool`): how the
        /// expansions of the list in other files name a knob's type.
        #[allow(non_camel_case_types)]
        pub mod knob_type {
            use super::*;
            $( pub type $name = $ty; )*
        }
    };
}

with_session_knobs!(session_knobs! {});

impl Default for SessionKnobs {
    fn default() -> Self {
        SessionKnobs::DEFAULT
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
