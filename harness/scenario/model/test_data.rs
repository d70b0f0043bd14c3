//! Stage 3 of a model: its test-data folder (`test_data_set_N/input_K.pb`, `output_K.pb`, as the
//! ONNX model zoo ships them). The input files become the model's samples, and so give each input
//! its shape; the output files become the expected outputs each worker's first runs are checked
//! against.
//!
//! A file is matched to the model by the tensor's name when it has one, else by its position K
//! among the model's inputs (or outputs). Every set must give every input, with one shape across
//! sets that agrees with the model's fixed dims and binds its named ones. Each error names the
//! file.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use super::At;
use crate::model::onnx::{Dim, IoInfo, ModelInfo, NamedTensor};
use crate::model::tensor::{DType, TensorData};
use crate::model::testdata::{self, TestSet};
use crate::scenario::error::Errors;
use crate::scenario::raw::RawInput;

/// What a test-data folder gives a model: per input, its element type, shape and one file per
/// set; per set, the expected outputs (output index, tensor).
pub(super) struct TestInputs {
    pub(super) inputs: BTreeMap<String, (DType, Vec<i64>, Vec<PathBuf>)>,
    pub(super) expected: Vec<Vec<(usize, TensorData)>>,
}

/// A problem of one file: the message and the fix, reported at the model's `test_data` key.
type Refusal = (String, String);

/// Reads the model's test-data folder `dir` and matches its files to the model. `None` after an
/// error at the first file that does not fit.
pub(super) fn resolve(
    dir: &Path,
    info: &ModelInfo,
    graph_inputs: &[&IoInfo],
    given: &BTreeMap<String, RawInput>,
    at: &At,
    e: &mut Errors,
) -> Option<TestInputs> {
    let key = &at.key.key("test_data");
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    if !dir.is_dir() {
        e.push(
            key,
            format!("test-data folder {} does not exist", dir.display()),
            "point `test_data` at the folder holding test_data_set_N folders (relative to the scenario file)",
        );
        return None;
    }
    let sets = match testdata::read_test_data(&dir) {
        Ok(s) => s,
        Err(err) => {
            e.push(key, format!("{err:#}"), "fix or regenerate the file");
            return None;
        }
    };
    refuse_given_entries(given, at, e);
    let mut matcher = Matcher {
        info,
        graph_inputs,
        model: at.name,
        inputs: BTreeMap::new(),
        from: BTreeMap::new(),
        named_dims: BTreeMap::new(),
    };
    let mut expected = Vec::new();
    for set in &sets {
        let outputs = matcher
            .set_inputs(set)
            .and_then(|()| expected_outputs(set, info, at.name));
        match outputs {
            Ok(want) => expected.push(want),
            Err((message, fix)) => {
                e.push(key, message, fix);
                return None;
            }
        }
    }
    Some(TestInputs {
        inputs: matcher.inputs,
        expected,
    })
}

/// An input the test data gives takes neither a shape nor a generator from the scenario.
fn refuse_given_entries(given: &BTreeMap<String, RawInput>, at: &At, e: &mut Errors) {
    for (input, raw) in given {
        if raw.shape.is_some() || raw.generator.is_some() {
            e.push(
                &at.key.key("inputs").key(input),
                format!(
                    "input `{input}` of model `{}` comes from its test data",
                    at.name
                ),
                "remove the entry: the test-data files give its values and shape",
            );
        }
    }
}

/// Matches the sets' input files to the model's inputs, one set after another, keeping what the
/// sets before agreed on: each input's shape and files, and each named dim's size.
struct Matcher<'a> {
    info: &'a ModelInfo,
    graph_inputs: &'a [&'a IoInfo],
    model: &'a str,
    inputs: BTreeMap<String, (DType, Vec<i64>, Vec<PathBuf>)>,
    /// The file that first gave each input its shape.
    from: BTreeMap<String, PathBuf>,
    /// Each named dim's size, and the file that gave it.
    named_dims: BTreeMap<String, (i64, PathBuf)>,
}

impl<'a> Matcher<'a> {
    /// One set's input files: each names an input once, with its type and a shape that fits; and
    /// every input of the model has one.
    fn set_inputs(&mut self, set: &TestSet) -> Result<(), Refusal> {
        let mut seen: HashSet<&str> = HashSet::new();
        for (k, (path, t)) in set.inputs.iter().enumerate() {
            let io = self.input_of(k, path, t)?;
            if !seen.insert(io.name.as_str()) {
                return Err((
                    format!(
                        "{} gives input `{}` a second time in {}",
                        path.display(),
                        io.name,
                        set.dir.display()
                    ),
                    "give each input once per test_data_set folder".into(),
                ));
            }
            self.check_tensor(io, path, &t.tensor)?;
            self.add_file(io, path, &t.tensor)?;
        }
        match self
            .info
            .inputs
            .iter()
            .find(|io| !seen.contains(io.name.as_str()))
        {
            Some(io) => Err((
                format!(
                    "{} gives no file for input `{}` of model `{}`",
                    set.dir.display(),
                    io.name,
                    self.model
                ),
                "add its input_K.pb (named after the input) to every set".into(),
            )),
            None => Ok(()),
        }
    }

