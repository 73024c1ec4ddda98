"""Stage 6, render: the site's Markdown pages, the latency chart and docs/results.json, from the cache alone.

`render()` reads the committed docs/results.json, gathers every cell's answer or failure and its evidence
(cache first, then results.json), and writes into docs/:

- ``index.md``: what the benchmark is, how to read it, a link to every page;
- ``big-brain-benchmark.md``: run date, environment, comparison, latency, key findings, method;
- ``tasks/<task-id>.md``: prompt, reference, verdict, each model's answer in its own content tab;
- ``results.json``: everything above, machine-readable (generator.results.ResultsFile);
- ``assets/latency.svg``, ``assets/*.css`` and the hand-written pages of ``site_src/pages``.

It never calls a model. It is deterministic: the same benchmark, cache and results.json give byte-identical
files (dates shown are run dates, never the render's), a file is written only when its bytes change, and
task pages of tasks no longer in the benchmark are removed. With ``report.show_hosts: false`` every host
(URL, host:port and host name) is replaced by "redacted" in every text render writes; header values
(secrets) are replaced by "[secret]" always.

What is guaranteed for untrusted text
-------------------------------------
Untrusted means anything a model, a reviewer, a check or a file wrote: answers, thinking, judge
rationales, failure reasons, check names and details, review labels and issues, and, to keep one rule,
every string from benchmark.yaml (titles, labels, prompts). Templates are ours; untrusted text only ever
reaches them as Jinja *variables*, never as template source, so
``{{ ... }}`` or ``{% include %}`` in an answer is printed, not evaluated. Every ``{{ }}`` output goes
through one finalizer: a string is escaped with ``inline()`` unless it is a ``Markdown`` value, which only
``inline()``, ``fenced()`` and this module's own builders produce. So forgetting a filter escapes
too much, never too little.

- ``fenced(text, indent)`` (answers, thinking, rationales, prompts, references): a fenced code block whose
  backtick fence is longer than the longest run of backticks or tildes in the text, every line indented
  to the block's depth (so a line cannot end the block, nor the content tab or admonition around it).
  pymdownx.superfences stashes the block before any other Markdown processing and HTML-escapes it, so
  nothing inside is Markdown, HTML, a tab, an admonition or a snippet. The page shows the text exactly,
  tabs included (superfences ``preserve_tabs``), except that C0 control characters other than tab and
  newline, and DEL, are shown as their Unicode control pictures (U+2400 + code, U+2421): Python-Markdown
  uses \\x02...\\x03 (and superfences \\x01...\\x04) as placeholders inside the page it builds, and drops
  or rewrites \\r. Lone surrogates become U+FFFD. Pygments adds one final newline when the text has none.
- ``inline(text)`` (table cells, list items, admonition bodies, tab titles): control pictures as above,
  every run of whitespace (newlines included) folded to one space, Markdown's backslash-escapable
  characters and ``|`` backslash-escaped, and ``& < > " '`` written as HTML entities. The result is
  plain text on one line: no link, image, emphasis, HTML tag, attribute list or table cell break.
- ``pymdownx.snippets``, ``md_in_html`` and ``attr_list`` are not enabled in mkdocs.yml (snippets expands
  ``--8<--`` even inside code blocks; attr_list would let ``{: onclick=...}`` set attributes); nothing here
  evaluates Markdown found in untrusted text.
- Nav titles and site_name (set by the MkDocs hook) are HTML-escaped, since themes insert them unescaped.
- MkDocs' search index stores each section as the page's (escaped) HTML, so search results show answers as
  text too (tests/test_browser.py searches for a hostile answer).
results.json keeps every text byte for byte (JSON-escaped).
"""

from __future__ import annotations

import csv
import html
import io
import os
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from . import history as history_mod
from . import results as results_mod
from .cache import AnswerCache
from .config import Benchmark, ModelSpec
from .decide import CLEAR_MARGIN
from .evaluate import checks_key
from .errors import BenchError
from .providers import redact_url
from .records import CellResult, ModelDetails, Review
from .report import ModelReport, Report, TaskReport, gather
from .results import BenchmarkEntry, CellEntry, ModelEntry, Portable, ResultsFile, TaskEntry

