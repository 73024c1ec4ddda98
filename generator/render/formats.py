"""How numbers, dates, check outcomes and reviews read on the pages (plain strings; the finalizer escapes them)."""

from __future__ import annotations

import re

from ..config import strength
from ..records import CellResult, Review


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
    """'3/4 checks', counting only checks that ran: '3/4 checks, 1 could not run' when one is an error."""
    scored = [c for c in cell.checks if c.status != "error"]
    errors = len(cell.checks) - len(scored)
    return f"{sum(c.passed for c in scored)}/{len(scored)} checks" + (f", {errors} could not run" if errors else "")


def isolation_text(tasks) -> str:
    """The isolation (or isolations) the executed checks of these tasks' cells ran under; '' when none ran."""
    found = sorted({c.isolation for t in tasks for cell in t.cells for c in cell.cell.checks if c.isolation})
    return " | ".join(found)


def check_name(check) -> str:
    """A check's name as its results are shown (benchmark.yaml's name, else the checks module's summary)."""
    from ..checks import default_name

    return check.name or default_name(check)


def review_text(review: Review | None) -> str | None:
    """'4/5, good (by ana, 2026-01-30)', marked STALE when the answer changed since."""
    if review is None:
        return None
    stale = " STALE: reviewed an older answer, not applied" if review.stale else ""
    return f"{review.score}/5, {review.label} (by {review.reviewer}, {review.date}){stale}"


DECIDED_BY = {"checks": "objective checks", "review": "human review", "judge": "LLM judge (model-graded)",
              "none": "nothing separates the answers"}
# A verdict may name the kind of evidence that decided it (Verdict.evidence, when the records have it).
EVIDENCE_DECIDED = {"tests": "executed tests", "review": "human review", "rubric": "model-graded rubric",
                    "judge": "LLM judge (model-graded)", "static": "static or lexical checks (weak evidence)",
                    "none": "nothing separates the answers"}


def decided_by(verdict) -> str:
    """What decided a verdict, most precisely as the record allows."""
    if verdict.winner is None:
        return "nothing: not every model answered"
    evidence = getattr(verdict, "evidence", None)
    if evidence in EVIDENCE_DECIDED:
        return EVIDENCE_DECIDED[evidence]
    text = DECIDED_BY.get(verdict.decided_by, verdict.decided_by)
    return text + (" (weak evidence)" if getattr(verdict, "weak", False) else "")



# How the pages name the kind of evidence a check gives (generator.config.strength decides the kind).
EVIDENCE = {"tests": "executed", "rubric": "model-graded", "static": "weak"}


def evidence_of(check_type: str) -> str:
    """'executed', 'model-graded' or 'weak' for a check type."""
    return EVIDENCE[strength(check_type)]


def check_status(result) -> str:
    """'pass', 'FAIL' or 'error' (the check could not run: it says nothing about the answer)."""
    status = getattr(result, "status", None) or ("pass" if result.passed else "fail")
    return {"pass": "pass", "fail": "FAIL"}.get(status, status)


def critical_failed(cell: CellResult) -> str:
    """The critical checks an answer failed ('none'); a check that could not run (error) is not a failure."""
    return ", ".join(c.name for c in cell.checks if c.critical and check_status(c) == "FAIL") or "none"
