//! `bench parity`: do the runtimes compute the same thing? One fixed batch per model (the scenario's
//! first sample) goes through one worker of every runtime of the scenario's `runtime` axis, and always
//! through `torch` (the reference: the original PyTorch module) and `ort`. Each output is compared
//! with torch's, element by element, against the scenario's `[parity]` tolerances.
//!
//! The workers are the real ones (the same setup, protocol and `pipe` transfer as a sweep, one
//! intra-op thread), so what is compared is what a sweep runs.

use anyhow::{Context, bail};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;

use crate::model::tensor::{self, TensorData};
use crate::pool::protocol::{Finished, Outputs};
use crate::pool::runtime::ortlib::OrtLib;
use crate::pool::worker::pool::{InputsRef, Pool, Reply};
use crate::scenario::{ModelSource, Point, Runtime, Scenario, Tolerance};

/// One output of one model under one runtime, against torch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ParityRow {
    pub(crate) model: String,
    pub(crate) output: usize,
    pub(crate) runtime: String,
    /// The output's element type and shape under this runtime.
    pub(crate) dtype: String,
    pub(crate) shape: Vec<i64>,
    /// The largest `|x - torch|`.
    pub(crate) max_abs_diff: f64,
    /// The largest `|x - torch| / |torch|` over the elements where torch's value is not zero.
    pub(crate) max_rel_diff: f64,
    pub(crate) atol: f64,
    pub(crate) rtol: f64,
    /// Every element within `atol + rtol * |torch|`, with the same dtype and shape.
    pub(crate) ok: bool,
    /// Whether the runtime runs the model at all; tract may not (then `ok` is false, `note` says
    /// why, and the row is no mismatch).
    pub(crate) supported: bool,
    /// Why it is not ok, when that is not a numeric difference.
    pub(crate) note: String,
}

impl ParityRow {
    /// A mismatch: the runtime ran the model and an output differs (or has another type or shape).
    pub(crate) fn mismatch(&self) -> bool {
        self.supported && !self.ok
    }
}

/// What one runtime made of one model's batch.
enum Got {
    Outputs(Vec<TensorData>),
    /// A synthetic model: nothing to compare.
    Synthetic,
    /// The runtime cannot run this model (why).
    Unsupported(String),
}

/// The runtimes to compare: torch (the reference) first, then ort, then the others of the axis.
pub(crate) fn runtimes(s: &Scenario) -> Vec<Runtime> {
    let mut out = vec![Runtime::Torch, Runtime::Ort];
    for &r in &s.axes.runtime {
        if !out.contains(&r) {
            out.push(r);
        }
    }
    out
}

/// Compares `got` with the reference `want`, element by element.
pub(crate) fn compare(
    want: &TensorData,
    got: &TensorData,
    tol: Tolerance,
) -> (f64, f64, bool, String) {
    if want.dtype != got.dtype || want.shape != got.shape {
        let note = format!(
            "torch gives {} {:?}, this runtime {} {:?}",
            want.dtype, want.shape, got.dtype, got.shape
        );
        return (f64::NAN, f64::NAN, false, note);
    }
    let a = tensor::decode_values(want.dtype, &want.bytes);
    let b = tensor::decode_values(got.dtype, &got.bytes);
    let (mut abs, mut rel, mut ok) = (0.0f64, 0.0f64, true);
    for (&w, &g) in a.iter().zip(&b) {
        if w.is_nan() || g.is_nan() {
            if w.is_nan() != g.is_nan() {
                ok = false;
                abs = f64::NAN;
            }
            continue;
        }
        let d = if w == g { 0.0 } else { (w - g).abs() };
        abs = abs.max(d);
        if w != 0.0 {
            rel = rel.max(d / w.abs());
        }
        if d > tol.atol + tol.rtol * w.abs() {
            ok = false;
        }
    }
    (abs, rel, ok, String::new())
}

