"""Checks that span fields, SLOs or files, each pointing at the field to fix."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator

from pydantic import ValidationError

from modelmon.conventions import (
    LOOKBACK_DELTA_S,
    RESERVED_ALERT_LABELS,
    RESERVED_LABELS,
    SHORT_WINDOW,
    SLOTH_INFO_LABELS,
    SLOTH_INFO_RECORD,
    SLOTH_LABELS,
    sloth_id,
)
from modelmon.durations import format_duration, parse_duration
from modelmon.formats import sloth
from modelmon.formatting import number, percent
from modelmon.limits import MAX_NAME_CHARS
from modelmon.loader import (
    FieldPath,
    LoadedSpec,
    LoadedWindows,
    Positions,
    SpecError,
    broken_parts,
    validation_errors,
)
from modelmon.outputs.promtool_tests import TestGenerationError, series_labels
from modelmon.outputs.promtool_tests.traffic import RECORDED_INPUT_KINDS
from modelmon.plan import (
    DEFAULT_WINDOWS,
    ProjectPlan,
    ServicePlan,
    SloPlan,
    group_by,
    plan_service,
    sli_kind,
    with_shared_alert_names,
)
from modelmon.spec import Slo, SloFile


@dataclasses.dataclass(frozen=True)
class OwnChecks:
    """What the checks find in one document alone: a function of the document as checked (its
    file, modelmon.toml's compatibility, the AlertWindows it borrows), which a build keeps."""

    problems: list[SpecError]  # check_file's
    slos: list[tuple[int, Slo]]  # the SLOs every check passed, by index in the file: those planned
    # _check_plans' problems, spec and plan, when the alert names are known (service, alert_prefix).
    planned: tuple[list[SpecError], SloFile, ServicePlan] | None


def own_checks(item: LoadedSpec) -> OwnChecks:
    """The checks of one document that read no other: check_file, then the plan of what passed."""
    problems = check_file(item)
    _, failed = broken_parts(problems)
    slos = [(i, slo) for i, slo in item.slos() if i not in failed]
    # Default alert names derive from the service and alert_prefix: without both, they are guesses.
    planned = None if item.broken & {"service", "alert_prefix"} else _check_plans(item, slos)
    return OwnChecks(problems, slos, planned)


def check_all(
    loaded: list[LoadedSpec],
    windows: list[LoadedWindows] = (),
    own: Callable[[LoadedSpec], OwnChecks] = own_checks,
) -> tuple[list[SpecError], ProjectPlan, list[LoadedSpec]]:
    """Every check on whatever validated: a broken field or SLO skips only the checks that read it.

    Returns the errors, the plan of what is sound (without errors, the whole project's plan,
    which every output then reads: planned once) and the specs as planned: an SLO without
    windows of its own takes those of Sloth's AlertWindows for its period. `own` makes each
    document's own checks (a build passes one that keeps them); the checks across files are
    made here, each time."""
    loaded, errors = _with_period_windows(loaded, windows)
    services: dict[str, LoadedSpec] = {}
    boards: dict[str, LoadedSpec] = {}
    receivers: dict[str, tuple[LoadedSpec, object]] = {}
    planned: list[tuple[LoadedSpec, OwnChecks]] = []
    for item in loaded:
        found = own(item)
        errors += found.problems
        names_known = found.planned is not None
        if "service" not in item.broken:
            service = item.spec.service
            if service in services:
                errors.append(
                    item.positions.error(
                        ("service",),
                        f"service {service!r} is also defined in {_where(services[service], ('service',))}; "
                        "each service compiles to its own rules file",
                    )
                )
                names_known = False  # they would only repeat the other file's names
            services.setdefault(service, item)
        for index, receiver in enumerate(item.spec.notifications.receivers if item.spec.notifications else []):
            # One Alertmanager config serves every file: a receiver name means one thing everywhere.
            if receiver.name in receivers and receivers[receiver.name][1] != receiver:
                errors.append(
                    item.positions.error(
                        ("notifications", "receivers", index, "name"),
                        f"receiver {receiver.name!r} is defined differently in {receivers[receiver.name][0].display}",
                    )
                )
            receivers.setdefault(receiver.name, (item, receiver))
        if item.spec.dashboard is not None:
            uid = item.spec.dashboard.uid
            if uid in boards:
                errors.append(
                    item.positions.error(
                        ("dashboard", "uid"), f"dashboard uid {uid!r} is also used by {boards[uid].display}"
                    )
                )
            boards.setdefault(uid, item)
        if names_known:
            planned.append((item, found))
    errors += _check_sloth_ids([(item, found.slos) for item, found in planned])
    services = []
    for item, found in planned:
        problems, spec, service = found.planned
        errors += problems
        services.append((spec, item.display, service))
    return errors, with_shared_alert_names(services), loaded


# A recorded name holds a colon (no raw metric does, by Prometheus' convention): outside strings,
# label matchers and ranges (`[5m:1m]`), a colon in a name is a record an SLI reads.
_QUOTED_OR_BRACKETED = re.compile(r'"(?:[^"\\]|\\.)*"|\{[^{}]*\}|\[[^\[\]]*\]')
_RECORDED_NAME = re.compile(r"(?<![\w:])[a-zA-Z_][\w]*:[\w:]*")


def _reads_records(plan) -> bool:
    """Whether an events or raw SLI's own queries read recorded series, which another SLO's rules
    may write: its tests would then drive that SLO too."""
    return any(_RECORDED_NAME.search(_QUOTED_OR_BRACKETED.sub(" ", query)) for _, query in plan.user_queries)


def _check_sloth_ids(planned: list[tuple[LoadedSpec, list[tuple[int, Slo]]]]) -> list[SpecError]:
    """Sloth's names tell SLOs apart by sloth_id alone (<service>-<slo>), which two SLOs of
    services such as a-b / c and a / b-c share: Sloth's UI and dashboards would merge them."""
    errors = []
    seen: dict[str, tuple[LoadedSpec, int, str]] = {}  # sloth_id -> the first SLO: file, index, name
    for item, slos in planned:
        if item.spec.compatibility != "sloth":
            continue
        for i, slo in slos:
            found = sloth_id(item.spec.service, slo.name)
            if found in seen:
                other, j, name = seen[found]
                errors.append(
                    item.positions.error(
                        ("slos", i, "name"),
                        f"sloth_id {found!r} is also that of SLO {name!r} of service {other.spec.service!r} "
                        f"({_where(other, ('slos', j, 'name'))}): Sloth's UI and dashboards would show the two as "
                        "one SLO; rename one",
                    )
                )
            else:
                seen[found] = (item, i, slo.name)
    return errors


def _check_plugins(item: LoadedSpec) -> list[SpecError]:
    """Sloth's SLO plugins: each one honoured, mapped onto modelmon's own fields, or refused by name."""
    blocks = [(("slo_plugins",), item.spec.slo_plugins)]
    blocks += [(("slos", i, "plugins"), slo.plugins) for i, slo in item.slos()]
    errors = []
    replacing: dict[FieldPath, list[str]] = {}  # the chain that replaced Sloth's -> the rule plugins SLOs lack
    for i, slo in item.slos():
        where, left_out = sloth.left_out(item.spec.slo_plugins, slo.plugins)
        if left_out:
            replacing.setdefault(sloth.in_file(where, i), left_out)
    for where, left_out in replacing.items():
        errors.append(
            item.positions.error(
                (*where, "overridePrevious"),
                f"this chain replaces Sloth's without {', '.join(left_out)}, so Sloth would write none of their "
                "rules; modelmon always writes its SLI, metadata and alert rules: add them to the chain, or "
                "disable alerts with alerting.page_alert and ticket_alert",
            )
        )
    effective = set()  # where each SLO's last rule_intervals plugin is written: the one its groups take
    for i, slo in item.slos():
        taken = [where for where, p in sloth.chain(item.spec.slo_plugins, slo.plugins) if p.id == sloth.RULE_INTERVALS]
        if taken:
            effective.add(sloth.in_file(taken[-1], i))
    for where, block in blocks:
        if block is None:
            continue
        for i, plugin in enumerate(block.chain):
            path = (*where, "chain", i)
            if (refused := sloth.refusal(plugin)) is not None:
                errors.append(item.positions.error((*path, "id"), refused))
            elif plugin.id == sloth.BUDGET_EXHAUSTED:
                errors += _check_budget_plugin(item, path, plugin.config)
            elif plugin.id == sloth.INFO_LABELS:
                errors += _check_info_plugin(item, path, plugin.config)
            elif plugin.id == sloth.RULE_INTERVALS:
                errors += _check_intervals_plugin(item, path, plugin.config, path in effective)
    return errors


# What other rules read of an SLO's own groups, found only when written within Prometheus'
# lookback: its error ratios (the burn-rate alerts, a raw SLI's tiles and coverage) and its
# metadata (the budget-exhausted alert, the dashboard's stat panels). Nothing reads its alerts.
READ_BY_OTHERS = {
    "sliError": ("sli_error", "the burn-rate alerts and records (and a raw SLI's tiles) that read its error ratios"),
    "metadata": ("metadata", "the budget-exhausted alert and the dashboard panels that read its metadata"),
}


def _check_intervals_plugin(item: LoadedSpec, path: FieldPath, config: dict, effective: bool) -> list[SpecError]:
    """The plugin's config; its intervals against the lookback only if some SLO's groups take them
    (`effective`: the last such plugin of its chain), as a plugin another one overrides sets nothing."""
    found, errors = _plugin_config(item, path, config, sloth.RuleIntervalsConfig)
    if found is None or not effective:
        return errors
    slow: dict[str, list[str]] = {}  # the key, as written, that sets too long an interval -> its readers
    for key, (field, readers) in READ_BY_OTHERS.items():
        given = getattr(found.interval, field)
        if parse_duration(given or found.interval.default) > LOOKBACK_DELTA_S:
            slow.setdefault(key if given else "default", []).append(readers)
    lookback = format_duration(LOOKBACK_DELTA_S)
    for key, readers in slow.items():
        value = config["interval"][key]
        errors.append(
            item.positions.error(
                (*path, "config", "interval", key),
                f"an interval of {value} is longer than Prometheus' {lookback} lookback: {' and '.join(readers)} "
                f"would find nothing between two evaluations; use {lookback} or less",
            )
        )
    return errors


def _plugin_config(item: LoadedSpec, path: FieldPath, config: dict, model: type):
    """A plugin's config as `model` reads it (None when it does not), and its errors where written."""
    try:
        return model.model_validate(config), []
    except ValidationError as err:
        return None, validation_errors(err, item.positions, (*path, "config"), model)


def _check_info_plugin(item: LoadedSpec, path: FieldPath, config: dict) -> list[SpecError]:
    found, errors = _plugin_config(item, path, config, sloth.InfoLabelsConfig)
    if found is None:
        return errors
    if found.metric_name not in ("", SLOTH_INFO_RECORD):  # the plugin reads "" as its default
        errors.append(
            item.positions.error(
                (*path, "config", "metricName"),
                f"modelmon puts these labels on {SLOTH_INFO_RECORD}, its only info series; leave metricName out",
            )
        )
    for key in found.labels:
        if key in RESERVED or key in SLOTH_LABELS or key in SLOTH_INFO_LABELS:
            errors.append(
                item.positions.error(
                    (*path, "config", "labels", key),
                    f"label {key!r} is set by modelmon on {SLOTH_INFO_RECORD}",
                    at_key=True,
                )
            )
    return errors


def _check_budget_plugin(item: LoadedSpec, path: FieldPath, config: dict) -> list[SpecError]:
    found, errors = _plugin_config(item, path, config, sloth.BudgetExhaustedConfig)
    if found is None:
        return errors
    if found.threshold != 0:
        errors.append(
            item.positions.error(
                (*path, "config", "threshold"),
                "modelmon's budget-exhausted alert fires when the whole budget is spent (threshold 0); "
                "for an earlier warning, use a ticket burn-rate window",
            )
        )
    if found.selector_labels:
        errors.append(
            item.positions.error(
                (*path, "config", "selector_labels"),
                "modelmon's budget-exhausted alert reads the SLO's own series; selector labels are not supported",
            )
        )
    return errors


def _where(item: LoadedSpec | LoadedWindows, path: FieldPath) -> str:
    """file:line:column of a field, for errors that point at another file (or another document of it)."""
    line, column = item.positions.values.get(path, (1, 1))
    return f"{item.display}:{line}:{column}"


def _with_period_windows(
    loaded: list[LoadedSpec], windows: list[LoadedWindows]
) -> tuple[list[LoadedSpec], list[SpecError]]:
    """Sloth's AlertWindows, checked, in place of the default windows of the SLOs of their period."""
    errors: list[SpecError] = []
    by_period: dict[int, LoadedWindows] = {}
    for item in windows:
        period_s = parse_duration(item.windows.slo_period)
        if period_s in by_period:
            other = by_period[period_s]
            message = (
                f"the windows of a {item.windows.slo_period} period are also defined in {_where(other, ('sloPeriod',))}"
            )
            errors.append(item.positions.error(("sloPeriod",), message))
            continue
        problems = _check_period_windows(item)
        errors += problems
        if not problems:
            by_period[period_s] = item
    if not by_period:
        return loaded, errors
    specs = []
    for item in loaded:
        slos, borrowed = [], {}  # borrowed: SLO index -> the AlertWindows it takes its windows from
        for i, slo in item.slos():
            given = by_period.get(parse_duration(slo.period))
            if given is not None and slo.alerting.windows is None:
                windows = given.windows.burn_windows()
                slo = slo.model_copy(update={"alerting": slo.alerting.model_copy(update={"windows": windows})})
                borrowed[i] = given
            slos.append(slo)
        positions = _WithBorrowedWindows(**vars(item.positions), borrowed=borrowed) if borrowed else item.positions
        specs.append(dataclasses.replace(item, spec=item.spec.model_copy(update={"slos": slos}), positions=positions))
    return specs, errors


@dataclasses.dataclass
class _WithBorrowedWindows(Positions):
    """A file's positions, where the windows an SLO takes from an AlertWindows resource (SLO index
    -> it) stand in that resource: errors about them point there."""

    borrowed: dict[int, LoadedWindows] = dataclasses.field(default_factory=dict)

    def error(self, path: FieldPath, message: str, *, at_key: bool = False) -> SpecError:
        windows = self.borrowed.get(path[1]) if path[:1] == ("slos",) and len(path) > 1 else None
        if windows is None or path[2:4] != ("alerting", "windows"):
            return super().error(path, message, at_key=at_key)
        where = ()
        if len(path) > 4 and isinstance(path[4], int) and path[4] < 4:
            where = (("page", "ticket")[path[4] // 2], ("quick", "slow")[path[4] % 2])
            field_name = _ALERT_WINDOW_FIELDS.get(path[5]) if len(path) > 5 else None
            where += (field_name,) if field_name else ()
        told = f"{message} (the windows of SLO slos[{path[1]}] in {self.file}, period {windows.windows.slo_period})"
        return windows.positions.error(where, told, at_key=at_key)


# modelmon's window fields as an AlertWindows resource spells them.
_ALERT_WINDOW_FIELDS = {"long": "longWindow", "short": "shortWindow", "budget_percent": "errorBudgetPercent"}


def _check_period_windows(item: LoadedWindows) -> list[SpecError]:
    """An AlertWindows' windows against its period: what _check_windows says of an SLO's own."""
    errors = []
    period = item.windows.slo_period
    for severity in ("page", "ticket"):
        for speed in ("quick", "slow"):
            window = getattr(getattr(item.windows, severity), speed)
            given = {"shortWindow": window.short_window, "longWindow": window.long_window}
            for name, message in _window_problems(given, "shortWindow", "longWindow", period, "sloPeriod"):
                errors.append(item.positions.error((severity, speed, name), message))
    return errors


def _window_problems(
    given: dict[str, str], short: str, long: str, period: str, period_name: str
) -> list[tuple[str, str]]:
    """A burn-rate window against its period, as (field, problem): `given` holds each duration by its
    field's name, `short` and `long` name the two windows, `period_name` says what the period is."""
    problems = []
    long_s, short_s = parse_duration(given[long]), parse_duration(given[short])
    if short_s >= long_s:
        problems.append((short, f"must be shorter than {long} ({given[long]})"))
    if long_s >= parse_duration(period):
        problems.append((long, f"must be shorter than {period_name} ({period})"))
    problems += [(name, _WHOLE_MINUTES.format(text=text)) for name, text in given.items() if parse_duration(text) % 60]
    return problems


def _check_plans(item: LoadedSpec, slos: list[tuple[int, Slo]]) -> tuple[list[SpecError], SloFile, ServicePlan]:
    """What only the planned alerts show: names unique in a service, test traffic the selectors accept.

    Only SLOs that passed every other check are planned: planning assumes them sound. A service
    is planned from one document only (another defining it is an error), so the names it holds
    are all its own: a document's plan reads no other document."""
    errors = []
    # alert name -> the first SLO of that name: its index, name, and whether it may share the
    # name (an events or raw SLI's own alerting.name)
    alert_owner: dict[str, tuple[int, str, bool]] = {}
    spec = item.spec.model_copy(update={"slos": [slo for _, slo in slos]})
    service = plan_service(spec, item.display)
    for (index, slo), plan in zip(slos, service.slos, strict=True):
        burn = {a.name for a in plan.burn_alerts}
        if any(a.name in burn for a in plan.threshold_alerts):
            errors.append(
                item.positions.error(
                    ("slos", index, "alerting", "threshold_alert", "name"),
                    "must differ from the burn-rate alert name",
                )
            )
        errors += _unreachable_burns(item, index, slo, plan)
        for name in plan.alert_names():
            if len(name) > MAX_NAME_CHARS:  # prefix + SLO name + suffix: each part may be within the limit
                errors.append(
                    item.positions.error(
                        ("slos", index, "alerting"),
                        f"alert name {name[:40]}... is {len(name)} characters, more than {MAX_NAME_CHARS} (it names "
                        "its runbook page's file): shorten alert_prefix or the SLO name, or set alerting.name",
                    )
                )
            # Sloth lets SLOs share an alert name (their service and slo labels tell them apart). In
            # one service the promtool tests of one SLO would see the other's alerts where both read
            # the same test traffic: the shortcuts' metrics. An events or raw SLI's tests feed its
            # own recorded rates, which no other SLO's rules read: SLOs of those may share the name
            # they are given (`alerting.name`, as Sloth's files do); default names that collide stay
            # an error, being a coincidence of spelling (api-x, api_x).
            owner = alert_owner.get(name)
            given = name == slo.alerting.name and plan.kind in RECORDED_INPUT_KINDS and not _reads_records(plan)
            apart = given and owner is not None and owner[2]
            if owner is not None and owner[0] != index and not apart:
                other_index, other_slo, _ = owner
                errors.append(
                    item.positions.error(
                        ("slos", index, "alerting"),
                        f"alert name {name!r} is already used by SLO {other_slo!r} of the same service "
                        f"({item.display}, slos[{other_index}]); set alerting.name, alerting.threshold_alert.name, "
                        "alerting.outage_alert.name or alerting.budget_alert.name to tell them apart",
                    )
                )
            alert_owner.setdefault(name, (index, plan.name, given))
        try:
            series_labels(plan, 1)
        except TestGenerationError as err:
            errors.append(item.positions.error(("slos", index, *err.path), str(err)))
    return errors, spec, service


def _unreachable_burns(item: LoadedSpec, index: int, slo: Slo, plan: SloPlan) -> list[SpecError]:
    """A burn-rate window of the spec's own whose error-ratio threshold is 100 % or more could never
    fire: not even a full outage reaches it (the plan leaves such default windows out)."""
    errors = []
    windows = list(slo.alerting.windows or ())
    for alert in plan.burn_alerts:
        if alert.threshold < 1:
            continue
        reason = (
            f"the {alert.long}/{alert.short} {alert.kind} alert fires above an error ratio of "
            f"{number(alert.factor)} x {percent(plan.budget)} = {percent(alert.threshold)}, which not even a full "
            "outage reaches"
        )
        at = next(
            w
            for w, window in enumerate(windows)
            if (parse_duration(window.long), parse_duration(window.short)) == (alert.long_s, alert.short_s)
        )
        path = ("slos", index, "alerting", "windows", at, "budget_percent")
        errors.append(item.positions.error(path, f"{reason}; lower budget_percent or lengthen the long window"))
    return errors


def check_file(item: LoadedSpec) -> list[SpecError]:
    """The checks within one file. A broken scrape_interval skips the windows' checks against it;
    broken labels, notifications or dashboard are at their empty default, so nothing reads them."""
    spec, at = item.spec, item.positions
    errors: list[SpecError] = []
    scrape_s = None if "scrape_interval" in item.broken else parse_duration(spec.scrape_interval)

    errors += _check_labels(item)
    if scrape_s is not None:
        errors += _check_scrape_interval(item)
    errors += _check_notifications(item)
    errors += _check_plugins(item)
    board = spec.dashboard
    if board is not None:
        if board.family_thresholds.yellow_from >= board.family_thresholds.green_from:
            errors.append(at.error(("dashboard", "family_thresholds", "yellow_from"), "must be below green_from"))
        names = [f.name for f in board.families]
        for index, name in enumerate(names):
            if name in names[:index]:
                errors.append(at.error(("dashboard", "families", index, "name"), f"duplicate family {name!r}"))
    seen: dict[str, int] = {}
    for i, slo in item.slos():
        base = ("slos", i)
        if slo.name in seen:
            errors.append(at.error((*base, "name"), f"duplicate SLO name {slo.name!r} (also slos[{seen[slo.name]}])"))
        seen.setdefault(slo.name, i)
        errors += _check_sli(item, i, slo)
        errors += _check_windows(item, i, slo, scrape_s)
        errors += _check_outage(item, i, slo)
    return errors


# What modelmon writes itself, so no block of labels may: the file's and the SLO's labels reach the
# alerts too, and an alert's labels are the series' plus its own.
RESERVED = {
    **{label: "series" for label in RESERVED_LABELS},
    **{label: "alert" for label in RESERVED_ALERT_LABELS},
}
# The blocks of an SLO's `alerting` whose labels go on some of its alerts.
ALERT_LABEL_BLOCKS = ("page_alert", "ticket_alert", "threshold_alert", "budget_alert", "outage_alert")


def _reserved(key: str) -> str:
    return f"label {key!r} is set by modelmon on every generated {RESERVED[key]}; choose another name"


def _label_blocks(item: LoadedSpec) -> Iterator[tuple[FieldPath, dict[str, str], list[tuple[int, Slo]]]]:
    """Every block of labels the spec writes on series or alerts, with the SLOs whose series or alerts get them."""
    slos = list(item.slos())
    yield ("labels",), item.spec.labels, slos
    for i, slo in slos:
        yield ("slos", i, "labels"), slo.labels, [(i, slo)]
        yield ("slos", i, "alerting", "labels"), slo.alerting.labels, [(i, slo)]
        for block in ALERT_LABEL_BLOCKS:
            yield ("slos", i, "alerting", block, "labels"), getattr(slo.alerting, block).labels, [(i, slo)]


def _check_labels(item: LoadedSpec) -> list[SpecError]:
    """No block of labels sets what modelmon writes, nor a label an SLO is grouped by: a fixed value
    there would give every group the same labels, merging their series and alerts into one."""
    return [
        item.positions.error((*path, key), problem, at_key=True)
        for path, labels, slos in _label_blocks(item)
        for key in labels
        if (problem := _label_problem(key, slos, item.spec.compatibility == "sloth"))
    ]


def _label_problem(key: str, slos: list[tuple[int, Slo]], sloth_names: bool) -> str | None:
    if key in RESERVED:
        return _reserved(key)
    if sloth_names and (key in SLOTH_LABELS or key in SLOTH_INFO_LABELS):
        return f"label {key!r} is set by modelmon on the series and alerts of a file with compatibility: sloth"
    # An SLI with other than one kind is reported by _check_sli: its group_by is unknown.
    for i, slo in slos:
        if len(slo.sli.kinds()) == 1 and key in group_by(slo):
            return (
                f"label {key!r} is a group_by label of SLO {slo.name!r} (slos[{i}].sli.{sli_kind(slo)}.group_by): "
                f"each {key} is its own SLO series and alert, and one value set here would merge them all; "
                "remove it or rename it"
            )
    return None


def _check_sli(item: LoadedSpec, i: int, slo: Slo) -> list[SpecError]:
    at = item.positions
    base = ("slos", i, "sli")
    kinds = slo.sli.kinds()
    if len(kinds) != 1:
        found = ", ".join(kinds) if kinds else "none"
        return [
            at.error(
                base,
                f"needs exactly one of events, raw, availability, error_rate, latency (found {found})",
            )
        ]
    kind = kinds[0]
    block = getattr(slo.sli, kind)
    errors = []
    for label in block.group_by:
        if label in RESERVED:  # a series label modelmon writes, or one on every alert
            errors.append(at.error((*base, kind, "group_by"), _reserved(label)))
    if (
        kind == "error_rate"
        and None not in (block.warning_above, block.critical_above)
        and (block.warning_above >= block.critical_above)
    ):
        errors.append(at.error((*base, kind, "warning_above"), "must be below critical_above"))
    if (
        kind == "availability"
        and None not in (block.warning_below, block.critical_below)
        and (block.warning_below <= block.critical_below)
    ):
        errors.append(at.error((*base, kind, "warning_below"), "must be above critical_below"))
    if kind == "events" and _spelling(block.error_query) == _spelling(block.total_query):
        errors.append(
            at.error(
                (*base, kind, "total_query"),
                "is the same query as error_query: every event would count as an error (an error ratio of 1); "
                "error_query counts the failed events only",
            )
        )
    return errors


# A string literal, or a run of spaces and line breaks outside one.
_LITERAL_OR_SPACE = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`|\s+')
_WORD = re.compile(r"[\w.:]")


def _spelling(query: str) -> str:
    """The query with the spaces PromQL (and the {{.window}} placeholder) ignore taken out: spaces
    between two words (`sum by`, `a or b`) stay one space, any others go; string literals stay as
    they are. Two queries with one spelling are the same query."""
    parts, last = [], 0
    for match in _LITERAL_OR_SPACE.finditer(query):
        parts.append(query[last : match.start()])
        token, last = match.group(), match.end()
        if not token.isspace():
            parts.append(token)
        elif parts and parts[-1] and _WORD.match(parts[-1][-1]) and _WORD.match(query[last : last + 1] or " "):
            parts.append(" ")
    parts.append(query[last:])
    return "".join(parts)


def _check_notifications(item: LoadedSpec) -> list[SpecError]:
    """Every receiver has one kind and a unique name; pages, tickets and overrides name existing ones."""
    notifications, at = item.spec.notifications, item.positions
    if notifications is None:
        return []
    errors = []
    names = [r.name for r in notifications.receivers]
    for index, receiver in enumerate(notifications.receivers):
        base = ("notifications", "receivers", index)
        kinds = receiver.kinds()
        if len(kinds) != 1:
            found = ", ".join(kinds) or "none"
            errors.append(at.error(base, f"needs exactly one of webhook, slack, email, pagerduty (found {found})"))
        if receiver.name in names[:index]:
            errors.append(at.error((*base, "name"), f"duplicate receiver {receiver.name!r}"))
    uses = [(("notifications", "page"), notifications.page), (("notifications", "ticket"), notifications.ticket)]
    for index, route in enumerate(notifications.routes):
        for field in ("page", "ticket"):
            if getattr(route, field) is not None:
                uses.append((("notifications", "routes", index, field), getattr(route, field)))
    for path, name in uses:
        if name not in names:
            errors.append(at.error(path, f"no receiver named {name!r}; receivers: {', '.join(names)}"))
    return errors


def _check_scrape_interval(item: LoadedSpec) -> list[SpecError]:
    """Once per file: the fixed 5m window and the default windows against the scrape interval."""
    spec, at = item.spec, item.positions
    if parse_duration(spec.scrape_interval) == 0:
        return [at.error(("scrape_interval",), "must be longer than 0s: Prometheus' interval between two scrapes")]
    minimum = 2 * parse_duration(spec.scrape_interval)
    shortest = [parse_duration(SHORT_WINDOW)]
    if any(slo.alerting.windows is None for slo in spec.slos):
        shortest += [parse_duration(w.short) for w in DEFAULT_WINDOWS]
    if min(shortest) < minimum:
        return [
            at.error(
                ("scrape_interval",),
                f"must be at most half of the shortest window, {format_duration(min(shortest))} "
                f"(got {spec.scrape_interval}): rate() would see fewer than two samples",
            )
        ]
    return []


def _check_windows(item: LoadedSpec, i: int, slo: Slo, scrape_s: int | None) -> list[SpecError]:
    """The SLO's windows against its period and, when the scrape interval is known, against that."""
    spec, at = item.spec, item.positions
    period_s = parse_duration(slo.period)
    errors = []
    if slo.alerting.windows is None:
        longest = max(parse_duration(w.long) for w in DEFAULT_WINDOWS)
        if longest >= period_s:
            errors.append(
                at.error(
                    ("slos", i, "period"),
                    f"must be longer than the longest default burn-rate window ({format_duration(longest)}); "
                    "set alerting.windows for shorter periods",
                )
            )
    for w, window in enumerate(slo.alerting.windows or ()):
        path = ("slos", i, "alerting", "windows", w)
        long_s, short_s = parse_duration(window.long), parse_duration(window.short)
        given = {"short": window.short, "long": window.long, "for": window.for_}
        for name, message in _window_problems(given, "short", "long", slo.period, "the SLO period"):
            errors.append(at.error((*path, name), message))
        for name, seconds, text in (("short", short_s, window.short), ("long", long_s, window.long)):
            if scrape_s is not None and seconds < 2 * scrape_s:
                errors.append(
                    at.error(
                        (*path, name),
                        f"window {text} is shorter than twice the scrape interval ({spec.scrape_interval}): "
                        "rate() would see fewer than two samples",
                    )
                )
    threshold_for = slo.alerting.threshold_alert.for_
    if parse_duration(threshold_for) % 60:
        errors.append(
            at.error(("slos", i, "alerting", "threshold_alert", "for"), _WHOLE_MINUTES.format(text=threshold_for))
        )
    return errors


_WHOLE_MINUTES = "must be whole minutes (got {text}): the generated tests evaluate rules once a minute"


def _check_outage(item: LoadedSpec, i: int, slo: Slo) -> list[SpecError]:
    """The outage alert must mean an outage: more bad calls than the SLO allows, and than its red band."""
    outage = slo.alerting.outage_alert
    if slo.alerting.disabled(outage):
        return []
    path = ("slos", i, "alerting", "outage_alert", "above")
    budget = 100 - slo.objective
    if outage.above <= budget:
        return [
            item.positions.error(
                path,
                f"must be above the {number(budget)}% of bad calls the {number(slo.objective)}% objective allows "
                f"(got {number(outage.above)}): it would page while the SLO is met",
            )
        ]
    block = slo.sli.availability or slo.sli.error_rate
    if block is None or slo.alerting.threshold_alert.disable:
        return []
    critical = getattr(block, "critical_above", None)
    if critical is None and getattr(block, "critical_below", None) is not None:
        critical = 100 - block.critical_below
    if critical is not None and outage.above <= critical:
        return [
            item.positions.error(
                path,
                f"must be above the critical threshold's {number(critical)}% of failing calls (got "
                f"{number(outage.above)}): the outage alert is the page for what is worse than the red band",
            )
        ]
    return []
