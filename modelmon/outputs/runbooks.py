"""Runbook pages: one per generated alert, named after it, in prometheus-operator/runbooks' shape.

Each page has Meaning, Impact, Diagnosis and Mitigation, written from the same
plan as the alert (objective, windows, burn-rate factors, thresholds), so a page
cannot tell a different story than the rule that links to it. The spec's own
`runbook` text is appended to each section. Pages are read by someone paged at
night: the numbers that say how bad it is come first, then queries ready to paste
and links to the dashboard panels, then the steps that stop the bleeding.

The alert's labels are unknown when the page is built: queries and links carry
`$MODEL` (one `$LABEL` per grouping label) where the alert's label goes. The
site's small script (docs/js/fill-labels.js) fills them in from the page address
(`?model=...`) or a box on the page; without it, people replace them by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache, partial

import jinja2

from modelmon import contract, markup
from modelmon.cache import KeptContent, ServiceTexts, stable_repr
from modelmon.conventions import (
    BUDGET_REMAINING_RECORD,
    COVERAGE_RECORD,
    CURRENT_BURN_RECORD,
    SHORT_WINDOW,
    SLI_ERROR_PREFIX,
    slo_selector,
)
from modelmon.formatting import exhaustion_text, number, percent
from modelmon.layout import GENERATED_MARK, Layout
from modelmon.plan import (
    AVAILABILITY_PANEL,
    ERROR_RATE_PANEL,
    LATENCY_PANEL,
    THROUGHPUT_PANEL,
    TOKENS_PANEL,
    BudgetAlertPlan,
    BurnAlertPlan,
    DashboardPlan,
    ProjectPlan,
    ServicePlan,
    SloPanels,
    SloPlan,
    ThresholdAlertPlan,
)
from modelmon.textgen import TEMPLATES

RUNBOOKS_DIR = "runbooks"
INDEX_PATH = f"{RUNBOOKS_DIR}/index.md"
SEVERITY_ORDER = ("critical", "warning")

# Who runs each of the guide's families, and where they say when it is down.
# Llama is Meta's open-weights family: whoever hosts it is the one to check.
PROVIDERS = (
    ("claude", "Anthropic", "https://status.anthropic.com"),
    ("gpt", "OpenAI", "https://status.openai.com"),
    ("gemini", "Google (Gemini API / Vertex AI)", "https://aistudio.google.com/status"),
    ("llama", "your hosting provider (Meta publishes the weights)", None),
    ("mistral", "Mistral AI", "https://status.mistral.ai"),
)


@dataclass(frozen=True)
class Provider:
    family: str
    pattern: str
    provider: str
    status_page: str | None


@dataclass(frozen=True)
class Query:
    title: str
    why: str
    expr: str


@dataclass(frozen=True)
class Link:
    title: str
    url: str


@dataclass(frozen=True)
class Page:
    """The runbook of one alert name: every rule of that name in one SLO."""

    name: str
    plan: SloPlan
    burn: tuple[BurnAlertPlan, ...]
    thresholds: tuple[ThresholdAlertPlan, ...]
    budget: tuple[BudgetAlertPlan, ...]
    families: tuple[Provider, ...]  # the file's model families, with who runs them
    outage: bool = False  # the fast page: its threshold alert reads the SLI's bad share, not a panel band

    @property
    def link(self) -> str:
        """The page from the runbooks' index. A shared alert name's page is the index of its own
        folder: mkdocs serves it at the folder's address, the one the alert links to, whatever
        the SLO is called (an SLO named `index` too)."""
        page = self.plan.runbook_page(self.name)
        return f"{page}/index.md" if self.name in self.plan.shared_alerts else f"{page}.md"

    @property
    def path(self) -> str:
        return f"{RUNBOOKS_DIR}/{self.link}"

    @property
    def to_index(self) -> str:
        """The runbooks' index from the page (a shared alert name's pages stand two folders down)."""
        return "../" * self.link.count("/") + "index.md"

    @property
    def severities(self) -> list[str]:
        found = {a.severity for a in (*self.burn, *self.thresholds, *self.budget)}
        return sorted(found, key=lambda s: (SEVERITY_ORDER.index(s) if s in SEVERITY_ORDER else 99, s))


def placeholder(label: str) -> str:
    """What stands for the alert's value of `label` on a page: model -> $MODEL."""
    return "$" + label.upper()


