"""How long modelmon takes, and how much it writes, for 1 to 1000 SLOs over 50 models.

Run: .venv/bin/python bench/compile_bench.py [--sizes 1,100,1000] [--layout per-model|grouped] [--profile]

For each size N a throwaway project gets N SLOs in slos/ (at most 50 per file, one
service per file) and is measured in a subprocess of its own, so one size's peak
memory and warm caches never leak into the next. Results go to stdout as markdown
tables and to bench/results/compile.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
# Run as a script, sys.path starts at bench/; the generator package lives at the repo root.
sys.path.insert(0, str(REPO))

from modelmon import build, promtool  # noqa: E402
from modelmon.outputs.rules import rule_file  # noqa: E402

RESULTS = REPO / "bench" / "results" / "compile.json"
SLOS_PER_FILE = 50
KINDS = ("availability", "error_rate", "latency")
LATENCY_THRESHOLDS_MS = (1000, 2500, 5000)
# Objectives people actually pick per kind; cycled so the specs are not 1000 copies of one SLO.
OBJECTIVES = {"availability": (99, 99.5, 99.9), "error_rate": (95, 99), "latency": (95, 99, 90)}

# 50 model names as gateways, providers and local runtimes spell them (slashes, colons,
# dates, capitals), because names end up in selectors, SLO names and alert names.
MODELS = (
    "claude-3-5-sonnet-20241022",
    "claude-3-5-haiku-20241022",
    "claude-3-7-sonnet-20250219",
    "claude-sonnet-4-20250514",
    "claude-opus-4-1-20250805",
    "anthropic/claude-3-haiku",
    "anthropic.claude-3-sonnet-20240229-v1:0",
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4o-2024-08-06",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4.1-nano",
    "openai/gpt-4.1",
    "o1",
    "o3-mini",
    "o4-mini",
    "gpt-3.5-turbo",
    "text-embedding-3-small",
    "text-embedding-3-large",
    "whisper-1",
    "tts-1",
    "gemini-1.5-pro",
    "gemini-1.5-flash",
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "google/gemini-2.0-flash",
    "mistral-large-latest",
    "mistral-small-latest",
    "codestral-latest",
    "mistralai/Mixtral-8x7B-Instruct",
    "mistral:7b",
    "llama3.2",
    "llama3.1:8b",
    "llama3.3:70b",
    "meta-llama/Llama-3.1-70B-Instruct",
    "meta-llama/Llama-3.2-3B-Instruct",
    "qwen2.5:7b",
    "qwen2.5-coder:32b",
    "Qwen/Qwen2.5-72B-Instruct",
    "deepseek-r1:14b",
    "deepseek-chat",
    "deepseek-ai/DeepSeek-V3",
    "phi3:mini",
    "gemma2:9b",
    "command-r-plus",
    "command-r",
    "nomic-embed-text",
    "grok-2-1212",
    "amazon.titan-text-express-v1",
)
SERVICES = ("chat", "search", "support-bot", "code-assist", "summarizer", "translation", "moderation", "agents")
REGIONS = ("eu", "us", "apac")

LAYOUTS = {
    "per-model": 'each SLO reads one model (selector: model="<name>"); model = SLO index mod 50, '
    "so every file holds one SLO per model and N=1000 gives each model 20 SLOs",
    "grouped": "each SLO reads all 50 models, grouped by model (the default group_by), one series per model",
}


def slug(text: str) -> str:
    """A model name as an SLO name may spell it ([a-zA-Z0-9_.-])."""
    return "".join(c if c.isalnum() or c in "_.-" else "-" for c in text)


def slo_entry(index: int, layout: str) -> dict:
    kind = KINDS[index % len(KINDS)]
    objectives = OBJECTIVES[kind]
    objective = objectives[(index // len(KINDS)) % len(objectives)]
    block: dict = {}
    if kind == "latency":
        block["threshold_ms"] = LATENCY_THRESHOLDS_MS[(index // len(KINDS)) % len(LATENCY_THRESHOLDS_MS)]
    if layout == "per-model":
        model = MODELS[index % len(MODELS)]
        block["selector"] = f'model="{model}"'
        name = f"{slug(model)}-{kind.replace('_', '-')}"
        what = f"calls to {model}"
    else:
        name = f"{kind.replace('_', '-')}-{index}"
        what = "calls to each model"
    if kind == "latency":
        description = f"{objective}% of {what} answer within {block['threshold_ms']} ms over 30 days."
    elif kind == "availability":
        description = f"{objective}% of {what} succeed over 30 days."
    else:
        description = f"At most {100 - objective:g}% of {what} fail over 30 days."
    return {"name": name, "description": description, "objective": objective, "sli": {kind: block}}


def service_name(file_index: int) -> str:
    service = SERVICES[file_index % len(SERVICES)]
    region = REGIONS[(file_index // len(SERVICES)) % len(REGIONS)]
    cycle = file_index // (len(SERVICES) * len(REGIONS))
    return f"{service}-{region}" + (f"-{cycle + 1}" if cycle else "")


def make_project(root: Path, count: int, layout: str) -> list[Path]:
    """N SLOs over files of at most SLOS_PER_FILE, one service per file."""
    (root / build.SLO_DIR).mkdir(parents=True)
    paths = []
    for file_index, start in enumerate(range(0, count, SLOS_PER_FILE)):
        service = service_name(file_index)
        spec = {
            "version": "modelmon/v1",
            "service": service,
            "labels": {"team": "ml-platform"},
            "scrape_interval": "15s",
            "slos": [slo_entry(i, layout) for i in range(start, min(start + SLOS_PER_FILE, count))],
        }
        path = root / build.SLO_DIR / f"{service}.yaml"
        path.write_text(yaml.safe_dump(spec, sort_keys=False, width=1000), encoding="utf-8")
        paths.append(path)
    return paths


def timed(fn, repeats: int):
    """Best and median wall time of `repeats` calls, and the last call's result."""
    times, result = [], None
    for _ in range(repeats):
        # Drop the previous run's output first, so peak memory reflects one run, not two.
        result = None
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return {"best_s": min(times), "median_s": statistics.median(times), "runs_s": times}, result


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def write_plain(root: Path, files: dict[str, str]) -> None:
    for path, content in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")


