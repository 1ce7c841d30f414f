"""The `modelmon` command: validate, build, build --check, generate, test, schema, doctor, backfill."""

from __future__ import annotations

import argparse
import dataclasses
import gc
import itertools
import os
import shlex
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

# The modules every command needs. The compiler itself (build, and what only some commands use)
# is imported by the commands that run it: a build with nothing to do, the usual `make rules`,
# checks its cache and stops in a third of the time the whole compiler takes to import.
from modelmon import amtool, cache, focused, promtool, transaction, vmalert
from modelmon import layout as layouts
from modelmon.durations import parse_duration
from modelmon.layout import TEST_RULES_FOLDER
from modelmon.loader import SpecErrors
from modelmon.serialize import dump_yaml

EXIT_SPEC = 2  # invalid specs (or a rule promtool refuses): nothing written
EXIT_STALE = 1  # build --check found outputs that differ from the generator
EXIT_TESTS = 1
EXIT_DOCTOR = 1
EXIT_BACKFILL = 1
EXIT_USAGE = 2
# The commands that read the outputs of a build (or write them).
RECOVERING = ("validate", "build", "test", "doctor", "backfill")
DOCTOR_DASHBOARD = "models-monitoring.json"  # the guide's dashboard, whose panels doctor knows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="modelmon", description=__doc__)
    parser.add_argument(
        "--root",
        type=Path,
        default=Path.cwd(),
        help="project folder: outputs and paths of the layout are relative to it (default: .)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        help=f"layout file: where specs are read and each output written (default: <root>/{layouts.CONFIG_NAME} "
        "when it exists, else the defaults)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser(
        "validate",
        help="run build's whole compile in memory and report every problem; writes nothing",
        description="Compiles the specs exactly as `build` does (rules, promtool tests, dashboards, runbooks, "
        "Alertmanager config, all in memory), runs promtool check rules and amtool check-config on them, and "
        "reports every error `build` would, as file:line:col; writes nothing.",
    )
    v.add_argument(
        "paths", nargs="*", type=Path, metavar="PATH", help="spec files or folders (a folder: its *.yaml, *.yml)"
    )
    v.add_argument(
        "-i", "--input", action="append", type=Path, default=[], metavar="PATH", help="as PATH; may be repeated"
    )
    g = sub.add_parser(
        "generate",
        help="write the Prometheus rules of the given specs, as Sloth's generate",
        description="Compiles the specs as `validate` does (every error `build` would report) and writes only "
        "their Prometheus rule files: with one spec file, -o is that file (default: standard output); with a "
        "folder or several inputs, -o is a folder that gets <service>.yml per spec. Like validate, it runs "
        "promtool check rules on them first.",
    )
    g.add_argument(
        "-i", "--input", action="append", type=Path, required=True, metavar="PATH", help="spec file or folder"
    )
    g.add_argument("-o", "--out", default="-", metavar="PATH", help="rule file or folder; - for standard output")
    m = sub.add_parser(
        "import",
        help="write a Sloth or OpenSLO file as a modelmon/v1 spec, keeping its comments",
        description="Reads the file as a build does (every error reported as file:line:col, nothing written "
        "then) and writes it as modelmon/v1: a prometheus/v1 file with only its version changed, a Sloth "
        "PrometheusServiceLevel as its spec with modelmon's field names, OpenSLO as the spec it compiles to. "
        "Comments stay where the form allows; the result compiles to the same rules.",
    )
    m.add_argument("input", type=Path, metavar="FILE", help="the Sloth or OpenSLO file")
    m.add_argument("-o", "--out", default="-", metavar="FILE", help="where to write it (may be FILE); - for stdout")
    b = sub.add_parser(
        "build",
        help="compile the specs into every output of the layout, proved by promtool (and amtool) first",
    )
    b.add_argument("--check", action="store_true", help="write no outputs; exit 1 listing outputs that are stale")
    b.add_argument("--no-cache", action="store_true", help="rebuild even when specs and generator are unchanged")
    tests = sub.add_parser("test", help="run promtool on the generated rules and their tests")
    tests.add_argument(
        "--whole-files",
        action="store_true",
        help="run each test file against all of its rule files, as plain promtool does, instead of "
        "each SLO's tests against only the rules they depend on (its time grows with the square of "
        "the SLOs in a file)",
    )
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
        help=f"dashboard whose panel queries to run (default: {DOCTOR_DASHBOARD} in the layout's dashboards folder)",
    )
    d.add_argument(
        "--rules",
        type=Path,
        help="rule files Prometheus should be running (default: the layout's rules folder)",
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
        # A build killed while replacing its outputs is finished before anything reads them.
        for line in transaction.recover(root) if args.command in RECOVERING else []:
            print(line, file=sys.stderr)
        layout = layouts.load(root, args.config)
        return COMMANDS[args.command](root, layout, args)
    except SpecErrors as err:
        for error in err.errors:
            print(error, file=sys.stderr)
        count = len(err.errors)
        print(f"{count} error{'s' if count != 1 else ''}; nothing was written", file=sys.stderr)
        return EXIT_SPEC
    except (
        promtool.PromtoolMissing,
        amtool.AmtoolMissing,
        vmalert.VmalertMissing,
        vmalert.VmalertFailed,
        transaction.InterruptedBuild,
    ) as err:
        print(f"modelmon: {err}", file=sys.stderr)
        return EXIT_SPEC


def _validate(root: Path, layout: layouts.Layout, args) -> int:
    from modelmon import build

    given = [*args.paths, *args.input]
    paths = build.input_paths(root, given) if given else None
    # The test groups earlier builds generated stand for those of unchanged SLOs; validate writes none.
    compiled = build.compile_all(root, layout, paths, memo=cache.TestGroups(root, store=False))
    slos = sum(len(item.spec.slos) for item in compiled.loaded)
    files = len(paths if paths is not None else build.spec_paths(root, layout))
    # A file may hold several services (YAML documents, as Sloth's), or only Sloth AlertWindows.
    services = f", {len(compiled.loaded)} service(s)" if len(compiled.loaded) != files else ""
    print(f"{files} file(s){services}, {slos} SLO(s): valid")
    return 0


def _generate(root: Path, layout: layouts.Layout, args) -> int:
    from modelmon import build

    specs = build.input_paths(root, args.input)
    command = ["modelmon", "generate", *(part for path in args.input for part in ("-i", str(path)))]
    if args.out != "-":
        command += ["-o", args.out]
    # Specs of the project are compiled with all the others, as a build compiles them: the
    # AlertWindows and the alert names other files hold change their rules. Only theirs are written.
    project = build.spec_paths(root, layout)
    given = {path.resolve() for path in specs}
    inside = given <= {path.resolve() for path in project}
    together = specs + [path for path in project if path.resolve() not in given] if inside else specs
    # The rules' headers name this very command: it is what regenerates them.
    compiled = build.compile_all(root, dataclasses.replace(layout, command=shlex.join(command)), together)
    services = sorted({item.spec.service for item in compiled.loaded if item.path.resolve() in given})
    rules = {service: compiled.files[compiled.layout.rules_path(service)] for service in services}
    if not rules:
        print("modelmon: the specs given hold no SLO (only Sloth AlertWindows?)", file=sys.stderr)
        return EXIT_USAGE
    out = Path(args.out)
    to_folder = len(specs) > 1 or any(path.is_dir() for path in args.input) or args.out.endswith("/") or out.is_dir()
    to_folder = to_folder or len(rules) > 1  # a file of several services (YAML documents)
    if not to_folder:
        (text,) = rules.values()
        if args.out == "-":
            print(text, end="")
            return 0
        targets = {out: text}
    elif args.out == "-":
        print(
            "modelmon: several services (specs, a folder or documents) need -o FOLDER: one rule file per service",
            file=sys.stderr,
        )
        return EXIT_USAGE
    else:
        targets = {out / f"{service}.yml": text for service, text in rules.items()}
    for path, text in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    return 0


def _import(root: Path, layout: layouts.Layout, args) -> int:
    from modelmon.formats import convert

    if not args.input.is_file():
        print(f"modelmon: {args.input}: no such file", file=sys.stderr)
        return EXIT_USAGE
    out = None if args.out == "-" else Path(args.out)
    if out is not None and out.is_dir():
        print(f"modelmon: -o {out} is a folder: name the file to write", file=sys.stderr)
        return EXIT_USAGE
    text = convert.to_modelmon(args.input, str(args.input))
    # Written beside the target (or in a scratch folder), proved to compile, then moved over it:
    # never half a file, and the input itself may be the target.
    folder = out.parent if out is not None else Path(tempfile.gettempdir())
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=folder, suffix=".yaml", delete=False, encoding="utf-8") as tmp:
        tmp.write(text)
    written = Path(tmp.name)
    try:
        try:
            convert.compiled(written, str(out or "the imported spec"))
        except SpecErrors as err:
            raise RuntimeError(f"the imported spec does not compile: {err.errors[0]}") from None
        if out is None:
            print(text, end="")
            return 0
        # The file keeps its mode when it is replaced; a new one gets the umask's.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(written, out.stat().st_mode & 0o7777 if out.exists() else 0o666 & ~umask)
        os.replace(written, out)
    finally:
        written.unlink(missing_ok=True)
    print(f"wrote {out}")
    return 0


