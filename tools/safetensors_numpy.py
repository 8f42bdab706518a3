"""The safetensors format read and written with numpy only (no safetensors package needed):
8 bytes little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets:
[begin, end]}, "__metadata__": {...}}, then the buffer the offsets point into. Shared by the
scripts in tools/, which are independent of dgqa's C++ reader and writer on purpose."""
import json
import struct

import numpy as np

NUMPY_TYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4"}


def read_safetensors(path):
    """name -> numpy array."""
    with open(path, "rb") as f:
        (header_size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_size))
        buffer = f.read()
    header.pop("__metadata__", None)
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        array = np.frombuffer(buffer[begin:end], dtype=NUMPY_TYPES[info["dtype"]])
        tensors[name] = array.reshape(info["shape"])
    return tensors


def write_safetensors(path, arrays, dtype):
    """Writes the float arrays as `dtype` ("F32" or "F16") and the integer arrays as I64, in the
    order given (the format does not require sorting), the JSON header padded with spaces to a
    multiple of 8."""
    assert dtype in ("F32", "F16"), dtype
    header, chunks, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, array in arrays.items():
        kind = "I64" if np.asarray(array).dtype.kind in "iu" else dtype
        data = np.ascontiguousarray(array, dtype=NUMPY_TYPES[kind]).tobytes()
        header[name] = {"dtype": kind, "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))
