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

/// The most lines a file under `harness/` may have before its `#[cfg(test)]` module (issue 22).
const FILE_LINES: usize = 900;

/// The most lines a function may span, from its `fn` line to its closing brace (issue 22).
const FN_LINES: usize = 150;

/// `harness/`-relative paths of the files that are test modules themselves: a `NAME.rs` (or
/// `NAME/mod.rs`) that its parent declares as `#[cfg(test)] mod NAME;`, such as
/// `scenario/tests.rs`.
fn test_module_files(files: &[PathBuf]) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(f).unwrap();
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        // Where the modules this file declares live: beside it for `lib.rs` and `mod.rs`, in the
        // folder of its name otherwise.
        let stem = f.file_stem().unwrap().to_string_lossy();
        let dir = match stem.as_ref() {
            "lib" | "mod" | "main" => f.parent().unwrap().to_path_buf(),
            _ => f.with_extension(""),
        };
        for (i, l) in lines.iter().enumerate() {
            let Some(rest) = l.strip_prefix("#[cfg(test)]") else {
                continue;
            };
            let decl = if rest.trim().is_empty() {
                lines.get(i + 1).copied().unwrap_or("")
            } else {
                rest.trim()
            };
            let Some(name) = decl.strip_prefix("mod ").and_then(|d| d.strip_suffix(';')) else {
                continue;
            };
            out.insert(dir.join(format!("{name}.rs")));
            out.insert(dir.join(name).join("mod.rs"));
        }
    }
    out
}

/// The lines of `text` before its `#[cfg(test)]` module (all of them without one).
fn lines_before_tests(text: &str) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    lines
        .iter()
        .enumerate()
        .position(|(i, l)| {
            l.starts_with("#[cfg(test)]")
                && (l.contains("mod ")
                    || lines
                        .get(i + 1)
                        .is_some_and(|next| next.trim_start().starts_with("mod ")))
        })
        .unwrap_or(lines.len())
}

/// `src` with the contents of comments, string literals and char literals blanked out (newlines
/// kept), so that counting braces counts code only. Lifetimes (`'a`) stay as they are.
fn blank_literals(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    // Keeps newlines (so line numbers hold) and blanks everything else in `c[from..to]`.
    let blank = |out: &mut String, from: usize, to: usize| {
        out.extend(
            c[from..to]
                .iter()
                .map(|&x| if x == '\n' { '\n' } else { ' ' }),
        );
    };
    while i < c.len() {
        let at = |k: usize| c.get(i + k).copied().unwrap_or('\0');
        let end = if at(0) == '/' && at(1) == '/' {
            // A line comment, to the end of the line.
            (i..c.len()).find(|&k| c[k] == '\n').unwrap_or(c.len())
        } else if at(0) == '/' && at(1) == '*' {
            // A block comment; they nest.
            let (mut depth, mut k) = (0, i);
            while k < c.len() {
                if c[k] == '/' && c.get(k + 1) == Some(&'*') {
                    depth += 1;
                    k += 2;
                } else if c[k] == '*' && c.get(k + 1) == Some(&'/') {
                    depth -= 1;
                    k += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    k += 1;
                }
            }
            k
        } else if let Some(end) = raw_string_end(&c, i) {
            end
        } else if at(0) == '"' || (at(0) == 'b' && at(1) == '"') {
            // A string: to the next quote that no backslash escapes.
            let mut k = i + if at(0) == 'b' { 2 } else { 1 };
            while k < c.len() && c[k] != '"' {
                k += if c[k] == '\\' { 2 } else { 1 };
            }
            k + 1
        } else if at(0) == '\'' && (at(2) == '\'' || (at(1) == '\\' && at(3) != '\0')) {
            // A char literal (`'x'`, `'\n'`, `'\u{7f}'`), not a lifetime.
            let mut k = i + 1;
            while k < c.len() && c[k] != '\'' {
                k += if c[k] == '\\' { 2 } else { 1 };
            }
            k + 1
        } else {
            out.push(c[i]);
            i += 1;
            continue;
        };
        let end = end.min(c.len());
        blank(&mut out, i, end);
        i = end;
    }
    out
}

