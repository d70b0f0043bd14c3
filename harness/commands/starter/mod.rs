//! Writes scenario files from ONNX models, for people who start from a model rather than from a
//! scenario: `bench init` prints a commented starter, and `bench run` turns its flags into the
//! scenario it then sweeps (and keeps beside the results, so the run can be repeated and edited).
//!
//! Both read each model's signature (`crate::model::onnx`), decide every input's shape and generator,
//! and render the same TOML. They differ in who binds the dynamic dims: `init` guesses 1 and
//! marks each guess `# bind me`, so the file validates at once and says what to set; `run` takes
//! `--dims` and `--shape`, binds only a batch-like dim by itself (to 1, with a note), and refuses
//! any other unbound dim with the flag that binds it. The text is checked by `scenario::load`
//! like any hand-written scenario, so nothing here decides what is valid.
//!
//! Dims follow ONNX Runtime, as `onnx::Dim` reads them: a named dim (`batch`,
//! `p2o.DynamicDimension.0`) has one size across a model's inputs and is bound in `dims`; an
//! anonymous one (`-1`, `?`, `None`, `unk__N`) is its own, so its input gets a full `shape`.
//!
//! - this file: the two starters, `init` and `run`, stage by stage;
//! - `flags.rs`: the flag values, parsed and aimed at models;
//! - `models.rs`: what a model file says (signature, names, dims left to bind, proposals);
//! - `bind.rs`: `bench run`'s flags bound to the models they aim at;
//! - `text.rs`: the drafts of the models and the TOML they render to.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::model::onnx::{self, Dim, IoInfo, ModelInfo};
use crate::model::tensor::DType;

mod bind;
mod flags;
mod models;
mod text;

pub(crate) use flags::{InputValue, Scoped, parse_dim, parse_input, parse_shape, parse_test_data};
pub(crate) use models::{batch_like, model_names};

use bind::Bound;
use flags::test_data_per_model;
use models::{dims_left, proposed_generator, read_info, test_data_inputs, warnings_of};
use text::{Draft, InputDraft, generator_toml, render, toml_key, toml_str};

/// `bench init`: a commented starter scenario for `models`, on stdout's behalf. Returns the text and
/// the lines for stderr: per model, what to bind, then what to do next.
pub(crate) fn init(
    models: &[PathBuf],
    test_data: &[Scoped<PathBuf>],
) -> anyhow::Result<(String, Vec<String>)> {
    let names = model_names(models);
    let test_data =
        test_data_per_model(test_data, &names).map_err(|p| anyhow::anyhow!("{}", p.join("\n")))?;
    let mut drafts = Vec::new();
    let mut notes = Vec::new();
    let mut all_binds = 0;
    for ((path, name), test_data) in models.iter().zip(names).zip(test_data) {
        let d = init_draft(path, name, test_data)?;
        let binds = d.dims.len() + d.inputs.iter().filter(|i| i.shape.is_some()).count();
        all_binds += binds;
        notes.push(format!(
            "{}: {}",
            d.name,
            match (binds, &d.test_data) {
                (0, Some(_)) =>
                    "nothing to bind: the test data gives its inputs and their shapes".to_string(),
                (0, None) => "no dynamic dims; runs as it is".to_string(),
                _ => format!("{binds} value(s) marked `# bind me` (set to 1)"),
            }
        ));
        notes.extend(d.parameters.iter().map(|p| {
            format!(
                "{}: input `{p}` is a scalar, likely a parameter: set its value in \
                 `[model.inputs.{p}]` (marked `# set me`)",
                d.name
            )
        }));
        notes.extend(
            d.warnings
                .iter()
                .map(|w| format!("{}: warning: {w}", d.name)),
        );
        drafts.push(d);
    }
    let then = if all_binds == 0 {
        "Nothing to bind: it runs as it is; check it and run it with"
    } else {
        "Values marked `# bind me` are guesses (1): set the sizes you will serve, then"
    };
    let header = [
        "Starter scenario written by `bench init`.".to_string(),
        then.to_string(),
        "  bench validate --scenario THIS_FILE     # checks it against the models".to_string(),
        "  bench sweep --scenario THIS_FILE        # runs it".to_string(),
        "Paths are absolute; a relative path is read from this file's folder.".to_string(),
        "Every key: docs/reference/scenario.md".to_string(),
    ];
    let names: Vec<&str> = drafts.iter().map(|d| d.name.as_str()).collect();
    let tail = format!(
        "\n# Sweep axes: one value or a list each (docs/reference/scenario.md#sweep).\n\
         [sweep]\nworkers = 1\nintra_threads = 1\ntransfer = \"pipe\"\n\n\
         [load]\nkind = \"closed\"\nconcurrency = 1\n{}",
        commented_workload(&names)
    );
    let top = "\n# Objectives a point must meet, or it is invalid (docs/reference/scenario.md#slos):\n\
               # slo = [\"p99_ms <= 50\"]\n";
    let next = if all_binds == 0 {
        "`bench validate --scenario FILE` checks it, `bench sweep --scenario FILE` runs it"
    } else {
        "set the `# bind me` values, then `bench validate --scenario FILE` and `bench sweep --scenario FILE`"
    };
    notes.push(next.to_string());
    Ok((render(&header, top, &drafts, &tail), notes))
}