# Where an engine shows each rule's last evaluation and error.
PROMETHEUS_RULES_PAGE = "Prometheus' Rules page"
VMALERT_GROUPS_PAGE = "vmalert's Groups page (/vmalert/groups)"


# --- What a page says ---------------------------------------------------------------


def pages(service: ServicePlan) -> list[Page]:
    """One page per alert name of the file's SLOs."""
    known = tuple(provider(name, pattern) for name, pattern in service.families)
    found = []
    for plan in service.slos:
        alerts = plan.alerts()
        for name in plan.alert_names():
            mine = [a for a in alerts if a.name == name]
            found.append(
                Page(
                    name=name,
                    plan=plan,
                    burn=tuple(a for a in mine if isinstance(a, BurnAlertPlan)),
                    thresholds=tuple(a for a in mine if isinstance(a, ThresholdAlertPlan)),
                    budget=tuple(a for a in mine if isinstance(a, BudgetAlertPlan)),
                    families=known,
                    outage=any(a.name == name for a in plan.outage_alerts),
                )
            )
    return found


def provider(family: str, pattern: str) -> Provider:
    key = family.lower()
    name, status = next(((p, s) for k, p, s in PROVIDERS if k in key), ("the provider that serves it", None))
    return Provider(family, pattern, name, status)


def guide_panels(plan: SloPlan) -> tuple[str, ...]:
    """The guide's panels that show this SLO's SLI, most telling first (none for Sloth SLIs)."""
    return {
        "availability": (AVAILABILITY_PANEL, ERROR_RATE_PANEL, THROUGHPUT_PANEL),
        "error_rate": (ERROR_RATE_PANEL, AVAILABILITY_PANEL, THROUGHPUT_PANEL),
        "latency": (LATENCY_PANEL, THROUGHPUT_PANEL, TOKENS_PANEL),
    }.get(plan.kind, ())


def slo_panels(plan: SloPlan) -> tuple[str, ...]:
    """The SLO row's panels a page links to."""
    titles = SloPanels.of(plan)
    return (titles.sli, titles.burn, titles.budget)


def dashboard_links(plan: SloPlan, board: DashboardPlan | None) -> list[Link]:
    """The dashboard, and the panels that show this SLO, by the ids the plan gives them."""
    if board is None:
        return []
    model = placeholder(contract.MODEL_LABEL) if contract.MODEL_LABEL in plan.group_by else None
    links = [Link("the whole dashboard", plan.dashboard_link(model=model))]
    for title in (*slo_panels(plan), *guide_panels(plan)):
        links.append(Link(title, plan.dashboard_link(model=model, panel=board.panel_id(title))))
    return links


def selector(plan: SloPlan, *extra: str) -> str:
    """The SLO's recorded series of the alert's group: {service=..,slo=..,model="$MODEL"}."""
    return slo_selector(
        plan.service, plan.name, *(f'{label}="{placeholder(label)}"' for label in plan.group_by), *extra
    )


