//! Reads the scenario text into the [`raw`](super::raw) types, finding every problem of its keys and
//! types in one pass, not only the first.
//!
//! serde stops at the first problem: with `deny_unknown_fields`, one misspelt key hid every other
//! problem of the file, and the user fixed them one run at a time. Here the text is parsed once
//! into a tree that keeps each key's and value's place in the text ([`toml::de::DeTable`]); then
//! the tree is deserialised again and again. Each time serde refuses a key (unknown, or a value of
//! the wrong type), the problem is kept with its place, the key is taken out of the tree, and the
//! next try goes on past it. What is left deserialises, so the rest of the file can still be
//! checked against the models ([`Parsed::scopes`] says which parts not to).
//!
//! An unknown key comes with the keys its table does take, and the nearest of them when one is
//! close ([`nearest`], by edit distance): `dim` gets "did you mean `dims`?".

use serde::Deserialize;
use toml::de::{DeTable, DeValue};

use super::raw::RawScenario;
use super::source::{KeyPath, Seg, SourceMap};

/// The most problems reported for one file: each one found costs a deserialisation of the tree.
const MAX_PROBLEMS: usize = 100;

/// One problem of the file's keys or types.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Problem {
    /// Where in the text serde saw it (for the line when `key` is not found).
    pub(crate) offset: Option<usize>,
    /// The key it is about, when known.
    pub(crate) key: Option<KeyPath>,
    /// serde's message, or ours for an unknown key.
    pub(crate) message: String,
    /// For an unknown key: what its table takes instead.
    pub(crate) unknown: Option<UnknownKey>,
}

/// An unknown key: its name, the keys its table takes, and the nearest of them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UnknownKey {
    pub(crate) name: String,
    pub(crate) known: Vec<String>,
    pub(crate) nearest: Option<String>,
}

/// What the text held: the raw scenario without its refused keys, and the problems.
#[derive(Debug)]
pub(crate) struct Parsed {
    /// `None` only when the text is not TOML at all (a syntax error), or the problems ran out of
    /// the limit.
    pub(crate) raw: Option<RawScenario>,
    pub(crate) problems: Vec<Problem>,
}

impl Parsed {
    /// The parts of the file (a top-level key, or one `[[model]]`) that had a problem: what is
    /// left of them is not checked further, so that a removed key does not come back as a second,
    /// derived problem ("dim is unknown", then "batch is unbound").
    pub(crate) fn scopes(&self) -> Vec<String> {
        let mut scopes: Vec<String> = self
            .problems
            .iter()
            .filter_map(|p| p.key.as_ref())
            .filter_map(|k| {
                let scope: Vec<Seg> = match k.0.as_slice() {
                    [Seg::Key(t), Seg::Index(i), ..] => {
                        vec![Seg::Key(t.clone()), Seg::Index(*i)]
                    }
                    [first, ..] => vec![first.clone()],
                    [] => return None,
                };
                Some(KeyPath(scope).to_string())
            })
            .collect();
        scopes.sort();
        scopes.dedup();
        scopes
    }
}

