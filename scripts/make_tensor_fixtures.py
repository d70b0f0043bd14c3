"""Writes the tensor-file fixtures of the TensorProto reader and of the test-data tests.

tests/models/tensors/:
- DTYPE_raw.pb and DTYPE_typed.pb for every element type bench supports: the same [2, 3] array
  saved with its bytes in raw_data (numpy_helper.from_array, what exporters write) and in the
  typed field of its type (helper.make_tensor(raw=False): float_data, double_data, int64_data,
  uint64_data, or int32_data for int32 and every type of 16 bits or less), plus DTYPE.npy, the
  array itself, to compare with.
- scalar.pb: a float32 scalar (no dims) named `s`.
- both.npz: `x` (float32 [2, 3]) and `y` (int64 [4]), stored; both_compressed.npz, deflated.
- bfloat16.pb, string.pb: bfloat16 and string tensors as onnx.helper.make_tensor saves them.
- external.pb: a tensor whose data lives in another file.

tests/models/testdata/ (for models/onnx/linear.onnx, x: float32 [batch, 10] -> y):
- linear/test_data_set_0 and _1: input_0.pb (named `x`, batch 2) and output_0.pb computed by
  ONNX Runtime, in the layout of the ONNX backend tests.
- linear_wrong/test_data_set_0: the same input and an output that is off by 0.5 in one element.

Run from the repository root with the test Python: .venv/bin/python scripts/make_tensor_fixtures.py
The files are committed; the tests do not need the onnx package.
"""

import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

TENSORS = os.path.join("tests", "models", "tensors")
TESTDATA = os.path.join("tests", "models", "testdata")

BASE = np.array([[0, 1, -2], [3, 4, -5]])

# numpy dtype, ONNX type, values
TYPES = {
    "float32": (np.float32, TensorProto.FLOAT, BASE * 0.5),
    "float64": (np.float64, TensorProto.DOUBLE, BASE * 0.25),
    "float16": (np.float16, TensorProto.FLOAT16, BASE * 1.5),
    "int8": (np.int8, TensorProto.INT8, BASE * 20),
    "int16": (np.int16, TensorProto.INT16, BASE * 3000),
    "int32": (np.int32, TensorProto.INT32, BASE * 100000),
    "int64": (np.int64, TensorProto.INT64, BASE * 10**12),
    "uint8": (np.uint8, TensorProto.UINT8, np.abs(BASE) * 50),
    "uint16": (np.uint16, TensorProto.UINT16, np.abs(BASE) * 13000),
    "uint32": (np.uint32, TensorProto.UINT32, np.abs(BASE) * 800000000),
    "uint64": (np.uint64, TensorProto.UINT64, np.abs(BASE) * 4 * 10**18),
    "bool": (np.bool_, TensorProto.BOOL, BASE > 0),
}


def save(proto, *path):
    with open(os.path.join(*path), "wb") as f:
        f.write(proto.SerializeToString())


def tensors():
    os.makedirs(TENSORS, exist_ok=True)
    for name, (dtype, onnx_type, values) in TYPES.items():
        arr = np.asarray(values).astype(dtype)
        np.save(os.path.join(TENSORS, f"{name}.npy"), arr)
        save(numpy_helper.from_array(arr, name), TENSORS, f"{name}_raw.pb")
        typed = helper.make_tensor(name, onnx_type, arr.shape, arr.flatten().tolist(), raw=False)
        assert not typed.raw_data, name
        if dtype == np.float16:
            # float16 in int32_data is the bit pattern of each value.
            assert list(typed.int32_data) == arr.view(np.uint16).flatten().tolist()
        save(typed, TENSORS, f"{name}_typed.pb")
    save(numpy_helper.from_array(np.array(2.5, np.float32), "s"), TENSORS, "scalar.pb")
    x = (BASE * 0.5).astype(np.float32)
    y = np.arange(4, dtype=np.int64)
    np.savez(os.path.join(TENSORS, "both.npz"), x=x, y=y)
    np.savez_compressed(os.path.join(TENSORS, "both_compressed.npz"), x=x, y=y)
    bf16 = helper.make_tensor("b", TensorProto.BFLOAT16, [2], [1.0, 2.0])
    save(bf16, TENSORS, "bfloat16.pb")
    save(helper.make_tensor("s", TensorProto.STRING, [1], [b"hi"]), TENSORS, "string.pb")
    ext = numpy_helper.from_array(x, "x")
    ext.ClearField("raw_data")
    ext.data_location = TensorProto.EXTERNAL
    entry = ext.external_data.add()
    entry.key, entry.value = "location", "x.bin"
    save(ext, TENSORS, "external.pb")


def testdata():
    model = os.path.join("models", "onnx", "linear.onnx")
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(13)
    for folder, sets, wrong in [("linear", 2, False), ("linear_wrong", 1, True)]:
        for k in range(sets):
            d = os.path.join(TESTDATA, folder, f"test_data_set_{k}")
            os.makedirs(d, exist_ok=True)
            x = rng.standard_normal((2, 10)).astype(np.float32)
            (y,) = session.run(None, {"x": x})
            if wrong:
                y = y.copy()
                y.flat[1] += 0.5
            save(numpy_helper.from_array(x, "x"), d, "input_0.pb")
            save(numpy_helper.from_array(y, "y"), d, "output_0.pb")


if __name__ == "__main__":
    tensors()
    testdata()