SUMMARY = "big-brain-benchmark.md"
HISTORY = "history.md"
COMPARISON_CSV = "comparison.csv"
LATENCY_CSV = "latency.csv"
CHART = "assets/latency.svg"
REDACTED = "redacted"

# ------------------------------------------------------------------------------------ untrusted text


class Markdown(str):
    """Markdown this module wrote or made safe; the template finalizer passes it unchanged."""


_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# Python-Markdown's backslash-escapable characters (markdown.core ESCAPED_CHARS) and '|' (tables).
# '>' is left out: it is written as an entity like the other HTML characters.
_MD_SPECIAL = frozenset("\\`*_{}[]()#+-.!|")
_HTML_SPECIAL = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}


def visible(text: str) -> str:
    """Control characters (but tab and newline) as Unicode control pictures; lone surrogates as U+FFFD."""
    text = _CONTROL.sub(lambda m: chr(0x2421 if m.group() == "\x7f" else 0x2400 + ord(m.group())), text)
    return _SURROGATE.sub("\ufffd", text)


def inline(text: Any) -> Markdown:
    """Untrusted text as one line of plain text inside Markdown (a table cell, a list item, a title)."""
    folded = " ".join(visible(str(text)).split())
    out = []
    for ch in folded:
        if ch in _MD_SPECIAL:
            out.append("\\" + ch)
        else:
            out.append(_HTML_SPECIAL.get(ch, ch))
    return Markdown("".join(out))


_FENCE_RUN = re.compile(r"`+|~+")


