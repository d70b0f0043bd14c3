//! Finding the ONNX Runtime shared library and checking its version, without starting ONNX Runtime.
//!
//! Search order: `--ort-lib`, `ORT_DYLIB_PATH`, the project virtualenv (`.venv` next to the current
//! directory or the `bench` executable, or one of their parents), then the `onnxruntime` package of
//! `python3`. The PyPI wheel ships only `libonnxruntime.so.<version>`, so the versioned file is what
//! is looked for.

use std::ffi::CStr;
use std::path::{Path, PathBuf};

/// The ONNX Runtime release the `ort` crate version is built against.
pub(crate) const REQUIRED_VERSION: &str = "1.31";

/// The fix of every error here, for where `bench` runs: from a checkout of the project, its set-up
/// script; from a copied binary, what to install and how to point `bench` at it.
fn fix() -> String {
    fix_for(checkout().as_deref())
}

/// [`fix`] for a checkout at `root` (or none).
fn fix_for(root: Option<&Path>) -> String {
    const POINT: &str = "or pass --ort-lib PATH/TO/libonnxruntime.so.1.31.1, or set ORT_DYLIB_PATH";
    match root {
        Some(root) => {
            let script = root.join("scripts/setup.sh");
            let here = std::env::current_dir().is_ok_and(|d| d == root);
            let script = if here {
                "scripts/setup.sh".into()
            } else {
                script.display().to_string()
            };
            format!("run `{script}` (it installs onnxruntime==1.31.1 into .venv), {POINT}")
        }
        None => format!(
            "install ONNX Runtime 1.31.1 for python3 with `pip install onnxruntime==1.31.1` (bench \
             finds python3's package; the library is onnxruntime/capi/libonnxruntime.so.1.31.1 in \
             it), {POINT}"
        ),
    }
}

/// The checkout of the project this `bench` runs from, if any: a folder with `scripts/setup.sh`
/// and `harness/main.rs`, among the current folder, the executable's folder and their parents. A
/// copied binary has none, and its users are told what to install instead of a script they lack.
pub(crate) fn checkout() -> Option<PathBuf> {
    search_roots()
        .into_iter()
        .find(|r| r.join("scripts/setup.sh").is_file() && r.join("harness/main.rs").is_file())
}

/// The folders `bench` looks in for what ships beside it (a checkout, `.venv`, the worker
/// script): the current folder, the executable's folder, and their parents, in that order.
pub(crate) fn search_roots() -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        roots.extend(cwd.ancestors().map(Path::to_path_buf));
    }
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(1).map(Path::to_path_buf));
    }
    roots
}

#[derive(Debug, thiserror::Error)]
pub enum OrtLibError {
    #[error(
        "ONNX Runtime library not found (looked at: {tried}).\n  fix: {}",
        fix()
    )]
    NotFound { tried: String },
    #[error(
        "ONNX Runtime library {path} (from {source_name}) does not exist.\n  fix: {}",
        fix()
    )]
    Missing { path: PathBuf, source_name: String },
    #[error(
        "{path} (from {source_name}) could not be loaded as a shared library: {message}.\n  fix: {}",
        fix()
    )]
    NotALibrary {
        path: PathBuf,
        source_name: String,
        message: String,
    },
    #[error(
        "{path} (from {source_name}) does not export OrtGetApiBase: it is not ONNX Runtime.\n  fix: {}",
        fix()
    )]
    NotOrt { path: PathBuf, source_name: String },
    #[error(
        "{path} (from {source_name}) is ONNX Runtime {found}, but bench needs {REQUIRED_VERSION}.x.\n  fix: {}",
        fix()
    )]
    WrongVersion {
        path: PathBuf,
        source_name: String,
        found: String,
    },
}

/// A located and checked ONNX Runtime library.
#[derive(Debug, Clone, PartialEq)]
pub struct OrtLib {
    pub path: PathBuf,
    pub(crate) version: String,
    /// Where it was found: `--ort-lib`, `ORT_DYLIB_PATH`, `.venv` or `python3`.
    pub(crate) source: String,
}

/// Finds the library in the documented order and checks its version.
pub fn locate(flag: Option<&Path>) -> Result<OrtLib, OrtLibError> {
    if let Some(p) = flag {
        return check(p, "--ort-lib");
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|s| !s.is_empty()) {
        return check(Path::new(&p), "ORT_DYLIB_PATH");
    }
    let mut tried = vec![
        "--ort-lib (not given)".to_string(),
        "ORT_DYLIB_PATH (not set)".to_string(),
    ];
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        roots.extend(cwd.ancestors().map(Path::to_path_buf));
    }
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(1).map(Path::to_path_buf));
    }
    for root in roots {
        let venv = root.join(".venv");
        if let Some(p) = find_in_venv(&venv) {
            return check(&p, ".venv");
        }
    }
    tried.push(
        ".venv in the current directory, the executable's directory and their parents".into(),
    );
    if let Some(p) = from_python() {
        return check(&p, "python3");
    }
    tried.push("`import onnxruntime` in python3".into());
    Err(OrtLibError::NotFound {
        tried: tried.join("; "),
    })
}

