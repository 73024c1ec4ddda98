"""Objective checks, used by the evaluate stage: run a task's checks on one parsed answer, one CheckResult each.

Every check reads the answer parsed once (generator/parse.py); none re-scans the raw text, and thinking is
never graded. Code checks run the program assembled from the answer (generator/program.py) in the sandbox.

Status: ``pass`` or ``fail`` say something about the answer (an answer without the code a check needs
fails it); ``error`` means the check could not run (a tool missing, the sandbox unavailable, broken test
code) and says nothing about the answer. run_checks never raises for an answer. Rubric checks are graded by
the judge model (generator/judge.py), not here: here they are ``error`` (not scored) unless a grade is given.
"""

from __future__ import annotations

import ast
import math
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from croniter import croniter

from . import sandbox
from .config import (
    CallsCheck,
    Check,
    ContainsCheck,
    CronCheck,
    ImportsCheck,
    PythonCheck,
    RegexCheck,
    RubricCheck,
    Scenario,
    ShellCheck,
    ShellSyntaxCheck,
    TaskSpec,
    WordCountCheck,
)
from .parse import ParsedAnswer, parse_answer
from .program import python_program, shell_script, shell_scripts
from .records import CheckResult

DETAIL_CHARS = 500
QUOTE_CHARS = 80
SHELL_TIMEOUT_S = 10
SCENARIO_WORKERS = 3
_REGEX_FLAGS = {"IGNORECASE": (re.IGNORECASE, "i"), "MULTILINE": (re.MULTILINE, "m"), "DOTALL": (re.DOTALL, "s")}
_NEGATION = re.compile(r"\b(no|not|never|without|neither|nor|none|lacks?|cannot|instead of|rather than|"
                       r"isn't|aren't|doesn't|don't|didn't|wasn't|won't|has no|there is no)\b|n't\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?][\"'\u201d\u2019)\]]*\s+")  # closing quotes included: '"X is so." No.'
_REFUTED = re.compile(r"(no|false|wrong|nope|myth|not (true|so|really|quite))\b\s*[.,!:;\u2014-]", re.IGNORECASE)
_SENTENCE = re.compile(r"(?<=[.!?;:])\s+|\n\s*\n|\n\s*[-*+]\s+|\n\s*\d+[.)]\s+")
# Scripts run as under cron: no TZ in their environment, local time from /etc/localtime, here UTC+5:45, so a
# local time can never pass as UTC and `TZ=UTC` without `export` (which date never sees) is caught. Without
# tzdata, TZ is set to the same offset instead (POSIX form): then only the unexported assignment goes unseen.
LOCAL_ZONE = "Asia/Kathmandu"
_TZ = "XST-05:45"


class _CouldNotRun(Exception):
    """The check could not run; its message says why (status error)."""


class _NotScored(_CouldNotRun):
    """The check is not scored here (a rubric without the judge's grade)."""


@dataclass(frozen=True)
class Outcome:
    passed: bool
    detail: str
    score: float | None = None
    isolation: str | None = None  # the sandbox's summary, for checks that ran answer code
    doubt: str | None = None  # why this result must never make a verdict objectively clear


# ------------------------------------------------------------------------------------------------ public


def run_checks(task: TaskSpec, answer_text: str) -> list[CheckResult]:
    """Every check of ``task`` on ``answer_text``, in the order the task lists them."""
    parsed = parse_answer(answer_text)
    prompt = parse_answer(task.prompt)
    return [run_check(check, parsed, prompt) for check in task.checks]


def run_check(check: Check, answer: ParsedAnswer, prompt: ParsedAnswer | None = None) -> CheckResult:
    start = time.perf_counter()
    status = "fail"
    executed = isinstance(check, (PythonCheck, ShellCheck))
    try:
        outcome = _evaluate(check, answer, prompt)
        status = "pass" if outcome.passed else "fail"
    except _NotScored as exc:
        outcome, status = Outcome(False, f"not scored: {exc}"), "error"
    except (_CouldNotRun, sandbox.SandboxUnavailable) as exc:
        outcome, status = Outcome(False, f"could not run: {exc}"), "error"
    except Exception as exc:  # a broken check must fail alone, not take the other checks with it
        outcome, status = Outcome(False, f"the check could not run: {type(exc).__name__}: {exc}"), "error"
    # The isolation is part of the evidence of a check that runs answer code (also when it could not run).
    isolation = (outcome.isolation or sandbox.isolation().summary) if executed else None
    return CheckResult(
        name=check.name or default_name(check), type=check.type, status=status, critical=check.critical,
        weight=check.weight, detail=_one_line(outcome.detail, DETAIL_CHARS), score=outcome.score,
        doubt=_one_line(outcome.doubt, DETAIL_CHARS) if outcome.doubt else None,
        duration_ms=round((time.perf_counter() - start) * 1000, 1), isolation=isolation,
    )


