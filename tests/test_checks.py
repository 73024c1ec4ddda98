"""Objective checks: each type passing and failing with the detail a reader sees, and the four real tasks'
checks separating a good sample answer from a bad one."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
import yaml
from pydantic import TypeAdapter

from generator.checks import default_name, extract_code, prose_words, run_checks
from generator.config import Check, RegexCheck, TaskSpec

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
    answer = "word " * 180 + "\n" + fenced("python", "x = 1\n" * 500)
    result = check(answer, type="word_count", min=170, max=230)
    assert (result.passed, result.detail, result.name) == (True, "180 words (limit 170–230)", "word count 170–230")
    result = check("word " * 240, type="word_count", min=170, max=230)
    assert (result.passed, result.detail) == (False, "240 words (limit 170–230)")
    assert check("one two", type="word_count", max=5).name == "word count ≤ 5"


def test_prose_words():
    text = ("# Title here\n\n- one, two\n- `three`\n\n~~~\nnot counted at all\n~~~\n* * *\nfour. 5\n"
            "```sh\nunclosed fence\n")
    assert prose_words(text) == 7  # Title here one, two `three` four. 5


# ------------------------------------------------------------------------------------- extract_code


def test_extract_code_prefers_the_block_defining_the_function():
    answer = (
        fenced("python", "def parse(x):\n    return x")
        + "Usage:\n"
        + fenced("python", "print(parse(1))")
    )
    assert extract_code(answer, ("python", "py"), "parse") == "def parse(x):\n    return x\n"
    assert extract_code(answer, ("python", "py")) == "print(parse(1))\n"


def test_extract_code_takes_the_last_definition_and_knows_async_def_and_classes():
    answer = fenced("py", "async def fetch():\n    return 1") + fenced("Python", "async def fetch():\n    return 2")
    assert extract_code(answer, ("python", "py"), "fetch").endswith("return 2\n")
    assert extract_code(fenced("python", "class Fetch:\n    pass"), ("python",), "Fetch").startswith("class Fetch")
    nested = fenced("python", "def outer():\n    def fetch():\n        pass") + fenced("python", "x = 1")
    assert extract_code(nested, ("python",), "fetch") == "x = 1\n"  # only top-level definitions count


def test_extract_code_unlabelled_blocks():
    assert extract_code("```\ndef f():\n    pass\n```\n", ("python",), "f") == "def f():\n    pass\n"
    assert extract_code("```\npip install aiohttp now\n```\n", ("python",)) is None
    assert extract_code("```\n#!/usr/bin/env bash\necho hi\n```\n", ("bash", "sh")) == "#!/usr/bin/env bash\necho hi\n"
    assert extract_code("No code here.", ("python",)) is None


def test_extract_code_reads_tilde_indented_and_unclosed_fences():
    assert extract_code("~~~python\nx = 1\n~~~\n", ("python",)) == "x = 1\n"
    assert extract_code("1. Step:\n   ```python\n   x = 1\n   ```\n", ("python",)) == "x = 1\n"
    assert extract_code("```python\nx = 1\n", ("python",)) == "x = 1\n"  # an answer cut off mid-block


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


def test_python_check_without_code_or_tests():
    result = check("Just use a + b.", type="python", code=ADD_TESTS)
    assert (result.passed, result.detail) == (False, "no Python code block in the answer")
    result = check(fenced("python", "def add(a, b):\n    return a + b"), type="python", code="import answer\n")
    assert (result.passed, result.detail) == (False, "the test code defines no test_* functions")


def test_python_check_reports_a_timeout_once():
    tests = "import answer\ndef test_a():\n    answer.spin()\ndef test_b():\n    pass\n"
    spin = fenced("python", "def spin():\n    while True:\n        pass")
    result = check(spin, type="python", code=tests, timeout_s=1)
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
    assert (result.passed, result.detail) == (False, "no shell code block (```bash, ```sh or ```shell) in the answer")


# ---------------------------------------------------------------------------------------------- cron


def test_cron_finds_a_valid_schedule():
    result = check("Add:\n\n```\n*/15 * * * * /opt/fleet/burndown.sh >/dev/null 2>&1\n```\n", type="cron")
    assert (result.passed, result.detail, result.name) == (True, '"*/15 * * * *" on line 4 is a valid schedule',
                                                           "cron schedule")
    assert check("Use `0 9-17 * * MON-FRI /usr/bin/report` daily.", type="cron").passed


def test_cron_rejects_invalid_schedules():
    result = check("```\n0,15,30,45,60 * * * * /opt/x.sh\n```\n", type="cron")
    assert (result.passed, result.detail) == (
        False, '"0,15,30,45,60 * * * *" on line 2 is not a valid 5-field schedule')
    result = check("```\n0 */15 * * * ? /opt/x.sh\n```\n", type="cron")
    assert result.detail == (
        '"0 */15 * * * ?" on line 2 is not a valid 5-field schedule (6 time fields; crontab takes 5)')
    result = check("Run it every 15 minutes from cron.", type="cron")
    assert (result.passed, result.detail) == (False, "no crontab line (5 time fields, then a command) in the answer")


# ---------------------------------------------------------------------------------------- robustness


def test_a_check_that_breaks_becomes_a_failed_result():
    broken = RegexCheck.model_construct(type="regex", pattern="(", flags=[], expect=True, name="broken",
                                        critical=True, weight=1.0)
    task = TaskSpec.model_construct(id="t", title="T", prompt="p", checks=[broken])
    (result,) = run_checks(task, "anything")
    assert (result.passed, result.name, result.critical) == (False, "broken", True)
    assert result.detail == "the check could not run: error: missing ), unterminated subpattern at position 0"


def test_default_names_of_every_type():
    specs = [{"type": "python", "code": "x"}, {"type": "contains", "value": "v"}, {"type": "cron"},
             {"type": "regex", "pattern": "a|b", "flags": ["IGNORECASE", "MULTILINE"]}, {"type": "shell_syntax"},
             {"type": "word_count", "min": 3}]
    names = [default_name(TypeAdapter(Check).validate_python(spec)) for spec in specs]
    assert names == [
        "python tests", 'contains "v"', "cron schedule", "matches /a|b/im", "shell syntax", "word count ≥ 3"]


# ------------------------------------------------------------------------------- the benchmark's tasks


def weighted_pass_rate(results) -> float:
    return sum(r.weight for r in results if r.passed) / sum(r.weight for r in results)


@pytest.mark.parametrize("raw", TASKS, ids=[t["id"] for t in TASKS])
def test_task_checks_separate_the_good_answer_from_the_bad(raw):
    task = TaskSpec.model_validate(raw)
    good = run_checks(task, (HERE / "samples" / task.id / "good.md").read_text(encoding="utf-8"))
    bad = run_checks(task, (HERE / "samples" / task.id / "bad.md").read_text(encoding="utf-8"))
    assert all(r.passed for r in good if r.critical), [r for r in good if not r.passed]
    assert any(not r.passed for r in bad)
    assert weighted_pass_rate(good) > weighted_pass_rate(bad)
    assert any(r.critical for r in task.checks)


def test_the_tasks_are_the_four_of_the_benchmark():
    assert [t["id"] for t in TASKS] == ["gitea-webhook", "evennia-architecture", "fleet-burndown-cron", "async-bug"]
    for raw in TASKS:
        task = TaskSpec.model_validate(raw)
        assert "PLACEHOLDER" not in task.prompt and task.reference and task.checks