fn find_in_venv(venv: &Path) -> Option<PathBuf> {
    let lib = venv.join("lib");
    let entries = std::fs::read_dir(&lib).ok()?;
    for e in entries.flatten() {
        let capi = e.path().join("site-packages/onnxruntime/capi");
        if let Some(p) = versioned_lib(&capi) {
            return Some(p);
        }
    }
    None
}

fn versioned_lib(capi: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(capi)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with("libonnxruntime.so.") && n.len() > "libonnxruntime.so.".len()
            })
        })
        .collect();
    found.sort();
    found.pop()
}

fn from_python() -> Option<PathBuf> {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import onnxruntime, os; print(os.path.dirname(onnxruntime.__file__))",
        ])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    versioned_lib(&dir.join("capi"))
}

/// Opens the library only to read its version string; ONNX Runtime itself is not started.
pub(crate) fn check(path: &Path, source: &str) -> Result<OrtLib, OrtLibError> {
    let source_name = source.to_string();
    if !path.is_file() {
        return Err(OrtLibError::Missing {
            path: path.to_path_buf(),
            source_name,
        });
    }
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    // SAFETY: loading ONNX Runtime runs only its static initialisers, which have no preconditions.
    let lib = unsafe { libloading::Library::new(&path) }.map_err(|e| OrtLibError::NotALibrary {
        path: path.clone(),
        source_name: source_name.clone(),
        message: e.to_string(),
    })?;
    // SAFETY: `OrtGetApiBase` has this signature in every ONNX Runtime release.
    let getter = unsafe {
        lib.get::<unsafe extern "C" fn() -> *const ort::sys::OrtApiBase>(b"OrtGetApiBase")
    }
    .map_err(|_| OrtLibError::NotOrt {
        path: path.clone(),
        source_name: source_name.clone(),
    })?;
    // SAFETY: the API base is a static struct owned by the library, valid while it is loaded.
    let version = unsafe {
        let base = getter();
        if base.is_null() {
            return Err(OrtLibError::NotOrt { path, source_name });
        }
        let s = ((*base).GetVersionString)();
        if s.is_null() {
            return Err(OrtLibError::NotOrt { path, source_name });
        }
        CStr::from_ptr(s).to_string_lossy().into_owned()
    };
    if !version.starts_with(&format!("{REQUIRED_VERSION}.")) {
        return Err(OrtLibError::WrongVersion {
            path,
            source_name,
            found: version,
        });
    }
    Ok(OrtLib {
        path,
        version,
        source: source_name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: a user of a copied binary was told to run `scripts/setup.sh`, which they lack.
    #[test]
    fn the_fix_names_the_set_up_script_only_in_a_checkout() {
        let copied = fix_for(None);
        assert!(!copied.contains("setup.sh"), "{copied}");
        assert!(
            copied.contains("pip install onnxruntime==1.31.1"),
            "{copied}"
        );
        assert!(copied.contains("--ort-lib") && copied.contains("ORT_DYLIB_PATH"));
        let root = Path::new("/somewhere/bench");
        let from_checkout = fix_for(Some(root));
        assert!(
            from_checkout.starts_with("run `/somewhere/bench/scripts/setup.sh`"),
            "{from_checkout}"
        );
        // This test runs in the checkout.
        let here = checkout_of_this_test();
        assert_eq!(checkout(), Some(here));
    }

    fn checkout_of_this_test() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn missing_and_non_library_files_are_clear_errors() {
        let e = check(Path::new("/nonexistent/libonnxruntime.so"), "--ort-lib").unwrap_err();
        assert!(matches!(e, OrtLibError::Missing { .. }), "{e}");
        assert!(e.to_string().contains("fix:"));
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("libonnxruntime.so.1.31.1");
        std::fs::write(&fake, b"not an ELF file").unwrap();
        let e = check(&fake, "--ort-lib").unwrap_err();
        assert!(matches!(e, OrtLibError::NotALibrary { .. }), "{e}");
    }

    #[test]
    fn a_library_without_ort_symbols_is_not_ort() {
        // libc is a real shared library, but not ONNX Runtime.
        let libc = [
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
            "/lib/aarch64-linux-gnu/libc.so.6",
        ]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists());
        let Some(libc) = libc else { return };
        let e = check(libc, "--ort-lib").unwrap_err();
        assert!(matches!(e, OrtLibError::NotOrt { .. }), "{e}");
    }

    #[test]
    fn finds_the_versioned_library_in_a_venv() {
        let dir = tempfile::tempdir().unwrap();
        let capi = dir
            .path()
            .join(".venv/lib/python3.11/site-packages/onnxruntime/capi");
        std::fs::create_dir_all(&capi).unwrap();
        std::fs::write(capi.join("libonnxruntime_providers_shared.so"), b"").unwrap();
        std::fs::write(capi.join("libonnxruntime.so.1.31.1"), b"").unwrap();
        assert_eq!(
            find_in_venv(&dir.path().join(".venv")),
            Some(capi.join("libonnxruntime.so.1.31.1"))
        );
    }
}
