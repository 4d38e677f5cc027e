"""fixture_common.py — helpers shared by make_hf_fixtures.py and make_quant_fixtures.py.

Everything here needs only numpy (no torch), so it can be checked on a machine without a GPU:
  /usr/bin/python3 tools/fixture_common.py --self-test

  * a safetensors writer (the format is small: an 8-byte little-endian header length, a JSON
    header, the raw tensor bytes), so that U32 and BF16 tensors and the {"format": "mlx"}
    metadata are written exactly as MLX writes them, without relying on a library's dtype list;
  * float16 / bfloat16 rounding in numpy (round to nearest even, as torch and MLX cast);
  * MLX's affine quantization and bit packing, transcribed from MLX's own source (see below);
  * an independent unpacker transcribed from MLX's dequantization code, to check the packer.
"""

import json
import struct
import sys

import numpy as np

# ---------------------------------------------------------------------------------------------
# safetensors


def write_safetensors(path, tensors, metadata=None):
    """tensors: dict name -> (dtype string "F32"/"F16"/"BF16"/"U32", shape list, raw LE bytes)."""
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    names = sorted(tensors)
    for name in names:
        dtype, shape, data = tensors[name]
        size = {"F32": 4, "F16": 2, "BF16": 2, "U32": 4, "I32": 4, "U8": 1}[dtype]
        count = 1
        for d in shape:
            count *= d
        if count * size != len(data):
            raise ValueError(f"{name}: {len(data)} bytes for shape {shape} of {dtype}")
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # the reference writer pads the header to 8 bytes
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for name in names:
            f.write(tensors[name][2])


def read_safetensors(path):
    """Returns (header dict, raw bytes of the data section)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        return header, f.read()


# ---------------------------------------------------------------------------------------------
# reduced-precision floats in numpy


def round_to_bf16(x):
    """float32 array -> float32 array holding the nearest bfloat16 values (ties to even)."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
    return u.astype(np.uint32).view(np.float32)


def bf16_bytes(x):
    """float32 array already rounded to bf16 -> little-endian bf16 bytes."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    return (u >> 16).astype("<u2").tobytes()


def round_to(x, dtype):
    if dtype == "float16":
        return np.asarray(x, np.float32).astype(np.float16).astype(np.float32)
    if dtype == "bfloat16":
        return round_to_bf16(x)
    if dtype == "float32":
        return np.asarray(x, np.float32)
    raise ValueError(dtype)


def float_tensor(x, dtype):
    """(safetensors dtype, shape, bytes) of x (already representable in dtype)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if dtype == "float16":
        return ("F16", list(x.shape), x.astype("<f2").tobytes())
    if dtype == "bfloat16":
        return ("BF16", list(x.shape), bf16_bytes(x))
    return ("F32", list(x.shape), x.astype("<f4").tobytes())


# ---------------------------------------------------------------------------------------------
# MLX affine quantization
#
# Transcribed from ml-explore/mlx, mlx/backend/cpu/quantized.cpp, template function
# `quantize<T, U>(w, out, scales, biases, bits, group_size, w_size)` (reached from
# `fast::Quantize::eval_cpu`); the Metal kernel `affine_quantize` in
# mlx/backend/metal/kernels/quantized.h and the older generic fallback `affine_quantize` /
# `pack_and_quantize` in mlx/ops.cpp compute the same scale and bias. Per group, in float32:
#
#     n_bins = 2^bits - 1,  eps = 1e-7
#     mask  = |w_min| > |w_max|
#     scale = max((w_max - w_min) / n_bins, eps);  scale = mask ? scale : -scale
#     edge  = mask ? w_min : w_max
#     q0    = rint(edge / scale)
#     if q0 != 0: scale = edge / q0; bias = edge   else: bias = 0
#     q     = clamp(rint((w - bias) / scale), 0, n_bins)
#     (the rescaling puts 0.0 exactly on the grid, at code -q0; the far end may be clamped)
#     stored: scales = T(scale), biases = T(bias)  (T = the weight's dtype, f16/bf16/f32)
#
# So the end of larger magnitude is exact (it has code 0 and equals the bias), and the scale is
# negative when that end is w_max: readers must not assume positive scales. The codes are
# computed with the float32 scale/bias, before they are rounded to T.
#
# Packing (same file): `get_pack_factor(bits, 32)` is 32/bits for 2, 4, 8 and 8 for 3 and 5,
# 4 for 6; `get_bytes_per_pack(bits)` is 4 for powers of two (written as one uint32), 3 for 3
# and 6 bits, 5 for 5 bits. Each pack of codes is OR-ed into one integer as
# `code_k << (k * bits)` and written out least significant byte first. A pack of 8 3-bit,
# 4 6-bit or 8 5-bit codes fills its 3 or 5 bytes exactly, so a row is one little-endian bit
# stream: code i occupies bits [i*bits, (i+1)*bits) of the row, and 3-, 5- and 6-bit codes
# straddle uint32 word (and byte) boundaries. The U32 tensor is this byte stream read as
# little-endian uint32 words, shape [out, in * bits / 32]. The dequantizer is `extract_bits`
# in the same file (and `affine_dequantize` in the Metal kernels), transcribed below as
# unpack_codes_mlx() to check pack_codes() independently.

