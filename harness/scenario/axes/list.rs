//! The sweep axes, each declared once, in the sweep's order (the last varies fastest), with the
//! typed lists ([`Axes`]) and the point ([`Point`]) they fill. Adding an axis is adding its
//! `Axis` here, its entry in `ALL`, and its fields in [`Axes`] and [`Point`]; see
//! `docs/development.md`, "Adding a sweep axis". ONNX Runtime's session knobs are the exception:
//! their axes are declared from their list (`scenario/session.rs`, expanded in `knobs.rs`), and
//! that list puts them in [`Axes`] and `ALL` too.

use serde::Serialize;
use serde_json::json;

use super::knobs::KNOBS;
use super::values::{Named, POSITIVE, named_axis, positive_axis};
use super::{AnyAxis, Axis, FlagValue, Key, place, sweep_key};
use crate::scenario::session::{knob_type, with_session_knobs};
use crate::scenario::{
    BatchPolicy, Channel, Errors, ExecutionMode, IdlePolicy, KeyPath, LoadPoint, Pin, Placement,
    Provider, Runtime, SessionKnobs, Transfer,
};

/// Declares [`Axes`] and `ALL` with the session knobs (`scenario/session.rs`) in their place:
/// after the threads, before the transfer.
macro_rules! axes_in_sweep_order {
    ({} $( $knob:ident $declaration:tt )*) => {
        /// The values of each sweep axis (each `[default]` when the scenario does not sweep it).
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct Axes {
            pub(crate) workers: Vec<usize>,
            pub(crate) intra_threads: Vec<usize>,
            $(
                #[doc = concat!("The session knob `", stringify!($knob), "` ([`SessionKnobs`]).")]
                pub(crate) $knob: Vec<knob_type::$knob>,
            )*
            pub(crate) transfer: Vec<Transfer>,
            /// How messages travel (`socket` or `spin`).
            pub(crate) channel: Vec<Channel>,
            pub(crate) placement: Vec<Placement>,
            pub(crate) pin: Vec<Pin>,
            pub(crate) provider: Vec<Provider>,
            /// The batch sizes the models' batch dim is bound to (`[None]` without the axis: the
            /// models keep their `dims`).
            pub(crate) batch: Vec<Option<usize>>,
            /// Dynamic batching's policies (`[None]` without `[batching]`).
            pub(crate) batching: Vec<Option<BatchPolicy>>,
            pub(crate) load: Vec<LoadPoint>,
            /// Requests each worker runs at once, from its own threads on shared sessions.
            pub(crate) worker_concurrency: Vec<usize>,
            pub(crate) runtime: Vec<Runtime>,
        }

        /// Every axis, in the sweep's order: workers, intra_threads, the session knobs, transfer,
        /// channel, placement, pin, provider, batch, batching, load, worker_concurrency, runtime
        /// (so the runtimes of one configuration run back to back).
        pub(in crate::scenario) static ALL: &[&dyn AnyAxis] = &[
            &WORKERS,
            &INTRA_THREADS,
            $( &KNOBS.$knob, )*
            &TRANSFER,
            &CHANNEL,
            &PLACEMENT,
            &PIN,
            &PROVIDER,
            &BATCH,
            &BATCHING,
            &LOAD,
            &WORKER_CONCURRENCY,
            &RUNTIME,
        ];
    };
}

with_session_knobs!(axes_in_sweep_order! {});

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

impl Default for Point {
    /// Every axis at its default: one worker with one thread, `pipe` over the socket, on the CPU
    /// under ONNX Runtime, one request at a time (`w1-t1-pipe-cpu-c1`). The base of every point
    /// of a sweep, and the point tests and `bench parity` run.
    fn default() -> Point {
        let mut p = Point::unnamed();
        p.id = super::id(&p);
        p
    }
}

