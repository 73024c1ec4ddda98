"""Objective checks, used by the evaluate stage: run a task's checks on one answer, one CheckResult per check.

Every detail is one line a reader can check against the answer. A check that cannot run (bad input, a
missing tool) becomes a failed result that says why; run_checks never raises for an answer.
"""

from __future__ import annotations

import ast
import math
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from croniter import croniter

from . import sandbox
from .config import (
    Check,
    ContainsCheck,
    CronCheck,
    PythonCheck,
    RegexCheck,
    ShellSyntaxCheck,
    TaskSpec,
    WordCountCheck,
)
from .records import CheckResult

PYTHON_LANGUAGES = ("python", "py", "python3", "py3")
SHELL_LANGUAGES = ("bash", "sh", "shell")
DETAIL_CHARS = 500
QUOTE_CHARS = 80
SHELL_TIMEOUT_S = 10
_SHEBANG = re.compile(r"#!\s*(/usr)?/bin/(env\s+)?(ba)?sh\b")
_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_CLOSING = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})\s*$")
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_TIME_FIELD = re.compile(r"^[0-9*/,\-]+$")  # minute, hour, day of month
_NAMED_FIELD = re.compile(r"^[0-9A-Za-z*/,\-]+$")  # month, day of week (JAN, MON-FRI)
_REGEX_FLAGS = {"IGNORECASE": (re.IGNORECASE, "i"), "MULTILINE": (re.MULTILINE, "m"), "DOTALL": (re.DOTALL, "s")}


@dataclass(frozen=True)
class CodeBlock:
    """One fenced code block of an answer."""

    language: str  # first word of the info string, lowercased; "" when unlabelled
    code: str
    line: int  # line of the opening fence, counting from 1


# ------------------------------------------------------------------------------------------------ public


def run_checks(task: TaskSpec, answer_text: str) -> list[CheckResult]:
    """Every check of ``task`` on ``answer_text``, in the order the task lists them."""
    return [_run(check, answer_text) for check in task.checks]


def default_name(check: Check) -> str:
    """What a check is called on the page when benchmark.yaml gives it no name."""
    if isinstance(check, PythonCheck):
        return "python tests"
    if isinstance(check, ContainsCheck):
        verb = "contains" if check.type == "contains" else "does not contain"
        return f'{verb} "{_quote(check.value)}"' + ("" if check.case_sensitive else " (any case)")
    if isinstance(check, RegexCheck):
        verb = "matches" if check.expect else "does not match"
        letters = "".join(_REGEX_FLAGS[f][1] for f in check.flags)
        return f"{verb} /{_quote(check.pattern)}/{letters}"
    if isinstance(check, WordCountCheck):
        return f"word count {_range_text(check.min, check.max)}"
    if isinstance(check, ShellSyntaxCheck):
        return "shell syntax"
    return "cron schedule"


def code_blocks(text: str) -> list[CodeBlock]:
    """The fenced code blocks (``` or ~~~) of a markdown text; an unclosed fence runs to the end."""
    return _scan(text)[0]


def extract_code(text: str, languages: tuple[str, ...], function: str | None = None) -> str | None:
    """The code block an answer means as its solution, or None when it has none in ``languages``.

    Candidates are the blocks labelled with one of ``languages``, and unlabelled blocks that are Python (they
    parse) or a shell script (they start with a shell #!) when those languages are asked for. With
    ``function``, the last candidate that defines it at top level (def, async def or class); otherwise,
    or when none does, the last candidate.
    """
    wanted = {language.lower() for language in languages}
    candidates = [
        b.code for b in code_blocks(text) if b.language in wanted or (not b.language and _unlabelled_is(b.code, wanted))
    ]
    if not candidates:
        return None
    if function and wanted & set(PYTHON_LANGUAGES):
        defining = [code for code in candidates if function in _top_level_names(code)]
        if defining:
            return defining[-1]
    return candidates[-1]


def prose_words(text: str) -> int:
    """Words outside fenced code blocks: whitespace-separated tokens holding a letter or digit."""
    return sum(1 for line in _scan(text)[1] for token in line.split() if any(c.isalnum() for c in token))


# --------------------------------------------------------------------------------------------- running