SUPPORTED_BITS = (2, 3, 4, 5, 6, 8)
SUPPORTED_GROUPS = (32, 64, 128)


def mlx_affine_quantize(w, group_size, bits, dtype):
    """w: float32 [rows, cols] (values already representable in dtype).
    Returns codes uint32 [rows, cols], scales and biases float32 [rows, cols/group] holding
    values representable in dtype (as MLX stores them)."""
    if bits not in SUPPORTED_BITS or group_size not in SUPPORTED_GROUPS:
        raise ValueError(f"unsupported bits {bits} / group size {group_size}")
    w = np.asarray(w, dtype=np.float32)
    rows, cols = w.shape
    if cols % group_size:
        raise ValueError(f"{cols} columns are not a multiple of group size {group_size}")
    g = w.reshape(rows, cols // group_size, group_size)
    n_bins = np.float32((1 << bits) - 1)
    eps = np.float32(1e-7)
    w_max = g.max(axis=-1)
    w_min = g.min(axis=-1)
    mask = np.abs(w_min) > np.abs(w_max)
    scale = np.maximum((w_max - w_min) / n_bins, eps).astype(np.float32)
    scale = np.where(mask, scale, -scale).astype(np.float32)
    edge = np.where(mask, w_min, w_max).astype(np.float32)
    q0 = np.rint(edge / scale).astype(np.float32)
    nz = q0 != 0
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(nz, edge / q0, scale).astype(np.float32)
    bias = np.where(nz, edge, np.float32(0)).astype(np.float32)
    q = np.rint((g - bias[..., None]) / scale[..., None]).astype(np.float32)
    q = np.minimum(np.maximum(q, np.float32(0)), n_bins)
    codes = q.astype(np.uint32).reshape(rows, cols)
    return codes, round_to(scale, dtype), round_to(bias, dtype)


def dequantize(codes, scales, biases, group_size):
    """w = scales * q + biases per group, in float32 (the product is exact: a 24-bit mantissa
    holds an f16/bf16 scale times a code of at most 8 bits; the sum rounds once)."""
    rows, cols = codes.shape
    q = codes.reshape(rows, cols // group_size, group_size).astype(np.float32)
    w = q * scales[..., None].astype(np.float32) + biases[..., None].astype(np.float32)
    return w.reshape(rows, cols).astype(np.float32)


def pack_codes(codes, bits):
    """codes uint [rows, cols] -> uint32 [rows, cols*bits/32]: each row a little-endian bit
    stream of bits-wide codes (code i at bit i*bits)."""
    codes = np.asarray(codes, dtype=np.uint64)
    rows, cols = codes.shape
    if (cols * bits) % 32:
        raise ValueError("row length in bits is not a multiple of 32")
    if codes.max(initial=0) >= (1 << bits):
        raise ValueError("code out of range")
    words = np.zeros((rows, cols * bits // 32), dtype=np.uint64)
    pos = np.arange(cols, dtype=np.uint64) * np.uint64(bits)
    word = (pos // np.uint64(32)).astype(np.int64)
    shift = pos % np.uint64(32)
    lo = (codes << shift[None, :]) & np.uint64(0xFFFFFFFF)
    np.add.at(words, (slice(None), word), lo)  # bit ranges never overlap, so + is |
    spill = (shift + np.uint64(bits)) > np.uint64(32)
    if spill.any():
        idx = np.nonzero(spill)[0]
        hi = codes[:, idx] >> (np.uint64(32) - shift[idx])[None, :]
        np.add.at(words, (slice(None), word[idx] + 1), hi)
    return words.astype(np.uint32)


def unpack_codes_mlx(packed, bits, cols):
    """Independent unpacker: the formulas of `extract_bits` (3, 5, 6 bits, on bytes) and of the
    shift-and-mask loop (2, 4, 8 bits, on uint32 words) in mlx/backend/cpu/quantized.cpp."""
    packed = np.ascontiguousarray(packed, dtype="<u4")
    rows = packed.shape[0]
    out = np.zeros((rows, cols), dtype=np.uint32)
    if bits in (2, 4, 8):
        per = 32 // bits
        for k in range(per):
            out[:, k::per] = (packed >> np.uint32(k * bits)) & np.uint32((1 << bits) - 1)
        return out
    b = packed.view(np.uint8).reshape(rows, -1).astype(np.uint32)
    if bits == 3:
        w = [b[:, i::3] for i in range(3)]
        vals = [
            w[0] & 0x7,
            (w[0] & 0x38) >> 3,
            ((w[0] & 0xC0) >> 6) + ((w[1] & 0x1) << 2),
            (w[1] & 0xE) >> 1,
            (w[1] & 0x70) >> 4,
            ((w[1] & 0x80) >> 7) + ((w[2] & 0x3) << 1),
            (w[2] & 0x1C) >> 2,
            (w[2] & 0xE0) >> 5,
        ]
    elif bits == 5:
        w = [b[:, i::5] for i in range(5)]
        vals = [
            w[0] & 0x1F,
            ((w[0] & 0xE0) >> 5) + ((w[1] & 0x3) << 3),
            (w[1] & 0x7C) >> 2,
            ((w[1] & 0x80) >> 7) + ((w[2] & 0xF) << 1),
            ((w[2] & 0xF0) >> 4) + ((w[3] & 0x1) << 4),
            (w[3] & 0x3E) >> 1,
            ((w[3] & 0xC0) >> 6) + ((w[4] & 0x7) << 2),
            (w[4] & 0xF8) >> 3,
        ]
    elif bits == 6:
        w = [b[:, i::3] for i in range(3)]
        vals = [
            w[0] & 0x3F,
            ((w[0] >> 6) & 0x03) + ((w[1] & 0x0F) << 2),
            ((w[1] >> 4) & 0x0F) + ((w[2] & 0x03) << 4),
            (w[2] >> 2) & 0x3F,
        ]
    else:
        raise ValueError(bits)
    per = len(vals)
    for k, v in enumerate(vals):
        out[:, k::per] = v
    return out


def quantize_and_pack(w, group_size, bits, dtype):
    """Returns (packed uint32, scales, biases, dequantized float32 weight) and checks the
    packing against the independent unpacker."""
    codes, scales, biases = mlx_affine_quantize(w, group_size, bits, dtype)
    packed = pack_codes(codes, bits)
    if not np.array_equal(unpack_codes_mlx(packed, bits, w.shape[1]), codes):
        raise AssertionError(f"packing of {bits}-bit codes disagrees with MLX's extract_bits")
    return packed, scales, biases, dequantize(codes, scales, biases, group_size)


# ---------------------------------------------------------------------------------------------
# self-test (numpy only)


def _self_test():
    rng = np.random.default_rng(0)
    # packing: hand-made streams
    for bits in SUPPORTED_BITS:
        cols = 32 * 4
        codes = rng.integers(0, 1 << bits, size=(3, cols)).astype(np.uint32)
        packed = pack_codes(codes, bits)
        assert packed.shape == (3, cols * bits // 32)
        assert np.array_equal(unpack_codes_mlx(packed, bits, cols), codes), bits
        # the stream read bit by bit, as a plain little-endian bit string
        raw = packed.astype("<u4").tobytes()
        row_bytes = cols * bits // 8
        for r in range(3):
            stream = int.from_bytes(raw[r * row_bytes : (r + 1) * row_bytes], "little")
            for i in range(cols):
                assert (stream >> (i * bits)) & ((1 << bits) - 1) == codes[r, i]
    # 3-bit: codes 0..7 in the first pack give the bytes of 0o76543210 little-endian
    c = np.zeros((1, 32), np.uint32)
    c[0, :8] = np.arange(8)
    p = pack_codes(c, 3).astype("<u4").tobytes()
    assert p[:3] == (0o76543210).to_bytes(3, "little"), p[:3]
    # quantization: the larger-magnitude end is exact, codes in range, error bounded
    for dtype in ("float16", "bfloat16"):
        for bits in SUPPORTED_BITS:
            for gs in SUPPORTED_GROUPS:
                w = round_to(rng.normal(0, 0.05, size=(8, 256)).astype(np.float32), dtype)
                packed, s, b, wd = quantize_and_pack(w, gs, bits, dtype)
                g = w.reshape(8, -1, gs)
                big = np.where(np.abs(g.min(-1)) > np.abs(g.max(-1)), g.min(-1), g.max(-1))
                assert np.allclose(b, round_to(big, dtype)), (dtype, bits, gs)
                err = np.abs(wd - w).reshape(8, -1, gs).max(-1)
                span = g.max(-1) - g.min(-1)
                # within one step (the rescaling that makes 0 exact can clamp the far end by
                # up to half a step more), plus the rounding of scale/bias to the dtype
                assert (err <= span / ((1 << bits) - 1) + 0.01 * span + 1e-6).all(), (
                    dtype,
                    bits,
                    gs,
                    float((err / span).max()),
                )
    # a worked example by hand: one group of 32, 2 bits
    w = np.zeros((1, 32), np.float32)
    w[0, 0], w[0, 1], w[0, 2] = -1.0, 0.5, 0.2
    codes, s, b = mlx_affine_quantize(w, 32, 2, "float32")
    # |min| > |max|: scale = 1.5/3 = 0.5, edge = -1, q0 = -2, scale = 0.5, bias = -1
    assert s[0, 0] == 0.5 and b[0, 0] == -1.0, (s, b)
    assert list(codes[0, :3]) == [0, 3, 2] and codes[0, 3] == 2  # 0.0 -> (0+1)/0.5 = 2
    w[0, 0], w[0, 1] = -0.5, 1.0  # now max wins: scale negative, code 0 is the max
    codes, s, b = mlx_affine_quantize(w, 32, 2, "float32")
    assert s[0, 0] == -0.5 and b[0, 0] == 1.0 and codes[0, 1] == 0 and codes[0, 0] == 3, (s, b, codes)
    # bf16 rounding: ties to even, like torch
    assert round_to_bf16(np.array([1 + 2**-8], np.float32))[0] == 1.0
    assert round_to_bf16(np.array([1 + 3 * 2**-8], np.float32))[0] == 1 + 2**-6
    # safetensors round trip
    import os
    import tempfile

    d = tempfile.mkdtemp()
    path = os.path.join(d, "t.safetensors")
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    write_safetensors(path, {"b": float_tensor(x, "bfloat16"), "a": ("U32", [2], b"\1\0\0\0\2\0\0\0")}, {"format": "mlx"})
    header, data = read_safetensors(path)
    assert header["__metadata__"] == {"format": "mlx"}
    assert header["a"] == {"dtype": "U32", "shape": [2], "data_offsets": [0, 8]}
    assert header["b"]["dtype"] == "BF16" and header["b"]["data_offsets"] == [8, 20]
    got = np.frombuffer(data[8:20], "<u2").astype(np.uint32) << 16
    assert np.array_equal(got.view(np.float32).reshape(2, 3), x)
    with open(path, "rb") as f:
        assert (8 + struct.unpack("<Q", f.read(8))[0]) % 8 == 0
    print("fixture_common self-test: ok")


if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        _self_test()
    else:
        print(__doc__)
