"""Stage 5, decide: per task a winner and the evidence that decided it, strongest evidence first.

The order, and why:
1. **Executed tests** (python and shell checks: the answer's code ran against trusted tests or scenarios).
   A model failing a critical test check loses to one passing all of them; otherwise the higher mean
   fraction of tests passed wins. Only this level can be *objectively clear*: a critical split, or a gap of
   at least CLEAR_MARGIN in the fraction of tests passed.
2. **Human reviews** (current, not stale): a person read the answers; stronger than any model's opinion.
3. **Rubric** (model-graded claims against the reference): per-claim and negation-aware, so more specific
   than a pairwise preference, but still a model's reading.
4. **Pairwise judge**: both orders must agree; disagreement is a tie.
5. **Static and lexical checks** (calls, contains, regex, word count, cron, shell syntax): they look at the
   text, not at behaviour, so they decide only when nothing above separates the models, and are shown as
   weak evidence. A critical one failing still ranks first within this level.
A check whose status is ``error`` could not run and is left out of every level. A model that did not answer
makes the task N/A with its reason. ``verdict`` is a pure function of the cells and the judge's result.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import Benchmark, TaskSpec, strength
from .judge import judge_key
from .records import CellResult, CheckResult, JudgeResult, Verdict

CLEAR_MARGIN = 0.5
CHECK_STRENGTH = {"tests": "executed test", "rubric": "model-graded", "static": "static, weak evidence"}
_EPSILON = 1e-9


@dataclass(frozen=True)
class _Level:
    """The checks of one evidence level, as one cell scores on them."""

    critical_ok: bool
    score: float | None
    failed: list[CheckResult]
    doubts: list[str]  # why these results cannot be certain (CheckResult.doubt)


def decide(bench: Benchmark, task: TaskSpec, cells: list[CellResult], evidence) -> Verdict:
    """The verdict of one task (reads the judge's cached pairwise result through ``evidence``)."""
    judged = None
    answered = [c for c in cells if c.answer is not None]
    if bench.judge and len(answered) > 1:
        a, b = answered[0], answered[1]
        judged = evidence.judge(judge_key(bench, task, a.model_id, a.answer.output_sha256,
                                          b.model_id, b.answer.output_sha256))
    labels = {m.id: m.display for m in bench.models}
    return verdict(task, cells, judged, labels, bench.judge.model if bench.judge else None)


def verdict(task: TaskSpec, cells: list[CellResult], judged: JudgeResult | None,
            labels: dict[str, str] | None = None, judge_model: str | None = None) -> Verdict:
    """The winner among ``cells`` and why, from their checks, reviews and the judge's pairwise result."""
    labels = labels or {}
    name = lambda cell: labels.get(cell.model_id, cell.model_id)  # noqa: E731
    self_preference = judge_model is not None and any(c.model_id == judge_model for c in cells)
    base = dict(task_id=task.id, self_preference=self_preference)
    missing = [c for c in cells if c.status != "ok"]
    if missing:
        reasons = "; ".join(f"{name(c)} did not answer ({c.reason})" for c in missing)
        return Verdict(**base, winner=None, decided_by="none", objectively_clear=False, reason=f"N/A: {reasons}",
                       judge=judged)
    contenders = list(cells)
    notes: list[str] = []

    # 1. executed tests
    tests = _levels(contenders, "tests")
    if tests:
        top, why, clear = _separate(contenders, tests, name, "executed tests", "executed")
        if top is not None:
            return Verdict(**base, winner=top.model_id, decided_by="checks", evidence="tests",
                           objectively_clear=clear, reason=_sentence([], why), judge=judged)
        contenders = [c for c in contenders if _is_top(c, contenders, tests)]
        notes.append("executed tests do not separate " + " and ".join(name(c) for c in contenders))

    # 2. human reviews
    reviewed = [c for c in contenders if c.review is not None and not c.review.stale]
    if len(reviewed) == len(contenders) and len(contenders) > 1:
        best = max(c.review.score for c in reviewed)
        top = [c for c in reviewed if c.review.score == best]
        scores = ", ".join(f"{name(c)} {c.review.score}/5 ({c.review.label})" for c in reviewed)
        if len(top) == 1:
            return Verdict(**base, winner=top[0].model_id, decided_by="review", evidence="review",
                           objectively_clear=False, reason=_sentence(notes, f"human review: {scores}"), judge=judged)
        notes.append(f"human reviews tie ({scores})")

    # 3. rubric graded by the judge model
    rubric = _levels(contenders, "rubric")
    unscored_rubric = not rubric and any(c.type == "rubric" for c in task.checks)
    if rubric:
        top, why, _ = _separate(contenders, rubric, name, "the rubric (model-graded)", "rubric")
        if top is not None:
            return Verdict(**base, winner=top.model_id, decided_by="judge", evidence="rubric",
                           objectively_clear=False, reason=_sentence(notes, why + _self(self_preference)),
                           judge=judged)
        contenders = [c for c in contenders if _is_top(c, contenders, rubric)]

    # 4. pairwise judge
    if judged is not None:
        if judged.error or judged.winner is None:
            notes.append(f"judge error: {judged.error}")
        elif judged.winner != "tie" and judged.winner in {c.model_id for c in contenders}:
            winner = next(c for c in contenders if c.model_id == judged.winner)
            return Verdict(**base, winner=winner.model_id, decided_by="judge", evidence="judge",
                           objectively_clear=False, judge=judged,
                           reason=_sentence(notes, f"the LLM judge ({labels.get(judged.judge_model, judged.judge_model)}, "
                                                   f"model-graded) prefers {name(winner)} in both orders"
                                                   + _self(self_preference)))
        elif judged.winner == "tie":
            notes.append("the LLM judge's two orders disagree or both say tie")

    # 5. static and lexical checks: weak evidence
    static = _levels(contenders, "static")
    if static:
        top, why, _ = _separate(contenders, static, name, "static and lexical checks", "static")
        if top is not None:
            return Verdict(**base, winner=top.model_id, decided_by="checks", evidence="static", weak=True,
                           objectively_clear=False, reason=_sentence(notes, "weak evidence only: " + why), judge=judged)
    if not notes and not any(c.checks for c in cells):
        notes.append("no check, current review or judge verdict separates the answers")
    elif not static and not tests and not rubric and not notes:
        notes.append("no evidence separates the answers")
    elif static:
        notes.append("static checks do not separate them either")
    if unscored_rubric and judged is None:
        # Said plainly: on a prose task only the judge can tell a correct answer from a fluent invention.
        why = "no judge configured" if judge_model is None else "the judge has not graded these answers yet"
        notes.append(f"{why}: the model-graded rubric is not scored and the lexical checks do not separate "
                     "them, so a judge is needed to tell these answers apart")
    return Verdict(**base, winner="tie", decided_by="none", objectively_clear=False,
                   reason=_sentence(notes, ""), judge=judged)


# --------------------------------------------------------------------------------------------- helpers


def _levels(cells: list[CellResult], kind: str) -> dict[str, _Level] | None:
    """Each cell's standing on the checks of ``kind`` that ran for every cell; None when there are none."""
    indexes = None
    for cell in cells:
        ran = {i for i, c in enumerate(cell.checks) if c.scored and strength(c.type) == kind}
        indexes = ran if indexes is None else indexes & ran
    if not indexes:
        return None
    levels = {}
    for cell in cells:
        checks = [cell.checks[i] for i in sorted(indexes)]
        total = sum(c.weight for c in checks)
        score = sum(c.weight * (c.score if c.score is not None else float(c.passed)) for c in checks) / total
        levels[cell.model_id] = _Level(critical_ok=all(c.passed for c in checks if c.critical), score=score,
                                       failed=[c for c in checks if not c.passed],
                                       doubts=[c.doubt for c in checks if c.doubt])
    return levels


def _rank(level: _Level) -> tuple[bool, float]:
    return (level.critical_ok, round(level.score or 0.0, 9))


def _is_top(cell: CellResult, cells: list[CellResult], levels: dict[str, _Level]) -> bool:
    best = max(_rank(levels[c.model_id]) for c in cells)
    return _rank(levels[cell.model_id]) == best


def _separate(cells, levels, name, what, kind) -> tuple[CellResult | None, str, bool]:
    """(the single top cell or None, one sentence why, objectively clear) on one evidence level."""
    ranked = sorted(cells, key=lambda c: _rank(levels[c.model_id]), reverse=True)
    top = [c for c in ranked if _rank(levels[c.model_id]) == _rank(levels[ranked[0].model_id])]
    if len(top) > 1:
        return None, "", False
    winner, others = top[0], ranked[1:]
    w = levels[winner.model_id]
    critical_split = w.critical_ok and any(not levels[c.model_id].critical_ok for c in others)
    gap = w.score - max(levels[c.model_id].score for c in others)
    doubts = [d for c in cells for d in levels[c.model_id].doubts]
    clear = (critical_split or gap >= CLEAR_MARGIN - _EPSILON) and not doubts
    parts = []
    for cell in others:
        level = levels[cell.model_id]
        critical = [c for c in level.failed if c.critical]
        if critical and w.critical_ok:
            names = ", ".join(f"{c.name} ({c.detail})" for c in critical)
            count = f"a critical {kind} check" if len(critical) == 1 else f"{len(critical)} critical {kind} checks"
            parts.append(f"{name(cell)} fails {count}: {names}")
        else:
            failed = ", ".join(f"{c.name} ({c.detail})" for c in level.failed[:2]) or "none"
            parts.append(f"{name(cell)} scores {level.score:.0%} (failed: {failed})")
    mine = "passes every one" if not w.failed else f"scores {w.score:.0%}"
    if w.failed and w.critical_ok and critical_split:
        mine = f"passes every critical one and scores {w.score:.0%}"
    why = f"on {what}, {name(winner)} {mine}; " + "; ".join(parts)
    if doubts:
        why += f" (not certain: {doubts[0]})"
    return winner, why, clear


def _self(flag: bool) -> str:
    return " (the judge is also a contestant: self-preference possible)" if flag else ""


def _sentence(notes: list[str], why: str) -> str:
    text = "; ".join([*notes, why] if why else notes)
    text = text[:1].upper() + text[1:] if text else "No evidence separates the answers"
    return text.rstrip(".") + "."