/// The `[workload]` keys a first scenario is likely to want, commented out at their defaults, so
/// that a user sees where ensembles, the mix and the measurement's length go.
fn commented_workload(names: &[&str]) -> String {
    let list = names
        .iter()
        .map(|n| toml_str(n))
        .collect::<Vec<_>>()
        .join(", ");
    let mix = names
        .iter()
        .map(|n| format!("{} = 1", toml_key(n)))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "\n# Requests and measurement (docs/reference/scenario.md#workload): an example ensemble, then\n\
         # the defaults:\n\
         # [workload]\n\
         # groups = {{ together = [{list}] }}   # an ensemble: a request to it fans out to each\n\
         # mix = {{ {mix} }}   # relative weights of models and groups\n\
         # warmup = \"1s\"\n\
         # duration = \"5s\"\n\
         # trials = 1\n"
    )
}

/// `bench init`'s draft of one model: every dim it cannot know set to 1 and marked `# bind me`,
/// the inputs a test-data folder gives left out.
fn init_draft(path: &Path, name: String, test_data: Option<PathBuf>) -> anyhow::Result<Draft> {
    let (abs, info) = read_info(path, "MODEL")?;
    let given = match &test_data {
        Some(dir) => test_data_inputs(dir, &info)
            .unwrap_or_else(|_| info.inputs.iter().map(|i| i.name.clone()).collect()),
        None => Vec::new(),
    };
    let mut d = Draft {
        signature: onnx::describe(path)?,
        name,
        path: abs,
        test_data,
        dims: Vec::new(),
        inputs: Vec::new(),
        warnings: warnings_of(&info),
        parameters: Vec::new(),
    };
    // An input with unnamed dims gets a full shape, which binds its named dims too (a shape wins
    // over `dims`): those are set there, once, not also in `[model.dims]`.
    let shaped: Vec<String> = info
        .inputs
        .iter()
        .filter(|i| !given.contains(&i.name))
        .filter(|i| i.rank_known && i.dims.contains(&Dim::Unknown))
        .map(|i| i.name.clone())
        .collect();
    let in_shapes = dims_left(
        &info,
        &info
            .inputs
            .iter()
            .map(|i| i.name.clone())
            .filter(|n| !shaped.contains(n))
            .collect::<Vec<_>>(),
    );
    for n in dims_left(&info, &given)
        .into_iter()
        .filter(|n| !in_shapes.contains(n))
    {
        let why = if batch_like(&n) {
            "bind me: a batch dim; 1 is one sample per request".to_string()
        } else {
            format!("bind me: the size of dim `{n}`")
        };
        d.dims.push((n, 1, Some(why)));
    }
    for io in info.inputs.iter().filter(|i| !given.contains(&i.name)) {
        let mut generator = io.dtype.as_ref().ok().map(|&t| proposed_generator(io, t));
        if let Some(set_me) = io
            .dtype
            .as_ref()
            .ok()
            .and_then(|&t| parameter_generator(io, t))
        {
            d.parameters.push(io.name.clone());
            generator = Some(set_me);
        }
        d.inputs.push(InputDraft {
            name: io.name.clone(),
            describe: format!("{} {}", io.dtype_name(), io.shape_string()),
            shape: guessed_shape(io),
            generator,
        });
    }
    Ok(d)
}