/// Whether key path `key` (as printed) lies inside one of `scopes`.
pub(crate) fn in_scopes(key: &str, scopes: &[String]) -> bool {
    scopes.iter().any(|s| {
        key.strip_prefix(s.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
    })
}

/// Parses `text`; `map` is the same text's source map (for key paths of serde's errors).
pub(crate) fn parse(text: &str, map: &SourceMap) -> Parsed {
    let mut tree = match DeTable::parse(text) {
        Ok(t) => t,
        Err(e) => {
            return Parsed {
                raw: None,
                problems: vec![Problem {
                    offset: e.span().map(|s| s.start),
                    key: None,
                    message: e.message().trim().to_string(),
                    unknown: None,
                }],
            };
        }
    };
    let mut problems: Vec<Problem> = Vec::new();
    let mut removed: Vec<KeyPath> = Vec::new();
    loop {
        let de = toml::de::Deserializer::from(tree.clone());
        let e = match RawScenario::deserialize(de) {
            Ok(raw) => {
                return Parsed {
                    raw: Some(raw),
                    problems,
                };
            }
            Err(e) => e,
        };
        let offset = e.span().map(|s| s.start);
        let message = e.message().trim().replace('\n', " ");
        let (problem, at) = match unknown_field(&message) {
            Some((name, known)) => {
                let key = offset.and_then(|o| key_named(tree.get_ref(), o, &name));
                let nearest = nearest(&name, &known).map(str::to_string);
                let mut message = match key {
                    Some(_) => "unknown key".to_string(),
                    None => format!("unknown key `{name}`"),
                };
                if let Some(n) = &nearest {
                    message.push_str(&format!("; did you mean `{n}`?"));
                }
                let problem = Problem {
                    offset,
                    key: key.clone(),
                    message,
                    unknown: Some(UnknownKey {
                        name,
                        known,
                        nearest,
                    }),
                };
                (Some(problem), key)
            }
            None => {
                let key = offset.and_then(|o| map.key_at(o));
                // A problem inside a key already taken out (a generator's `kind`, then the
                // generator it leaves without one) is the same problem: it is not said again.
                let derived = key
                    .as_ref()
                    .is_some_and(|k| removed.iter().any(|r| starts_with(r, k)));
                let problem = (!derived).then(|| Problem {
                    offset,
                    key: key.clone(),
                    message,
                    unknown: None,
                });
                (problem, key)
            }
        };
        problems.extend(problem);
        // Take the key out and try again; stop when it cannot be found (or was already taken).
        let Some(at) = at.and_then(|k| entry_of(&k)) else {
            break;
        };
        if removed.contains(&at) || !remove(tree.get_mut(), &at.0) || problems.len() >= MAX_PROBLEMS
        {
            break;
        }
        removed.push(at);
    }
    Parsed {
        raw: None,
        problems,
    }
}

/// `(name, known keys)` from serde's "unknown field `x`, expected one of `a`, `b`" (also "expected
/// `a` or `b`", "expected `a`" and "there are no fields").
fn unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (name, rest) = rest.split_once('`')?;
    let known = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    Some((name.to_string(), known))
}

/// Whether `path` is `prefix` or lies under it.
fn starts_with(path: &KeyPath, prefix: &KeyPath) -> bool {
    path.0.len() >= prefix.0.len() && path.0[..prefix.0.len()] == prefix.0[..]
}

/// The table entry a key path is in: the path up to its last key (an array element's problem
/// takes the whole array out).
fn entry_of(path: &KeyPath) -> Option<KeyPath> {
    let last = path.0.iter().rposition(|s| matches!(s, Seg::Key(_)))?;
    Some(KeyPath(path.0[..=last].to_vec()))
}

/// Takes the entry at `path` (ending with a key) out of `table`; `false` when it is not there.
fn remove(table: &mut DeTable<'_>, path: &[Seg]) -> bool {
    match path {
        [Seg::Key(k)] => table.remove(k.as_str()).is_some(),
        [Seg::Key(k), rest @ ..] => match table.get_mut(k.as_str()) {
            Some(v) => remove_in(v.get_mut(), rest),
            None => false,
        },
        _ => false,
    }
}

fn remove_in(value: &mut DeValue<'_>, path: &[Seg]) -> bool {
    match (value, path) {
        (DeValue::Table(t), [Seg::Key(_), ..]) => remove(t, path),
        (DeValue::Array(a), [Seg::Index(i), rest @ ..]) => match a.get_mut(*i) {
            Some(v) => remove_in(v.get_mut(), rest),
            None => false,
        },
        _ => false,
    }
}

