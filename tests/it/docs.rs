//! The documentation checked against the binary: `README.md` and every markdown file under `docs/`.
//!
//! - **TOML examples.** Every ` ```toml ` block is a scenario that `bench validate` accepts. The
//!   info string can say more (`docs/README.md`, "Writing docs", is the user-facing description):
//!   - ` ```toml id=NAME `: a whole scenario that fragments can extend;
//!   - ` ```toml fragment=NAME `: merged into block `NAME` (see [`merge`]), then validated;
//!   - ` ```toml invalid `: an example of a mistake; `bench validate` must reject it (exit 2).
//!
//!   Blocks are written as files in a `scenarios/` folder of a temporary copy of the repository
//!   (its other top-level entries are symlinks), so paths in them work as they do in the bundled
//!   scenarios: `../models/onnx/mlp.onnx`.
//! - **Columns.** The table in `docs/reference/columns.md` names every column of `results.csv` and
//!   nothing else.
//! - **Command line.** `docs/reference/cli.md` holds the `--help` of `bench` and of every visible
//!   subcommand, each in the ` ```text ` block after a `<!-- generated: bench ... -->` line. With
//!   `BENCH_BLESS=1` the test rewrites those blocks instead of failing: a new subcommand gets a new
//!   section at the end of the file, and a removed one loses its block.
//! - **Links.** Every relative link points to an existing file, and every `#anchor` to a heading of
//!   the target (GitHub's anchor rules). Backquoted repository paths (`harness/load/mod.rs`) exist.
//!
//! Every test lists all its problems together in one failure.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bench() -> Command {
    let mut cmd = Command::cargo_bin("bench").expect("the bench binary is built");
    cmd.current_dir(root());
    cmd
}

/// `README.md` and every `.md` file under `docs/`, relative to the repository root, sorted.
fn doc_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, rel: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).expect("docs/ exists") {
            let e = e.expect("a directory entry");
            let rel = rel.join(e.file_name());
            if e.file_type().expect("a file type").is_dir() {
                walk(&e.path(), &rel, out);
            } else if rel.extension().is_some_and(|x| x == "md") {
                out.push(rel);
            }
        }
    }
    let mut out = vec![PathBuf::from("README.md")];
    walk(&root().join("docs"), Path::new("docs"), &mut out);
    out.sort();
    out
}

fn read(rel: &Path) -> String {
    std::fs::read_to_string(root().join(rel))
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", rel.display()))
}

/// A fenced code block: the 1-based line of its opening fence, its info string and its body
/// (with the fence's indentation removed).
struct Fence {
    line: usize,
    info: String,
    body: String,
}

/// The fenced blocks of a markdown text, and for each line whether it is inside one (fences
/// included).
fn fences(text: &str) -> (Vec<Fence>, Vec<bool>) {
    let mut blocks = Vec::new();
    let mut inside = Vec::new();
    let mut open: Option<(usize, String, usize, String)> = None; // line, info, indent, body
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        match &mut open {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    let indent = line.len() - trimmed.len();
                    open = Some((i + 1, info.trim().to_string(), indent, String::new()));
                }
                inside.push(open.is_some());
            }
            Some((start, info, indent, body)) => {
                inside.push(true);
                if trimmed.trim_end() == "```" {
                    blocks.push(Fence {
                        line: *start,
                        info: std::mem::take(info),
                        body: std::mem::take(body),
                    });
                    open = None;
                } else {
                    let cut = line
                        .char_indices()
                        .take_while(|&(j, c)| j < *indent && c == ' ')
                        .count();
                    body.push_str(&line[cut..]);
                    body.push('\n');
                }
            }
        }
    }
    (blocks, inside)
}

/// Removes inline code spans (CommonMark: a run of n backticks closes at the next run of exactly
/// n), returning the text without them and the spans' contents.
fn split_code_spans(line: &str) -> (String, Vec<String>) {
    let chars: Vec<char> = line.chars().collect();
    let mut prose = String::new();
    let mut spans = Vec::new();
    let run_at = |i: usize| chars[i..].iter().take_while(|&&c| c == '`').count();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '`' {
            prose.push(chars[i]);
            i += 1;
            continue;
        }
        let n = run_at(i);
        let mut j = i + n;
        let mut close = None;
        while j < chars.len() {
            if chars[j] == '`' {
                let m = run_at(j);
                if m == n {
                    close = Some(j);
                    break;
                }
                j += m;
            } else {
                j += 1;
            }
        }
        match close {
            Some(j) => {
                spans.push(
                    chars[i + n..j]
                        .iter()
                        .collect::<String>()
                        .trim()
                        .to_string(),
                );
                i = j + n;
            }
            None => {
                prose.extend(&chars[i..i + n]);
                i += n;
            }
        }
    }
    (prose, spans)
}