def diagnosis_queries(page: Page) -> list[Query]:
    plan = page.plan
    mine = selector(plan)
    windows = "|".join(plan.window_name(w) for w in plan.sli_windows)
    queries = [
        Query(
            "Is it still burning, and how fast?",
            f"The budget burn rate over the last {SHORT_WINDOW}: 1 spends the budget exactly over the "
            f"{plan.period}. Compare it with the burn-rate column above.",
            f"{CURRENT_BURN_RECORD}{mine}",
        ),
    ]
    if plan.group_by:
        groups = "/".join(plan.group_by)
        queries.append(
            Query(
                f"Is it only this {groups}?",
                f"Every {groups} of the SLO, worst first: the error ratio over the last {SHORT_WINDOW} (0.01 = 1%). "
                "If all of them fail, the cause is on our side (gateway, credentials, quota, network, "
                "a release), not one provider.",
                f"sort_desc({plan.sli_record(SHORT_WINDOW)}{plan.selector})",
            )
        )
    queries += [
        Query(
            "How much of the budget is left?",
            f"Percent of the {plan.period} error budget left; below 0 the SLO is missed for the period.",
            f"{BUDGET_REMAINING_RECORD}{mine} * 100",
        ),
        Query(
            "The error ratio over every window the alerts read",
            f"One line per window (0.01 = 1%); the objective allows {percent(plan.budget)}.",
            f'{{__name__=~"{SLI_ERROR_PREFIX}({windows})",{mine[1:]}',
        ),
    ]
    if contract.MODEL_LABEL in plan.group_by:
        names = ", ".join(f"{markup.text(f.family)} {markup.code(f.pattern)}" for f in page.families)
        queries.append(
            Query(
                "Which models are healthy to fail over to?",
                f"Models meeting the {number(plan.objective)}% objective over the last {plan.failover_window}, "
                "best first: "
                f"pick one of the same family as `{placeholder(contract.MODEL_LABEL)}` ({names}).",
                f"sort({plan.sli_record(plan.failover_window)}{plan.selector} <= {number(plan.budget)})",
            )
        )
    if plan.kind in ("availability", "error_rate", "latency") and contract.MODEL_LABEL in plan.group_by:
        model = f'{{{contract.MODEL_LABEL}="{placeholder(contract.MODEL_LABEL)}"}}'

        window = f"[{SHORT_WINDOW}]"

        def rate(metric: str, offset: str = "") -> str:
            return f"sum(rate({metric}{model}{window}{offset}))"

        yesterday = " offset 1d"
        requests, tokens = contract.REQUESTS_TOTAL, contract.TOKENS_USED_TOTAL
        queries.append(
            Query(
                "Did the traffic jump?",
                "Calls per second of the model now, divided by the same time yesterday; well above 1 is a "
                "load spike (shed load), around 1 means the failures are not about volume.",
                f"{rate(requests)}\n/\n{rate(requests, yesterday)}",
            )
        )
        if plan.kind == "latency":
            queries.append(
                Query(
                    "How slow is it?",
                    "The 95th percentile latency of the model in milliseconds, from the histogram.",
                    f"histogram_quantile(0.95, sum by (le) (rate({contract.LATENCY_MS_BUCKET}{model}{window})))",
                )
            )
        queries.append(
            Query(
                "Did the calls get bigger?",
                "Tokens per call of the model now against yesterday; a jump after a release points at a "
                "prompt or client change (longer prompts, higher max_tokens).",
                f"({rate(tokens)} / {rate(requests)})\n/\n({rate(tokens, yesterday)} / {rate(requests, yesterday)})",
            )
        )
    by = f" (one line per {'/'.join(plan.group_by)}: find yours in the result)" if plan.group_by else ""
    queries.append(
        Query(
            "The SLI straight from the source series",
            f"The error ratio over {SHORT_WINDOW} computed from the raw series, without the recording rules"
            f"{by}. If it disagrees with the recorded ratio, check rule evaluation on "
            f"{VMALERT_GROUPS_PAGE if plan.metricsql else PROMETHEUS_RULES_PAGE}.",
            plan.error_ratio_expr(SHORT_WINDOW),
        )
    )
    return queries


# --- Rendering -----------------------------------------------------------------------


@cache
def _environment() -> jinja2.Environment:
    # Markdown, not Prometheus text: the usual delimiters, no autoescaping (queries keep their quotes).
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        auto_reload=False,  # the package's own templates: not stat()ed again at each of 16,000 renders
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.globals.update(
        number=number,
        percent=percent,
        exhaustion=exhaustion_text,
        MODEL_LABEL=contract.MODEL_LABEL,
        SHORT_WINDOW=SHORT_WINDOW,
        COVERAGE_RECORD=COVERAGE_RECORD,
        LATENCY_MS=contract.LATENCY_MS,
        REQUESTS_TOTAL=contract.REQUESTS_TOTAL,
        ERRORS_TOTAL=contract.ERRORS_TOTAL,
        guide_panels=guide_panels,
    )
    env.filters["placeholder"] = placeholder
    env.filters["number"] = number
    # Spec text, escaped for the page (modelmon.markup): never HTML, never closing its code span.
    env.filters["text"] = markup.text
    env.filters["code"] = markup.code
    env.filters["fenced"] = markup.fenced
    env.filters["team"] = markup.team
    return env


def render_page(page: Page, board: DashboardPlan | None, header: str) -> str:
    return (
        _environment()
        .get_template("runbook.md.j2")
        .render(
            page=page,
            plan=page.plan,
            spec_text=page.plan.runbook_text,
            links=dashboard_links(page.plan, board),
            queries=diagnosis_queries(page),
            header=header,
        )
    )


