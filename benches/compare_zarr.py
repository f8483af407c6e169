#!/usr/bin/env python3
"""The headline job on real data, beside dask in one run: the mean of a 10000 x 10000 float64 array
read from a Zarr v3 store (zstd, 1000 x 1000 chunks).

tessera's `zarr_mean` example writes the store once (`--write`); then, interleaved --repeat times,
tessera computes its mean from the store and dask computes `da.from_zarr(store).mean()` on its
threaded scheduler with the same thread count. Each run is a fresh process; the time is measured
inside it (opening the store, building the graph and computing; not start-up or imports) and peak
RSS with /usr/bin/time. Both read the same bytes, so the two means must agree to rounding. Prints
best times, the ratio, the CPU (and whether it has AVX-512) and the load, then one JSON object.

    python3 benches/compare_zarr.py --python /tmp/daskenv/bin/python --repeat 5

The Python needs numpy, dask[array] and zarr (>= 3): `pip install numpy "dask[array]" zarr`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_dask import Failed, Missing, run_child  # noqa: E402  (one way to run and measure a child)

REPO = Path(__file__).resolve().parent.parent
BINARY = REPO / "target/release/examples/zarr_mean"

DASK = r"""
import json, sys, time
try:
    import dask, dask.array as da, zarr
except ImportError as e:
    print(json.dumps({"missing": e.name})); sys.exit(3)
store, threads = sys.argv[1], int(sys.argv[2])
dask.config.set(scheduler="threads", num_workers=threads)
c0 = time.process_time(); t0 = time.perf_counter()
mean = float(da.from_zarr(store).mean().compute())
print(json.dumps({"mean": mean, "seconds": time.perf_counter() - t0,
                  "cpu_seconds": time.process_time() - c0}))
"""


def cpu_model() -> str:
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    name = next((l.split(":", 1)[1].strip() for l in info.splitlines() if l.startswith("model name")),
                "unknown CPU")
    isa = "AVX-512" if " avx512f" in info else ("AVX2" if " avx2" in info else "no AVX2")
    return f"{name} ({isa}, {os.cpu_count()} cores)"


def last_json(stdout: str) -> dict:
    lines = [l for l in stdout.splitlines() if l.startswith("{")]
    if not lines:
        raise Failed("no JSON line in output")
    return json.loads(lines[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--python", default=sys.executable, help="a Python with numpy, dask[array] and zarr")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--store", help="where to write the store (default: a temporary directory, removed after)")
    p.add_argument("--no-build", action="store_true", help="use the release binary already built")
    a = p.parse_args()
    if a.repeat < 1 or a.threads < 1:
        p.error("--repeat and --threads must be at least 1")
    if not a.no_build:
        subprocess.run(["cargo", "build", "--release", "-p", "tessera-examples", "--example", "zarr_mean"],
                       cwd=REPO, check=True)
    tmp = None if a.store else tempfile.mkdtemp(prefix="compare_zarr_")
    store = a.store or str(Path(tmp) / "headline.zarr")
    threads = ["--threads", str(a.threads)]
    try:
        written = last_json(run_child([str(BINARY), "--store", store, "--write", "--json", "--no-progress",
                                       *threads], timeout=600, measure_rss=False)[0])
        ours, theirs = [], []
        for _ in range(a.repeat):
            out, rss = run_child([str(BINARY), "--store", store, "--json", "--no-progress", *threads],
                                 timeout=600, measure_rss=True)
            ours.append(dict(last_json(out), peak_rss_kib=rss))
            out, rss = run_child([a.python, "-c", DASK, store, str(a.threads)], timeout=600, measure_rss=True)
            theirs.append(dict(last_json(out), peak_rss_kib=rss))
    except Missing as e:
        print(f"skipped: {e}")
        return 0
    except Failed as e:
        print(f"failed: {e}", file=sys.stderr)
        return 1
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    o = min(ours, key=lambda r: r["seconds"])
    d = min(theirs, key=lambda r: r["seconds"])
    load = os.getloadavg()
    agree = abs(o["mean"] - d["mean"]) <= 1e-12 * abs(d["mean"])
    result = {
        "workload": "mean of a 10000x10000 float64 Zarr v3 store (zstd, 1000x1000 chunks)",
        "threads": a.threads, "write_seconds": written.get("write_seconds"),
        "tessera": o, "dask": d, "ratio_wall": d["seconds"] / o["seconds"],
        "tessera_all_seconds": [r["seconds"] for r in ours],
        "dask_all_seconds": [r["seconds"] for r in theirs],
        "means_agree": agree, "cpu": cpu_model(), "load_average": load,
    }
    print(f"tessera {o['seconds'] * 1e3:.0f} ms, {o['peak_rss_kib'] / 1024:.0f} MiB peak RSS   "
          f"dask {d['seconds'] * 1e3:.0f} ms, {d['peak_rss_kib'] / 1024:.0f} MiB   "
          f"dask/tessera {result['ratio_wall']:.2f}x (best of {a.repeat} each, interleaved)")
    print(f"write by tessera: {written.get('write_seconds', 0) * 1e3:.0f} ms; means "
          f"{'agree' if agree else 'DIFFER'}: {o['mean']!r} vs {d['mean']!r}")
    print(f"{result['cpu']}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(json.dumps(result))
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
