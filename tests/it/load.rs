//! End to end, with the synthetic runtime: ensembles, trials, stopping rules and verdicts.

use crate::common;

use crate::common::sweep;

const MODELS: &str = "[[model]]\nname = \"fast\"\nsynthetic = { mean = \"200us\", wait = \"sleep\" }\n\
                      [[model]]\nname = \"slow\"\nsynthetic = { service = \"exponential\", mean = \"1ms\", wait = \"sleep\" }\n";

#[test]
fn ensemble_requests_fan_out_and_wait_for_the_slowest_member() {
    let run = sweep(
        &format!(
            "{MODELS}[workload]\ngroups = {{ both = [\"fast\", \"slow\"] }}\nmix = {{ fast = 1, both = 1 }}\n\
             warmup_requests = 20\nrequests = 400\n[load]\nconcurrency = 2\n[sweep]\nworkers = 2\n"
        ),
        &[],
    );
    run.assert_ok_timing_aside();
    let kinds: Vec<(&str, &str)> = run
        .rows
        .iter()
        .map(|r| (r["model"].as_str(), r["kind"].as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("fast", "model"),
            ("slow", "model"),
            ("both", "group"),
            ("all", "all")
        ]
    );
    // `slow` runs only as a member of `both`, so they have the same count; `fast` runs alone too.
    assert_eq!(run.num("slow", "requests"), run.num("both", "requests"));
    assert!(run.num("fast", "requests") > run.num("both", "requests"));
    assert_eq!(
        run.num("all", "requests"),
        400.0,
        "ensemble requests count once at the top level"
    );
    // The ensemble waits for its slowest member: its tail is at least the slow member's.
    assert!(run.num("both", "latency_p50_us") >= run.num("slow", "latency_p50_us") * 0.95);
    assert!(run.num("both", "latency_p99_us") >= run.num("slow", "latency_p99_us") * 0.95);
    assert!(run.num("both", "latency_p50_us") > run.num("fast", "latency_p50_us"));
}

#[test]
fn trials_report_the_median_and_the_spread() {
    let run = sweep(
        &format!("{MODELS}[workload]\nwarmup_requests = 10\nrequests = 150\ntrials = 3\n"),
        &[],
    );
    run.assert_ok_timing_aside();
    let all = run.row("all");
    assert_eq!(all["trials"], "3");
    let (lo, mid, hi) = (
        run.num("all", "throughput_rps_min"),
        run.num("all", "throughput_rps"),
        run.num("all", "throughput_rps_max"),
    );
    assert!(lo <= mid && mid <= hi && lo > 0.0, "{lo} {mid} {hi}");
    let (lo, mid, hi) = (
        run.num("all", "latency_p99_us_min"),
        run.num("all", "latency_p99_us"),
        run.num("all", "latency_p99_us_max"),
    );
    assert!(lo <= mid && mid <= hi && lo > 0.0, "{lo} {mid} {hi}");
}

/// `--realtime` runs the generator (or everything) under SCHED_FIFO and says so in run.json; where
/// the kernel refuses, the run stops before measuring, saying what it needs.
#[test]
fn realtime_scheduling_is_recorded_or_refused_with_what_it_needs() {
    let scenario = "[[model]]\nname = \"m\"\nsynthetic = { mean = \"200us\", wait = \"sleep\" }\n\
                    [load]\nkind = \"open\"\nrate = 200\n\
                    [workload]\nwarmup_requests = 0\nduration = \"1s\"\n";
    for (flag, who) in [("--realtime", "generator"), ("--realtime=all", "all")] {
        let dir = tempfile::tempdir().unwrap();
        let run = common::sweep_in(dir.path(), scenario, &[flag]);
        if run.code == 2 {
            assert!(
                run.stderr
                    .contains("--realtime: the kernel refused SCHED_FIFO")
                    && run.stderr.contains("CAP_SYS_NICE"),
                "{}",
                run.stderr
            );
            continue;
        }
        run.assert_ok_timing_aside();
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("run.json")).unwrap()).unwrap();
        assert_eq!(meta["realtime"], who, "{meta}");
        assert_eq!(meta["overrides"]["--realtime"], who, "{meta}");
    }
    let run = sweep(scenario, &["--realtime=everything"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("[possible values: generator, all]"),
        "{}",
        run.stderr
    );
}

