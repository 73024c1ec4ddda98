"""How numbers, dates, check outcomes and reviews read on the pages (plain strings; the finalizer escapes them)."""

from __future__ import annotations

import re

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
    passed = sum(c.passed for c in cell.checks)
    return f"{passed}/{len(cell.checks)} checks"


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