def output_stats(compiled: build.Compiled, models_per_slo: int) -> dict:
    def size(prefix: str) -> dict:
        texts = [c for p, c in compiled.files.items() if p.startswith(prefix)]
        return {
            "files": len(texts),
            "bytes": sum(len(t.encode()) for t in texts),
            "lines": sum(t.count("\n") for t in texts),
        }

    per_kind: dict[str, dict] = {}
    plans = [plan for service in compiled.plans.values() for plan in service]
    for plan in plans:
        # The rules one SLO compiles to alone (in a file with others, it shares their rates).
        rules = [rule for group in rule_file([plan]).groups for rule in group["rules"]]
        # objective, error_budget and time_period are vector() constants: one series each;
        # every other recording (rates, tiles, ratios, burn rates) has one series per model.
        constants = sum(r.get("expr", "").startswith("vector(") for r in rules)
        per_model = sum("record" in r for r in rules) - constants
        per_kind.setdefault(
            plan.kind,
            {
                "slos": 0,
                "recording_rules": sum("record" in r for r in rules),
                "alert_rules": sum("alert" in r for r in rules),
                "sli_windows": list(plan.windows),
                "series_per_slo": per_model * models_per_slo + constants,
                "series_per_slo_at_50_models": per_model * len(MODELS) + constants,
            },
        )["slos"] += 1
    tests = [test for path, text in compiled.files.items() if path.startswith(build.TESTS_DIR) for test in _tests(text)]
    return {
        "slos": len(plans),
        "rules": size(build.RULES_DIR + "/"),
        "promtool_tests": {**size(build.TESTS_DIR + "/"), "test_groups": len(tests)},
        "recording_rules": sum(k["recording_rules"] * k["slos"] for k in per_kind.values()),
        "alert_rules": sum(k["alert_rules"] * k["slos"] for k in per_kind.values()),
        "recorded_series": sum(k["series_per_slo"] * k["slos"] for k in per_kind.values()),
        "per_kind": per_kind,
    }


def _tests(text: str) -> list:
    return yaml.load(text, Loader=yaml.CSafeLoader)["tests"]


def measure(count: int, layout: str) -> dict:
    """Everything for one size; runs in its own process (see main)."""
    repeats = 5 if count <= 100 else 3
    with tempfile.TemporaryDirectory(prefix="modelmon-bench-") as folder:
        root = Path(folder)
        specs = make_project(root, count, layout)
        baseline = maxrss_mb()
        validate, _ = timed(lambda: build.load_all(root), repeats)
        compile_, compiled = timed(lambda: build.compile_all(root), repeats)
        write_plain(root, compiled.files)
        stale, stale_paths = timed(lambda: build.stale_files(root, compiled.files), repeats)
        write, changed = timed(lambda: build.write_all(root, compiled), repeats)
        peak = maxrss_mb()
        return {
            "slos": count,
            "spec_files": len(specs),
            "spec_bytes": sum(p.stat().st_size for p in specs),
            "repeats": repeats,
            "validate": validate,
            "compile": compile_,
            "stale_check": stale,
            "write_all_promtool": write,
            # Both must be empty: the tree was just written from the same compile.
            "stale_after_write": stale_paths,
            "changed_by_write_all": changed.written + changed.removed,
            "maxrss_mb": {"after_imports_and_specs": round(baseline, 1), "peak": round(peak, 1)},
            "output": output_stats(compiled, 1 if layout == "per-model" else len(MODELS)),
        }


def profile_one_slo(layout: str) -> str:
    """cProfile of compile_all on a one-SLO project: top 10 functions by cumulative, then by own time."""
    with tempfile.TemporaryDirectory(prefix="modelmon-bench-") as folder:
        root = Path(folder)
        make_project(root, 1, layout)
        build.compile_all(root)  # warm up: the first call pays for pydantic and regex compilation
        profiler = cProfile.Profile()
        profiler.runcall(build.compile_all, root)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("cumulative").print_stats(10)
    # Cumulative time names the call chain; own time names the code that is actually slow.
    stats.sort_stats("tottime").print_stats(10)
    return out.getvalue()


