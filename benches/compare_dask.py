#!/usr/bin/env python3
"""Side-by-side comparison of tessera's benchmark workloads with dask (and numpy where relevant).

Every figure this prints is a ratio of timings taken in the same run on the same machine, so it means
something on a shared, noisy machine where absolute times do not.

For each workload (headline, per_task, matmul, xxt_mean, mean_40000, anomaly_std, anomaly_zscore,
rechunk_rows_cols, normal_mean, poisson_mean, sort_1e8, histogram_1e8, sincos_mean, strided_sum_max,
fft_10000; defined in benches/src/lib.rs,
mirrored in DASK_WORKLOADS below):

* ours: runs target/release/examples/workloads --workload W --threads T --repeat N (built first with
  `cargo build --release -p tessera-examples --example workloads` unless --no-build) and keeps the
  best time;
* dask: runs the same workload in a fresh `--python` process with
  `da.random.default_rng(42).random(shape, chunks=...)` on the threaded scheduler with T workers,
  best of N;
* numpy (headline, matmul, sort_1e8, histogram_1e8, sincos_mean, strided_sum_max): the same job on the whole array in one numpy process, best of N
  (numpy's matmul uses its BLAS's own threads);
* peak RSS of whole processes (headline, mean_40000, the anomalies and the rechunk, one repetition in a fresh process, ours and
  dask; numpy too for headline): with /usr/bin/time -v when present, else the child's rusage
  (os.wait4, i.e. getrusage of that one child), which on Linux never reads below this script's own
  RSS (~15 MiB): the high-water mark survives the fork and exec that start the child.

Timings cover building the graph and computing it (`x.compute()`), not process start-up or imports.
Beside wall time, each side reports the process CPU time (all threads) of the same span: other load
on a shared machine inflates wall time far more than CPU time, so when the load average printed at
the end exceeds the core count, trust the CPU ratio more.
Prints a table, then the whole result as one JSON object on the last line.

This script needs only the Python 3 standard library: dask and numpy are imported only inside the
subprocesses it runs with --python. Without them it says "dask not installed, skipping" and reports
our numbers alone.

Create the Python environment for dask (not part of the repository):

    python3 -m venv /tmp/daskenv
    /tmp/daskenv/bin/pip install numpy "dask[array]" distributed

Run (from anywhere; paths are relative to the repository):

    python3 benches/compare_dask.py --python /tmp/daskenv/bin/python --repeat 3
    python3 benches/compare_dask.py --python /tmp/daskenv/bin/python --workloads headline,matmul --no-build
    python3 benches/compare_dask.py --python /tmp/daskenv/bin/python --workloads headline,normal_mean --simd avx2
    python3 benches/compare_dask.py --python /tmp/daskenv/bin/python --workloads headline,normal_mean --rounds 5

`--rounds R` runs every workload's processes R times, the workloads taking turns, and keeps each
side's best repetition over all rounds: on a machine whose other load comes and goes, the ratios of
different workloads (normal draws against uniform ones) are then measured over the same stretches of
time rather than one after the other.

`--simd avx2` also times ours with TESSERA_SIMD=avx2 (VAES on 256-bit registers, AVX2 vectors) against the
same dask run: on an AVX-512 machine, a proxy for an AVX2-only server with VAES such as AMD Zen 3
(same instructions, not the same cores or clocks).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORKLOADS = ["headline", "per_task", "matmul", "xxt_mean", "mean_40000", "anomaly_std",
             "anomaly_zscore", "rechunk_rows_cols", "normal_mean", "poisson_mean", "sort_1e8",
             "histogram_1e8", "sincos_mean", "strided_sum_max", "fft_10000"]
NUMPY_WORKLOADS = {"headline", "matmul", "sort_1e8", "histogram_1e8", "sincos_mean",
                   "strided_sum_max"}
RSS_WORKLOADS = {"headline", "mean_40000", "anomaly_std", "anomaly_zscore", "rechunk_rows_cols"}
GNU_TIME = "/usr/bin/time"
MISSING_EXIT = 3  # exit status of a child that could not import dask or numpy

# The workloads in dask, as Python source for the child processes (this one and
# compare_distributed.py's). Keep them in step with benches/src/lib.rs.
DASK_WORKLOADS = r"""
def dask_workload(name):
    rng = da.random.default_rng(42)
    if name == "headline":
        return rng.random((10000, 10000), chunks=(1000, 1000)).mean()
    if name == "per_task":
        return rng.random((1000000,), chunks=(100,)).sum()
    if name == "matmul":
        a = rng.random((10000, 10000), chunks=(1000, 1000))[:2000, :2000]
        return a @ a.T
    if name == "xxt_mean":
        x = rng.random((10000, 10000), chunks=(1000, 1000))
        return (x + x.T).mean(axis=0)
    if name == "mean_40000":
        return rng.random((40000, 40000), chunks=(4000, 4000)).mean()
    if name == "anomaly_std":
        x = rng.standard_normal((20000, 20000), chunks=(2000, 2000))
        return (x - x.mean(axis=0)).std()
    if name == "anomaly_zscore":
        x = rng.standard_normal((20000, 20000), chunks=(2000, 2000))
        return ((x - x.mean(axis=0)) / x.std(axis=0)).std()
    if name == "rechunk_rows_cols":
        x = rng.random((10000, 10000), chunks=(1000, 10000))
        return x.rechunk((10000, 1000)).max(axis=0)
    if name == "normal_mean":
        return rng.standard_normal((10000, 10000), chunks=(1000, 1000)).mean()
    if name == "poisson_mean":
        return rng.poisson(4.0, (10000, 10000), chunks=(1000, 1000)).mean()
    if name == "sort_1e8":
        # dask has no chunked sort: one chunk sorted by numpy is what it can do.
        x = rng.random((100_000_000,), chunks=(12_500_000,))
        return x.rechunk(-1).map_blocks(np.sort)[::1000]
    if name == "histogram_1e8":
        x = rng.random((100_000_000,), chunks=(10_000_000,))
        return da.histogram(x, bins=100, range=(0.0, 1.0))[0]
    if name == "sincos_mean":
        x = rng.random((10000, 10000), chunks=(1000, 1000))
        return (da.sin(x) ** 2 + da.cos(x) ** 2).mean()
    if name == "strided_sum_max":
        x = rng.random((20000, 20000), chunks=(2000, 2000))
        return x[::2, ::3].sum(axis=1).max()
    if name == "fft_10000":
        x = rng.random((10000, 10000), chunks=(10000, 1000))
        return abs(da.fft.fft(x, axis=0)).mean()
    raise SystemExit("unknown workload " + name)