def default_name(check: Check) -> str:
    """What a check is called on the page when benchmark.yaml gives it no name."""
    if isinstance(check, PythonCheck):
        return "python tests"
    if isinstance(check, ShellCheck):
        return "shell scenarios"
    if isinstance(check, ContainsCheck):
        verb = "contains" if check.type == "contains" else "does not contain"
        values = check.values
        shown = f'"{_quote(values[0])}"' if len(values) == 1 else \
            ("one of " if check.type == "contains" else "any of ") + ", ".join(f'"{_quote(v)}"' for v in values)
        return f"{verb} {shown}" + ("" if check.case_sensitive else " (any case)") + _scope_text(check.where)
    if isinstance(check, RegexCheck):
        verb = "matches" if check.expect else "does not match"
        letters = "".join(_REGEX_FLAGS[f][1] for f in check.flags)
        return f"{verb} /{_quote(check.pattern)}/{letters}" + _scope_text(check.where)
    if isinstance(check, CallsCheck):
        return "calls " + " or ".join(check.any_of)
    if isinstance(check, ImportsCheck):
        return "standard library only" + (f" (and {', '.join(check.allow)})" if check.allow else "")
    if isinstance(check, WordCountCheck):
        return f"word count {_range_text(check.min, check.max)}"
    if isinstance(check, ShellSyntaxCheck):
        return "shell syntax"
    if isinstance(check, RubricCheck):
        return "rubric"
    if isinstance(check, CronCheck) and check.every_minutes:
        return f"cron schedule every {check.every_minutes} minutes"
    return "cron schedule"


def prose_words(text: str) -> int:
    """Words in an answer's prose: outside code blocks, headings and thinking."""
    return parse_answer(text).prose_words


# --------------------------------------------------------------------------------------------- running


def _evaluate(check: Check, answer: ParsedAnswer, prompt: ParsedAnswer | None) -> Outcome:
    if isinstance(check, PythonCheck):
        return _python(check, answer, prompt)
    if isinstance(check, ShellCheck):
        return _shell(check, answer)
    if isinstance(check, ContainsCheck):
        return _contains(check, answer)
    if isinstance(check, RegexCheck):
        return _regex(check, answer)
    if isinstance(check, CallsCheck):
        return _calls(check, answer, prompt)
    if isinstance(check, ImportsCheck):
        return _imports(check, answer, prompt)
    if isinstance(check, WordCountCheck):
        return _word_count(check, answer)
    if isinstance(check, ShellSyntaxCheck):
        return _shell_syntax(answer)
    if isinstance(check, CronCheck):
        return _cron(check, answer)
    if isinstance(check, RubricCheck):
        raise _NotScored("a rubric is graded by the judge model (set `judge:` and run 'bench run')")
    raise ValueError(f"unknown check type {check.type!r}")


def _python(check: PythonCheck, answer: ParsedAnswer, prompt: ParsedAnswer | None) -> Outcome:
    program = python_program(answer, prompt, check.function)
    if program is None:
        return Outcome(False, "no Python code block in the answer (none that parses)", 0.0)
    # The wall clock counts the run's own time (not time spent waiting for a CPU), so an answer that spins
    # reaches timeout_s of it at about timeout_s of CPU: the CPU limit, a backstop, comes a second later.
    limits = sandbox.Limits(wall_s=check.timeout_s, cpu_s=math.ceil(check.timeout_s) + 1)
    outcome, messages = _python_run(check, program.code, limits)
    doubts = []
    # The whole program failed to import, outside the entry point: the entry point's own block alone is tried,
    # and its result stands when better, but never as certain (the assembly, not the answer, may be at fault).
    if not outcome.passed and "failed to import" in messages and program.entry_block:
        alone, alone_messages = _python_run(check, program.entry_block, limits)
        if (alone.score or 0.0) > (outcome.score or 0.0):
            doubts.append(f"the program assembled from all its blocks failed to import ({_quote(messages.splitlines()[0])}); "
                          f"the block defining {check.function} was tested alone")
            outcome, messages = alone, alone_messages
    # An unclear choice between the answer's own definitions: when they behave differently, the result
    # stands (the one the rule picks) but it cannot be certain.
    for alternative in program.alternatives:
        other, _ = _python_run(check, alternative, limits)
        if (other.score, other.passed) != (outcome.score, outcome.passed):
            doubts.append(f"the answer gives {len(program.alternatives) + 1} definitions of {check.function} that "
                          f"behave differently (another one: {other.detail.split(';')[0]}); the last one is graded")
            break
    # A NameError on a name the answer does define somewhere: the assembly may have missed it.
    missing = sorted(set(re.findall(r"NameError: name '(\w+)' is not defined", messages)) & program.defined)
    if missing and not outcome.passed:
        doubts.append(f"NameError on {', '.join(missing)}, which the answer defines: the program assembled from "
                      "its blocks may have left that definition out")
    return Outcome(outcome.passed, outcome.detail, outcome.score, outcome.isolation, "; ".join(doubts) or None)