/// The path of the key `name` that serde refused at byte `offset`: the one whose own text holds
/// the offset, else one in the deepest table whose text holds it (an error raised for a whole
/// inline table), else the only key of that name in the file.
fn key_named(root: &DeTable<'_>, offset: usize, name: &str) -> Option<KeyPath> {
    let mut at_key = None;
    let mut in_table: Option<(usize, KeyPath)> = None;
    let mut all = Vec::new();
    find(
        root,
        &KeyPath::default(),
        None,
        offset,
        name,
        &mut |found: Found| match found {
            Found::AtKey(p) => at_key = Some(p),
            Found::InTable(depth, p) => {
                if in_table.as_ref().is_none_or(|(d, _)| depth >= *d) {
                    in_table = Some((depth, p));
                }
            }
            Found::Anywhere(p) => all.push(p),
        },
    );
    at_key
        .or(in_table.map(|(_, p)| p))
        .or_else(|| (all.len() == 1).then(|| all.remove(0)))
}

enum Found {
    AtKey(KeyPath),
    InTable(usize, KeyPath),
    Anywhere(KeyPath),
}

fn find(
    table: &DeTable<'_>,
    at: &KeyPath,
    span: Option<std::ops::Range<usize>>,
    offset: usize,
    name: &str,
    out: &mut dyn FnMut(Found),
) {
    let holds = |s: &std::ops::Range<usize>| s.start <= offset && offset < s.end.max(s.start + 1);
    for (k, v) in table.iter() {
        let path = at.key(k.get_ref());
        if k.get_ref() == name {
            if holds(&k.span()) {
                out(Found::AtKey(path.clone()));
            } else if span.as_ref().is_some_and(holds) {
                out(Found::InTable(at.0.len(), path.clone()));
            }
            out(Found::Anywhere(path.clone()));
        }
        visit(v, &path, offset, name, out);
    }
}

fn visit(
    v: &toml::Spanned<DeValue<'_>>,
    at: &KeyPath,
    offset: usize,
    name: &str,
    out: &mut dyn FnMut(Found),
) {
    match v.get_ref() {
        DeValue::Table(t) => find(t, at, Some(v.span()), offset, name, out),
        DeValue::Array(a) => {
            for (i, item) in a.iter().enumerate() {
                visit(item, &at.index(i), offset, name, out);
            }
        }
        _ => {}
    }
}

/// The candidate nearest to `word` by edit distance (a swap of two neighbours counts as one
/// edit), if near enough to be a slip: at most one edit per three characters, and at least one.
/// Case and `-` against `_` count as no edit.
pub(crate) fn nearest<'a, S: AsRef<str>>(word: &str, candidates: &'a [S]) -> Option<&'a str> {
    let fold = |s: &str| s.to_lowercase().replace('-', "_");
    let w = fold(word);
    let limit = (w.chars().count() / 3).max(1);
    candidates
        .iter()
        .map(|c| (distance(&w, &fold(c.as_ref())), c.as_ref()))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// "did you mean `x`? " when a candidate is [`nearest`] to `word`, else nothing: the start of a
/// fix for a name that names nothing (a dim, an input, a mix entry).
pub(crate) fn did_you_mean<S: AsRef<str>>(word: &str, candidates: &[S]) -> String {
    nearest(word, candidates).map_or_else(String::new, |n| format!("did you mean `{n}`? "))
}

