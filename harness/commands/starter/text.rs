//! The TOML both starters write: each model as a draft (its dims, inputs, shapes and generators,
//! each with an optional comment), rendered under a header and above the settings. Nothing here
//! decides a value; `init` and `run` fill the drafts.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::flags::InputValue;

/// One model as it will be written.
#[derive(Debug, Clone)]
pub(super) struct Draft {
    pub(super) name: String,
    pub(super) path: PathBuf,
    /// A test-data folder: it gives the inputs it holds, their shapes and the expected outputs.
    pub(super) test_data: Option<PathBuf>,
    /// `bench inspect`'s text, shown as comments.
    pub(super) signature: String,
    /// Named dims in order of first use: size and an optional comment.
    pub(super) dims: Vec<(String, i64, Option<String>)>,
    pub(super) inputs: Vec<InputDraft>,
    /// Said in the file, above the model, and on stderr.
    pub(super) warnings: Vec<String>,
    /// Scalar (rank-0) numeric inputs, likely parameters: `bench init` marks them `# set me`.
    pub(super) parameters: Vec<String>,
}

#[derive(Debug, Clone)]
pub(super) struct InputDraft {
    pub(super) name: String,
    /// `float32 [batch, 16]`.
    pub(super) describe: String,
    pub(super) shape: Option<(Vec<i64>, Option<String>)>,
    pub(super) generator: Option<(String, Option<String>)>,
}

/// `key` as a TOML key: bare when it can be, else a quoted string (dotted dim names must be).
pub(super) fn toml_key(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        key.to_string()
    } else {
        toml_str(key)
    }
}

pub(super) fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

pub(super) fn generator_toml(v: &InputValue) -> String {
    match v {
        InputValue::Bool(b) => format!(r#"{{ kind = "const", value = {b} }}"#),
        InputValue::Int(i) => format!(r#"{{ kind = "const", value = {i} }}"#),
        InputValue::Float(f) => format!(
            r#"{{ kind = "const", value = {} }}"#,
            toml::Value::Float(*f)
        ),
        InputValue::IntRange(low, high) => {
            format!(r#"{{ kind = "int", low = {low}, high = {high} }}"#)
        }
        InputValue::Uniform(low, high) => format!(
            r#"{{ kind = "uniform", low = {}, high = {} }}"#,
            toml::Value::Float(*low),
            toml::Value::Float(*high)
        ),
        InputValue::Normal(mean, std) => format!(
            r#"{{ kind = "normal", mean = {}, std = {} }}"#,
            toml::Value::Float(*mean),
            toml::Value::Float(*std)
        ),
        InputValue::File(p) => format!(
            r#"{{ kind = "file", path = {} }}"#,
            toml_str(&p.display().to_string())
        ),
    }
}

/// `value   # comment`, or `value` alone.
fn with_comment(line: String, comment: &Option<String>) -> String {
    match comment {
        Some(c) => format!("{line}   # {c}\n"),
        None => format!("{line}\n"),
    }
}

pub(super) fn render(header: &[String], top: &str, drafts: &[Draft], tail: &str) -> String {
    let mut s = String::new();
    for h in header {
        let _ = writeln!(s, "# {h}");
    }
    s.push_str(top);
    for d in drafts {
        s.push('\n');
        for w in &d.warnings {
            let _ = writeln!(
                s,
                "# WARNING: {w}; `bench validate` will refuse this model."
            );
        }
        let _ = writeln!(s, "[[model]]");
        let _ = writeln!(s, "name = {}", toml_str(&d.name));
        let _ = writeln!(s, "path = {}", toml_str(&d.path.display().to_string()));
        if let Some(t) = &d.test_data {
            let _ = writeln!(
                s,
                "test_data = {}   # gives the inputs it holds, their shapes, and the expected outputs",
                toml_str(&t.display().to_string())
            );
        }
        for line in d.signature.lines().skip(1) {
            let _ = writeln!(s, "#{line}");
        }
        if !d.dims.is_empty() {
            let _ = writeln!(s, "\n[model.dims]");
            for (n, v, c) in &d.dims {
                s.push_str(&with_comment(format!("{} = {v}", toml_key(n)), c));
            }
        }
        for i in &d.inputs {
            if i.shape.is_none() && i.generator.is_none() {
                continue;
            }
            let _ = writeln!(
                s,
                "\n[model.inputs.{}]   # {}",
                toml_key(&i.name),
                i.describe
            );
            if let Some((shape, c)) = &i.shape {
                let list: Vec<String> = shape.iter().map(i64::to_string).collect();
                s.push_str(&with_comment(format!("shape = [{}]", list.join(", ")), c));
            }
            if let Some((g, c)) = &i.generator {
                s.push_str(&with_comment(format!("generator = {g}"), c));
            }
        }
    }
    s.push_str(tail);
    s
}