def machine(tool: str = "promtool", binary: str | None = None) -> dict:
    """The machine, the code and `tool`'s version (the binary the benchmark runs; promtool by default)."""
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "")
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem_kb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal"))
    binary = binary or promtool.find_promtool()
    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "modelmon"], cwd=REPO, capture_output=True, text=True)
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "memory_gb": round(mem_kb / 1024**2, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        tool: version,
        "commit": commit.stdout.strip(),
        "generator_modified": [line[3:] for line in dirty.stdout.splitlines()],
    }


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f}" if seconds >= 1 else f"{seconds * 1000:.1f}"


def tables(results: list[dict]) -> str:
    lines = [
        "| SLOs | files | validate ms (best / median) | compile ms (best / median) | compile ms per SLO "
        "| stale check ms (best / median) | write_all + promtool check rules ms (best / median) "
        "| peak RSS MB | repeats |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        pair = [f"{ms(r[k]['best_s'])} / {ms(r[k]['median_s'])}" for k in ("validate", "compile")]
        rest = [f"{ms(r[k]['best_s'])} / {ms(r[k]['median_s'])}" for k in ("stale_check", "write_all_promtool")]
        lines.append(
            f"| {r['slos']} | {r['spec_files']} | {pair[0]} | {pair[1]} | {ms(r['compile']['median_s'] / r['slos'])} "
            f"| {rest[0]} | {rest[1]} | {r['maxrss_mb']['peak']} | {r['repeats']} |"
        )
    lines += [
        "",
        "| SLOs | rules files: KiB / lines | promtool tests: files, KiB / lines, test groups "
        "| recording / alert rules | recorded series (all SLOs) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        out = r["output"]
        rules, tests = out["rules"], out["promtool_tests"]
        lines.append(
            f"| {r['slos']} | {rules['bytes'] / 1024:,.0f} / {rules['lines']:,} "
            f"| {tests['files']}, {tests['bytes'] / 1024:,.0f} / {tests['lines']:,}, {tests['test_groups']:,} "
            f"| {out['recording_rules']:,} / {out['alert_rules']:,} | {out['recorded_series']:,} |"
        )
    kinds = {kind: info for r in results for kind, info in r["output"]["per_kind"].items()}
    lines += [
        "",
        "| SLI | recording rules per SLO | alert rules per SLO | SLI windows | series per SLO (this layout) "
        "| series per SLO at 50 models grouped |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for kind, info in kinds.items():
        lines.append(
            f"| {kind} | {info['recording_rules']} | {info['alert_rules']} | {', '.join(info['sli_windows'])} "
            f"| {info['series_per_slo']} | {info['series_per_slo_at_50_models']} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,100,1000", help="comma-separated SLO counts (default 1,100,1000)")
    parser.add_argument("--layout", choices=sorted(LAYOUTS), default="per-model", help="how SLOs cover the models")
    parser.add_argument("--profile", action="store_true", help="also cProfile one SLO's compile (top 10 functions)")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker is not None:
        print(json.dumps(measure(args.worker, args.layout)))
        return 0

    info = machine()
    print(f"nproc: {info['nproc']}  cpu: {info['cpu']}  memory: {info['memory_gb']} GB")
    print(f"Python {info['python']}  {info['promtool']}  commit {info['commit']}")
    if info["generator_modified"]:
        print(f"uncommitted generator changes: {' '.join(info['generator_modified'])}")
    # Flushed now: progress goes to stderr, and the header should come before it.
    print(f"layout: {args.layout}: {LAYOUTS[args.layout]}\n", flush=True)

    results = []
    for count in (int(s) for s in args.sizes.split(",")):
        started = time.perf_counter()
        print(f"{count} SLOs ...", end="", flush=True, file=sys.stderr)
        worker = [sys.executable, __file__, "--worker", str(count), "--layout", args.layout]
        done = subprocess.run(worker, capture_output=True, text=True, check=False)
        if done.returncode:
            print(f"\n{done.stderr}", file=sys.stderr)
            return 1
        result = json.loads(done.stdout)
        result["wall_s"] = round(time.perf_counter() - started, 1)
        print(f" {result['wall_s']} s", file=sys.stderr)
        for key, what in (("stale_after_write", "stale after writing"), ("changed_by_write_all", "rewritten")):
            if result[key]:
                print(f"WARNING: {len(result[key])} file(s) {what}: {result[key][:5]}", file=sys.stderr)
        results.append(result)

    print(tables(results))
    report = {"machine": info, "layout": args.layout, "layout_description": LAYOUTS[args.layout], "sizes": results}
    if args.profile:
        report["profile_one_slo"] = profile_one_slo(args.layout)
        print(f"\ncProfile, compile_all of one {KINDS[0]} SLO:\n{report['profile_one_slo']}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
