//! `bench calibrate`: the floor loops run side by side in one run and report what they measured.

mod common;

#[test]
fn calibrate_measures_every_loop_the_spin_channel_included() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("floor.csv");
    let out = common::bench(&[
        "calibrate",
        "--iterations",
        "300",
        "--csv",
        csv.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rows = common::read_rows(&csv);
    let loops: Vec<&str> = rows.iter().map(|r| r["loop_name"].as_str()).collect();
    assert_eq!(
        loops,
        [
            "in_process",
            "socket_rtt",
            "spin_rtt",
            "pool",
            "pool_overhead",
            "pool_spin",
            "pool_spin_overhead"
        ]
    );
    let p50 = |name: &str| -> f64 {
        rows.iter().find(|r| r["loop_name"] == name).unwrap()["p50_us"]
            .parse()
            .unwrap()
    };
    for r in &rows {
        assert_eq!(r["iterations"], "300", "{}", r["loop_name"]);
        let v = p50(&r["loop_name"]);
        assert!(v.is_finite() && v > 0.0, "{}: {v}", r["loop_name"]);
    }
    // A latency includes its overhead, whatever the machine's speed.
    assert!(p50("pool_overhead") <= p50("pool"));
    assert!(p50("pool_spin_overhead") <= p50("pool_spin"));
    assert!(
        out.stdout.contains("(spin)"),
        "the console names the spin ratio: {}",
        out.stdout
    );
}
