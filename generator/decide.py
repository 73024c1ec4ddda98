"""Stage 5, decide: per task a winner and the evidence that decided it, strongest evidence first.

1. Objective checks: a model failing a critical check loses to one passing all critical checks; then the
   higher weighted pass rate wins. `objectively_clear` when the winner passes every critical check and
   another model fails one, or the pass rates differ by at least half.
2. Human reviews (not stale): the higher score wins among models the checks left tied.
3. LLM judge: pairwise, both orders must agree.
A model that did not answer makes the task N/A (winner None) with its reason.
"""

from __future__ import annotations

from .config import Benchmark, TaskSpec
from .evaluate import Evidence, judge_key
from .records import CellResult, CheckResult, JudgeResult, Verdict

CLEAR_MARGIN = 0.5


def _critical_ok(cell: CellResult) -> bool:
    return all(c.passed for c in cell.checks if c.critical)


def _first_failure(cell: CellResult) -> CheckResult | None:
    failed = [c for c in cell.checks if not c.passed]
    failed.sort(key=lambda c: (not c.critical, -c.weight))
    return failed[0] if failed else None


def describe_checks(cell: CellResult) -> str:
    """'local: 5 of 8 checks pass; python tests (critical) failed: 2 of 6 tests pass; ...'"""
    passed = sum(c.passed for c in cell.checks)
    text = f"{cell.model_id}: {passed} of {len(cell.checks)} checks pass"
    failure = _first_failure(cell)
    if failure is not None:
        critical = " (critical)" if failure.critical else ""
        text += f"; {failure.name}{critical} failed: {failure.detail}"
    return text


def _by_checks(cells: list[CellResult]) -> tuple[list[CellResult], bool]:
    """The models the checks leave on top, and whether the difference is objectively clear."""
    survivors = [c for c in cells if _critical_ok(c)] or cells
    critical_split = 0 < len(survivors) < len(cells)
    best = max(c.score or 0.0 for c in survivors)
    top = [c for c in survivors if (c.score or 0.0) == best]
    if len(top) == 1:
        others = [c.score or 0.0 for c in cells if c is not top[0]]
        clear = critical_split or (best - max(others)) >= CLEAR_MARGIN
        return top, clear
    return top, False


def decide(bench: Benchmark, task: TaskSpec, cells: list[CellResult], evidence: Evidence) -> Verdict:
    missing = [c for c in cells if c.status != "ok"]
    if missing:
        reasons = "; ".join(f"{c.model_id} did not answer ({c.reason})" for c in missing)
        return Verdict(task_id=task.id, winner=None, decided_by="none", objectively_clear=False,
                       reason=f"N/A: {reasons}")
    judged = evidence.judge(judge_key(bench, task, cells[0], cells[1])) if bench.judge and len(cells) > 1 else None
    verdict = _decide(task, cells, judged)
    # The judge's rationale is shown on the page even when stronger evidence decided.
    return verdict if verdict.judge is not None or judged is None else verdict.model_copy(update={"judge": judged})


def _decide(task: TaskSpec, cells: list[CellResult], judged: JudgeResult | None) -> Verdict:
    contenders = cells
    if task.checks:
        top, clear = _by_checks(cells)
        if len(top) == 1:
            losers = "; ".join(describe_checks(c) for c in cells if c is not top[0])
            return Verdict(task_id=task.id, winner=top[0].model_id, decided_by="checks", objectively_clear=clear,
                           reason=f"{describe_checks(top[0])}. {losers}.")
        contenders = top
    tied = " and ".join(c.model_id for c in contenders)
    reviewed = [c for c in contenders if c.review is not None and not c.review.stale]
    if len(reviewed) == len(contenders):
        best = max(c.review.score for c in reviewed)
        top = [c for c in reviewed if c.review.score == best]
        if len(top) == 1:
            scores = ", ".join(f"{c.model_id} {c.review.score}/5 ({c.review.label})" for c in reviewed)
            prefix = f"checks tie between {tied}; " if task.checks else ""
            return Verdict(task_id=task.id, winner=top[0].model_id, decided_by="review", objectively_clear=False,
                           reason=f"{prefix}human review: {scores}.")
    by_judge = _judge(task, contenders, judged)
    if by_judge is not None:
        return by_judge
    if task.checks:
        reason = f"the checks do not separate {tied} ({describe_checks(contenders[0])})"
    else:
        reason = "no check, current review or judge verdict separates the answers"
    return Verdict(task_id=task.id, winner="tie", decided_by="none", objectively_clear=False, reason=reason + ".")


def _judge(task: TaskSpec, contenders: list[CellResult], result: JudgeResult | None) -> Verdict | None:
    if result is None:
        return None
    if result.error or result.winner is None:
        return Verdict(task_id=task.id, winner="tie", decided_by="none", objectively_clear=False,
                       reason=f"judge error: {result.error}.", judge=result)
    contender_ids = {c.model_id for c in contenders}
    if result.winner != "tie" and result.winner not in contender_ids:
        return None  # the judge prefers a model the checks already ruled out
    why = "both orders agree" if result.winner != "tie" else "the two orders disagree or both said tie"
    return Verdict(task_id=task.id, winner=result.winner, decided_by="judge", objectively_clear=False,
                   reason=f"LLM judge ({result.judge_model}, model-graded): {why}.", judge=result)