def fenced(text: str, indent: int = 0, lang: str = "text") -> Markdown:
    """Untrusted text shown exactly, as a fenced code block at ``indent`` spaces (a tab's or admonition's depth)."""
    text = visible(text)
    longest = max((len(run) for run in _FENCE_RUN.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    pad = " " * indent
    lines = [f"{fence} {lang}", *text.split("\n"), fence]
    return Markdown("\n".join(pad + line if line else line for line in lines))


def quoted(text: Any) -> Markdown:
    """A title for an admonition, details block or content tab: ``"..."`` with the text made inline-safe."""
    return Markdown(f'"{inline(text)}"')


def link(text: Any, target: str) -> Markdown:
    """A link with untrusted text; ``target`` is built here from slugs, never from untrusted text."""
    return Markdown(f"[{inline(text)}]({target})")


def _finalize(value: Any) -> Any:
    if isinstance(value, Markdown):
        return value
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return str(value)
    return inline(value)


def _environment(templates: Path) -> Environment:
    # A plain Environment: the templates are ours, and untrusted text only ever arrives as data. (A sandboxed
    # environment guards against untrusted *templates*; here it only tripled the render time.)
    env = Environment(
        loader=FileSystemLoader(str(templates)),
        undefined=StrictUndefined,
        finalize=_finalize,
        autoescape=False,  # the output is Markdown; _finalize does the escaping that Markdown needs
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["fenced"] = fenced
    env.filters["quoted"] = quoted
    env.globals.update(check_name=check_name, checks_score=checks_score, decided_by=DECIDED_BY, duration=duration,
                       link=link, review_text=review_text, winner_cell=winner_cell, percent=percent,
                       digests=lambda run: ", ".join(f"{m} {(d or '—')[:12]}" for m, d in run.digests.items()))
    return env


# ------------------------------------------------------------------------------------------ formats


def duration(ms: float | None) -> str:
    """'850 ms', '12.3 s', or '—' when not measured."""
    if ms is None:
        return "—"
    if ms < 10:
        return f"{ms:.1f} ms"
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


def percent(score: float | None) -> str:
    """A weighted check pass rate as '75%', or '—' when not scored."""
    return "—" if score is None else f"{score * 100:.0f}%"


def run_date(stamp: str | None) -> str:
    """'2026-01-31 14:05 UTC' from the records' ISO stamp."""
    if not stamp:
        return "not run yet"
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})(:\d{2}(\.\d+)?)?Z", stamp)
    return f"{m.group(1)} {m.group(2)} UTC" if m else stamp


def checks_score(cell: CellResult) -> str:
    passed = sum(c.passed for c in cell.checks)
    return f"{passed}/{len(cell.checks)} checks"


def check_name(check) -> str:
    """A check's name as its results are shown (benchmark.yaml's name, else the checks module's summary)."""
    from .checks import default_name

    return check.name or default_name(check)


def review_text(review: Review | None) -> str | None:
    """'4/5, good (by ana, 2026-01-30)', marked STALE when the answer changed since."""
    if review is None:
        return None
    stale = " STALE: reviewed an older answer, not applied" if review.stale else ""
    return f"{review.score}/5, {review.label} (by {review.reviewer}, {review.date}){stale}"


DECIDED_BY = {"checks": "objective checks", "review": "human review", "judge": "LLM judge (model-graded)",
              "none": "nothing separates the answers"}


class Redactor:
    """Removes secrets always, and hosts when report.show_hosts is false, from every text render writes."""

    def __init__(self, bench: Benchmark):
        self.show_hosts = bench.report.show_hosts
        pairs = [(secret, "[secret]") for secret in bench.secrets()]
        if not self.show_hosts:
            for model in bench.models:
                parts = urlsplit(model.host)
                netloc = parts.netloc.rsplit("@", 1)[-1]
                for needle in (model.host, redact_url(model.host), parts.netloc, netloc, parts.hostname or ""):
                    if needle:
                        pairs.append((needle, REDACTED))
        # Longest first, so a URL is replaced whole before its host name is.
        self._pairs = sorted(set(pairs), key=lambda p: (-len(p[0]), p[0]))

    def __call__(self, text: str | None) -> str | None:
        if text is None:
            return None
        for needle, replacement in self._pairs:
            text = text.replace(needle, replacement)
        return text

    def host(self, model: ModelSpec) -> str:
        return redact_url(model.host) if self.show_hosts else REDACTED


# ---------------------------------------------------------------------------------------- the views


@dataclass(frozen=True)
class ModelView:
    """One model as the pages show it."""

    id: str
    label: str
    tag: str
    provider: str
    host: str
    hardware: str | None
    status: str
    reason: str | None
    details: ModelDetails | None
    digest: str | None
    warm_up_ms: float | None

    @property
    def size(self) -> str | None:
        """'27.4B, Q4_K_M' as the server reports them."""
        parts = [self.details.parameter_size, self.details.quantization_level] if self.details else []
        return ", ".join(p for p in parts if p) or None

    @property
    def status_text(self) -> str:
        shown = {"ok": "ok", "partial": "partial", "unavailable": "UNAVAILABLE", "not_run": "not run"}[self.status]
        return f"{shown}: {self.reason}" if self.reason else shown


@dataclass(frozen=True)
class Flag:
    """A warning shown above an answer (cut, empty)."""

    title: str
    text: str


@dataclass(frozen=True)
class CellView:
    model: ModelView
    cell: CellResult
    reason: str | None  # redacted
    flags: list[Flag] = field(default_factory=list)

    @property
    def answer(self):
        return self.cell.answer

    @property
    def summary(self) -> str:
        """What a comparison-table cell says: '5/8 checks · 12.3 s', 'UNAVAILABLE', 'not run'."""
        if self.cell.status == "failed":
            return "UNAVAILABLE"
        if self.cell.status == "not_run":
            return "not run"
        parts = [checks_score(self.cell)] if self.cell.checks else ["answered"]
        parts.append(duration(self.answer.latency_ms))
        parts += [f.title.split(":")[0].lower() for f in self.flags]
        return " · ".join(parts)


@dataclass(frozen=True)
class TaskView:
    report: TaskReport
    cells: list[CellView]
    winner: str  # a model label, 'tie' or 'N/A'
    reason: str  # redacted
    judge_error: str | None

    @property
    def spec(self):
        return self.report.spec

    @property
    def verdict(self):
        return self.report.verdict

    @property
    def page(self) -> str:
        return f"tasks/{self.spec.id}.md"

    @property
    def not_answered(self) -> str:
        """'N/A: Big Brain and Local did not answer (connection refused ...)': models grouped by reason."""
        by_reason: dict[str, list[str]] = {}
        for c in self.cells:
            if c.cell.status != "ok":
                by_reason.setdefault(c.reason or "no reason recorded", []).append(c.model.label)
        parts = [f"{' and '.join(labels)} did not answer ({reason})" for reason, labels in by_reason.items()]
        return "N/A: " + "; ".join(parts)

    @property
    def winner_text(self) -> str:
        if self.verdict.winner is None:
            return self.not_answered
        if self.verdict.objectively_clear:
            return f"{self.winner} (objectively clear)"
        return self.winner


def winner_cell(task: TaskView) -> Markdown:
    """The Winner column: the label in bold (and 'objectively clear'), 'tie', or 'N/A: reason'."""
    if task.verdict.winner is None:
        return inline(task.winner_text)
    if task.verdict.winner == "tie":
        return Markdown("tie")
    clear = " · objectively clear" if task.verdict.objectively_clear else ""
    return Markdown(f"**{inline(task.winner)}**{clear}")


def _flags(cell: CellResult, options_num_predict: int | None) -> list[Flag]:
    answer = cell.answer
    if answer is None:
        return []
    flags = []
    if answer.cut:
        limit = f" (num_predict {options_num_predict})" if options_num_predict is not None else ""
        flags.append(Flag("Cut: the answer hit the token limit",
                          f"done_reason is 'length': the model was stopped at its token limit{limit} "
                          f"before it finished, so the answer is incomplete."))
    if answer.empty:
        flags.append(Flag("Empty: the model returned no text",
                          "The answer is empty or only whitespace."))
    return flags


def _model_view(m: ModelReport, portable: Portable, redact: Redactor, answers: list) -> ModelView:
    committed = portable.model(m.spec.id)
    details = m.probe.details if m.probe and m.probe.details else (committed.details if committed else None)
    warm = m.probe.warm_up_ms if m.probe and m.probe.warm_up_ms is not None else (
        committed.warm_up_ms if committed else None)
    digest = (details.digest if details else None) or next((a.digest for a in answers if a.digest), None)
    return ModelView(id=m.spec.id, label=m.spec.display, tag=m.spec.model, provider=m.spec.provider,
                     host=redact.host(m.spec), hardware=m.spec.hardware, status=m.status,
                     reason=redact(m.reason), details=details, digest=digest, warm_up_ms=warm)


def _views(report: Report, portable: Portable, redact: Redactor) -> tuple[list[ModelView], list[TaskView]]:
    models = []
    for m in report.models:
        answers = [t.cell(m.spec.id).answer for t in report.tasks if t.cell(m.spec.id).answer]
        models.append(_model_view(m, portable, redact, answers))
    by_id = {m.id: m for m in models}
    tasks = []
    for t in report.tasks:
        cells = []
        for cell in t.cells:
            spec = report.bench.model(cell.model_id)
            num_predict = report.bench.options_for(spec, t.spec).num_predict
            cells.append(CellView(model=by_id[cell.model_id], cell=cell, reason=redact(cell.reason),
                                  flags=_flags(cell, num_predict)))
        v = t.verdict
        winner = "N/A" if v.winner is None else ("tie" if v.winner == "tie" else by_id[v.winner].label)
        judge_error = redact(v.judge.error) if v.judge and v.judge.error else None
        tasks.append(TaskView(report=t, cells=cells, winner=winner, reason=redact(v.reason), judge_error=judge_error))
    return models, tasks


# ------------------------------------------------------------------------------------- key findings


def _findings(report: Report, models: list[ModelView], tasks: list[TaskView]) -> list[Markdown]:
    """Sentences drawn from the data, strongest first. Untrusted parts go through inline()."""
    out: list[Markdown] = []
    clear = [t for t in tasks if t.verdict.objectively_clear]
    for t in clear:
        out.append(Markdown(f"**Objectively clear** on {link(t.spec.title, t.page)}: {inline(t.winner)} wins. "
                            f"{inline(t.reason)}"))
    decided = [t for t in tasks if t.verdict.winner is not None]
    if not clear:
        if not decided:
            why = " yet: no task was answered by every model."
        elif not any(t.spec.checks for t in decided):
            why = ": no answered task has objective checks."
        else:
            why = ": no critical check split the models and no pass rates differ by a wide margin."
        out.append(Markdown("No task shows an objectively clear difference" + why))
    if decided:
        tally = []
        for m in models:
            won = [t for t in decided if t.verdict.winner == m.id]
            tally.append(f"{inline(m.label)} won {len(won)}")
        ties = sum(t.verdict.winner == "tie" for t in decided)
        na = len(tasks) - len(decided)
        out.append(Markdown(f"Of {len(tasks)} tasks: {', '.join(tally)}; {ties} tie(s); {na} N/A."))
    for m in models:
        if m.status != "ok":
            word = {"unavailable": "was UNAVAILABLE", "partial": "answered only part of the tasks",
                    "not_run": "has not been run"}[m.status]
            out.append(Markdown(f"**{inline(m.label)}** {word}: {inline(m.reason or '')}"))
    for kind, test in (("cut at the token limit (done_reason 'length')", lambda a: a.cut),
                       ("empty", lambda a: a.empty)):
        hits = [(t, c) for t in tasks for c in t.cells if c.answer is not None and test(c.answer)]
        if hits:
            where = ", ".join(f"{inline(c.model.label)} on {link(t.spec.title, t.page)}" for t, c in hits)
            out.append(Markdown(f"Answers {inline(kind)}: {where}."))
    out += _speed_findings(models, tasks)
    judged = [t for t in tasks if t.verdict.decided_by == "judge"]
    if judged:
        names = ", ".join(link(t.spec.title, t.page) for t in judged)
        out.append(Markdown(f"Decided by the LLM judge (model-graded, weaker evidence than checks): {names}."))
    stale = [(t, c) for t in tasks for c in t.cells if c.cell.review is not None and c.cell.review.stale]
    if stale:
        where = ", ".join(f"{inline(c.model.label)} on {link(t.spec.title, t.page)}" for t, c in stale)
        out.append(Markdown(f"Stale reviews (the answer changed since it was reviewed; not applied): {where}."))
    return out


def _speed_findings(models: list[ModelView], tasks: list[TaskView]) -> list[Markdown]:
    both = [t for t in tasks if all(c.answer is not None for c in t.cells)]
    if len(models) < 2:
        return []
    if not both:
        return [Markdown("No latency comparison: no task was answered by every model.")]
    totals = {m.id: sum(t.report.cell(m.id).answer.latency_ms for t in both) for m in models}
    fastest = min(models, key=lambda m: (totals[m.id], m.id))
    wins = sum(1 for t in both if min(t.cells, key=lambda c: (c.answer.latency_ms, c.model.id)).model.id == fastest.id)
    others = ", ".join(f"{inline(m.label)} {duration(totals[m.id])}" for m in models if m is not fastest)
    return [Markdown(f"Fastest: **{inline(fastest.label)}**, {duration(totals[fastest.id])} in total over the "
                     f"{len(both)} task(s) every model answered (vs {others}); fastest on {wins} of {len(both)}.")]


# -------------------------------------------------------------------------------------- method notes


def _options_text(options: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in options.items()) or "server defaults"


def _method(bench: Benchmark) -> dict:
    overrides = []
    for m in bench.models:
        if m.options:
            overrides.append(f"{m.display}: {_options_text(m.options.model_dump(exclude_none=True))}")
        if m.think is not None:
            overrides.append(f"{m.display}: think {'on' if m.think else 'off'}")
    for t in bench.tasks:
        if t.options:
            overrides.append(f"task {t.id}: {_options_text(t.options.model_dump(exclude_none=True))}")
    defaults = bench.defaults
    notes = []
    if defaults.options.seed is None:
        notes.append("no seed is set, so sampling is not reproducible")
    if defaults.options.num_predict is None:
        notes.append("no num_predict is set: answers are as long as the server allows")
    return {
        "options": _options_text(defaults.options.model_dump(exclude_none=True)),
        "notes": notes,
        "overrides": overrides,
        "timeout": f"{defaults.timeout_s:g} s",
        "retries": defaults.retries,
        "warm_up": defaults.warm_up,
        "judge": bench.model(bench.judge.model).display if bench.judge else None,
        "clear_margin": f"{CLEAR_MARGIN:.0%}",
        "reviews": bench.report.reviews,
        "sha256": bench.source_sha256,
    }


# -------------------------------------------------------------------------------------------- chart


CHART_MAX_TASKS = 24  # above this, one bar per task is unreadable: the chart shows each model's spread


def latency_svg(models: list[ModelView], tasks: list[TaskView]) -> str:
    """Each task's latency per model (grouped bars), or per model a box plot when there are many tasks.

    Deterministic SVG: a fixed hash salt, no date or creator, text as <text> so fonts do not change bytes.
    """
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    rc = {"svg.hashsalt": "big-brain-bench", "svg.fonttype": "none", "text.parse_math": False,
          "font.family": "DejaVu Sans", "font.size": 10}
    latencies = {m.id: [(j, t.report.cell(m.id).answer) for j, t in enumerate(tasks)] for m in models}
    with matplotlib.rc_context(rc):
        many = len(tasks) > CHART_MAX_TASKS
        any_answer = any(a is not None for values in latencies.values() for _, a in values)
        rows = 1 if not any_answer else len(models) if many else len(tasks) * max(1, len(models))
        fig = Figure(figsize=(8, 1.6 + 0.45 * rows), facecolor="white")
        FigureCanvasSVG(fig)
        ax = fig.add_subplot()
        if not any_answer:
            ax.set_xlim(0, 1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.text(0.5, 0.5, "No answers yet", transform=ax.transAxes, ha="center", va="center", fontsize=14,
                    color="#555555")
        elif many:
            _box_chart(ax, models, latencies, len(tasks))
        else:
            _bar_chart(ax, models, tasks, latencies)
        ax.spines[["top", "right"]].set_visible(False)
        fig.tight_layout()
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    return buf.getvalue()


def _bar_chart(ax, models: list[ModelView], tasks: list[TaskView], latencies: dict) -> None:
    group = 0.8 / max(1, len(models))
    for i, m in enumerate(models):
        ys, xs, missing = [], [], []
        for j, answer in latencies[m.id]:
            y = j + (i - (len(models) - 1) / 2) * group
            if answer is None:
                missing.append(y)
            else:
                ys.append(y)
                xs.append(answer.latency_ms / 1000)
        bars = ax.barh(ys, xs, height=group * 0.9, color=CHART_COLORS[i % len(CHART_COLORS)], label=m.label)
        ax.bar_label(bars, labels=[duration(x * 1000) for x in xs], padding=3, fontsize=8)
        for y in missing:
            ax.text(0, y, " no answer", va="center", fontsize=8, color="#b00020")
    ax.set_yticks(range(len(tasks)), ["\n".join(textwrap.wrap(t.spec.title, 26)) for t in tasks])
    ax.invert_yaxis()
    ax.set_xlabel("answer latency, seconds (wall clock; model load excluded)")
    ax.set_xlim(left=0)
    ax.margins(x=0.15)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=max(1, len(models)), frameon=False)


def _box_chart(ax, models: list[ModelView], latencies: dict, n_tasks: int) -> None:
    data, labels = [], []
    for m in models:
        values = [a.latency_ms / 1000 for _, a in latencies[m.id] if a is not None]
        data.append(values or [float("nan")])
        labels.append(f"{m.label}\n{len(values)} of {n_tasks} answered")
    parts = ax.boxplot(data, vert=False, patch_artist=True, widths=0.6)
    for i, box in enumerate(parts["boxes"]):
        box.set_facecolor(CHART_COLORS[i % len(CHART_COLORS)])
    ax.set_yticks(range(1, len(models) + 1), labels)
    ax.invert_yaxis()
    ax.set_xlabel(f"answer latency per task, seconds ({n_tasks} tasks; each task's value is in the table)")
    ax.set_xlim(left=0)


CHART_COLORS = ["#3f51b5", "#ff9800", "#009688", "#e91e63", "#8bc34a", "#795548"]


# --------------------------------------------------------------------------------------- results.json


def results_file(report: Report, models: list[ModelView], tasks: list[TaskView], redact: Redactor) -> ResultsFile:
    model_entries = [
        ModelEntry(id=m.id, label=m.label, provider=m.provider, model=m.tag, host=m.host, hardware=m.hardware,
                   status=m.status, reason=m.reason, details=m.details, digest=m.digest, warm_up_ms=m.warm_up_ms)
        for m in models
    ]
    task_entries = []
    for t in tasks:
        cells = []
        for c in t.cells:
            cell, a, f = c.cell, c.cell.answer, c.cell.failure
            fields: dict[str, Any] = {"model": cell.model_id, "status": cell.status, "key": cell.key,
                                      "reason": c.reason, "checks": cell.checks, "score": cell.score,
                                      "review": cell.review}
            if a is not None:
                fields.update(a.model_dump(exclude={"text", "key", "model_id", "task_id"}),
                              answer=a.text, output_sha256=a.output_sha256,
                              checks_key=checks_key(t.spec, a.output_sha256) if cell.checks else None)
            if f is not None:
                fields.update(failed_at=f.at or None, failure_kind=f.kind)
            cells.append(CellEntry(**fields))
        judge = t.verdict.judge
        if judge is not None and judge.error:
            judge = judge.model_copy(update={"error": t.judge_error})
        task_entries.append(TaskEntry(id=t.spec.id, title=t.spec.title, winner=t.verdict.winner,
                                      decided_by=t.verdict.decided_by, objectively_clear=t.verdict.objectively_clear,
                                      reason=t.reason, judge=judge, cells=cells))
    return ResultsFile(generated_at=report.generated_at,
                       benchmark=BenchmarkEntry(title=report.bench.title, sha256=report.bench.source_sha256),
                       models=model_entries, tasks=task_entries)


# ---------------------------------------------------------------------------------------------- files


def tables_csv(models: list[ModelView], tasks: list[TaskView]) -> tuple[str, str]:
    """The comparison and latency tables as CSV (comparison.csv, latency.csv), linked from the summary."""
    comparison, latency = io.StringIO(), io.StringIO()
    cw, lw = csv.writer(comparison, lineterminator="\n"), csv.writer(latency, lineterminator="\n")
    cw.writerow(["task", *[m.id for m in models], "winner", "decided_by", "objectively_clear"])
    lw.writerow(["task", *[f"{m.id}_latency_ms" for m in models]])
    for t in tasks:
        verdict = t.verdict
        cw.writerow([t.spec.id, *[c.summary for c in t.cells], verdict.winner or "N/A", verdict.decided_by,
                     str(verdict.objectively_clear).lower()])
        lw.writerow([t.spec.id, *[f"{c.answer.latency_ms:.1f}" if c.answer else "" for c in t.cells]])
    return comparison.getvalue(), latency.getvalue()


@dataclass(frozen=True)
class Move:
    """One task × model between the two latest recorded runs."""

    task: str
    model: str
    latency_before: float | None
    latency_now: float | None
    score_before: float | None
    score_now: float | None
    answer_changed: bool
    winner_before: str | None
    winner_now: str | None

    @property
    def latency_change(self) -> str:
        if self.latency_before is None or self.latency_now is None:
            return "—"
        pct = (self.latency_now - self.latency_before) / self.latency_before * 100 if self.latency_before else 0
        return f"{pct:+.0f}%"


def history_moves(history: history_mod.History, bench: Benchmark) -> list[Move]:
    """Per task and model, latency, score and winner in the run before the last and in the last."""
    if len(history.runs) < 2:
        return []
    before, now = history.runs[-2], history.runs[-1]
    old = {(t.task, c.model): (t, c) for t in before.tasks for c in t.cells}
    moves = []
    for t in now.tasks:
        for c in t.cells:
            if (t.task, c.model) not in old:
                continue
            ot, oc = old[(t.task, c.model)]
            moves.append(Move(task=t.task, model=c.model, latency_before=oc.latency_ms, latency_now=c.latency_ms,
                              score_before=oc.score, score_now=c.score,
                              answer_changed=oc.output_sha256 != c.output_sha256,
                              winner_before=ot.winner, winner_now=t.winner))
    return moves


def find_site_src(bench: Benchmark) -> Path:
    """site_src beside benchmark.yaml, else the one beside this package (a checkout), else ./site_src."""
    here = Path(__file__).resolve().parent.parent / "site_src"
    candidates = [Path(bench.source_path).parent / "site_src"] if bench.source_path else []
    candidates += [here, Path.cwd() / "site_src"]
    for candidate in candidates:
        if (candidate / "templates").is_dir():
            return candidate
    raise BenchError("site_src/templates not found beside benchmark.yaml or the generator package; "
                     "render needs the site templates from the project checkout.")


def _write(path: Path, data: bytes) -> bool:
    """Write ``data`` unless the file already holds exactly it. Returns whether the file changed."""
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)  # a reader (mkdocs serve) never sees half a file
    return True