def _build(root: Path, layout: layouts.Layout, args) -> int:
    key = cache.inputs_key(root, layout.spec_paths(root), layout.key())
    current = None if args.no_cache else cache.outputs_current(root, key)
    # A checkout can bring back a generated file no spec makes any more: that needs a real build.
    if current is not None and not layout.orphans(root, current):
        print(f"{len(current)} generated files are up to date (specs and generator unchanged since the last build)")
        return 0
    from modelmon import build

    # --no-cache generates every SLO's tests again (and keeps them); --check writes nothing.
    memo = cache.TestGroups(root, store=not args.check, read=not args.no_cache)
    compiled = build.compile_all(root, layout, memo=memo)
    if args.check:
        stale = build.stale_files(root, compiled.files, layout)
        if stale:
            print(f"stale generated files (run `{layout.command}` and commit them):", file=sys.stderr)
            for path in stale:
                print(f"  {path}", file=sys.stderr)
            return EXIT_STALE
        cache.remember(root, key, compiled.files)
        print(f"{len(compiled.files)} generated files are up to date")
        return 0
    with memo.pruned_meanwhile():  # what the build keeps in .modelmon/, while its outputs are written
        done = build.write_all(root, compiled, key)
    for line in done.recovered:
        print(line, file=sys.stderr)
    for path in done.written:
        print(f"wrote {path}")
    for path in done.removed:
        print(f"removed {path}")
    removed = f", {len(done.removed)} removed" if done.removed else ""
    checks = ", ".join(f"{check}: ok" for check in done.checks)
    print(f"{len(compiled.files)} generated files, {len(done.written)} changed{removed}; {checks}")
    return 0


