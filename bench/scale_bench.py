"""The compiler at scale (issue 14): a realistic 1,000-SLO mix, built with the real CLI.

Run: .venv/bin/python bench/scale_bench.py [--slos 1000] [--per-file 10,100] [--test]
     [--sweep 10,100,300,1000] [--test-sizes 1,10]

`--sweep` builds each size (10 SLOs a file) for the plot of build time against SLO count
(bench/results/scale.png and docs/img/scale.png; needs matplotlib, `make bench` installs it);
`--test-sizes` times `modelmon test` of N SLOs of the mix in one file, for seconds per SLO.
A run that times neither keeps the last figures of `modelmon test` in the results (with the
commit they were measured at). Each rebuild and validate runs `--repeat` times (default 3),
the median kept, and a CPU probe records how fast the (shared) machine was that day, before
each spread and at the end (its speed drifts by half within an hour).
`--against REV` times another commit's CLI too (a git worktree of it), on a project of its
own, the two by turns: on a shared machine whose speed drifts, the pair compares the code.

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
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from modelmon import cache

REPO = Path(__file__).resolve().parent.parent
MODELMON = REPO / ".venv" / "bin" / "modelmon"
RESULTS = REPO / "bench" / "results" / "scale.json"
PLOTS = (REPO / "bench" / "results" / "scale.png", REPO / "docs" / "img" / "scale.png")
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


def run(root: Path, *args: str, cli: Cli | None = None) -> dict:
    """One CLI run in its own process: wall seconds, CPU seconds and peak RSS of it and the
    processes it waited for (promtool, its generating workers), from wait4: this run's own.
    `cli`: the modelmon to run (default: this checkout's)."""
    command, env = cli or ([str(MODELMON)], USER_ENV)
    with tempfile.TemporaryFile() as said:
        started = time.perf_counter()
        child = subprocess.Popen([*command, *args], cwd=root, stdout=said, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode:
            said.seek(0)
            raise SystemExit(f"modelmon {' '.join(args)} failed:\n{said.read().decode(errors='replace')}")
    cpu = usage.ru_utime + usage.ru_stime
    # ru_maxrss: the largest of the process and its waited-for descendants (KiB on Linux).
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


# A modelmon to run: its command and environment.
Cli = tuple[list[str], dict[str, str]]
# Each run's environment: this process's, as a user's Python has it. This machine's sets
# PYTHONDONTWRITEBYTECODE, with which every run compiles modelmon's modules again (0.3 to 0.4 s
# of a one-change build); a user's Python keeps their bytecode, and pip compiles a wheel's at install.
USER_ENV = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


@contextlib.contextmanager
def checkout_cli(revision: str):
    """The modelmon of another commit (a worktree of it, run by this environment's Python), for
    --against: the two timed turn about, so a shared machine's drift falls on both alike."""
    with tempfile.TemporaryDirectory(prefix="modelmon-against-") as folder:
        tree = Path(folder) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(tree), revision], cwd=REPO, check=True)
        try:
            code = "import sys; from modelmon.cli import main; sys.argv[0] = 'modelmon'; sys.exit(main())"
            yield [str(REPO / ".venv" / "bin" / "python"), "-c", code], {**USER_ENV, "PYTHONPATH": str(tree)}
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, check=False)


def median(runs: list[dict]) -> dict:
    """The run of median wall time, with every run's wall time beside it (a shared machine's noise)."""
    middle = sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]
    return {**middle, "wall_s_runs": [r["wall_s"] for r in runs]} if len(runs) > 1 else middle