"""

# Runs in the --python interpreter: `python -c DASK_CHILD '<json config>'`. Prints one JSON line per
# repetition, like our workloads binary. Keep the workloads in step with benches/src/lib.rs.
DASK_CHILD = r"""
import json, sys, time
cfg = json.loads(sys.argv[1])
try:
    import numpy as np
    if cfg["engine"] == "dask":
        import dask
        import dask.array as da
except ImportError as e:
    print(json.dumps({"missing": e.name or "dask"}))
    sys.exit(3)

""" + DASK_WORKLOADS + r"""
def numpy_workload(name):
    # Returns (result, seconds of the step after generating the input).
    rng = np.random.default_rng(42)
    if name == "headline":
        a = rng.random((10000, 10000))
        t = time.perf_counter()
        return a.mean(), time.perf_counter() - t
    if name == "matmul":
        a = rng.random((2000, 2000))
        t = time.perf_counter()
        return a @ a.T, time.perf_counter() - t
    if name == "sort_1e8":
        a = rng.random(100_000_000)
        t = time.perf_counter()
        return np.sort(a)[::1000], time.perf_counter() - t
    if name == "histogram_1e8":
        a = rng.random(100_000_000)
        t = time.perf_counter()
        return np.histogram(a, bins=100, range=(0.0, 1.0))[0], time.perf_counter() - t
    if name == "sincos_mean":
        a = rng.random((10000, 10000))
        t = time.perf_counter()
        return (np.sin(a) ** 2 + np.cos(a) ** 2).mean(), time.perf_counter() - t
    if name == "strided_sum_max":
        a = rng.random((20000, 20000))
        t = time.perf_counter()
        return a[::2, ::3].sum(axis=1).max(), time.perf_counter() - t
    raise SystemExit("no numpy version of workload " + name)