#[test]
fn first_runs_are_kept_out_of_the_steady_state() {
    // Two workers each run each of two models once for the first time, during warm-up.
    let run = sweep(
        &format!(
            "{MODELS}[workload]\nwarmup_requests = 200\nrequests = 100\n[sweep]\nworkers = 2\n[load]\nconcurrency = 4\n"
        ),
        &[],
    );
    run.assert_ok_timing_aside();
    assert_eq!(run.num("fast", "first_runs"), 2.0);
    assert_eq!(run.num("slow", "first_runs"), 2.0);
    assert_eq!(run.num("all", "first_runs"), 4.0);
    assert!(run.num("fast", "first_run_ms") > 0.0);
    assert_eq!(
        run.num("all", "requests"),
        100.0,
        "the measured requests are all steady-state"
    );
    assert_eq!(
        run.num("all", "warmup_requests"),
        196.0,
        "the warm-up's first runs are counted in first_runs alone"
    );
    common::assert_accounted(&run);
}

/// With trials in rounds (the default), each trial runs on a fresh pool after its own warm-up:
/// every warm-up is counted, its first runs included, so `sent` is every request of the point.
#[test]
fn trials_in_rounds_count_every_pools_warm_up() {
    let run = sweep(
        "[[model]]\nname = \"m\"\nsynthetic = { mean = \"100us\", wait = \"sleep\" }\n\
         [workload]\nwarmup_requests = 20\nrequests = 100\ntrials = 3\n",
        &[],
    );
    run.assert_ok_timing_aside();
    let n = |k: &str| run.num("all", k);
    assert_eq!(
        n("sent"),
        3.0 * 20.0 + 3.0 * 100.0,
        "three warm-ups and three trials"
    );
    assert_eq!(n("first_runs"), 3.0, "one per pool, in its warm-up");
    assert_eq!(n("warmup_requests"), 57.0);
    assert_eq!(n("requests"), 100.0, "the median trial's");
}

/// Regression: with warm-up on (the default), the identity
/// `requests + errors + first_runs + cold_starts + warmup_requests = sent` failed on every row by
/// `first_runs`; the tests checked it only without warm-up. Closed and open loops, an ensemble,
/// and on-demand placement (cold starts in warm-up and measurement).
#[test]
fn every_request_sent_is_accounted_for_with_warm_up_in_closed_and_open_loops() {
    let mix = "groups = { both = [\"fast\", \"slow\"] }\nmix = { fast = 1, both = 1 }\n";
    let sweep_axes = "[sweep]\nworkers = 2\nplacement = [\"replicate\", \"on-demand\"]\n\
                      [on_demand]\nmax_models = 1\n";
    for (load, workload) in [
        (
            "[load]\nconcurrency = 2\n",
            "warmup_requests = 40\nrequests = 200\nmin_requests = 10\n",
        ),
        (
            "[load]\nkind = \"open\"\nrate = 150\n",
            "warmup = \"300ms\"\nduration = \"1s\"\nmin_requests = 10\n",
        ),
    ] {
        let run = sweep(
            &format!("{MODELS}[workload]\n{mix}{workload}{load}{sweep_axes}"),
            &[],
        );
        run.assert_ok_timing_aside();
        assert_eq!(run.rows.len(), 2 * 4, "{load}: two points of four rows");
        common::assert_accounted(&run);
        for r in run.alls() {
            assert!(common::num(r, "warmup_requests") > 0.0, "{load}: {r:?}");
            // A replicated model runs first in warm-up; an on-demand one loads there (a cold start).
            let first = common::num(r, "first_runs") + common::num(r, "cold_starts");
            assert!(first > 0.0, "{load}: {r:?}");
        }
        assert!(
            run.alls()
                .iter()
                .any(|r| r["placement"] == "on-demand" && common::num(r, "cold_starts") > 0.0),
            "{load}: on-demand placement loads models on demand"
        );
    }
}