/// Where the raw string starting at `c[i]` (`r"…"`, `r#"…"#`, `br#"…"#`) ends, if one does.
fn raw_string_end(c: &[char], i: usize) -> Option<usize> {
    let prefix = if c.get(i) == Some(&'b') { 1 } else { 0 };
    if c.get(i + prefix) != Some(&'r') || (i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_'))
    {
        return None;
    }
    let hashes = c[i + prefix + 1..]
        .iter()
        .take_while(|&&x| x == '#')
        .count();
    let open = i + prefix + 1 + hashes;
    if c.get(open) != Some(&'"') {
        return None;
    }
    let close: Vec<char> = std::iter::once('"')
        .chain(std::iter::repeat_n('#', hashes))
        .collect();
    (open + 1..c.len())
        .find(|&k| c[k..].starts_with(&close))
        .map(|k| k + close.len())
}

/// Every function with a body in `src`, as (name, first line from 1, lines from its `fn` to its
/// closing brace). Nested functions are listed too, and count within their outer function.
fn function_lengths(src: &str) -> Vec<(String, usize, usize)> {
    let code: Vec<char> = blank_literals(src).chars().collect();
    let line_of = |k: usize| code[..k].iter().filter(|&&x| x == '\n').count() + 1;
    let word = |k: usize| k == 0 || !(code[k - 1].is_alphanumeric() || code[k - 1] == '_');
    let mut out = Vec::new();
    for k in 0..code.len() {
        if !(code[k..].starts_with(&['f', 'n', ' ']) && word(k)) {
            continue;
        }
        let name: String = code[k + 3..]
            .iter()
            .take_while(|x| x.is_alphanumeric() || **x == '_')
            .collect();
        if name.is_empty() {
            continue;
        }
        // The body opens at the first `{` after the signature; a `;` first means there is none.
        let Some(open) = (k..code.len()).find(|&j| code[j] == '{' || code[j] == ';') else {
            continue;
        };
        if code[open] == ';' {
            continue;
        }
        let mut depth = 0;
        let close = (open..code.len()).find(|&j| {
            match code[j] {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            depth == 0
        });
        if let Some(close) = close {
            out.push((name, line_of(k), line_of(close) - line_of(k) + 1));
        }
    }
    out
}

/// The files under `harness/` that count, each with its text before its `#[cfg(test)]` module and
/// the number of lines of that text: a file that is a test module is left out.
fn sources_without_tests() -> Vec<(String, String, usize)> {
    let mut files = Vec::new();
    rust_files(Path::new(ROOT), &mut files);
    let tests = test_module_files(&files);
    files.sort();
    files
        .into_iter()
        .filter(|f| !tests.contains(f))
        .map(|f| {
            let text = std::fs::read_to_string(&f).unwrap();
            let n = lines_before_tests(&text);
            let kept: Vec<&str> = text.lines().take(n).collect();
            let rel = f.strip_prefix(ROOT).unwrap().display().to_string();
            (format!("harness/{rel}"), kept.join("\n"), n)
        })
        .collect()
}

#[test]
fn no_file_has_more_than_900_lines_before_its_tests() {
    let long: Vec<String> = sources_without_tests()
        .into_iter()
        .filter(|(_, _, n)| *n > FILE_LINES)
        .map(|(file, _, n)| format!("{file}: {n} lines"))
        .collect();
    assert!(
        long.is_empty(),
        "{} file(s) over {FILE_LINES} lines before their #[cfg(test)] module; split each by stage:\n{}",
        long.len(),
        long.join("\n")
    );
}

#[test]
fn no_function_is_longer_than_150_lines() {
    let mut long = Vec::new();
    for (file, code, _) in sources_without_tests() {
        for (name, line, n) in function_lengths(&code) {
            if n > FN_LINES {
                long.push(format!("{file}:{line}: fn {name}: {n} lines"));
            }
        }
    }
    assert!(
        long.is_empty(),
        "{} function(s) over {FN_LINES} lines; split each into stages a reader can name:\n{}",
        long.len(),
        long.join("\n")
    );
}

#[test]
fn the_size_checks_count_code_not_literals_and_exempt_tests() {
    let src = "fn short() {\n    let s = \"}}}\";\n    let c = '}';\n    // }\n    /* } /* } */ */\n    \
               let r = r#\"}\"#;\n}\nfn lifetimes<'a>(x: &'a str) -> &'a str {\n    x\n}\n\
               trait T {\n    fn declared(&self);\n}\nfn outer() {\n    fn inner() {}\n    inner()\n}\n";
    let lengths = function_lengths(src);
    let named: Vec<(&str, usize, usize)> = lengths
        .iter()
        .map(|(n, l, len)| (n.as_str(), *l, *len))
        .collect();
    assert_eq!(
        named,
        [
            ("short", 1, 7),
            ("lifetimes", 8, 3),
            ("outer", 14, 4),
            ("inner", 15, 1)
        ]
    );
    let file = "//! x\nfn a() {}\n\n#[cfg(test)]\nmod tests {\n    fn b() {}\n}\n";
    assert_eq!(lines_before_tests(file), 3);
    assert_eq!(lines_before_tests("fn a() {}\n"), 1);
    let dir = tempfile::tempdir().unwrap();
    let (lib, inner) = (dir.path().join("lib.rs"), dir.path().join("x/mod.rs"));
    std::fs::create_dir_all(inner.parent().unwrap()).unwrap();
    std::fs::write(&lib, "pub mod x;\n#[cfg(test)]\nmod tests;\n").unwrap();
    std::fs::write(&inner, "#[cfg(test)] mod checks;\n").unwrap();
    let exempt = test_module_files(&[lib, inner]);
    assert!(exempt.contains(&dir.path().join("tests.rs")), "{exempt:?}");
    assert!(
        exempt.contains(&dir.path().join("x/checks.rs")),
        "{exempt:?}"
    );
    assert!(!exempt.contains(&dir.path().join("x.rs")), "{exempt:?}");
}

/// `scripts/test.sh` runs the timing tests apart by their path (`::alone::`): a test that takes
/// `common::exclusive()` outside a `mod alone` would run beside the others' sweeps there, and a
/// `mod alone` without one would sit idle in the second phase.
#[test]
fn the_tests_that_take_turns_alone_are_in_mod_alone_and_only_they() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name == "common.rs" || name == "main.rs" || name == "architecture.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let (outside, inside) = match text.split_once("\nmod alone {") {
            Some((o, i)) => (o, Some(i)),
            None => (text.as_str(), None),
        };
        assert!(
            !outside.contains("common::exclusive();"),
            "{name}: a test takes common::exclusive() outside `mod alone`; move it into the file's `mod alone`"
        );
        if let Some(inside) = inside {
            assert!(
                inside.contains("common::exclusive();"),
                "{name}: `mod alone` holds no test that takes common::exclusive()"
            );
            assert!(
                !inside.contains("\nmod "),
                "{name}: `mod alone` must be the file's last module"
            );
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} files with `mod alone`");
}