// ---------------------------------------------------------------------------------------------
// TOML examples

/// What a ` ```toml ` block's info string asks for.
#[derive(Default)]
struct TomlKind {
    id: Option<String>,
    fragment: Option<String>,
    invalid: bool,
}

fn toml_kind(info: &str) -> Result<TomlKind, String> {
    let mut kind = TomlKind::default();
    for word in info.split_whitespace().skip(1) {
        match word.split_once('=') {
            Some(("id", v)) => kind.id = Some(v.to_string()),
            Some(("fragment", v)) => kind.fragment = Some(v.to_string()),
            None if word == "invalid" => kind.invalid = true,
            _ => {
                return Err(format!(
                    "unknown info `{word}`: use `id=NAME`, `fragment=NAME` or `invalid`"
                ));
            }
        }
    }
    if kind.fragment.is_some() && kind.id.is_some() {
        return Err("a block is either a base (`id=`) or a fragment, not both".into());
    }
    Ok(kind)
}

/// Merges a fragment into its base: tables key by key; a `[[model]]` whose `name` matches one of
/// the base's models is merged into it, the others are appended; any other value replaces the
/// base's.
fn merge(base: &mut toml::Table, fragment: toml::Table) {
    for (k, v) in fragment {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(f)) => merge(b, f),
            (Some(toml::Value::Array(b)), toml::Value::Array(f)) if k == "model" => {
                for m in f {
                    let name = m
                        .get("name")
                        .and_then(toml::Value::as_str)
                        .map(String::from);
                    let same = b.iter_mut().find(|x| {
                        name.is_some()
                            && x.get("name").and_then(toml::Value::as_str) == name.as_deref()
                    });
                    match (same, m) {
                        (Some(toml::Value::Table(bt)), toml::Value::Table(mt)) => merge(bt, mt),
                        (_, m) => b.push(m),
                    }
                }
            }
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// A temporary copy of the repository for scenario files: a real `scenarios/` folder (holding
/// links to the bundled scenarios) beside links to every other top-level entry.
fn sandbox() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary folder");
    for e in std::fs::read_dir(root()).expect("the repository root") {
        let e = e.expect("a directory entry");
        let name = e.file_name();
        if name == "scenarios" || name == "target" || name == ".git" {
            continue;
        }
        std::os::unix::fs::symlink(e.path(), dir.path().join(&name)).expect("a symlink");
    }
    let scen = dir.path().join("scenarios");
    std::fs::create_dir(&scen).expect("scenarios/");
    for e in std::fs::read_dir(root().join("scenarios")).expect("scenarios/ exists") {
        let e = e.expect("a directory entry");
        std::os::unix::fs::symlink(e.path(), scen.join(e.file_name())).expect("a symlink");
    }
    dir
}