def render_index(rows: list[tuple[str, str]], header: str, command: str) -> str:
    """The index of every page; `rows`: each service's (name, index_rows)."""
    # By service name (unique in a project: checks.check_all), each block by alert name: the
    # order of every page by (service, alert name).
    blocks = [block for _, block in sorted(rows, key=lambda row: row[0])]
    return _environment().get_template("runbook_index.md.j2").render(rows=blocks, header=header, command=command)


def index_rows(found: list[Page]) -> str:
    """One service's rows of the index, by alert name: read from its plan alone."""
    pages = sorted(found, key=lambda page: page.name)
    return _environment().get_template("runbook_index_rows.md.j2").render(pages=pages)


def files(project: ProjectPlan, layout: Layout, kept: ServiceTexts | None = None) -> dict[str, str | KeptContent]:
    """Every runbook page and the index, in the layout's runbooks folder; `kept`: the pages earlier
    builds rendered, by service plan (a kept service's unread: KeptContent)."""
    if not layout.runbooks:
        return {}
    if not layout.dashboards:  # no dashboard written: the pages link to none
        project = replace(project, services=tuple(replace(s, dashboard=None) for s in project.services))
    pages = render_all(project, GENERATED_MARK, layout.command, kept)
    return {layout.runbook_path(path, RUNBOOKS_DIR): text for path, text in pages.items()}


def render_all(
    project: ProjectPlan, mark: str, command: str, kept: ServiceTexts | None = None
) -> dict[str, str | KeptContent]:
    """Every runbook page and the index, as {path: content}; `mark` is the generated-file mark,
    `command` the one that regenerates the pages. `kept`: the pages earlier builds rendered, by
    service plan, and by SLO plan with the little of its service a page reads: a service whose
    plan changed renders the pages of its SLOs that changed."""
    out: dict[str, str | KeptContent] = {}
    rows: list[tuple[str, str]] = []
    for service in project.services:
        found = pages(service)
        header = html_header(mark, [service.source], command)
        if kept is None:
            rows.append((service.service, index_rows(found)))
            out.update(_rendered(found, service.dashboard, header))
            continue
        rows.append((service.service, kept.made("runbook index rows", service, partial(index_rows, found))))
        # All an SLO's pages read besides its plan: the header, the file's model families (with who
        # serves them) and the links into the dashboard (the board's panel ids).
        shared = "\0".join(["runbook pages", header, stable_repr(found[0].families if found else ())])
        by_slo = [
            (f"{shared}\0{stable_repr(dashboard_links(plan, service.dashboard))}", plan, mine)
            for plan, mine in _by_slo(service, found)
        ]

        def make(by_slo=by_slo, board=service.dashboard, header=header) -> dict[str, str]:
            made: dict[str, str] = {}
            for reads, plan, mine in by_slo:
                made.update(kept.made_from(reads, [plan], partial(_rendered, mine, board, header)))
            return made

        # What the pages read besides the service's plan: the mark and the command.
        out.update(kept.contents(f"runbooks {mark}\0{command}", service, make, texts=False))  # each SLO's kept
        for reads, plan, _ in by_slo:  # the pages of each SLO stay kept, whether or not read here
            kept.still_used(reads, [plan])
    out[INDEX_PATH] = render_index(rows, html_header(mark, sorted(project.sources), command), command)
    return out


def _by_slo(service: ServicePlan, found: list[Page]) -> list[tuple[SloPlan, list[Page]]]:
    """The pages `found`, by the SLO they are of, in the service's order (an SLO without alerts has none)."""
    mine: dict[int, list[Page]] = {}
    for page in found:
        mine.setdefault(id(page.plan), []).append(page)
    return [(plan, mine[id(plan)]) for plan in service.slos if id(plan) in mine]


def _rendered(found: list[Page], board: DashboardPlan | None, header: str) -> dict[str, str]:
    """The pages `found`, by path."""
    return {page.path: render_page(page, board, header) for page in found}


def html_header(mark: str, sources: list[str], command: str) -> str:
    # "--" would end the comment early: a spec file's name is shown, never closes it.
    names = ", ".join(sources).replace("--", "-&#45;")
    return (
        f"<!-- {mark} from {names}. "
        f"Do not edit: change the spec (its `runbook` block for your own text) and run `{command}`. -->"
    )
