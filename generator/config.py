"""Stage 1, config: load benchmark.yaml, expand ${VAR} / ${VAR:-default}, validate into a typed Benchmark.

Expansion applies to every string, check code and stub scripts included: write ``$${NAME}`` for a literal
``${NAME}`` (a shell variable in a stub, say); ``$$`` not followed by ``{`` stays as it is.

Every problem is reported with its key path (``tasks[2].checks[0].min``) and line, all at once, as one
ConfigError; nothing is written. The schema below is the reference for every key of benchmark.yaml.
"""

from __future__ import annotations

import hashlib
import os
import re
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from .errors import ConfigError
from .machines import ollama_host
from .source import UniqueKeyLoader, expand_tree, without_empty_credentials

SLUG = r"^[a-z0-9][a-z0-9._-]*$"
Slug = Annotated[str, Field(pattern=SLUG, max_length=64, description="Stable id: a-z 0-9 - _ .")]


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------------------------------------- options


class Options(Schema):
    """Generation options passed to the model. Any of them changes the cache key."""

    temperature: float | None = Field(None, ge=0, le=2, description="Sampling temperature.")
    seed: int | None = Field(None, description="Random seed, for reproducible sampling.")
    num_predict: int | None = Field(None, ge=-2, description="Most tokens to generate (-1 no limit).")
    num_ctx: int | None = Field(None, gt=0, description="Context window in tokens.")
    top_k: int | None = Field(None, gt=0, description="Top-k sampling.")
    top_p: float | None = Field(None, ge=0, le=1, description="Nucleus sampling.")
    min_p: float | None = Field(None, ge=0, le=1, description="Minimum probability sampling.")
    repeat_penalty: float | None = Field(None, ge=0, description="Penalty for repeated tokens.")
    stop: list[str] | None = Field(None, description="Stop sequences.")

    def merged(self, override: Options | None) -> Options:
        """These options with every field set in ``override`` replacing ours."""
        if override is None:
            return self
        return self.model_copy(update=override.model_dump(exclude_none=True))


class Defaults(Schema):
    options: Options = Field(default_factory=Options, description="Options for every call unless overridden.")
    timeout_s: float = Field(600, gt=0, le=86400, description="Seconds a call may take before it is given up.")
    concurrency_per_host: int = Field(1, ge=1, le=32, description="Calls in flight at once on one host.")
    retries: int = Field(2, ge=0, le=10, description="Retries of a transient failure (reset, 502/503).")
    max_answer_chars: int = Field(2_000_000, gt=0, description="A longer answer is dropped as a failure.")
    warm_up: bool = Field(True, description="Load each model with an empty prompt before its first timed call.")


# ----------------------------------------------------------------------------------------------- models