def measure(count: int, per_file: int, test: bool, repeat: int = 1, against: Cli | None = None) -> dict:
    """The four timings of this checkout's CLI (and of `against`'s, on a project of its own, run by
    turns with this one's: `result["against"]`)."""
    clis = {"this": None, **({"against": against} if against else {})}
    with tempfile.TemporaryDirectory(prefix="modelmon-scale-") as folder:
        roots = {side: Path(folder) / side for side in clis}
        specs = {side: make_project(root, count, per_file) for side, root in roots.items()}
        found = {side: {"slos": count, "per_file": per_file, "files": len(specs[side])} for side in clis}

        def timed(key: str, *args: str, change: bool = False) -> None:
            runs: dict[str, list[dict]] = {side: [] for side in clis}
            for n in range(1 if key == "full_build" else repeat):
                for side, cli in clis.items():
                    if change:  # one SLO's objective each time: the first 90 % one, to 91 % and back
                        first = specs[side][0].read_text(encoding="utf-8")
                        was, now = ("objective: 90\n", "objective: 91\n")[:: 1 if n % 2 == 0 else -1]
                        specs[side][0].write_text(first.replace(was, now, 1), encoding="utf-8")
                    runs[side].append(run(roots[side], *args, cli=cli))
            for side in clis:
                found[side][key] = median(runs[side])

        timed("full_build", "build", "--no-cache")
        # Every side's outputs settled, as a user's are when they build again: a build trusts no
        # output written within cache.SETTLED_NS of its look, and reads it. Without the wait the
        # side built last (just now) read all 3,700 outputs while the other's had settled:
        # 0.38 against 0.24 to 0.28 s, the same code on two such projects.
        time.sleep(cache.SETTLED_NS / 1e9 + 0.5)
        timed("unchanged_build", "build")
        timed("one_slo_changed_build", "build", change=True)
        timed("validate", "validate")  # after a build: its kept test groups stand for every unchanged SLO
        result = found["this"]
        if test:
            result["test"] = run(roots["this"], "test")
            result["test"]["s_per_slo"] = round(result["test"]["wall_s"] / count, 2)
        if against:
            result["against"] = found["against"]
        return result


def measure_tests(count: int) -> dict:
    """`modelmon test` of `count` SLOs of the mix in one file, after a build."""
    with tempfile.TemporaryDirectory(prefix="modelmon-scale-test-") as folder:
        root = Path(folder)
        make_project(root, count, count)
        run(root, "build")
        tested = run(root, "test")
        return {"slos": count, "test": tested, "s_per_slo": round(tested["wall_s"] / count, 2)}


def cpu_probe() -> float:
    """This machine's speed today, as seconds for 10M additions in a Python loop (median of 5): a
    shared machine's figures on two days compare only beside it."""
    times = []
    for _ in range(5):
        started = time.perf_counter()
        total = 0
        for n in range(10_000_000):
            total += n
        times.append(time.perf_counter() - started)
    return round(sorted(times)[2], 3)


