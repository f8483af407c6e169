#!/usr/bin/env python3
"""TSQR beside dask in one run: the QR factorization of a 2,000,000 x 100 uniform array in
100,000-row chunks, computing Q.sum() and R in one pass, tessera (benches/examples/tsqr.rs) against
dask's `da.linalg.tsqr` on the threaded scheduler with the same thread count. Best of --repeat runs
each; graph building and computing are timed, process start-up and imports are not. Prints the
times, the ratio, the CPU model and the load average, then one JSON object on the last line.

    python3 benches/compare_tsqr.py --python /tmp/daskenv/bin/python --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

DASK = r"""
import json, os, sys, time
import dask, dask.array as da
rows, cols, chunk, repeat, threads = map(int, sys.argv[1:6])
dask.config.set(scheduler="threads", num_workers=threads)
for _ in range(repeat):
    c0 = time.process_time(); t0 = time.perf_counter()
    x = da.random.default_rng(42).random((rows, cols), chunks=(chunk, cols))
    q, r = da.linalg.tsqr(x)
    qs, rr = dask.compute(q.sum(), r)
    t = time.perf_counter() - t0; c = time.process_time() - c0
    print(json.dumps({"seconds": t, "cpu_seconds": c, "q_sum": float(qs), "r00": float(rr[0, 0])}))
"""


def best(lines: str) -> dict:
    runs = [json.loads(l) for l in lines.splitlines() if l.startswith("{")]
    return min(runs, key=lambda r: r["seconds"])


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                flags = Path("/proc/cpuinfo").read_text()
                isa = "AVX-512" if " avx512f" in flags else ("AVX2" if " avx2" in flags else "no AVX2")
                return f"{line.split(':', 1)[1].strip()} ({isa}, {os.cpu_count()} cores)"
    except OSError:
        pass
    return "unknown CPU"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--python", default=sys.executable, help="a Python with numpy and dask[array]")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--rows", type=int, default=2_000_000)
    p.add_argument("--cols", type=int, default=100)
    p.add_argument("--chunk-rows", type=int, default=100_000)
    p.add_argument("--no-build", action="store_true")
    a = p.parse_args()
    if not a.no_build:
        subprocess.run(["cargo", "build", "--release", "-p", "tessera-benches", "--example", "tsqr"],
                       cwd=REPO, check=True)
    args = [str(v) for v in (a.rows, a.cols, a.chunk_rows, a.repeat)]
    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads))
    ours = best(subprocess.run([str(REPO / "target/release/examples/tsqr"), *args], env=env,
                               check=True, capture_output=True, text=True).stdout)
    theirs = best(subprocess.run([a.python, "-c", DASK, *args, str(a.threads)], check=True,
                                 capture_output=True, text=True).stdout)
    load = os.getloadavg()
    result = {
        "workload": f"tsqr {a.rows}x{a.cols} in {a.chunk_rows}-row chunks, Q.sum() and R",
        "threads": a.threads, "tessera": ours, "dask": theirs,
        "ratio_wall": theirs["seconds"] / ours["seconds"],
        "ratio_cpu": theirs["cpu_seconds"] / ours["cpu_seconds"] if ours.get("cpu_seconds") else None,
        "cpu": cpu_model(), "load_average": load,
    }
    print(f"tessera {ours['seconds']:.3f} s (cpu {ours['cpu_seconds']:.2f} s)   "
          f"dask {theirs['seconds']:.3f} s (cpu {theirs['cpu_seconds']:.2f} s)   "
          f"dask/tessera {result['ratio_wall']:.2f}x wall, {result['ratio_cpu']:.2f}x cpu")
    print(f"{result['cpu']}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    # Both factor the same values: |R[0,0]| is the norm of the first column either way.
    if abs(abs(ours["r00"]) - abs(theirs["r00"])) > 0.01 * abs(theirs["r00"]):
        print(f"warning: |R[0,0]| differs: {ours['r00']} vs {theirs['r00']} (beyond the 1% two random streams give)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
