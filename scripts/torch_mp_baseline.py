#!/usr/bin/env python3
"""The classic Python serving recipe, measured: a persistent ``multiprocessing`` pool in which
every process loads its own PyTorch copies of the bundled models, fed a round-robin mix by a
closed loop of client threads. ``scripts/gpu-check.sh`` runs it beside ``bench`` so the ratio
between the two comes from one run on one machine.

Prints one CSV line per worker count:
    runtime,device,workers,concurrency,startup_s,requests,throughput_rps,p50_ms,p99_ms

Example:
    .venv/bin/python scripts/torch_mp_baseline.py --device cpu --workers 1 2 --duration 3
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import threading
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name -> (zoo class, inputs as (name, dtype, shape)); the same shapes as scenarios/ensemble.toml.
MODELS = {
    "linear": ("Linear", [("x", "float32", (1, 10))]),
    "mlp": ("MLP", [("x", "float32", (1, 64))]),
    "resnet_small": ("ResNetSmall", [("image", "float32", (1, 3, 32, 32))]),
    "encoder_small": (
        "EncoderSmall",
        [("input_ids", "int64", (1, 32)), ("attention_mask", "bool", (1, 32))],
    ),
}

_models = {}
_device = None


def _init(device: str, threads: int) -> None:
    global _device
    sys.path.insert(0, ROOT)
    import torch
    from models import zoo

    torch.set_num_threads(threads)
    _device = torch.device(device)
    for name, (cls, _) in MODELS.items():
        _models[name] = getattr(zoo, cls).make().to(_device)


def _run(name: str, arrays: list) -> np.ndarray:
    import torch

    with torch.inference_mode():
        inputs = [torch.from_numpy(a).to(_device, non_blocking=False) for a in arrays]
        out = _models[name](*inputs)
        return out.cpu().numpy()


def _sample(name: str, rng: np.random.Generator) -> list:
    out = []
    for _, dtype, shape in MODELS[name][1]:
        if dtype == "int64":
            out.append(rng.integers(0, 1000, size=shape, dtype=np.int64))
        elif dtype == "bool":
            out.append(np.ones(shape, dtype=bool))
        else:
            out.append(rng.standard_normal(shape, dtype=np.float32))
    return out


def measure(device: str, workers: int, threads: int, concurrency: int, duration: float) -> dict:
    ctx = mp.get_context("spawn")  # fork after CUDA initialisation is unsafe
    names = list(MODELS)
    rng = np.random.default_rng(42)
    samples = {n: _sample(n, rng) for n in names}
    t0 = time.perf_counter()
    pool = ctx.Pool(workers, initializer=_init, initargs=(device, threads))
    # Start-up ends when every model has run in every worker (CUDA context, kernels, allocator).
    warm = [pool.apply_async(_run, (n, samples[n])) for _ in range(workers * 4) for n in names]
    for w in warm:
        w.get()
    startup = time.perf_counter() - t0

    latencies: list[float] = []
    lock = threading.Lock()
    stop_at = time.perf_counter() + duration

    def client(k: int) -> None:
        mine = []
        i = k
        while time.perf_counter() < stop_at:
            name = names[i % len(names)]
            i += 1
            s = time.perf_counter()
            pool.apply(_run, (name, samples[name]))
            mine.append(time.perf_counter() - s)
        with lock:
            latencies.extend(mine)

    begin = time.perf_counter()
    threads_ = [threading.Thread(target=client, args=(k,)) for k in range(concurrency)]
    for t in threads_:
        t.start()
    for t in threads_:
        t.join()
    span = time.perf_counter() - begin
    pool.close()
    pool.join()
    lat = np.array(latencies) * 1e3
    return {
        "runtime": "torch-mp",
        "device": device,
        "workers": workers,
        "concurrency": concurrency,
        "startup_s": round(startup, 3),
        "requests": len(lat),
        "throughput_rps": round(len(lat) / span, 1),
        "p50_ms": round(float(np.percentile(lat, 50)), 3),
        "p99_ms": round(float(np.percentile(lat, 99)), 3),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads per worker")
    ap.add_argument("--concurrency", type=int, default=0,
                    help="requests in flight (default: 4 per worker)")
    ap.add_argument("--duration", type=float, default=10.0, help="measured seconds per worker count")
    args = ap.parse_args()
    try:
        import torch  # noqa: F401
    except ImportError:
        print("torch is missing: install it with `scripts/setup.sh --torch` "
              "or `.venv/bin/pip install torch`", file=sys.stderr)
        return 2
    cols = ["runtime", "device", "workers", "concurrency", "startup_s", "requests",
            "throughput_rps", "p50_ms", "p99_ms"]
    print(",".join(cols))
    for w in args.workers:
        r = measure(args.device, w, args.threads, args.concurrency or 4 * w, args.duration)
        print(",".join(str(r[c]) for c in cols), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