name = cfg["workload"]
if name == "idle":  # only the imports, for the floor under peak RSS
    print(json.dumps({"workload": name, "seconds": 0.0, "result": 0.0}))
    sys.exit(0)
if cfg["engine"] == "dask":
    dask.config.set(scheduler="threads", num_workers=cfg["threads"])
    (optimized,) = dask.optimize(dask_workload(name))
    tasks = len(optimized.__dask_graph__())
for rep in range(cfg["repeat"]):
    cpu_start = time.process_time()
    start = time.perf_counter()
    if cfg["engine"] == "dask":
        value = dask_workload(name).compute()
        line = {"tasks": tasks}
    else:
        value, op_seconds = numpy_workload(name)
        line = {"op_seconds": op_seconds}
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    line.update(workload=name, seconds=seconds, cpu_seconds=cpu_seconds,
                result=float(np.mean(value)), repetition=rep)
    print(json.dumps(line), flush=True)
"""


class Failed(Exception):
    """A child process failed; the message says which and why."""


class Missing(Exception):
    """The --python interpreter lacks a module (or does not exist)."""

    def __init__(self, reason: str, module: str | None = None):
        super().__init__(reason)
        self.module = module


def describe(cmd: list[str]) -> str:
    """cmd as a short string, with the dask child's source elided."""
    return " ".join("<DASK_CHILD>" if part == DASK_CHILD else part for part in cmd)


def run_child(cmd: list[str], timeout: float, measure_rss: bool,
              env: dict[str, str] | None = None) -> tuple[str, int | None]:
    """Runs cmd (with env, if given, as its whole environment); returns its stdout and, if
    measure_rss, its peak RSS in KiB."""
    with tempfile.TemporaryDirectory(prefix="compare_dask_") as tmp:
        out_path, err_path, time_path = (Path(tmp) / n for n in ("out", "err", "time"))
        use_time = measure_rss and os.access(GNU_TIME, os.X_OK)
        full = [GNU_TIME, "-v", "-o", str(time_path), *cmd] if use_time else cmd
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            try:
                proc = subprocess.Popen(full, stdout=out, stderr=err, cwd=REPO, env=env)
            except FileNotFoundError as e:
                raise Missing(f"{e.filename} not found") from e
            fired = threading.Event()

            def kill() -> None:
                fired.set()
                proc.kill()

            timer = threading.Timer(timeout, kill)
            timer.start()
            try:
                if measure_rss and not use_time:
                    # wait4 reaps the child and returns its own rusage (getrusage of that one child).
                    _, wait_status, usage = os.wait4(proc.pid, 0)
                    proc.returncode = os.waitstatus_to_exitcode(wait_status)
                else:
                    proc.wait()
            finally:
                timer.cancel()
            status = proc.returncode
            if fired.is_set():
                raise Failed(f"killed after {timeout:.0f} s: {describe(cmd)}")
        stdout = out_path.read_text()
        stderr = err_path.read_text().strip()
        if status == MISSING_EXIT and '"missing"' in stdout:
            module = json.loads(stdout.splitlines()[-1])["missing"]
            raise Missing(f"{cmd[0]} cannot import {module}", module)
        if status != 0:
            tail = stderr.splitlines()[-1] if stderr else "no output on stderr"
            raise Failed(f"exit status {status}: {describe(cmd)}: {tail}")
        rss = None
        if use_time:
            m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", time_path.read_text())
            rss = int(m.group(1)) if m else None
        elif measure_rss:
            rss = usage.ru_maxrss  # KiB on Linux
        return stdout, rss


def parse_runs(stdout: str) -> list[dict]:
    runs = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    if not runs:
        raise Failed("no JSON lines in output")
    return runs


