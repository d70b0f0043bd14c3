#!/usr/bin/env python3
"""The torch runtime's worker: runs the original PyTorch modules for `bench`.

`bench` starts this script, with the project's Python, in place of its own `bench worker` when a
sweep point's runtime is `torch`:

    .venv/bin/python harness/python/bench_worker.py --id N [--shm-fd M] --fd K

It speaks the Rust worker's protocol (`bench_protocol.py`): it sends its hello on the inherited
socket `--fd`, receives the setup, imports the modules the scenario names (`module =
"models.zoo:ResNetSmall"`) with their weights (`weights`, a state_dict) or seed (`init_seed`), and
answers run requests one at a time under `torch.inference_mode()` with
`torch.set_num_threads(intra_threads)`, until told to shut down or until the parent goes away.

Transfers:
- `pipe`: the tensors come in the request frame; numpy views over the frame, `torch.from_numpy`.
- `shm`: the parent's memfd arena is inherited as `--shm-fd`; it is mapped once with `mmap`, inputs
  are numpy views over the mapping (no copy), outputs are written into the request's slot.
- `index`: Python cannot make the Rust generator's samples bit for bit, so the parent sends them
  once, in the setup (`SetupModel.data`); requests then name a sample by index.

The compute time reported is the module call alone (inputs already tensors), as the Rust worker
times `Session::run`.
"""

from __future__ import annotations

import argparse
import importlib
import mmap
import os
import socket
import sys
import time

import bench_protocol as bp

INSTALL_HINT = "run `scripts/setup.sh --torch`, or `.venv/bin/pip install torch==2.15.0`"
ALIGN = 64
PAGE = os.sysconf("SC_PAGE_SIZE")

# DType (protocol) <-> numpy type strings; filled once numpy is imported.
DTYPES = {
    "F32": "<f4", "F64": "<f8", "F16": "<f2", "I8": "i1", "I16": "<i2", "I32": "<i4", "I64": "<i8",
    "U8": "u1", "U16": "<u2", "U32": "<u4", "U64": "<u8", "Bool": "?",
}


class SetupError(Exception):
    def __init__(self, model, message):
        super().__init__(message)
        self.model = model
        self.message = message


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, ValueError, IndexError):
        return 0


def align_up(n: int) -> int:
    return (n + ALIGN - 1) & ~(ALIGN - 1)