/// The generator `bench init` writes for a scalar (rank-0) numeric input: such an input is most
/// often a parameter (a threshold, a frequency range, a sample rate) whose random value would
/// measure nonsense, so it gets a constant the user must set. `None` for any other input.
fn parameter_generator(io: &IoInfo, dtype: DType) -> Option<(String, Option<String>)> {
    if !(io.rank_known && io.dims.is_empty()) || dtype == DType::Str || dtype == DType::Bool {
        return None;
    }
    let value = if dtype.is_float() { "1.0" } else { "1" };
    Some((
        format!("{{ kind = \"const\", value = {value} }}"),
        Some(
            "set me: a scalar, likely a parameter (a threshold, a frequency); give the value you serve"
                .into(),
        ),
    ))
}

/// `bench init`'s shape of an input whose rank or some dims are unknown: 1 for each of those,
/// marked `# bind me`; `None` when its named dims bind it.
fn guessed_shape(io: &IoInfo) -> Option<(Vec<i64>, Option<String>)> {
    if !io.rank_known {
        return Some((
            vec![1],
            Some("bind me: unknown rank; give the full shape".into()),
        ));
    }
    if !io.dims.contains(&Dim::Unknown) {
        return None;
    }
    let dynamic: Vec<String> = io
        .dims
        .iter()
        .enumerate()
        .filter_map(|(i, x)| match x {
            Dim::Named(n) => Some(format!("{i} (`{n}`)")),
            Dim::Unknown => Some(format!("{i} (unnamed)")),
            Dim::Fixed(_) => None,
        })
        .collect();
    let shape = io
        .dims
        .iter()
        .map(|x| match x {
            Dim::Fixed(n) => *n,
            _ => 1,
        })
        .collect();
    Some((
        shape,
        Some(format!(
            "bind me: dynamic dim{} {}; 1 is a guess",
            if dynamic.len() == 1 { "" } else { "s" },
            dynamic.join(", ")
        )),
    ))
}

/// Everything `bench run` turns into a scenario besides the models.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunSpec {
    pub(crate) dims: Vec<Scoped<i64>>,
    pub(crate) shapes: Vec<Scoped<Vec<i64>>>,
    pub(crate) inputs: Vec<Scoped<InputValue>>,
    /// `--test-data [MODEL=]DIR`.
    pub(crate) test_data: Vec<Scoped<PathBuf>>,
    /// The top-level `name`.
    pub(crate) name: String,
    /// `(table, key, value)` lines after the models, e.g. `("sweep", "workers", [1, 2])`, in
    /// order; tables are written once each, in order of first use.
    pub(crate) settings: Vec<(&'static str, String, toml::Value)>,
    /// The command line, for the file's header.
    pub(crate) command: String,
}