def _loaded_rules(test: Path) -> list[Path]:
    """The rule files a promtool test file loads, resolved: read from its head, which comes before
    its (long) `tests:`."""
    with test.open(encoding="utf-8", errors="replace") as lines:
        head = "".join(itertools.takewhile(lambda line: not line.startswith("tests:"), lines))
    try:
        given = yaml.safe_load(head)
    except yaml.YAMLError:
        return []  # not a file modelmon wrote: promtool says what is wrong with it
    files = given.get("rule_files") if isinstance(given, dict) else None
    return [(test.parent / str(path)).resolve() for path in files] if isinstance(files, list) else []


def _test(root: Path, layout: layouts.Layout, args) -> int:
    tests = layout.test_files(root)
    if layout.promtool_tests is None:
        print("promtool tests are turned off in the layout (outputs.promtool_tests = false)", file=sys.stderr)
        return EXIT_TESTS
    if not tests:
        print(f"no promtool tests under {layout.promtool_tests}/; run `{layout.command}` first", file=sys.stderr)
        return EXIT_TESTS
    # The stand-ins the tests load (a test file modelmon did not write is promtool's to judge).
    loads = {(test, path) for test in tests for path in _loaded_rules(test) if path.parent.name == TEST_RULES_FOLDER}
    for test, missing in sorted(loads):
        if not missing.is_file():
            shown = missing.relative_to(root) if missing.is_relative_to(root) else missing
            print(f"{shown}, which {test.relative_to(root)} loads, is missing; run `{layout.command}`", file=sys.stderr)
            return EXIT_TESTS
    # A service with a stand-in has MetricsQL rules, which promtool cannot parse: it checks the stand-in.
    rules = [
        stand_in if (stand_in := root / layout.test_rules_path(path.stem)).is_file() else path
        for path in layout.rule_files(root)
    ]
    ok, _, output = promtool.check_rules(rules)
    if not ok:
        print(output, file=sys.stderr)
        return EXIT_TESTS
    with tempfile.TemporaryDirectory(prefix="modelmon-test-") as scratch:
        # Each SLO's groups against only the rules they depend on (modelmon/focused.py): the cost
        # of an SLO's tests does not grow with the other SLOs of its file.
        runs: list[tuple[Path, Path]] = []  # (the committed test file, the file promtool runs)
        for test in tests:
            try:
                pieces = [] if args.whole_files else focused.write(test, Path(scratch))
            except focused.Unsplittable:
                pieces = []
            runs += [(test, path) for path, _ in pieces] or [(test, test)]
        # One promtool per file, side by side: the whole-period files take most of the time.
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            results = list(pool.map(lambda run: promtool.test_rules([run[1]], cwd=root), runs))
    groups = sum(t.read_text(encoding="utf-8").count("\n- name: ") for t in tests)
    # Said of the committed files, not of their focused copies (gone with the scratch folder).
    failed_files = set()
    for index, ((test, ran), (ok, found, output)) in enumerate(zip(runs, results, strict=True)):
        committed = str(test.relative_to(root))
        for failure in found:
            failure.file = committed
        results[index] = (ok, found, output.replace(str(ran), committed))
        if not ok:
            failed_files.add(test)
    failures = [f for _, found, _ in results for f in found]
    if not failed_files:
        print(f"promtool: {groups} test groups in {len(tests)} file(s) passed")
        return 0
    for failure in failures:
        print(failure, file=sys.stderr)
    # A failure promtool names no group for (a rule that fails to evaluate, a file it cannot read):
    # its own words.
    unexplained = [output for ok, found, output in results if not ok and not found]
    for output in dict.fromkeys(unexplained):
        print(output.strip(), file=sys.stderr)
    failed = len({(f.file, f.group) for f in failures})
    print(
        f"promtool: {failed} of {groups} test groups failed, in {len(failed_files)} of {len(tests)} file(s)",
        file=sys.stderr,
    )
    return EXIT_TESTS


