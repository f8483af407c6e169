#!/usr/bin/env python3
"""tessera's distributed executor beside its local executor and beside dask.distributed, on one machine.

Every figure this prints is a ratio of timings taken in the same run, so it means something on a
shared, noisy machine where absolute times do not. For each workload (default: headline and per_task,
defined in benches/src/lib.rs):

* ours, local: target/release/examples/workloads --workload W --threads T --repeat N;
* ours, distributed: the same binary with --scheduler, against a cluster this script starts from the
  real binaries: `tessera-scheduler --listen 127.0.0.1:PORT` and W workers
  `tessera-worker --scheduler ... --threads 1` (W = --workers, default 2). Timings cover building the
  graph, submitting its layers, running every task on the workers and gathering the result (the
  client connects before the clock starts, as dask's does);
* dask.distributed: the same workload in a fresh `--python` process on
  `LocalCluster(n_workers=W, threads_per_worker=1, processes=True)`, graph building and compute timed
  like ours; the cluster's start-up is reported separately.

The sides run interleaved, one repetition each in turn, so a burst of outside load hits all of them;
each side's best repetition counts. Prints a table, then everything as one JSON object on the last
line. For the per_task workload it also prints the end-to-end time per chunk (10,000 chunks).

Needs only the Python standard library; dask is imported only in the --python child (create that
environment as compare_dask.py's docstring says). Without dask the dask column is skipped.

    python3 benches/compare_distributed.py --python /tmp/daskenv/bin/python --repeat 5
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from compare_dask import (DASK_WORKLOADS, WORKLOADS, Failed, Missing, best, checked_args, engine_version, fmt,
                          parse_runs, ratio, run_child)

REPO = Path(__file__).resolve().parent.parent
RELEASE = REPO / "target" / "release"
CHUNKS = {"per_task": 10_000}

# Runs in the --python interpreter: `python -c DASK_DISTRIBUTED '<json config>'`. Prints one JSON line
# for the cluster start-up, then one per repetition. The workloads are compare_dask.py's.
DASK_DISTRIBUTED = r"""
import json, sys, time
cfg = json.loads(sys.argv[1])
try:
    import numpy as np
    import dask.array as da
    from dask.distributed import Client, LocalCluster
except ImportError as e:
    print(json.dumps({"missing": e.name or "dask"}))
    sys.exit(3)