/// Regression (issue 24): `--requests 50` on a 100 ms model was invalid, "fewer requests than the
/// minimum: 50 < 100", a minimum the user never set. A request count is the user's choice of sample
/// size: the point is judged on it, and stderr says which percentiles 50 requests cannot support.
#[test]
fn a_request_count_is_judged_on_its_own_requests() {
    let scenario = "[[model]]\nname = \"detector\"\nsynthetic = { mean = \"100ms\", wait = \"sleep\" }\n\
                    [workload]\nwarmup_requests = 1\n";
    let run = sweep(scenario, &["--requests", "50"]);
    let all = run.row("all");
    assert!(
        !all["reason"].contains("fewer requests"),
        "{}",
        all["reason"]
    );
    common::assert_valid_timing_aside(all);
    assert_eq!(all["requests"], "50", "{all:?}");
    assert_eq!(all["stopped_by"], "requests");
    assert!(
        run.stderr
            .contains("50 requests per trial are too few for every percentile (p99 needs 100)"),
        "{}",
        run.stderr
    );

    // A minimum the user sets with the count still applies, and `validate` warns of it.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(
        &file,
        format!("{scenario}requests = 10\nmin_requests = 100\n"),
    )
    .unwrap();
    let out = common::bench(&["validate", "--scenario", file.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("warning: `requests = 10` is fewer than `min_requests = 100`: every point will be invalid"),
        "{}",
        out.stderr
    );
}

/// Regression (issue 24): `--duration 2s` on a slow model measured a handful of requests and called
/// the point invalid. A duration now runs on until `min_requests` successes (closed and open
/// loops), and no further than `max_duration`, where a point short of its minimum says so.
#[test]
fn a_duration_runs_on_to_min_requests_within_max_duration() {
    let model = |mean: &str| {
        format!(
            "[[model]]\nname = \"m\"\nsynthetic = {{ mean = \"{mean}\", wait = \"sleep\" }}\n\
             [workload]\nwarmup_requests = 1\nduration = \"300ms\"\n"
        )
    };
    // 20 ms per request: about 15 requests in 300 ms, 100 in about 2 s.
    let run = sweep(&model("20ms"), &[]);
    let all = run.row("all");
    assert!(!all["reason"].contains("fewer requests"), "{all:?}");
    common::assert_valid_timing_aside(all);
    assert!(run.num("all", "requests") >= 100.0, "{all:?}");
    assert!(run.num("all", "duration_s") > 1.0, "{all:?}");
    assert_eq!(all["stopped_by"], "min_requests");
    assert!(
        run.stderr
            .contains("past its duration, for min_requests = 100 successful requests"),
        "{}",
        run.stderr
    );
    // Said before the wait: 100 requests of 20 ms.
    assert!(
        run.stderr
            .contains("bench: warm-up and measurement take about 2s (worker starts aside"),
        "{}",
        run.stderr
    );

    // An open loop at 50 requests/s can only get more by running longer: 100 sends, about 2 s.
    let run = sweep(
        &format!(
            "{}[load]\nkind = \"open\"\narrival = \"constant\"\nrate = 50\n",
            model("5ms")
        ),
        &[],
    );
    let all = run.row("all");
    assert!(!all["reason"].contains("fewer requests"), "{all:?}");
    assert_eq!(all["stopped_by"], "min_requests");
    let sent = run.num("all", "requests") + run.num("all", "errors") + run.num("all", "first_runs");
    assert!((100.0..=103.0).contains(&sent), "{all:?}");

    // The cap: 50 ms per request for at most 1 s is about 20 requests, short of 100.
    let run = sweep(&model("50ms"), &["--max-duration", "1s"]);
    let all = run.row("all");
    assert_eq!(all["stopped_by"], "max_duration");
    assert_eq!(all["valid"], "false");
    assert!(
        all["reason"]
            .contains("within max_duration 1s (raise --max-duration, or lower --min-requests)"),
        "{all:?}"
    );
    assert!(run.num("all", "duration_s") < 1.5, "{all:?}");
    // `--min-requests` lowers the minimum: 10 requests are there by 1 s.
    let run = sweep(
        &model("50ms"),
        &["--max-duration", "1s", "--min-requests", "10"],
    );
    let all = run.row("all");
    assert!(!all["reason"].contains("fewer requests"), "{all:?}");
    assert_ne!(all["stopped_by"], "max_duration", "{all:?}");
}

