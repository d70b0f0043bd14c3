"""The parent-worker wire protocol of `bench`, for workers written in Python.

The Rust side (`harness/pool/protocol.rs`) defines the messages and encodes them with `postcard`; this
module is a small, strict codec for exactly those types, so a Python worker speaks the same
protocol as the Rust one: a little-endian `u32` payload length, then one postcard-encoded message.

postcard's wire format, as used here:

- `u8`: one byte. `u16`/`u32`/`u64`/`usize`: unsigned LEB128 varints. `i64`: zigzag, then a varint.
- `f64`: 8 bytes little-endian. `bool`: one byte, 0 or 1.
- `String`, `PathBuf`, byte strings and sequences: a varint length, then the items.
- `[u8; N]`: N bytes, no length. `Option<T>`: a 0 byte, or a 1 byte then `T`.
- enums: the variant's index as a varint, then its fields. structs: the fields in order.

Values in Python follow serde_json's shape of the same Rust values, so the two can be compared: a
struct is a dict of its fields; a unit variant is its name (`"Shutdown"`); a variant with data is a
one-key dict (`{"Index": 3}`, `{"Run": {"id": 1, ...}}`); byte strings are `bytes`-like. Variant
names are serde's: the enums that Rust renames (`Transfer`, `Runtime`, `ModelSource`, ...) are
lowercase here too (`"pipe"`, `"torch"`, `{"onnx": path}`).

Decoding is strict: overlong or out-of-range varints, a bool or option tag other than 0 or 1, an
unknown variant, invalid UTF-8 and trailing bytes are all errors. `tests`: the Rust test
`protocol::tests::python_codec_round_trips_every_message` encodes messages of every variant, has
this module decode and re-encode them (`python bench_protocol.py roundtrip`), and requires identical
bytes and identical values, so the two sides cannot drift apart. The fast paths of the two
per-request messages (`decode_run`, `frame_done`) are checked against the generic codec there too.
"""

from __future__ import annotations

import json
import struct
import sys

MAGIC = b"BNCH"
# Must equal PROTOCOL_VERSION in harness/pool/protocol.rs (the round-trip test checks it).
PROTOCOL_VERSION = 8
# Frames larger than this are refused rather than allocated (1 GiB), as on the Rust side.
MAX_FRAME = 1 << 30


class ProtocolError(Exception):
    """An undecodable or unencodable message."""


# --- Schema -------------------------------------------------------------------------------------
# A type is one of: "u8", "u32", "u64", "usize", "i64", "f64", "bool", "str", "bytes",
# ("array", n) for [u8; n], ("vec", T), ("opt", T), ("struct", [(field, T), ...]),
# ("enum", [(variant, None | T | ("fields", [(field, T), ...])), ...]) or the name of a type below.

_DTYPE = ("enum", [(n, None) for n in
                   ["F32", "F64", "F16", "I8", "I16", "I32", "I64", "U8", "U16", "U32", "U64", "Bool",
                    "BF16", "F8E4M3FN", "F8E4M3FNUZ", "F8E5M2", "F8E5M2FNUZ", "Str"]])

