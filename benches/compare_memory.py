#!/usr/bin/env python3
"""Bounded memory beside dask.distributed: jobs over a 2 GiB array on workers of 512 MiB each.

Two workloads (issue 9's proof), over one float64 `.npy` file of --side² elements (16384² = 2 GiB)
holding x[i, j] = (i mod 7) + j / 1000, so every answer is checked against a closed form:

* hold_then_reduce: `(x - x.mean()).std()` in --hold-chunk² chunks (2048² = 32 MiB): all of x is
  held (or spilled) until its mean is known;
* rechunk_rows_cols_npy: x in row bands --band rows high (512: 64 MiB each) rechunked to column
  bands, then the column sums: every target chunk overlaps every source chunk (tessera reads the
  file again in column bands; dask's x is an opaque task per band, as a computed array would be);
* rechunk_rows_cols_computed: the same of 2 * x, whose bands must be cut into pieces and gathered
  (all-to-all) on both sides.

Each runs on three sides, one run each, in the same invocation:

* tessera local: target/release/examples/memory (benches/examples/memory.rs) with 2 threads and
  `--memory-limit` (default 512MiB);
* tessera cluster: a fresh `tessera-scheduler` and 2 `tessera-worker --threads 1 --memory-limit
  512MiB --spill-dir TMP` per workload, the same example as the client with --scheduler;
* dask.distributed: a fresh `--python` process running `LocalCluster(n_workers=2,
  threads_per_worker=1, memory_limit="512MiB")`, x read from the same file by one task per chunk
  (`np.load(mmap_mode="r")` of its slice), the same expression.

Reported per side: wall time (graph building and compute, not the cluster's start-up), whether it
completed with the right answer (within --timeout), and the peak RSS (VmHWM) of every process of
that side summed — for tessera's cluster the scheduler, the workers and the client; for dask the
client process (which runs dask's scheduler) and every nanny and worker process — and the largest
single worker's. Prints a table, then everything as one JSON line.

    python3 benches/compare_memory.py --python /tmp/daskenv/bin/python

`--release-dir DIR` runs the binaries of another build (DIR/tessera-scheduler, DIR/tessera-worker,
DIR/examples/memory; implies --no-build), so two builds are compared back to back in one session.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RELEASE = REPO / "target" / "release"
EXAMPLE = RELEASE / "examples" / "memory"
WORKLOADS = ("hold_then_reduce", "rechunk_rows_cols_npy", "rechunk_rows_cols_computed")
MIB = 1 << 20

# Runs in the --python interpreter: `python -c DASK '<json config>'`; prints one JSON line.
DASK = r"""
import json, os, sys, time
cfg = json.loads(sys.argv[1])
try:
    import numpy as np
    import dask, dask.array as da
    from dask.distributed import Client, LocalCluster
except ImportError as e:
    print(json.dumps({"missing": e.name or "dask"}))
    sys.exit(3)


def load(path, r0, r1, c0, c1):
    return np.array(np.load(path, mmap_mode="r")[r0:r1, c0:c1])


def from_npy(path, n, rows, cols):
    blocks = [[da.from_delayed(dask.delayed(load)(path, r, min(r + rows, n), c, min(c + cols, n)),
                               shape=(min(rows, n - r), min(cols, n - c)), dtype=np.float64)
               for c in range(0, n, cols)] for r in range(0, n, rows)]
    return da.block(blocks)


def descendants(root):
    kids = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(pid))
            except (OSError, ValueError, IndexError):
                pass
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


def hwm(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    dask.config.set({"temporary-directory": cfg["tmp"]})
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           memory_limit=cfg["limit"], dashboard_address=None,
                           local_directory=cfg["tmp"])
    client = Client(cluster)
    n = cfg["side"]
    start = time.perf_counter()
    if cfg["workload"] == "hold_then_reduce":
        c = cfg["hold_chunk"]
        x = from_npy(cfg["path"], n, c, c)
        value = float((x - x.mean()).std().compute())
    else:
        b = cfg["band"]
        x = from_npy(cfg["path"], n, b, n)
        if cfg["workload"] == "rechunk_rows_cols_computed":
            x = 2 * x
        value = float(np.mean(x.rechunk((n, b)).sum(axis=0).compute()))
    seconds = time.perf_counter() - start
    me = os.getpid()
    procs = {p: hwm(p) for p in descendants(me)}
    workers = [v for p, v in procs.items() if p != me]
    print(json.dumps({"seconds": seconds, "result": value, "peak_sum": sum(procs.values()),
                      "peak_worker": max(workers) if workers else None,
                      "processes": len(procs)}), flush=True)
    client.close()
    cluster.close()
"""


class Failed(Exception):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hwm(pid: int) -> int:
    """VmHWM of a live process, in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise Failed(f"no VmHWM for {pid}")


