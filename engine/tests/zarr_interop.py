"""zarr-python's side of tessera's Zarr interoperability test (engine/tests/zarr.rs).

    python zarr_interop.py write DIR   writes Zarr v2 and v3 stores (each dtype, zstd/gzip/blosc, v3
                                       also sharded), each NAME.zarr beside NAME.npy holding its values
    python zarr_interop.py check DIR   reads every NAME.zarr in DIR with zarr-python and compares it
                                       with NAME.npy bit for bit; prints "checked N" last

Values are compared as raw bits (NaN and -0.0 included), so "equal" means identical.
"""

import pathlib
import sys

import numcodecs
import numpy as np
import zarr
from zarr.codecs import BloscCodec, GzipCodec, ZstdCodec

SHAPE = (13, 9)
CHUNKS = (5, 4)
SHARDS = (10, 8)


def values(dtype, seed):
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return rng.random(SHAPE) < 0.4
    if dtype == "int64":
        return rng.integers(-(2**62), 2**62, size=SHAPE, dtype=np.int64)
    a = rng.standard_normal(SHAPE).astype(dtype)
    a[0, 0] = np.nan
    a[1, 1] = -0.0
    a[2, 2] = np.inf
    return a


def v3_compressor(name):
    return {
        "zstd": ZstdCodec(level=5),
        "gzip": GzipCodec(level=4),
        "blosc": BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"),
    }[name]


def v2_compressor(name):
    return {
        "zstd": numcodecs.Zstd(level=5),
        "gzip": numcodecs.GZip(level=4),
        "blosc": numcodecs.Blosc(cname="zstd", clevel=3, shuffle=numcodecs.Blosc.BITSHUFFLE),
    }[name]


def write(out):
    seed = 0
    for dtype in ["float64", "float32", "int64", "bool"]:
        for codec in ["zstd", "gzip", "blosc"]:
            for layout in ["v2", "v2be", "v3", "v3sharded"]:
                if layout == "v2be" and dtype in ("bool",):
                    continue
                seed += 1
                a = values(dtype, seed)
                name = f"{dtype}-{codec}-{layout}"
                path = str(out / f"{name}.zarr")
                if layout.startswith("v2"):
                    stored = a.dtype.newbyteorder(">") if layout == "v2be" else a.dtype
                    z = zarr.create_array(
                        store=path, shape=SHAPE, chunks=CHUNKS, dtype=stored,
                        compressors=v2_compressor(codec), zarr_format=2,
                    )
                else:
                    z = zarr.create_array(
                        store=path, shape=SHAPE, chunks=CHUNKS,
                        shards=SHARDS if layout == "v3sharded" else None,
                        dtype=a.dtype, compressors=[v3_compressor(codec)], zarr_format=3,
                    )
                z[...] = a
                np.save(out / f"{name}.npy", a)
    # An int32 array: tessera refuses it with an error naming the data type.
    z = zarr.create_array(store=str(out / "unsupported-int16.zarr"), shape=(4,), chunks=(2,), dtype="int16", zarr_format=3)
    z[...] = np.arange(4, dtype=np.int32)


def bits(a):
    if a.dtype == np.bool_:
        return a.view(np.uint8)
    return a.view({8: np.uint64, 4: np.uint32}[a.dtype.itemsize])


def check(out):
    n = 0
    for store in sorted(out.glob("*.zarr")):
        if not store.with_suffix(".npy").exists():
            continue
        expected = np.load(store.with_suffix(".npy"))
        got = zarr.open_array(str(store), mode="r")[...]
        got = got.astype(got.dtype.newbyteorder("="))  # a byte swap: the bits are kept
        if got.dtype != expected.dtype or got.shape != expected.shape:
            sys.exit(f"{store}: {got.dtype} {got.shape}, expected {expected.dtype} {expected.shape}")
        if not np.array_equal(bits(got), bits(expected)):
            bad = np.argwhere(bits(got) != bits(expected))[:5]
            sys.exit(f"{store}: values differ at {bad.tolist()}")
        n += 1
    print(f"checked {n}")


if __name__ == "__main__":
    mode, where = sys.argv[1], pathlib.Path(sys.argv[2])
    {"write": write, "check": check}[mode](where)
