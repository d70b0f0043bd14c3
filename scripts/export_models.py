#!/usr/bin/env python3
"""Export the PyTorch models in models/zoo.py to ONNX and write reference data.

Usage (from the repository root):

    .venv/bin/python scripts/export_models.py [--only NAME ...]

For every model this writes
    models/onnx/<name>.onnx                         (weights inline, opset >= 17)
    models/torch/<name>.pt                          (the same weights: the module's state_dict,
                                                     for bench's torch runtime)
    models/reference/<name>/input_<input>.npy       (fixed numpy seed)
    models/reference/<name>/output_<output>.npy     (computed by PyTorch)
then checks the file with onnx (names, dtypes, dim_param "batch"/"seq", rank-0 scalar,
no external data) and with onnxruntime (outputs vs PyTorch at the reference shape and
at a second shape). It is idempotent: rerunning overwrites the same files.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402

from models.zoo import DEFAULT_SEED, MODELS, ModelSpec  # noqa: E402

OPSET = 18
NP_SEED = 20240601
MAX_BYTES = 8 * 1024 * 1024
ONNX_DIR = ROOT / "models" / "onnx"
TORCH_DIR = ROOT / "models" / "torch"
REF_DIR = ROOT / "models" / "reference"

# Tolerances for ORT vs PyTorch (the float16 fixture computes in float32 after a cast,
# so it is exact in practice, but allow for float16 rounding anyway).
TOL = {"default": (1e-4, 1e-3), "mixed_inputs": (1e-2, 1e-2)}
# A second, different shape to prove the dynamic axes really are dynamic.
ALT_DIMS = {"batch": 5, "seq": 7}

NP_TO_ONNX = {
    np.dtype(np.float32): onnx.TensorProto.FLOAT,
    np.dtype(np.float16): onnx.TensorProto.FLOAT16,
    np.dtype(np.int64): onnx.TensorProto.INT64,
    np.dtype(np.bool_): onnx.TensorProto.BOOL,
}


def rel(p: Path) -> str:
    return os.path.relpath(p, ROOT)


def dynamic_shapes_for(spec: ModelSpec) -> dict:
    dims = {}
    for inp in spec.inputs:
        for name in inp.shape:
            if isinstance(name, str) and name not in dims:
                if name == "seq":
                    dims[name] = torch.export.Dim(name, min=1, max=spec.cls.MAX_LEN)
                else:
                    dims[name] = torch.export.Dim(name, min=1, max=1 << 20)
    out = {}
    for inp in spec.inputs:
        axes = {i: dims[d] for i, d in enumerate(inp.shape) if isinstance(d, str)}
        out[inp.name] = axes or None
    return out


def to_torch(arrays: dict, spec: ModelSpec) -> tuple:
    # .copy() (not np.ascontiguousarray, which turns 0-d arrays into 1-d) keeps rank-0 scalars.
    return tuple(torch.from_numpy(np.array(arrays[i.name], copy=True, order="C")) for i in spec.inputs)


def run_torch(model: torch.nn.Module, spec: ModelSpec, arrays: dict) -> dict:
    with torch.inference_mode():
        out = model(*to_torch(arrays, spec))
    if isinstance(out, torch.Tensor):
        out = (out,)
    return {name: t.detach().cpu().numpy() for name, t in zip(spec.outputs, out)}


def export_one(spec: ModelSpec, model: torch.nn.Module, path: Path) -> None:
    example = spec.make_inputs(np.random.default_rng(NP_SEED), spec.ref_dims)
    args = to_torch(example, spec)
    data_file = path.with_name(path.name + ".data")
    for p in (path, data_file):
        if p.exists():
            p.unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = torch.onnx.export(
            model,
            args,
            dynamo=True,
            input_names=[i.name for i in spec.inputs],
            output_names=list(spec.outputs),
            dynamic_shapes=dynamic_shapes_for(spec),
            opset_version=OPSET,
            optimize=True,
            verify=False,
            report=False,
            verbose=False,
        )
    m = prog.model_proto
    _rename_and_fix_dims(m, spec)
    # Keep the file small and stable: drop per-node debugging metadata.
    for node in m.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    m.doc_string = ""
    onnx.checker.check_model(m, full_check=True)
    onnx.save_model(m, str(path), save_as_external_data=False)


def _rename_and_fix_dims(m: onnx.ModelProto, spec: ModelSpec) -> None:
    """Make graph input dims carry exactly the symbolic names of the spec.

    The exporter usually already names them after the torch.export.Dim names; if it used
    other symbols (s0, s1, ...) rename them consistently across the whole graph.
    """
    rename: dict[str, str] = {}
    for vi, inp in zip(m.graph.input, spec.inputs):
        dims = vi.type.tensor_type.shape.dim
        for d, want in zip(dims, inp.shape):
            if isinstance(want, str) and d.HasField("dim_param") and d.dim_param != want:
                rename[d.dim_param] = want
    if not rename:
        return
    def fix(vis):
        for vi in vis:
            if vi.type.HasField("tensor_type"):
                for d in vi.type.tensor_type.shape.dim:
                    if d.HasField("dim_param"):
                        for old, new in rename.items():
                            if d.dim_param == old:
                                d.dim_param = new
    fix(m.graph.input)
    fix(m.graph.output)
    fix(m.graph.value_info)


def save_state_dict(spec: ModelSpec, model: torch.nn.Module) -> Path:
    """The weights for bench's torch runtime (`weights = "../models/torch/<name>.pt"`). torch.save
    writes the same bytes for the same tensors, so rerunning keeps the files unchanged."""
    TORCH_DIR.mkdir(parents=True, exist_ok=True)
    path = TORCH_DIR / f"{spec.name}.pt"
    torch.save(model.state_dict(), path)
    return path


def check_onnx(path: Path, spec: ModelSpec) -> None:
    m = onnx.load(str(path), load_external_data=False)
    problems = []
    opset = max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
    if opset < 17:
        problems.append(f"opset {opset} < 17")
    for t in m.graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            problems.append(f"initializer {t.name} stored externally")
    inits = {t.name for t in m.graph.initializer}
    graph_inputs = [vi for vi in m.graph.input if vi.name not in inits]
    if [vi.name for vi in graph_inputs] != [i.name for i in spec.inputs]:
        problems.append(f"input names {[vi.name for vi in graph_inputs]}")
    for vi, inp in zip(graph_inputs, spec.inputs):
        tt = vi.type.tensor_type
        if tt.elem_type != NP_TO_ONNX[inp.dtype]:
            problems.append(f"{inp.name}: elem_type {onnx.TensorProto.DataType.Name(tt.elem_type)}")
        if not tt.HasField("shape"):
            problems.append(f"{inp.name}: no shape")
            continue
        dims = list(tt.shape.dim)
        if len(dims) != len(inp.shape):
            problems.append(f"{inp.name}: rank {len(dims)} != {len(inp.shape)}")
            continue
        for k, (d, want) in enumerate(zip(dims, inp.shape)):
            if isinstance(want, str):
                if not (d.HasField("dim_param") and d.dim_param == want):
                    problems.append(f"{inp.name}[{k}]: want dim_param {want!r}, got {d}")
            elif not (d.HasField("dim_value") and d.dim_value == want):
                problems.append(f"{inp.name}[{k}]: want {want}, got {d}")
    if [o.name for o in m.graph.output] != list(spec.outputs):
        problems.append(f"output names {[o.name for o in m.graph.output]}")
    size = path.stat().st_size
    if size >= MAX_BYTES:
        problems.append(f"file is {size} bytes (>= 8 MB)")
    if path.with_name(path.name + ".data").exists():
        problems.append("external .data file exists")
    if problems:
        raise SystemExit(f"{spec.name}: ONNX check failed:\n  " + "\n  ".join(problems))


def ort_run(sess: ort.InferenceSession, arrays: dict) -> dict:
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, arrays)))


def compare(spec: ModelSpec, ref: dict, got: dict) -> float:
    atol, rtol = TOL.get(spec.name, TOL["default"])
    worst = 0.0
    for name in spec.outputs:
        a, b = ref[name], got[name]
        if a.shape != b.shape or a.dtype != b.dtype:
            raise SystemExit(f"{spec.name}.{name}: torch {a.dtype}{a.shape} vs ORT {b.dtype}{b.shape}")
        diff = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0
        worst = max(worst, diff)
        if not np.allclose(b, a, atol=atol, rtol=rtol):
            raise SystemExit(f"{spec.name}.{name}: ORT != PyTorch (max abs diff {diff:.3e}, "
                             f"atol {atol}, rtol {rtol})")
    return worst


def fmt_shape(shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", choices=sorted(MODELS), help="export only these models")
    ap.add_argument("--state-dicts-only", action="store_true",
                    help="write only models/torch/<name>.pt, not the ONNX files and reference data")
    args = ap.parse_args()
    if args.state_dicts_only:
        for name in args.only or list(MODELS):
            path = save_state_dict(MODELS[name], MODELS[name].cls.make(DEFAULT_SEED))
            print(f"wrote {rel(path)} ({path.stat().st_size} bytes)")
        return 0

    # The exporter logs "torchvision is not installed" for every model; not relevant here.
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    ONNX_DIR.mkdir(parents=True, exist_ok=True)
    REF_DIR.mkdir(parents=True, exist_ok=True)
    print(f"torch {torch.__version__}, onnx {onnx.__version__}, onnxruntime {ort.__version__}, opset {OPSET}")

    summary = []
    for name in args.only or list(MODELS):
        spec = MODELS[name]
        model = spec.cls.make(DEFAULT_SEED)
        path = ONNX_DIR / f"{name}.onnx"
        print(f"\n== {name} ({spec.cls.__name__})")
        export_one(spec, model, path)
        check_onnx(path, spec)
        print(f"wrote {rel(path)} ({path.stat().st_size} bytes)")
        weights = save_state_dict(spec, model)
        print(f"wrote {rel(weights)} ({weights.stat().st_size} bytes)")

        # Reference data at the reference shape.
        ref_dir = REF_DIR / name
        ref_dir.mkdir(parents=True, exist_ok=True)
        for stale in ref_dir.glob("*.npy"):
            stale.unlink()
        inputs = spec.make_inputs(np.random.default_rng(NP_SEED), spec.ref_dims)
        outputs = run_torch(model, spec, inputs)
        for kind, arrays in (("input", inputs), ("output", outputs)):
            for k, v in arrays.items():
                p = ref_dir / f"{kind}_{k}.npy"
                np.save(p, v, allow_pickle=False)
                print(f"wrote {rel(p)} {v.dtype} {list(v.shape)}")

        # ONNX Runtime: load, show the signature, compare.
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for i in sess.get_inputs():
            print(f"  ORT input  {i.name}: {i.type} {fmt_shape(i.shape)}")
        for o in sess.get_outputs():
            print(f"  ORT output {o.name}: {o.type} {fmt_shape(o.shape)}")
        diff = compare(spec, outputs, ort_run(sess, inputs))
        alt_dims = {k: ALT_DIMS[k] for k in spec.ref_dims}
        alt_inputs = spec.make_inputs(np.random.default_rng(NP_SEED + 1), alt_dims)
        diff_alt = compare(spec, run_torch(model, spec, alt_inputs), ort_run(sess, alt_inputs))
        print(f"  max abs diff PyTorch vs ORT: {diff:.3e} at {spec.ref_dims}, {diff_alt:.3e} at {alt_dims}")
        summary.append((name, path.stat().st_size, diff, diff_alt))

    print("\nsummary:")
    for name, size, diff, diff_alt in summary:
        print(f"  {name:14s} {size:9d} bytes  max abs diff {diff:.3e} (ref shape), {diff_alt:.3e} (alt shape)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