def _python_run(check: PythonCheck, code: str, limits: sandbox.Limits) -> tuple[Outcome, str]:
    """The outcome of the tests on ``code``, and every message they gave (for telling why they failed)."""
    report = sandbox.run_python_tests(code, check.code, limits, setup_code=check.setup)
    if report.starved:  # the machine's doing: nothing is known about the answer
        raise _CouldNotRun(report.error)
    # The isolation is part of the evidence: a run without bubblewrap says so in its detail.
    unsandboxed = "" if report.isolation.startswith("bubblewrap") else f"; {report.isolation.split(':')[0]}"
    outcomes = report.outcomes
    if not outcomes:
        error = report.error or "the test code ran no test_* function"
        if "importing the tests failed" in error or "no test_*" in error or "test code" in error:
            raise _CouldNotRun(error + unsandboxed)
        return Outcome(False, error + unsandboxed, 0.0, report.isolation), error
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
    messages = "\n".join([report.error or "", *(o.message for o in failures)])
    return Outcome(report.error is None and not failures, "; ".join(parts) + unsandboxed,
                   passed / len(outcomes), report.isolation), messages


def _found_line(answer: ParsedAnswer, fragment: str) -> str:
    index = answer.text.find(fragment)
    return f" on line {answer.text.count(chr(10), 0, index) + 1}" if index >= 0 else ""


def _contains(check: ContainsCheck, answer: ParsedAnswer) -> Outcome:
    flags = 0 if check.case_sensitive else re.IGNORECASE
    text = answer.scope(check.where)
    hits: list[tuple[str, str]] = []
    negated: list[str] = []
    for value in check.values:
        for found in re.finditer(re.escape(value), text, flags):
            if check.negation_aware and check.type == "not_contains" and _negated(text, found.start()):
                negated.append(value)
                continue
            hits.append((value, found.group(0)))
            break
    where = _scope_text(check.where)
    if check.type == "contains":
        if hits:
            value, match = hits[0]
            return Outcome(True, f'"{_quote(value)}" found{where}{_found_line(answer, match)}')
        return Outcome(False, f"{_values_text(check.values)}{where}")
    if hits:
        value, match = hits[0]
        return Outcome(False, f'"{_quote(value)}" found{where}{_found_line(answer, match)}')
    detail = f"{_values_text(check.values)}{where}"
    if negated:
        detail += f' (only in negated sentences: "{_quote(negated[0])}")'
    return Outcome(True, detail)


def _negated(text: str, index: int, end: int | None = None) -> bool:
    """Whether the sentence holding ``index`` negates before it ("there is no X", "X? No, ..." is not), or,
    given ``end``, anywhere from the sentence's start to ``end`` ("a Character never puppets an Account"); or
    whether the next sentence refutes it ('"Builders write in a special language." No. It is all Python.')."""
    starts = [m.end() for m in _SENTENCE.finditer(text, 0, index)]
    start = starts[-1] if starts else 0
    if _NEGATION.search(text[start:index if end is None else end]):
        return True
    following = _SENTENCE_END.search(text, end if end is not None else index)
    return bool(following and _REFUTED.match(text, following.end()))