def _encode(text: str) -> bytes:
    # A lone surrogate cannot be UTF-8; in results.json it becomes the JSON escape it came from (\udXXX).
    return text.encode("utf-8", "backslashreplace")


def render(bench: Benchmark, cache: AnswerCache, docs_dir: str | Path, *, site_src: str | Path | None = None,
           banner: str | None = None) -> list[Path]:
    """Write docs/ from the cache and the committed results.json. Returns the files whose content changed.

    ``banner``: a warning put at the top of every generated page (the demo marks its pages simulated).
    """
    docs = Path(docs_dir)
    source = Path(site_src) if site_src else find_site_src(bench)
    portable = results_mod.load(docs)
    report = gather(bench, cache, portable)
    redact = Redactor(bench)
    models, tasks = _views(report, portable, redact)
    env = _environment(source / "templates")
    common = {"bench": bench, "models": models, "tasks": tasks, "banner": banner, "summary": SUMMARY,
              "run_date": run_date(report.generated_at)}

    files: dict[str, bytes] = {}
    files["index.md"] = env.get_template("index.md.j2").render(**common).encode()
    files[SUMMARY] = env.get_template("summary.md.j2").render(
        **common, findings=_findings(report, models, tasks), method=_method(bench), chart=Markdown(CHART),
        latency_totals=_latency_totals(models, tasks)).encode()
    task_template = env.get_template("task.md.j2")
    for t in tasks:
        files[t.page] = task_template.render(**common, task=t).encode()
    files[results_mod.FILENAME] = _encode(results_file(report, models, tasks, redact).to_json())
    files[COMPARISON_CSV], files[LATENCY_CSV] = (_encode(text) for text in tables_csv(models, tasks))
    history = history_mod.load(docs)
    files[HISTORY] = env.get_template("history.md.j2").render(
        **common, moves=history_moves(history, bench), runs=history.runs[::-1]).encode()
    files[CHART] = latency_svg(models, tasks).encode()
    for folder, target in ((source / "pages", ""), (source / "css", "assets/")):
        for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
            if path.is_file():
                files[target + path.relative_to(folder).as_posix()] = path.read_bytes()

    changed = [docs / name for name, data in files.items() if _write(docs / name, data)]
    for stale in sorted((docs / "tasks").glob("*.md")):
        if f"tasks/{stale.name}" not in files:
            stale.unlink()
            changed.append(stale)
    return changed