def run_measured(cmd: list[str], timeout: float, env=None) -> tuple[str, int]:
    """Runs `cmd` in a session of its own; returns its stdout and its own peak RSS (from wait4). A
    run past `timeout` is killed with its whole process group, and raises Failed."""
    # Output goes to files, not pipes: nobody reads a pipe while the child runs, and a chatty
    # child (dask logs a lot when memory runs short) would block on a full one.
    with tempfile.TemporaryFile("w+") as out_f, tempfile.TemporaryFile("w+") as err_f:
        p = subprocess.Popen(cmd, stdout=out_f, stderr=err_f, text=True, start_new_session=True,
                             env=env)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                os.killpg(p.pid, signal.SIGKILL)
                os.wait4(p.pid, 0)
                raise Failed(f"did not finish within {timeout:.0f} s")
            time.sleep(0.2)
        # Whatever the child left behind in its session (dask's worker processes) goes too.
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.returncode = os.waitstatus_to_exitcode(status)
        out_f.seek(0)
        err_f.seek(0)
        out, err = out_f.read(), err_f.read()
    if p.returncode != 0:
        lines = err.strip().splitlines()
        raise Failed(f"exit {p.returncode}: {' / '.join(lines[-3:])}")
    return out, usage.ru_maxrss * 1024


def last_json(out: str) -> dict:
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if not lines:
        raise Failed("printed no result")
    return json.loads(lines[-1])


def tessera_local(args, workload: str, path: Path) -> dict:
    out, peak = run_measured([str(EXAMPLE), "--npy", str(path), "--workload", workload,
                              "--chunk", str(chunk_of(args, workload)), "--threads", "2",
                              "--memory-limit", args.limit], args.timeout)
    r = last_json(out)
    r.update(peak_sum=peak, peak_worker=peak, processes=1)
    return r