def _run(check: Check, text: str) -> CheckResult:
    start = time.perf_counter()
    try:
        passed, detail = _evaluate(check, text)
    except sandbox.SandboxUnavailable:  # answer code must not run here: the user decides, not one check
        raise
    except Exception as exc:  # a broken check must fail alone, not take the other checks with it
        passed, detail = False, f"the check could not run: {type(exc).__name__}: {exc}"
    return CheckResult(
        name=check.name or default_name(check),
        type=check.type,
        passed=passed,
        critical=check.critical,
        weight=check.weight,
        detail=_one_line(detail, DETAIL_CHARS),
        duration_ms=round((time.perf_counter() - start) * 1000, 1),
    )


def _evaluate(check: Check, text: str) -> tuple[bool, str]:
    if isinstance(check, PythonCheck):
        return _python(check, text)
    if isinstance(check, ContainsCheck):
        return _contains(check, text)
    if isinstance(check, RegexCheck):
        return _regex(check, text)
    if isinstance(check, WordCountCheck):
        return _word_count(check, text)
    if isinstance(check, ShellSyntaxCheck):
        return _shell_syntax(text)
    if isinstance(check, CronCheck):
        return _cron(text)
    raise ValueError(f"unknown check type {check.type!r}")


def _python(check: PythonCheck, text: str) -> tuple[bool, str]:
    code = extract_code(text, PYTHON_LANGUAGES, check.function)
    if code is None:
        return False, "no Python code block in the answer"
    limits = sandbox.Limits(wall_s=check.timeout_s, cpu_s=max(1, math.ceil(check.timeout_s)))
    report = sandbox.run_python_tests(code, check.code, limits)
    outcomes = report.outcomes
    if not outcomes:
        return False, report.error or "the test code ran no test_* function"
    passed = sum(o.passed for o in outcomes)
    failures = [o for o in outcomes if not o.passed]
    # Tests cut off by a whole-run error all say so; the error is shown once instead.
    shown = [o for o in failures if not (report.error and o.message.startswith("did not finish"))][:2]
    parts = [f"{passed} of {len(outcomes)} tests pass"]
    if report.error:
        parts.append(report.error)
    parts += [f"{o.name}: {o.message}" for o in shown]
    if len(failures) > len(shown):
        parts.append(f"{len(failures) - len(shown)} more failed")
    return report.error is None and not failures, "; ".join(parts)


def _contains(check: ContainsCheck, text: str) -> tuple[bool, str]:
    flags = 0 if check.case_sensitive else re.IGNORECASE
    found = re.search(re.escape(check.value), text, flags)
    shown = f'"{_quote(check.value)}"'
    where = f"{shown} found on line {_line_of(text, found.start())}" if found else f"{shown} not found"
    return (found is not None) == (check.type == "contains"), where


def _regex(check: RegexCheck, text: str) -> tuple[bool, str]:
    flags = 0
    for name in check.flags:
        flags |= _REGEX_FLAGS[name][0]
    found = re.search(check.pattern, text, flags)
    where = f'matched "{_quote(found.group(0))}" on line {_line_of(text, found.start())}' if found else "no match"
    return (found is not None) == check.expect, where


def _word_count(check: WordCountCheck, text: str) -> tuple[bool, str]:
    words = prose_words(text)
    ok = (check.min is None or words >= check.min) and (check.max is None or words <= check.max)
    return ok, f"{words} words (limit {_range_text(check.min, check.max)})"


def _shell_syntax(text: str) -> tuple[bool, str]:
    scripts = [
        b.code
        for b in code_blocks(text)
        if b.language in SHELL_LANGUAGES or (not b.language and _SHEBANG.match(b.code))
    ]
    if not scripts:
        return False, "no shell code block (```bash, ```sh or ```shell) in the answer"
    # The largest block is the script; smaller ones are usually a crontab line or a usage example.
    script = max(scripts, key=lambda code: len(code.strip()))
    bash = shutil.which("bash")
    if bash is None:
        return False, "bash is not installed, so the syntax cannot be checked"
    with tempfile.TemporaryDirectory(prefix="bench-shell-") as tmp:
        path = Path(tmp) / "script.sh"
        path.write_text(script, encoding="utf-8")
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": tmp}
        # bash -n reads the script without running any of it.
        done = _tool([bash, "-n", path.name], tmp, env)
        if done.returncode != 0:
            first = next((line for line in done.stderr.splitlines() if line.strip()), f"exit status {done.returncode}")
            return False, "bash -n: " + first.replace(f"{path.name}: ", "", 1)
        shellcheck = shutil.which("shellcheck")
        if shellcheck is None:
            return True, "bash -n passes; shellcheck is not installed"
        command = [shellcheck, "-S", "error", "-f", "gcc"] + ([] if script.startswith("#!") else ["-s", "bash"])
        done = _tool([*command, path.name], tmp, env)
        errors = [line for line in done.stdout.splitlines() if ": error: " in line]
        if errors:
            match = re.match(r"^[^:]*:(\d+):\d+: error: (.*)$", errors[0])
            where = f"line {match.group(1)}: {match.group(2)}" if match else errors[0]
            return False, f"shellcheck: {where}" + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else "")
        if done.returncode not in (0, 1):
            return True, f"bash -n passes; shellcheck could not run (exit status {done.returncode})"
        return True, "bash -n passes; shellcheck finds no errors"