/// Runs sample 0 of every model through one worker of `runtime`; what it gave per model.
async fn outputs(s: &Scenario, ort: Option<&OrtLib>, runtime: Runtime) -> anyhow::Result<Vec<Got>> {
    let unsupported = crate::pool::runtime::unsupported(s, runtime)?;
    let point = Point {
        id: format!("parity-{}", runtime.name()),
        runtime,
        ..Point::default()
    };
    let mut setups = crate::sweep::setup::setups(s, ort, &point, None);
    crate::sweep::setup::leave_out(&mut setups, &unsupported);
    let pool = Pool::start(setups, None)
        .await
        .with_context(|| format!("cannot start a {} worker", runtime.name()))?;
    let worker = pool.worker(0);
    let mut frame = Vec::new();
    let mut out = Vec::new();
    let mut failure = None;
    for (m, spec) in s.models.iter().enumerate() {
        if matches!(spec.source, ModelSource::Synthetic(_)) {
            out.push(Got::Synthetic);
            continue;
        }
        if let Some(why) = &unsupported[m] {
            out.push(Got::Unsupported(why.clone()));
            continue;
        }
        let sample = &spec.samples[0];
        match worker
            .call(m as u64, m as u32, InputsRef::Inline(sample), &mut frame)
            .await
        {
            Reply::Done(Finished {
                outputs: Outputs::Inline(t),
                ..
            }) => out.push(Got::Outputs(t)),
            Reply::Done(_) => failure = Some(format!("model `{}`: outputs not inline", spec.name)),
            Reply::Failed(msg) | Reply::Lost(msg) => {
                failure = Some(format!("model `{}` failed: {msg}", spec.name))
            }
            Reply::TimedOut(d) => {
                failure = Some(format!("model `{}` timed out after {d:?}", spec.name))
            }
        }
        if failure.is_some() {
            break;
        }
    }
    drop(worker);
    for r in pool.shutdown().await {
        r?;
    }
    if let Some(f) = failure {
        bail!("{} runtime: {f}", runtime.name());
    }
    Ok(out)
}

/// Runs every model through every runtime and compares each with torch.
pub(crate) async fn run(s: &Scenario, ort: Option<&OrtLib>) -> anyhow::Result<Vec<ParityRow>> {
    if let Some(m) = s
        .models
        .iter()
        .find(|m| matches!(m.source, ModelSource::Onnx(_)) && m.torch.is_none())
    {
        bail!(
            "model `{}` has no `module`: bench parity compares every runtime with the PyTorch module.\n  \
             fix: add `module = \"package.module:Class\"` and `weights = \"FILE.pt\"` (or `init_seed`) \
             to the model, see `module` in docs/reference/scenario.md",
            m.name
        );
    }
    let runtimes = runtimes(s);
    let mut results = Vec::new();
    for &r in &runtimes {
        results.push(outputs(s, ort, r).await?);
    }
    let reference = &results[0];
    let mut rows = Vec::new();
    for (m, spec) in s.models.iter().enumerate() {
        let Got::Outputs(want) = &reference[m] else {
            continue;
        };
        for (r, got) in runtimes.iter().zip(&results).skip(1) {
            // A row about the model as a whole, without numbers.
            let whole = |supported: bool, note: String| ParityRow {
                model: spec.name.clone(),
                output: 0,
                runtime: r.name().into(),
                dtype: String::new(),
                shape: Vec::new(),
                max_abs_diff: f64::NAN,
                max_rel_diff: f64::NAN,
                atol: spec.parity.atol,
                rtol: spec.parity.rtol,
                ok: false,
                supported,
                note,
            };
            let got = match &got[m] {
                Got::Outputs(got) if got.len() == want.len() => got,
                Got::Outputs(got) => {
                    let note = format!("{} outputs, torch gives {}", got.len(), want.len());
                    rows.push(whole(true, note));
                    continue;
                }
                Got::Unsupported(why) => {
                    rows.push(whole(false, why.clone()));
                    continue;
                }
                Got::Synthetic => unreachable!("a synthetic model is synthetic in every runtime"),
            };
            for (k, (w, g)) in want.iter().zip(got).enumerate() {
                let (max_abs_diff, max_rel_diff, ok, note) = compare(w, g, spec.parity);
                rows.push(ParityRow {
                    model: spec.name.clone(),
                    output: k,
                    runtime: r.name().into(),
                    dtype: g.dtype.name().into(),
                    shape: g.shape.clone(),
                    max_abs_diff,
                    max_rel_diff,
                    atol: spec.parity.atol,
                    rtol: spec.parity.rtol,
                    ok,
                    supported: true,
                    note,
                });
            }
        }
    }
    Ok(rows)
}

