//! The errors of a scenario file: one [`ScenarioError`] per problem (file, line, key, what is
//! wrong and how to fix it) and [`ScenarioErrors`], all of a file's problems together.
//!
//! Every stage of reading and resolving reports into one [`Errors`] collector instead of
//! returning at the first problem, so the user sees every problem of the file in one run. The
//! collector looks each key's line up in the file's [`SourceMap`]; [`key_problem`] turns a problem
//! the TOML reader found (an unknown key, a wrong type) into the same form.

use std::fmt;
use std::path::{Path, PathBuf};

use super::parse::{Problem, UnknownKey};
use super::source::{KeyPath, SourceMap};

/// One problem in a scenario file.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioError {
    pub(crate) file: PathBuf,
    pub(crate) line: Option<usize>,
    pub(crate) key: String,
    pub(crate) message: String,
    pub(crate) hint: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": `{}`", self.key)?;
        }
        write!(f, ": {}", self.message)?;
        if !self.hint.is_empty() {
            write!(f, "\n  fix: {}", self.hint)?;
        }
        Ok(())
    }
}

/// All problems found in a scenario file.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ScenarioErrors(pub Vec<ScenarioError>);

impl ScenarioErrors {
    /// The one problem of a file that could not be read as a scenario at all (no line, no key).
    pub(super) fn about_file(file: &Path, message: String, hint: &str) -> ScenarioErrors {
        ScenarioErrors(vec![ScenarioError {
            file: file.to_path_buf(),
            line: None,
            key: String::new(),
            message,
            hint: hint.to_string(),
        }])
    }
}

impl fmt::Display for ScenarioErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "the scenario has {n} problem{}:",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.0 {
            write!(f, "\n{e}")?;
        }
        Ok(())
    }
}

/// Collects errors with their lines while resolving.
pub(super) struct Errors<'a> {
    pub(super) file: &'a Path,
    pub(super) map: &'a SourceMap,
    pub(super) list: Vec<ScenarioError>,
}

impl<'a> Errors<'a> {
    pub(super) fn new(file: &'a Path, map: &'a SourceMap) -> Errors<'a> {
        Errors {
            file,
            map,
            list: Vec::new(),
        }
    }

    /// The problem at `key`, with its line, without collecting it.
    pub(super) fn at(
        &self,
        key: &KeyPath,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> ScenarioError {
        ScenarioError {
            file: self.file.to_path_buf(),
            line: self.map.line_of(key),
            key: key.to_string(),
            message: message.into(),
            hint: hint.into(),
        }
    }

    pub(super) fn push(
        &mut self,
        key: &KeyPath,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        let problem = self.at(key, message, hint);
        self.list.push(problem);
    }
}

/// A problem of the file's keys or types as the user reads it: file, line, key, what is wrong and
/// what to do.
pub(super) fn key_problem(p: &Problem, text: &str, map: &SourceMap, file: &Path) -> ScenarioError {
    let line = p
        .key
        .as_ref()
        .and_then(|k| map.line_of(k))
        .or_else(|| p.offset.map(|o| map.line_of_offset(o)));
    let key = p.key.as_ref().map(|k| k.to_string()).unwrap_or_default();
    let hint = if let Some(u) = &p.unknown {
        unknown_key_hint(u, p.key.as_ref())
    } else if let Some(dotted) = unquoted_dotted_dim(text, line, &key, &p.message) {
        quote_dotted_dim_hint(&dotted)
    } else if key.is_empty() {
        "see docs/reference/scenario.md for the keys and their types".into()
    } else {
        format!("see `{key}` in docs/reference/scenario.md for its type")
    };
    ScenarioError {
        file: file.to_path_buf(),
        line,
        key,
        message: p.message.clone(),
        hint,
    }
}

/// The fix for an unknown key: the nearest known key of its table when one is close, and every
/// key the table takes.
fn unknown_key_hint(u: &UnknownKey, key: Option<&KeyPath>) -> String {
    let table = match key.map(|k| &k.0[..k.0.len().saturating_sub(1)]) {
        Some(parent) if !parent.is_empty() => {
            format!("the keys of `{}` are", KeyPath(parent.to_vec()))
        }
        _ => "the top-level keys are".to_string(),
    };
    let known = if u.known.is_empty() {
        format!("{table} none")
    } else {
        format!("{table}: {}", u.known.join(", "))
    };
    match &u.nearest {
        Some(n) => format!("rename it `{n}`; {known}"),
        None => format!("remove it or correct its name; {known} (see docs/reference/scenario.md)"),
    }
}

/// The fix for a dotted dim name written unquoted (see [`unquoted_dotted_dim`]).
fn quote_dotted_dim_hint(dotted: &str) -> String {
    let example = format!("`dims = {{ \"{dotted}\" = 1 }}`");
    format!(
        "a dim name with dots must be quoted, or TOML reads the dots as nested tables: {example}"
    )
}

/// The dotted dim name written unquoted in `dims` (`p2o.DynamicDimension.0 = 1`), which TOML read
/// as a table `p2o` and serde then refused as "invalid type: map".
fn unquoted_dotted_dim(
    text: &str,
    line: Option<usize>,
    key: &str,
    message: &str,
) -> Option<String> {
    let (_, first) = key.split_once(".dims.")?;
    if !message.starts_with("invalid type: map") {
        return None;
    }
    let line = text.lines().nth(line?.checked_sub(1)?)?;
    let at = line.find(&format!("{first}."))?;
    let name: String = line[at..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '=' && *c != ',' && *c != '}')
        .collect();
    Some(name)
}
