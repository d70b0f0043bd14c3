//! The layout stays readable: no circles among the modules, every module documents why it exists,
//! and the crate's Layout section names every top-level module (and nothing that is gone). And no
//! error type says its cause twice.
//!
//! These read the source as text. A `crate::x` path (or `crate::{x, ...}`) in module `m` is an
//! edge `m -> x`; a circle means two modules each need the other, so neither can be read, tested
//! or changed alone.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/harness");

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source without `//` comments (doc comments name other modules freely) and without its unit
/// tests (a test may use a neighbour to check a round trip).
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first path segment after each `crate::`, including every item of a `crate::{a, b::c}` group.
fn crate_refs(src: &str) -> BTreeSet<String> {
    let mut refs = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (i, _) in src.match_indices("crate::") {
        let rest = &src[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let body = &group[..group.find('}').unwrap_or(group.len())];
            refs.extend(body.split(',').map(ident).filter(|s| !s.is_empty()));
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                refs.insert(name);
            }
        }
    }
    refs
}

/// Every top-level module (`harness/x.rs` or `harness/x/`) and the others it refers to.
fn module_graph() -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let mut files = Vec::new();
    rust_files(Path::new(ROOT), &mut files);
    let mut graph: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(ROOT).unwrap().to_string_lossy().into_owned();
        if rel == "lib.rs" || rel == "main.rs" || rel.starts_with("python") {
            continue;
        }
        let top = rel
            .split('/')
            .next()
            .unwrap()
            .trim_end_matches(".rs")
            .to_string();
        let edges = graph.entry(top.clone()).or_default();
        for r in crate_refs(&code(&f)) {
            if r != top && r != "ExitCode" {
                edges.entry(r).or_default().insert(rel.clone());
            }
        }
    }
    graph
}

/// A circle through `start`, as `a -> b -> ... -> start`, if there is one.
fn circle_through(
    graph: &BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    start: &str,
) -> Option<Vec<String>> {
    fn walk(
        graph: &BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
        at: &str,
        start: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in graph.get(at).into_iter().flat_map(|e| e.keys()) {
            if next == start {
                path.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(graph, next, start, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_string()];
    walk(graph, start, start, &mut path, &mut BTreeSet::new()).then_some(path)
}

#[test]
fn no_two_modules_need_each_other() {
    let graph = module_graph();
    let mut circles = Vec::new();
    for m in graph.keys() {
        if let Some(path) = circle_through(&graph, m) {
            let why: Vec<String> = path
                .windows(2)
                .map(|w| format!("{} -> {} (in {:?})", w[0], w[1], graph[&w[0]][&w[1]]))
                .collect();
            circles.push(why.join("; "));
        }
    }
    assert!(circles.is_empty(), "circles:\n{}", circles.join("\n"));
}

#[test]
fn files_of_one_folder_do_not_need_each_other_both_ways() {
    // `report/html.rs` using `report/summary.rs` and the reverse would be such a pair; a folder's
    // `mod.rs` and its files may refer to each other (it declares them).
    let mut files = Vec::new();
    rust_files(Path::new(ROOT), &mut files);
    let mut uses: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let Some(dir) = f.parent().filter(|d| *d != Path::new(ROOT)) else {
            continue;
        };
        if f.file_name().unwrap() == "mod.rs" {
            continue;
        }
        let folder = dir.file_name().unwrap().to_string_lossy().into_owned();
        let src = code(f);
        let siblings: BTreeSet<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "rs") && p != f)
            .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
            .filter(|s| s != "mod")
            .filter(|s| {
                src.contains(&format!("super::{s}"))
                    || src.contains(&format!("{folder}::{s}"))
                    || src.contains(&format!("super::{{{s}"))
            })
            .collect();
        uses.insert(f.clone(), siblings);
    }
    let mut pairs = Vec::new();
    for (f, used) in &uses {
        for s in used {
            let other = f.with_file_name(format!("{s}.rs"));
            let me = f.file_stem().unwrap().to_string_lossy().into_owned();
            if uses.get(&other).is_some_and(|u| u.contains(&me)) && *f < other {
                pairs.push(format!("{} <-> {}", f.display(), other.display()));
            }
        }
    }
    assert!(pairs.is_empty(), "files that need each other: {pairs:?}");
}

