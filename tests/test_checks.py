"""Objective checks: each type passing and failing with the detail a reader sees, and the four real tasks'
checks separating a good sample answer from a bad one."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
import yaml
from pydantic import TypeAdapter

from generator.checks import default_name, prose_words, run_checks
from generator.parse import parse_answer
from generator.program import python_program
from generator.config import Check, RegexCheck, TaskSpec
from generator.sandbox import isolation

HERE = Path(__file__).parent
TASKS = yaml.safe_load((HERE.parent / "benchmark.yaml").read_text(encoding="utf-8"))["tasks"]


def check(answer: str, **spec):
    """Run one check, given as its benchmark.yaml mapping, on a dedented answer."""
    task = TaskSpec(id="t", title="T", prompt="p", checks=[spec])
    (result,) = run_checks(task, textwrap.dedent(answer))
    return result


def fenced(language: str, code: str) -> str:
    return f"```{language}\n{textwrap.dedent(code).strip()}\n```\n"


# ---------------------------------------------------------------------------------------- text checks


def test_contains():
    result = check("Use hmac.compare_digest here.\n", type="contains", value="hmac.compare_digest")
    assert (result.passed, result.detail, result.name) == (True, '"hmac.compare_digest" found on line 1',
                                                           'contains "hmac.compare_digest"')
    result = check("Use ==.\n", type="contains", value="hmac.compare_digest")
    assert (result.passed, result.detail) == (False, '"hmac.compare_digest" not found')


def test_contains_case():
    assert not check("uses TWISTED\n", type="contains", value="Twisted").passed
    result = check("intro\nuses TWISTED\n", type="contains", value="Twisted", case_sensitive=False)
    assert (result.passed, result.detail) == (True, '"Twisted" found on line 2')
    assert result.name == 'contains "Twisted" (any case)'


def test_not_contains():
    result = check("It has a Scripting Language.\n", type="not_contains", value="scripting language",
                   case_sensitive=False)
    assert (result.passed, result.detail) == (False, '"scripting language" found on line 1')
    assert result.name == 'does not contain "scripting language" (any case)'
    assert check("Plain Python.\n", type="not_contains", value="scripting language").passed


def test_regex():
    result = check("a\nBuilt on Twisted.\n", type="regex", pattern=r"\btwisted\b", flags=["IGNORECASE"])
    assert (result.passed, result.detail) == (True, 'matched "Twisted" on line 2')
    assert result.name == r"matches /\btwisted\b/i"
    result = check("Built on asyncio.\n", type="regex", pattern=r"\btwisted\b")
    assert (result.passed, result.detail) == (False, "no match")


def test_regex_expected_absent():
    result = check("a session server\n", type="regex", pattern=r"session[- ]?server", expect=False)
    assert (result.passed, result.detail, result.name) == (False, 'matched "session server" on line 1',
                                                           "does not match /session[- ]?server/")
    assert check("sessions\n", type="regex", pattern=r"session[- ]?server", expect=False).passed


def test_word_count_counts_prose_only():
    answer = "## A heading of five words\n\n" + "word " * 180 + "\n" + fenced("python", "x = 1\n" * 500)
    result = check("<think>\n" + "musing " * 100 + "</think>\n" + answer, type="word_count", min=170, max=230)
    assert (result.passed, result.detail, result.name) == (True, "180 words of prose (limit 170–230)",
                                                           "word count 170–230")
    result = check("word " * 240, type="word_count", min=170, max=230)
    assert (result.passed, result.detail) == (False, "240 words of prose (limit 170–230)")
    assert check("one two", type="word_count", max=5).name == "word count ≤ 5"


def test_prose_words():
    text = ("# Title here\n\n- one, two\n- `three`\n\n~~~\nnot counted at all\n~~~\n* * *\nfour. 5\n"
            "```sh\nunclosed fence\n")
    assert prose_words(text) == 5  # one, two `three` four. 5 (the heading is not prose)


# ------------------------------------------------------------------------------------------ parsing


def test_parse_finds_fences_in_lists_tildes_and_cut_answers():
    answer = parse_answer("1. Step:\r\n   ```py\r\n   x = 1\r\n   ```\r\n2. Then\n\n~~~python3\ny = 2\n~~~\n```bash\necho")
    assert [(b.language, b.tag, b.code, b.line) for b in answer.blocks] == [
        ("python", "py", "x = 1\n", 2), ("python", "python3", "y = 2\n", 7), ("shell", "bash", "echo\n", 10)]


def test_parse_splits_thinking_off():
    for raw in ("<think>\nuse `hmac`\n</think>\n\nAnswer.", "\n<thinking>use `hmac`</thinking>Answer.",
                "Thinking...\nuse `hmac`\n...done thinking.\n\nAnswer."):
        answer = parse_answer(raw)
        assert (answer.text.strip(), answer.thinking) == ("Answer.", "use `hmac`"), raw
    assert parse_answer("<think>cut off while thinking").text == ""


def test_parse_classifies_untagged_blocks():
    languages = [parse_answer(f"```\n{code}\n```\n").blocks[0].language for code in (
        "def f():\n    pass", "#!/bin/sh\necho hi", "*/15 * * * * /opt/x.sh", "crontab -e", "set -euo pipefail\nls",
        "pip install aiohttp now")]
    assert languages == ["python", "shell", "crontab", "shell", "shell", ""]
    assert parse_answer("```zsh\nls\n```\n```Console\n$ ls\n```\n").blocks[1].language == "shell"


def test_scopes_exclude_thinking_and_split_code_from_prose():
    answer = parse_answer("<think>hmac.compare_digest</think>Use `==`.\n\n```python\nok = a == b\n```\n")
    assert "compare_digest" not in answer.scope("all")
    assert answer.scope("code") == "ok = a == b\n" and "ok = a" not in answer.scope("prose")


# ---------------------------------------------------------------------------------- program assembly

PROMPT = parse_answer("Fix it:\n\n```python\nimport aiohttp\n\nasync def fetch(url):\n    \"\"\"Doc.\"\"\"\n"
                      "    return await aiohttp.get(url)\n```\n")


def program(text: str, entry: str | None = None, prompt=PROMPT) -> str:
    built = python_program(parse_answer(textwrap.dedent(text)), prompt, entry)
    return built.code if built else None


def test_program_takes_imports_and_helpers_from_every_block():
    code = program(fenced("python", "import json") + "and\n" + fenced("py", "def f(x):\n    return helper(x)")
                   + fenced("python", "def helper(x):\n    return json.dumps(x)\n\nprint(f(1))"), "f")
    assert code.startswith("import json\n")
    assert "def helper" in code and "print(" not in code


def test_program_never_takes_the_prompts_code_quoted_back():
    fix = fenced("python", "async def fetch(url):\n    return 'fixed'")
    quoted = fenced("python", "import aiohttp\n\nasync def fetch(url):\n    return await aiohttp.get(url)")
    assert "'fixed'" in program(fix + "The original was:\n" + quoted, "fetch")
    assert "'fixed'" in program(quoted + "Fixed:\n" + fix, "fetch")
    only_quoted = program(quoted, "fetch")
    assert "aiohttp.get" in only_quoted  # nothing else to grade: the quote is graded, and fails
    two_fixes = fenced("python", "def fetch(url):\n    return 1") + fenced("python", "def fetch(url):\n    return 2")
    assert "return 2" in program(two_fixes, "fetch") and "return 1" not in program(two_fixes, "fetch")


def test_program_drops_unreachable_code_and_skips_blocks_that_do_not_parse():
    code = program(fenced("python", "def f():\n    return 1\n\ndef test_f():\n    assert f() == 1\n\n"
                                    "if __name__ == '__main__':\n    f()") + fenced("python", "def g(:\n"), "f")
    assert "test_f" not in code and "__main__" not in code and "def f" in code
    assert program("No code.") is None


def test_program_follows_only_free_names_of_the_entry_point():
    # "Step" fragments at top level bind the same names as the function's parameters and locals
    steps = fenced("python", "expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()")
    steps += fenced("python", "payload = json.loads(body)")
    full = fenced("python", "import hmac, hashlib, json\n\nLIMIT = 10\n\ndef parse(body, secret):\n"
                            "    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()\n"
                            "    payload = json.loads(body)\n    return payload if len(body) < LIMIT else expected\n")
    code = program(steps + full, "parse")
    assert "LIMIT = 10" in code and code.count("expected =") == 1 and code.count("payload =") == 1
    compile(code, "answer", "exec")
    # a reached top-level assignment using a name bound nowhere at module level is dropped
    dangling = fenced("python", "TOKEN = secret.strip()\n\ndef f(secret):\n    global TOKEN\n    return TOKEN")
    assert "secret.strip()" not in program(dangling, "f")
    # a helper's global reached from a method and a default argument are still followed
    cls = fenced("python", "RETRIES = 3\nBASE = 2\n\nclass C:\n    def go(self, n=BASE):\n        return RETRIES * n\n\n"
                           "def f():\n    return C().go()")
    assert "RETRIES = 3" in program(cls, "f") and "BASE = 2" in program(cls, "f")


# ------------------------------------------------------------------------------------- scoped checks


def test_contains_in_code_ignores_prose_mentions():
    answer = "Use hmac.compare_digest, I compare with ==.\n" + fenced("python", "ok = sig == expected")
    result = check(answer, type="contains", value="hmac.compare_digest", **{"in": "code"})
    assert (result.status, result.detail, result.name) == (
        "fail", '"hmac.compare_digest" not found in code', 'contains "hmac.compare_digest" in code')
    result = check(answer, type="contains", any_of=["secrets.compare_digest", "hmac.compare_digest"])
    assert (result.passed, result.detail) == (True, '"hmac.compare_digest" found on line 1')


def test_not_contains_negation_aware_in_prose():
    spec = dict(type="not_contains", value="scripting language", case_sensitive=False, negation_aware=True,
                **{"in": "prose"})
    result = check("Games are plain Python: there is no in-game scripting language.\n", **spec)
    assert (result.passed, result.detail) == (
        True, '"scripting language" not found in prose (only in negated sentences: "scripting language")')
    result = check("It has no rooms. Its scripting language is Lua.\n", **spec)
    assert (result.passed, result.detail) == (False, '"scripting language" found in prose on line 1')


def test_calls_follows_imports_and_aliases():
    spec = dict(type="calls", any_of=["hmac.compare_digest", "secrets.compare_digest"], function="verify")
    for code in ("import hmac\ndef verify(a, b):\n    return hmac.compare_digest(a, b)",
                 "from hmac import compare_digest as same\ndef verify(a, b):\n    return same(a, b)",
                 "import secrets\ndef verify(a, b):\n    return secrets.compare_digest(a, b)"):
        assert check(fenced("python", code), **spec).passed, code
    prose_only = "Compare with hmac.compare_digest.\n" + fenced("python", "def verify(a, b):\n    return a == b")
    result = check(prose_only, **spec)
    assert (result.status, result.detail) == (
        "fail", "no call to hmac.compare_digest or secrets.compare_digest in the answer's code reached from verify")
    unused = fenced("python", "import hmac\ndef unused(a, b):\n    return hmac.compare_digest(a, b)\n"
                              "def verify(a, b):\n    return a == b")
    assert not check(unused, **spec).passed


# ------------------------------------------------------------------------------------------- python


ADD_TESTS = """
import answer