def _regex(check: RegexCheck, answer: ParsedAnswer) -> Outcome:
    flags = 0
    for name in check.flags:
        flags |= _REGEX_FLAGS[name][0]
    text = answer.scope(check.where)
    found = None
    negated = 0
    for match in re.finditer(check.pattern, text, flags):
        # A forbidden claim stated in a negated sentence ("a Character never puppets an Account") is not made.
        if check.negation_aware and not check.expect and _negated(text, match.start(), match.end()):
            negated += 1
            continue
        found = match
        break
    where = _scope_text(check.where)
    if negated and found is None:
        where += f" (only in {negated} negated sentence(s))"
    detail = f'matched "{_quote(found.group(0))}"{where}{_found_line(answer, found.group(0))}' if found \
        else f"no match{where}"
    return Outcome((found is not None) == check.expect, detail)


def _calls(check: CallsCheck, answer: ParsedAnswer, prompt: ParsedAnswer | None) -> Outcome:
    program = python_program(answer, prompt, check.function)
    if program is None:
        return Outcome(False, "no Python code block in the answer")
    tree = ast.parse(program.code)
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    wanted = set(check.any_of)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Name, ast.Attribute)) and isinstance(getattr(node, "ctx", None), ast.Load):
            name = _dotted(node, aliases)
            if name in wanted:
                return Outcome(True, f"{name} is used in the answer's code")
    where = f" reached from {check.function}" if check.function else ""
    return Outcome(False, f"no call to {' or '.join(check.any_of)} in the answer's code{where}")


def _imports(check: ImportsCheck, answer: ParsedAnswer, prompt: ParsedAnswer | None) -> Outcome:
    program = python_program(answer, prompt, check.function)
    if program is None:
        return Outcome(False, "no Python code block in the answer")
    allowed = set(sys.stdlib_module_names) | set(check.allow) | {"__future__"}
    outside = []
    for node in ast.walk(ast.parse(program.code)):
        modules = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
        outside += [m for m in modules if m.split(".")[0] not in allowed and m not in outside]
    if outside:
        return Outcome(False, f"the answer's program imports {', '.join(outside)}, outside the standard library")
    return Outcome(True, "the answer's program imports only the standard library")


def _dotted(node: ast.expr, aliases: dict[str, str]) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(aliases.get(node.id, node.id))
    return ".".join(reversed(parts))


def _word_count(check: WordCountCheck, answer: ParsedAnswer) -> Outcome:
    words = answer.prose_words
    ok = (check.min is None or words >= check.min) and (check.max is None or words <= check.max)
    return Outcome(ok, f"{words} words of prose (limit {_range_text(check.min, check.max)})")


# ------------------------------------------------------------------------------------------------ shell


def _shell_syntax(answer: ParsedAnswer) -> Outcome:
    script = shell_script(answer)
    if script is None:
        return Outcome(False, "no shell script (```bash, ```sh or ```shell) in the answer")
    bash = shutil.which("bash")
    if bash is None:
        raise _CouldNotRun("bash is not installed, so the syntax cannot be checked")
    with tempfile.TemporaryDirectory(prefix="bench-shell-") as tmp:
        path = Path(tmp) / "script.sh"
        path.write_text(script, encoding="utf-8")
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": tmp}
        # bash -n reads the script without running any of it.
        done = _tool([bash, "-n", path.name], tmp, env)
        if done.returncode != 0:
            first = next((line for line in done.stderr.splitlines() if line.strip()), f"exit status {done.returncode}")
            return Outcome(False, "bash -n: " + first.replace(f"{path.name}: ", "", 1))
        shellcheck = shutil.which("shellcheck")
        if shellcheck is None:
            return Outcome(True, "bash -n passes; shellcheck is not installed")
        command = [shellcheck, "-S", "error", "-f", "gcc"] + ([] if script.startswith("#!") else ["-s", "bash"])
        done = _tool([*command, path.name], tmp, env)
        errors = [line for line in done.stdout.splitlines() if ": error: " in line]
        if errors:
            match = re.match(r"^[^:]*:(\d+):\d+: error: (.*)$", errors[0])
            where = f"line {match.group(1)}: {match.group(2)}" if match else errors[0]
            return Outcome(False, f"shellcheck: {where}" + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""))
        if done.returncode not in (0, 1):
            return Outcome(True, f"bash -n passes; shellcheck could not run (exit status {done.returncode})")
        return Outcome(True, "bash -n passes; shellcheck finds no errors")


