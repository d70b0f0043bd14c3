//! The keys of the torch runtime and of `bench parity`: each model's `module` with its `weights` or
//! `init_seed`, the `[torch]` table's `python_path`, and the `[parity]` tolerances.
//!
//! Everything that can be checked without starting Python is checked here, with the key's line:
//! the `module` syntax, that the module's file lies under the Python path and defines the name, and
//! that the weights file exists. Importing the module happens in the worker.

use std::path::{Path, PathBuf};

use super::error::Errors;
use super::raw::{RawModel, RawParity, RawTorch};
use super::source::KeyPath;
use super::spec::{ModelSpec, Tolerance, TorchSpec};
use super::values::check_tolerance;
use super::vocabulary::Runtime;

/// One model's torch keys, taken out of its raw table before the rest of it is resolved.
pub(super) struct ModelKeys {
    key: KeyPath,
    module: Option<String>,
    weights: Option<String>,
    init_seed: Option<u64>,
    synthetic: bool,
}

impl ModelKeys {
    pub(super) fn take(m: &mut RawModel, key: KeyPath) -> ModelKeys {
        ModelKeys {
            key,
            module: m.module.take(),
            weights: m.weights.take(),
            init_seed: m.init_seed.take(),
            synthetic: m.synthetic.is_some(),
        }
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Splits `package.module:Name` (the name may be dotted: `Class.factory`); `None` when malformed.
pub(crate) fn split_module(s: &str) -> Option<(&str, &str)> {
    let (module, attr) = s.split_once(':')?;
    (module.split('.').all(is_identifier) && attr.split('.').all(is_identifier))
        .then_some((module, attr))
}

/// The file of a dotted module under one of `roots`: `a/b.py` or `a/b/__init__.py`.
fn find_module(module: &str, roots: &[PathBuf]) -> Option<PathBuf> {
    let rel: PathBuf = module.split('.').collect();
    roots.iter().find_map(|root| {
        let file = root.join(&rel).with_extension("py");
        let package = root.join(&rel).join("__init__.py");
        [file, package].into_iter().find(|p| p.is_file())
    })
}

/// The names a Python file defines at top level (classes, functions, assignments, imports): a
/// textual scan that is enough to catch a misspelt class name before any worker starts.
fn top_level_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let word = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for line in text.lines() {
        if let Some(rest) = line
            .strip_prefix("class ")
            .or_else(|| line.strip_prefix("def "))
        {
            names.push(word(rest.trim_start()));
        } else if line.starts_with("from ") || line.starts_with("import ") {
            let imported = line.split(" import ").nth(1).unwrap_or(line);
            for part in imported.split([',', '(', ')', ' ']) {
                if !part.is_empty() && is_identifier(part) && part != "as" && part != "import" {
                    names.push(part.to_string());
                }
            }
        } else if line.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) {
            let w = word(line);
            if line[w.len()..].trim_start().starts_with(['=', ':']) {
                names.push(w);
            }
        }
    }
    names
}

/// Resolves the torch keys of every model (`keys[i]` belongs to `models[i]`) and the `[parity]`
/// tolerances. The torch keys are required of every model when `runtimes` includes `torch`.
pub(super) fn resolve(
    models: &mut [ModelSpec],
    keys: Vec<ModelKeys>,
    raw_torch: Option<RawTorch>,
    raw_parity: Option<RawParity>,
    runtimes: &[Runtime],
    dir: &Path,
    e: &mut Errors,
) {
    let python_path = resolve_python_path(raw_torch, dir, e);
    let torch = runtimes.contains(&Runtime::Torch);
    for (m, k) in models.iter_mut().zip(keys) {
        m.torch = resolve_model_keys(&m.name, k, &python_path, torch, dir, e);
    }
    if let Some(parity) = raw_parity {
        resolve_parity(models, parity, e);
    }
}

/// `[torch] python_path`: folders relative to the scenario file (default: its own folder), made
/// absolute; one that is not a folder is an error.
fn resolve_python_path(raw: Option<RawTorch>, dir: &Path, e: &mut Errors) -> Vec<PathBuf> {
    let pkey = KeyPath::default().key("torch").key("python_path");
    let mut python_path = Vec::new();
    let listed = raw
        .and_then(|t| t.python_path)
        .map_or_else(|| vec![".".to_string()], |p| p.to_vec());
    for p in listed {
        let folder = dir.join(&p);
        if folder.is_dir() {
            python_path.push(folder.canonicalize().unwrap_or(folder));
        } else {
            e.push(
                &pkey,
                format!("{} is not a folder", folder.display()),
                "python_path lists folders relative to the scenario file, e.g. `python_path = \"..\"` for the repository root",
            );
        }
    }
    python_path
}