def test_small():
    assert answer.add(1, 2) == 3

def test_negative():
    assert answer.add(-1, -1) == -2, "add(-1, -1) should be -2"

def test_strings():
    assert answer.add("a", "b") == "ab", "add('a', 'b') should be 'ab'"
"""


def test_python_check_passes_when_every_test_passes():
    result = check("Here:\n" + fenced("python", "def add(a, b):\n    return a + b"),
                   type="python", code=ADD_TESTS, function="add", critical=True, weight=3)
    assert (result.passed, result.detail, result.name) == (True, "3 of 3 tests pass", "python tests")
    assert (result.critical, result.weight, result.type) == (True, 3, "python")
    assert result.duration_ms > 0


def test_python_check_names_the_first_failures():
    result = check(fenced("python", "def add(a, b):\n    return abs(a) + abs(b)"), type="python", code=ADD_TESTS)
    assert not result.passed
    assert result.detail == (
        "1 of 3 tests pass; test_negative: add(-1, -1) should be -2; "
        "test_strings: TypeError: bad operand type for abs(): 'str' (answer.py line 2)"
    )


def test_python_check_falls_back_to_the_entry_points_block_when_the_program_does_not_import():
    function = fenced("python", "LIMIT = 10\n\ndef add(a, b):\n    return a + b if LIMIT else None")
    config = "In production read it from the environment:\n" + fenced(
        "python", "import os\nLIMIT = int(os.environ['ADD_LIMIT'])")
    result = check(function + config, type="python", code=ADD_TESTS, function="add")
    assert result.passed and "the block defining add was tested alone" in result.doubt
    assert "KeyError" in result.doubt
    assert check(function, type="python", code=ADD_TESTS, function="add").doubt is None


def test_python_check_without_code_or_tests():
    result = check("Just use a + b.", type="python", code=ADD_TESTS)
    assert (result.status, result.detail) == ("fail", "no Python code block in the answer (none that parses)")
    result = check(fenced("python", "def add(a, b):\n    return a + b"), type="python", code="import answer\n")
    assert (result.status, result.detail) == ("error", "could not run: the test code defines no test_* functions")


def test_python_check_reports_a_timeout_once():
    tests = "import answer\ndef test_a():\n    answer.spin()\ndef test_b():\n    pass\n"
    spin = fenced("python", "def spin():\n    while True:\n        pass")
    result = check(spin, type="python", code=tests, timeout_s=1)
    if result.status == "error":  # a machine so busy that the run got under a third of a CPU: not judged
        assert "the machine was too busy" in result.detail, result
        return
    assert (result.passed, result.detail) == (
        False, "0 of 2 tests pass; timed out after 1 s; the sandbox's processes were killed; 2 more failed")


# -------------------------------------------------------------------------------------- shell syntax


def test_shell_syntax_passes_a_valid_script():
    answer = fenced("bash", """
        #!/usr/bin/env bash
        set -euo pipefail
        for f in "$@"; do
            echo "$f"
        done
    """) + fenced("bash", "chmod +x run.sh")
    result = check(answer, type="shell_syntax")
    assert result.passed and result.name == "shell syntax"
    assert result.detail == ("bash -n passes; shellcheck finds no errors" if shutil.which("shellcheck")
                             else "bash -n passes; shellcheck is not installed")


def test_shell_syntax_fails_on_a_syntax_error():
    result = check(fenced("sh", "if true; then\n  echo yes\n"), type="shell_syntax")
    assert (result.passed, result.detail) == (False, "bash -n: line 3: syntax error: unexpected end of file")


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_shell_syntax_fails_on_a_shellcheck_error():
    result = check(fenced("bash", 'if [ "$x" = 1]; then\n  echo one\nfi'), type="shell_syntax")
    assert not result.passed
    assert result.detail.startswith("shellcheck: line 1: ") and "[SC10" in result.detail


def test_shell_syntax_needs_a_shell_block():
    result = check("Run it with cron.\n" + fenced("python", "print(1)"), type="shell_syntax")
    assert (result.passed, result.detail) == (False, "no shell script (```bash, ```sh or ```shell) in the answer")


# ---------------------------------------------------------------------------------------------- cron


def test_cron_finds_a_valid_schedule():
    result = check("Add:\n\n```\n*/15 * * * * /opt/fleet/burndown.sh >/dev/null 2>&1\n```\n", type="cron")
    assert (result.passed, result.detail, result.name) == (True, '"*/15 * * * *" is a valid schedule', "cron schedule")
    assert check("Use `0 9-17 * * MON-FRI /usr/bin/report` daily.", type="cron").passed


def test_cron_rejects_invalid_schedules():
    result = check("```\n0,15,30,45,60 * * * * /opt/x.sh\n```\n", type="cron")
    assert (result.passed, result.detail) == (False, '"0,15,30,45,60 * * * *": not a valid 5-field schedule')
    result = check("```\n0 */15 * * * ? /opt/x.sh\n```\n", type="cron")
    assert result.detail == '"0 */15 * * * ?": 6 time fields; crontab takes 5'
    result = check("Run it every 15 minutes from cron.", type="cron")
    assert (result.passed, result.detail) == (False, "no crontab line (5 time fields, then a command) in the answer")


def test_cron_fails_an_unescaped_percent_in_the_command():
    result = check("```\n*/15 * * * * /opt/x.sh >> /tmp/x-$(date +%Y%m%d).log 2>&1\n```\n", type="cron")
    assert not result.passed and "unescaped % in the command: cron turns % into a newline" in result.detail
    assert check("```\n*/15 * * * * /opt/x.sh >> /tmp/x-$(date +\\%Y\\%m\\%d).log 2>&1\n```\n", type="cron").passed


EVERY_15 = dict(type="cron", every_minutes=15, command="burndown.sh")


def test_cron_schedule_must_fire_at_the_expected_times():
    assert check("```\n5-59/15 * * * * /opt/fleet/burndown.sh\n```\n", **EVERY_15).passed
    result = check("```\n0 */15 * * * /opt/fleet/burndown.sh\n```\n", **EVERY_15)
    assert (result.passed, result.detail) == (
        False, '"0 */15 * * *": fires at 00:00, 15:00, 00:00, 15:00 (2 times a day), not every 15 minutes')
    result = check("```\n*/15 * * * * /opt/other.sh\n```\n", **EVERY_15)
    assert result.detail == "no crontab line (5 time fields, then a command) running burndown.sh in the answer"


@pytest.mark.parametrize("given", [
    "```bash\n(crontab -l 2>/dev/null; echo '*/15 * * * * /opt/fleet/burndown.sh') | crontab -\n```\n",
    "```sh\necho \"*/15 * * * * /opt/fleet/burndown.sh >> /var/log/x 2>&1\" | crontab -\n```\n",
    "Put `*/15 * * * * /opt/fleet/burndown.sh` in your crontab.\n",
    "In /etc/cron.d/fleet:\n\n```\n*/15 * * * * root /opt/fleet/burndown.sh\n```\n",
    "```crontab\n# every quarter hour\n0,15,30,45 * * * * flock -n /tmp/l /opt/fleet/burndown.sh\n```\n",
])
def test_cron_line_is_found_wherever_it_is_given(given):
    assert check(given, **EVERY_15).passed


# --------------------------------------------------------------------------------------------- shell

STUB = """#!/bin/bash
echo "$*" >>"$(dirname "$0")/../calls.log"
[ "$1" = list ] && { [ -n "$FAIL" ] && exit 3; echo pod-a; echo pod-b; }
exit 0
"""


def shell_spec(**expect):
    return dict(type="shell", stubs={"podctl": STUB}, writable_dirs=["/var/log"], log_file="/var/log/x.log",
                scenarios=[{"name": "stops both", "expect": {"exit": "zero", "stop_calls": ["pod-a", "pod-b"],
                                                              "logged": ["pod-a", "pod-b"]}},
                           {"name": "listing fails", "env": {"FAIL": "1"}, "expect": {"exit": "nonzero"}}])


def test_shell_check_runs_scenarios_with_stub_commands():
    good = fenced("bash", """
        set -uo pipefail
        ids=$(podctl list) || exit 1
        for id in $ids; do podctl stop "$id" && echo "$(date -u +%FT%T) $id" >>/var/log/x.log; done
    """)
    result = check(good, **shell_spec())
    assert (result.status, result.detail, result.score) == ("pass", "2 of 2 scenarios pass", 1.0)
    assert result.isolation == isolation().summary
    sloppy = fenced("bash", "for id in $(podctl list); do podctl stop $id; done\necho \"$(date) done\" >>/var/log/x.log")
    result = check(sloppy, **shell_spec())
    assert result.status == "fail" and result.score == 0.0
    assert result.detail == ("0 of 2 scenarios pass; stops both: no line for pod-a in /var/log/x.log; "
                             "listing fails: exit status 0, expected non-zero")
    result = check("Just run podctl by hand.", **shell_spec())
    assert (result.status, result.detail) == ("fail", "no shell script (```bash, ```sh or ```shell) in the answer")


def test_two_scripts_on_an_equal_footing_the_last_is_graded_and_a_difference_is_doubt():
    good = """
        set -uo pipefail
        ids=$(podctl list) || exit 1
        for id in $ids; do podctl stop "$id" && echo "$(date -u +%FT%T) $id" >>/var/log/x.log; done
    """
    faster = "for id in $(podctl list); do podctl stop $id; echo \"$(date -u +%FT%T) $id\" >>/var/log/x.log; done\n"
    result = check(fenced("bash", good) + "A faster version, the one to deploy:\n" + fenced("bash", faster), **shell_spec())
    assert (result.status, result.detail) == ("fail", "1 of 2 scenarios pass; listing fails: exit status 0, expected non-zero")
    assert result.doubt == "the answer gives 2 scripts that behave differently (another one: 2 of 2 scenarios pass); " \
                           "the last one is graded"
    same = check(fenced("bash", good) + "Or, the same:\n" + fenced("bash", good + "\n# done\n"), **shell_spec())
    assert (same.status, same.doubt) == ("pass", None)


def test_executed_checks_carry_the_isolation_they_ran_under_and_static_checks_none():
    answer = fenced("python", "def add(a, b):\n    return a + b")
    executed = check(answer, type="python", code="import answer\n\ndef test_add():\n    assert answer.add(1, 2) == 3\n")
    assert (executed.status, executed.isolation) == ("pass", isolation().summary)
    assert check(answer, type="contains", value="def add").isolation is None


# ---------------------------------------------------------------------------------------- robustness


def test_a_check_that_breaks_is_an_error_not_a_fail():
    broken = RegexCheck.model_construct(type="regex", pattern="(", flags=[], expect=True, name="broken",
                                        critical=True, weight=1.0, where="all")
    task = TaskSpec.model_construct(id="t", title="T", prompt="p", checks=[broken])
    (result,) = run_checks(task, "anything")
    assert (result.status, result.passed, result.name, result.critical) == ("error", False, "broken", True)
    assert result.detail == "the check could not run: error: missing ), unterminated subpattern at position 0"


def test_a_rubric_without_the_judge_is_not_scored():
    result = check("Anything.", type="rubric", must=["says X"], must_not=["says Y"])
    assert (result.status, result.detail) == (
        "error", "not scored: a rubric is graded by the judge model (set `judge:` and run 'bench run')")


def test_default_names_of_every_type():
    specs = [{"type": "python", "code": "x"}, {"type": "contains", "value": "v"}, {"type": "cron"},
             {"type": "regex", "pattern": "a|b", "flags": ["IGNORECASE", "MULTILINE"]}, {"type": "shell_syntax"},
             {"type": "word_count", "min": 3}, {"type": "calls", "any_of": ["a.b", "c.d"]},
             {"type": "not_contains", "any_of": ["x", "y"], "in": "prose"}, {"type": "cron", "every_minutes": 15},
             {"type": "rubric", "must": ["m"]}, {"type": "shell", "stubs": {}, "scenarios": [{"name": "n"}]}]
    names = [default_name(TypeAdapter(Check).validate_python(spec)) for spec in specs]
    assert names == [
        "python tests", 'contains "v"', "cron schedule", "matches /a|b/im", "shell syntax", "word count ≥ 3",
        "calls a.b or c.d", 'does not contain any of "x", "y" in prose', "cron schedule every 15 minutes", "rubric",
        "shell scenarios"]


# ------------------------------------------------------------------------------- the benchmark's tasks


def weighted_pass_rate(results) -> float:
    scored = [r for r in results if r.scored]
    return sum(r.weight for r in scored if r.passed) / sum(r.weight for r in scored)


@pytest.mark.parametrize("raw", TASKS, ids=[t["id"] for t in TASKS])
def test_task_checks_separate_the_good_answer_from_the_bad(raw):
    task = TaskSpec.model_validate(raw)
    good = run_checks(task, (HERE / "samples" / task.id / "good.md").read_text(encoding="utf-8"))
    bad = run_checks(task, (HERE / "samples" / task.id / "bad.md").read_text(encoding="utf-8"))
    assert all(r.passed for r in good if r.critical and r.scored), [r for r in good if not r.passed]
    assert any(r.status == "fail" for r in bad)
    assert weighted_pass_rate(good) > weighted_pass_rate(bad)
    assert any(r.critical for r in task.checks)


def task_check(task_id: str, name: str) -> dict:
    """One check of the shipped benchmark.yaml, as its mapping."""
    return next(c for t in TASKS if t["id"] == task_id for c in t["checks"] if c.get("name") == name)


WEBHOOK = """
    import hashlib, hmac, json

    def parse_gitea_webhook(body, signature, secret):
        if not signature or not signature.isascii():
            raise ValueError("signature")
        expected = hmac.new(secret.encode(), BODY_OF(body), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise ValueError("signature")
        try:
            payload = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ValueError("json")
        if not isinstance(payload, dict):
            raise ValueError("object")
        return payload
"""


def test_webhook_tests_sign_the_raw_bytes_whitespace_included():
    spec = task_check("gitea-webhook", "webhook tests")
    raw = check(fenced("python", WEBHOOK.replace("BODY_OF(body)", "body")), **spec)
    assert raw.passed, raw.detail
    stripped = check(fenced("python", WEBHOOK.replace("BODY_OF(body)", "body.strip()")), **spec)
    assert not stripped.passed and "test_surrounding_whitespace_is_part_of_the_signed_bytes" in stripped.detail


FETCHER = """
    import asyncio
    import aiohttp

    async def fetch_all(urls):
        async with aiohttp.ClientSession() as session:
            async def get(url):
                async with session.get(url) as resp:
                    if resp.status >= 400:
                        raise aiohttp.ClientResponseError(RAISED)
                    return await resp.json()
            return list(await asyncio.gather(*map(get, urls)))
"""


def test_fetcher_tests_take_the_status_only_from_the_error_itself():
    spec = task_check("async-bug", "fetcher tests")
    right = "resp.request_info, resp.history, status=resp.status, message=resp.reason"
    assert check(fenced("python", FETCHER.replace("RAISED", right)), **spec).passed
    wrong = check(fenced("python", FETCHER.replace("RAISED", "resp.status, resp.reason")), **spec)  # status lands in request_info
    assert not wrong.passed and "ClientResponseError with status" in wrong.detail


BURNDOWN = """
    #!/usr/bin/env bash
    set -uo pipefail
    LOCK=/run/lock/burndown.d
    mkdir "$LOCK" 2>/dev/null || exit 0
    RELEASE
    ids=$(podctl list --idle-minutes 30) || exit 1
    failed=0
    while IFS= read -r id; do
        [ -n "$id" ] || continue
        if podctl stop "$id"; then
            echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) stopped $id" >> /var/log/fleet-burndown.log
        else
            failed=1
        fi
    done <<< "$ids"
    END
    exit "$failed"