def best(runs: list[dict]) -> dict:
    """The fastest repetition, with every repetition's times alongside and the least CPU time of
    any repetition as best_cpu_seconds."""
    top = dict(min(runs, key=lambda r: r["seconds"]))
    top["all_seconds"] = [r["seconds"] for r in runs]
    cpu = [r["cpu_seconds"] for r in runs if r.get("cpu_seconds") is not None]
    top["all_cpu_seconds"] = cpu
    top["best_cpu_seconds"] = min(cpu) if cpu else None
    return top


def ours_cmd(binary: Path, workload: str, threads: int, repeat: int) -> list[str]:
    return [str(binary), "--workload", workload, "--threads", str(threads), "--repeat", str(repeat)]


def python_cmd(python: str, engine: str, workload: str, threads: int, repeat: int) -> list[str]:
    cfg = {"engine": engine, "workload": workload, "threads": threads, "repeat": repeat}
    return [python, "-c", DASK_CHILD, json.dumps(cfg)]


def ratio(num: float | None, den: float | None) -> float | None:
    return num / den if num and den else None


def engine_version() -> str:
    """The git commit the engine was built from, with +dirty if engine/ had local changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, check=True,
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "engine"], cwd=REPO,
                               check=True, capture_output=True, text=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def checked_args(ap: argparse.ArgumentParser, positive: tuple[str, ...]) -> tuple[argparse.Namespace, list[str]]:
    """Parses the command line; returns it with the --workloads list, or exits naming a workload that
    does not exist or an option of `positive` below 1."""
    args = ap.parse_args()
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = [w for w in workloads if w not in WORKLOADS]
    if unknown:
        ap.error(f"unknown workloads {unknown}")
    if any(getattr(args, name) < 1 for name in positive):
        ap.error(" and ".join("--" + name for name in positive) + " must be >= 1")
    return args, workloads


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", default=sys.executable,
                    help="interpreter with dask and numpy (default: this one)")
    ap.add_argument("--repeat", type=int, default=3, help="repetitions per side; the best counts")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run every workload's processes this many times, the workloads in turn, "
                         "and keep the best repetition of all rounds: ratios between workloads (the "
                         "normal mean's against the headline's) then come from the same stretches "
                         "of a shared machine's load")
    ap.add_argument("--threads", type=int, default=2,
                    help="our executor threads and dask's num_workers (default 2)")
    ap.add_argument("--workloads", default=",".join(WORKLOADS),
                    help="comma-separated subset of " + ",".join(WORKLOADS))
    ap.add_argument("--no-build", action="store_true", help="use the binary already built")
    ap.add_argument("--no-rss", action="store_true", help="skip the peak-RSS processes")
    ap.add_argument("--simd", default="",
                    help="also run ours with TESSERA_SIMD set to each of these comma-separated levels "
                         "(portable, avx2, avx512; capped at what the CPU has), timed against the same "
                         "dask run: e.g. --simd avx2 times the AVX2 path on an AVX-512 machine"),
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per process")
    args, workloads = checked_args(ap, ("repeat", "rounds", "threads"))
    simd_levels = [level.strip() for level in args.simd.split(",") if level.strip()]
    for level in simd_levels:
        if level not in ("portable", "avx2", "avx512"):
            ap.error(f"--simd: {level!r} is not portable, avx2 or avx512")

    binary = REPO / "target" / "release" / "examples" / "workloads"
    if not args.no_build:
        print("building: cargo build --release -p tessera-examples --example workloads", file=sys.stderr)
        build = subprocess.run(["cargo", "build", "--release", "-p", "tessera-examples",
                                "--example", "workloads"], cwd=REPO)
        if build.returncode != 0:
            print("error: cargo build failed", file=sys.stderr)
            return 1
    if not binary.exists():
        print(f"error: {binary} does not exist; build it or drop --no-build", file=sys.stderr)
        return 1

    skipped: set[str] = set()  # "dask" / "numpy" once found missing

    def python_side(engine: str, workload: str, repeat: int, rss: bool):
        if engine in skipped:
            return None, None
        try:
            stdout, peak = run_child(python_cmd(args.python, engine, workload, args.threads, repeat),
                                     args.timeout, rss)
            return parse_runs(stdout), peak
        except Missing as e:
            # Without numpy neither side runs; without dask (or the interpreter) dask does not.
            lost = {"dask", "numpy"} if e.module == "numpy" or e.module is None else {engine}
            for name in sorted(lost - skipped):
                print(f"{name} not installed, skipping ({e})", file=sys.stderr)
            skipped.update(lost)
            return None, None

    load_start = os.getloadavg()
    # Every repetition of every round, per workload and side; the best is taken at the end.
    runs: dict[str, dict] = {w: {"ours": [], "ours_simd": {}, "dask": [], "numpy": []}
                             for w in workloads}
    results: dict[str, dict] = {w: {"ours": None, "dask": None, "numpy": None} for w in workloads}
    failures = 0
    for round_no in range(args.rounds):
        for w in workloads:
            r, got = results[w], runs[w]
            if "error" in r:
                continue
            suffix = f" (round {round_no + 1} of {args.rounds})" if args.rounds > 1 else ""
            print(f"running {w}{suffix} ...", file=sys.stderr)
            try:
                got["ours"] += parse_runs(run_child(
                    ours_cmd(binary, w, args.threads, args.repeat), args.timeout, False)[0])
                for level in simd_levels:
                    env = dict(os.environ, TESSERA_SIMD=level)
                    got["ours_simd"].setdefault(level, []).extend(parse_runs(run_child(
                        ours_cmd(binary, w, args.threads, args.repeat), args.timeout, False,
                        env)[0]))
                dask_runs, _ = python_side("dask", w, args.repeat, False)
                got["dask"] += dask_runs or []
                if w in NUMPY_WORKLOADS:
                    np_runs, _ = python_side("numpy", w, args.repeat, False)
                    got["numpy"] += np_runs or []
                if round_no == 0 and w in RSS_WORKLOADS and not args.no_rss:
                    rss = {"ours_kib": run_child(ours_cmd(binary, w, args.threads, 1), args.timeout,
                                                 True)[1]}
                    rss["dask_kib"] = python_side("dask", w, 1, True)[1]
                    if w in NUMPY_WORKLOADS:
                        rss["numpy_kib"] = python_side("numpy", w, 1, True)[1]
                    r["peak_rss"] = rss
            except (Failed, Missing) as e:
                print(f"error: {w}: {e}", file=sys.stderr)
                r["error"] = str(e)
                failures += 1
    for w in workloads:
        r, got = results[w], runs[w]
        for side in ("ours", "dask", "numpy"):
            r[side] = best(got[side]) if got[side] else None
        if got["ours_simd"]:
            r["ours_simd"] = {level: best(level_runs)
                              for level, level_runs in got["ours_simd"].items()}
        ours_s = r["ours"] and r["ours"]["seconds"]
        r["dask_over_ours"] = ratio(r["dask"] and r["dask"]["seconds"], ours_s)
        r["numpy_over_ours"] = ratio(r["numpy"] and r["numpy"]["seconds"], ours_s)
        r["dask_over_ours_cpu"] = ratio(r["dask"] and r["dask"]["best_cpu_seconds"],
                                        r["ours"] and r["ours"]["best_cpu_seconds"])
        if r.get("ours_simd"):
            r["dask_over_ours_simd"] = {
                level: ratio(r["dask"] and r["dask"]["seconds"], side["seconds"])
                for level, side in r["ours_simd"].items()}

    idle_rss = None
    if not args.no_rss and "dask" not in skipped and any(w in RSS_WORKLOADS for w in workloads):
        # What `import dask, dask.array, numpy` alone costs: the floor under dask's peak RSS.
        idle_rss = python_side("dask", "idle", 1, True)[1]

    # The table.
    def secs(side: dict | None, key: str = "seconds") -> str:
        return fmt(side and side[key], ".3f")

    def tasks(side: dict | None) -> str:
        return fmt(side and side["tasks"], "d")

    header = (f"{'workload':<11} {'ours s':>7} {'cpu s':>7} {'tasks':>6} {'dask s':>7} {'cpu s':>7} "
              f"{'tasks':>6} {'dask/ours':>9} {'cpu d/o':>7} {'numpy s':>7} {'numpy/ours':>10}"
              f"  result (ours | dask | numpy)")
    print(header)
    print("-" * len(header))
    for w, r in results.items():
        ours, dask, numpy = r["ours"], r["dask"], r["numpy"]
        checks = " | ".join(fmt(s and s["result"], ".6g") for s in (ours, dask, numpy))
        print(f"{w:<11} {secs(ours):>7} {secs(ours, 'best_cpu_seconds'):>7} {tasks(ours):>6} "
              f"{secs(dask):>7} {secs(dask, 'best_cpu_seconds'):>7} {tasks(dask):>6} "
              f"{fmt(r['dask_over_ours'], '.2f'):>9} {fmt(r['dask_over_ours_cpu'], '.2f'):>7} "
              f"{secs(numpy):>7} {fmt(r['numpy_over_ours'], '.2f'):>10}  {checks}")
    print("(s: best wall time of the repetitions; cpu s: least process CPU time, all threads; "
          "dask/ours, numpy/ours: their wall time over ours, cpu d/o: dask's CPU time over ours; "
          "above 1, tessera is faster or cheaper)")
    for w, r in results.items():
        for level, side in (r.get("ours_simd") or {}).items():
            print(f"{w}: TESSERA_SIMD={level}: ours {side['seconds']:.3f} s (cpu "
                  f"{fmt(side['best_cpu_seconds'], '.3f')} s), dask/ours "
                  f"{fmt(r['dask_over_ours_simd'][level], '.2f')}")
    matmul = results.get("matmul")
    if matmul and matmul["ours"] and matmul["numpy"]:
        ours_s, np_all, np_op = (matmul["ours"]["seconds"], matmul["numpy"]["seconds"],
                                 matmul["numpy"]["op_seconds"])
        print(f"matmul: ours {ours_s:.3f} s vs numpy {np_all:.3f} s generating a and a @ a.T "
              f"(ours/numpy {ours_s / np_all:.2f}), numpy {np_op:.3f} s for a @ a.T alone "
              f"(ours/numpy {ours_s / np_op:.2f})")
    rss_rows = [(w, r["peak_rss"]) for w, r in results.items() if r.get("peak_rss")]
    if rss_rows:
        print()
        print(f"{'peak RSS MiB':<11} {'ours':>8} {'dask':>8} {'dask/ours':>9} {'numpy':>8}")
        for w, rss in rss_rows:
            mib = {k: v and v / 1024 for k, v in rss.items()}
            print(f"{w:<11} {fmt(mib['ours_kib'], '.0f'):>8} {fmt(mib['dask_kib'], '.0f'):>8} "
                  f"{fmt(ratio(rss['dask_kib'], rss['ours_kib']), '.2f'):>9} "
                  f"{fmt(mib.get('numpy_kib'), '.0f'):>8}")
        if idle_rss:
            print(f"(a python process that only imports dask and numpy peaks at {idle_rss / 1024:.0f} MiB)")
    print(f"(load average {load_start[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end, "
          f"{os.cpu_count()} cores)")
    print()
    summary = {
        "engine": engine_version(),
        "threads": args.threads,
        "repeat": args.repeat,
        "rounds": args.rounds,
        "python": args.python,
        "rss_method": "/usr/bin/time -v" if os.access(GNU_TIME, os.X_OK)
        else "wait4 rusage (floor: this script's RSS)",
        "skipped": sorted(skipped),
        # 1-minute load average before and after: above the core count, other work shared the CPUs.
        "loadavg": [round(load_start[0], 2), round(os.getloadavg()[0], 2)],
        "dask_idle_rss_kib": idle_rss,
        "workloads": results,
    }
    print(json.dumps(summary))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