/// `bench run` sets every key of the stop rule with a flag; each lands in the `scenario.toml` it
/// writes, and `--dry-run` prints the rule and each point's time.
#[test]
fn bench_run_sets_every_stop_rule_key() {
    let dir = tempfile::tempdir().unwrap();
    let model = format!("{}/linear.onnx", common::models_path());
    // `bench run MODEL --dry-run` with `flags` into `out`: `scenario.toml` holds each of `keys`,
    // and the listing on stdout each of `says`.
    let dry_run = |out: &str, flags: &[&str], keys: &[&str], says: &[&str]| {
        let out_dir = dir.path().join(out);
        let mut args = vec!["run", &model, "--dims", "batch=1", "--dry-run", "--out"];
        args.push(out_dir.to_str().unwrap());
        args.extend(flags);
        let run = common::bench(&args);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let text = std::fs::read_to_string(out_dir.join("scenario.toml")).unwrap();
        for key in keys {
            assert!(text.contains(key), "{key} missing from {text}");
        }
        for said in says {
            assert!(run.stdout.contains(said), "{said}: {}", run.stdout);
        }
    };
    dry_run(
        "out",
        &[
            "--duration",
            "2s",
            "--min-requests",
            "20",
            "--max-duration",
            "2m",
            "--warmup",
            "500ms",
        ],
        &[
            "duration = \"2s\"",
            "min_requests = 20",
            "max_duration = \"2m\"",
            "warmup = \"500ms\"",
        ],
        &[
            "warm-up 500ms, measure 2s (on past it to 20 successful requests, at most 2m)",
            "starts 1 process(es), 1 thread(s), 2.5s to 2m 1s",
        ],
    );
    dry_run(
        "out2",
        &["--requests", "50", "--warmup-requests", "5"],
        &[],
        &["warm-up 5 requests, measure 50 requests, 1 trial(s)"],
    );
    // The stable rule and its keys.
    dry_run(
        "out3",
        &[
            "--stable",
            "--window",
            "2s",
            "--tolerance-pct",
            "5",
            "--max-windows",
            "30",
        ],
        &[
            "stop = \"stable\"",
            "window = \"2s\"",
            "tolerance_pct = 5.0",
            "max_windows = 30",
        ],
        &["measure 2s windows until 3 agree within 5% (at most 30), at least 100"],
    );
    // A stable rule's key needs the rule.
    let out = common::bench(&["run", &model, "--dry-run", "--window", "2s"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--stable"), "{}", out.stderr);
}

/// The tests that measure time: they take `common::exclusive()`, and `scripts/test.sh` runs them
/// by themselves after the others (`-- ::alone::`).
mod alone {
    use super::*;

    #[test]
    fn the_stable_rule_stops_on_agreement_or_marks_the_point_invalid() {
        // Exclusive: it measures timing (three 400 ms windows agreeing within 50%).
        let _heavy = common::exclusive();
        // A steady fixed-time server agrees within 50% quickly, even on a busy test machine.
        let steady = "[[model]]\nname = \"m\"\nsynthetic = { mean = \"1ms\", wait = \"sleep\" }\n\
                  [workload]\nwarmup_requests = 20\nstop = \"stable\"\nwindow = \"400ms\"\ntolerance_pct = 50\nmax_windows = 25\n";
        let run = sweep(steady, &[]);
        assert_eq!(run.code, 0, "{} {:?}", run.stderr, run.row("all")["reason"]);
        let windows = run.num("all", "windows");
        assert!((3.0..=25.0).contains(&windows), "{windows}");
        assert_eq!(run.row("all")["valid"], "true");
        // The reported span is the three agreeing windows.
        assert!((run.num("all", "duration_s") - 1.2).abs() < 1e-6);

        // No real measurement agrees within 0.0001% in three windows.
        let strict = steady
            .replace("tolerance_pct = 50", "tolerance_pct = 0.0001")
            .replace("max_windows = 25", "max_windows = 3");
        assert_ne!(strict, steady);
        let run = sweep(&strict, &[]);
        assert_eq!(run.code, 1, "an invalid point exits 1: {}", run.stderr);
        assert_eq!(run.row("all")["valid"], "false");
        assert!(
            run.row("all")["reason"].contains("not stable within 3 windows"),
            "{:?}",
            run.row("all")["reason"]
        );
    }

    #[test]
    fn verdicts_name_each_reason_and_exit_1() {
        // Exclusive: an open loop at 5,000 requests/s for 2 s loads the CPU, and the met SLO is a
        // measured p99.
        let _heavy = common::exclusive();
        let base = "[[model]]\nname = \"m\"\nsynthetic = { mean = \"2ms\", wait = \"sleep\" }\n";
        // Too few requests, and an SLO that a 2 ms server cannot meet.
        let run = sweep(
            &format!(
                "slo = [\"p99_ms <= 1\", \"throughput_rps >= 1\"]\n{base}[workload]\nwarmup_requests = 5\nrequests = 20\nmin_requests = 50\n"
            ),
            &[],
        );
        assert_eq!(run.code, 1, "{}", run.stderr);
        let all = run.row("all");
        assert_eq!(all["valid"], "false");
        assert_eq!(all["slo_met"], "false");
        assert!(
            all["reason"].contains("fewer requests than the minimum: 20 < 50"),
            "{}",
            all["reason"]
        );
        assert!(
            all["reason"].contains("SLO missed: p99_ms = "),
            "{}",
            all["reason"]
        );
        assert!(
            !all["reason"].contains("throughput_rps"),
            "the throughput objective is met: {}",
            all["reason"]
        );
        // Every row of the point carries the point's verdict.
        assert_eq!(run.row("m")["valid"], "false");

        // A met SLO: valid, exit 0.
        let run = sweep(
            &format!(
                "slo = \"p99_ms <= 500\"\n{base}[workload]\nwarmup_requests = 5\nrequests = 60\nmin_requests = 50\n"
            ),
            &[],
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(run.row("all")["slo_met"], "true");
        assert_eq!(run.row("all")["reason"], "");

        // An open loop far beyond the server's capacity overflows its in-flight limit.
        let run = sweep(
            &format!(
                "{base}[load]\nkind = \"open\"\nrate = 5000\nmax_in_flight = 50\n[workload]\nwarmup_requests = 0\nduration = \"2s\"\n"
            ),
            &[],
        );
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(
            run.row("all")["reason"].contains("more than 50 requests in flight"),
            "{}",
            run.row("all")["reason"]
        );
    }

    /// With `spin`, the open loop busy-waits before each send instead of sleeping. At 1,000 requests/s
    /// and a 5 ms spin it never sleeps at all, so this fails if replies went unread while it spins:
    /// they would pile up until the end, and latencies would grow to the length of the run.
    #[test]
    fn a_spinning_generator_keeps_its_schedule_and_reads_replies_while_it_spins() {
        // Exclusive: the generator spins a core for 2 s, and the test measures send counts and latency.
        let _heavy = common::exclusive();
        let scenario = "[[model]]\nname = \"m\"\nsynthetic = { mean = \"100us\", wait = \"sleep\" }\n\
                    [load]\nkind = \"open\"\narrival = \"constant\"\nrate = 1000\nspin = \"5ms\"\n\
                    [workload]\nwarmup_requests = 0\nduration = \"2s\"\n";
        let spin_us = |dir: &std::path::Path| {
            let meta: serde_json::Value =
                serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap();
            meta["generator_spin_us"].as_u64().unwrap()
        };
        let dir = tempfile::tempdir().unwrap();
        let run = common::sweep_in(dir.path(), scenario, &[]);
        run.assert_ok_timing_aside();
        let all = run.row("all");
        let sent = run.num("all", "requests") + run.num("all", "first_runs");
        assert!((1990.0..=2001.0).contains(&sent), "{all:?}");
        // 100 µs of service: a p50 of 20 ms would already mean replies waited on the generator.
        assert!(run.num("all", "latency_p50_us") < 20_000.0, "{all:?}");
        assert!(run.num("all", "latency_p99_us") < 200_000.0, "{all:?}");
        assert_eq!(spin_us(dir.path()), 5_000);
        // Linux reports stolen CPU time (0 on bare metal).
        let steal = run.num("all", "cpu_steal_pct");
        assert!((0.0..=100.0).contains(&steal), "{all:?}");

        // `--spin` overrides the scenario, and is checked like it.
        let dir = tempfile::tempdir().unwrap();
        let run = common::sweep_in(
            dir.path(),
            scenario,
            &["--spin", "250us", "--duration", "300ms"],
        );
        run.assert_ok_timing_aside();
        assert_eq!(spin_us(dir.path()), 250);
        let run = sweep(scenario, &["--spin", "1s"]);
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(
            run.stderr
                .contains("invalid value '1s' for '--spin <DURATION>': more than the 100ms limit"),
            "{}",
            run.stderr
        );
    }

    #[test]
    fn open_loop_records_service_time_and_send_lag_and_follows_a_trace() {
        // Exclusive: it measures open-loop send counts and the achieved rate.
        let _heavy = common::exclusive();
        let dir = tempfile::tempdir().unwrap();
        let trace = dir.path().join("arrivals.txt");
        // 2 ms, 4 ms, 6 ms between arrivals, cycled: a mean of 4 ms, so 250 requests/s.
        std::fs::write(&trace, "# inter-arrival times in µs\n2000\n4000\n6000\n").unwrap();
        let scenario = format!(
            "[[model]]\nname = \"m\"\nsynthetic = {{ mean = \"200us\", wait = \"sleep\" }}\n\
         [load]\nkind = \"open\"\ntrace = \"{}\"\n[workload]\nwarmup_requests = 0\nduration = \"2s\"\n",
            trace.display()
        );
        let run = sweep(&scenario, &[]);
        run.assert_ok_timing_aside();
        let all = run.row("all");
        assert_eq!(
            (all["load"].as_str(), all["arrival"].as_str()),
            ("open", "trace")
        );
        assert_eq!(
            run.num("all", "rate_rps"),
            250.0,
            "a trace's rate is its mean"
        );
        assert_eq!(all["concurrency"], "");
        // 2 s at one arrival per 4 ms on average: 500 sends (one of them the session's first run).
        assert!(
            (495.0..=501.0).contains(&(run.num("all", "requests") + run.num("all", "first_runs"))),
            "{all:?}"
        );
        let rate = run.num("all", "throughput_rps");
        assert!((230.0..=260.0).contains(&rate), "{rate}");
        // Latency from the intended time covers service time and send lag.
        assert!(run.num("all", "latency_p50_us") >= run.num("all", "service_p50_us"));
        assert!(run.num("all", "send_lag_p50_us") > 0.0);
        assert!(run.num("all", "latency_p50_us") >= run.num("all", "compute_p50_us"));

        // Constant arrivals at a rate list sweep the rate.
        let run = sweep(
            "[[model]]\nname = \"m\"\nsynthetic = { mean = \"100us\", wait = \"sleep\" }\n\
         [load]\nkind = \"open\"\narrival = \"constant\"\nrate = [100, 200]\n[workload]\nwarmup_requests = 0\nmin_requests = 50\nduration = \"1s\"\n",
            &[],
        );
        run.assert_ok_timing_aside();
        let alls: Vec<_> = run.rows.iter().filter(|r| r["model"] == "all").collect();
        assert_eq!(alls.len(), 2);
        assert_eq!(
            (alls[0]["point_id"].as_str(), alls[1]["point_id"].as_str()),
            ("w1-t1-pipe-cpu-r100", "w1-t1-pipe-cpu-r200")
        );
        for (r, want) in alls.iter().zip([100.0, 200.0]) {
            let sent: f64 =
                r["requests"].parse::<f64>().unwrap() + r["first_runs"].parse::<f64>().unwrap();
            assert!(
                (sent - want).abs() <= 1.0,
                "constant arrivals for 1 s at {want}/s sent {sent}"
            );
        }
    }
}
