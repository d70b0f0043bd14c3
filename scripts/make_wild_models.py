"""Writes tests/models/wild/*.onnx: small models shaped like real exports that nobody here wrote.

Each reproduces what a public exporter writes and what bench once refused or ran wrongly:
- paddle_dims.onnx: paddle2onnx's input `x [-1, 3, ?, ?]` (dim_value -1, two anonymous `?` dims)
  and a dotted dim name `p2o.DynamicDimension.0` on a second input.
- mixed_dims.onnx: PP-OCR's recogniser input `x [p2o.DynamicDimension.0, 3, ?,
  p2o.DynamicDimension.1]`: named and anonymous dims in one input, so its full shape binds both.
- strings.onnx: a string input (`text [n]`) and output, as text classifiers' preprocessing
  graphs take them.
- unknown_rank.onnx: an input with no declared shape.
- sequence_output.onnx: an output that is a sequence of tensors.
- ir3_weights_as_inputs.onnx: IR version 3, whose weights are graph inputs with initializers.
- overridable_weights.onnx: the same at IR version 8, where such a weight may be fed.
- external_data.onnx (+ external_data.weights): weights in a separate file.
- unk_dims.onnx: anonymous dims named `unk__7` and `None`, and a zero-size fixed dim.
- nonzero.onnx: a detector-like output whose dim `nnz` is only known after running (the indices of
  the positive inputs, NonZero), beside an output whose size the input binds.
- big_input.onnx: a cheap model (ReduceMax) of a 640x640 detector's input, 4.9 MB a sample.
- scalar_params.onnx: a pitch estimator's rank-0 parameter inputs `fmin` and `fmax` (float32 []),
  beside the signal they clip.
- zipmap.onnx: an `ai.onnx.ml` classifier's ZipMap output, a sequence of maps from int64 labels to
  float32 scores, as sklearn-onnx writes it.

Run from the repository root with the test Python: .venv/bin/python scripts/make_wild_models.py
The files are committed; the tests do not need the onnx package.
"""

import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join("tests", "models", "wild")




def value(name, elem, shape):
    """A tensor value; shape None = unknown rank; ints -> dim_value, str -> dim_param."""
    t = helper.make_tensor_type_proto(elem, None)
    if shape is not None:
        s = t.tensor_type.shape
        s.SetInParent()
        for d in shape:
            dim = s.dim.add()
            if isinstance(d, int):
                dim.dim_value = d
            elif d is not None:
                dim.dim_param = d
    return helper.make_value_info(name, t)


def save(model, name, check=True):
    """Writes the model; `check=False` for shapes the checker refuses but exporters write."""
    if check:
        onnx.checker.check_model(model)
    path = os.path.join(OUT, name)
    onnx.save(model, path)
    print(path, os.path.getsize(path), "bytes")


def opset(v=18):
    return [helper.make_opsetid("", v)]


