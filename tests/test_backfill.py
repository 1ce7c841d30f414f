"""`modelmon backfill`: the tiles of the past, computed by promtool from a real Prometheus.

Prometheus gets 26 hours of raw counters for two models (backfilled with promtool, one
sample a minute): `a` serves 10 calls/s with 1 % errors and 5 % slow calls, `b` serves
4 calls/s and never created an error series. `modelmon backfill` then computes a day
of tiles into TSDB blocks; moved into the data directory, they give the long windows
a full day at once: 288 tiles per series with the exact rates, `b`'s errors at 0.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from modelmon import backfill, build, cli, promtool
from modelmon.conventions import COVERAGE_RECORD
from modelmon.plan import plan_file
from stack import processes
from tests.test_sloth import SLOTH_EXAMPLE
from tests.test_sloth_names import compatible

REPO = Path(__file__).resolve().parent.parent
HOURS = 26
MODELS = {"a": (10.0, 0.1, 0.5), "b": (4.0, None, 0.2)}  # calls/s, errors/s (None: no series), slow calls/s


def raw_history(path: Path, end: int) -> None:
    lines = ["# TYPE model_requests counter", "# TYPE model_errors counter", "# TYPE model_latency_ms histogram"]
    start = end - HOURS * 3600
    for t in range(start, end + 1, 60):
        elapsed = t - start
        for model, (calls, errors, slow) in MODELS.items():
            lines.append(f'model_requests_total{{model="{model}"}} {calls * elapsed} {t}')
            if errors is not None:
                lines.append(f'model_errors_total{{model="{model}"}} {errors * elapsed} {t}')
            lines.append(f'model_latency_ms_count{{model="{model}"}} {calls * elapsed} {t}')
            lines.append(f'model_latency_ms_bucket{{model="{model}",le="5000.0"}} {(calls - slow) * elapsed} {t}')
    path.write_text("\n".join(lines) + "\n# EOF\n")


RAW_SLI = """
version: prometheus/v1
service: raw
slos:
  - name: ratio
    objective: 99
    sli:
      raw:
        error_ratio_query: sum(rate(errors[{{.window}}])) / sum(rate(requests[{{.window}}]))
    alerting: {name: RawBurn}