def _tool(command: list[str], cwd: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            errors="replace", timeout=SHELL_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"{Path(command[0]).name} did not finish in {SHELL_TIMEOUT_S} s") from None


def _cron(text: str) -> tuple[bool, str]:
    invalid: tuple[str, int, str] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        for candidate in [line, *_INLINE_CODE.findall(line)]:
            found = _cron_line(candidate)
            if found is None:
                continue
            schedule, extra_field = found
            if not extra_field and croniter.is_valid(schedule):
                return True, f'"{schedule}" on line {number} is a valid schedule'
            if invalid is None:
                why = " (6 time fields; crontab takes 5)" if extra_field else ""
                invalid = (schedule, number, why)
    if invalid:
        schedule, number, why = invalid
        return False, f'"{schedule}" on line {number} is not a valid 5-field schedule{why}'
    return False, "no crontab line (5 time fields, then a command) in the answer"


def _cron_line(line: str) -> tuple[str, bool] | None:
    """(schedule, has a sixth time field) when ``line`` looks like a crontab entry, else None."""
    tokens = line.strip().strip("`'\"").split()
    if len(tokens) < 6 or not all(_TIME_FIELD.match(t) for t in tokens[:3]):
        return None
    if not all(_NAMED_FIELD.match(t) for t in tokens[3:5]):
        return None
    # A sixth field of digits, * or ? is a seconds or year field (Quartz, Spring), not a command.
    extra = bool(re.match(r"^[0-9*/,\-?]+$", tokens[5]))
    return " ".join(tokens[:5] + (tokens[5:6] if extra else [])), extra


# --------------------------------------------------------------------------------------------- helpers


def _scan(text: str) -> tuple[list[CodeBlock], list[str]]:
    """The fenced code blocks of ``text`` and its lines outside them."""
    lines = text.splitlines()
    blocks: list[CodeBlock] = []
    prose: list[str] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening or (opening["fence"][0] == "`" and "`" in opening["info"]):
            prose.append(lines[i])
            i += 1
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        language = re.match(r"[\w+-]*", opening["info"].strip().lstrip("{.")).group(0).lower()
        body: list[str] = []
        i += 1
        while i < len(lines):
            closing = _CLOSING.match(lines[i])
            if closing and closing["fence"][0] == fence[0] and len(closing["fence"]) >= len(fence):
                break
            line = lines[i]
            body.append(line[min(indent, len(line) - len(line.lstrip(" "))):])
            i += 1
        code = "\n".join(body) + "\n" if body else ""
        blocks.append(CodeBlock(language=language, code=code, line=i - len(body)))
        i += 1
    return blocks, prose


def _unlabelled_is(code: str, languages: set[str]) -> bool:
    if languages & set(SHELL_LANGUAGES) and _SHEBANG.match(code):
        return True
    if languages & set(PYTHON_LANGUAGES):
        try:
            ast.parse(code)
        except (SyntaxError, ValueError):
            return False
        return bool(code.strip())
    return False


def _top_level_names(code: str) -> set[str]:
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return set()
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return {node.name for node in tree.body if isinstance(node, kinds)}


def _line_of(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _range_text(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f"{low}–{high}"
    return f"≥ {low}" if low is not None else f"≤ {high}"


def _quote(text: str) -> str:
    return _one_line(text, QUOTE_CHARS)


def _one_line(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