def plot(sweep: list[dict], tests: list[dict]) -> None:
    """Build times against SLO count (log-log), and `modelmon test` seconds per SLO in one file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    counts = [r["slos"] for r in sweep]
    for key, label, style in (
        ("full_build", "full build (--no-cache)", "o-"),
        ("one_slo_changed_build", "one SLO changed", "s-"),
        ("validate", "validate", "^--"),
        ("unchanged_build", "unchanged build", "v:"),
    ):
        left.plot(counts, [r[key]["wall_s"] for r in sweep], style, label=label)
    left.plot(
        counts, [c * sweep[-1]["full_build"]["wall_s"] / counts[-1] for c in counts], "k:", alpha=0.4, label="linear"
    )
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("SLOs (the issue 14 mix, 10 a file)")
    left.set_ylabel("wall seconds, 2 cores")
    left.set_title("modelmon build", fontsize=10)
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=8)
    if tests:
        right.plot([t["slos"] for t in tests], [t["s_per_slo"] for t in tests], "o-")
        right.set_xscale("log")
        right.set_ylim(bottom=0)
    right.set_xlabel("SLOs in one file")
    right.set_ylabel("wall seconds per SLO")
    right.set_title("modelmon test (promtool 3), per SLO", fontsize=10)
    right.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    for path in PLOTS:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slos", type=int, default=1000)
    parser.add_argument("--per-file", default="10,100", help="SLOs a file, one spread per value (default 10,100)")
    parser.add_argument("--test", action="store_true", help="also time `modelmon test` of the mix, first spread (long)")
    parser.add_argument("--sweep", default="", help="SLO counts to build at 10 a file, for the plot (e.g. 10,100,1000)")
    parser.add_argument("--test-sizes", default="", help="SLO counts in one file to time `modelmon test` for")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each rebuild and validate; the median is kept")
    parser.add_argument("--against", default="", help="a commit whose CLI is timed too, by turns (the spreads only)")
    args = parser.parse_args()
    # `modelmon test` takes an hour for the mix: a run that does not time it keeps the last figures
    # (with the commit they were measured at), as the plot does.
    earlier = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {}
    probe = cpu_probe()
    print(f"CPU probe (10M additions in Python, median of 5): {probe} s", file=sys.stderr, flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    results = []
    with checkout_cli(args.against) if args.against else contextlib.nullcontext() as against:
        for at, per_file in enumerate(int(n) for n in args.per_file.split(",")):
            print(f"{args.slos} SLOs, {per_file} a file ...", file=sys.stderr, flush=True)
            spread_probe = probe if at == 0 else cpu_probe()
            # `modelmon test` runs each SLO's groups against its own rules (modelmon/focused.py): how
            # the SLOs are spread over files changes little of it, so the first spread is tested alone
            # (--test-sizes measures the other end, many SLOs in one file).
            results.append(measure(args.slos, per_file, args.test and at == 0, args.repeat, against))
            results[-1]["cpu_probe_s"] = spread_probe
    columns = ["full_build", "unchanged_build", "one_slo_changed_build", "validate"]
    print("| SLOs | a file | files | " + " | ".join(f"{c} s (CPU s)" for c in columns) + " | peak RSS MB |")
    print("|---:|---:|---:|" + "---:|" * len(columns) + "---:|")
    for r in results:
        for name, row in (("", r), (f" ({args.against})", r.get("against"))):
            if row:
                cells = " | ".join(f"{row[c]['wall_s']} ({row[c]['cpu_s']})" for c in columns)
                peak = max(row[c]["peak_rss_mb"] for c in columns)
                print(f"| {row['slos']}{name} | {row['per_file']} | {row['files']} | {cells} | {peak} |")
    for r in results:
        if "test" in r:
            print(
                f"\nmodelmon test of the {r['slos']}-SLO mix ({r['per_file']} a file): {r['test']['wall_s']} s "
                f"({r['test']['cpu_s']} CPU s), {r['test']['s_per_slo']} s per SLO, peak {r['test']['peak_rss_mb']} MB"
            )
    sweep = []
    for count in (int(n) for n in args.sweep.split(",") if n):
        print(f"sweep: {count} SLOs, 10 a file ...", file=sys.stderr, flush=True)
        if results and results[0]["slos"] == count and results[0]["per_file"] == 10:
            sweep.append(results[0])
        else:
            before = cpu_probe()
            sweep.append({**measure(count, 10, False, args.repeat), "cpu_probe_s": before})
    tests = []
    for count in (int(n) for n in args.test_sizes.split(",") if n):
        print(f"modelmon test: {count} SLOs in one file ...", file=sys.stderr, flush=True)
        tests.append(measure_tests(count))
    if sweep:
        print("\n| SLOs | full build s | unchanged s | one SLO changed s | validate s | full build s per SLO |")
        print("|---:|---:|---:|---:|---:|---:|")
        for r in sweep:
            print(
                f"| {r['slos']} | {r['full_build']['wall_s']} | {r['unchanged_build']['wall_s']} | "
                f"{r['one_slo_changed_build']['wall_s']} | {r['validate']['wall_s']} | "
                f"{r['full_build']['wall_s'] / r['slos']:.4f} |"
            )
    if tests:
        print("\n| SLOs in one file | modelmon test s (CPU s) | s per SLO |")
        print("|---:|---:|---:|")
        for t in tests:
            print(f"| {t['slos']} | {t['test']['wall_s']} ({t['test']['cpu_s']}) | {t['s_per_slo']} |")
    if sweep:
        plot(sweep, tests or earlier.get("tests", []))
        print(f"\nwrote {', '.join(str(p.relative_to(REPO)) for p in PLOTS)}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "commit": commit.stdout.strip(),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_probe_s": probe,
        "cpu_probe_end_s": cpu_probe(),
        "python_bytecode": "kept: each run's environment without PYTHONDONTWRITEBYTECODE",
        "repeat": args.repeat,
        **({"against": args.against} if args.against else {}),
        "runs": results,
        "sweep": sweep,
        "tests": tests,
    }
    if not tests and earlier.get("tests"):
        report["tests"] = earlier["tests"]
        report["tests_commit"] = earlier.get("tests_commit", earlier.get("commit"))
    mix_test = (earlier.get("runs") or [{}])[0].get("test")
    if not args.test and (mix_test or earlier.get("mix_test")):
        report["mix_test"] = mix_test or earlier["mix_test"]
        report["mix_test_commit"] = earlier.get("commit") if mix_test else earlier["mix_test_commit"]
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