class ModelSpec(Schema):
    """One model under test, reached through a provider."""

    id: Slug = Field(description="Stable slug used in URLs, the cache key and results.json.")
    label: str | None = Field(None, description="Name shown on pages; defaults to the id.")
    provider: Literal["ollama", "openai"] = Field(
        "ollama", description="ollama: an Ollama server; openai: any OpenAI-compatible chat completions API."
    )
    model: str = Field(min_length=1, description="The provider's model tag, e.g. gemma3:27b.")
    host: str = Field(
        "http://localhost:11434", min_length=1,
        description="Ollama server, written as the ollama client accepts it: http://host:11434, host:11434, "
                    "0.0.0.0:11434 (no scheme means http, no port means 11434).",
    )
    machine: str | None = Field(
        None, min_length=1,
        description="Machine this model runs on. Models on one machine are called one at a time (they share its "
                    "cores); by default hosts that resolve to the same address share a machine.",
    )
    base_url: str | None = Field(None, description="openai: base URL of the API, e.g. https://api.example.com/v1.")
    api_key_env: str | None = Field(
        None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="openai: name of the environment variable holding the API key (never stored or rendered).",
    )
    headers: dict[str, str] = Field(default_factory=dict, description="Extra HTTP headers; never rendered or cached.")
    hardware: str | None = Field(None, description="Declared hardware, shown in the environment table.")
    options: Options | None = Field(None, description="Options overriding defaults.options for this model.")
    think: bool | None = Field(None, description="Ask a thinking model to think (kept apart from the answer).")
    timeout_s: float | None = Field(None, gt=0, le=86400, description="Overrides defaults.timeout_s for this model.")

    @property
    def display(self) -> str:
        return self.label or self.id

    @model_validator(mode="after")
    def _openai_needs_base_url(self) -> ModelSpec:
        if self.provider == "openai":
            if not self.base_url:
                raise ValueError("provider openai needs base_url (e.g. http://localhost:8000/v1)")
            # The base URL is this model's host: calls are scheduled per host like Ollama's.
            object.__setattr__(self, "host", self.base_url.rstrip("/"))
        elif self.base_url or self.api_key_env:
            raise ValueError("base_url and api_key_env are for provider: openai; an Ollama model uses host")
        return self

    @field_validator("headers")
    @classmethod
    def _drop_empty_headers(cls, v: dict[str, str]) -> dict[str, str]:
        return without_empty_credentials(v)

    @field_validator("host")
    @classmethod
    def _ollama_host(cls, v: str) -> str:
        return ollama_host(v)

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not re.match(r"^https?://[^\s/]+", v):
            raise ValueError(f"expected a URL like http://host:8000/v1, received {v!r}")
        return v.rstrip("/")

    def dropped_options(self, names: set[str]) -> list[str]:
        """One warning per option in ``names`` this model's provider cannot pass (shown by `bench validate`)."""
        if self.provider == "ollama":
            return []
        notes = []
        if self.think is not None:
            notes.append(f"models.{self.id}: think cannot be passed through the OpenAI API and is not sent (nor "
                         f"part of the cache key); whether the model thinks is the server's setting")
        for name in sorted(names - OPENAI_OPTIONS):
            if name in OPENAI_EXTRA_OPTIONS:
                notes.append(f"models.{self.id}: {name} is sent only to llama.cpp and vLLM servers (recognised when "
                             f"the run starts); another OpenAI-compatible server does not get it")
            else:
                notes.append(f"models.{self.id}: {name} cannot be passed through the OpenAI API and is not sent "
                             f"(nor part of the cache key); set it on the server (llama.cpp: --ctx-size)")
        return notes


# What the OpenAI-compatible provider sends: the chat completions parameters, and three sampling fields that
# llama.cpp (tools/server/server-task.cpp, params_from_json_cmpl) and vLLM (vllm/entrypoints/openai/protocol.py)
# accept as extra body fields. num_ctx is a server setting there, so it is left out of the request and the key.
OPENAI_OPTIONS = {"temperature", "seed", "num_predict", "top_p", "stop"}
OPENAI_EXTRA_OPTIONS = {"top_k", "min_p", "repeat_penalty"}


# ----------------------------------------------------------------------------------------------- checks


class CheckBase(Schema):
    name: str | None = Field(None, description="Shown on the page; defaults to a summary of the check.")
    critical: bool = Field(False, description="A failed critical check decides the task alone.")
    weight: float = Field(1.0, gt=0, description="Weight of this check in the task's pass rate.")


Scope = Literal["code", "prose", "all"]


class PythonCheck(CheckBase):
    """Run test code against the program assembled from the answer's Python blocks, in the sandbox."""

    type: Literal["python"]
    code: str = Field(min_length=1, description="pytest-style test_* functions; they `import answer` (and `import fixture`).")
    setup: str = Field("", description="Trusted code run beside the answer before it is imported (`import fixture`), "
                                       "e.g. a fake library put in sys.modules.")
    function: str | None = Field(None, description="The function the answer must define: the entry point of the program.")
    timeout_s: float = Field(20, gt=0, le=600, description="Wall-clock limit for the whole test file.")

    @field_validator("code", "setup")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            compile(v, "<check>", "exec")
        except SyntaxError as e:
            raise ValueError(f"Python that does not compile: {e.msg} (line {e.lineno} of the code)") from None
        return v


