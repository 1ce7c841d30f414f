"""Seeded fuzzing of the spec loader and compiler: mutated specs get a positioned error or compile,
never a traceback, a hang or unbounded memory.

`python -m tests.fuzz_specs --examples N --seed S` runs N mutated specs, each through what
`modelmon validate` runs (loading, every check, promtool and amtool on the outputs) and, when
that passes, the whole compile of `build`. It prints one JSON line of figures, and the
specs that raised anything but SpecErrors or took more than --timeout seconds of CPU. It runs under an
address-space limit (--memory-mib), so a spec that blows up memory fails as MemoryError here.
tests/test_fuzz.py runs it as a subprocess.

Mutations (hypothesis chooses them from the seed, so a run is reproducible): text-level
(hostile fragments inserted at any character, lines deleted, duplicated or swapped, a value
replaced) and data-level (a scalar of the parsed spec replaced by a hostile value, a list
repeated, a key renamed), several per spec.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

import yaml
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from modelmon import build
from modelmon.loader import SpecErrors

SEEDS = [
    """version: modelmon/v1
service: models
alert_prefix: Model
labels: {team: ml}
scrape_interval: 15s
runbook_base_url: http://localhost:8001/runbooks
slos:
  - name: availability
    description: 99% of calls succeed.
    objective: 99
    sli:
      availability: {warning_below: 99, critical_below: 95, selector: 'model=~"claude.*"'}
    alerting:
      name: ModelAvailabilityBudgetBurn
      labels: {route: '{{ $labels.model }}'}
      annotations: {summary: 'burning {{ $value | humanizePercentage }}'}
    runbook: {impact: 'Chat fails; see `model_routes`.'}
notifications:
  receivers:
    - {name: oncall, webhook: {url: 'http://127.0.0.1:9/hook'}}
    - {name: mail, email: {to: a@example.com, from: b@example.com, smarthost: 'mail:25'}}
  page: oncall
  ticket: mail
  routes:
    - {match: {team: ml}, page: mail}
dashboard:
  families:
    - {name: Claude, pattern: '(?i)claude.*'}
""",
    """version: prometheus/v1
service: checkout
labels:
  owner: payments
slos:
  - name: requests-availability
    objective: 99.9
    description: Sloth events SLI.
    sli:
      events:
        error_query: sum(rate(http_requests_total{job="checkout",code=~"(5..|429)"}[{{.window}}]))
        total_query: sum(rate(http_requests_total{job="checkout"}[{{.window}}]))
    alerting:
      name: CheckoutHighErrorRate
      page_alert: {labels: {severity: pageteam}}
      ticket_alert: {labels: {severity: slack}}
""",
    """version: modelmon/v1
service: latency
defaults: &d {objective: 95, sli: {latency: {threshold_ms: 5000}}}
slos:
  - <<: *d
    name: latency
    period: 28d
    alerting:
      windows:
        - {severity: page, long: 1h, short: 5m, budget_percent: 2}
        - {severity: ticket, long: 3d, short: 6h, budget_percent: 10, for: 5m}
  - name: ratio
    objective: 99
    sli:
      raw: {error_ratio_query: 'job:errors:ratio_rate{{.window}}'}