/// One model's torch keys: its [`TorchSpec`] when they are complete and check out; `None` (with
/// an error when the torch runtime needs them, or when they are wrong) otherwise.
fn resolve_model_keys(
    name: &str,
    k: ModelKeys,
    python_path: &[PathBuf],
    torch: bool,
    dir: &Path,
    e: &mut Errors,
) -> Option<TorchSpec> {
    if k.synthetic {
        if k.module.is_some() || k.weights.is_some() || k.init_seed.is_some() {
            e.push(
                &k.key,
                "a synthetic model has no `module`, `weights` or `init_seed`",
                "remove them, or remove `synthetic` to run a real model",
            );
        } else if torch {
            e.push(
                &k.key,
                format!("the torch runtime cannot run synthetic model `{name}`"),
                "remove \"torch\" from `sweep.runtime`, or run synthetic models in another scenario",
            );
        }
        return None;
    }
    let mut ok = true;
    if let Some(module) = &k.module {
        ok &= check_module(module, python_path, &k.key.key("module"), e);
    }
    let weights = match &k.weights {
        None => None,
        Some(w) => {
            let path = dir.join(w);
            if path.is_file() {
                Some(path.canonicalize().unwrap_or(path))
            } else {
                ok = false;
                e.push(
                    &k.key.key("weights"),
                    format!("weights file {} does not exist", path.display()),
                    "paths are relative to the scenario file's folder; `scripts/export_models.py` writes the bundled models' state_dicts to models/torch/",
                );
                None
            }
        }
    };
    if k.weights.is_some() && k.init_seed.is_some() {
        ok = false;
        e.push(
            &k.key.key("init_seed"),
            "give `weights` or `init_seed`, not both",
            "keep `weights` to load a state_dict, or `init_seed` to build the module from a seed",
        );
    }
    match &k.module {
        None if k.weights.is_some() || k.init_seed.is_some() => {
            e.push(
                &k.key,
                format!("model `{name}` has `weights` or `init_seed` but no `module`"),
                "add `module = \"package.module:Class\"`, the PyTorch module they belong to",
            );
        }
        None if torch => {
            e.push(
                &k.key,
                format!("model `{name}` has no `module`, which the torch runtime needs"),
                "add `module = \"models.zoo:ResNetSmall\"` (the PyTorch class, found under `[torch] python_path`) and `weights = \"../models/torch/NAME.pt\"`, or remove \"torch\" from `sweep.runtime`",
            );
        }
        None => {}
        Some(_) if k.weights.is_none() && k.init_seed.is_none() => {
            e.push(
                &k.key.key("module"),
                format!("model `{name}` has a `module` but neither `weights` nor `init_seed`"),
                "add `weights = \"FILE.pt\"` (a state_dict saved with torch.save) or `init_seed = 0`: random weights would not match the ONNX file",
            );
        }
        Some(module) if ok => {
            return Some(TorchSpec {
                module: module.clone(),
                weights,
                init_seed: k.init_seed,
                python_path: python_path.to_vec(),
            });
        }
        Some(_) => {}
    }
    None
}

/// Whether `module` (`package.module:Name`) is well formed, lies under the Python path, and its
/// file defines `Name`; an error at `key` when not.
fn check_module(module: &str, python_path: &[PathBuf], key: &KeyPath, e: &mut Errors) -> bool {
    let Some((modname, attr)) = split_module(module) else {
        e.push(
            key,
            format!("`{module}` is not of the form `package.module:Name`"),
            "e.g. `module = \"models.zoo:ResNetSmall\"`",
        );
        return false;
    };
    let Some(file) = find_module(modname, python_path) else {
        let shown: Vec<String> = python_path
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        e.push(
            key,
            format!(
                "module `{modname}` is not on the Python path ({})",
                shown.join(", ")
            ),
            "fix the module's name, or list its root folder in `[torch] python_path` (relative to the scenario file; default: the scenario's folder)",
        );
        return false;
    };
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    let first = attr.split('.').next().unwrap_or(attr);
    if top_level_names(&text).iter().any(|n| n == first) {
        return true;
    }
    let mut classes: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("class "))
        .map(|l| {
            l.split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                .next()
                .unwrap_or_default()
        })
        .filter(|c| !c.starts_with('_'))
        .collect();
    classes.dedup();
    e.push(
        key,
        format!("{} defines no `{first}`", file.display()),
        if classes.is_empty() {
            "name a class or function the module defines".to_string()
        } else {
            format!("its classes are: {}", classes.join(", "))
        },
    );
    false
}

