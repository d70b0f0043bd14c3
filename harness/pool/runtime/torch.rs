//! The torch runtime, parent side: finding the Python interpreter and the worker script.
//!
//! A torch worker is not this binary but `harness/python/bench_worker.py`, run by the project's
//! Python. It speaks the same protocol (`harness/python/bench_protocol.py` is its codec), loads the
//! original PyTorch modules and runs them under `torch.inference_mode()`. The pool starts it in
//! place of `bench worker`; nothing else in the parent knows the difference.
//!
//! Search order for the interpreter: `BENCH_PYTHON`, then `.venv/bin/python` next to the current
//! directory or the `bench` executable, or one of their parents (as for ONNX Runtime). For the script:
//! `BENCH_TORCH_WORKER`, then `harness/python/bench_worker.py` in the same places, then in the source
//! tree `bench` was built from.

use std::path::PathBuf;

/// How to install PyTorch, for error messages: the set-up script from a checkout of the project,
/// pip otherwise (a copied binary has no script).
fn install_hint() -> String {
    match super::ortlib::checkout() {
        Some(root) => format!(
            "run `{}/scripts/setup.sh --torch` (from the repository root), or `.venv/bin/pip \
             install torch==2.15.0`",
            root.display()
        ),
        None => "`pip install torch==2.15.0 numpy` into a Python".into(),
    }
}

const SCRIPT: &str = "harness/python/bench_worker.py";

/// What a torch worker is started with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TorchWorker {
    pub(crate) python: PathBuf,
    pub(crate) script: PathBuf,
}

fn from_env(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The project's Python: `BENCH_PYTHON`, else the first `.venv/bin/python` found.
pub(crate) fn python() -> Result<PathBuf, String> {
    if let Some(p) = from_env("BENCH_PYTHON") {
        return Ok(p);
    }
    super::ortlib::search_roots()
        .into_iter()
        .map(|r| r.join(".venv/bin/python"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "no Python for the torch runtime: no .venv/bin/python next to the current folder or \
                 the bench executable, and BENCH_PYTHON is not set.\n  fix: {}, or set \
                 BENCH_PYTHON to a Python with torch and numpy",
                install_hint()
            )
        })
}

/// Finds the interpreter and the worker script.
pub(crate) fn locate() -> Result<TorchWorker, String> {
    let python = python()?;
    let script = match from_env("BENCH_TORCH_WORKER") {
        Some(p) => p,
        None => super::ortlib::search_roots()
            .into_iter()
            .chain(std::iter::once(PathBuf::from(env!("CARGO_MANIFEST_DIR"))))
            .map(|r| r.join(SCRIPT))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                format!(
                    "the torch worker script {SCRIPT} was not found next to the current folder or \
                     the bench executable.\n  fix: run bench from the repository, or set \
                     BENCH_TORCH_WORKER to the script's path"
                )
            })?,
    };
    Ok(TorchWorker { python, script })
}