/// `bench run`: the scenario text for `models` and `spec`, and notes for stderr (dims bound by
/// default). Errors name the flag to fix, all at once.
pub(crate) fn run(models: &[PathBuf], spec: &RunSpec) -> anyhow::Result<(String, Vec<String>)> {
    let names = model_names(models);
    let infos = read_all(models)?;
    let mut problems = Vec::new();
    let test_data = test_data_per_model(&spec.test_data, &names).unwrap_or_else(|p| {
        problems.extend(p);
        vec![None; names.len()]
    });
    let given = given_inputs(&test_data, &infos);
    let flags = Bound::of(spec, &names, &infos, &mut problems);
    let mut notes = Vec::new();
    let mut drafts = Vec::new();
    for (m, ((path, info), name)) in infos.iter().zip(&names).enumerate() {
        let bound = flags.dims_of(m, info, name, models.len() > 1, &mut problems);
        let mut d = Draft {
            name: name.clone(),
            path: path.clone(),
            test_data: test_data[m].clone(),
            signature: onnx::describe(path)?,
            dims: Vec::new(),
            inputs: Vec::new(),
            warnings: warnings_of(info),
            parameters: Vec::new(),
        };
        let set = Bindings {
            dims: &flags.dims[m],
            bound: &bound,
            shapes: &flags.shapes[m],
            values: &flags.values[m],
        };
        run_dims(&mut d, info, &given[m], &set, &mut notes, &mut problems);
        run_inputs(&mut d, info, &given[m], &set, &mut problems);
        drafts.push(d);
    }
    if !problems.is_empty() {
        anyhow::bail!(
            "cannot build a scenario from the flags:\n  {}",
            problems.join("\n  ")
        );
    }
    let header = [
        format!("Written by `{}`.", spec.command),
        "Repeat or edit the run: bench sweep --scenario THIS_FILE --out NEW_DIR".to_string(),
        "Every key: docs/reference/scenario.md".to_string(),
    ];
    let top = format!("name = {}\n", toml_str(&spec.name));
    Ok((
        render(&header, &top, &drafts, &settings(&spec.settings)),
        notes,
    ))
}

/// Every model's file and signature; the problems of all of them at once.
fn read_all(models: &[PathBuf]) -> anyhow::Result<Vec<(PathBuf, ModelInfo)>> {
    let mut infos = Vec::new();
    let mut problems = Vec::new();
    for p in models {
        match read_info(p, "MODEL") {
            Ok(x) => infos.push(x),
            Err(e) => problems.push(format!("{e:#}")),
        }
    }
    if !problems.is_empty() {
        anyhow::bail!("{}", problems.join("\n"));
    }
    Ok(infos)
}

/// The inputs each model's test data gives. A folder that cannot be read gives every input:
/// `scenario::load` then says what is wrong with it, after what is wrong with the model.
fn given_inputs(test_data: &[Option<PathBuf>], infos: &[(PathBuf, ModelInfo)]) -> Vec<Vec<String>> {
    test_data
        .iter()
        .zip(infos)
        .map(|(dir, (_, info))| match dir {
            Some(dir) => test_data_inputs(dir, info)
                .unwrap_or_else(|_| info.inputs.iter().map(|i| i.name.clone()).collect()),
            None => Vec::new(),
        })
        .collect()
}

/// What the flags say about one model.
struct Bindings<'a> {
    /// `--dims`.
    dims: &'a BTreeMap<String, i64>,
    /// `--dims` and the named dims a `--shape` binds.
    bound: &'a BTreeMap<String, i64>,
    shapes: &'a BTreeMap<String, (Vec<i64>, String)>,
    values: &'a BTreeMap<String, InputValue>,
}

/// `bench run`'s `[model.dims]` of one model: the sizes `--dims` gives, 1 for an unbound batch
/// dim (with a note), and a problem for any other unbound dim. A dim a `--shape` binds is left to
/// the shape.
fn run_dims(
    d: &mut Draft,
    info: &ModelInfo,
    given: &[String],
    set: &Bindings,
    notes: &mut Vec<String>,
    problems: &mut Vec<String>,
) {
    let name = d.name.clone();
    for n in dims_left(info, given) {
        if let Some(&v) = set.dims.get(&n) {
            d.dims.push((n, v, None));
        } else if set.bound.contains_key(&n) {
            // Bound by a --shape; scenario::load takes it from there.
        } else if batch_like(&n) {
            notes.push(format!(
                "{name}: dim `{n}` = 1 (a batch dim; set it with --dims {n}=SIZE)"
            ));
            d.dims.push((
                n,
                1,
                Some("a batch dim, bound to 1 by default (--dims)".into()),
            ));
        } else {
            problems.push(format!(
                "model `{name}`: dynamic dim `{n}` is unbound; bind it with --dims {n}=SIZE"
            ));
        }
    }
}

