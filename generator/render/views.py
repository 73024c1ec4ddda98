"""The page views: each model, task and cell as the pages show it, with secrets (and hosts, if asked) removed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import yaml

from ..config import Benchmark
from ..providers import redact_url
from ..records import CellResult, ModelDetails
from ..report import ModelReport, Report, TaskReport
from ..safety import Redactor as SecretRedactor
from .escape import Markdown, inline
from .formats import check_name, check_status, checks_score, duration, evidence_of

REDACTED = "redacted"


class Redactor:
    """Removes secrets always, and hosts when report.show_hosts is false, from every text render writes."""

    def __init__(self, bench: Benchmark, report: Report | None = None):
        self.show_hosts = bench.report.show_hosts
        self._secrets = SecretRedactor.for_benchmark(bench)  # the one pass: whole secrets and their pieces
        pairs: list[tuple[str, str]] = []
        if not self.show_hosts:
            hosts = [m.host for m in bench.models]
            # Hosts recorded with the answers too: a pod's URL from an earlier run is not in today's config.
            hosts += [m.host for m in report.models] if report else []
            hosts += [c.answer.host for t in (report.tasks if report else []) for c in t.cells
                      if c.answer and c.answer.host]
            for host in hosts:
                parts = urlsplit(host)
                netloc = parts.netloc.rsplit("@", 1)[-1]
                for needle in (host, redact_url(host), parts.netloc, netloc, parts.hostname or ""):
                    if needle and needle != REDACTED:
                        pairs.append((needle, REDACTED))
        # Longest first, so a URL is replaced whole before its host name is.
        self._pairs = sorted(set(pairs), key=lambda p: (-len(p[0]), p[0]))

    def __call__(self, text: str | None) -> str | None:
        if text is None:
            return None
        text = self._secrets(text)
        for needle, replacement in self._pairs:
            text = text.replace(needle, replacement)
        return text

    def host(self, host: str | None) -> str | None:
        if host is None:
            return None
        return redact_url(host) if self.show_hosts else REDACTED


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
    server_version: str | None = None
    from_record: bool = False
    num_ctx: int | None = None  # the context the calls ask for

    @property
    def size(self) -> str | None:
        """'27.4B, Q4_K_M' as the server reports them."""
        parts = [self.details.parameter_size, self.details.quantization_level] if self.details else []
        return ", ".join(p for p in parts if p) or None

    @property
    def memory(self) -> str | None:
        """'context 8192; 1.2 of 3.3 GB in GPU memory (partly on CPU)', from what the server reports. A server
        that does not report its context (Ollama before 0.6 has no context_length in /api/ps) gets the one the
        calls asked for, said to be asked."""
        d = self.details
        if d is None:
            return None
        parts = [f"context {d.context_length}"] if d.context_length else \
            [f"context {self.num_ctx} asked (not reported by the server)"] if self.num_ctx else []
        if d.size_bytes:
            vram = d.vram_bytes or 0
            where = ("all in GPU memory" if vram >= d.size_bytes else "on CPU" if vram == 0
                     else f"{vram / 1e9:.1f} GB in GPU memory (partly on CPU)")
            parts.append(f"{d.size_bytes / 1e9:.1f} GB, {where}")
        return "; ".join(parts) or None

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
class CheckRow:
    """One check of a task: what it is, how strong its evidence is, and its result on each answer."""

    spec: Any
    name: str
    evidence: str  # executed, model-graded, weak
    results: list[tuple[CellView, Any]]  # (cell, CheckResult or None when that answer was not checked)

    @property
    def code(self) -> str | None:
        return getattr(self.spec, "code", None)

    @property
    def settings(self) -> str:
        """The check's other settings as YAML (pattern, value, stubs, claims...), for the collapsed block."""
        rest = self.spec.model_dump(exclude_none=True, exclude={"code", "name", "critical", "weight", "type"})
        rest = {k: v for k, v in rest.items() if v not in ([], {}, "")}
        return yaml.dump(rest, Dumper=_SettingsDumper, sort_keys=False, allow_unicode=True, width=100) if rest else ""

    def status(self, result) -> str:
        return "—" if result is None else check_status(result)