"""


def test_burndown_scenarios_release_the_lock_on_every_exit_path():
    spec = task_check("fleet-burndown-cron", "burn-down scenarios")
    trapped = BURNDOWN.replace("RELEASE", "trap 'rmdir \"$LOCK\"' EXIT").replace("END", "")
    assert check(fenced("bash", trapped), **spec).passed
    at_end = check(fenced("bash", BURNDOWN.replace("RELEASE", "").replace("END", 'rmdir "$LOCK"')), **spec)
    assert not at_end.passed
    assert "the lock is released after a failed listing" in at_end.detail


def test_evennia_third_process_check_reads_processes_not_components():
    spec = task_check("evennia-architecture", "no third process")
    for invented in ("Evennia also starts a third process, a standalone Django web server.",
                     "It runs three main processes: Portal, Server and web.",
                     "A separate web server process serves the site.", "A separate Django web-server process."):
        assert not check(invented, **spec).passed, invented
    for fine in ("You mostly work in three components: typeclasses, commands and world.",
                 "Evennia runs two processes, the Portal and the Server; there is no third process.",
                 "The web server runs inside the Server process."):
        assert check(fine, **spec).passed, fine
    protocol = task_check("evennia-architecture", "no other Portal-Server protocol")
    assert not check("The two processes communicate over a small internal HTTP/REST API.", **protocol).passed
    for fine in ("The Portal talks to browsers over HTTP and websockets.", "The two processes talk over AMP, not HTTP."):
        assert check(fine, **protocol).passed, fine
    pickled = task_check("evennia-architecture", "entities are not pickled whole")
    for invented in ("Evennia pickles the whole Python instance into a blob.",
                     "All objects are kept in memory and are pickled to disk every minute."):
        assert not check(invented, **pickled).passed, invented
    assert check("Attributes store any picklable value on an object, in the database.", **pickled).passed
    # the limit the prompt states outranks any one heuristic lexical check
    task = next(t for t in TASKS if t["id"] == "evennia-architecture")
    words = next(c for c in task["checks"] if c["type"] == "word_count")
    lexical = [c for c in task["checks"] if c["type"] in ("regex", "contains", "not_contains")]
    assert all(words.get("weight", 1) > c.get("weight", 1) for c in lexical)


def test_burndown_log_keeps_one_clock():
    spec = task_check("fleet-burndown-cron", "burn-down scenarios")
    trapped = BURNDOWN.replace("RELEASE", "trap 'rmdir \"$LOCK\"' EXIT").replace("END", "")
    for clock, passes in (("date -u", True), ("date", False)):
        script = trapped.replace("failed=1", f'failed=1; echo "$({clock} +%FT%T) FAILED $id" >> /var/log/fleet-burndown.log')
        result = check(fenced("bash", script), **spec)
        assert result.passed is passes, result.detail
    assert "has a time that is not UTC" in result.detail


def test_the_tasks_are_the_four_of_the_benchmark():
    assert [t["id"] for t in TASKS] == ["gitea-webhook", "evennia-architecture", "fleet-burndown-cron", "async-bug"]
    for raw in TASKS:
        task = TaskSpec.model_validate(raw)
        assert "PLACEHOLDER" not in task.prompt and task.reference and task.checks


# ---------------------------------------------------------------------------------------- the CLI


def test_bench_check_prints_each_result(isolated, capsys):
    from conftest import bench_cli

    (isolated / "benchmark.yaml").write_text(textwrap.dedent("""
        title: T
        models: [{id: a, model: m}]
        tasks:
          - id: t
            title: T
            prompt: Write add(a, b).
            checks:
              - {type: python, critical: true, code: "import answer\\ndef test_add():\\n    assert answer.add(1, 2) == 3\\n"}
              - {type: contains, value: docstring, in: prose}
              - {type: rubric, must: [says hello]}
    """))
    (isolated / "answer.md").write_text("Here:\n\n```py\ndef add(a, b):\n    return a + b\n```\n")
    assert bench_cli("check", "t", "answer.md") == 0
    assert capsys.readouterr().out.splitlines() == [
        "PASS  python tests (critical, executed test): 1 of 1 tests pass",
        'FAIL  contains "docstring" in prose (static, weak evidence): "docstring" not found in prose',
        "ERROR rubric (model-graded): not scored: a rubric is graded by the judge model (set `judge:` and run "
        "'bench run')",
        "1 passed, 1 failed, 1 not run or not scored",
    ]
    assert bench_cli("check", "nope", "answer.md") == 2
    assert capsys.readouterr().err.strip() == "Error: no task 'nope' in benchmark.yaml; tasks: t"


def test_validate_reports_test_code_that_does_not_compile(isolated, capsys):
    from conftest import bench_cli

    (isolated / "benchmark.yaml").write_text(textwrap.dedent("""
        title: T
        models: [{id: a, model: m}]
        tasks:
          - id: t
            title: T
            prompt: p
            checks:
              - type: python
                code: |
                  import answer

                  def test_x(:
                      pass
    """))
    assert bench_cli("validate") == 2
    assert "tasks[0].checks[0].code (line 10): Python that does not compile: invalid syntax (line 3 of the code)" \
        in capsys.readouterr().err


def test_program_keeps_only_the_imports_its_definitions_use():
    answer = (fenced("python", "import hmac\nimport typing\n\ndef verify(a: 'typing.Any', b):\n    return hmac.compare_digest(a, b)")
              + "Wire it into Flask:\n" + fenced("python", "from flask import Flask, request\nimport pytest\n\napp = Flask(__name__)\n\n"
                                                  "@app.post('/hook')\ndef hook():\n    return verify(request.data, 'x')"))
    code = program(answer, "verify")
    assert code.startswith("import hmac\nimport typing\n") and "flask" not in code and "pytest" not in code


def test_shell_script_from_a_here_document_or_the_real_block():
    from generator.program import shell_script

    installer = fenced("bash", """
        mkdir -p /opt/fleet
        cat > /opt/fleet/burndown.sh <<'EOF'
        #!/bin/bash
        podctl list --idle-minutes 30
        EOF
        chmod +x /opt/fleet/burndown.sh
    """)
    assert shell_script(parse_answer(installer), "burndown.sh") == "#!/bin/bash\npodctl list --idle-minutes 30\n"
    blocks = fenced("bash", "chmod +x /opt/fleet/burndown.sh\ncrontab -e") + fenced("sh", "set -eu\nfor i in 1 2; do echo $i; done")
    assert shell_script(parse_answer(blocks)) == "set -eu\nfor i in 1 2; do echo $i; done\n"


def test_program_salvages_blocks_with_shell_lines_or_repl_prompts():
    code = program(fenced("python", "%pip install aiohttp\nimport json\n\ndef f(x):\n    return json.dumps(x)")
                   + fenced("python", ">>> def g():\n...     return 1\n>>> g()\n1"), None)
    assert code is not None and "def f" in code and "def g():\n    return 1" in code
    assert "def f" in program(fenced("python", "$ pip install x\ndef f():\n    return 1"), "f")


# ----------------------------------------------------------------- held-out shapes (issue 10, second round)

ADD_ONE = "import answer\n\ndef test_add():\n    assert answer.add(2, 3) == 5\n"
ADD = dict(type="python", function="add", code=ADD_ONE)


@pytest.mark.parametrize("lead", [
    "For contrast, the version you often see — **don't do this**:",
    "## ⚠️ A tempting version that is still wrong\n\nIt looks shorter:",
    "Before:",
    "For reference, the original function was:",
])
def test_a_definition_the_answer_rejects_is_not_graded_even_when_last(lead):
    answer = ("Here is the fix:\n\n" + fenced("python", "def add(a, b):\n    return a + b")
              + f"\n{lead}\n\n" + fenced("python", "def add(a, b):\n    return a - b"))
    result = check(answer, **ADD)
    assert (result.status, result.doubt) == ("pass", None)
    assert "rejects" in python_program(parse_answer(answer), None, "add").note


def test_a_cross_in_its_comments_rejects_a_block_and_an_endorsement_wins_back():
    answer = (fenced("python", "def add(a, b):\n    return a + b")
              + "\n" + fenced("python", "def add(a, b):\n    return a - b  # ❌ wrong"))
    assert check(answer, **ADD).passed
    answer = ("The original code was wrong. Here is the fixed version:\n\n" + fenced("python", "def add(a, b):\n    return a + b"))
    assert check(answer, **ADD).passed


def test_unclear_choice_between_different_definitions_is_graded_but_never_clear():
    # Two definitions, nothing tells them apart: the last is graded, and the result says it is not certain.
    answer = fenced("python", "def add(a, b):\n    return a + b") + "\nOr:\n\n" + fenced("python", "def add(a, b):\n    return a * b")
    result = check(answer, **ADD)
    assert result.status == "fail" and "2 definitions of add that behave differently" in result.doubt
    same = fenced("python", "def add(a, b):\n    return a + b") + "\nOr:\n\n" + fenced("python", "def add(x, y):\n    return y + x")
    assert check(same, **ADD).doubt is None  # they agree: nothing to doubt


@pytest.mark.parametrize("code", [
    "_A, _B = 2, 3\n\ndef add(a, b):\n    return a + b + _A - _B + 1",
    "[_A, *_B] = [2, 3]\n\ndef add(a, b):\n    return a + b + _A - _B[0] + 1",
    "_A: int = 1\n\ndef add(a, b):\n    return a + b + _A - 1",
    "try:\n    from math import fsum as _sum\nexcept ImportError:\n    _sum = sum\n\ndef add(a, b):\n    return int(_sum([a, b]))",
    "import sys\nif sys.version_info >= (3, 8):\n    _ONE = 1\nelse:\n    _ONE = 1\n\ndef add(a, b):\n    return a + b + _ONE - 1",
    "import contextlib\nwith contextlib.suppress(ImportError):\n    from operator import add as _add\n\ndef add(a, b):\n    return _add(a, b)",
])
def test_names_bound_at_top_level_in_unusual_forms_are_kept(code):
    result = check(fenced("python", code) + "\n" + fenced("python", "print(add(1, 2))"), **ADD)
    assert result.passed, result.detail


def test_a_main_guard_or_a_block_that_runs_code_stays_out():
    code = "def add(a, b):\n    return a + b\n\nif __name__ == '__main__':\n    raise SystemExit(add(1, 2))\n\ntry:\n    print(add(1, 1))\nexcept Exception:\n    pass"
    program = python_program(parse_answer(fenced("python", code)), None, "add")
    assert "__main__" not in program.code and "print" not in program.code


def test_a_name_error_on_a_name_the_answer_defines_is_a_doubt():
    # _K is bound by a top-level loop, which the assembly leaves out (it runs code): NameError in the tests.
    code = "for _K in range(1):\n    print(_K)\n\ndef add(a, b):\n    return a + b + _K"
    result = check(fenced("python", code), **ADD)
    assert result.status == "fail" and "NameError on _K, which the answer defines" in result.doubt
    local = "def helper():\n    _K = 0\n    return _K\n\ndef add(a, b):\n    return a + b + _K"
    assert check(fenced("python", local), **ADD).doubt is None  # another function's local is no definition


def test_standard_library_only_reads_the_assembled_program():
    spec = dict(type="imports", function="add")
    flask_example = fenced("python", "import math\n\ndef add(a, b):\n    return math.fsum([a, b])") + \
        "\nWiring it into Flask, only as an example:\n\n" + fenced("python", "from flask import Flask\napp = Flask(__name__)\n\n@app.post('/')\ndef hook():\n    return str(add(1, 2))")
    result = check(flask_example, **spec)
    assert (result.passed, result.name) == (True, "standard library only")
    uses_requests = fenced("python", "import requests\n\ndef add(a, b):\n    return requests.post(a, b)")
    result = check(uses_requests, **spec)
    assert (result.passed, result.detail) == (False, "the answer's program imports requests, outside the standard library")


def test_negation_aware_regex_ignores_a_denied_claim():
    spec = dict(type="regex", pattern=r"\bcharacters?\b[^.]{0,40}\bpuppets?\b[^.]{0,30}\baccounts?\b", flags=["IGNORECASE"],
                expect=False, negation_aware=True, **{"in": "prose"})
    assert check("A Character never puppets an Account; an Account puppets a Character.\n", **spec).passed
    assert not check("Each Character puppets an Account.\n", **spec).passed


# Shell: the block that CALLS the stubs is the script, not a longer fake of them written for local testing.
FAKE_PODCTL = """#!/usr/bin/env bash
# fake podctl for trying the script locally
case "${1:-}" in
  list)
    echo pod-a
    echo pod-b
    echo pod-c
    ;;
  stop)
    echo "stopped $2"
    ;;
  *)
    echo "usage: podctl {list|stop}" >&2
    exit 2
    ;;
