"""The generated Markdown pages: the Jinja environment, key findings and method notes drawn from the data."""

from __future__ import annotations

import json
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from ..config import Benchmark
from ..decide import CLEAR_MARGIN
from ..report import Report
from .escape import Markdown, fenced, finalize, inline, link, nav_title, quoted
from .formats import (
    check_name,
    checks_score,
    critical_failed,
    decided_by,
    duration,
    isolation_text,
    percent,
    review_text,
)
from .views import ModelView, TaskView, winner_cell


def page_title(text: str) -> Markdown:
    """A page's front-matter title: JSON-quoted (valid YAML) and HTML-safe, since themes put it in <title> as is."""
    return Markdown(json.dumps(nav_title(text), ensure_ascii=True))


def environment(templates: Path) -> Environment:
    # markdown-it, Pygments and nh3 are loaded only when pages are made (not when a render has nothing to do).
    from .answers import answers_block

    # A plain Environment: the templates are ours, and untrusted text only ever arrives as data. (A sandboxed
    # environment guards against untrusted *templates*; here it only tripled the render time.)
    env = Environment(
        loader=FileSystemLoader(str(templates)),
        undefined=StrictUndefined,
        finalize=finalize,
        autoescape=False,  # the output is Markdown; _finalize does the escaping that Markdown needs
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["fenced"] = fenced
    env.filters["quoted"] = quoted
    env.globals.update(
        page_title=page_title, answers_block=answers_block, model_cards=model_cards, check_name=check_name,
        checks_score=checks_score, critical_failed=critical_failed, decided_by=decided_by, duration=duration,
        link=link, review_text=review_text, winner_cell=winner_cell, percent=percent, isolation_text=isolation_text,
        digests=lambda run: ", ".join(f"{m} {(d or '—')[:12]}" for m, d in run.digests.items()))
    return env



def findings(report: Report, models: list[ModelView], tasks: list[TaskView]) -> list[Markdown]:
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


def method(bench: Benchmark) -> dict:
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


def latency_totals(models: list[ModelView], tasks: list[TaskView]) -> list[str]:
    out = []
    for m in models:
        answers = [t.report.cell(m.id).answer for t in tasks if t.report.cell(m.id).answer]
        total = duration(sum(a.latency_ms for a in answers)) if answers else "—"
        out.append(total if len(answers) == len(tasks) else f"{total} ({len(answers)} of {len(tasks)} tasks)")
    return out


# ------------------------------------------------------------------------------------------ model cards


def _median(values: list[float]) -> float | None:
    values = sorted(values)
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def model_cards(models: list[ModelView], tasks: list[TaskView]) -> Markdown:
    """One card per model, all from the record: tasks won, checks passed, median latency, tokens/s, load time."""
    from .escape import html_text

    cards = []
    for m in models:
        cells = [c for t in tasks for c in t.cells if c.model.id == m.id]
        answers = [c.answer for c in cells if c.answer is not None]
        checks = [r for c in cells for r in c.cell.checks if getattr(r, "status", "pass") != "error"]
        passed = sum(r.passed for r in checks)
        won = sum(t.verdict.winner == m.id for t in tasks)
        ties = sum(t.verdict.winner == "tie" for t in tasks)
        tps = _median([a.tokens_per_s for a in answers if a.tokens_per_s is not None])
        rows = [
            ("Answered", f"{len(answers)} of {len(cells)} tasks"),
            ("Tasks won", f"{won} of {len(tasks)}" + (f" ({ties} tie{'s' if ties != 1 else ''})" if ties else "")),
            ("Checks passed", f"{passed} of {len(checks)}" if checks else "no checks ran"),
            ("Median latency", duration(_median([a.latency_ms for a in answers]))),
            ("Median tokens/s", f"{tps:.1f}" if tps is not None else "—"),
            ("Model load (warm-up)", duration(m.warm_up_ms)),
        ]
        body = "".join(f"<tr><th>{html_text(k)}</th><td>{html_text(v)}</td></tr>" for k, v in rows)
        cards.append(f'<div class="bench-card"><p class="bench-card-title"><strong>{html_text(m.label)}</strong>'
                     f'<br><span>{html_text(m.status_text)}</span></p><table class="bench-card-table"><tbody>{body}</tbody></table></div>')
    return Markdown('<div class="bench-cards">\n' + "\n".join(cards) + "\n</div>")