#[test]
fn every_toml_example_validates() {
    struct Example {
        at: String,
        kind: TomlKind,
        text: String,
    }
    let mut failures = Vec::new();
    let mut examples = Vec::new();
    for file in doc_files() {
        let (blocks, _) = fences(&read(&file));
        for b in blocks {
            if b.info.split_whitespace().next() != Some("toml") {
                continue;
            }
            let at = format!("{}:{}", file.display(), b.line);
            match toml_kind(&b.info) {
                Ok(kind) => examples.push(Example {
                    at,
                    kind,
                    text: b.body,
                }),
                Err(e) => failures.push(format!("{at}: {e}")),
            }
        }
    }

    let mut bases: BTreeMap<String, &Example> = BTreeMap::new();
    for ex in &examples {
        if let Some(id) = &ex.kind.id
            && let Some(first) = bases.insert(id.clone(), ex)
        {
            failures.push(format!("{}: id `{id}` is also used at {}", ex.at, first.at));
        }
    }

    let dir = sandbox();
    for (n, ex) in examples.iter().enumerate() {
        let text = match &ex.kind.fragment {
            None => ex.text.clone(),
            Some(base) => {
                let Some(b) = bases.get(base) else {
                    failures.push(format!(
                        "{}: fragment of `{base}`, but no block has `id={base}`",
                        ex.at
                    ));
                    continue;
                };
                let parsed = |t: &str, at: &str| {
                    t.parse::<toml::Table>()
                        .map_err(|e| format!("{at}: not TOML: {e}"))
                };
                match (parsed(&b.text, &b.at), parsed(&ex.text, &ex.at)) {
                    (Ok(mut base), Ok(fragment)) => {
                        merge(&mut base, fragment);
                        toml::to_string(&base).expect("a table serialises")
                    }
                    (Err(e), _) | (_, Err(e)) => {
                        failures.push(e);
                        continue;
                    }
                }
            }
        };
        let file = dir
            .path()
            .join("scenarios")
            .join(format!("docs-example-{n}.toml"));
        std::fs::write(&file, &text).expect("write the example");
        let out = bench()
            .arg("validate")
            .arg("--scenario")
            .arg(&file)
            .output()
            .expect("bench runs");
        let code = out.status.code();
        let wanted = if ex.kind.invalid { Some(2) } else { Some(0) };
        if code != wanted {
            failures.push(format!(
                "{}: `bench validate` exited {code:?}, expected {wanted:?}{}\n--- scenario\n{text}--- stderr\n{}",
                ex.at,
                if ex.kind.invalid {
                    " (the block is marked `invalid`)"
                } else {
                    ""
                },
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(
        !examples.is_empty(),
        "no ```toml block found: is the parser broken?"
    );
    assert!(
        failures.is_empty(),
        "{} of {} TOML examples failed:\n\n{}",
        failures.len(),
        examples.len(),
        failures.join("\n\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Columns

/// The column names in the first cell of each row of the table: `| `a`, `b` | unit | meaning |`.
fn documented_columns(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|l| l.split(" |").next())
        .flat_map(|cell| split_code_spans(cell).1)
        .collect()
}

#[test]
fn the_columns_table_lists_every_csv_column_and_nothing_else() {
    let rel = Path::new("docs/reference/columns.md");
    let documented = documented_columns(&read(rel));
    let header: BTreeSet<String> = bench::report::csv::header().into_iter().collect();
    let missing: Vec<_> = header.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&header).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{}: columns missing from the table: {missing:?}; named but not columns: {extra:?}",
        rel.display()
    );
}

// ---------------------------------------------------------------------------------------------
// Command line

const CLI_MD: &str = "docs/reference/cli.md";
const MARK: &str = "<!-- generated: ";

/// Trailing spaces off every line, and trailing blank lines off the end: what a block can hold.
fn tidy(text: &str) -> String {
    text.lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
        .trim_end()
        .to_string()
}

fn stdout_of(args: &[&str]) -> String {
    let out = bench().args(args).output().expect("bench runs");
    assert!(
        out.status.success(),
        "bench {args:?} exited {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    tidy(&String::from_utf8(out.stdout).expect("help is UTF-8"))
}

/// The visible subcommands, from the `Commands:` section of `bench --help` (without `help`).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("    "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(String::from)
        .collect()
}

/// A generated block in cli.md: the command, the line range of its body (0-based, end exclusive).
struct Generated {
    command: String,
    body: std::ops::Range<usize>,
}

fn generated_blocks(lines: &[&str]) -> Result<Vec<Generated>, String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if let Some(rest) = lines[i].strip_prefix(MARK) {
            let command = rest
                .strip_suffix(" -->")
                .ok_or_else(|| format!("{CLI_MD}:{}: a marker ends with ` -->`", i + 1))?
                .to_string();
            if lines.get(i + 1) != Some(&"```text") {
                return Err(format!(
                    "{CLI_MD}:{}: the line after the marker must open a ```text block",
                    i + 2
                ));
            }
            let start = i + 2;
            let end = (start..lines.len())
                .find(|&j| lines[j] == "```")
                .ok_or_else(|| format!("{CLI_MD}:{}: the block is not closed", i + 2))?;
            out.push(Generated {
                command,
                body: start..end,
            });
            i = end;
        }
        i += 1;
    }
    Ok(out)
}

#[test]
fn the_cli_reference_holds_the_current_help() {
    let bless = std::env::var_os("BENCH_BLESS").is_some_and(|v| v == "1");
    let top = stdout_of(&["--help"]);
    let mut expected: Vec<(String, String)> = vec![("bench --help".into(), top.clone())];
    let subs = subcommands(&top);
    assert!(
        !subs.is_empty(),
        "no subcommand found in `bench --help`:\n{top}"
    );
    for s in &subs {
        expected.push((format!("bench help {s}"), stdout_of(&["help", s])));
    }

    let text = read(Path::new(CLI_MD));
    let lines: Vec<&str> = text.lines().collect();
    let found = generated_blocks(&lines).unwrap_or_else(|e| panic!("{e}"));

    let mut problems = Vec::new();
    let mut replace: BTreeMap<usize, (std::ops::Range<usize>, Option<String>)> = BTreeMap::new();
    for g in &found {
        let want = expected.iter().find(|(c, _)| *c == g.command);
        let have = tidy(&lines[g.body.clone()].join("\n"));
        match want {
            Some((_, w)) if have == *w => {}
            Some((c, w)) => {
                problems.push(format!(
                    "`{c}` differs from {CLI_MD}:{}\n--- documented\n{have}\n--- actual\n{w}",
                    g.body.start,
                ));
                replace.insert(g.body.start, (g.body.clone(), Some(w.clone())));
            }
            None => {
                problems.push(format!(
                    "{CLI_MD}:{}: `{}` is not a command of this build",
                    g.body.start - 1,
                    g.command
                ));
                // The marker, the fences and the body.
                replace.insert(g.body.start, (g.body.start - 2..g.body.end + 1, None));
            }
        }
    }
    let missing: Vec<&(String, String)> = expected
        .iter()
        .filter(|(c, _)| !found.iter().any(|g| g.command == *c))
        .collect();
    for (c, _) in &missing {
        problems.push(format!("{CLI_MD} has no `{MARK}{c} -->` block"));
    }

    if problems.is_empty() {
        return;
    }
    if !bless {
        panic!(
            "{} problems in {CLI_MD} (BENCH_BLESS=1 cargo test --test it docs:: rewrites it):\n\n{}",
            problems.len(),
            problems.join("\n\n")
        );
    }

    // Bless: rewrite from the end so earlier line numbers stay valid.
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    for (range, with) in replace.into_values().rev() {
        let new: Vec<String> =
            with.map_or_else(Vec::new, |w| w.lines().map(String::from).collect());
        out.splice(range, new);
    }
    for (c, w) in missing {
        let name = c
            .trim_start_matches("bench help ")
            .trim_start_matches("bench ");
        out.push(String::new());
        out.push(format!("## `bench {name}`"));
        out.push(String::new());
        out.push("TODO: what it is for, and an example.".into());
        out.push(String::new());
        out.push(format!("{MARK}{c} -->"));
        out.push("```text".into());
        out.extend(w.lines().map(String::from));
        out.push("```".into());
    }
    let mut new_text = out.join("\n");
    new_text.push('\n');
    std::fs::write(root().join(CLI_MD), new_text).expect("write cli.md");
    eprintln!("BENCH_BLESS=1: rewrote {CLI_MD}:\n{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Links

/// GitHub's anchor for a heading: lower case, spaces to `-`, punctuation other than `-` and `_`
/// dropped; a repeated anchor gets `-1`, `-2`, ...
fn anchors(text: &str) -> BTreeSet<String> {
    let (_, inside) = fences(text);
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    for (i, line) in text.lines().enumerate() {
        if inside[i] {
            continue;
        }
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if hashes == 0 || hashes > 6 || !line[hashes..].starts_with(' ') {
            continue;
        }
        let slug: String = line[hashes..]
            .trim()
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                '-' | '_' => Some(c),
                c if c.is_alphanumeric() => Some(c),
                _ => None,
            })
            .collect();
        let n = seen.entry(slug.clone()).or_insert(0);
        out.insert(if *n == 0 {
            slug.clone()
        } else {
            format!("{slug}-{n}")
        });
        *n += 1;
    }
    out
}

/// The targets of inline links `[text](target)` in a line of prose (code spans removed).
fn link_targets(prose: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = prose;
    while let Some(i) = rest.find("](") {
        let after = &rest[i + 2..];
        match after.find(')') {
            Some(j) => {
                out.push(after[..j].trim().to_string());
                rest = &after[j + 1..];
            }
            None => break,
        }
    }
    out
}

/// A backquoted path into the repository that should exist: `harness/...`, `scripts/...` and so
/// on, without spaces or placeholders.
fn repo_path(span: &str) -> Option<&str> {
    const DIRS: &[&str] = &[
        "harness/",
        "scripts/",
        "scenarios/",
        "tests/",
        "models/",
        "docs/",
    ];
    let placeholder = |s: &str| {
        s.contains(['<', '>', '*', '{', '$', '…', ' ']) || s.contains("NAME") || s.contains("...")
    };
    DIRS.iter()
        .any(|d| span.starts_with(d))
        .then_some(span)
        .filter(|s| !placeholder(s))
}

#[test]
fn relative_links_and_paths_resolve() {
    let mut problems = Vec::new();
    let mut cache: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
    let mut links = 0;
    for file in doc_files() {
        let text = read(&file);
        let (_, inside) = fences(&text);
        let dir = file.parent().unwrap_or(Path::new(""));
        for (i, line) in text.lines().enumerate() {
            if inside[i] {
                continue;
            }
            let at = format!("{}:{}", file.display(), i + 1);
            let (prose, spans) = split_code_spans(line);
            for span in spans {
                if let Some(p) = repo_path(&span)
                    && !root().join(p).exists()
                {
                    problems.push(format!("{at}: `{p}` does not exist"));
                }
            }
            for target in link_targets(&prose) {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                links += 1;
                let (path, anchor) = target.split_once('#').unwrap_or((&target, ""));
                let resolved = if path.is_empty() {
                    file.clone()
                } else {
                    normalize(&dir.join(path))
                };
                if !root().join(&resolved).exists() {
                    problems.push(format!(
                        "{at}: link `{target}`: {} does not exist",
                        resolved.display()
                    ));
                    continue;
                }
                if anchor.is_empty() {
                    continue;
                }
                if resolved.extension().is_none_or(|x| x != "md") {
                    problems.push(format!(
                        "{at}: link `{target}`: an anchor into a file that is not markdown"
                    ));
                    continue;
                }
                let heads = cache
                    .entry(resolved.clone())
                    .or_insert_with(|| anchors(&read(&resolved)));
                if !heads.contains(anchor) {
                    problems.push(format!(
                        "{at}: link `{target}`: {} has no heading `#{anchor}`",
                        resolved.display()
                    ));
                }
            }
        }
    }
    assert!(
        links > 20,
        "only {links} relative links found: is the parser broken?"
    );
    assert!(
        problems.is_empty(),
        "{} broken links or paths:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// `a/b/../c` -> `a/c`, without touching the file system; a path that leaves the repository stays
/// as it is (and then does not exist).
fn normalize(p: &Path) -> PathBuf {
    let mut out: Vec<&std::ffi::OsStr> = Vec::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                if out.pop().is_none() {
                    return p.to_path_buf();
                }
            }
            std::path::Component::CurDir => {}
            c => out.push(c.as_os_str()),
        }
    }
    out.iter().collect()
}

#[test]
fn the_parsers_agree_with_github() {
    assert_eq!(
        anchors(
            "# A `b` c\n## Precise open loops: on VMs\n```\n# not a heading\n```\n## A `b` c\n"
        ),
        ["a-b-c", "a-b-c-1", "precise-open-loops-on-vms"]
            .map(String::from)
            .into()
    );
    assert_eq!(
        split_code_spans("x ` ```toml ` y `a` z"),
        (
            "x  y  z".to_string(),
            vec!["```toml".to_string(), "a".to_string()]
        )
    );
    assert_eq!(
        link_targets("see [a](b.md#c) and [d](e/)"),
        ["b.md#c", "e/"]
    );
    assert_eq!(
        normalize(Path::new("docs/guides/../../README.md")),
        Path::new("README.md")
    );
}
