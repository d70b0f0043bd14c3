//! The declarations checked against each other and against what reads them: unique ids over every
//! axis, defaults that agree with the typed ones, and a home for every declared column, key and
//! flag (the `Row` column, the `RawSweep` field, the scenario reference's table).

use std::collections::HashMap;

use super::*;
use crate::scenario::{ExecutionMode, GraphOptimization, SessionKnobs};

/// Every axis at its examples: a product of millions of points.
fn every_example() -> Axes {
    let mut axes = Axes::single();
    for axis in list::ALL {
        axis.use_examples(&mut axes, usize::MAX);
    }
    axes
}

/// The point at the `n`-th combination of `lens` in the sweep's order (mixed radix, last axis
/// fastest).
fn nth(axes: &Axes, lens: &[usize], mut n: u64) -> Point {
    let mut at = vec![0; lens.len()];
    for k in (0..lens.len()).rev() {
        at[k] = (n % lens[k] as u64) as usize;
        n /= lens[k] as u64;
    }
    point_at(axes, &at)
}

/// Ids are unique over every axis at once: over a large expansion (two to five values of every
/// axis, defaults included: over a hundred million points), each id stands for one point. That
/// many are too many to build in a unit test, so the product is walked with a prime stride, which
/// visits points that differ in every axis; a second pass walks the 2^19 combinations of two values
/// of each axis the same way, an eighth of them.
#[test]
fn ids_are_unique_over_a_large_expansion_of_every_axis() {
    let axes = every_example();
    let lens = lens(&axes);
    assert!(lens.iter().all(|&n| n >= 2), "{lens:?}");
    let total: u64 = lens.iter().map(|&n| n as u64).product();
    assert!(total > 100_000_000, "{total}");
    // Each id with the point it stands for.
    let mut seen: HashMap<String, Point> = HashMap::new();
    let mut check = |axes: &Axes, lens: &[usize], n: u64| {
        let p = nth(axes, lens, n);
        match seen.get(&p.id) {
            Some(other) => assert_eq!(*other, p, "two points share the id {}", p.id),
            None => {
                seen.insert(p.id.clone(), p);
            }
        }
    };
    let stride = 1_000_003; // prime, and no axis has as many values
    for i in 0..30_000u64 {
        check(&axes, &lens, (i * stride) % total);
    }
    let mut two = Axes::single();
    for axis in list::ALL {
        axis.use_examples(&mut two, 2);
    }
    let two_lens = super::lens(&two);
    let n: u64 = two_lens.iter().map(|&n| n as u64).product();
    assert_eq!(n, 1 << list::ALL.len());
    for i in 0..n / 8 {
        check(&two, &two_lens, (i * 7_919) % n);
    }
}

#[test]
fn the_size_guard_is_the_product_of_every_declared_axis() {
    let mut axes = Axes::single();
    assert_eq!(size(&axes), 1);
    axes.workers = vec![1, 2, 3];
    axes.prepacking = vec![true, false];
    axes.batching = vec![None, None];
    assert_eq!(size(&axes), 12);
    assert_eq!(crate::scenario::expand(&axes).unwrap().len(), 12);
    assert!(size(&every_example()) > crate::scenario::sweep::MAX_POINTS);
}

/// The declared defaults are the typed ones: one point, `w1-t1-pipe-cpu-c1`, equal to
/// `Point::default()`, with `SessionKnobs::default()`.
#[test]
fn the_declared_defaults_make_the_default_point() {
    let points = crate::scenario::expand(&Axes::single()).unwrap();
    assert_eq!(points, [Point::default()]);
    assert_eq!(points[0].id, "w1-t1-pipe-cpu-c1");
    assert_eq!(points[0].session, SessionKnobs::default());
}

/// Moved from `session.rs`: the session options at their defaults add nothing to an id, and each
/// other value its fragment, after the threads.
#[test]
fn the_session_defaults_add_nothing_to_an_id() {
    // Set one by one from the defaults, so a knob added later keeps its default here.
    let mut session = SessionKnobs::DEFAULT;
    session.graph_optimization = GraphOptimization::Basic;
    session.execution_mode = ExecutionMode::Parallel;
    session.inter_threads = 2;
    session.intra_spinning = false;
    session.cpu_arena = false;
    session.memory_pattern = false;
    session.prepacking = false;
    let p = Point {
        session,
        ..Point::default()
    };
    assert_eq!(
        id(&p),
        "w1-t1-opt-basic-par-i2-nospin-noarena-nomempat-noprepack-pipe-cpu-c1"
    );
}

/// Each `[sweep]` key of the list is a key `RawSweep` reads, and every key of every axis is
/// documented in a table of docs/reference/scenario.md.
#[test]
fn every_key_is_read_and_documented() {
    let reference = include_str!("../../../docs/reference/scenario.md");
    for key in keys() {
        if key.table == "sweep" {
            let text = format!("{} = {}", key.key, example_toml(key));
            let raw: Result<RawSweep, _> = toml::from_str(&text);
            assert!(raw.is_ok(), "[sweep] `{text}`: {raw:?}");
        }
        let row = if key.key.is_empty() {
            format!("## `[{}]`", key.table)
        } else {
            format!("| `{}` |", key.key)
        };
        assert!(
            reference.contains(&row),
            "docs/reference/scenario.md has no `{row}` for [{}] {}",
            key.table,
            key.key
        );
    }
}

/// A value of the key's kind, as TOML.
fn example_toml(key: &Key) -> String {
    match key.value {
        FlagValue::Ints { min, .. } => min.max(1).to_string(),
        FlagValue::Rates => "1.0".into(),
        FlagValue::Bools => "false".into(),
        FlagValue::Names(names) => format!("\"{}\"", names()[0]),
        FlagValue::Durations => "\"2ms\"".into(),
        FlagValue::Pairs => "{}".into(),
    }
}

/// Flags are unique, and each key's flag writes its key: `--rate` also makes the loop open, and
/// `--replicas` writes one line per model.
#[test]
fn each_flag_writes_its_key() {
    let mut flags: Vec<&str> = keys().map(|k| k.flag).collect();
    flags.sort_unstable();
    let n = flags.len();
    flags.dedup();
    assert_eq!(flags.len(), n, "a flag is declared twice");
    let key = |flag: &str| keys().find(|k| k.flag == flag).unwrap();
    let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let workers = key("workers").settings(&v(&["1", "2"]));
    assert_eq!(workers.len(), 1);
    assert_eq!((workers[0].0, workers[0].1.as_str()), ("sweep", "workers"));
    assert_eq!(workers[0].2.to_string(), "[1, 2]");
    let rate = key("rate").settings(&v(&["100"]));
    let lines: Vec<String> = rate
        .iter()
        .map(|(t, k, v)| format!("{t}.{k} = {v}"))
        .collect();
    assert_eq!(lines, ["load.kind = \"open\"", "load.rate = 100.0"]);
    let replicas = key("replicas").settings(&v(&["yolo=2", "v.ad=1"]));
    let lines: Vec<String> = replicas
        .iter()
        .map(|(t, k, v)| format!("{t}: {k} = {v}"))
        .collect();
    assert_eq!(lines, ["replicas: yolo = 2", "replicas: \"v.ad\" = 1"]);
    assert!(key("workers").check("0").is_err());
    assert!(key("spin-max-us").check("0").is_ok());
    assert!(key("max-delay").check("soon").is_err());
    assert!(key("replicas").check("yolo").is_err());
}