/// `bench run`'s inputs of one model: each input the test data does not give, with its
/// `--shape` and `--input`; an input whose shape no flag can complete is a problem. Weights listed
/// as inputs are written only when `--input` or `--shape` sets them.
fn run_inputs(
    d: &mut Draft,
    info: &ModelInfo,
    given: &[String],
    set: &Bindings,
    problems: &mut Vec<String>,
) {
    for io in info.inputs.iter().filter(|i| !given.contains(&i.name)) {
        let shape = set.shapes.get(&io.name).map(|(s, _)| s);
        if shape.is_none() && (!io.rank_known || io.dims.contains(&Dim::Unknown)) {
            problems.push(unshaped(&d.name, io, set.bound));
        }
        d.inputs.push(input_draft(
            io,
            shape.cloned(),
            set.values.get(&io.name),
            false,
        ));
    }
    for io in &info.initializer_inputs {
        let shape = set.shapes.get(&io.name).map(|(s, _)| s);
        let value = set.values.get(&io.name);
        if shape.is_some() || value.is_some() {
            d.inputs
                .push(input_draft(io, shape.cloned(), value, value.is_none()));
        }
    }
}

/// The problem of input `io` of model `name`, whose rank or some dims only `--shape` can give:
/// with an example shape from what is known (`bound`'s named dims, 1 for the rest).
fn unshaped(name: &str, io: &IoInfo, bound: &BTreeMap<String, i64>) -> String {
    let example = if io.rank_known {
        let guess: Vec<i64> = io
            .dims
            .iter()
            .map(|x| match x {
                Dim::Fixed(n) => *n,
                Dim::Named(n) => bound.get(n).copied().unwrap_or(1),
                Dim::Unknown => 1,
            })
            .collect();
        join_x(&guess)
    } else {
        "1x3x224x224".into()
    };
    format!(
        "model `{name}`: input `{}` is {} {}, with {}; give its full shape, e.g. --shape {}={example}",
        io.name,
        io.dtype_name(),
        io.shape_string(),
        if io.rank_known {
            "dims that have no name (so --dims cannot bind them)"
        } else {
            "an unknown rank"
        },
        io.name,
    )
}