class ContainsCheck(CheckBase):
    """Text that must (contains) or must not (not_contains) appear; weak, lexical evidence."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    type: Literal["contains", "not_contains"]
    value: str | None = Field(None, min_length=1, description="Text that must (or must not) appear in the answer.")
    any_of: list[str] = Field(default_factory=list, description="contains: one of these; not_contains: none of these.")
    where: Scope = Field("all", alias="in", description="Where to look: code blocks, prose, or all (never thinking).")
    case_sensitive: bool = Field(True, description="Compare case-sensitively.")
    negation_aware: bool = Field(False, description="not_contains in prose: a mention in a negated sentence "
                                                    "(no, not, never, without, isn't...) does not count.")

    @model_validator(mode="after")
    def _one_value(self) -> ContainsCheck:
        if (self.value is None) == (not self.any_of):
            raise ValueError("give value or any_of (one of them)")
        return self

    @property
    def values(self) -> list[str]:
        return [self.value] if self.value is not None else list(self.any_of)


class RegexCheck(CheckBase):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    type: Literal["regex"]
    pattern: str = Field(min_length=1, description="Python regular expression searched in the answer.")
    flags: list[Literal["IGNORECASE", "MULTILINE", "DOTALL"]] = Field(default_factory=list)
    expect: bool = Field(True, description="false: the pattern must NOT match.")
    where: Scope = Field("all", alias="in", description="Where to look: code blocks, prose, or all (never thinking).")
    negation_aware: bool = Field(False, description="expect false, in prose: a match in a negated sentence (no, not, "
                                                    "never, without, rather than...) does not count.")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as e:
            raise ValueError(f"not a valid regular expression: {e}") from None
        return v


class CallsCheck(CheckBase):
    """Static: the answer's program calls one of the named functions (found in its syntax tree)."""

    type: Literal["calls"]
    any_of: list[str] = Field(min_length=1, description="Dotted names, e.g. hmac.compare_digest; imports and "
                                                        "aliases (from hmac import compare_digest as cd) are followed.")
    function: str | None = Field(None, description="Entry point: only code it reaches counts.")


class ImportsCheck(CheckBase):
    """Static: the program assembled from the answer (reached from ``function``) imports only the standard
    library (plus ``allow``); a usage example the assembly drops (a Flask route, a pytest file) does not count."""

    type: Literal["imports"]
    function: str | None = Field(None, description="Entry point: only imports the code it reaches uses count.")
    allow: list[str] = Field(default_factory=list, description="Top-level modules allowed besides the standard library.")


class WordCountCheck(CheckBase):
    type: Literal["word_count"]
    min: int | None = Field(None, ge=0, description="Fewest words (prose only: code, headings, thinking not counted).")
    max: int | None = Field(None, ge=1, description="Most words.")

    @model_validator(mode="after")
    def _range(self) -> WordCountCheck:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is larger than max ({self.max})")
        return self


class ShellSyntaxCheck(CheckBase):
    type: Literal["shell_syntax"]


class CronCheck(CheckBase):
    """A crontab line, wherever the answer gives it, whose schedule fires as expected."""

    type: Literal["cron"]
    every_minutes: int | None = Field(None, ge=1, le=1440, description="The schedule must fire exactly every N "
                                                                       "minutes (checked over two days).")
    command: str | None = Field(None, description="Text the line's command must contain, e.g. burndown.sh.")


class ScenarioExpect(Schema):
    exit: Literal["zero", "nonzero", "any"] = Field("any", description="Exit status of every run "
                                                                       "(concurrent: of the first run).")
    stop_calls: list[str] | None = Field(None, description="Exactly these IDs passed to `<stub> stop`, each once "
                                                           "over all runs, in any order.")
    logged: list[str] = Field(default_factory=list, description="Exactly these IDs have a line of log_file, one "
                                                                "each, holding the current UTC time (TZ is set to "
                                                                "UTC+5:45); no other ID of the scenario (its env, "
                                                                "stop_calls) has one, unless the line says it failed.")


class Scenario(Schema):
    name: str = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict, description="Environment of the run, read by the stubs.")
    runs: int = Field(1, ge=1, le=3, description="Runs of the script, one after another (or concurrent).")
    concurrent: bool = Field(False, description="Start the runs ~0.3 s apart without waiting for the previous.")
    expect: ScenarioExpect = Field(default_factory=ScenarioExpect)


class ShellCheck(CheckBase):
    """Run the answer's shell script in the sandbox with stub commands, once per scenario."""

    type: Literal["shell"]
    stubs: dict[str, str] = Field(description="Command name -> script put first on PATH; stubs append their "
                                              "arguments as one line to calls.log in the working directory.")
    writable_dirs: list[str] = Field(default_factory=list, description="Absolute directories the script may write.")
    log_file: str | None = Field(None, description="File the scenarios' `logged` expectations read.")
    stub: str = Field("podctl", description="The stub whose `stop ID` calls stop_calls counts.")
    script_path: str | None = Field(None, description="Where the prompt installs the script (e.g. /opt/fleet/"
                                    "burndown.sh): finds it in a here-document, and a crontab line that wraps "
                                    "it in `flock` is run as given.")
    scenarios: list[Scenario] = Field(min_length=1)
    timeout_s: float = Field(20, gt=0, le=120, description="Wall-clock limit for one scenario.")


