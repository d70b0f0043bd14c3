//! A synthetic model: no ONNX file, a service time drawn from a known distribution instead (for
//! calibration, and for tests that check the measurement against queueing theory). It takes none
//! of an ONNX model's keys, and has no inputs unless requests must be joined along one.

use super::{At, BatchUse};
use crate::model::tensor::{DType, Generator};
use crate::scenario::batch::BatchBinding;
use crate::scenario::error::Errors;
use crate::scenario::raw::{RawModel, RawSynthetic};
use crate::scenario::samples::{generate_samples, input_seed};
use crate::scenario::source::KeyPath;
use crate::scenario::spec::{
    CHECK_TOLERANCE, InputSpec, ModelSource, ModelSpec, Stall, SyntheticSpec,
};
use crate::scenario::values::duration_key;
use crate::scenario::vocabulary::{ServiceDistribution, WaitMode};

/// The synthetic model `m` (its `synthetic` table is set); `None` after an error in that table.
pub(super) fn resolve(
    m: RawModel,
    at: &At,
    samples: usize,
    batch_use: BatchUse,
    e: &mut Errors,
) -> Option<ModelSpec> {
    let (name, key) = (at.name, at.key);
    for (k, set) in [
        ("path", m.path.is_some()),
        ("dims", !m.dims.is_empty()),
        ("inputs", !m.inputs.is_empty()),
        ("test_data", m.test_data.is_some()),
        ("check", m.check.is_some()),
    ] {
        if set {
            e.push(
                &key.key(k),
                format!("a synthetic model has no `{k}`"),
                "remove it, or remove `synthetic` to run an ONNX file",
            );
        }
    }
    if matches!(batch_use, BatchUse::Static(_)) {
        e.push(
            &KeyPath::default().key("sweep").key("batch"),
            format!("model `{name}` is synthetic: it has no inputs, so no batch dim to bind"),
            "sweep `batch` in a scenario of ONNX models only, or remove `batch` from [sweep]",
        );
    }
    let spec = resolve_synthetic(m.synthetic?, &key.key("synthetic"), e)?;
    // Dynamic batching joins requests along an input; give the model one: `x`, a float32
    // `[1]` per request, so a run's length is its batch.
    let (inputs, samples, batch) = if batch_use == BatchUse::Dynamic || spec.per_sample_ns > 0 {
        let x = InputSpec {
            name: "x".into(),
            dtype: DType::F32,
            shape: vec![1],
            generator: Generator::Const { value: 0.0 },
            seed: input_seed(at.seed, name, "x"),
        };
        let samples = generate_samples(std::slice::from_ref(&x), samples)
            .map_err(|(_, err)| err)
            .ok()?;
        (vec![x], samples, Some(BatchBinding { at: vec![(0, 0)] }))
    } else {
        (Vec::new(), vec![Vec::new()], None)
    };
    Some(ModelSpec {
        name: name.to_string(),
        source: ModelSource::Synthetic(spec),
        inputs,
        outputs: Vec::new(),
        declared_inputs: Vec::new(),
        samples,
        torch: None,
        parity: Default::default(),
        expected: Vec::new(),
        check: CHECK_TOLERANCE,
        batch,
    })
}

/// The `synthetic` table: the service-time distribution, its mean (and per-sample time), how the
/// worker waits it out, and the stall or hang a test may ask for.
fn resolve_synthetic(raw: RawSynthetic, key: &KeyPath, e: &mut Errors) -> Option<SyntheticSpec> {
    let distribution = match raw.service.as_deref() {
        None | Some("fixed") => ServiceDistribution::Fixed,
        Some("exponential") => ServiceDistribution::Exponential,
        Some(other) => {
            e.push(
                &key.key("service"),
                format!("unknown service-time distribution `{other}`"),
                "use `fixed` or `exponential`",
            );
            return None;
        }
    };
    let wait = match raw.wait.as_deref() {
        None | Some("spin") => WaitMode::Spin,
        Some("sleep") => WaitMode::Sleep,
        Some(other) => {
            e.push(
                &key.key("wait"),
                format!("unknown wait mode `{other}`"),
                "use `spin` (busy, precise) or `sleep` (idle)",
            );
            return None;
        }
    };
    let mean = match raw.mean.as_deref() {
        Some(m) => duration_key(m, &key.key("mean"), true, e)?,
        None => {
            e.push(key, "a synthetic model needs a `mean` service time", "e.g. `synthetic = { service = \"fixed\", mean = \"1ms\" }`; \"0s\" measures the harness alone");
            return None;
        }
    };
    let per_sample = match raw.per_sample.as_deref() {
        None => std::time::Duration::ZERO,
        Some(p) => duration_key(p, &key.key("per_sample"), true, e)?,
    };
    let stall = match raw.stall {
        None => None,
        Some(s) => {
            let skey = key.key("stall");
            let (Some(after), Some(pause)) = (s.after.as_deref(), s.pause.as_deref()) else {
                e.push(
                    &skey,
                    "a stall needs `after` and `pause`",
                    "e.g. `stall = { after = \"2s\", pause = \"500ms\" }`",
                );
                return None;
            };
            let after = duration_key(after, &skey.key("after"), true, e)?;
            let pause = duration_key(pause, &skey.key("pause"), false, e)?;
            Some(Stall {
                after_ns: after.as_nanos() as u64,
                pause_ns: pause.as_nanos() as u64,
            })
        }
    };
    let hang_after_ns = match raw.hang_after.as_deref() {
        None => None,
        Some(h) => Some(duration_key(h, &key.key("hang_after"), true, e)?.as_nanos() as u64),
    };
    Some(SyntheticSpec {
        distribution,
        mean_ns: mean.as_nanos() as u64,
        per_sample_ns: per_sample.as_nanos() as u64,
        wait,
        stall,
        hang_after_ns,
    })
}