impl Point {
    /// [`Point::default`] without its id.
    pub(super) fn unnamed() -> Point {
        Point {
            index: 0,
            id: String::new(),
            workers: 1,
            intra_threads: 1,
            transfer: Transfer::Pipe,
            channel: Channel::Socket,
            placement: Placement::Replicate,
            pin: Pin::None,
            provider: Provider::Cpu,
            load: LoadPoint::Closed { concurrency: 1 },
            worker_concurrency: 1,
            runtime: Runtime::Ort,
            session: SessionKnobs::default(),
            batch: None,
            batching: None,
        }
    }
}

pub(in crate::scenario) static WORKERS: Axis<usize> = Axis {
    name: "workers",
    keys: &[sweep_key(
        "workers",
        "workers",
        "N,...",
        POSITIVE,
        "Worker processes, e.g. `1,2,4` (`[sweep] workers`; default 1).",
    )],
    default: 1,
    place: place!(workers, workers),
    resolve: |s, key, d, e| positive_axis(s.sweep(|r| &r.workers), key, d, e),
    id: |v| Some(format!("w{v}")),
    columns: &["workers"],
    cells: |v| vec![json!(v)],
    run_json: &[],
    effective: None,
    describe: |v, _, _| Some(format!("workers={v}")),
    ort_only: false,
    #[cfg(test)]
    examples: &[1, 2, 12],
};

pub(in crate::scenario) static INTRA_THREADS: Axis<usize> = Axis {
    name: "intra_threads",
    keys: &[sweep_key(
        "intra_threads",
        "intra-threads",
        "N,...",
        POSITIVE,
        "ONNX Runtime intra-op threads per session (`[sweep] intra_threads`; default 1).",
    )],
    default: 1,
    place: place!(intra_threads, intra_threads),
    resolve: |s, key, d, e| positive_axis(s.sweep(|r| &r.intra_threads), key, d, e),
    id: |v| Some(format!("t{v}")),
    columns: &["intra_threads"],
    cells: |v| vec![json!(v)],
    run_json: &[],
    effective: None,
    describe: |v, _, _| Some(format!("intra_threads={v}")),
    ort_only: false,
    #[cfg(test)]
    examples: &[1, 2, 21],
};

pub(in crate::scenario) static TRANSFER: Axis<Transfer> = Axis {
    name: "transfer",
    keys: &[sweep_key(
        "transfer",
        "transfer",
        "MODE,...",
        FlagValue::Names(Transfer::names),
        "Transfer modes (`[sweep] transfer`; default pipe).",
    )],
    default: Transfer::Pipe,
    place: place!(transfer, transfer),
    resolve: |s, key, d, e| named_axis(s.sweep(|r| &r.transfer), key, d, e),
    id: |v| Some(v.name().into()),
    columns: &["transfer"],
    cells: |v| vec![json!(v.name())],
    run_json: &[],
    effective: None,
    describe: |v, _, _| Some(format!("transfer={}", v.name())),
    ort_only: false,
    #[cfg(test)]
    examples: &Transfer::ALL,
};

