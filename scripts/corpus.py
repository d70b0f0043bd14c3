#!/usr/bin/env python3
"""Runs the ONNX backend test suite (shipped in the `onnx` wheel) through `bench run`.

Every model runs twice, independently:

- through `bench run MODEL --test-data DIR` with a short fixed request count, one worker, and each
  transfer mode (one sweep point per mode), so each worker's first run of each sample is checked
  against the suite's expected outputs;
- through ONNX Runtime's Python API with the same inputs and the same tolerance, so the table
  shows whether `bench` fails where ONNX Runtime itself runs.

Each model gets one outcome per side:

  bench:  matched (every transfer mode ran and matched), mismatched (ran, wrong outputs),
          refused (`bench validate` refuses it: a type or kind outside what bench supports,
          with the reason), not loaded (ONNX Runtime in the worker would not load it),
          failed (anything else: request errors, a crash), panic, hang (no answer within
          --timeout)
  ORT:    matched, mismatched, failed

It writes OUT/corpus.csv (a row per model), OUT/corpus.md (the tables) and prints the tables.
For every model that `bench run` ran, it also checks the model-first starter: `bench init MODEL
--test-data DIR` prints a scenario, and `bench sweep` of it must give the same outcome.

Exit status: 1 when bench panicked, hung, failed to match a model that ONNX Runtime runs and
matches (a model named in KNOWN with its reason does not count), or when `bench init`'s scenario
did not run as `bench run` did; 0 otherwise.

    scripts/corpus.py                         # the whole corpus (about 1,700 models)
    scripts/corpus.py --sample 240 --seed 1   # a stratified sample, as CI runs it
    scripts/corpus.py --only 'test_relu|test_add$'

Needs: .venv with requirements/run.txt and requirements/test.txt (scripts/setup.sh --test), and a
built bench (default target/release/bench; --bench to choose).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRANSFERS = ["pipe", "shm", "index"]
# bench's default tolerance for expected outputs (scenario::CHECK_TOLERANCE); ORT is held to it too.
RTOL, ATOL = 1e-3, 1e-5
# The folders of the suite, in the order of the table. `real` holds only URLs of the `light` models.
KINDS = ["node", "pytorch-converted", "pytorch-operator", "simple", "light"]

# Models where bench and ONNX Runtime's Python API may rightly disagree, with why. Empty means
# every model ONNX Runtime runs must match through bench.
KNOWN: dict[str, str] = {}


@dataclass
class Case:
    kind: str
    name: str
    model: Path
    data: Path
    ort: str = ""
    ort_detail: str = ""
    bench: str = ""
    bench_detail: str = ""
    per_transfer: dict = field(default_factory=dict)
    # `bench init --test-data` and a sweep of its scenario: "ran" when it gives what `bench run`
    # gave; empty when bench run did not run the model.
    init: str = ""
    init_detail: str = ""
    seconds: float = 0.0


def data_root() -> Path:
    import onnx  # noqa: PLC0415 (the venv's onnx, imported only to find its data)

    return Path(onnx.__file__).parent / "backend" / "test" / "data"


def light_case(model: Path, work: Path) -> Path:
    """A test-data folder for a `light` model, made as ONNX's own runner makes it: each graph
    input filled with arange(n)/n (runner.generate_dummy_data, random=False)."""
    import numpy as np  # noqa: PLC0415
    import onnx  # noqa: PLC0415
    from onnx import numpy_helper  # noqa: PLC0415

    out = work / "light" / model.stem / "test_data_set_0"
    out.mkdir(parents=True, exist_ok=True)
    m = onnx.load(str(model), load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    k = 0
    for x in m.graph.input:
        if x.name in inits:
            continue
        shape = tuple(
            d.dim_value if d.HasField("dim_value") else 1 for d in x.type.tensor_type.shape.dim
        )
        n = int(np.prod(shape))
        value = (np.arange(n).reshape(shape) / max(n, 1)).astype(np.float32)
        t = numpy_helper.from_array(value, x.name)
        (out / f"input_{k}.pb").write_bytes(t.SerializeToString())
        k += 1
    for i in range(len(m.graph.output)):
        src = model.with_name(f"{model.stem}_output_{i}.pb")
        if src.exists():
            shutil.copy(src, out / f"output_{i}.pb")
    return out.parent


def discover(root: Path, work: Path) -> list[Case]:
    cases = []
    for kind in KINDS:
        base = root / kind
        if not base.is_dir():
            continue
        if kind == "light":
            for model in sorted(base.glob("*.onnx")):
                cases.append(Case(kind, model.stem, model, light_case(model, work)))
            continue
        for d in sorted(base.iterdir()):
            if (d / "model.onnx").exists() and any(d.glob("test_data_set_*")):
                cases.append(Case(kind, d.name, d / "model.onnx", d))
    return cases


def stratified(cases: list[Case], n: int, seed: int) -> list[Case]:
    """About n cases: from each folder a share proportional to its size (at least 3), and within
    `node` spread across operators (test names share the op's prefix)."""
    rng = random.Random(seed)
    by_kind: dict[str, list[Case]] = {}
    for c in cases:
        by_kind.setdefault(c.kind, []).append(c)
    total = len(cases)
    picked = []
    for kind, group in by_kind.items():
        want = min(len(group), max(3, round(n * len(group) / total)))
        # Group by operator: the name up to its second underscore-separated word.
        ops: dict[str, list[Case]] = {}
        for c in group:
            ops.setdefault("_".join(c.name.split("_")[:2]), []).append(c)
        buckets = [rng.sample(v, len(v)) for _, v in sorted(ops.items())]
        rng.shuffle(buckets)
        chosen: list[Case] = []
        while len(chosen) < want:
            for b in buckets:
                if b and len(chosen) < want:
                    chosen.append(b.pop())
        picked.extend(chosen)
    return picked


ORT_CHILD = r"""
import json, sys, glob, os
import numpy as np
import onnx
from onnx import numpy_helper
import onnxruntime as ort
RTOL, ATOL = float(sys.argv[1]), float(sys.argv[2])
so = ort.SessionOptions()
so.intra_op_num_threads = 1
so.log_severity_level = 4
def read(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return t.name, numpy_helper.to_array(t)
def close(got, want):
    if got.dtype != want.dtype or got.shape != want.shape:
        return f"is {got.dtype} {list(got.shape)}, expected {want.dtype} {list(want.shape)}"
    if want.dtype.kind in "fc":
        g, w = got.astype(np.float64), want.astype(np.float64)
        same_nan = np.isnan(g) & np.isnan(w)
        ok = same_nan | (g == w) | (np.abs(g - w) <= ATOL + RTOL * np.abs(w))
    elif want.dtype.kind in "OSU":
        ok = np.array([a == b for a, b in zip(got.ravel(), want.ravel())])
    else:
        ok = got == want
    bad = int(np.size(ok) - np.count_nonzero(ok))
    return f"{bad} of {np.size(ok)} elements differ" if bad else None
for line in sys.stdin:
    model, data = json.loads(line)
    try:
        s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
        names = [i.name for i in s.get_inputs()]
        outs = [o.name for o in s.get_outputs()]
        verdict = ("matched", "")
        for d in sorted(glob.glob(os.path.join(data, "test_data_set_*"))):
            files = sorted(glob.glob(os.path.join(d, "input_*.pb")), key=lambda p: int(p.rsplit("_", 1)[1][:-3]))
            feeds = {}
            for k, f in enumerate(files):
                n, a = read(f)
                feeds[n if n in names else names[k]] = a
            got = s.run(None, feeds)
            for k, f in enumerate(sorted(glob.glob(os.path.join(d, "output_*.pb")), key=lambda p: int(p.rsplit("_", 1)[1][:-3]))):
                _, want = read(f)
                why = close(np.asarray(got[k]), want)
                if why:
                    verdict = ("mismatched", f"{outs[k]}: {why}")
                    break
            if verdict[0] != "matched":
                break
    except Exception as e:
        msg = str(e).strip().splitlines()
        verdict = ("failed", (msg[0] if msg else type(e).__name__)[:300])
    print(json.dumps(verdict), flush=True)
"""


class OrtChild:
    """One Python process that runs models with ONNX Runtime's Python API, restarted when a model
    crashes or hangs it."""

    def __init__(self, python: str, timeout: float):
        self.python, self.timeout, self.proc = python, timeout, None

    def start(self):
        self.proc = subprocess.Popen(
            [self.python, "-c", ORT_CHILD, str(RTOL), str(ATOL)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )

    def run(self, case: Case) -> tuple[str, str]:
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        self.proc.stdin.write(json.dumps([str(case.model), str(case.data)]) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], self.timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            code = self.proc.poll()
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            return ("failed", "hang" if code is None else f"crashed (exit {code})")
        return tuple(json.loads(line))

    def close(self):
        if self.proc:
            self.proc.stdin.close()
            self.proc.wait()


def first_error(stderr: str) -> str:
    """What bench's error output says first, without file paths (a folder prefix is cut to its
    last part) and without the lines that only introduce the error."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith("bench:")]
    for k, ln in enumerate(lines):
        if "panicked" in ln:
            return short(ln)
        if ln.startswith("error"):
            head = ln.removeprefix("error:").strip()
            if head.endswith(":") or head.startswith("the scenario has"):
                head = lines[k + 1] if k + 1 < len(lines) else head
            return short(head)
    return short(lines[-1] if lines else "")


def short(text: str) -> str:
    """`text` with each absolute path cut to its file name, and a `file:line: key:` prefix cut."""
    text = re.sub(r"/[^\s:`'\"]*/([^/\s:`'\"]+)", r"\1", text)
    text = re.sub(r"^scenario\.toml:\d+: `[^`]*`: ", "", text)
    return text[:300]


def row_verdict(row: dict) -> str:
    """A results.csv row of a model with test data: `mismatched` (wrong outputs), `failed`
    (request errors, or outputs left unchecked) or `matched`. Also used by wild_models.py."""
    if "wrong outputs" in row["reason"]:
        return "mismatched"
    if int(row["errors"] or 0) > 0 or row["outputs_checked"] != "true":
        return "failed"
    return "matched"


def sweep_verdict(out: Path, p: subprocess.CompletedProcess, transfers: list[str]) -> tuple[str, str, dict]:
    """The outcome of one `bench run` or `bench sweep` over one model: what its exit status and
    OUT/results.csv say, with the reason, and each transfer mode's own verdict."""
    if "panicked" in p.stderr:
        return "panic", first_error(p.stderr), {}
    if p.returncode == 2:
        why = first_error(p.stderr)
        outcome = "not loaded" if "could not load model" in why else "refused"
        return outcome, re.sub(r"^sweep point \d+ \([^)]*\): ", "", why), {}
    results = out / "results.csv"
    if not results.exists():
        return "failed", f"exit {p.returncode}: {first_error(p.stderr)}", {}
    per = {}
    for row in csv.DictReader(results.open()):
        if row["model"] != "all":
            per[row["transfer"]] = (row_verdict(row), row["reason"])
    missing = [t for t in transfers if t not in per]
    bad = {t: v for t, v in per.items() if v[0] != "matched"}
    if missing:
        return "failed", f"no row for {', '.join(missing)}: {first_error(p.stderr)}", per
    if not bad:
        return "matched", "", per
    worst = "mismatched" if any(v[0] == "mismatched" for v in bad.values()) else "failed"
    t, (_, reason) = next((t, v) for t, v in bad.items() if v[0] == worst)
    return worst, f"{t}: {reason or 'request errors'}"[:300], per


def run_bench(bench: str, case: Case, work: Path, timeout: float, requests: int) -> None:
    """`bench run` on the model with its test data, each transfer mode; then, for a model that
    ran, `bench init` with the same test data, and a sweep of the scenario it printed."""
    out = work / "runs" / f"{case.kind}-{case.name}"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [
        bench, "run", str(case.model), "--test-data", str(case.data),
        "--transfer", ",".join(TRANSFERS), "--requests", str(requests),
        "--warmup", "0s", "--quiet", "--out", str(out),
    ]  # fmt: skip
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        case.bench, case.bench_detail, case.per_transfer = sweep_verdict(out, p, TRANSFERS)
    except subprocess.TimeoutExpired:
        case.bench, case.bench_detail = "hang", f"no answer in {timeout:.0f} s"
    finally:
        case.seconds = time.monotonic() - t0
    shutil.rmtree(out, ignore_errors=True)
    if case.bench not in ("matched", "mismatched"):
        return
    out.mkdir(parents=True)
    scenario = out / "init.toml"
    try:
        init = subprocess.run(
            [bench, "init", str(case.model), "--test-data", str(case.data)],
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        if init.returncode != 0:
            case.init, case.init_detail = "failed", f"bench init: {first_error(init.stderr)}"
            return
        scenario.write_text(init.stdout)
        p = subprocess.run(
            [bench, "sweep", "--scenario", str(scenario), "--requests", str(requests),
             "--warmup", "0s", "--quiet", "--out", str(out / "sweep")],
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        outcome, why, _ = sweep_verdict(out / "sweep", p, ["pipe"])
        case.init, case.init_detail = ("ran", "") if outcome == case.bench else (outcome, why)
    except subprocess.TimeoutExpired:
        case.init, case.init_detail = "hang", f"no answer in {timeout:.0f} s"
    finally:
        shutil.rmtree(out, ignore_errors=True)


def table(cases: list[Case]) -> str:
    kinds = [k for k in KINDS if any(c.kind == k for c in cases)]
    outcomes = ["matched", "mismatched", "refused", "not loaded", "failed", "panic", "hang"]
    lines = ["| bench \\ folder | " + " | ".join(kinds) + " | all |", "|---" * (len(kinds) + 2) + "|"]
    for o in outcomes:
        counts = [sum(c.kind == k and c.bench == o for c in cases) for k in kinds]
        lines.append(f"| {o} | " + " | ".join(map(str, counts)) + f" | {sum(counts)} |")
    lines.append("")
    ort = ["matched", "mismatched", "failed"]
    lines.append("| bench \\ ONNX Runtime (Python) | " + " | ".join(ort) + " |")
    lines.append("|---" * (len(ort) + 1) + "|")
    for o in outcomes:
        counts = [sum(c.bench == o and c.ort == r for c in cases) for r in ort]
        if any(counts):
            lines.append(f"| {o} | " + " | ".join(map(str, counts)) + " |")
    return "\n".join(lines)


def reasons(cases: list[Case], outcome: str, limit: int = 12) -> str:
    counts: dict[str, list[str]] = {}
    for c in cases:
        if c.bench == outcome:
            key = re.sub(r"/[^ ]*/", ".../", c.bench_detail)
            key = re.sub(r"`[^`]*`", "`…`", key)
            key = re.sub(r" \(worker pid \d+\)", "", key)[:140]
            counts.setdefault(key, []).append(c.name)
    rows = sorted(counts.items(), key=lambda kv: -len(kv[1]))[:limit]
    return "\n".join(f"- {len(v)}× {k} (e.g. {v[0]})" for k, v in rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default=str(ROOT / "target" / "release" / "bench"))
    ap.add_argument("--python", default=str(ROOT / ".venv" / "bin" / "python"))
    ap.add_argument("--sample", type=int, help="a stratified sample of about N models")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", help="a regex over model names")
    ap.add_argument("--jobs", type=int, default=2, help="bench runs at once (default 2)")
    ap.add_argument("--requests", type=int, default=3, help="requests per transfer mode")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per model and side")
    ap.add_argument("--out", default=str(ROOT / "reports" / "corpus"))
    a = ap.parse_args()

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-corpus-"))
    try:
        cases = discover(data_root(), work)
        if a.only:
            cases = [c for c in cases if re.search(a.only, c.name)]
        if a.sample:
            cases = stratified(cases, a.sample, a.seed)
        print(f"corpus: {len(cases)} models from {data_root()}", file=sys.stderr)
        t0 = time.monotonic()
        child = OrtChild(a.python, a.timeout)
        with ThreadPoolExecutor(max_workers=a.jobs) as pool:
            runs = [pool.submit(run_bench, a.bench, c, work, a.timeout, a.requests) for c in cases]
            for c in cases:
                c.ort, c.ort_detail = child.run(c)
            for i, r in enumerate(runs):
                r.result()
                if (i + 1) % 100 == 0:
                    print(f"corpus: {i + 1}/{len(cases)} ({time.monotonic() - t0:.0f} s)", file=sys.stderr)
        child.close()
        wall = time.monotonic() - t0
    finally:
        shutil.rmtree(work, ignore_errors=True)

    with (out / "corpus.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["folder", "model", "bench", "bench_detail", "ort", "ort_detail", "init", "init_detail", "seconds"])
        for c in cases:
            w.writerow([c.kind, c.name, c.bench, c.bench_detail, c.ort, c.ort_detail, c.init, c.init_detail, f"{c.seconds:.2f}"])
    broken = [
        c for c in cases
        if c.bench in ("panic", "hang")
        or (c.ort == "matched" and c.bench != "matched" and c.name not in KNOWN)
        or c.init not in ("", "ran")
    ]  # fmt: skip
    inits = [c for c in cases if c.init]
    text = [
        f"{len(cases)} models, transfers {', '.join(TRANSFERS)}, {a.requests} requests each, "
        f"rtol {RTOL} atol {ATOL}; {wall:.0f} s with {a.jobs} bench runs at once.",
        "",
        table(cases),
        "",
        f"`bench init --test-data` then `bench sweep` on the {len(inits)} models `bench run` ran: "
        f"{sum(c.init == 'ran' for c in inits)} gave the same outcome.",
    ]
    for o in ["refused", "not loaded", "mismatched", "failed", "panic", "hang"]:
        if any(c.bench == o for c in cases):
            text += ["", f"bench {o}, by reason:", reasons(cases, o)]
    if broken:
        text += ["", f"{len(broken)} model(s) ONNX Runtime runs and matches that bench does not (or a panic/hang):"]
        text += [
            f"- {c.kind}/{c.name}: bench run {c.bench}: {c.bench_detail}"
            + (f"; bench init {c.init}: {c.init_detail}" if c.init not in ("", "ran") else "")
            for c in broken[:40]
        ]
    (out / "corpus.md").write_text("\n".join(text) + "\n")
    print("\n".join(text))
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