class RubricCheck(CheckBase):
    """Claims graded by the judge model against the reference; not scored without a judge."""

    type: Literal["rubric"]
    must: list[str] = Field(default_factory=list, description="Claims the answer must assert.")
    must_not: list[str] = Field(default_factory=list, description="Claims the answer must not assert (a negation "
                                                                  "of the claim is not an assertion of it).")

    @model_validator(mode="after")
    def _some_claim(self) -> RubricCheck:
        if not self.must and not self.must_not:
            raise ValueError("give must, must_not or both")
        return self


Check = Annotated[
    Union[PythonCheck, ContainsCheck, RegexCheck, CallsCheck, ImportsCheck, WordCountCheck, ShellSyntaxCheck,
          CronCheck, ShellCheck, RubricCheck],
    Field(discriminator="type"),
]
CHECK_TYPES = ("python", "shell", "contains", "not_contains", "regex", "calls", "word_count", "shell_syntax", "cron",
               "rubric", "imports")
EXECUTED = ("python", "shell")  # the answer's code runs: the strongest evidence


def strength(check_type: str) -> Literal["tests", "rubric", "static"]:
    """The kind of evidence a check of this type gives: executed tests, a model-graded rubric, or static/lexical."""
    if check_type in EXECUTED:
        return "tests"
    return "rubric" if check_type == "rubric" else "static"


# ------------------------------------------------------------------------------------------------ tasks


class TaskSpec(Schema):
    """One piece of work every model is asked to do."""

    id: Slug
    title: str = Field(min_length=1)
    prompt: str = Field(min_length=1, description="The user message sent to each model.")
    system: str | None = Field(None, description="Optional system prompt.")
    reference: str | None = Field(None, description="Notes on a good answer; shown on the page, given to the judge.")
    options: Options | None = Field(None, description="Options overriding the model's for this task.")
    checks: list[Check] = Field(default_factory=list, description="Objective checks on each answer.")


class JudgeSpec(Schema):
    model: Slug = Field(description="Id of a model in `models` that judges pairs of answers.")


class ReportSpec(Schema):
    show_hosts: bool = Field(True, description="false: hosts are shown as 'redacted'.")
    reviews: str = Field("reviews.yaml", description="Human reviews file, relative to benchmark.yaml.")


class Benchmark(Schema):
    """The whole benchmark.yaml."""

    title: str = Field(min_length=1)
    description: str | None = None
    defaults: Defaults = Field(default_factory=Defaults)
    models: list[ModelSpec] = Field(min_length=1)
    tasks: list[TaskSpec] = Field(min_length=1)
    judge: JudgeSpec | None = None
    report: ReportSpec = Field(default_factory=ReportSpec)

    # Set by load(), not by the file.
    source_sha256: SkipJsonSchema[str] = Field("", exclude=True)
    source_path: SkipJsonSchema[str] = Field("", exclude=True)

    @cached_property
    def _models_by_id(self) -> dict[str, ModelSpec]:
        return {m.id: m for m in self.models}

    @cached_property
    def _tasks_by_id(self) -> dict[str, TaskSpec]:
        return {t.id: t for t in self.tasks}

    def model(self, model_id: str) -> ModelSpec:
        return self._models_by_id[model_id]

    def task(self, task_id: str) -> TaskSpec:
        return self._tasks_by_id[task_id]

    def options_for(self, model: ModelSpec, task: TaskSpec) -> Options:
        return self.defaults.options.merged(model.options).merged(task.options)

    def option_warnings(self) -> list[str]:
        """Options set for a model that its provider cannot pass, one line each."""
        notes = []
        for model in self.models:
            names = set(self.defaults.options.merged(model.options).model_dump(exclude_none=True))
            for task in self.tasks:
                names |= set(self.options_for(model, task).model_dump(exclude_none=True))
            notes += model.dropped_options(names)
        return notes

    def timeout_for(self, model: ModelSpec) -> float:
        return model.timeout_s or self.defaults.timeout_s

    def secrets(self, env: dict[str, str] | None = None) -> list[str]:
        """Every secret the benchmark knows (header tokens, API keys, OLLAMA_API_KEY): never written anywhere."""
        from .safety import Redactor

        return list(Redactor.for_benchmark(self, env).secrets)


# ------------------------------------------------------------------------------------------------ loading

def _format_path(parts: tuple) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