esac
"""


def test_shell_script_is_the_block_calling_the_stubs_not_a_longer_fake_of_them():
    from generator.program import shell_script
    script = "set -uo pipefail\nids=$(podctl list) || exit 1\nfor id in $ids; do podctl stop \"$id\"; done\n"
    answer = parse_answer("Save as /opt/x/run.sh:\n\n" + fenced("bash", script) + "\nTo try it:\n\n" + fenced("bash", FAKE_PODCTL))
    assert shell_script(answer, "run.sh", ("podctl",)).startswith("set -uo pipefail")
    assert shell_script(answer).startswith("set -uo pipefail")  # even without knowing the stubs: it dispatches on $1


def test_shell_log_set_is_exact_no_line_for_a_failed_stop():
    spec = dict(type="shell", stubs={"podctl": STUB + ""}, writable_dirs=["/var/log"], log_file="/var/log/x.log",
                scenarios=[{"name": "b fails", "env": {"FAIL_STOP": "pod-b"},
                            "expect": {"exit": "nonzero", "stop_calls": ["pod-a", "pod-b"], "logged": ["pod-a"]}}])
    spec["stubs"]["podctl"] = STUB.replace("exit 0\n", '[ "$1" = stop ] && [ "$2" = "$FAIL_STOP" ] && exit 1\nexit 0\n')
    logs_first = fenced("bash", """
        rc=0
        for id in $(podctl list); do
          echo "$(date -u +%FT%T) $id" >>/var/log/x.log
          podctl stop "$id" || rc=1
        done
        exit $rc
    """)
    result = check(logs_first, **spec)
    assert result.status == "fail" and "pod-b was not stopped, yet /var/log/x.log has a line for it" in result.detail
    logs_failure_as_failure = logs_first.replace('echo "$(date -u +%FT%T) $id" >>/var/log/x.log\n  podctl stop "$id" || rc=1',
                                                 'if podctl stop "$id"; then echo "$(date -u +%FT%T) $id" >>/var/log/x.log; '
                                                 'else rc=1; echo "$(date -u +%FT%T) FAILED $id" >>/var/log/x.log; fi')
    assert check(logs_failure_as_failure, **spec).passed


ROOT_IN_USER_CRONTAB = '"root" is a user field'
NO_USER_FIELD = "needs a user field before the command: cron would take '/opt/fleet/burndown.sh' as the user"


@pytest.mark.parametrize("given, problem", [
    ("Run `sudo crontab -e` and add:\n\n```\n*/15 * * * * root /opt/fleet/burndown.sh\n```\n", ROOT_IN_USER_CRONTAB),
    ("Put this in /etc/cron.d/fleet:\n\n```\n*/15 * * * * root /opt/fleet/burndown.sh\n```\n", None),
    ("Add to /etc/crontab:\n\n```\n*/15 * * * * fleet /opt/fleet/burndown.sh\n```\n", None),
    ("```\n*/15 * * * * bash /opt/fleet/burndown.sh\n```\n", None),
    ("Create /etc/cron.d/fleet-burndown containing:\n\n```cron\n*/15 * * * * /opt/fleet/burndown.sh\n```\n", NO_USER_FIELD),
    ("```\n# /etc/crontab\n*/15 * * * * /opt/fleet/burndown.sh\n```\n", NO_USER_FIELD),
    ("Add it with `crontab -e`, or put it in /etc/cron.d with a user field:\n\n```\n*/15 * * * * /opt/fleet/burndown.sh\n```\n",
     None),
    ("Create /etc/cron.d/fleet-burndown containing:\n\n```\n*/15 * * * * root /opt/fleet/burndown.sh\n```\n", None),
])
def test_a_user_field_only_and_always_in_a_system_crontab(given, problem):
    result = check(given, **EVERY_15)
    assert result.passed == (problem is None), result.detail
    if problem:
        assert problem in result.detail


def test_a_claim_refuted_by_the_next_sentence_is_not_made():
    spec = dict(type="not_contains", any_of=["in-game language"], negation_aware=True, **{"in": "prose"})
    assert check('Myths. "Builders write game logic in an in-game language." No. It is all Python.\n', **spec).passed
    assert not check("Builders write game logic in an in-game language. No other engine does.\n", **spec).passed
    assert not check("Builders write game logic in an in-game language. Nothing else is needed.\n", **spec).passed


@pytest.mark.parametrize("lead, rejected", [
    ("For contrast, this is the version you often see — **don't do this**:", True),
    ("## ⚠️ A tempting \"fix\" that is still wrong\n\nIt looks faster:", True),
    ("The naive version looks like this:", True),
    ("For reference, the original function was:", True),
    ("Here is the fixed version of the original function:", False),
    ("The original code had three bugs. Here is the corrected version:", False),
    ("To avoid the race, the script takes a lock:", False),
    ("Don't forget to make it executable:", False),
    ("It checks the signature before any parsing.", False),
])
def test_what_counts_as_the_answer_rejecting_a_block(lead, rejected):
    from generator.program import block_rejected
    assert block_rejected(lead, "x = 1\n") == rejected