def _latency_totals(models: list[ModelView], tasks: list[TaskView]) -> list[str]:
    out = []
    for m in models:
        answers = [t.report.cell(m.id).answer for t in tasks if t.report.cell(m.id).answer]
        total = duration(sum(a.latency_ms for a in answers)) if answers else "—"
        out.append(total if len(answers) == len(tasks) else f"{total} ({len(answers)} of {len(tasks)} tasks)")
    return out


NAV_TASKS_MAX = 40  # every page carries the whole nav: past this, listing each task there costs O(tasks²)


def nav(bench: Benchmark, docs_dir: str | Path) -> list:
    """The site navigation in benchmark order (set by the MkDocs hook), with any other top-level page of docs/.

    Up to NAV_TASKS_MAX tasks are listed one by one; a larger benchmark reaches its task pages through the
    tables of Home and Summary, so that building the site stays linear in the number of tasks.
    Titles are HTML-escaped: MkDocs themes insert nav titles into the page unescaped.
    """
    tasks = [{html.escape(t.title): f"tasks/{t.id}.md"} for t in bench.tasks]
    known = {"index.md", SUMMARY, "about.md", HISTORY}
    others = sorted(p.name for p in Path(docs_dir).glob("*.md") if p.name not in known)
    listed = [{"Tasks": tasks}] if len(tasks) <= NAV_TASKS_MAX else []
    return [{"Home": "index.md"}, {"Summary": SUMMARY}, *listed, {"History": HISTORY}, *others,
            {"About": "about.md"}]


__all__ = ["Markdown", "fenced", "inline", "nav", "render", "results_file", "visible"]
