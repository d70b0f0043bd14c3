//! Reading a scenario file: bytes to text, text to the raw TOML types with the file's source map,
//! and then the resolver; every problem found on the way comes back together, in file order.
//!
//! This is the scenario's front door ([`load`], [`load_bytes`]). The reader of the TOML itself is
//! `parse.rs`, the resolver `resolve.rs`; what is here is the order they run in and the rule that
//! joins their problems: a part of the file with a key problem is not checked again.

use std::path::Path;

use sha2::Digest;

use super::Scenario;
use super::error::{Errors, ScenarioError, ScenarioErrors, key_problem};
use super::parse;
use super::resolve::resolve;
use super::source::SourceMap;

/// Reads, parses and resolves a scenario file.
pub fn load(file: &Path) -> Result<Scenario, ScenarioErrors> {
    let bytes = std::fs::read(file).map_err(|e| {
        ScenarioErrors::about_file(
            file,
            format!("cannot read the scenario file: {e}"),
            "check the path given to --scenario",
        )
    })?;
    load_bytes(&bytes, file)
}

/// Parses and resolves scenario bytes as if read from `file` (paths resolve against its folder).
pub fn load_bytes(bytes: &[u8], file: &Path) -> Result<Scenario, ScenarioErrors> {
    let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
        ScenarioErrors::about_file(
            file,
            "the file is not UTF-8 text".into(),
            "save it as UTF-8 TOML",
        )
    })?;
    let map = SourceMap::new(&text);
    let parsed = parse::parse(&text, &map);
    let mut list: Vec<ScenarioError> = parsed
        .problems
        .iter()
        .map(|p| key_problem(p, &text, &map, file))
        .collect();
    let scopes = parsed.scopes();
    let scenario = parsed.raw.and_then(|raw| {
        let hash = hex(&sha2::Sha256::digest(bytes));
        let mut errors = Errors::new(file, &map);
        let scenario = resolve(raw, file, hash, &mut errors);
        // What is left of a part with a key problem is not checked again: a removed key would
        // come back as a derived problem.
        list.extend(
            errors
                .list
                .into_iter()
                .filter(|e| !parse::in_scopes(&e.key, &scopes)),
        );
        scenario
    });
    match scenario {
        Some(s) if list.is_empty() => Ok(s),
        _ => {
            // In file order; problems without a line (about the whole file) last.
            list.sort_by_key(|e| e.line.unwrap_or(usize::MAX));
            Err(ScenarioErrors(list))
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