#[test]
fn every_module_says_why_it_exists() {
    let mut files = Vec::new();
    rust_files(Path::new(ROOT), &mut files);
    let undocumented: Vec<String> = files
        .iter()
        .filter(|f| {
            !std::fs::read_to_string(f)
                .unwrap()
                .trim_start()
                .starts_with("//!")
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        undocumented.is_empty(),
        "files without a `//!` header: {undocumented:?}"
    );
}

#[test]
fn the_layout_section_names_every_module_and_only_those() {
    let lib = std::fs::read_to_string(Path::new(ROOT).join("lib.rs")).unwrap();
    let declared: BTreeSet<String> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';').to_string())
        .collect();
    let listed: BTreeSet<String> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("//! - [`"))
        .map(|l| l[..l.find('`').unwrap()].to_string())
        .collect();
    assert_eq!(
        declared, listed,
        "lib.rs's `//! # Layout` list and its `pub mod`s differ"
    );
}

/// The `thiserror` variants whose message names a cause that the variant also returns as
/// `source()` (a field named `source`, or one marked `#[from]` or `#[source]`): printed with
/// `{:#}`, as `main` prints every error, the cause would appear twice. Each entry is
/// `file: message`.
fn causes_said_twice(file: &str, src: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut message: Option<String> = None;
    let mut open: Option<String> = None;
    for line in src.lines() {
        let t = line.trim();
        if let Some(text) = open.as_mut() {
            text.push_str(t);
            if t.ends_with(")]") {
                message = open.take();
            }
            continue;
        }
        if t.starts_with("#[error(") {
            if t.ends_with(")]") {
                message = Some(t.to_string());
            } else {
                open = Some(t.to_string());
            }
            continue;
        }
        let Some(m) = &message else { continue };
        let marked = t.contains("#[from]") || t.contains("#[source]");
        let said = (t.starts_with("source:") && m.contains("{source}"))
            || (marked && (m.contains("{0}") || m.contains("{source}")));
        if said {
            found.push(format!("{file}: {m}"));
        }
        if t.ends_with("},") || t.ends_with("),") || t.ends_with(',') && !t.contains(':') {
            message = None;
        }
    }
    found
}

/// Regression: `bench inspect missing.onnx` printed "cannot read missing.onnx: No such file or
/// directory (os error 2): No such file or directory (os error 2)".
#[test]
fn no_error_prints_its_cause_twice() {
    let mut files = Vec::new();
    rust_files(Path::new(ROOT), &mut files);
    let twice: Vec<String> = files
        .iter()
        .flat_map(|f| causes_said_twice(&f.display().to_string(), &code(f)))
        .collect();
    assert!(
        twice.is_empty(),
        "these errors name their cause and return it as source() too; name the field `err` (or \
         drop #[from]/#[source] and write a From impl): {twice:#?}"
    );
    let bad = "#[error(\"cannot read {path}: {source}\")]\nIo {\n    path: String,\n    source: io::Error,\n},\n\
               #[error(\"connection error: {0}\")]\nIo(#[from] io::Error),\n\
               #[error(\"fine: {err}\")]\nOk {\n    err: io::Error,\n},\n";
    assert_eq!(causes_said_twice("x.rs", bad).len(), 2);
}

#[test]
fn the_circle_finder_finds_a_circle() {
    let mut graph: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    let edge = |g: &mut BTreeMap<String, BTreeMap<String, BTreeSet<String>>>, a: &str, b: &str| {
        g.entry(a.into())
            .or_default()
            .entry(b.into())
            .or_default()
            .insert("x.rs".into());
    };
    edge(&mut graph, "a", "b");
    edge(&mut graph, "b", "c");
    assert_eq!(circle_through(&graph, "a"), None);
    edge(&mut graph, "c", "a");
    assert_eq!(
        circle_through(&graph, "a"),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(
        crate_refs("use crate::{a, b::c};\nlet x = crate::d::e();"),
        ["a", "b", "d"].into_iter().map(String::from).collect()
    );
}