def main():
    os.makedirs(OUT, exist_ok=True)

    # paddle2onnx style: x [-1, 3, ?, ?] and s [p2o.DynamicDimension.0, 4]
    g = helper.make_graph(
        [
            helper.make_node("Relu", ["x"], ["y"]),
            helper.make_node("Neg", ["s"], ["t"]),
        ],
        "paddle_dims",
        [value("x", TensorProto.FLOAT, [-1, 3, "?", "?"]),
         value("s", TensorProto.FLOAT, ["p2o.DynamicDimension.0", 4])],
        [value("y", TensorProto.FLOAT, [-1, 3, "?", "?"]),
         value("t", TensorProto.FLOAT, ["p2o.DynamicDimension.0", 4])],
    )
    m = helper.make_model(g, opset_imports=opset(), producer_name="paddle2onnx-like")
    m.ir_version = 8
    save(m, "paddle_dims.onnx")

    # named and anonymous dims in one input
    x_dims = ["p2o.DynamicDimension.0", 3, "?", "p2o.DynamicDimension.1"]
    g = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "mixed_dims",
        [value("x", TensorProto.FLOAT, x_dims)],
        [value("y", TensorProto.FLOAT, x_dims)],
    )
    m = helper.make_model(g, opset_imports=opset(), producer_name="paddle2onnx-like")
    m.ir_version = 8
    save(m, "mixed_dims.onnx")

    # strings in and out
    g = helper.make_graph(
        [helper.make_node("Identity", ["text"], ["same"])],
        "strings",
        [value("text", TensorProto.STRING, ["n"])],
        [value("same", TensorProto.STRING, ["n"])],
    )
    m = helper.make_model(g, opset_imports=opset(), producer_name="bench")
    m.ir_version = 8
    save(m, "strings.onnx")

    # unknown rank
    g = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "unknown_rank",
        [value("x", TensorProto.FLOAT, None)],
        [value("y", TensorProto.FLOAT, None)],
    )
    m = helper.make_model(g, opset_imports=opset())
    m.ir_version = 8
    save(m, "unknown_rank.onnx", check=False)

    # sequence output
    seq = helper.make_tensor_sequence_value_info("parts", TensorProto.FLOAT, None)
    g = helper.make_graph(
        [helper.make_node("SplitToSequence", ["x"], ["parts"], axis=0)],
        "sequence_output",
        [value("x", TensorProto.FLOAT, [4, 2])],
        [seq],
    )
    m = helper.make_model(g, opset_imports=opset())
    m.ir_version = 8
    save(m, "sequence_output.onnx")

    # IR 3: weights listed as inputs
    w = numpy_helper.from_array(np.full((1, 4), 0.5, dtype=np.float32), "w")
    g = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])],
        "ir3",
        [value("x", TensorProto.FLOAT, [1, 4]), value("w", TensorProto.FLOAT, [1, 4])],
        [value("y", TensorProto.FLOAT, [1, 4])],
        initializer=[w],
    )
    m = helper.make_model(g, opset_imports=opset(8))
    m.ir_version = 3
    save(m, "ir3_weights_as_inputs.onnx", check=False)

    # IR 8: the same graph, where a weight listed as input may be fed (an overridable initializer)
    m = helper.make_model(g, opset_imports=opset())
    m.ir_version = 8
    save(m, "overridable_weights.onnx")

    # external data: a 64x64 weight in external_data.weights
    w = numpy_helper.from_array(
        np.arange(64 * 64, dtype=np.float32).reshape(64, 64) / 4096.0, "w")
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "external_data",
        [value("x", TensorProto.FLOAT, ["batch", 64])],
        [value("y", TensorProto.FLOAT, ["batch", 64])],
        initializer=[w],
    )
    m = helper.make_model(g, opset_imports=opset())
    m.ir_version = 8
    onnx.checker.check_model(m)
    path = os.path.join(OUT, "external_data.onnx")
    onnx.save(m, path, save_as_external_data=True, all_tensors_to_one_file=True,
              location="external_data.weights", size_threshold=0)
    print(path, os.path.getsize(path), "bytes (+ external_data.weights)")

    # unk__N, None and a zero-size dim
    g = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Relu", ["z"], ["e"])],
        "unk_dims",
        [value("x", TensorProto.FLOAT, ["unk__7", "None", 2]),
         value("z", TensorProto.FLOAT, [0, 3])],
        [value("y", TensorProto.FLOAT, ["unk__7", "None", 2]),
         value("e", TensorProto.FLOAT, [0, 3])],
    )
    m = helper.make_model(g, opset_imports=opset())
    m.ir_version = 8
    save(m, "unk_dims.onnx")

    # an output whose size is only known after running: NonZero of Relu(x) -> [1, nnz]
    g = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("NonZero", ["r"], ["idx"])],
        "nonzero",
        [value("x", TensorProto.FLOAT, ["n"])],
        [value("r", TensorProto.FLOAT, ["n"]), value("idx", TensorProto.INT64, [1, "nnz"])],
    )
    m = helper.make_model(g, opset_imports=opset())
    m.ir_version = 8
    save(m, "nonzero.onnx")

    # a large input on a cheap model: the 640x640 image of a detector, reduced to its maximum
    g = helper.make_graph(
        [helper.make_node("ReduceMax", ["images"], ["m"], keepdims=0)],
        "big_input",
        [value("images", TensorProto.FLOAT, [1, 3, "height", "width"])],
        [value("m", TensorProto.FLOAT, [])],
    )
    m = helper.make_model(g, opset_imports=opset())
    m.ir_version = 8
    save(m, "big_input.onnx")

    # scalar parameters: rank-0 inputs that a user must set (a frequency range), not draw
    g = helper.make_graph(
        [helper.make_node("Clip", ["x", "fmin", "fmax"], ["y"])],
        "scalar_params",
        [
            value("x", TensorProto.FLOAT, ["n"]),
            value("fmin", TensorProto.FLOAT, []),
            value("fmax", TensorProto.FLOAT, []),
        ],
        [value("y", TensorProto.FLOAT, ["n"])],
    )
    m = helper.make_model(g, opset_imports=opset())
    m.ir_version = 8
    save(m, "scalar_params.onnx")

    # sklearn-onnx's classifier tail: ZipMap turns [n, 2] scores into seq(map(int64, float32))
    zipmap_out = helper.make_value_info(
        "probabilities",
        helper.make_sequence_type_proto(
            helper.make_map_type_proto(
                TensorProto.INT64, helper.make_tensor_type_proto(TensorProto.FLOAT, [])
            )
        ),
    )
    g = helper.make_graph(
        [
            helper.make_node(
                "ZipMap", ["scores"], ["probabilities"], domain="ai.onnx.ml", classlabels_int64s=[0, 1]
            )
        ],
        "zipmap",
        [value("scores", TensorProto.FLOAT, ["n", 2])],
        [zipmap_out],
    )
    m = helper.make_model(
        g, opset_imports=opset() + [helper.make_opsetid("ai.onnx.ml", 1)]
    )
    m.ir_version = 8
    save(m, "zipmap.onnx")


if __name__ == "__main__":
    main()
