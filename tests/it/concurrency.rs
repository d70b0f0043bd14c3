//! Threads or processes, and who holds which model: `worker_concurrency` (several requests at once
//! in one worker, on shared sessions), the `replicas` placement (each worker holds one model) and
//! the on-demand placement's model-cache columns, through the real binary.

use crate::common;

use crate::common::{Run, assert_accounted, num};

/// The `all` row of point `id`.
fn all_of<'a>(run: &'a Run, id: &str) -> &'a common::Row {
    run.rows
        .iter()
        .find(|r| r["point_id"] == id && r["model"] == "all")
        .unwrap_or_else(|| panic!("no point {id}: {:?}", run.stderr))
}

/// With worker_concurrency 2, one worker serves two 20 ms requests at the same time: twice the
/// throughput of one at a time, and no queueing behind the other request. The model sleeps, so the
/// check holds on a busy machine; every transfer mode that applies is covered, over either channel.
#[test]
fn one_worker_runs_two_requests_at_once_in_every_transfer_mode() {
    let run = common::sweep(
        "[[model]]\nname = \"m\"\nsynthetic = { service = \"fixed\", mean = \"20ms\", wait = \"sleep\" }\n\
         [workload]\nwarmup_requests = 4\nduration = \"1s\"\nmin_requests = 20\n[load]\nconcurrency = 2\n\
         [transfer]\nspin = \"always\"\n\
         [sweep]\nworkers = 1\nworker_concurrency = [1, 2]\ntransfer = [\"pipe\", \"shm\", \"index\"]\n\
         channel = [\"socket\", \"spin\"]\n",
        &[],
    );
    run.assert_ok_timing_aside();
    assert_accounted(&run);
    // Over the spin channel too: its serving threads share the reply ring.
    for transfer in [
        "pipe",
        "shm",
        "index",
        "pipe-spin",
        "shm-spin",
        "index-spin",
    ] {
        let one = all_of(&run, &format!("w1-t1-{transfer}-cpu-c2"));
        let two = all_of(&run, &format!("w1-t1-{transfer}-cpu-c2-k2"));
        assert_eq!(
            (
                &one["worker_concurrency"][..],
                &two["worker_concurrency"][..]
            ),
            ("1", "2")
        );
        assert_eq!(num(two, "errors"), 0.0, "{transfer}");
        common::assert_valid_timing_aside(two);
        let ratio = num(two, "throughput_rps") / num(one, "throughput_rps");
        assert!(
            ratio > 1.6,
            "{transfer}: 2 at once gave {ratio:.2}× the throughput"
        );
        // One at a time, a request waits for the other (about 40 ms); two at once, it does not.
        assert!(num(one, "latency_p50_us") > 30_000.0, "{transfer}: {one:?}");
        assert!(num(two, "latency_p50_us") < 30_000.0, "{transfer}: {two:?}");
    }
}

/// The real runtime from several threads on one session: requests complete in the `shm` and `pipe`
/// modes, and every worker's first run of each sample of the model with expected outputs is
/// compared with them.
#[test]
fn onnx_runtime_serves_concurrent_requests_on_one_session() {
    let models = common::models_path();
    let run = common::sweep(
        &format!(
            "[[model]]\nname = \"mlp\"\npath = \"{models}/mlp.onnx\"\ndims = {{ batch = 1 }}\n\
             [workload]\nwarmup_requests = 10\nrequests = 400\n[load]\nconcurrency = 4\n\
             [sweep]\nworkers = 1\nworker_concurrency = 2\ntransfer = [\"pipe\", \"shm\"]\n"
        ),
        &[],
    );
    run.assert_ok_timing_aside();
    assert_accounted(&run);
    for r in run.alls() {
        assert_eq!(num(r, "errors"), 0.0, "{r:?}");
        assert_eq!(num(r, "requests"), 400.0, "{r:?}");
        assert!(r["point_id"].ends_with("-k2"), "{r:?}");
    }
}

