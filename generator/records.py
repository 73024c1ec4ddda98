"""Typed records handed from one pipeline stage to the next (run → evaluate → decide → render).

They are also what the cache stores (as JSON, never pickle) and what docs/results.json is made of.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, computed_field, model_validator

from .safety import META_MAX, REASON_MAX, cap, clean_tree


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    @model_validator(mode="before")
    @classmethod
    def _valid_text(cls, data: Any) -> Any:
        """Every string becomes valid UTF-8 text before a record exists (a lone surrogate from an answer, a
        server or answer code becomes U+FFFD), so no record can fail to be cached or written; records with a
        ``text_replaced`` field say so."""
        if not isinstance(data, dict):
            return data
        data, replaced = clean_tree(data)
        if replaced and "text_replaced" in cls.model_fields:
            data["text_replaced"] = True
        return data


# What a server reports about a model (names, versions, digests) is bounded: a 5 MB "family" must not be
# copied into every cell of results.json. Reasons are one line.
Meta = Annotated[str, AfterValidator(lambda v: cap(v, META_MAX))]
Reason = Annotated[str, AfterValidator(lambda v: cap(v, REASON_MAX))]
REPLACED_NOTE = "Text the source sent that is not valid UTF-8 (e.g. a lone surrogate) was replaced with U+FFFD."


class ModelDetails(Record):
    """What the server says about a model tag."""

    digest: Meta | None = Field(None, description="Digest of the weights behind the tag.")
    family: Meta | None = None
    parameter_size: Meta | None = Field(None, description="e.g. 27.4B")
    quantization_level: Meta | None = Field(None, description="e.g. Q4_K_M")
    format: Meta | None = None
    server_version: Meta | None = Field(None, description="Version the server reports.")
    server: Meta | None = Field(None, description="Kind of server: ollama, llama.cpp, vllm, or None when unknown.")
    capabilities: list[Meta] | None = Field(None, description="Ollama /api/show capabilities (thinking, tools, ...).")
    context_length: int | None = Field(None, description="Context window the loaded model runs with, in tokens.")
    size_bytes: int | None = Field(None, description="Memory the loaded model takes (Ollama /api/ps size).")
    vram_bytes: int | None = Field(
        None, description="Of size_bytes, how much is in GPU memory (/api/ps size_vram); less means partly on CPU.")
    text_replaced: bool = Field(False, description=REPLACED_NOTE)


class ModelProbe(Record):
    """The last time a run asked a model's server about it."""

    model_id: str
    ok: bool = Field(description="The server answered and has the model.")
    reason: Reason | None = Field(None, description="Why not, in one line.")
    details: ModelDetails | None = None
    warm_up_ms: float | None = Field(None, description="Wall time of the empty-prompt load before the first call.")
    checked_at: str = Field(default_factory=utc_now)


class Completion(Record):
    """What a provider returns for one call: the text and what was measured while it arrived."""

    text: str = Field(description="The answer, exactly as the model sent it.")
    thinking: str = Field("", description="Thinking text, kept apart from the answer.")
    done_reason: Meta | None = Field(None, description="'stop', or 'length' when cut by num_predict.")
    latency_ms: float = Field(description="Wall clock from sending the request to the last chunk.")
    ttft_ms: float | None = Field(None, description="Wall clock to the first streamed token.")
    load_ms: float | None = Field(None, description="Server's load_duration for this call.")
    total_ms: float | None = Field(None, description="Server's total_duration.")
    prompt_eval_ms: float | None = None
    eval_ms: float | None = None
    prompt_eval_count: int | None = None
    eval_count: int | None = None
    tokens_per_s: float | None = Field(
        None, description="Decode rate: the server's (eval_count / eval_duration, llama.cpp predicted_per_second) "
                          "when it reports one, else tokens over the streamed time after the first token.")
    tokens_per_s_source: Literal["server", "stream"] | None = Field(
        None, description="server: measured by the server; stream: measured here from the stream (includes network).")
    prompt_cached_count: int | None = Field(
        None, description="Prompt tokens the server reused from its cache instead of evaluating (llama.cpp cache_n).")
    machine_busy: bool = Field(
        False, description="Another call ran on the same machine while this one did (its timings may be slower).")
    digest: Meta | None = Field(None, description="Digest of the model weights the server reported.")
    server_version: Meta | None = None
    created_at: str = Field(default_factory=utc_now, description="When the answer was received (UTC).")
    text_replaced: bool = Field(False, description=REPLACED_NOTE)


class Answer(Completion):
    """One model's complete answer to one task, as cached and as shown."""

    key: str = Field(description="Cache key of the request that produced it.")
    model_id: str
    task_id: str
    host: str | None = Field(None, description="Base URL it was made on, credentials stripped (not in the key).")
    hardware: str | None = Field(None, description="The model entry's declared hardware when it was made.")
    warm_up_ms: float | None = Field(None, description="The empty-prompt load made before this run's first call "
                                                       "of the model (None: no warm-up in that run).")

    @property
    def output_sha256(self) -> str:
        return sha256(self.text)

    @property
    def empty(self) -> bool:
        return not self.text.strip()

    @property
    def cut(self) -> bool:
        return self.done_reason == "length"