"""


@pytest.fixture
def models_only(tmp_path: Path) -> Path:
    (tmp_path / "slos").mkdir()
    shutil.copy(REPO / "slos" / "models.yaml", tmp_path / "slos")
    return tmp_path


def live_tiles(compiled: build.Compiled) -> dict[str, dict]:
    """The tiles and their clocks; the coverage is computed live, from the clocks."""
    return {
        rule["record"]: rule["labels"]
        for rules in compiled.rules.values()
        for group in rules.groups
        if group["name"].endswith("-sli-tiles")
        for rule in group["rules"]
        if rule["record"] != COVERAGE_RECORD
    }


@pytest.mark.parametrize(
    "specs",
    [
        {"m.yaml": None},
        {"s.yaml": SLOTH_EXAMPLE, "r.yaml": RAW_SLI},
        # Sloth's names: the raw SLI's tile and clock carry its 5m ratio's window label, live and backfilled.
        {"s.yaml": compatible(SLOTH_EXAMPLE, "30d"), "r.yaml": compatible(RAW_SLI, "30d")},
    ],
    ids=["models", "events-raw", "events-raw-sloth-names"],
)
def test_backfill_writes_every_live_tile_under_its_name_and_labels(project, specs):
    """Shortcut, events and raw SLIs: the same records with the same labels as the running tile rules,
    each computed from raw data (no rule reads another rule promtool would have to backfill too)."""
    texts = {name: text or (REPO / "slos" / "models.yaml").read_text() for name, text in specs.items()}
    compiled = build.compile_all(project(texts))
    groups = backfill.tile_groups({s: plan_file(i.spec) for s, i in ((i.spec.service, i) for i in compiled.loaded)})
    rules = {rule["record"]: rule for group in groups for rule in group["rules"]}
    assert {name: rule["labels"] for name, rule in rules.items()} == live_tiles(compiled)
    for rule in rules.values():
        assert ":" not in rule["expr"], rule["expr"]  # reads raw series only
    assert {g["interval"] for g in groups} == {"5m"}


def test_backfilled_tiles_fill_a_day_with_the_exact_rates(models_only, tmp_path, capsys):
    project = models_only
    end = int(time.time()) // 60 * 60 - 3600
    work = tmp_path / "prometheus"
    (work / "data").mkdir(parents=True)
    raw_history(tmp_path / "raw.om", end)
    made = promtool.run("tsdb", "create-blocks-from", "openmetrics", "-q", str(tmp_path / "raw.om"), str(work / "data"))
    assert made.returncode == 0, made.stderr
    config = {"global": {"scrape_interval": "15s"}, "scrape_configs": []}
    blocks = tmp_path / "blocks"

    with processes.prometheus(config, work) as url:
        args = ["--root", str(project), "backfill", "--prometheus", url, "--output-dir", str(blocks)]
        code = cli.main([*args, "--start", str(end - 86400), "--end", str(end)])
        out = capsys.readouterr()
        assert code == 0, out.err
    assert "block(s) of 6 tile series" in out.out  # 4 tiles, the 2 clocks of the coverage
    new = [b for b in blocks.iterdir() if (b / "meta.json").exists()]
    assert new
    for block in new:
        shutil.move(str(block), str(work / "data" / block.name))

    with processes.prometheus(config, work) as url:

        def at_end(expr: str) -> dict[str, float]:
            return {r["metric"].get("model", ""): float(r["value"][1]) for r in processes.query(url, expr, at=end)}

        tiles = at_end('count_over_time(model:model_requests:rate5m_tile{service="models-monitoring"}[1d])')
        assert tiles == {"a": 288.0, "b": 288.0}
        # Exactly the live tile series: same names, same label sets.
        compiled = build.compile_all(project)
        for record, labels in live_tiles(compiled).items():
            found = processes.query(url, f"{record}[5m]", at=end)
            assert [r["metric"] for r in found] == [
                {"__name__": record, **labels, "model": model} for model in ("a", "b")
            ], record
        # To the last bit, every run: promtool evaluates a group at a phase hashed from its name and file,
        # which the backfill keeps the same (with a random scratch path, about 2 % of runs read 4.000000000000001).
        assert at_end('model:model_requests:rate5m_tile{service="models-monitoring"}') == {"a": 10.0, "b": 4.0}
        # Each clock holds its tile's time: the live coverage counts the backfilled day (its oldest
        # tile within the first 5 minutes of it), not just the minutes since the rules were loaded.
        oldest = at_end('min_over_time(model:model_requests:rate5m_tile_timestamp{service="models-monitoring"}[1d])')
        assert set(oldest) == {"a", "b"}
        assert all(end - 86400 <= t < end - 86400 + 300 for t in oldest.values()), (end, oldest)
        # The guard: b has no error series, its error tiles are 0, not missing.
        errors = 'avg_over_time(model:model_errors:rate5m_tile{service="models-monitoring"}[1d])'
        assert at_end(errors) == pytest.approx({"a": 0.1, "b": 0.0}, abs=1e-12)
        good = 'avg_over_time(model:model_latency_ms_bucket:rate5m_tile{service="models-monitoring",le="5000.0"}[1d])'
        assert at_end(good) == pytest.approx({"a": 9.5, "b": 3.8}, rel=1e-12)
        count = 'avg_over_time(model:model_latency_ms_count:rate5m_tile{service="models-monitoring"}[1d])'
        assert at_end(count) == pytest.approx({"a": 10.0, "b": 4.0}, rel=1e-12)

        # Run again without --end: it stops before the first tile already there.
        first = min(
            float(r["value"][1])
            for r in processes.query(url, "min_over_time(timestamp(model:model_requests:rate5m_tile)[2d:5m])", at=end)
        )
        more = tmp_path / "more"
        again = ["--root", str(project), "backfill", "--prometheus", url, "--output-dir", str(more)]
        assert cli.main([*again, "--start", str(end - HOURS * 3600)]) == 0
    ends = [json.loads((b / "meta.json").read_text())["maxTime"] for b in more.iterdir() if (b / "meta.json").exists()]
    assert ends and max(ends) <= first * 1000


def test_backfill_refuses_a_folder_that_is_not_empty(models_only, tmp_path, capsys):
    project = models_only
    (tmp_path / "blocks").mkdir()
    (tmp_path / "blocks" / "old").write_text("x")
    args = ["--root", str(project), "backfill", "--output-dir", str(tmp_path / "blocks")]
    assert cli.main(args) == cli.EXIT_USAGE
    assert "is not an empty folder" in capsys.readouterr().err