    /// The input file `path` (the set's `k`th) is for: by the tensor's name, else by position.
    fn input_of(&self, k: usize, path: &Path, t: &NamedTensor) -> Result<&'a IoInfo, Refusal> {
        let io = if t.name.is_empty() {
            self.info.inputs.get(k)
        } else {
            self.graph_inputs.iter().copied().find(|i| i.name == t.name)
        };
        let model = self.model;
        io.ok_or_else(|| {
            let names: Vec<&str> = self.graph_inputs.iter().map(|i| i.name.as_str()).collect();
            (
                if t.name.is_empty() {
                    format!(
                        "{} is input {k}, but model `{model}` has {} inputs",
                        path.display(),
                        self.info.inputs.len()
                    )
                } else {
                    format!(
                        "{} holds tensor `{}`, but model `{model}` has no such input",
                        path.display(),
                        t.name
                    )
                },
                format!("its inputs are: {}", names.join(", ")),
            )
        })
    }

    /// The file's element type is the input's, and its shape agrees with the input's fixed dims
    /// and with the sizes the files before gave its named dims.
    fn check_tensor(&mut self, io: &IoInfo, path: &Path, t: &TensorData) -> Result<(), Refusal> {
        let model = self.model;
        if io.dtype != Ok(t.dtype) {
            return Err((
                format!(
                    "{} holds {}, but input `{}` of model `{model}` is {}",
                    path.display(),
                    t.dtype,
                    io.name,
                    io.dtype_name()
                ),
                "save the tensor with the input's element type".into(),
            ));
        }
        if !io.rank_known {
            return Ok(());
        }
        let contradiction = if io.dims.len() != t.shape.len() {
            Some(format!("rank {} against {}", t.shape.len(), io.dims.len()))
        } else {
            io.dims
                .iter()
                .zip(&t.shape)
                .enumerate()
                .find_map(|(pos, (d, &size))| self.dim_contradiction(pos, d, size, path))
        };
        match contradiction {
            Some(why) => Err((
                format!(
                    "{} has shape {:?}, which contradicts input `{}` of model `{model}` {}: {why}",
                    path.display(),
                    t.shape,
                    io.name,
                    io.shape_string()
                ),
                "fix the test data, or point `test_data` at the model's own".into(),
            )),
            None => Ok(()),
        }
    }

    /// Why `size` at position `pos` of a file contradicts the input's dim `d` there: a fixed dim
    /// of another size, or a named dim another file gave another size (the first file to give a
    /// named dim binds it).
    fn dim_contradiction(&mut self, pos: usize, d: &Dim, size: i64, path: &Path) -> Option<String> {
        match d {
            Dim::Fixed(n) if *n != size => {
                Some(format!("dim {pos} is {size}, the model fixes it at {n}"))
            }
            Dim::Named(n) => match self.named_dims.get(n) {
                Some((v, other)) if *v != size => Some(format!(
                    "dim `{n}` is {size}, but {v} in {}",
                    other.display()
                )),
                Some(_) => None,
                None => {
                    self.named_dims
                        .insert(n.clone(), (size, path.to_path_buf()));
                    None
                }
            },
            _ => None,
        }
    }

    /// Adds the file to its input's files; every set gives an input one shape.
    fn add_file(&mut self, io: &IoInfo, path: &Path, t: &TensorData) -> Result<(), Refusal> {
        let from = &mut self.from;
        let entry = self.inputs.entry(io.name.clone()).or_insert_with(|| {
            from.insert(io.name.clone(), path.to_path_buf());
            (t.dtype, t.shape.clone(), Vec::new())
        });
        if entry.1 != t.shape {
            return Err((
                format!(
                    "{} has shape {:?}, but {} has {:?}; every set gives input `{}` one shape",
                    path.display(),
                    t.shape,
                    self.from[&io.name].display(),
                    entry.1,
                    io.name
                ),
                "split the sets into two test-data folders (two models)".into(),
            ));
        }
        entry.2.push(path.to_path_buf());
        Ok(())
    }
}

/// One set's expected outputs, as (output index, tensor): each file names an output of the model
/// (by name, else by position) and holds its element type.
fn expected_outputs(
    set: &TestSet,
    info: &ModelInfo,
    model: &str,
) -> Result<Vec<(usize, TensorData)>, Refusal> {
    let out_names: Vec<&str> = info.outputs.iter().map(|o| o.name.as_str()).collect();
    let mut want = Vec::new();
    for (k, (path, t)) in set.outputs.iter().enumerate() {
        let i = if t.name.is_empty() {
            (k < info.outputs.len()).then_some(k)
        } else {
            info.outputs.iter().position(|o| o.name == t.name)
        };
        let Some(i) = i else {
            return Err((
                format!(
                    "{} is not an output of model `{model}` (tensor `{}`, position {k})",
                    path.display(),
                    t.name
                ),
                format!("its outputs are: {}", out_names.join(", ")),
            ));
        };
        if let Ok(d) = info.outputs[i].dtype
            && d != t.tensor.dtype
        {
            return Err((
                format!(
                    "{} holds {}, but output `{}` of model `{model}` is {d}",
                    path.display(),
                    t.tensor.dtype,
                    info.outputs[i].name
                ),
                "save the expected output with the output's element type".into(),
            ));
        }
        want.push((i, t.tensor.clone()));
    }
    Ok(want)
}