/// The settings after the models: `[table]` once each, in order of first use, then its keys.
fn settings(settings: &[(&'static str, String, toml::Value)]) -> String {
    let mut tail = String::new();
    let mut table = "";
    for (t, k, v) in settings {
        if *t != table {
            let _ = write!(tail, "\n[{t}]\n");
            table = t;
        }
        let _ = writeln!(tail, "{k} = {v}");
    }
    tail
}

fn input_draft(
    io: &IoInfo,
    shape: Option<Vec<i64>>,
    value: Option<&InputValue>,
    weight_shape_only: bool,
) -> InputDraft {
    let generator = match value {
        Some(v) => Some((generator_toml(v), None)),
        None if weight_shape_only => None,
        None => io.dtype.as_ref().ok().map(|&t| proposed_generator(io, t)),
    };
    InputDraft {
        name: io.name.clone(),
        describe: format!("{} {}", io.dtype_name(), io.shape_string()),
        shape: shape.map(|s| (s, None)),
        generator,
    }
}

fn join_x(shape: &[i64]) -> String {
    shape
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join("x")
}

#[cfg(test)]
mod tests {
    use super::flags::aim;
    use super::text::toml_key;
    use super::*;

    #[test]
    fn flag_values_parse_with_dotted_and_colon_names() {
        let d = parse_dim("p2o.DynamicDimension.0=2").unwrap();
        assert_eq!((d.target.as_str(), d.value), ("p2o.DynamicDimension.0", 2));
        let s = parse_shape("ocr:x=1x3x48x192").unwrap();
        assert_eq!((s.target.as_str(), s.value), ("ocr:x", vec![1, 3, 48, 192]));
        assert_eq!(parse_shape("x=2,0").unwrap().value, vec![2, 0]);
        assert_eq!(
            parse_input("mask=true").unwrap().value,
            InputValue::Bool(true)
        );
        assert_eq!(
            parse_input("w=0.25").unwrap().value,
            InputValue::Float(0.25)
        );
        assert_eq!(parse_input("ids=3").unwrap().value, InputValue::Int(3));
        assert_eq!(
            parse_input("x=a=b.npy").unwrap().value,
            InputValue::File("a=b.npy".into())
        );
        for bad in ["x", "=1", "x=0", "x=two"] {
            assert!(parse_dim(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_dim("M1=120,M2=160").unwrap_err(),
            "one dim per `--dims`: repeat the flag, e.g. `--dims M1=120 --dims M2=160`"
        );
        for bad in ["x=", "x=1xx3", "x=1x-1", "1x3"] {
            assert!(parse_shape(bad).is_err(), "{bad}");
        }
        assert!(parse_input("x=soon").is_err());
    }

    /// Regression: `--input input_ids=int:0:30522` was refused: the command line had no id range,
    /// which the scenario's `int` generator gives.
    #[test]
    fn an_input_takes_the_scenarios_generators_as_kind_a_b() {
        let v = |s: &str| parse_input(s).map(|x| x.value);
        assert_eq!(
            v("input_ids=int:0:30522"),
            Ok(InputValue::IntRange(0, 30522))
        );
        assert_eq!(v("x=uniform:-1:1"), Ok(InputValue::Uniform(-1.0, 1.0)));
        assert_eq!(v("x=normal:0:0.5"), Ok(InputValue::Normal(0.0, 0.5)));
        assert_eq!(
            text::generator_toml(&InputValue::IntRange(0, 30522)),
            r#"{ kind = "int", low = 0, high = 30522 }"#
        );
        for (bad, says) in [
            ("ids=int:5:5", "LOW must be below HIGH"),
            ("ids=int:0", "write ids=int:LOW:HIGH"),
            ("ids=int:0:1.5", "write ids=int:LOW:HIGH"),
            ("x=uniform:1:0", "LOW must be below HIGH"),
            ("x=normal:0:-1", "STD must be 0 or more"),
            ("x=normal:nan:1", "write x=normal:MEAN:STD"),
        ] {
            let e = parse_input(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        // Another colon is still a file name or an error, as before.
        assert!(
            parse_input("x=soon:1:2")
                .unwrap_err()
                .contains("int:0:30522")
        );
    }

    #[test]
    fn a_scope_names_a_model_only_when_one_has_that_name() {
        let names = vec!["ocr".to_string(), "tf".to_string()];
        assert_eq!(aim("ocr:x", &names), (Some(0), "x"));
        assert_eq!(aim("input_1:0", &names), (None, "input_1:0"));
        assert_eq!(aim("tf:input_1:0", &names), (Some(1), "input_1:0"));
    }

    #[test]
    fn model_names_come_from_stems_and_are_unique() {
        let paths: Vec<PathBuf> = ["a/mlp.onnx", "b/mlp.onnx", "c/my model.onnx"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(model_names(&paths), ["mlp", "mlp_2", "my_model"]);
    }

    #[test]
    fn keys_are_quoted_when_toml_would_split_them() {
        assert_eq!(toml_key("batch"), "batch");
        assert_eq!(
            toml_key("p2o.DynamicDimension.0"),
            "\"p2o.DynamicDimension.0\""
        );
        assert_eq!(toml_key("input_1:0"), "\"input_1:0\"");
    }

    #[test]
    fn batch_like_names() {
        for b in ["batch", "batch_size", "N", "BatchSize", "bs"] {
            assert!(batch_like(b), "{b}");
        }
        for n in ["seq", "p2o.DynamicDimension.0", "height"] {
            assert!(!batch_like(n), "{n}");
        }
    }
}