/// Replicas: each worker loads exactly its one model, two for `mlp` and one for `linear`, and each
/// model row says what loading the model cost a worker.
#[test]
fn replicas_give_each_worker_one_model_and_report_its_memory() {
    let models = common::models_path();
    let dir = tempfile::tempdir().unwrap();
    let run = common::sweep_in(
        dir.path(),
        &format!(
            "[[model]]\nname = \"mlp\"\npath = \"{models}/mlp.onnx\"\ndims = {{ batch = 1 }}\n\
             [[model]]\nname = \"linear\"\npath = \"{models}/linear.onnx\"\ndims = {{ batch = 1 }}\n\
             [workload]\nwarmup_requests = 10\nrequests = 200\n[load]\nconcurrency = 3\n\
             [sweep]\nworkers = 3\nplacement = \"replicas\"\n[replicas]\nmlp = 2\nlinear = 1\n"
        ),
        &[],
    );
    run.assert_ok_timing_aside();
    assert_accounted(&run);
    assert_eq!(run.row("all")["point_id"], "w3-t1-pipe-replicas-cpu-c3");
    for model in ["mlp", "linear"] {
        assert!(run.num(model, "requests") > 0.0, "{model}");
        assert_eq!(run.num(model, "errors"), 0.0, "{model}");
        assert!(run.num(model, "model_load_rss_mib") > 0.0, "{model}");
    }
    assert_eq!(
        run.row("all")["model_load_rss_mib"],
        "",
        "not on the all row"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("run.json")).unwrap()).unwrap();
    let workers = json["points"][0]["workers"].as_array().unwrap();
    let held: Vec<Vec<String>> = workers
        .iter()
        .map(|w| w["load_ms"].as_object().unwrap().keys().cloned().collect())
        .collect();
    assert_eq!(held, [vec!["mlp"], vec!["mlp"], vec!["linear"]]);
    assert!(
        workers
            .iter()
            .all(|w| w["load_rss_mib"].as_object().unwrap().len() == 1)
    );
    assert_eq!(json["points"][0]["worker_concurrency"], 1);
}

/// On-demand with room for one model of two: misses, evictions and their ages show in the cache
/// columns, and the other placements leave them empty.
#[test]
fn on_demand_reports_its_model_cache() {
    let models = common::models_path();
    let run = common::sweep(
        &format!(
            "[[model]]\nname = \"mlp\"\npath = \"{models}/mlp.onnx\"\ndims = {{ batch = 1 }}\n\
             [[model]]\nname = \"linear\"\npath = \"{models}/linear.onnx\"\ndims = {{ batch = 1 }}\n\
             [workload]\nwarmup_requests = 0\nrequests = 200\nmin_requests = 20\n[load]\nconcurrency = 1\n\
             [sweep]\nworkers = 1\nplacement = [\"replicate\", \"on-demand\"]\n\
             [on_demand]\nmax_models = 1\n"
        ),
        &[],
    );
    run.assert_ok_timing_aside();
    assert_accounted(&run);
    let replicate = all_of(&run, "w1-t1-pipe-cpu-c1");
    for k in [
        "cache_hit_pct",
        "evictions",
        "miss_delay_p50_us",
        "evicted_age_max_ms",
    ] {
        assert_eq!(replicate[k], "", "{k} is for on-demand only");
    }
    assert!(num(replicate, "peak_rss_mib") >= num(replicate, "rss_mib") * 0.5);
    let od = all_of(&run, "w1-t1-pipe-on-demand-cpu-c1");
    let cold = num(od, "cold_starts");
    assert!(cold >= 2.0, "both models loaded at least once: {od:?}");
    let hit = num(od, "cache_hit_pct");
    assert!((0.0..100.0).contains(&hit), "{hit}");
    assert_eq!(
        num(od, "evictions"),
        cold - 1.0,
        "every load after the first evicts one"
    );
    assert!(num(od, "miss_delay_p50_us") > 0.0);
    assert!(num(od, "miss_delay_p99_us") >= num(od, "miss_delay_p50_us"));
    assert!(num(od, "evicted_age_max_ms") >= num(od, "evicted_age_mean_ms"));
    assert!(num(od, "peak_rss_mib") > 0.0);
}

/// `[on_demand] parallel_loads`: two workers may load at the same time, or take turns; either
/// way every request is served and counted, with the workers' memory peak beside it.
#[test]
fn on_demand_loads_in_parallel_or_one_at_a_time() {
    let models = common::models_path();
    for parallel in [1, 2] {
        let run = common::sweep(
            &format!(
                "[[model]]\nname = \"mlp\"\npath = \"{models}/mlp.onnx\"\ndims = {{ batch = 1 }}\n\
                 [[model]]\nname = \"linear\"\npath = \"{models}/linear.onnx\"\ndims = {{ batch = 1 }}\n\
                 [workload]\nwarmup_requests = 0\nrequests = 200\nmin_requests = 20\n\
                 [load]\nconcurrency = 4\n[sweep]\nworkers = 2\nplacement = \"on-demand\"\n\
                 [on_demand]\nmax_models = 1\nparallel_loads = {parallel}\n"
            ),
            &[],
        );
        run.assert_ok_timing_aside();
        assert_accounted(&run);
        assert_eq!(run.num("all", "errors"), 0.0);
        assert!(run.num("all", "cold_starts") >= 2.0);
        assert!(run.num("all", "peak_rss_mib") > 0.0);
    }
}