def _backfill(root: Path, layout: layouts.Layout, args) -> int:
    from modelmon import backfill, build, doctor

    _, project = build.load_project(root, layout)
    # promtool parses the rules it backfills with, and MetricsQL is not PromQL: such services are left
    # to vmalert, which replays rules over the past itself; the others are backfilled all the same.
    metricsql = [s for s in project.services if any(p.metricsql for p in s.slos)]
    if metricsql:
        print(
            f"modelmon: {', '.join(s.source for s in metricsql)}: MetricsQL SLIs, which promtool cannot backfill, "
            "left out; VictoriaMetrics' vmalert replays rules over the past itself (vmalert -rule=... "
            "-replay.timeFrom=... -replay.timeTo=...)",
            file=sys.stderr,
        )
    plans = {s.service: list(s.slos) for s in project.services if s not in metricsql}
    if not plans:
        return EXIT_USAGE
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
        rules.write_text(dump_yaml({"groups": groups}), encoding="utf-8")
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


def _schema(root: Path, layout: layouts.Layout, args) -> int:
    from modelmon.outputs import reference

    print(reference.schema_text(layout.command), end="")
    return 0


def _doctor(root: Path, layout: layouts.Layout, args) -> int:
    from modelmon import doctor

    dashboards = Path(layout.dashboards or layouts.OUTPUTS["dashboards"][0])
    board = root / (args.dashboard or dashboards / DOCTOR_DASHBOARD)
    rules = root / (args.rules or layout.rules)
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
        report.problem(f"dashboard {board} not found: run `{layout.command}` (panel queries not checked)")
    print(report)
    problems, filling, skipped = (report.count(kind) for kind in ("problem", "filling", "skipped"))
    print(f"{problems} problem{'s' if problems != 1 else ''} found" if problems else "no problems found", end="")
    print(f"; {filling} still filling (see above), which is no problem" if filling else "", end="")
    print(f"; {skipped} check{'s' if skipped != 1 else ''} skipped (see above)" if skipped else "")
    return 0 if report.healthy else EXIT_DOCTOR


COMMANDS = {
    "validate": _validate,
    "build": _build,
    "generate": _generate,
    "import": _import,
    "test": _test,
    "schema": _schema,
    "doctor": _doctor,
    "backfill": _backfill,
}


def run() -> int:
    """The `modelmon` command: main, and then the process ends without a garbage collection of
    the heap a build leaves, which the system takes back whole (a thousand SLOs' plans and
    specs: about 0.2 s of a one-change build, timed by turns with and without it)."""
    code = main()
    gc.freeze()  # what is left is no one's garbage to find: interpreter exit skips it
    return code


if __name__ == "__main__":
    sys.exit(run())
