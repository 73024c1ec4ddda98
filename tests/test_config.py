"""benchmark.yaml: env expansion, and a broken file gets one message per problem with key path and line."""

from __future__ import annotations

import pytest
from conftest import bench_cli, dedent

from generator import config, source
from generator.errors import ConfigError

GOOD = dedent("""
    title: T
    models:
      - {id: big, model: "gemma3:27b", host: "http://gpu:11434"}
      - {id: small, model: "gemma3:4b"}
    tasks:
      - id: one
        title: One
        prompt: Say one.
        checks:
          - {type: word_count, min: 1, max: 10}
""")


def _replace(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


# name → (file text, env, the one message expected)
BROKEN = {
    "yaml syntax": ("title: T\nmodels: [\n", {}, "line 3, column 1: not valid YAML"),
    "not a mapping": ("- just\n- a list\n", {}, "(top level): expected a mapping with title, models and tasks"),
    "wrong type": (_replace("title: T", "title: [a, b]"), {}, "title (line 1): Input should be a valid string"),
    "unknown key": (_replace("title: T", "title: T\ntitel: U"), {},
                    "titel (line 2): unknown key; check its spelling against the schema ('bench schema')"),
    "duplicate model id": (_replace("id: small", "id: big"), {},
                           "models[1].id (line 4): duplicate id 'big' (also models[0])"),
    "duplicate task id": (GOOD + "  - {id: one, title: Again, prompt: p}\n", {},
                          "tasks[1].id (line 11): duplicate id 'one' (also tasks[0])"),
    "duplicate yaml key": (_replace("title: T", "title: T\ntitle: U"), {}, "line 2, column 1: not valid YAML: key 'title' given twice (first on line 1)"),
    "no tasks": (GOOD[: GOOD.index("tasks:")] + "tasks: []\n", {}, "tasks (line 5): List should have at least 1 item"),
    "no models key": (GOOD[GOOD.index("tasks:"):] + "title: T\n", {}, "models (line 1): required key is missing"),
    "unset env var": (_replace('"http://gpu:11434"', '"${GPU_HOST}"'), {},
                      "models[0].host (line 3): environment variable GPU_HOST is not set; set it or write ${GPU_HOST:-default}"),
    "bad regex": (_replace("{type: word_count, min: 1, max: 10}", '{type: regex, pattern: "a(b"}'), {},
                  "tasks[0].checks[0].pattern (line 10): not a valid regular expression: missing ), unterminated subpattern at position 1"),
    "negative timeout": (_replace("title: T", "title: T\ndefaults: {timeout_s: -5}"), {},
                         "defaults.timeout_s (line 2): Input should be greater than 0"),
    "judge names unknown model": (GOOD + "judge: {model: nobody}\n", {},
                                  "judge.model (line 11): 'nobody' is not the id of a model in `models`"),
    "unknown check type": (_replace("{type: word_count, min: 1, max: 10}", "{type: vibes}"), {},
                           "tasks[0].checks[0] (line 10): unknown check type 'vibes'; use one of python, shell, contains, "
                           "not_contains, regex, calls, word_count, shell_syntax, cron, rubric"),
    "min above max": (_replace("min: 1, max: 10", "min: 50, max: 10"), {},
                      "tasks[0].checks[0] (line 10): min (50) is larger than max (10)"),
    "bad id": (_replace("id: one", "id: One Task"), {},
               "tasks[0].id (line 6): 'One Task' is not a slug; use lowercase a-z, 0-9, '-', '_' and '.'"),
    "bad host": (_replace('"http://gpu:11434"', '"ftp://gpu:11434"'), {},
                 "models[0].host (line 3): expected a host like http://host:11434 or host:11434, received "
                 "'ftp://gpu:11434'"),
    "credentials in host": (_replace('"http://gpu:11434"', '"http://me:pw@gpu:11434"'), {},
                            "models[0].host (line 3): a user:password@ in the host is dropped by the ollama client "
                            "and would never be sent; use headers: {Authorization: ...} instead"),
    "unknown option": (_replace("title: T", "title: T\ndefaults: {options: {temprature: 0.1}}"), {},
                       "defaults.options.temprature (line 2): unknown key"),
    "missing check field": (_replace("{type: word_count, min: 1, max: 10}", "{type: contains}"), {},
                            "tasks[0].checks[0] (line 10): give value or any_of (one of them)"),
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_broken_file_gets_one_clear_message(name, isolated, capsys):
    text, env, expected = BROKEN[name]
    path = isolated / "benchmark.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        config.parse(text, "benchmark.yaml", env)
    assert len(caught.value.problems) == 1, caught.value.problems
    assert caught.value.problems[0].startswith(expected)
    before = sorted(p.name for p in isolated.iterdir())
    assert bench_cli("run", "--config", str(path)) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert err.rstrip().endswith("Fix the file and run 'bench validate' again.")
    assert sorted(p.name for p in isolated.iterdir()) == before  # nothing written, not even a cache


def test_all_problems_are_reported_together():
    text = _replace("title: T", "title: T\nfoo: 1").replace("min: 1, max: 10", "min: 9, max: 2")
    with pytest.raises(ConfigError) as caught:
        config.parse(text, "b.yaml", {})
    assert [p.split(":")[0] for p in caught.value.problems] == ["foo (line 2)", "tasks[0].checks[0] (line 11)"]
    assert str(caught.value).startswith("b.yaml: 2 problems\n  - foo (line 2)")


def test_env_vars_expand_with_and_without_default():
    text = _replace('"http://gpu:11434"', '"${GPU_HOST:-http://fallback:1}"').replace("Say one.", "Hi ${WHO}.")
    bench = config.parse(text, "b.yaml", {"WHO": "there"})
    assert bench.models[0].host == "http://fallback:1"
    assert bench.tasks[0].prompt == "Hi there."
    assert config.parse(text, "b.yaml", {"WHO": "x", "GPU_HOST": "http://set:2"}).models[0].host == "http://set:2"



def test_a_doubled_dollar_keeps_a_literal_brace_variable_in_check_code_and_stubs():
    stub = 'echo "$${1:-none} $${NAME} ${WHO}" >> calls.log; echo $$ $${#ids[@]}'
    text = _replace("      - {type: word_count, min: 1, max: 10}",
                    "      - {type: word_count, min: 1, max: 10}\n"
                    "      - {type: python, code: \"import os\\nX = '$${HOME}'\\ndef test_x(): pass\\n\"}\n"
                    f"      - {{type: shell, stubs: {{podctl: '{stub}'}}, scenarios: [{{name: n}}]}}")
    bench = config.parse(text, "b.yaml", {"WHO": "me", "NAME": "never used", "HOME": "/root"})
    python, shell = bench.tasks[0].checks[1:]
    assert python.code == "import os\nX = '${HOME}'\ndef test_x(): pass\n"
    assert shell.stubs["podctl"] == 'echo "${1:-none} ${NAME} me" >> calls.log; echo $$ ${#ids[@]}'
    assert source.expand("$${UNSET}", {}) == ("${UNSET}", [])

def test_empty_bearer_token_sends_no_header_and_tokens_are_known_secrets():
    text = _replace('host: "http://gpu:11434"}', 'host: "http://gpu:11434", headers: {Authorization: "Bearer ${TOK:-}"}}')
    assert config.parse(text, "b.yaml", {}).models[0].headers == {}
    bench = config.parse(text, "b.yaml", {"TOK": "s3cr3t-token"})
    assert bench.models[0].headers == {"Authorization": "Bearer s3cr3t-token"}
    assert "s3cr3t-token" in bench.secrets()


def test_validate_command(isolated, capsys):
    (isolated / "benchmark.yaml").write_text(GOOD)
    assert bench_cli("validate") == 0
    assert capsys.readouterr().out.strip() == "benchmark.yaml: ok (2 models, 1 tasks, 1 checks)"


def test_missing_file_says_what_to_do(isolated, capsys):
    assert bench_cli("validate", "--config", "nope.yaml") == 2
    assert "nope.yaml: 1 problem\n  - file not found; pass --config PATH or create benchmark.yaml" in capsys.readouterr().err


def test_the_committed_benchmark_is_valid():
    from conftest import ROOT

    bench = config.load(ROOT / "benchmark.yaml", env={})
    assert [m.id for m in bench.models] == ["big-brain", "local"]
    assert len(bench.tasks) == 4


def test_committed_schema_equals_the_generated_one(capsys):
    from conftest import ROOT

    assert bench_cli("schema") == 0
    generated = capsys.readouterr().out
    assert (ROOT / "benchmark.schema.json").read_text() == generated, "run: bench schema > benchmark.schema.json"
    assert (ROOT / "benchmark.yaml").read_text().startswith("# yaml-language-server: $schema=./benchmark.schema.json")


@pytest.mark.parametrize("written, used", [
    ("0.0.0.0:11434", "http://0.0.0.0:11434"),       # OLLAMA_HOST as Ollama's FAQ sets it
    ("localhost:11434", "http://localhost:11434"),
    ("gpu.example", "http://gpu.example:11434"),
    ("https://pod.example/ollama/", "https://pod.example:443/ollama"),
    ("http://[::1]:8080", "http://[::1]:8080"),
])
def test_hosts_are_read_as_the_ollama_client_reads_them(written, used):
    text = f"title: T\nmodels: [{{id: a, model: m, host: '{written}'}}]\ntasks: [{{id: t, title: t, prompt: p}}]\n"
    assert config.parse(text, "b.yaml", {}).models[0].host == used