class _Lines:
    """Maps key paths of the YAML document to the line they start on."""

    def __init__(self, node: yaml.Node | None):
        self.lines: dict[tuple, int] = {}
        if node is not None:
            self._walk(node, ())

    def _walk(self, node: yaml.Node, path: tuple) -> None:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = k.value if isinstance(k, yaml.ScalarNode) else str(k)
                self.lines[path + (key,)] = k.start_mark.line + 1
                self._walk(v, path + (key,))
                self.lines[path + (key,)] = k.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                self._walk(v, path + (i,))

    def of(self, path: tuple) -> int | None:
        while path not in self.lines and path:
            path = path[:-1]
        return self.lines.get(path)


def _data_path(loc: tuple, data: Any) -> tuple:
    """Drop pydantic's union tags (the check `type`) from an error location, keeping real keys."""
    out: list = []
    node = data
    for part in loc:
        if isinstance(node, dict):
            if part in node:
                out.append(part)
                node = node[part]
            elif node.get("type") == part:
                continue  # discriminator tag, not a key
            else:
                out.append(part)
                node = None
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            out.append(part)
            node = node[part]
        else:
            out.append(part)
            node = None
    return tuple(out)


def _cross_problems(bench: Benchmark) -> list[tuple[tuple, str]]:
    """Problems that span keys: duplicate ids, a judge naming no model."""
    problems: list[tuple[tuple, str]] = []
    for kind, items in (("models", bench.models), ("tasks", bench.tasks)):
        seen: dict[str, int] = {}
        for i, item in enumerate(items):
            if item.id in seen:
                problems.append(((kind, i, "id"), f"duplicate id {item.id!r} (also {kind}[{seen[item.id]}])"))
            seen.setdefault(item.id, i)
    if bench.judge and bench.judge.model not in {m.id for m in bench.models}:
        problems.append((("judge", "model"), f"{bench.judge.model!r} is not the id of a model in `models`"))
    return problems


def parse(text: str, source: str = "benchmark.yaml", env: dict[str, str] | None = None) -> Benchmark:
    """Validate benchmark.yaml text. Raises ConfigError listing every problem."""
    env = dict(os.environ) if env is None else env
    try:
        loader = UniqueKeyLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
        lines = _Lines(node)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(source, [f"{where}not valid YAML: {problem}"]) from None
    if not isinstance(data, dict):
        raise ConfigError(source, ["(top level): expected a mapping with title, models and tasks"])

    missing: list[tuple[tuple, str]] = []
    data = expand_tree(data, env, (), missing)
    problems = [
        (lines.of(path) or 0, f"{_format_path(path)} (line {lines.of(path)}): environment variable {name} is not set; "
         f"set it or write ${{{name}:-default}}")
        for path, name in missing
    ]
    unset_paths = {path for path, _ in missing}
    try:
        bench = Benchmark.model_validate(data)
    except ValidationError as e:
        for err in e.errors(include_url=False):
            path = _data_path(tuple(err["loc"]), data)
            if path in unset_paths:
                continue  # already reported as the unset variable that emptied it
            line = lines.of(path)
            where = _format_path(path) + (f" (line {line})" if line else "")
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key; check its spelling against the schema ('bench schema')"
            elif err["type"] == "union_tag_invalid":
                msg = f"unknown check type {err['input'].get('type')!r}; use one of {', '.join(CHECK_TYPES)}"
            elif err["type"] == "string_pattern_mismatch":
                msg = f"{err['input']!r} is not a slug; use lowercase a-z, 0-9, '-', '_' and '.'"
            elif err["type"] == "missing":
                msg = "required key is missing"
            problems.append((line or 0, f"{where}: {msg}"))
    else:
        for path, msg in _cross_problems(bench):
            problems.append((lines.of(path) or 0, f"{_format_path(path)} (line {lines.of(path)}): {msg}"))
    if problems:
        raise ConfigError(source, [text for _, text in sorted(problems, key=lambda p: p[0])])
    return bench.model_copy(update={"source_sha256": hashlib.sha256(text.encode()).hexdigest(), "source_path": source})


def load(path: str | Path, env: dict[str, str] | None = None) -> Benchmark:
    """Read and validate a benchmark file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), ["file not found; pass --config PATH or create benchmark.yaml"]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(str(path), [f"cannot read the file: {e}"]) from None
    return parse(text, str(path), env).model_copy(update={"source_path": str(path.resolve())})


def json_schema() -> str:
    """The JSON Schema of benchmark.yaml, for editors (committed as benchmark.schema.json)."""
    import json

    schema = Benchmark.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "benchmark.yaml"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
