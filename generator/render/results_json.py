"""docs/results.json, built from the report records (generator.report), never from what the pages show.

Every text is kept byte for byte, except that secrets are replaced by "[secret]" and, with
``report.show_hosts: false``, hosts by "redacted" (the same Redactor as the pages).
"""

from __future__ import annotations

from typing import Any

from ..evaluate import checks_key
from ..report import Report
from ..results import BenchmarkEntry, CellEntry, ModelEntry, ResultsFile, TaskEntry
from .views import Redactor

NOT_RECORDED = "not recorded: no answer yet"


def results_file(report: Report, redact: Redactor) -> ResultsFile:
    # Host and hardware are facts of the answers. A model with none has no recorded host: today's config (which
    # depends on the environment of whoever renders) is shown on the page but not written into the record.
    model_entries = [
        ModelEntry(id=m.spec.id, label=m.spec.display, provider=m.spec.provider, model=m.spec.model,
                   host=redact.host(m.host) if m.from_record else NOT_RECORDED,
                   hardware=m.hardware if m.from_record else None, status=m.status, reason=redact(m.reason),
                   details=m.details, digest=m.digest, warm_up_ms=m.warm_up_ms)
        for m in report.models
    ]
    task_entries = []
    for t in report.tasks:
        cells = []
        for cell in t.cells:
            a, f = cell.answer, cell.failure
            fields: dict[str, Any] = {"model": cell.model_id, "status": cell.status, "key": cell.key,
                                      "reason": redact(cell.reason), "checks": cell.checks, "score": cell.score,
                                      "review": cell.review}
            if a is not None:
                fields.update(a.model_dump(exclude={"text", "key", "model_id", "task_id"}),
                              answer=a.text, output_sha256=a.output_sha256, host=redact.host(a.host),
                              checks_key=checks_key(t.spec, a.output_sha256) if cell.checks else None)
            if f is not None:
                fields.update(failed_at=f.at or None, failure_kind=f.kind)
            cells.append(CellEntry(**fields))
        v = t.verdict
        judge = v.judge
        if judge is not None and judge.error:
            judge = judge.model_copy(update={"error": redact(judge.error)})
        task_entries.append(TaskEntry(id=t.spec.id, title=t.spec.title, winner=v.winner, decided_by=v.decided_by,
                                      objectively_clear=v.objectively_clear, reason=redact(v.reason), judge=judge,
                                      evidence=v.evidence, weak=v.weak, self_preference=v.self_preference,
                                      cells=cells))
    return ResultsFile(generated_at=report.generated_at,
                       benchmark=BenchmarkEntry(title=report.bench.title, sha256=report.bench.source_sha256),
                       models=model_entries, tasks=task_entries)
