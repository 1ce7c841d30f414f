"""The compiler at scale (issue 14): a realistic 1,000-SLO mix, built with the real CLI.

Run: .venv/bin/python bench/scale_bench.py [--slos 1000] [--per-file 10,100] [--skip-test]

For each spread of the SLOs over files (10 a file: 100 services; 100 a file: 10 services)
a throwaway project gets the mix below, and the real `modelmon` CLI, each run in a process
of its own, is timed for: a full build (`build --no-cache`), an unchanged rebuild (`build`),
a rebuild after one SLO's objective changed, and `modelmon validate`; peak memory is the
largest child's. Results go to stdout as a table and to bench/results/scale.json.

The mix: objectives from 90 to 99.95, periods 28d and 30d, the three shortcut SLIs (every
model, grouped by model) and Sloth-style events and raw SLIs, every seventh SLO with a
selector and every tenth (and every 90% one) with its own windows.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
MODELMON = REPO / ".venv" / "bin" / "modelmon"
RESULTS = REPO / "bench" / "results" / "scale.json"
OBJECTIVES = (90, 95, 99, 99.5, 99.9, 99.95)
KINDS = ("availability", "error_rate", "latency", "events", "raw")
# Custom windows: every tenth SLO, and every 90% one (the default 1h page would need 144 %
# errors at a 10 % budget).
WINDOWS = [
    {"severity": "page", "long": "6h", "short": "30m", "budget_percent": 5},
    {"severity": "ticket", "long": "3d", "short": "6h", "budget_percent": 10},
]


def sli(kind: str, index: int) -> dict:
    if kind == "latency":
        block: dict = {"threshold_ms": (1000, 2500, 5000)[index % 3]}
    elif kind == "events":
        job = f'job="gateway-{index % 5}"'
        return {
            "events": {
                "error_query": f'sum by (route) (rate(http_requests_total{{{job},code=~"5.."}}[{{{{.window}}}}]))',
                "total_query": f"sum by (route) (rate(http_requests_total{{{job}}}[{{{{.window}}}}]))",
                "group_by": ["route"],
            }
        }
    elif kind == "raw":
        return {"raw": {"error_ratio_query": f"job:errors{index % 5}:ratio_rate{{{{.window}}}}"}}
    else:
        block = {}
    if index % 7 == 0:
        block["selector"] = 'model=~"claude.*"'
    return {kind: block}


def slo(index: int) -> dict:
    kind = KINDS[index % len(KINDS)]
    entry = {
        "name": f"{kind.replace('_', '-')}-{index}",
        "objective": OBJECTIVES[(index // len(KINDS)) % len(OBJECTIVES)],
        "period": "28d" if (index // 3) % 2 else "30d",
        "sli": sli(kind, index),
    }
    if index % 10 == 0 or entry["objective"] == 90:
        entry["alerting"] = {"windows": WINDOWS}
    return entry


def make_project(root: Path, count: int, per_file: int) -> list[Path]:
    (root / "slos").mkdir(parents=True)
    paths = []
    for file_index, start in enumerate(range(0, count, per_file)):
        spec = {
            "version": "modelmon/v1",
            "service": f"svc-{file_index:03d}",
            "labels": {"team": f"team-{file_index % 7}"},
            "slos": [slo(i) for i in range(start, min(start + per_file, count))],
        }
        path = root / "slos" / f"svc-{file_index:03d}.yaml"
        path.write_text(yaml.safe_dump(spec, sort_keys=False, width=1000), encoding="utf-8")
        paths.append(path)
    return paths


def run(root: Path, *args: str) -> dict:
    """One CLI run in its own process: wall seconds, CPU seconds of it and its children, peak RSS."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([str(MODELMON), *args], cwd=root, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise SystemExit(f"modelmon {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # ru_maxrss of RUSAGE_CHILDREN is the largest child so far (KiB on Linux).
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "peak_rss_mb": round(after.ru_maxrss / 1024, 1)}


def measure(count: int, per_file: int, test: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="modelmon-scale-") as folder:
        root = Path(folder)
        specs = make_project(root, count, per_file)
        result = {"slos": count, "per_file": per_file, "files": len(specs)}
        result["full_build"] = run(root, "build", "--no-cache")
        result["unchanged_build"] = run(root, "build")
        first = specs[0].read_text(encoding="utf-8")
        specs[0].write_text(first.replace("objective: 90", "objective: 91", 1), encoding="utf-8")
        result["one_slo_changed_build"] = run(root, "build")
        # After a build: the test groups it kept stand for those of every unchanged SLO.
        result["validate"] = run(root, "validate")
        if test:
            result["test"] = run(root, "test")
        return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slos", type=int, default=1000)
    parser.add_argument("--per-file", default="10,100", help="SLOs a file, one spread per value (default 10,100)")
    parser.add_argument("--test", action="store_true", help="also time `modelmon test` (promtool; long)")
    args = parser.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    results = []
    for per_file in (int(n) for n in args.per_file.split(",")):
        print(f"{args.slos} SLOs, {per_file} a file ...", file=sys.stderr, flush=True)
        results.append(measure(args.slos, per_file, args.test))
    columns = ["full_build", "unchanged_build", "one_slo_changed_build", "validate"] + (["test"] if args.test else [])
    print("| SLOs | a file | files | " + " | ".join(f"{c} s (CPU s)" for c in columns) + " | peak RSS MB |")
    print("|---:|---:|---:|" + "---:|" * len(columns) + "---:|")
    for r in results:
        cells = " | ".join(f"{r[c]['wall_s']} ({r[c]['cpu_s']})" for c in columns)
        peak = max(r[c]["peak_rss_mb"] for c in columns)
        print(f"| {r['slos']} | {r['per_file']} | {r['files']} | {cells} | {peak} |")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    report = {"commit": commit.stdout.strip(), "nproc": len(os.sched_getaffinity(0)), "runs": results}
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