/// The optimal string alignment distance: insertions, deletions, substitutions and swaps of two
/// neighbouring characters.
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Parsed {
        parse(text, &SourceMap::new(text))
    }

    fn keys(p: &Parsed) -> Vec<String> {
        p.problems
            .iter()
            .map(|p| p.key.as_ref().map_or("?".into(), |k| k.to_string()))
            .collect()
    }

    #[test]
    fn nearest_takes_slips_and_leaves_other_words() {
        let known: Vec<String> = ["name", "path", "dims", "inputs", "samples", "workers"]
            .map(String::from)
            .to_vec();
        for (typo, want) in [
            ("dim", Some("dims")),
            ("sample", Some("samples")),
            ("pth", Some("path")),
            ("Name", Some("name")),
            ("wokrers", Some("workers")),
            ("inptus", Some("inputs")),
            ("device_id", None),
            ("x", None),
        ] {
            assert_eq!(nearest(typo, &known), want, "{typo}");
        }
        assert_eq!(
            nearest("intra-threads", &["intra_threads".to_string()]),
            Some("intra_threads")
        );
        assert_eq!(distance("ab", "ba"), 1);
        assert_eq!(distance("kitten", "sitting"), 3);
    }

    #[test]
    fn serdes_unknown_field_messages_give_the_known_keys() {
        for (message, name, known) in [
            (
                "unknown field `dim`, expected one of `name`, `path`, `dims`",
                "dim",
                vec!["name", "path", "dims"],
            ),
            (
                "unknown field `lo`, expected `low` or `high`",
                "lo",
                vec!["low", "high"],
            ),
            ("unknown field `x`, expected `value`", "x", vec!["value"]),
            ("unknown field `x`, there are no fields", "x", vec![]),
        ] {
            let (n, k) = unknown_field(message).unwrap();
            assert_eq!(
                (n.as_str(), k),
                (name, known.iter().map(|s| s.to_string()).collect())
            );
        }
        assert_eq!(
            unknown_field("invalid type: string \"a\", expected i64"),
            None
        );
    }

    /// Regression: serde stopped at the first unknown key, so a file with three typos took three
    /// runs to fix. Every problem of the keys and types is found in one pass, in every kind of
    /// table: top level, `[[model]]`, an inline table, a tagged generator, `[sweep]`.
    #[test]
    fn every_problem_of_keys_and_types_is_found_at_once() {
        let p = parsed(
            "sample = 4\n\
             [[model]]\nname = \"a\"\ndim = { batch = 1 }\n\
             inputs.x.generator = { kind = \"uniform\", lo = 0 }\n\
             [[model]]\nname = \"b\"\nsynthetic = { mean = \"1ms\", wiat = \"sleep\" }\n\
             [sweep]\nworkers = \"two\"\nworker = 3\n",
        );
        let mut got = keys(&p);
        got.sort();
        assert_eq!(
            got,
            [
                "model[0].dim",
                "model[0].inputs.x.generator.lo",
                "model[1].synthetic.wiat",
                "sample",
                "sweep.worker",
                "sweep.workers",
            ]
        );
        let raw = p.raw.as_ref().expect("what is left deserialises");
        assert_eq!(raw.model.len(), 2);
        let near: Vec<Option<&str>> = p
            .problems
            .iter()
            .filter_map(|p| p.unknown.as_ref())
            .map(|u| u.nearest.as_deref())
            .collect();
        assert!(
            near.contains(&Some("dims")) && near.contains(&Some("samples")),
            "{near:?}"
        );
        assert!(
            near.contains(&Some("wait")) && near.contains(&Some("workers")),
            "{near:?}"
        );
        assert_eq!(
            p.scopes(),
            ["model[0]", "model[1]", "sample", "sweep"].map(String::from)
        );
        assert!(in_scopes("model[0].inputs.x", &p.scopes()));
        assert!(!in_scopes("model[10]", &p.scopes()));
        assert!(!in_scopes("workload.mix", &p.scopes()));
    }

    #[test]
    fn a_wrong_tag_is_one_problem_not_two() {
        let p = parsed(
            "[[model]]\nname = \"a\"\ninputs.x.generator = { kind = \"gaussian\", mean = 0.0 }\n",
        );
        assert_eq!(keys(&p), ["model[0].inputs.x.generator.kind"], "{p:?}");
        assert!(p.raw.is_some());
    }

    #[test]
    fn a_syntax_error_is_the_one_problem() {
        let p = parsed("[[model]]\nname = \"a\npath = 1\n");
        assert_eq!(p.problems.len(), 1);
        assert!(p.raw.is_none());
    }
}