TYPES: dict = {
    "DType": _DTYPE,
    "TensorData": ("struct", [("dtype", "DType"), ("shape", ("vec", "i64")), ("bytes", "bytes")]),
    "TensorPlacement": ("struct", [("dtype", "DType"), ("shape", ("vec", "i64")), ("offset", "u64"),
                                   ("len", "u64")]),
    "ShmLayout": ("struct", [("slots", "u64"), ("input_bytes", "u64"), ("output_bytes", "u64")]),
    "Generator": ("enum", [
        ("Uniform", ("fields", [("low", "f64"), ("high", "f64")])),
        ("Normal", ("fields", [("mean", "f64"), ("std", "f64")])),
        ("Int", ("fields", [("low", "i64"), ("high", "i64")])),
        ("Const", ("fields", [("value", "f64")])),
        ("File", ("fields", [("path", "str")])),
        ("Files", ("fields", [("paths", ("vec", "str"))])),
        ("Strings", ("fields", [("values", ("vec", "str"))])),
    ]),
    "InputSpec": ("struct", [("name", "str"), ("dtype", "DType"), ("shape", ("vec", "i64")),
                             ("generator", "Generator"), ("seed", "u64")]),
    "Stall": ("struct", [("after_ns", "u64"), ("pause_ns", "u64")]),
    "SyntheticSpec": ("struct", [
        ("distribution", ("enum", [("fixed", None), ("exponential", None)])),
        ("mean_ns", "u64"),
        ("per_sample_ns", "u64"),
        ("wait", ("enum", [("spin", None), ("sleep", None)])),
        ("stall", ("opt", "Stall")),
        ("hang_after_ns", ("opt", "u64")),
    ]),
    "ModelSource": ("enum", [("onnx", "str"), ("synthetic", "SyntheticSpec")]),
    "TorchSpec": ("struct", [("module", "str"), ("weights", ("opt", "str")),
                             ("init_seed", ("opt", "u64")), ("python_path", ("vec", "str"))]),
    "SetupModel": ("struct", [("name", "str"), ("source", "ModelSource"),
                              ("inputs", ("vec", "InputSpec")), ("samples", "u32"),
                              ("torch", ("opt", "TorchSpec")),
                              ("data", ("vec", ("vec", "TensorData")))]),
    "OnDemandCaps": ("struct", [("max_models", ("opt", "usize")),
                                ("memory_budget_bytes", ("opt", "u64"))]),
    "Runtime": ("enum", [("ort", None), ("torch", None), ("tract", None)]),
    "Setup": ("struct", [
        ("worker", "u32"),
        ("ort_lib", "str"),
        ("runtime", "Runtime"),
        ("intra_threads", "u32"),
        ("provider", ("enum", [("cpu", None), ("cuda", None)])),
        ("transfer", ("enum", [("pipe", None), ("shm", None), ("index", None), ("device", None)])),
        ("models", ("vec", "SetupModel")),
        ("preload", ("vec", "u32")),
        ("on_demand", ("opt", "OnDemandCaps")),
        ("shm", ("opt", "ShmLayout")),
        ("pin_cpu", ("opt", "u32")),
        ("gpu", ("opt", "GpuSetup")),
        # ONNX Runtime's session options as (name, value) text pairs: a new knob changes nothing
        # here (the torch worker has no such options and ignores them).
        ("session", ("vec", "KnobSetting")),
        ("worker_concurrency", "u32"),
        ("channel", ("enum", [("socket", None), ("spin", None)])),
        ("spin_max_ns", "u64"),
    ]),
    "KnobSetting": ("struct", [("name", "str"), ("value", "str")]),
    "GpuSetup": ("struct", [
        ("device", "u32"),
        ("conv_algo_search", ("enum", [("exhaustive", None), ("heuristic", None), ("default", None)])),
        ("arena_extend_strategy", ("enum", [("next_power_of_two", None), ("same_as_requested", None)])),
        ("gpu_mem_limit_bytes", ("opt", "u64")),
    ]),
    "Inputs": ("enum", [
        ("Inline", ("vec", "TensorData")),
        ("Shm", ("fields", [("slot", "u32"), ("tensors", ("vec", "TensorPlacement"))])),
        ("Index", "u32"),
        ("Batch", ("fields", [("samples", ("vec", "u32")),
                              ("axes", ("vec", ("struct", [("input", "u32"), ("axis", "u32")])))])),
    ]),
    "Outputs": ("enum", [("Inline", ("vec", "TensorData")), ("Shm", ("vec", "TensorPlacement"))]),
    "Hello": ("struct", [("magic", ("array", 4)), ("protocol", "u32"), ("build", "str"),
                         ("pid", "u32")]),
    "ModelLoad": ("struct", [("model", "str"), ("load_ns", "u64"), ("rss_bytes", "u64")]),
    # A finished run: written as its fields after `Done`'s id (the bytes `frame_done` writes).
    "Finished": ("struct", [("compute_ns", "u64"), ("first", "bool"),
                            ("cold_load_ns", ("opt", "u64")), ("evicted", ("vec", "u32")),
                            ("outputs", "Outputs")]),
    "ToWorker": ("enum", [
        ("Setup", "Setup"),
        ("Run", ("fields", [("id", "u64"), ("model", "u32"), ("inputs", "Inputs")])),
        ("Shutdown", None),
    ]),
    "FromWorker": ("enum", [
        ("Hello", "Hello"),
        ("Ready", ("fields", [("loads", ("vec", "ModelLoad")), ("rss_bytes", "u64"),
                              ("runtime", "str")])),
        ("SetupFailed", ("fields", [("model", ("opt", "str")), ("message", "str")])),
        ("Done", ("fields", [("id", "u64"), ("run", "Finished")])),
        ("Failed", ("fields", [("id", "u64"), ("message", "str")])),
        ("Bye", ("fields", [("rss_bytes", "u64"), ("served", "u64")])),
    ]),
}