def numel(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


class Held:
    __slots__ = ("module", "has_run", "cost_bytes")

    def __init__(self, module, cost_bytes):
        self.module = module
        self.has_run = False
        self.cost_bytes = cost_bytes


class Worker:
    def __init__(self, setup, shm_fd):
        self.setup = setup
        self.models = setup["models"]
        if setup["pin_cpu"] is not None:
            try:
                os.sched_setaffinity(0, {setup["pin_cpu"]})
            except OSError as e:
                raise SetupError(None, f"cannot pin to CPU {setup['pin_cpu']}: {e}") from None
        try:
            import torch
        except ImportError as e:
            raise SetupError(None, f"PyTorch is not installed for {sys.executable} ({e}); "
                             f"the torch runtime needs it: {INSTALL_HINT}") from None
        try:
            import numpy as np
        except ImportError as e:
            raise SetupError(None, f"numpy is not installed for {sys.executable} ({e}): "
                             f"run `scripts/setup.sh --torch`") from None
        self.torch = torch
        self.np = np
        self.from_numpy = torch.from_numpy
        self.dtypes = {k: np.dtype(v) for k, v in DTYPES.items()}
        self.names = {v: k for k, v in self.dtypes.items()}
        if setup["provider"] != "cpu":
            raise SetupError(None, f"provider {setup['provider']} is not supported by the torch worker")
        torch.set_num_threads(setup["intra_threads"])
        try:
            torch.set_num_interop_threads(1)  # one request at a time: no inter-op parallelism
        except RuntimeError:
            pass  # already set (only possible once per process)
        self.view = None
        layout = setup["shm"]
        if layout is not None:
            if shm_fd is None:
                raise SetupError(None, "shm transfer without --shm-fd")
            self.slots = layout["slots"]
            self.input_bytes = layout["input_bytes"]
            self.output_bytes = layout["output_bytes"]
            self.stride = max(ALIGN, align_up(self.input_bytes) + align_up(self.output_bytes))
            total = self.stride * self.slots
            try:
                size = os.fstat(shm_fd).st_size
                if size != total:
                    raise SetupError(None, f"the shared-memory file holds {size} bytes but the "
                                     f"layout needs {total}")
                self.mapping = mmap.mmap(shm_fd, total, mmap.MAP_SHARED,
                                         mmap.PROT_READ | mmap.PROT_WRITE)
            except OSError as e:
                raise SetupError(None, f"cannot map the shared-memory arena: {e}") from None
            self.view = memoryview(self.mapping)
        # index transfer: the samples come with the setup.
        self.samples = []
        if setup["transfer"] == "index":
            for m in self.models:
                if not m["data"]:
                    raise SetupError(m["name"], "the index transfer needs the samples in the setup")
                self.samples.append([[self.tensor_of(t["dtype"], t["shape"], t["bytes"], 0)
                                      for t in sample] for sample in m["data"]])
        self.held = {}
        self.lru = []
        self.costs = {}
        self.loads = []
        for m in setup["preload"]:
            load_ns = self.load(m)
            self.loads.append({"model": self.models[m]["name"], "load_ns": load_ns,
                               "rss_bytes": self.costs[m]})

    # --- models ---------------------------------------------------------------------------------

    def build(self, spec):
        """Imports the module and builds it with its weights or seed, in eval mode."""
        torch = self.torch
        name = spec["name"]
        ts = spec["torch"]
        if ts is None:
            raise SetupError(name, f"model `{name}` has no `module` for the torch runtime")
        for p in reversed(ts["python_path"]):
            if p not in sys.path:
                sys.path.insert(0, p)
        modname, _, attr = ts["module"].partition(":")
        try:
            obj = importlib.import_module(modname)
        except Exception as e:  # noqa: BLE001 - any import error is the user's to see
            raise SetupError(name, f"cannot import module `{modname}` (python path "
                             f"{ts['python_path']}): {type(e).__name__}: {e}") from None
        for part in attr.split("."):
            if not hasattr(obj, part):
                raise SetupError(name, f"`{ts['module']}`: `{modname}` has no `{attr}`")
            obj = getattr(obj, part)
        try:
            if ts["weights"] is not None:
                module = obj()
                state = torch.load(ts["weights"], map_location="cpu", weights_only=True)
                module.load_state_dict(state, strict=True)
            elif hasattr(obj, "make"):
                module = obj.make(ts["init_seed"])
            else:
                torch.manual_seed(ts["init_seed"])
                module = obj()
        except Exception as e:  # noqa: BLE001
            raise SetupError(name, f"cannot build `{ts['module']}`: {type(e).__name__}: {e}") from None
        if not isinstance(module, torch.nn.Module):
            raise SetupError(name, f"`{ts['module']}` gave a {type(module).__name__}, "
                             f"not a torch.nn.Module")
        module.eval()
        for p in module.parameters():
            p.requires_grad_(False)
        return module

    def load(self, m: int) -> int:
        if m >= len(self.models):
            raise SetupError(None, f"no model #{m}")
        spec = self.models[m]
        rss0 = rss_bytes()
        t0 = time.perf_counter_ns()
        module = self.build(spec)
        load_ns = time.perf_counter_ns() - t0
        weights = spec["torch"]["weights"]
        file_bytes = os.path.getsize(weights) if weights else 0
        cost = self.costs.setdefault(m, max(rss_bytes() - rss0, file_bytes))
        self.held[m] = Held(module, cost)
        self.touch(m)
        return load_ns

    def touch(self, m: int) -> None:
        if m in self.lru:
            self.lru.remove(m)
        self.lru.append(m)

    def evict_for(self, keep: int):
        caps = self.setup["on_demand"]
        evicted = []
        if caps is None:
            return evicted
        while True:
            count = len(self.lru)
            used = sum(h.cost_bytes for h in self.held.values())
            over = ((caps["max_models"] is not None and count > caps["max_models"])
                    or (caps["memory_budget_bytes"] is not None and used > caps["memory_budget_bytes"]))
            victims = [x for x in self.lru if x != keep]
            if not victims or not over:
                return evicted
            victim = victims[0]
            del self.held[victim]
            self.lru.remove(victim)
            evicted.append(victim)

    # --- tensors ---------------------------------------------------------------------------------

    def tensor_of(self, dtype: str, shape, buf, offset: int):
        """A torch tensor over `buf` (a view, no copy, when the bytes are aligned)."""
        if dtype not in self.dtypes:
            raise ValueError(f"the torch runtime does not take {dtype} tensors (bfloat16, float8 "
                             "and strings run with ONNX Runtime)")
        arr = self.np.frombuffer(buf, dtype=self.dtypes[dtype], count=numel(shape),
                                 offset=offset).reshape(shape)
        if not arr.flags.aligned:
            arr = arr.copy()
        return self.from_numpy(arr)

    def shm_input(self, slot: int, p):
        dtype, shape, offset, length = p
        if slot >= self.slots:
            raise ValueError(f"no shared-memory slot {slot}: the arena has {self.slots} slot(s)")
        size = self.dtypes[dtype].itemsize
        if any(d < 0 for d in shape) or numel(shape) * size != length:
            raise ValueError(f"bad tensor descriptor {p}")
        if offset % size or offset + length > self.input_bytes:
            raise ValueError(f"tensor descriptor {p} does not fit the {self.input_bytes}-byte region")
        return self.tensor_of(dtype, shape, self.view, slot * self.stride + offset)

    def output_arrays(self, out):
        """The module's outputs as (dtype name, contiguous numpy array) pairs, in order."""
        torch = self.torch
        if isinstance(out, torch.Tensor):
            out = (out,)
        elif isinstance(out, dict):
            out = tuple(out.values())
        arrays = []
        for t in out:
            if not isinstance(t, torch.Tensor):
                raise ValueError(f"the module returned a {type(t).__name__}, not a tensor")
            if t.device.type != "cpu":
                t = t.cpu()
            if not t.is_contiguous():
                t = t.contiguous()
            try:
                arr = t.numpy()
            except TypeError as e:
                raise ValueError(f"output of type {t.dtype} cannot be sent: {e}") from None
            name = self.names.get(arr.dtype)
            if name is None:
                raise ValueError(f"output of type {arr.dtype} is not supported by bench")
            arrays.append((name, arr))
        return arrays

    # --- requests -------------------------------------------------------------------------------

    def serve(self, id_: int, m: int, inputs) -> bytearray:
        """Runs one request (inputs as `bench_protocol.decode_run` gives them); returns the `Done`
        frame. Must be called under `torch.inference_mode()`."""
        if m >= len(self.models):
            raise ValueError(f"no model #{m} in this scenario")
        cold_load_ns, evicted = None, []
        held = self.held.get(m)
        if held is None:
            if self.setup["on_demand"] is None:
                raise ValueError(f"model `{self.models[m]['name']}` is not placed on this worker")
            try:
                cold_load_ns = self.load(m)
            except SetupError as e:
                raise ValueError(e.message) from None
            evicted = self.evict_for(m)
            held = self.held[m]
        elif self.lru[-1] != m:
            self.touch(m)
        kind = inputs[0]
        slot = None
        if kind == "inline":
            tensors = [self.tensor_of(d, shape, data, 0) for d, shape, data in inputs[1]]
        elif kind == "index":
            samples = self.samples[m] if m < len(self.samples) else None
            if not samples:
                raise ValueError("the index transfer has no samples here")
            tensors = samples[inputs[1] % len(samples)]
        else:
            if self.view is None:
                raise ValueError("a shared-memory request, but this worker has no arena")
            slot = inputs[1]
            tensors = [self.shm_input(slot, p) for p in inputs[2]]
        t0 = time.perf_counter_ns()
        out = held.module(*tensors)
        compute_ns = time.perf_counter_ns() - t0
        arrays = self.output_arrays(out)
        first = not held.has_run
        held.has_run = True
        placed = None if slot is None else self.write_outputs(slot, arrays)
        if placed is None:
            # No slot, or outputs larger than the slot's room (a size only known after running):
            # inline, as the Rust worker does.
            outputs = ("inline", [(name, a.shape, a.reshape(-1).view(self.np.uint8))
                                  for name, a in arrays])
        else:
            outputs = ("shm", placed)
        return bp.frame_done(id_, compute_ns, first, cold_load_ns, evicted, outputs)

    def write_outputs(self, slot: int, arrays):
        """Places the outputs back to back in the slot's output region, each at a multiple of 64;
        None when they do not fit (the reply then carries them inline)."""
        placements = []
        cursor = 0
        for name, a in arrays:
            offset = align_up(cursor)
            cursor = offset + a.nbytes
            placements.append((name, a.shape, offset, a.nbytes))
        if cursor > self.output_bytes:
            return None
        base = slot * self.stride + self.stride - align_up(self.output_bytes)
        for (_, _, offset, nbytes), (_, a) in zip(placements, arrays):
            start = base + offset
            self.view[start:start + nbytes] = a.reshape(-1).view(self.np.uint8)
        return placements


def main() -> int:
    ap = argparse.ArgumentParser(description="bench's torch worker (started by bench)")
    ap.add_argument("--fd", type=int, required=True, help="the inherited socket")
    ap.add_argument("--id", type=int, required=True, help="the worker's number")
    ap.add_argument("--shm-fd", type=int, help="the shared-memory arena of the shm transfer")
    args = ap.parse_args()

    sock = socket.socket(fileno=args.fd)
    reader = sock.makefile("rb", buffering=1 << 16)

    def send(msg) -> None:
        sock.sendall(bp.frame("FromWorker", msg))

    build = f"bench_worker.py, Python {sys.version.split()[0]}"
    send({"Hello": {"magic": bp.MAGIC, "protocol": bp.PROTOCOL_VERSION, "build": build,
                    "pid": os.getpid()}})
    payload = bp.read_frame(reader)
    if payload is None:
        return 0  # the parent went away before the setup
    msg = bp.decode("ToWorker", payload)
    if not (isinstance(msg, dict) and "Setup" in msg):
        raise bp.ProtocolError(f"expected a setup, got {msg!r}")
    setup = msg["Setup"]
    del payload, msg  # the sample views (index transfer) keep what they need
    try:
        worker = Worker(setup, args.shm_fd)
    except SetupError as e:
        send({"SetupFailed": {"model": e.model, "message": e.message}})
        return 0
    runtime = f"PyTorch {worker.torch.__version__} (Python {sys.version.split()[0]})"
    send({"Ready": {"loads": worker.loads, "rss_bytes": rss_bytes(), "runtime": runtime}})

    served = 0
    # Every request runs in inference mode (no autograd bookkeeping), entered once.
    with worker.torch.inference_mode():
        while True:
            payload = bp.read_frame(reader)
            if payload is None:
                return 0
            run = bp.decode_run(payload)
            if run is None:
                msg = bp.decode("ToWorker", payload)
                if msg == "Shutdown":
                    send({"Bye": {"rss_bytes": rss_bytes(), "served": served}})
                    return 0
                raise bp.ProtocolError("a second setup")
            id_, model, inputs = run
            served += 1
            try:
                reply = worker.serve(id_, model, inputs)
            except Exception as e:  # noqa: BLE001 - a failed request is data, not a crash
                reply = bp.frame("FromWorker", {"Failed": {"id": id_,
                                                           "message": f"{type(e).__name__}: {e}"}})
            # Every reply leaves at once, as in the Rust worker.
            sock.sendall(reply)


if __name__ == "__main__":
    sys.exit(main())