""" + DASK_WORKLOADS + r"""
if __name__ == "__main__":
    start = time.perf_counter()
    cluster = LocalCluster(n_workers=cfg["workers"], threads_per_worker=1, processes=True,
                           dashboard_address=None)
    client = Client(cluster)
    print(json.dumps({"startup_seconds": time.perf_counter() - start}), flush=True)
    for rep in range(cfg["repeat"]):
        start = time.perf_counter()
        value = dask_workload(cfg["workload"]).compute()
        seconds = time.perf_counter() - start
        print(json.dumps({"workload": cfg["workload"], "seconds": seconds,
                          "result": float(np.mean(value)), "repetition": rep}), flush=True)
    client.close()
    cluster.close()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A tessera scheduler and workers started from the release binaries; stopped on exit. They
    authenticate with a secret file of their own (TESSERA_SECRET_FILE, which the workload runs inherit);
    with `tls`, they also talk mutual TLS with certificates from `tessera-scheduler certs`, and the
    workload runs find them through TESSERA_TLS_CA/CERT/KEY."""

    def __init__(self, workers: int, tls: bool, insecure: bool):
        self.dir = tempfile.TemporaryDirectory(prefix="tessera-bench-")
        os.environ["TESSERA_SECRET_FILE"] = os.path.join(self.dir.name, "cluster.secret")
        port = free_port()
        scheme = "http"
        if tls:
            certs = os.path.join(self.dir.name, "certs")
            subprocess.run([str(RELEASE / "tessera-scheduler"), "certs", certs], check=True,
                           stdout=subprocess.DEVNULL)
            os.environ["TESSERA_TLS_CA"] = os.path.join(certs, "ca.pem")
            os.environ["TESSERA_TLS_CERT"] = os.path.join(certs, "node.pem")
            os.environ["TESSERA_TLS_KEY"] = os.path.join(certs, "node-key.pem")
            scheme = "https"
        self.address = f"{scheme}://127.0.0.1:{port}"
        env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "warn"))
        if insecure:
            env["TESSERA_INSECURE"] = "true"
        self.procs = [subprocess.Popen(
            [str(RELEASE / "tessera-scheduler"), "--listen", f"127.0.0.1:{port}"],
            env=env, stdout=subprocess.DEVNULL)]
        for _ in range(workers):
            self.procs.append(subprocess.Popen(
                [str(RELEASE / "tessera-worker"), "--scheduler", self.address, "--threads", "1"],
                env=env, stdout=subprocess.DEVNULL))
        self.workers = workers

    def wait_ready(self, workloads_binary: Path, timeout: float = 30) -> None:
        """Waits until every worker has registered (a tiny job reports the cluster's threads)."""
        deadline = time.monotonic() + timeout
        while True:
            out = subprocess.run([str(workloads_binary), "--workload", "per_task", "--scheduler",
                                  self.address], capture_output=True, text=True)
            if out.returncode == 0:
                threads = json.loads(out.stdout.splitlines()[-1])["threads"]
                if threads >= self.workers:
                    return
            if time.monotonic() > deadline:
                raise Failed(f"the cluster at {self.address} did not come up: {out.stderr.strip()}")
            time.sleep(0.2)

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=35)
            except subprocess.TimeoutExpired:
                p.kill()
        self.dir.cleanup()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", default=sys.executable,
                    help="interpreter with dask.distributed (default: this one)")
    ap.add_argument("--repeat", type=int, default=5, help="repetitions per side; the best counts")
    ap.add_argument("--workers", type=int, default=2, help="workers of 1 thread each (default 2)")
    ap.add_argument("--workloads", default="headline,per_task",
                    help="comma-separated subset of " + ",".join(WORKLOADS))
    ap.add_argument("--no-build", action="store_true", help="use the binaries already built")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per process")
    ap.add_argument("--tls", action="store_true",
                    help="run the cluster over mutual TLS")
    ap.add_argument("--insecure", action="store_true",
                    help="run the cluster without authentication, to measure what it costs")
    args, workloads = checked_args(ap, ("repeat", "workers"))

    if not args.no_build:
        cmd = ["cargo", "build", "--release", "-p", "tessera-examples", "--example", "workloads",
               "-p", "tessera-scheduler", "-p", "tessera-worker", "--bins"]
        print("building: " + " ".join(cmd), file=sys.stderr)
        if subprocess.run(cmd, cwd=REPO).returncode != 0:
            print("error: cargo build failed", file=sys.stderr)
            return 1
    binary = RELEASE / "examples" / "workloads"
    for b in (binary, RELEASE / "tessera-scheduler", RELEASE / "tessera-worker"):
        if not b.exists():
            print(f"error: {b} does not exist; build it or drop --no-build", file=sys.stderr)
            return 1

    threads = args.workers  # the local executor gets as many threads as the cluster has
    load_start = os.getloadavg()
    results: dict[str, dict] = {}
    dask_missing = None
    failures = 0
    with Cluster(args.workers, args.tls, args.insecure) as cluster:
        cluster.wait_ready(binary)
        for w in workloads:
            print(f"running {w} ...", file=sys.stderr)
            runs: dict[str, list] = {"local": [], "distributed": [], "dask": []}
            r: dict = {}
            try:
                for _ in range(args.repeat):
                    out, _ = run_child([str(binary), "--workload", w, "--threads", str(threads)],
                                       args.timeout, False)
                    runs["local"] += parse_runs(out)
                    out, _ = run_child([str(binary), "--workload", w, "--scheduler", cluster.address],
                                       args.timeout, False)
                    runs["distributed"] += parse_runs(out)
                if dask_missing is None:
                    cfg = {"workload": w, "workers": args.workers, "repeat": args.repeat}
                    try:
                        out, _ = run_child([args.python, "-c", DASK_DISTRIBUTED, json.dumps(cfg)],
                                           args.timeout, False)
                        lines = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
                        r["dask_startup_seconds"] = lines[0]["startup_seconds"]
                        runs["dask"] = lines[1:]
                    except Missing as e:
                        dask_missing = str(e)
                        print(f"dask.distributed not installed, skipping ({e})", file=sys.stderr)
            except (Failed, Missing) as e:
                print(f"error: {w}: {e}", file=sys.stderr)
                r["error"] = str(e)
                failures += 1
            for side, rs in runs.items():
                r[side] = best(rs) if rs else None
            local_s = r.get("local") and r["local"]["seconds"]
            dist_s = r.get("distributed") and r["distributed"]["seconds"]
            dask_s = r.get("dask") and r["dask"]["seconds"]
            r["distributed_over_local"] = ratio(dist_s, local_s)
            # Each repetition ran local then distributed back to back: the median of those paired
            # ratios shrugs off a burst of outside load that hit one repetition.
            paired = [d["seconds"] / l["seconds"] for l, d in zip(runs["local"], runs["distributed"])]
            r["distributed_over_local_paired_median"] = statistics.median(paired) if paired else None
            r["dask_over_distributed"] = ratio(dask_s, dist_s)
            if w in CHUNKS:
                n = CHUNKS[w]
                r["us_per_chunk"] = {k: v and v * 1e6 / n for k, v in
                                     (("local", local_s), ("distributed", dist_s), ("dask", dask_s))}
            results[w] = r

    header = (f"{'workload':<11} {'local s':>8} {'dist s':>8} {'dist/local':>10} {'paired':>7} "
              f"{'dask.dist s':>11} {'dask/dist':>9}  result (local | dist | dask)")
    print(header)
    print("-" * len(header))
    for w, r in results.items():
        loc, dist, dask = r.get("local"), r.get("distributed"), r.get("dask")
        checks = " | ".join(fmt(s and s["result"], ".6g") for s in (loc, dist, dask))
        print(f"{w:<11} {fmt(loc and loc['seconds'], '.3f'):>8} {fmt(dist and dist['seconds'], '.3f'):>8} "
              f"{fmt(r['distributed_over_local'], '.2f'):>10} "
              f"{fmt(r['distributed_over_local_paired_median'], '.2f'):>7} {fmt(dask and dask['seconds'], '.3f'):>11} "
              f"{fmt(r['dask_over_distributed'], '.1f'):>9}  {checks}")
        if "us_per_chunk" in r:
            u = r["us_per_chunk"]
            print(f"{'':<11} per chunk, end to end: local {fmt(u['local'], '.1f')} µs, distributed "
                  f"{fmt(u['distributed'], '.1f')} µs, dask.distributed {fmt(u['dask'], '.1f')} µs")
    startups = [r["dask_startup_seconds"] for r in results.values() if "dask_startup_seconds" in r]
    print("(s: best of the repetitions; dist/local: best over best; paired: median over the "
          "repetitions of distributed over the local run just before it)")
    auth = "not authenticated" if args.insecure else "authenticated"
    print(f"(cluster: {auth}{', mutual TLS' if args.tls else ''}; "
          f"best of {args.repeat}, interleaved; {args.workers} workers x 1 thread; local executor "
          f"{threads} threads; dask's LocalCluster start-up, not counted: "
          f"{fmt(min(startups) if startups else None, '.2f')} s)")
    print(f"(load average {load_start[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end, "
          f"{os.cpu_count()} cores)")
    print()
    print(json.dumps({
        "engine": engine_version(),
        "workers": args.workers,
        "tls": args.tls,
        "insecure": args.insecure,
        "repeat": args.repeat,
        "python": args.python,
        "dask_skipped": dask_missing,
        "loadavg": [round(load_start[0], 2), round(os.getloadavg()[0], 2)],
        "workloads": results,
    }))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