def _tool(command: list[str], cwd: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            errors="replace", timeout=SHELL_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise _CouldNotRun(f"{Path(command[0]).name} did not finish in {SHELL_TIMEOUT_S} s") from None


SCRIPT = "script.sh"
# Installs the script where the prompt puts it (when that directory is writable), then runs it N times, one
# after another or started 0.3 s apart, and keeps each run's exit status.
DRIVER = """n=$1
concurrent=$2
INSTALL
pids=""
for i in $(seq 1 "$n"); do
    if [ "$concurrent" = 1 ]; then
        bash ./script.sh >".bench-out-$i" 2>&1 &
        pids="$pids $!"
        sleep 0.3
    else
        bash ./script.sh >".bench-out-$i" 2>&1
        echo $? >".bench-exit-$i"
    fi
done
i=1
for pid in $pids; do
    wait "$pid"
    echo $? >".bench-exit-$i"
    i=$((i + 1))
done
"""


def _shell(check: ShellCheck, answer: ParsedAnswer) -> Outcome:
    name = check.script_path.rsplit("/", 1)[-1] if check.script_path else None
    scripts = shell_scripts(answer, name, tuple(check.stubs))
    if not scripts:
        return Outcome(False, "no shell script (```bash, ```sh or ```shell) in the answer", 0.0)
    target = check.script_path if check.script_path and any(
        check.script_path.startswith(d.rstrip("/") + "/") for d in check.writable_dirs) else f"./{SCRIPT}"
    runner = _cron_runner(answer, name, target)
    outcome = _scenarios(check, scripts[-1], runner)
    # Two scripts the answer offers on an equal footing ("the one I would deploy"): the last is graded; when
    # another behaves differently, the result stands but cannot be certain.
    for alternative in scripts[:-1]:
        other = _scenarios(check, alternative, runner)
        if (other.score, other.passed) != (outcome.score, outcome.passed):
            return Outcome(outcome.passed, outcome.detail, outcome.score, outcome.isolation,
                           f"the answer gives {len(scripts)} scripts that behave differently (another one: "
                           f"{other.detail.split(';')[0]}); the last one is graded")
    return outcome


def _scenarios(check: ShellCheck, script: str, runner: str) -> Outcome:
    # Scenarios are independent sandboxes that mostly wait on stubs and sleeps: run a few at once.
    isolations: set[str] = set()
    zone = _local_zone()
    with ThreadPoolExecutor(SCENARIO_WORKERS) as pool:
        whys = list(pool.map(lambda scenario: _scenario(check, scenario, script, runner, zone, isolations.add),
                             check.scenarios))
    failures = [f"{scenario.name}: {why}" for scenario, why in zip(check.scenarios, whys) if why]
    passed = len(check.scenarios) - len(failures)
    detail = f"{passed} of {len(check.scenarios)} scenarios pass"
    if failures:
        detail += "; " + "; ".join(failures[:2]) + (f"; {len(failures) - 2} more failed" if len(failures) > 2 else "")
    return Outcome(not failures, detail, passed / len(check.scenarios), "; ".join(sorted(isolations)) or None)


def _cron_runner(answer: ParsedAnswer, name: str | None, target: str) -> str:
    """How the script is started: as the answer's crontab line does when it wraps it in flock, else bash.

    The script is installed at ``target`` (the prompt's path when writable), so `$0`, `pgrep -f burndown.sh`
    and a crontab line naming the path all see what they would in production.
    """
    if name:
        for line in crontab_lines(answer):
            words = line.command.split()
            if words and words[0].rsplit("/", 1)[-1] == "flock" and any(w.endswith(name) for w in words):
                words = [w for w in words if not re.match(r"^\d?>>?|^2>&1$", w)]
                cut = next(i for i, w in enumerate(words) if w.endswith(name))
                return " ".join([*words[:cut], "bash", target])
    return f"bash {target}"


def _local_zone() -> str | None:
    """LOCAL_ZONE when this machine can show it as /etc/localtime in the sandbox, else None (TZ is set)."""
    return LOCAL_ZONE if sandbox.local_zone_file(LOCAL_ZONE) and sandbox.isolation().mode == "bubblewrap" else None


def _scenario(check: ShellCheck, scenario: Scenario, script: str, runner: str, zone: str | None = None,
              seen=lambda isolation: None) -> str | None:
    """Why the scenario fails, or None when it passes; ``seen`` is told the isolation it ran under."""
    target = runner.split()[-1]
    install = "" if target == f"./{SCRIPT}" else \
        f'mkdir -p "$(dirname {target})" && cp ./{SCRIPT} {target} && chmod +x {target} || exit 97'
    files = {SCRIPT: script, **{f"bin/{name}": text for name, text in check.stubs.items()},
             "driver.sh": DRIVER.replace("INSTALL", install).replace("bash ./script.sh", runner)}
    # Always through the driver: no process's command line but the script's own names the script.
    argv = ["bash", "driver.sh", str(scenario.runs), "1" if scenario.concurrent else "0"]
    limits = sandbox.Limits(wall_s=check.timeout_s, cpu_s=max(1, math.ceil(check.timeout_s)))
    before = datetime.now(timezone.utc)
    env = dict(scenario.env) if zone else {"TZ": _TZ, **scenario.env}
    run = sandbox.run_program(files, argv, limits, writable_dirs=tuple(check.writable_dirs), env=env,
                              local_zone=zone)
    seen(run.isolation)
    after = datetime.now(timezone.utc)
    if run.timed_out:
        return f"timed out after {check.timeout_s:g} s"
    if run.error and run.exit_code is None:
        raise _CouldNotRun(run.error)
    codes = []
    for i in range(1, scenario.runs + 1):
        raw = run.files.get(f".bench-exit-{i}", "").strip()
        codes.append(int(raw) if raw.lstrip("-").isdigit() else None)
    expect = scenario.expect
    checked = codes[:1] if scenario.concurrent else codes
    for i, code in enumerate(checked, start=1):
        run_name = f"run {i} " if len(checked) > 1 else ""
        if expect.exit == "zero" and code != 0:
            return f"{run_name}exit status {code}, expected 0{_last_words(run, i)}"
        if expect.exit == "nonzero" and code == 0:
            return f"{run_name}exit status 0, expected non-zero"
    calls = [line.split() for line in run.files.get("calls.log", "").splitlines()]
    if expect.stop_calls is not None:
        stops = Counter(words[1] for words in calls if len(words) >= 2 and words[0] == "stop")
        wanted = Counter(expect.stop_calls)
        if stops != wanted:
            return f"`{check.stub} stop` called for {_ids(stops)}, expected {_ids(wanted)}"
    if expect.logged:
        log = run.files.get(check.log_file or "", "")
        if not log.strip():
            return f"nothing written to {check.log_file}"
        for pod in expect.logged:
            lines = _lines_naming(log, pod)
            if not lines:
                return f"no line for {pod} in {check.log_file}"
            if not any(_utc_time_in(line, before, after) for line in lines):
                return f'the line for {pod} has no UTC time: "{_quote(lines[0])}"'
            if len(lines) > 1:
                return f"{len(lines)} lines for {pod} in {check.log_file}, expected one per stopped pod"
        # One log, one clock: every line the script appends with a time of day has it in UTC (a failure line
        # in local time beside UTC stop lines makes the log lie about the order of events).
        for line in log.splitlines():
            if re.search(r"(?<!\d)\d{2}:\d{2}(?!\d)", line) and not _utc_time_in(line, before, after):
                return f'a line of {check.log_file} has a time that is not UTC: "{_quote(line)}"'
        # The logged set is exact: no line says a pod was stopped when its stop failed or it was never idle (a
        # line that says the stop failed is not such a claim).
        for pod in sorted(_scenario_ids(scenario) - set(expect.logged)):
            claims = [line for line in _lines_naming(log, pod) if not _FAILURE_WORDS.search(line)]
            if claims:
                return f'{pod} was not stopped, yet {check.log_file} has a line for it: "{_quote(claims[0])}"'
    return None


_FAILURE_WORDS = re.compile(r"fail|error|could not|couldn't|cannot|unable|skip", re.IGNORECASE)


def _lines_naming(log: str, pod: str) -> list[str]:
    return [line for line in log.splitlines() if re.search(rf"(?<![\w-]){re.escape(pod)}(?![\w-])", line)]


def _scenario_ids(scenario: Scenario) -> set[str]:
    """The IDs a scenario is about: those it expects stopped or logged and those its environment names
    (``gpu-a7:45`` → gpu-a7), never a bare number."""
    ids = set(scenario.expect.stop_calls or []) | set(scenario.expect.logged)
    for value in scenario.env.values():
        for word in re.split(r"[\s,]+", value):
            word = word.split(":", 1)[0]
            if re.fullmatch(r"[A-Za-z][\w.-]*\d[\w.-]*|[A-Za-z][\w.-]*-[\w.-]+", word):
                ids.add(word)
    return ids


def _utc_time_in(line: str, before: datetime, after: datetime) -> bool:
    """A UTC HH:MM (or Unix time) of the run's span is on the line (local time here is UTC+5:45)."""
    start, end = before - timedelta(minutes=1), after + timedelta(minutes=1)
    moments = {(start + timedelta(minutes=m)).strftime("%H:%M") for m in range(int((end - start).total_seconds() // 60) + 1)}
    moments.add(end.strftime("%H:%M"))
    for hour, minute in re.findall(r"(?<!\d)(\d{2}):(\d{2})(?!\d)", line):
        if f"{hour}:{minute}" in moments:
            return True
    for number in re.findall(r"(?<!\d)(\d{10})(?!\d)", line):
        if start.timestamp() <= int(number) <= end.timestamp():
            return True
    return False


def _last_words(run, index: int) -> str:
    text = run.files.get(f".bench-out-{index}", "")
    last = next((line for line in reversed(text.splitlines()) if line.strip()), "")
    return f' ("{_quote(last)}")' if last else ""


def _ids(counts: Counter) -> str:
    if not counts:
        return "none"
    return ", ".join(f"{pod}×{n}" if n > 1 else pod for pod, n in sorted(counts.items()))


# ------------------------------------------------------------------------------------------------- cron

_FIELD = re.compile(r"^[0-9A-Za-z*/,\-]+$")
_TIME_FIELD = re.compile(r"^[0-9*/,\-]+$")
_QUOTED = re.compile(r"""(['"])(.+?)\1""")
_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly", "@reboot"}


@dataclass(frozen=True)
class CronLine:
    schedule: str
    command: str
    problem: str | None  # why it is not a valid 5-field schedule


_SYSTEM_CRONTAB = re.compile(r"/etc/crontab\b|/etc/cron\.d\b")
_USER_CRONTAB = re.compile(r"\bcrontab\s+-(e\b|u\b|l\b|(?=\s|$))|\bcrontab\s+\S+\.(txt|cron)\b")
_BUILTINS = {"cd", "exec", "test", "[", ".", "source", "export", "env", "nice", "ionice", "timeout", "sh", "bash",
             "flock", "run-parts", "sleep", "true", "false", "echo", "printf", "cat", "sudo", "su", "chronic", "logger",
             "cronic", "run-one", "setlock", "lckdo", "solo", "systemd-cat", "systemd-run", "docker", "podctl"}


def crontab_lines(answer: ParsedAnswer) -> list[CronLine]:
    """Every crontab entry the answer gives: in a block, inline code, prose, `echo '…' | crontab -`, cron.d.

    A user field (``*/15 * * * * root /opt/x.sh``) is read as one only when the answer puts the line in a
    system crontab (it names /etc/crontab or /etc/cron.d); in a user crontab (``crontab -e``) cron would run
    ``root`` as the command, so such a line is a problem there.
    """
    system = bool(_SYSTEM_CRONTAB.search(answer.text))
    return [_with_user_field(line, system, _system_block(context)) for line, context in _crontab_lines(answer)]


def _system_block(context: str | None) -> bool:
    """Whether a block (its lead-in and code) puts its lines in /etc/crontab or /etc/cron.d, and nowhere else."""
    return bool(context and _SYSTEM_CRONTAB.search(context) and not _USER_CRONTAB.search(context))


def _with_user_field(line: CronLine, system: bool, system_block: bool = False) -> CronLine:
    words = line.command.split()
    if line.problem or not words:
        return line
    if len(words) >= 2 and _looks_like_user(words[0]):
        if system:
            return CronLine(line.schedule, " ".join(words[1:]), None)
        return CronLine(line.schedule, line.command, f'"{words[0]}" is a user field, which only /etc/crontab and '
                                                      f"/etc/cron.d take: in a user crontab cron runs {words[0]!r} as the command")
    if system_block:  # crontab(5): lines of /etc/crontab and /etc/cron.d name the user before the command
        return CronLine(line.schedule, line.command, f"a line for /etc/cron.d or /etc/crontab needs a user field "
                                                      f"before the command: cron would take {words[0]!r} as the user")
    return line


def _looks_like_user(word: str) -> bool:
    """A user name in the command position: a lower-case name that is no command here (root, www-data, fleet)."""
    if word == "root":
        return True
    return bool(re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", word)) and word not in _BUILTINS and shutil.which(word) is None


def _crontab_lines(answer: ParsedAnswer) -> list[tuple[CronLine, str | None]]:
    """Each crontab line with the block it is in (lead-in and code), or None for inline code and prose."""
    sources = [(line, block.lead + "\n" + block.code) for block in answer.blocks for line in block.code.splitlines()]
    sources += [(text, None) for text in [*answer.inline_code, *answer.prose.splitlines()]]
    found: list[tuple[CronLine, str | None]] = []
    seen: set[tuple[str, str]] = set()
    for source, context in sources:
        for candidate in [source, *(q for _, q in _QUOTED.findall(source))]:
            line = _cron_line(candidate)
            if line and (line.schedule, line.command) not in seen:
                seen.add((line.schedule, line.command))
                found.append((line, context))
    return found


def _cron_line(text: str) -> CronLine | None:
    text = text.strip().strip("`'\"").strip()
    text = re.sub(r"^(\$|#|>)\s+", "", text)
    tokens = text.split()
    if tokens and tokens[0] in _MACROS and len(tokens) >= 2:
        return CronLine(tokens[0], " ".join(tokens[1:]), None)
    if len(tokens) < 6 or not all(_TIME_FIELD.match(t) for t in tokens[:3]):
        return None
    if not all(_FIELD.match(t) for t in tokens[3:5]):
        return None
    # A sixth field of digits, * or ? is a seconds or year field (Quartz, Spring), not a command.
    if re.match(r"^[0-9*/,\-?]+$", tokens[5]):
        return CronLine(" ".join(tokens[:6]), " ".join(tokens[6:]), "6 time fields; crontab takes 5")
    schedule = " ".join(tokens[:5])
    command = " ".join(tokens[5:])
    problem = None if croniter.is_valid(schedule) else "not a valid 5-field schedule"
    if problem is None and re.search(r"(?<!\\)%", command):
        problem = ("an unescaped % in the command: cron turns % into a newline (the rest becomes the command's "
                   "input), so the command is cut there; write \\%")
    return CronLine(schedule, command, problem)


def _cron(check: CronCheck, answer: ParsedAnswer) -> Outcome:
    lines = crontab_lines(answer)
    if check.command:
        lines = [line for line in lines if check.command in line.command]
    if not lines:
        runs = f" running {check.command}" if check.command else ""
        return Outcome(False, f"no crontab line (5 time fields, then a command){runs} in the answer")
    first_problem = None
    for line in lines:
        problem = line.problem or (_fires_every(line.schedule, check.every_minutes) if check.every_minutes else None)
        if problem is None:
            what = f"fires every {check.every_minutes} minutes" if check.every_minutes else "is a valid schedule"
            return Outcome(True, f'"{line.schedule}" {what}')
        first_problem = first_problem or f'"{line.schedule}": {problem}'
    return Outcome(False, first_problem)


def _fires_every(schedule: str, minutes: int) -> str | None:
    """None when ``schedule`` fires exactly every ``minutes`` minutes over two days, else what it does."""
    if schedule.startswith("@"):
        return "a macro schedule, not every %d minutes" % minutes
    start = datetime(2026, 1, 5, tzinfo=timezone.utc)  # a Monday
    end = start + timedelta(days=2)
    times = []
    it = croniter(schedule, start - timedelta(seconds=1))
    while len(times) < 3000:
        moment = it.get_next(datetime)
        if moment >= end:
            break
        times.append(moment)
    gaps = {int((b - a).total_seconds() // 60) for a, b in zip(times, times[1:])}
    if times and gaps == {minutes} and (times[0] - start) < timedelta(minutes=minutes):
        return None
    shown = ", ".join(t.strftime("%H:%M") for t in times[:4])
    return f"fires at {shown}{'…' if len(times) > 4 else ''} ({len(times) // 2} times a day), not every {minutes} minutes"


# --------------------------------------------------------------------------------------------- helpers


def _scope_text(where: str) -> str:
    return {"code": " in code", "prose": " in prose", "all": ""}[where]


def _values_text(values: list[str]) -> str:
    """What was not found: '"x" not found' or 'none of "x", "y" found'."""
    if len(values) == 1:
        return f'"{_quote(values[0])}" not found'
    return "none of " + ", ".join(f'"{_quote(v)}"' for v in values) + " found"


def _range_text(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f"{low}–{high}"
    return f"≥ {low}" if low is not None else f"≤ {high}"


def _quote(text: str) -> str:
    return _one_line(text, QUOTE_CHARS)


def _one_line(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