pub(in crate::scenario) static CHANNEL: Axis<Channel> = Axis {
    name: "channel",
    keys: &[
        sweep_key(
            "channel",
            "channel",
            "C,...",
            FlagValue::Names(Channel::names),
            "Channels: how requests and replies travel, `socket` or `spin` (`[sweep] channel`; \
             default socket).",
        ),
        Key {
            table: "transfer",
            key: "spin",
            flag: "channel-spin",
            value_name: "WHEN",
            help: "When the spin channel spins: `auto` (only while the point's busy threads fit \
                   the CPUs) or `always` (`[transfer] spin`; default auto).",
            value: FlagValue::Names(|| vec!["auto", "always"]),
            list: false,
            also: None,
            conflicts: None,
        },
        Key {
            table: "transfer",
            key: "spin_max_us",
            flag: "spin-max-us",
            value_name: "US",
            help: "The longest a side of the spin channel spins before it parks, µs, from 0 to \
                   100000 (`[transfer] spin_max_us`; default 1000).",
            value: FlagValue::Ints {
                min: 0,
                max: 100_000,
            },
            list: false,
            also: None,
            conflicts: None,
        },
    ],
    default: Channel::Socket,
    place: place!(channel, channel),
    resolve: |s, key, d, e| named_axis(s.sweep(|r| &r.channel), key, d, e),
    id: |v| (v != Channel::Socket).then(|| v.name().into()),
    columns: &["channel"],
    cells: |v| vec![json!(v.name())],
    run_json: &[],
    effective: None,
    describe: |v, p, s| {
        if v == Channel::Socket {
            return None;
        }
        let spin = s
            .transfer
            .spin_max_at(p, crate::scenario::limits::usable_cpus());
        Some(if spin.is_zero() {
            format!("channel={} (parks at once)", v.name())
        } else {
            format!(
                "channel={} (spins up to {})",
                v.name(),
                humantime::format_duration(spin)
            )
        })
    },
    ort_only: false,
    #[cfg(test)]
    examples: &Channel::ALL,
};

pub(in crate::scenario) static PLACEMENT: Axis<Placement> = Axis {
    name: "placement",
    keys: &[
        sweep_key(
            "placement",
            "placement",
            "P,...",
            FlagValue::Names(Placement::names),
            "Placements (`[sweep] placement`; default replicate).",
        ),
        Key {
            table: "replicas",
            key: "",
            flag: "replicas",
            value_name: "MODEL=N,...",
            help: "Workers per model for the `replicas` placement, e.g. `yolo=2,vad=1` \
                   (`[replicas]`).",
            value: FlagValue::Pairs,
            list: true,
            also: None,
            conflicts: None,
        },
    ],
    default: Placement::Replicate,
    place: place!(placement, placement),
    resolve: |s, key, d, e| named_axis(s.sweep(|r| &r.placement), key, d, e),
    id: |v| (v != Placement::Replicate).then(|| v.name().into()),
    columns: &["placement"],
    cells: |v| vec![json!(v.name())],
    run_json: &[],
    effective: None,
    describe: |v, _, _| Some(format!("placement={}", v.name())),
    ort_only: false,
    #[cfg(test)]
    examples: &Placement::ALL,
};

pub(in crate::scenario) static PIN: Axis<Pin> = Axis {
    name: "pin",
    keys: &[sweep_key(
        "pin",
        "pin",
        "PIN,...",
        FlagValue::Names(Pin::names),
        "Pinning (`[sweep] pin`; default none).",
    )],
    default: Pin::None,
    place: place!(pin, pin),
    resolve: |s, key, d, e| named_axis(s.sweep(|r| &r.pin), key, d, e),
    id: |v| (v != Pin::None).then(|| "pin".into()),
    columns: &["pin"],
    cells: |v| vec![json!(v.name())],
    run_json: &[],
    effective: None,
    describe: |v, _, _| Some(format!("pin={}", v.name())),
    ort_only: false,
    #[cfg(test)]
    examples: &Pin::ALL,
};

pub(in crate::scenario) static PROVIDER: Axis<Provider> = Axis {
    name: "provider",
    keys: &[sweep_key(
        "provider",
        "provider",
        "P,...",
        FlagValue::Names(Provider::names),
        "Execution providers (`[sweep] provider`; default cpu).",
    )],
    default: Provider::Cpu,
    place: place!(provider, provider),
    resolve: |s, key, d, e| named_axis(s.sweep(|r| &r.provider), key, d, e),
    id: |v| Some(v.name().into()),
    columns: &["provider"],
    cells: |v| vec![json!(v.name())],
    run_json: &[],
    effective: None,
    describe: |v, _, _| Some(format!("provider={}", v.name())),
    ort_only: false,
    #[cfg(test)]
    examples: &Provider::ALL,
};