""",
]

HOSTILE = [
    "{{ .Foo }}",
    '{{ with query "up" }}{{ . }}{{ end }}',
    '"',
    "'",
    "\\",
    "\\x",
    "\x00",
    "\x07",
    "&a",
    "*a",
    "*d",
    "&r [*r]",
    "[",
    "]",
    "{",
    "}",
    ":",
    ": ",
    "- ",
    "\n",
    "\n  ",
    "\t",
    "#",
    "---\n",
    "💥",
    "é",
    "\u202e",
    "a" * 300,
    "1e309",
    "-1",
    "0",
    "100",
    "99.9999999",
    "100y",
    "0s",
    "0m",
    "1ms",
    "(.*)*X",
    "(",
    "\\pL",
    "<script>alert(1)</script>",
    "javascript:alert(1)",
    "`",
    "```",
    "%",
    "${HOME}",
    "null",
    "~",
    "true",
    "!!python/object:os.system",
    "!!binary AAAA",
    "<<: *d",
    "? ",
    "|",
    ">",
    "@",
    ",",
    "__name__",
    "le",
    "severity",
    "x" * 5000,
]

VALUES = [
    *HOSTILE,
    None,
    True,
    0,
    -1,
    10**30,
    1e-9,
    float("inf"),
    [],
    {},
    ["a"],
    {"a": "b"},
    "5m",
    "30d",
    "model",
    "claude.*",
]


def mutate(text: str, data: st.DataObject) -> str:
    """One mutation of `text`, chosen by hypothesis."""
    kind = data.draw(st.sampled_from(["insert", "delete", "duplicate", "swap", "replace", "data"]))
    lines = text.split("\n")
    if kind == "insert":
        at = data.draw(st.integers(0, len(text)))
        return text[:at] + data.draw(st.sampled_from(HOSTILE)) + text[at:]
    if kind in ("delete", "duplicate", "swap") and len(lines) > 1:
        i = data.draw(st.integers(0, len(lines) - 1))
        if kind == "delete":
            del lines[i]
        elif kind == "duplicate":
            lines.insert(i, lines[i])
        else:
            j = data.draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        return "\n".join(lines)
    if kind == "replace":
        i = data.draw(st.integers(0, len(lines) - 1))
        key, sep, _ = lines[i].partition(": ")
        if sep:
            lines[i] = f"{key}: {data.draw(st.sampled_from(HOSTILE))}"
        return "\n".join(lines)
    return _mutate_data(text, data)


# A YAML anchor (&name) or alias (*name) where a value starts.
_ANCHOR = re.compile(r"(?:^|[\s\[{,])[&*][^\s,\]}]")


def _mutate_data(text: str, data: st.DataObject) -> str:
    """A value of the parsed spec replaced, a list repeated or a key renamed; dumped back to YAML.
    Text PyYAML cannot turn into plain data (a syntax error, an alias bomb, a value inside itself)
    is left as it is: the other mutations reach it."""
    if _ANCHOR.search(text):
        return text  # anchors and aliases: plain loading would expand them (the loader under test refuses bombs)
    try:
        parsed = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError):
        return text
    if not isinstance(parsed, dict):
        return text
    spots = list(_spots(parsed))
    if not spots:
        return text
    container, key = data.draw(st.sampled_from(spots))
    action = data.draw(st.sampled_from(["value", "repeat", "rename"]))
    if action == "value":
        container[key] = data.draw(st.sampled_from(VALUES))
    elif action == "repeat" and isinstance(container[key], list):
        container[key] = container[key] * data.draw(st.integers(2, 50))
    elif action == "rename" and isinstance(container, dict):
        container[data.draw(st.sampled_from(HOSTILE))] = container.pop(key)
    try:
        return yaml.safe_dump(parsed, allow_unicode=True, sort_keys=False)
    except (yaml.YAMLError, ValueError, RecursionError):
        return text


def _spots(value: object):
    """Every (container, key) of the parsed spec."""
    if isinstance(value, dict):
        for key in list(value):
            yield value, key
            yield from _spots(value[key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield value, index
            yield from _spots(item)


class Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise Timeout()


def run(examples: int, seed_value: int, timeout_s: int) -> dict:
    figures = {"examples": 0, "refused": 0, "compiled": 0, "tracebacks": 0, "hangs": 0, "slowest_s": 0.0}
    problems: list[dict] = []
    compiled: set[str] = set()
    # CPU time, not wall time: a spec that loops burns it, and a machine busy with other work
    # (the rest of the test suite) does not make a sound spec look hung.
    signal.signal(signal.SIGPROF, _alarm)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "slos").mkdir()
        spec_path = root / "slos" / "fuzz.yaml"

        # The same seed gives the same specs.
        @seed(seed_value)
        @settings(
            max_examples=examples,
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(st.data())
        def one(data: st.DataObject) -> None:
            text = data.draw(st.sampled_from(SEEDS))
            for _ in range(data.draw(st.integers(1, 4))):
                text = mutate(text, data)
            spec_path.write_bytes(text.encode("utf-8", errors="surrogatepass"))
            figures["examples"] += 1
            started = time.monotonic()
            signal.setitimer(signal.ITIMER_PROF, timeout_s)
            try:
                # Loading, every check, promtool and amtool: what validate judges before the outputs.
                build.load_project(root)
                # The outputs depend on the parsed spec alone: the same data compiled once is enough.
                key = repr(yaml.safe_load(text))
                if key not in compiled:
                    build.compile_all(root)
                    compiled.add(key)
                figures["compiled"] += 1
            except SpecErrors as err:
                figures["refused"] += 1
                unpositioned = [str(e) for e in err.errors if not str(e).startswith("slos/fuzz.yaml:")]
                if unpositioned:
                    problems.append({"spec": text, "unpositioned": unpositioned})
            except Timeout:
                figures["hangs"] += 1
                problems.append({"spec": text, "hang_s": timeout_s})
            except BaseException:
                figures["tracebacks"] += 1
                problems.append({"spec": text, "traceback": traceback.format_exc()})
            finally:
                signal.setitimer(signal.ITIMER_PROF, 0)
                figures["slowest_s"] = max(figures["slowest_s"], round(time.monotonic() - started, 2))

        one()
    figures["distinct_compiled"] = len(compiled)
    figures["problems"] = problems
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--timeout", type=int, default=10, help="CPU seconds one spec may take")
    parser.add_argument("--memory-mib", type=int, default=2048, help="address-space limit of the process")
    args = parser.parse_args()
    limit = args.memory_mib << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    started = time.monotonic()
    figures = run(args.examples, args.seed, args.timeout)
    figures["seconds"] = round(time.monotonic() - started, 1)
    figures["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