/// The table `bench parity` prints.
pub(crate) fn render(rows: &[ParityRow]) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "model",
        "output",
        "runtime",
        "shape",
        "max abs diff",
        "max rel diff",
        "atol",
        "rtol",
        "verdict",
    ]);
    for r in rows {
        t.add_row(vec![
            r.model.clone(),
            r.output.to_string(),
            format!("{} vs torch", r.runtime),
            format!("{} {:?}", r.dtype, r.shape),
            format!("{:.3e}", r.max_abs_diff),
            format!("{:.3e}", r.max_rel_diff),
            format!("{:e}", r.atol),
            format!("{:e}", r.rtol),
            match (r.ok, r.note.is_empty()) {
                _ if !r.supported => format!("unsupported: {}", r.note),
                (true, _) => "ok".to_string(),
                (false, true) => "MISMATCH".to_string(),
                (false, false) => format!("MISMATCH: {}", r.note),
            },
        ]);
    }
    t.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tensor::DType;

    fn f32s(v: &[f32]) -> TensorData {
        TensorData {
            dtype: DType::F32,
            shape: vec![v.len() as i64],
            bytes: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }

    #[test]
    fn differences_and_tolerances() {
        let tol = Tolerance {
            atol: 1e-3,
            rtol: 0.0,
        };
        let (abs, rel, ok, _) = compare(&f32s(&[1.0, -2.0, 0.0]), &f32s(&[1.0, -2.0, 0.0]), tol);
        assert_eq!((abs, rel, ok), (0.0, 0.0, true));
        let (abs, rel, ok, _) = compare(&f32s(&[1.0, 4.0]), &f32s(&[1.0005, 4.002]), tol);
        assert!((abs - 0.002).abs() < 1e-6, "{abs}");
        assert!((rel - 0.0005).abs() < 1e-6, "{rel}");
        assert!(!ok, "4.002 is 2e-3 off, beyond atol 1e-3");
        let loose = Tolerance {
            atol: 1e-3,
            rtol: 1e-3,
        };
        assert!(compare(&f32s(&[1.0, 4.0]), &f32s(&[1.0005, 4.002]), loose).2);
        let (_, _, ok, _) = compare(&f32s(&[f32::NAN]), &f32s(&[1.0]), loose);
        assert!(!ok, "NaN against a number");
        assert!(compare(&f32s(&[f32::NAN]), &f32s(&[f32::NAN]), loose).2);
        let (_, _, ok, note) = compare(&f32s(&[1.0, 2.0]), &f32s(&[1.0]), loose);
        assert!(!ok && note.contains("[2]"), "{note}");
    }

    #[test]
    fn a_model_a_runtime_cannot_run_is_shown_unsupported_and_is_no_mismatch() {
        let row = |ok: bool, supported: bool, note: &str| ParityRow {
            model: "det".into(),
            output: 0,
            runtime: "tract".into(),
            dtype: String::new(),
            shape: Vec::new(),
            max_abs_diff: f64::NAN,
            max_rel_diff: f64::NAN,
            atol: 1e-4,
            rtol: 1e-3,
            ok,
            supported,
            note: note.into(),
        };
        let unsupported = row(
            false,
            false,
            "tract does not implement operator Det (node `d`)",
        );
        assert!(!unsupported.mismatch());
        assert!(row(false, true, "").mismatch());
        assert!(!row(true, true, "").mismatch());
        let table = render(&[unsupported]);
        assert!(
            table.contains("unsupported: tract does not implement operator Det"),
            "{table}"
        );
        assert!(!table.contains("MISMATCH"), "{table}");
    }
}