pub(in crate::scenario) static BATCH: Axis<Option<usize>> = Axis {
    name: "batch",
    keys: &[sweep_key(
        "batch",
        "batch",
        "N,...",
        POSITIVE,
        "Bind every model's batch dim to each size in turn, e.g. `1,8` (`[sweep] batch`; \
         default: the models keep their dims).",
    )],
    default: None,
    place: place!(batch, batch),
    resolve: |s, key, _, e| match s.sweep(|r| &r.batch) {
        None => vec![None],
        Some(b) => positive_axis(Some(b), key, 1, e)
            .into_iter()
            .map(Some)
            .collect(),
    },
    id: |v| v.map(|b| format!("b{b}")),
    columns: &["batch"],
    cells: |v| vec![json!(v)],
    run_json: &["batch"],
    effective: Some("sweep.batch"),
    describe: |v, _, _| v.map(|b| format!("batch={b}")),
    ort_only: false,
    #[cfg(test)]
    examples: &[None, Some(1), Some(8)],
};

/// A `[batching]` key that takes a comma list.
const fn batching_key(
    key: &'static str,
    flag: &'static str,
    value_name: &'static str,
    value: FlagValue,
    help: &'static str,
) -> Key {
    Key {
        table: "batching",
        ..sweep_key(key, flag, value_name, value, help)
    }
}

pub(in crate::scenario) static BATCHING: Axis<Option<BatchPolicy>> = Axis {
    name: "batching",
    keys: &[
        batching_key(
            "max_batch",
            "max-batch",
            "N,...",
            POSITIVE,
            "Dynamic batching: the most requests per run, e.g. `1,8` (`[batching] max_batch`).",
        ),
        batching_key(
            "max_delay",
            "max-delay",
            "DURATION,...",
            FlagValue::Durations,
            "Dynamic batching: the longest the oldest request of a batch waits, e.g. `2ms` \
             (`[batching] max_delay`; default 1ms).",
        ),
        batching_key(
            "idle",
            "batch-idle",
            "POLICY,...",
            FlagValue::Names(|| IdlePolicy::ALL.map(IdlePolicy::name).to_vec()),
            "Dynamic batching: `wait` for a full batch while a worker idles, or `send` \
             (`[batching] idle`; default wait).",
        ),
    ],
    default: None,
    place: place!(batching, batching),
    resolve: |s, _, _, _| s.batching.clone(),
    id: |v| v.map(|p| p.id()),
    columns: &["max_batch", "max_delay_us", "batch_idle"],
    cells: |v| {
        vec![
            json!(v.map(|p| p.max_batch)),
            json!(v.map(|p| p.max_delay.as_micros() as u64)),
            json!(v.map(|p| p.idle.name())),
        ]
    },
    run_json: &[
        "batching.max_batch",
        "batching.max_delay_us",
        "batching.idle",
    ],
    effective: Some("batching"),
    describe: |v, _, _| {
        v.map(|b| {
            format!(
                "max_batch={} max_delay={} idle={}",
                b.max_batch,
                humantime::format_duration(b.max_delay),
                b.idle.name()
            )
        })
    },
    ort_only: false,
    #[cfg(test)]
    examples: &[
        None,
        Some(BatchPolicy {
            max_batch: 8,
            max_delay: std::time::Duration::from_millis(2),
            idle: IdlePolicy::Wait,
        }),
        Some(BatchPolicy {
            max_batch: 8,
            max_delay: std::time::Duration::from_millis(2),
            idle: IdlePolicy::Send,
        }),
    ],
};