/// `[parity]`: the default tolerances of `bench parity`, and each model's own in
/// `[parity.models.NAME]`.
fn resolve_parity(models: &mut [ModelSpec], parity: RawParity, e: &mut Errors) {
    let key = KeyPath::default().key("parity");
    let default = Tolerance {
        atol: check_tolerance(parity.atol, Tolerance::default().atol, &key.key("atol"), e),
        rtol: check_tolerance(parity.rtol, Tolerance::default().rtol, &key.key("rtol"), e),
    };
    for m in models.iter_mut() {
        m.parity = default;
    }
    for (name, t) in &parity.models {
        let mkey = key.key("models").key(name);
        let Some(m) = models.iter_mut().find(|m| &m.name == name) else {
            let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
            e.push(
                &mkey,
                format!("no model is named `{name}`"),
                format!("the models are: {}", names.join(", ")),
            );
            continue;
        };
        m.parity = Tolerance {
            atol: check_tolerance(t.atol, default.atol, &mkey.key("atol"), e),
            rtol: check_tolerance(t.rtol, default.rtol, &mkey.key("rtol"), e),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_syntax() {
        assert_eq!(
            split_module("models.zoo:ResNetSmall"),
            Some(("models.zoo", "ResNetSmall"))
        );
        assert_eq!(split_module("m:Class.make"), Some(("m", "Class.make")));
        for bad in [
            "models.zoo",
            "models/zoo.py:X",
            "models.zoo:",
            ":X",
            "a..b:X",
            "a:1X",
        ] {
            assert_eq!(split_module(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_bundled_runtimes_scenario_resolves_its_modules_and_tolerances() {
        let s = match crate::scenario::load(Path::new("scenarios/runtimes.toml")) {
            Ok(s) => s,
            // A build without tract refuses the scenario, and says why.
            Err(e) if !cfg!(feature = "tract") => {
                assert!(e.to_string().contains("no tract runtime"), "{e}");
                return;
            }
            Err(e) => panic!("{e}"),
        };
        assert_eq!(
            s.axes.runtime,
            [Runtime::Torch, Runtime::Ort, Runtime::Tract]
        );
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .canonicalize()
            .unwrap();
        let mlp = s.models.iter().find(|m| m.name == "mlp").unwrap();
        let t = mlp.torch.as_ref().unwrap();
        assert_eq!(t.module, "models.zoo:MLP");
        assert_eq!(
            t.weights.as_deref(),
            Some(root.join("models/torch/mlp.pt").as_path())
        );
        assert_eq!(t.init_seed, None);
        assert_eq!(t.python_path, [root]);
        assert_eq!(mlp.parity, Tolerance::default());
        let mixed = s.models.iter().find(|m| m.name == "mixed_inputs").unwrap();
        assert_eq!(
            mixed.parity,
            Tolerance {
                atol: 1e-2,
                rtol: 1e-2
            }
        );
        assert!(s.models.iter().all(|m| m.torch.is_some()));
    }

    #[test]
    fn top_level_names_of_a_module() {
        let text = "import torch\nfrom torch import nn, Tensor\nfrom .zoo import (A, B as C)\n\
                    class Net(nn.Module):\n    x = 1\ndef make(seed):\n    pass\nMODELS: dict = {}\n\
                    VERSION = 2\n";
        let names = top_level_names(text);
        for n in [
            "torch", "nn", "Tensor", "A", "C", "Net", "make", "MODELS", "VERSION",
        ] {
            assert!(names.iter().any(|x| x == n), "{n} in {names:?}");
        }
        assert!(!names.iter().any(|x| x == "x"), "{names:?}");
    }
}