def tessera_cluster(args, workload: str, path: Path, tmp: str) -> dict:
    env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "warn"),
               TESSERA_SECRET_FILE=os.path.join(tmp, "cluster.secret"))
    port = free_port()
    address = f"http://127.0.0.1:{port}"
    procs = [subprocess.Popen([str(RELEASE / "tessera-scheduler"), "--listen", f"127.0.0.1:{port}"],
                              env=env, stdout=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or procs[0].poll() is not None:
                    raise Failed(f"the scheduler did not listen on port {port}")
                time.sleep(0.1)
        for _ in range(2):
            procs.append(subprocess.Popen(
                [str(RELEASE / "tessera-worker"), "--scheduler", address, "--threads", "1",
                 "--memory-limit", args.limit, "--spill-dir", tmp], env=env,
                stdout=subprocess.DEVNULL))
        out, client_peak = run_measured(
            [str(EXAMPLE), "--npy", str(path), "--workload", workload, "--chunk",
             str(chunk_of(args, workload)), "--scheduler", address, "--wait-workers", "2"],
            args.timeout, env)
        r = last_json(out)
        peaks = [hwm(p.pid) for p in procs]
        r.update(peak_sum=sum(peaks) + client_peak, peak_worker=max(peaks[1:]),
                 peak_scheduler=peaks[0], peak_client=client_peak, processes=len(procs) + 1)
        return r
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=35)
            except subprocess.TimeoutExpired:
                p.kill()


def dask_distributed(args, workload: str, path: Path, tmp: str) -> dict:
    cfg = {"workload": workload, "path": str(path), "side": args.side, "band": args.band,
           "hold_chunk": args.hold_chunk, "limit": args.limit, "tmp": tmp}
    out, _ = run_measured([args.python, "-c", DASK, json.dumps(cfg)], args.timeout)
    r = last_json(out)
    if "missing" in r:
        raise Failed(f"dask not installed in {args.python} ({r['missing']})")
    return r


def chunk_of(args, workload: str) -> int:
    return args.hold_chunk if workload == "hold_then_reduce" else args.band


def expected(workload: str, n: int) -> float:
    """The closed forms of tessera_benches::memory_expected."""
    rows = [(i % 7) for i in range(n)]
    cols = [j / 1000 for j in range(n)]
    mean = lambda v: sum(v) / len(v)
    var = lambda v: sum((a - mean(v)) ** 2 for a in v) / len(v)
    if workload == "hold_then_reduce":
        return (var(rows) + var(cols)) ** 0.5
    if workload == "rechunk_rows_cols_computed":
        return 2 * n * (mean(rows) + mean(cols))
    return n * (mean(rows) + mean(cols))


def fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", default=sys.executable, help="interpreter with dask.distributed")
    ap.add_argument("--side", type=int, default=16384, help="the array is side² float64 (16384: 2 GiB)")
    ap.add_argument("--hold-chunk", type=int, default=2048, help="hold_then_reduce's square chunk side")
    ap.add_argument("--band", type=int, default=512, help="rows (then columns) per band of the rechunk")
    ap.add_argument("--limit", default="512MiB", help="memory limit of each worker / the local executor")
    ap.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated subset")
    ap.add_argument("--sides", default="local,cluster,dask", help="comma-separated subset")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per run before it counts as failed")
    ap.add_argument("--tmp", default=None, help="directory for the file and spills (default: system temp)")
    ap.add_argument("--no-build", action="store_true", help="use the binaries already built")
    ap.add_argument("--release-dir", default=None,
                    help="run the binaries in this directory (laid out as target/release) instead")
    args = ap.parse_args()
    if args.release_dir:
        global RELEASE, EXAMPLE
        RELEASE = Path(args.release_dir).resolve()
        EXAMPLE = RELEASE / "examples" / "memory"
        args.no_build = True
    workloads = [w for w in args.workloads.split(",") if w]
    for w in workloads:
        if w not in WORKLOADS:
            ap.error(f"unknown workload {w!r}; choose from {', '.join(WORKLOADS)}")
    sides = [s for s in args.sides.split(",") if s]

    if not args.no_build:
        cmd = ["cargo", "build", "--release", "--features", "tessera/s3", "-p", "tessera-benches",
               "--example", "memory", "-p", "tessera-scheduler", "-p", "tessera-worker", "--bins"]
        print("building: " + " ".join(cmd), file=sys.stderr)
        if subprocess.run(cmd, cwd=REPO).returncode != 0:
            print("error: cargo build failed", file=sys.stderr)
            return 1
    for b in (EXAMPLE, RELEASE / "tessera-scheduler", RELEASE / "tessera-worker"):
        if not b.exists():
            print(f"error: {b} does not exist; build it or drop --no-build", file=sys.stderr)
            return 1

    load_start = os.getloadavg()
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="tessera-memory-", dir=args.tmp) as tmp:
        path = Path(tmp) / "x.npy"
        print(f"writing {path} ({args.side}² float64) ...", file=sys.stderr)
        subprocess.run([str(EXAMPLE), "--npy", str(path), "--write", str(args.side)], check=True)
        for w in workloads:
            want = expected(w, args.side)
            results[w] = {}
            for side in sides:
                print(f"running {w} on {side} ...", file=sys.stderr)
                with tempfile.TemporaryDirectory(prefix=f"{side}-", dir=tmp) as scratch:
                    try:
                        if side == "local":
                            r = tessera_local(args, w, path)
                        elif side == "cluster":
                            r = tessera_cluster(args, w, path, scratch)
                        elif side == "dask":
                            r = dask_distributed(args, w, path, scratch)
                        else:
                            raise Failed(f"unknown side {side!r}")
                        r["exact"] = abs(r["result"] - want) <= 1e-9 * abs(want)
                        r["completed"] = r["exact"]
                    except Failed as e:
                        r = {"completed": False, "error": str(e)}
                        print(f"  {side}: {e}", file=sys.stderr)
                results[w][side] = r

    header = (f"{'workload':<22} {'side':<8} {'completed':<10} {'seconds':>8} {'peak RSS sum':>13} "
              f"{'max worker':>11} {'x faster than dask':>19}")
    print(header)
    print("-" * len(header))
    for w, rs in results.items():
        dask_s = rs.get("dask", {}).get("seconds") if rs.get("dask", {}).get("completed") else None
        for side, r in rs.items():
            s = r.get("seconds") if r.get("completed") else None
            speedup = dask_s / s if (dask_s and s and side != "dask") else None
            done = "yes" if r.get("completed") else ("wrong" if "exact" in r else "no")
            print(f"{w:<22} {side:<8} {done:<10} {fmt(s, '.2f'):>8} "
                  f"{fmt(r.get('peak_sum') and r['peak_sum'] / MIB, '.0f'):>9} MiB "
                  f"{fmt(r.get('peak_worker') and r['peak_worker'] / MIB, '.0f'):>7} MiB "
                  f"{fmt(speedup, '.1f'):>19}")
            if "error" in r:
                print(f"{'':<22} {'':<8} ({r['error'][:200]})")
    print(f"(limit {args.limit} per worker / for the local executor; {args.side}² float64; one run each; "
          f"load average {load_start[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end, "
          f"{os.cpu_count()} cores)")
    print()
    print(json.dumps({"side": args.side, "limit": args.limit, "python": args.python,
                      "loadavg": [round(load_start[0], 2), round(os.getloadavg()[0], 2)],
                      "workloads": results}))
    return 0 if all(r.get("completed") for rs in results.values() for r in rs.values()
                    if "dask" not in r.get("error", "")) else 1


if __name__ == "__main__":
    sys.exit(main())