pub(in crate::scenario) static LOAD: Axis<LoadPoint> = Axis {
    name: "load",
    keys: &[
        Key {
            table: "load",
            key: "concurrency",
            flag: "concurrency",
            value_name: "N,...",
            help: "Closed loop: requests in flight, e.g. `1,8` (`[load] concurrency`; default 1).",
            value: POSITIVE,
            list: true,
            also: None,
            conflicts: Some("rate"),
        },
        Key {
            table: "load",
            key: "rate",
            flag: "rate",
            value_name: "RPS,...",
            help: "Open loop instead: target requests per second, e.g. `100,200` (`[load] rate`).",
            value: FlagValue::Rates,
            list: true,
            also: Some(("kind", "open")),
            conflicts: None,
        },
    ],
    default: LoadPoint::Closed { concurrency: 1 },
    place: place!(load, load),
    resolve: |s, _, _, _| s.load.clone(),
    id: |v| Some(v.id()),
    columns: &["load", "concurrency", "rate_rps"],
    cells: |v| {
        let kind = match v {
            LoadPoint::Closed { .. } => "closed",
            LoadPoint::Open { .. } => "open",
        };
        vec![json!(kind), json!(v.concurrency()), json!(v.rate())]
    },
    run_json: &[],
    effective: None,
    describe: |v, _, _| {
        Some(match v {
            LoadPoint::Closed { concurrency } => format!("concurrency={concurrency}"),
            LoadPoint::Open { rate } => format!("rate={rate}/s"),
        })
    },
    ort_only: false,
    #[cfg(test)]
    examples: &[
        LoadPoint::Closed { concurrency: 1 },
        LoadPoint::Closed { concurrency: 4 },
        LoadPoint::Open { rate: 100.0 },
        LoadPoint::Open { rate: 12.5 },
    ],
};

pub(in crate::scenario) static WORKER_CONCURRENCY: Axis<usize> = Axis {
    name: "worker_concurrency",
    keys: &[sweep_key(
        "worker_concurrency",
        "worker-concurrency",
        "N,...",
        POSITIVE,
        "Requests each worker runs at the same time, on shared sessions, e.g. `1,2` \
         (`[sweep] worker_concurrency`; default 1).",
    )],
    default: 1,
    place: place!(worker_concurrency, worker_concurrency),
    resolve: |s, key, d, e| positive_axis(s.sweep(|r| &r.worker_concurrency), key, d, e),
    id: |v| (v != 1).then(|| format!("k{v}")),
    columns: &["worker_concurrency"],
    cells: |v| vec![json!(v)],
    run_json: &[],
    effective: None,
    describe: |v, _, _| (v != 1).then(|| format!("worker_concurrency={v}")),
    ort_only: false,
    #[cfg(test)]
    examples: &[1, 2, 4],
};

pub(in crate::scenario) static RUNTIME: Axis<Runtime> = Axis {
    name: "runtime",
    keys: &[sweep_key(
        "runtime",
        "runtime",
        "R,...",
        FlagValue::Names(Runtime::names),
        "Runtimes (`[sweep] runtime`; default ort).",
    )],
    default: Runtime::Ort,
    place: place!(runtime, runtime),
    resolve: |s, key, d, e| named_axis(s.sweep(|r| &r.runtime), key, d, e),
    id: |v| (v != Runtime::Ort).then(|| v.name().into()),
    columns: &["runtime"],
    cells: |v| vec![json!(v.name())],
    run_json: &[],
    effective: None,
    describe: |v, _, _| Some(format!("runtime={}", v.name())),
    ort_only: false,
    #[cfg(test)]
    examples: &Runtime::ALL,
};

/// What no point of the resolved axes could run, said once: inter-op threads without the
/// `parallel` mode (ONNX Runtime would ignore them), and runtimes missing from this build.
pub(super) fn refuse_combinations(axes: &Axes, e: &mut Errors) {
    let key = KeyPath::default().key("sweep");
    if axes
        .inter_threads
        .iter()
        .any(|&t| t != SessionKnobs::DEFAULT.inter_threads)
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
    for (why, fix) in axes
        .runtime
        .iter()
        .filter_map(|r| r.missing_in_this_build())
    {
        e.push(&key.key("runtime"), why, fix);
    }
}
