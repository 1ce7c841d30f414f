"""The `modelmon` command: validate, build, build --check, test, schema, doctor, backfill."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from modelmon import amtool, backfill, build, cache, doctor, promtool
from modelmon.durations import parse_duration
from modelmon.loader import SpecErrors
from modelmon.plan import plan_file

EXIT_SPEC = 2  # invalid specs (or a rule promtool refuses): nothing written
EXIT_STALE = 1  # build --check found outputs that differ from the generator
EXIT_TESTS = 1
EXIT_DOCTOR = 1
EXIT_BACKFILL = 1
EXIT_USAGE = 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="modelmon", description=__doc__)
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="project folder holding slos/ (default: .)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("validate", help="check slos/*.yaml and report every problem; writes nothing")
    b = sub.add_parser("build", help="compile slos/ into rules, promtool tests and the JSON Schema")
    b.add_argument("--check", action="store_true", help="write no outputs; exit 1 listing outputs that are stale")
    b.add_argument("--no-cache", action="store_true", help="rebuild even when specs and generator are unchanged")
    sub.add_parser("test", help="run promtool on the generated rules and their tests")
    sub.add_parser("schema", help="print the JSON Schema of SLO files")
    f = sub.add_parser(
        "backfill",
        help="compute the 5-minute tiles of the past from a running Prometheus, as TSDB blocks",
        description="Long windows (6h and more) average 5-minute tiles that exist only since the rules were "
        "loaded. This computes them for the past from the raw data with `promtool tsdb create-blocks-from "
        "rules`; move the blocks into Prometheus' data directory and restart it.",
    )
    f.add_argument("--prometheus", default="http://localhost:9090", help="Prometheus URL (default: %(default)s)")
    f.add_argument("--output-dir", type=Path, required=True, help="where promtool writes the blocks (must be empty)")
    f.add_argument("--start", type=float, help="Unix time to start from (default: the longest window ago)")
    f.add_argument(
        "--end",
        type=float,
        help="Unix time to end at (default: just before the first tile the running rules recorded, else now)",
    )
    d = sub.add_parser("doctor", help="check a running Prometheus: targets, metrics, panels, rules, Alertmanager")
    d.add_argument("--prometheus", default="http://localhost:9090", help="Prometheus URL (default: %(default)s)")
    d.add_argument(
        "--dashboard",
        type=Path,
        default=Path("grafana/dashboards/models-monitoring.json"),
        help="dashboard whose panel queries to run (default: %(default)s)",
    )
    d.add_argument(
        "--rules",
        type=Path,
        default=Path(build.RULES_DIR),
        help="rule files Prometheus should be running (default: %(default)s)",
    )
    d.add_argument(
        "--alertmanager",
        help="Alertmanager URL as seen from here, to read its failed notifications since it started (default: "
        "Prometheus' scrapes of Alertmanager if it has any, else the URLs Prometheus sends alerts to, when they "
        "can be reached from here)",
    )
    d.add_argument(
        "--notifications-window",
        default="1h",
        help="when Prometheus scrapes Alertmanager, how far back a failed notification counts (default: %(default)s)",
    )
    d.add_argument("--max-age", type=float, default=120.0, help="seconds after which data counts as stale")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    try:
        return COMMANDS[args.command](root, args)
    except SpecErrors as err:
        for error in err.errors:
            print(error, file=sys.stderr)
        count = len(err.errors)
        print(f"{count} error{'s' if count != 1 else ''}; nothing was written", file=sys.stderr)
        return EXIT_SPEC
    except (promtool.PromtoolMissing, amtool.AmtoolMissing) as err:
        print(f"modelmon: {err}", file=sys.stderr)
        return EXIT_SPEC


def _validate(root: Path, args) -> int:
    loaded = build.load_all(root)
    slos = sum(len(item.spec.slos) for item in loaded)
    print(f"{len(loaded)} file(s), {slos} SLO(s): valid")
    return 0


def _build(root: Path, args) -> int:
    key = cache.inputs_key(root, build.spec_paths(root))
    current = None if args.no_cache else cache.outputs_current(root, key)
    # A checkout can bring back a generated file no spec makes any more: that needs a real build.
    if current is not None and not build.orphans(root, current):
        print(f"{len(current)} generated files are up to date (specs and generator unchanged since the last build)")
        return 0
    compiled = build.compile_all(root)
    if args.check:
        stale = build.stale_files(root, compiled.files)
        if stale:
            print("stale generated files (run `make rules` and commit them):", file=sys.stderr)
            for path in stale:
                print(f"  {path}", file=sys.stderr)
            return EXIT_STALE
        cache.remember(root, key, compiled.files)
        print(f"{len(compiled.files)} generated files are up to date")
        return 0
    done = build.write_all(root, compiled)
    cache.remember(root, key, compiled.files)
    for path in done.written:
        print(f"wrote {path}")
    for path in done.removed:
        print(f"removed {path}")
    removed = f", {len(done.removed)} removed" if done.removed else ""
    checks = ", ".join(f"{check}: ok" for check in done.checks)
    print(f"{len(compiled.files)} generated files, {len(done.written)} changed{removed}; {checks}")
    return 0


def _test(root: Path, args) -> int:
    rules = sorted((root / build.RULES_DIR).glob("*.yml"))
    tests = sorted((root / build.TESTS_DIR).glob("*.test.yml"))
    if not tests:
        print(f"no promtool tests under {build.TESTS_DIR}/; run `make rules` first", file=sys.stderr)
        return EXIT_TESTS
    ok, _, output = promtool.check_rules(rules)
    if not ok:
        print(output, file=sys.stderr)
        return EXIT_TESTS
    # One promtool per file, side by side: the whole-period file alone takes most of the time.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        results = list(pool.map(lambda t: promtool.test_rules([t.relative_to(root)], cwd=root), tests))
    groups = sum(t.read_text(encoding="utf-8").count("\n- name: ") for t in tests)
    failures = [f for _, found, _ in results for f in found]
    if all(ok for ok, _, _ in results):
        print(f"promtool: {groups} test groups in {len(tests)} file(s) passed")
        return 0
    for failure in failures:
        print(failure, file=sys.stderr)
    if not failures:
        print("\n".join(output for ok, _, output in results if not ok), file=sys.stderr)
    print(f"promtool: {len({f.group for f in failures})} of {groups} test groups failed", file=sys.stderr)
    return EXIT_TESTS


def _backfill(root: Path, args) -> int:
    loaded = build.load_all(root)
    plans = {item.spec.service: plan_file(item.spec) for item in loaded}
    groups = backfill.tile_groups(plans)
    if not groups:
        print("no SLO has a window of 6h or more: there are no tiles to backfill")
        return 0
    out = args.output_dir.resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        print(f"modelmon: {out} is not an empty folder; give promtool one", file=sys.stderr)
        return EXIT_USAGE
    longest = backfill.longest_window_s(plans)
    end = args.end
    if end is None:
        # Up to the first tile the running rules recorded, so no span holds two sets of tiles.
        try:
            live = backfill.first_live_tile(doctor.Prometheus(args.prometheus, timeout=120), groups, longest)
        except doctor.PrometheusUnreachable as err:
            print(f"modelmon: {err}", file=sys.stderr)
            return EXIT_BACKFILL
        end = live - 1 if live is not None else time.time()
    start = args.start if args.start is not None else end - longest
    with tempfile.TemporaryDirectory(prefix="modelmon-backfill-") as scratch:
        rules = Path(scratch) / "tiles.yml"
        rules.write_text(build.dump_yaml({"groups": groups}), encoding="utf-8")
        command = ["tsdb", "create-blocks-from", "rules", "--quiet", f"--url={args.prometheus}"]
        # The file by a relative name: promtool evaluates a group at a phase hashed from its name and
        # file, and the scratch folder's name is random. Named alike, every backfill evaluates its tiles
        # at the same seconds past the 5 minutes, and gives the same rates to the last bit.
        command += [f"--start={int(start)}", f"--end={int(end)}", f"--output-dir={out}", rules.name]
        try:
            result = promtool.run(*command, cwd=Path(scratch))
        except subprocess.TimeoutExpired:
            print(
                "modelmon: promtool did not finish the backfill in 15 minutes; try a shorter --start", file=sys.stderr
            )
            return EXIT_BACKFILL
    if result.returncode != 0:
        print(f"promtool could not backfill the tiles:\n{(result.stdout + result.stderr).strip()}", file=sys.stderr)
        return EXIT_BACKFILL
    blocks = sorted(p.name for p in out.iterdir() if (p / "meta.json").exists()) if out.is_dir() else []
    if not blocks:
        print("promtool wrote no blocks: Prometheus has no raw data between --start and --end", file=sys.stderr)
        return EXIT_BACKFILL
    tiles = len(backfill.tile_names(groups))
    span = (
        f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(start))} to {time.strftime('%Y-%m-%d %H:%M', time.gmtime(end))}"
    )
    print(f"{len(blocks)} block(s) of {tiles} tile series, {span} UTC, in {out}")
    print("Move them into Prometheus' --storage.tsdb.path and restart it; the long windows are then full.")
    return 0


def _schema(root: Path, args) -> int:
    print(build.schema_text(), end="")
    return 0


def _doctor(root: Path, args) -> int:
    board = args.dashboard if args.dashboard.is_absolute() else root / args.dashboard
    rules = args.rules if args.rules.is_absolute() else root / args.rules
    try:
        window = parse_duration(args.notifications_window)
    except ValueError as err:
        print(f"modelmon: --notifications-window: {err}", file=sys.stderr)
        return EXIT_USAGE
    try:
        report = doctor.diagnose(
            args.prometheus,
            board if board.exists() else None,
            args.max_age,
            rules_dir=rules if rules.is_dir() else None,
            alertmanager=args.alertmanager,
            notifications_window_s=window,
        )
    except doctor.PrometheusUnreachable as err:
        print(f"PROBLEM  {err}", file=sys.stderr)
        return EXIT_DOCTOR
    if not board.exists():
        report.problem(f"dashboard {board} not found: run `make rules` (panel queries not checked)")
    print(report)
    problems, filling, skipped = (report.count(kind) for kind in ("problem", "filling", "skipped"))
    print(f"{problems} problem{'s' if problems != 1 else ''} found" if problems else "no problems found", end="")
    print(f"; {filling} still filling (see above), which is no problem" if filling else "", end="")
    print(f"; {skipped} check{'s' if skipped != 1 else ''} skipped (see above)" if skipped else "")
    return 0 if report.healthy else EXIT_DOCTOR


COMMANDS = {
    "validate": _validate,
    "build": _build,
    "test": _test,
    "schema": _schema,
    "doctor": _doctor,
    "backfill": _backfill,
}

if __name__ == "__main__":
    sys.exit(main())