class _SettingsDumper(yaml.SafeDumper):
    """YAML with multi-line strings (scripts, stubs) as literal blocks, readable as they were written."""


_SettingsDumper.add_representer(
    str, lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None))


def _check_rows(spec_checks: list, cells: list[CellView]) -> list[CheckRow]:
    rows = []
    for i, check in enumerate(spec_checks):
        name = check_name(check)
        results = []
        for c in cells:
            found = c.cell.checks
            if len(found) == len(spec_checks):
                results.append((c, found[i]))
            else:
                results.append((c, next((r for r in found if r.name == name), None)))
        rows.append(CheckRow(spec=check, name=name, evidence=evidence_of(check.type), results=results))
    return rows


@dataclass(frozen=True)
class TaskView:
    report: TaskReport
    cells: list[CellView]
    winner: str  # a model label, 'tie' or 'N/A'
    reason: str  # redacted
    judge_error: str | None
    check_rows: list[CheckRow] = field(default_factory=list)

    @property
    def spec(self):
        return self.report.spec

    @property
    def verdict(self):
        return self.report.verdict

    @property
    def page(self) -> str:
        return f"tasks/{self.spec.id}.md"


def winner_cell(task: TaskView) -> Markdown:
    """The Winner column: the label in bold (and 'objectively clear'), 'tie', or 'N/A: who did not answer'.

    Kept short, since the column stays in view while the table scrolls; the reasons are in the model's
    status and on the task page.
    """
    if task.verdict.winner is None:
        missing = [c.model.label for c in task.cells if c.cell.status != "ok"]
        return inline(f"N/A: {' and '.join(missing)} did not answer")
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
        count = f" after {answer.eval_count} tokens" if answer.eval_count is not None else ""
        odd = ""
        if options_num_predict is not None and answer.eval_count is not None and answer.eval_count < options_num_predict:
            # The server's word against the count: shown, not hidden, so a reader can judge the flag.
            odd = (f" The server reported {answer.eval_count} answer tokens, fewer than num_predict "
                   f"{options_num_predict}: the limit it applied may differ from the one asked for.")
        flags.append(Flag("Cut: the answer hit the token limit",
                          f"done_reason is 'length': the model was stopped at its token limit{limit}{count} "
                          f"before it finished, so the answer is incomplete.{odd}"))
    if answer.empty:
        flags.append(Flag("Empty: the model returned no text",
                          "The answer is empty or only whitespace."))
    if answer.text_replaced:
        flags.append(Flag("Replaced: the answer contained invalid text",
                          "The server sent text that is not valid UTF-8 (a lone surrogate); each such character "
                          "was replaced with U+FFFD (\ufffd) before the answer was kept."))
    if answer.machine_busy:
        flags.append(Flag("Shared machine: another call ran beside this one",
                          "Another call ran on the same machine while this answer was generated, so its latency "
                          "and tokens/s may be slower than the model alone would give."))
    return flags


def _model_view(m: ModelReport, redact: Redactor) -> ModelView:
    return ModelView(id=m.spec.id, label=m.spec.display, tag=m.spec.model, provider=m.spec.provider,
                     host=redact.host(m.host), hardware=m.hardware, status=m.status, reason=redact(m.reason),
                     details=m.details, digest=m.digest, warm_up_ms=m.warm_up_ms,
                     server_version=redact(m.server_version), from_record=m.from_record, num_ctx=m.num_ctx)


def views(report: Report, redact: Redactor) -> tuple[list[ModelView], list[TaskView]]:
    models = []
    for m in report.models:
        models.append(_model_view(m, redact))
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
        tasks.append(TaskView(report=t, cells=cells, winner=winner, reason=redact(v.reason), judge_error=judge_error,
                              check_rows=_check_rows(t.spec.checks, cells)))
    return models, tasks