class Failure(Record):
    """The last failed attempt at a cell. Never cached as an answer; the next run retries it."""

    key: str
    model_id: str
    task_id: str
    reason: Reason = Field(description="One line: what went wrong and what to do.")
    kind: Meta = Field("error", description="connection, not_found, server, timeout, cut, malformed, ...")
    at: str = Field(default_factory=utc_now)
    text_replaced: bool = Field(False, description=REPLACED_NOTE)


CellState = Literal["cached", "missing", "failed", "stale"]


class Cell(Record):
    """One (task, model) pair of the plan."""

    task_id: str
    model_id: str
    key: str
    state: CellState
    reason: str | None = None


CheckStatus = Literal["pass", "fail", "error"]


class CheckResult(Record):
    """The outcome of one objective check on one answer.

    ``error``: the check could not run (a tool missing, the sandbox unavailable, broken test code, no judge
    model for a rubric): it says nothing about the answer and never decides. An answer lacking the code a
    check needs is a ``fail``.
    """

    name: str
    type: str
    status: CheckStatus
    critical: bool = False
    weight: float = 1.0
    detail: str = Field("", description="One line a reader can verify.")
    duration_ms: float = 0.0
    score: float | None = Field(None, description="Fraction of the check's tests or scenarios that pass.")
    doubt: str | None = Field(None, description="Why this executed result cannot make a verdict objectively clear "
                                                "(the answer's own candidate definitions behave differently, or a "
                                                "name it defines was missing from the assembled program).")
    isolation: str | None = Field(None, description="For python and shell checks, the sandbox's one-line summary "
                                  "of how the answer's code was isolated (part of the evidence); None for static checks.")

    @model_validator(mode="before")
    @classmethod
    def _from_passed(cls, data: Any) -> Any:
        # Records written before `status` existed hold `passed`; `passed` is also written out (computed).
        if isinstance(data, dict) and "passed" in data:
            data = dict(data)
            passed = data.pop("passed")
            data.setdefault("status", "pass" if passed else "fail")
        return data

    @computed_field  # type: ignore[prop-decorator]
    @property
    def passed(self) -> bool:
        return self.status == "pass"

    @property
    def scored(self) -> bool:
        return self.status != "error"


class Review(Record):
    """A human's review of one answer, tied to the hash of the text reviewed."""

    task: str
    model: str
    score: int = Field(ge=1, le=5)
    label: str
    issues: list[str] = Field(default_factory=list)
    reviewer: str
    date: Annotated[str, BeforeValidator(lambda v: v.isoformat() if hasattr(v, "isoformat") else v)] = Field(
        description="When it was reviewed; YAML's unquoted 2026-11-26 is accepted."
    )
    output_sha256: str
    stale: bool = Field(False, description="The answer has changed since the review.")


class JudgeResult(Record):
    """A pairwise judgement of two answers, asked in both orders."""

    key: str = Field("", description="Hash of the judge, the task and both answers judged.")
    judge_model: str
    models: tuple[str, str]
    winner: str | None = Field(None, description="A model id, 'tie', or None when the judge failed.")
    rationale: str = ""
    error: Reason | None = None


class CellResult(Record):
    """Everything known about one cell, as render needs it."""

    task_id: str
    model_id: str
    key: str
    status: Literal["ok", "failed", "not_run"]
    answer: Answer | None = None
    failure: Failure | None = None
    checks: list[CheckResult] = Field(default_factory=list)
    review: Review | None = None

    @property
    def score(self) -> float | None:
        """Weighted pass rate of the checks that ran, or None when none did (not scored, not zero)."""
        scored = [c for c in self.checks if c.scored]
        if not scored:
            return None
        total = sum(c.weight for c in scored)
        return sum(c.weight for c in scored if c.passed) / total

    @property
    def reason(self) -> str | None:
        if self.failure:
            return self.failure.reason
        return "not run yet: run 'make bench'" if self.status == "not_run" else None


DecidedBy = Literal["checks", "review", "judge", "none"]
Evidence = Literal["tests", "review", "rubric", "judge", "static", "none"]


class Verdict(Record):
    """The winner of one task and the evidence that decided it."""

    task_id: str
    winner: str | None = Field(description="A model id, 'tie', or None (N/A) when a model did not answer.")
    decided_by: DecidedBy
    objectively_clear: bool
    reason: str = Field(description="Why, in one sentence drawn from the evidence.")
    judge: JudgeResult | None = None
    evidence: Evidence = Field("none", description="The kind of evidence that decided, strongest first: executed "
                               "tests, human review, rubric (model-graded), pairwise judge, static/lexical checks.")
    weak: bool = Field(False, description="Decided by static or lexical checks only: weak evidence.")
    self_preference: bool = Field(False, description="The judge model is also a contestant of this task.")


def build_run_models() -> None:
    """Build the validators of the records a run makes once models answer (deferred at import, see
    Record.model_config); called while the first model loads, so neither start-up nor the first answer
    waits for them."""
    for model in (ModelProbe, Completion, Answer, Failure):
        model.model_rebuild()