_BITS = {"u8": 8, "u32": 32, "u64": 64, "usize": 64}

# --- Decoding -----------------------------------------------------------------------------------


def _varint(buf, pos: int, bits: int):
    """An unsigned LEB128 varint of at most `bits` bits, in canonical (shortest) form."""
    if pos < len(buf) and buf[pos] < 0x80:  # one byte: always canonical, fits every type
        return buf[pos], pos + 1
    value = 0
    shift = 0
    max_len = (bits + 6) // 7
    for i in range(max_len):
        if pos >= len(buf):
            raise ProtocolError("message ends inside a varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            if i > 0 and b == 0:
                raise ProtocolError("overlong varint")
            if value >> bits:
                raise ProtocolError(f"varint {value} does not fit in {bits} bits")
            return value, pos
        shift += 7
    raise ProtocolError(f"varint longer than {max_len} bytes")


def _take(buf, pos: int, n: int):
    end = pos + n
    if end > len(buf):
        raise ProtocolError(f"message ends early: needs {n} more bytes at offset {pos}")
    return buf[pos:end], end


def _compile_decoder(t):
    if isinstance(t, str) and t in TYPES:
        name = t
        # Late binding: types may refer to each other in any order.
        return lambda buf, pos: _DECODERS[name](buf, pos)
    if isinstance(t, str) and t in _BITS:
        bits = _BITS[t]
        if t == "u8":
            def dec_u8(buf, pos):
                if pos >= len(buf):
                    raise ProtocolError("message ends inside a u8")
                return buf[pos], pos + 1
            return dec_u8
        return lambda buf, pos: _varint(buf, pos, bits)
    if t == "i64":
        def dec_i64(buf, pos):
            z, pos = _varint(buf, pos, 64)
            return (z >> 1) ^ -(z & 1), pos
        return dec_i64
    if t == "f64":
        def dec_f64(buf, pos):
            raw, pos = _take(buf, pos, 8)
            return struct.unpack("<d", raw)[0], pos
        return dec_f64
    if t == "bool":
        def dec_bool(buf, pos):
            if pos >= len(buf):
                raise ProtocolError("message ends inside a bool")
            b = buf[pos]
            if b > 1:
                raise ProtocolError(f"bool byte {b} is neither 0 nor 1")
            return b == 1, pos + 1
        return dec_bool
    if t == "str":
        def dec_str(buf, pos):
            n, pos = _varint(buf, pos, 64)
            raw, pos = _take(buf, pos, n)
            try:
                return bytes(raw).decode("utf-8"), pos
            except UnicodeDecodeError as e:
                raise ProtocolError(f"invalid UTF-8 in a string: {e}") from None
        return dec_str
    if t == "bytes":
        def dec_bytes(buf, pos):
            n, pos = _varint(buf, pos, 64)
            return _take(buf, pos, n)
        return dec_bytes
    kind = t[0]
    if kind == "array":
        n = t[1]
        return lambda buf, pos: _take(buf, pos, n)
    if kind == "vec":
        item = _compile_decoder(t[1])

        def dec_vec(buf, pos):
            n, pos = _varint(buf, pos, 64)
            if n > len(buf) - pos:  # every item takes at least one byte
                raise ProtocolError(f"sequence of {n} items in {len(buf) - pos} bytes")
            out = []
            for _ in range(n):
                v, pos = item(buf, pos)
                out.append(v)
            return out, pos
        return dec_vec
    if kind == "opt":
        inner = _compile_decoder(t[1])

        def dec_opt(buf, pos):
            if pos >= len(buf):
                raise ProtocolError("message ends inside an option")
            tag = buf[pos]
            if tag == 0:
                return None, pos + 1
            if tag == 1:
                return inner(buf, pos + 1)
            raise ProtocolError(f"option tag {tag} is neither 0 nor 1")
        return dec_opt
    if kind == "struct":
        return _compile_fields_decoder(t[1])
    if kind == "enum":
        variants = []
        for vname, payload in t[1]:
            if payload is None:
                variants.append((vname, None))
            elif isinstance(payload, tuple) and payload[0] == "fields":
                variants.append((vname, _compile_fields_decoder(payload[1])))
            else:
                variants.append((vname, _compile_decoder(payload)))
        count = len(variants)

        def dec_enum(buf, pos):
            index, pos = _varint(buf, pos, 32)
            if index >= count:
                raise ProtocolError(f"unknown variant {index} (the type has {count})")
            vname, dec = variants[index]
            if dec is None:
                return vname, pos
            v, pos = dec(buf, pos)
            return {vname: v}, pos
        return dec_enum
    raise ValueError(f"unknown schema type {t!r}")


def _compile_fields_decoder(fields):
    decs = [(f, _compile_decoder(ft)) for f, ft in fields]

    def dec_struct(buf, pos):
        out = {}
        for f, dec in decs:
            out[f], pos = dec(buf, pos)
        return out, pos
    return dec_struct


# --- Encoding -----------------------------------------------------------------------------------


def _put_varint(out: bytearray, value, bits: int) -> None:
    if type(value) is int and 0 <= value < 0x80:  # one byte
        out.append(value)
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 0 or value >> bits:
        raise ProtocolError(f"{value!r} is not a u{bits}")
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _compile_encoder(t):
    if isinstance(t, str) and t in TYPES:
        name = t
        return lambda out, v: _ENCODERS[name](out, v)
    if isinstance(t, str) and t in _BITS:
        bits = _BITS[t]
        return lambda out, v: _put_varint(out, v, bits)
    if t == "i64":
        def enc_i64(out, v):
            if not isinstance(v, int) or isinstance(v, bool) or not -(1 << 63) <= v < (1 << 63):
                raise ProtocolError(f"{v!r} is not an i64")
            _put_varint(out, ((v << 1) ^ (v >> 63)) & ((1 << 64) - 1), 64)
        return enc_i64
    if t == "f64":
        def enc_f64(out, v):
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                raise ProtocolError(f"{v!r} is not an f64")
            out += struct.pack("<d", v)
        return enc_f64
    if t == "bool":
        def enc_bool(out, v):
            if not isinstance(v, bool):
                raise ProtocolError(f"{v!r} is not a bool")
            out.append(1 if v else 0)
        return enc_bool
    if t == "str":
        def enc_str(out, v):
            if not isinstance(v, str):
                raise ProtocolError(f"{v!r} is not a string")
            raw = v.encode("utf-8")
            _put_varint(out, len(raw), 64)
            out += raw
        return enc_str
    if t == "bytes":
        def enc_bytes(out, v):
            mv = memoryview(v).cast("B")
            _put_varint(out, mv.nbytes, 64)
            out += mv
        return enc_bytes
    kind = t[0]
    if kind == "array":
        n = t[1]

        def enc_array(out, v):
            mv = memoryview(v).cast("B")
            if mv.nbytes != n:
                raise ProtocolError(f"expected {n} bytes, got {mv.nbytes}")
            out += mv
        return enc_array
    if kind == "vec":
        item = _compile_encoder(t[1])

        def enc_vec(out, v):
            if not isinstance(v, (list, tuple)):
                raise ProtocolError(f"{type(v).__name__} is not a list")
            _put_varint(out, len(v), 64)
            for x in v:
                item(out, x)
        return enc_vec
    if kind == "opt":
        inner = _compile_encoder(t[1])

        def enc_opt(out, v):
            if v is None:
                out.append(0)
            else:
                out.append(1)
                inner(out, v)
        return enc_opt
    if kind == "struct":
        return _compile_fields_encoder(t[1])
    if kind == "enum":
        variants = {}
        for index, (vname, payload) in enumerate(t[1]):
            if payload is None:
                variants[vname] = (index, None)
            elif isinstance(payload, tuple) and payload[0] == "fields":
                variants[vname] = (index, _compile_fields_encoder(payload[1]))
            else:
                variants[vname] = (index, _compile_encoder(payload))

        def enc_enum(out, v):
            if isinstance(v, str):
                vname, data = v, None
            elif isinstance(v, dict) and len(v) == 1:
                (vname, data), = v.items()
            else:
                raise ProtocolError(f"{v!r} is not a variant")
            if vname not in variants:
                raise ProtocolError(f"unknown variant {vname!r}")
            index, enc = variants[vname]
            if (enc is None) != isinstance(v, str):
                raise ProtocolError(f"variant {vname!r} given the wrong shape: {v!r}")
            _put_varint(out, index, 32)
            if enc is not None:
                enc(out, data)
        return enc_enum
    raise ValueError(f"unknown schema type {t!r}")


def _compile_fields_encoder(fields):
    encs = [(f, _compile_encoder(ft)) for f, ft in fields]
    names = {f for f, _ in fields}

    def enc_struct(out, v):
        if not isinstance(v, dict) or set(v) != names:
            got = sorted(v) if isinstance(v, dict) else type(v).__name__
            raise ProtocolError(f"expected fields {sorted(names)}, got {got}")
        for f, enc in encs:
            enc(out, v[f])
    return enc_struct


_DECODERS = {name: _compile_decoder(t) for name, t in TYPES.items()}
_ENCODERS = {name: _compile_encoder(t) for name, t in TYPES.items()}


def decode(type_name: str, payload):
    """Decodes one whole payload as `type_name`; trailing bytes are an error. Byte strings in the
    value are views into `payload` (writable when it is a bytearray), not copies."""
    payload = memoryview(payload).cast("B")
    value, pos = _DECODERS[type_name](payload, 0)
    if pos != len(payload):
        raise ProtocolError(f"{len(payload) - pos} trailing byte(s) after a {type_name}")
    return value


def encode(type_name: str, value) -> bytearray:
    """Encodes `value` as `type_name` (the payload only, no length prefix)."""
    out = bytearray()
    _ENCODERS[type_name](out, value)
    return out


def frame(type_name: str, value) -> bytearray:
    """Encodes `value` as one frame: a little-endian u32 length, then the payload."""
    out = bytearray(4)
    _ENCODERS[type_name](out, value)
    n = len(out) - 4
    if n > MAX_FRAME:
        raise ProtocolError(f"frame of {n} bytes exceeds the {MAX_FRAME}-byte limit")
    out[:4] = n.to_bytes(4, "little")
    return out


def _read_exact(f, n: int) -> bytearray:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = f.readinto(view[got:])
        if not k:
            break
        got += k
    return buf if got == n else buf[:got]


def read_frame(f):
    """Reads one frame's payload from a binary file object: a (writable) bytearray, or None at a
    clean end of stream. A truncated frame is an error."""
    header = _read_exact(f, 4)
    if not header:
        return None
    if len(header) < 4:
        raise ProtocolError(f"truncated frame: expected 4 bytes, got {len(header)}")
    n = int.from_bytes(header, "little")
    if n > MAX_FRAME:
        raise ProtocolError(f"frame of {n} bytes exceeds the {MAX_FRAME}-byte limit")
    payload = _read_exact(f, n)
    if len(payload) < n:
        raise ProtocolError(f"truncated frame: expected {n} bytes, got {len(payload)}")
    return payload


# --- Fast paths for the two messages of every request --------------------------------------------
# A Python worker decodes one `Run` and encodes one `Done` per request; the generic codec above costs
# tens of microseconds for each, which would count against the runtime being measured. These two
# functions do the same for exactly those messages; `roundtrip` checks them against the generic codec
# on every message the Rust test sends, so they cannot drift either.

_DTYPE_NAMES = [name for name, _ in TYPES["DType"][1]]
_DTYPE_INDEX = {name: i for i, name in enumerate(_DTYPE_NAMES)}


def _zigzag(buf, pos):
    z, pos = _varint(buf, pos, 64)
    return (z >> 1) ^ -(z & 1), pos


def _shape(buf, pos):
    rank, pos = _varint(buf, pos, 64)
    if rank > len(buf) - pos:
        raise ProtocolError(f"shape of rank {rank} in {len(buf) - pos} bytes")
    shape = []
    for _ in range(rank):
        d, pos = _zigzag(buf, pos)
        shape.append(d)
    return shape, pos


def _dtype(buf, pos):
    d, pos = _varint(buf, pos, 32)
    if d >= len(_DTYPE_NAMES):
        raise ProtocolError(f"unknown variant {d} (the type has {len(_DTYPE_NAMES)})")
    return _DTYPE_NAMES[d], pos


def decode_run(payload):
    """Decodes a `ToWorker::Run` payload as `(id, model, inputs)`, where `inputs` is
    `("inline", [(dtype, shape, bytes_view), ...])`, `("shm", slot, [(dtype, shape, offset, len),
    ...])` or `("index", k)`. Returns None when the payload is another message (use `decode`)."""
    buf = memoryview(payload).cast("B")
    if len(buf) == 0 or buf[0] != 1:
        return None
    id_, pos = _varint(buf, 1, 64)
    model, pos = _varint(buf, pos, 32)
    kind, pos = _varint(buf, pos, 32)
    if kind == 0:
        n, pos = _varint(buf, pos, 64)
        if n > len(buf) - pos:
            raise ProtocolError(f"sequence of {n} items in {len(buf) - pos} bytes")
        tensors = []
        for _ in range(n):
            dtype, pos = _dtype(buf, pos)
            shape, pos = _shape(buf, pos)
            length, pos = _varint(buf, pos, 64)
            data, pos = _take(buf, pos, length)
            tensors.append((dtype, shape, data))
        inputs = ("inline", tensors)
    elif kind == 1:
        slot, pos = _varint(buf, pos, 32)
        n, pos = _varint(buf, pos, 64)
        if n > len(buf) - pos:
            raise ProtocolError(f"sequence of {n} items in {len(buf) - pos} bytes")
        placements = []
        for _ in range(n):
            dtype, pos = _dtype(buf, pos)
            shape, pos = _shape(buf, pos)
            offset, pos = _varint(buf, pos, 64)
            length, pos = _varint(buf, pos, 64)
            placements.append((dtype, shape, offset, length))
        inputs = ("shm", slot, placements)
    elif kind == 2:
        k, pos = _varint(buf, pos, 32)
        inputs = ("index", k)
    else:
        raise ProtocolError(f"unknown variant {kind} (the type has 3)")
    if pos != len(buf):
        raise ProtocolError(f"{len(buf) - pos} trailing byte(s) after a ToWorker")
    return id_, model, inputs


def _put_zigzag(out, v):
    if not isinstance(v, int) or not -(1 << 63) <= v < (1 << 63):
        raise ProtocolError(f"{v!r} is not an i64")
    _put_varint(out, ((v << 1) ^ (v >> 63)) & ((1 << 64) - 1), 64)


def frame_done(id_, compute_ns, first, cold_load_ns, evicted, outputs) -> bytearray:
    """One frame of `FromWorker::Done`. `outputs` is `("inline", [(dtype, shape, bytes_like), ...])`
    or `("shm", [(dtype, shape, offset, len), ...])`."""
    out = bytearray(4)
    out.append(3)  # FromWorker::Done
    _put_varint(out, id_, 64)
    _put_varint(out, compute_ns, 64)
    out.append(1 if first else 0)
    if cold_load_ns is None:
        out.append(0)
    else:
        out.append(1)
        _put_varint(out, cold_load_ns, 64)
    _put_varint(out, len(evicted), 64)
    for e in evicted:
        _put_varint(out, e, 32)
    kind, tensors = outputs
    out.append(0 if kind == "inline" else 1)
    _put_varint(out, len(tensors), 64)
    for t in tensors:
        out.append(_DTYPE_INDEX[t[0]])
        _put_varint(out, len(t[1]), 64)
        for d in t[1]:
            _put_zigzag(out, d)
        if kind == "inline":
            mv = memoryview(t[2]).cast("B")
            _put_varint(out, mv.nbytes, 64)
            out += mv
        else:
            _put_varint(out, t[2], 64)
            _put_varint(out, t[3], 64)
    n = len(out) - 4
    if n > MAX_FRAME:
        raise ProtocolError(f"frame of {n} bytes exceeds the {MAX_FRAME}-byte limit")
    out[:4] = n.to_bytes(4, "little")
    return out


def _check_fast_paths(type_name: str, payload: bytes, value) -> None:
    """Raises unless the fast paths agree with the generic codec on this message."""
    if type_name == "ToWorker" and isinstance(value, dict) and "Run" in value:
        run = value["Run"]
        id_, model, inputs = decode_run(payload)
        if "Inline" in run["inputs"]:
            want = ("inline", [(t["dtype"], t["shape"], bytes(t["bytes"]))
                               for t in run["inputs"]["Inline"]])
            inputs = (inputs[0], [(d, s, bytes(b)) for d, s, b in inputs[1]])
        elif "Shm" in run["inputs"]:
            shm = run["inputs"]["Shm"]
            want = ("shm", shm["slot"], [(p["dtype"], p["shape"], p["offset"], p["len"])
                                         for p in shm["tensors"]])
        else:
            want = ("index", run["inputs"]["Index"])
        if (id_, model, inputs) != (run["id"], run["model"], want):
            raise ProtocolError("decode_run disagrees with decode")
    elif type_name == "ToWorker" and decode_run(payload) is not None:
        raise ProtocolError("decode_run accepted another message")
    if type_name == "FromWorker" and isinstance(value, dict) and "Done" in value:
        d = value["Done"]
        run = d["run"]
        outs = run["outputs"]
        if "Inline" in outs:
            outputs = ("inline", [(t["dtype"], t["shape"], t["bytes"]) for t in outs["Inline"]])
        else:
            outputs = ("shm", [(p["dtype"], p["shape"], p["offset"], p["len"]) for p in outs["Shm"]])
        fast = frame_done(d["id"], run["compute_ns"], run["first"], run["cold_load_ns"],
                          run["evicted"], outputs)
        if bytes(fast[4:]) != bytes(payload):
            raise ProtocolError("frame_done disagrees with encode")


def to_json(value):
    """The value as serde_json writes the Rust one (byte strings become lists of numbers), with
    every float as its bits (`"f64:BITS"`) so the two sides compare exactly."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return list(bytes(value))
    if isinstance(value, float):
        return "f64:%d" % struct.unpack("<Q", struct.pack("<d", value))[0]
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    return value


def _roundtrip() -> int:
    """For the Rust test: reads `TYPE HEX` lines, prints `HEX<TAB>JSON` of the re-encoded bytes
    and the decoded value; the first line out is the protocol version."""
    print(f"protocol {PROTOCOL_VERSION}")
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        type_name, hex_payload = line.split(" ", 1)
        try:
            payload = bytes.fromhex(hex_payload)
            value = decode(type_name, payload)
            _check_fast_paths(type_name, payload, value)
            print(encode(type_name, value).hex() + "\t" + json.dumps(to_json(value)))
        except ProtocolError as e:
            print(f"error\t{e}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["roundtrip"]:
        sys.exit(_roundtrip())
    print("usage: bench_protocol.py roundtrip  (reads `TYPE HEX` lines)", file=sys.stderr)
    sys.exit(2)
