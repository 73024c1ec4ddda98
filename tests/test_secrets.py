"""Secrets: header values and env-expanded tokens never reach the cache, docs/, results.json, the site or logs."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import yaml
from conftest import FakeModel, FakeOllama, bench_cli, free_port, write_bench
from site_helpers import mkdocs_build, project

from generator import config
from generator.safety import Redactor

MARKER = "tok-9d2f7c41-secret-marker"


def _all_text(root: Path) -> str:
    return "".join(p.read_bytes().decode("latin-1") for p in root.rglob("*") if p.is_file())


def test_token_appears_nowhere_but_on_the_wire(server, isolated, monkeypatch, capsys):
    monkeypatch.setenv("BIG_BRAIN_TOKEN", MARKER)
    down = f"http://127.0.0.1:{free_port()}"
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url, local_host=down,
                        tasks=[{"id": "t", "title": "T", "prompt": "Hello."}])
    data = yaml.safe_load(bench.read_text())
    data["models"][0]["headers"] = {"Authorization": "Bearer ${BIG_BRAIN_TOKEN}", "X-Extra": "${BIG_BRAIN_TOKEN}"}
    data["report"] = {"show_hosts": False}
    bench.write_text(yaml.safe_dump(data, sort_keys=False))

    assert bench_cli("run", "--config", str(bench)) == 0
    assert bench_cli("status", "--config", str(bench)) == 0
    assert bench_cli("render", "--config", str(bench)) == 0
    built = mkdocs_build(project(isolated), isolated / "site")
    assert built.returncode == 0, built.stderr
    logs = capsys.readouterr()

    sent = [r for r in server.log if r.path == "/api/chat"]
    assert sent, "the model was called"
    # The token did reach the server, so the test would notice if it leaked anywhere else.
    assert all(r.headers.get("authorization") == f"Bearer {MARKER}" for r in sent)
    for where, text in {"cache": _all_text(isolated / "cache"), "docs": _all_text(isolated / "docs"),
                        "site": _all_text(isolated / "site"), "stdout": logs.out, "stderr": logs.err,
                        "mkdocs output": built.stdout + built.stderr}.items():
        assert MARKER not in text, f"the token leaked into {where}"
    docs = _all_text(isolated / "docs") + _all_text(isolated / "site")
    assert server.url not in docs and down not in docs  # show_hosts: false, even inside failure reasons
    assert "redacted" in (isolated / "docs" / "big-brain-benchmark.md").read_text()


# -- servers that echo credentials back ------------------------------------------------------------------

KEY = "olk-51c0ffee-api-key-marker"  # OLLAMA_API_KEY


def _fragments(secret: str, size: int = 8) -> set[str]:
    return {secret[i: i + size] for i in range(len(secret) - size + 1)}


def _leaks(text: str, *secrets: str) -> list[str]:
    return sorted(f for s in secrets for f in _fragments(s) if f in text)


def _echo(request, payload):
    """Put the request's credentials into every reply: version, /api/show details, error bodies."""
    said = " ".join(filter(None, (request.headers.get("authorization"), request.headers.get("x-api-key"))))
    if request.path == "/api/version":
        return {"version": f"0.12.3 {said}"}
    if request.path == "/api/show" and isinstance(payload, dict) and "details" in payload:
        return {**payload, "details": {**payload["details"], "family": said, "parameter_size": said}}
    if isinstance(payload, str):  # a fault body: the token after 180 characters, so the reason cuts it
        return json.dumps({"error": "x" * 180 + f" {said} \x1b[2J\x1b]0;owned\x07 " + "y" * 100})
    return payload


def test_echoed_credentials_are_redacted_everywhere_and_ollama_api_key_goes_only_where_given(
        server, isolated, monkeypatch, capsys):
    monkeypatch.setenv("BIG_BRAIN_TOKEN", MARKER)
    monkeypatch.setenv("OLLAMA_API_KEY", KEY)
    server.reply_hook = _echo
    with FakeOllama([FakeModel("gemma3:4b", fault="status", fault_status=500)]) as failing:
        failing.reply_hook = _echo
        bench = write_bench(isolated / "benchmark.yaml", big_host=server.url, local_host=failing.url,
                            tasks=[{"id": "t", "title": "T", "prompt": "Hello."}],
                            extra={"defaults": {"retries": 0}})
        data = yaml.safe_load(bench.read_text())
        data["models"][0]["headers"] = {"Authorization": "Bearer ${BIG_BRAIN_TOKEN}", "X-Api-Key": "${OLLAMA_API_KEY}"}
        data["models"].append({"id": "keyed", "model": "gemma3:4b", "host": failing.url,
                               "headers": {"Authorization": "Bearer ${OLLAMA_API_KEY}"}})
        bench.write_text(yaml.safe_dump(data, sort_keys=False))

        assert bench_cli("run", "--config", str(bench)) == 0
        assert bench_cli("status", "--config", str(bench)) == 0
        assert bench_cli("status", "--json", "--config", str(bench)) == 0
        assert bench_cli("render", "--config", str(bench)) == 0
        built = mkdocs_build(project(isolated), isolated / "site")
        assert built.returncode == 0, built.stderr
        logs = capsys.readouterr()

        # OLLAMA_API_KEY reached only the model whose headers name it; 'local' has no Authorization at all.
        sent = {(r.headers.get("authorization"), r.body.get("model")) for r in failing.log if r.path == "/api/chat"}
        assert (None, "gemma3:4b") in sent and (f"Bearer {KEY}", "gemma3:4b") in sent
        assert all(r.headers.get("authorization") == f"Bearer {MARKER}" for r in server.log)
        # The echoes happened, so the test would see a leak.
        assert "[secret]" in logs.out and "0.12.3 Bearer [secret] [secret]" in (isolated / "docs" / "results.json").read_text()
        outputs = {"stdout": logs.out, "stderr": logs.err, "mkdocs": built.stdout + built.stderr,
                   "cache": _all_text(isolated / "cache"), "docs": _all_text(isolated / "docs"),
                   "site": _all_text(isolated / "site")}
        for where, text in outputs.items():
            assert _leaks(text, MARKER, KEY) == [], f"a secret leaked into {where}"
        assert "\x1b" not in logs.out + logs.err and "\\x1b[2J\\x1b]0;owned\\x07" in logs.out
        assert f"HTTP 500 from {failing.url}: {'x' * 180} Bearer [secret]…" in logs.out  # the token cut at 200


def test_a_redirect_to_another_origin_is_not_followed_and_sends_nothing_there(isolated, monkeypatch, capsys):
    monkeypatch.setenv("BIG_BRAIN_TOKEN", MARKER)
    with FakeOllama([FakeModel("gemma3:27b"), FakeModel("gemma3:4b")]) as elsewhere, \
            FakeOllama([FakeModel("gemma3:27b")]) as redirecting:
        redirecting.redirect_to = elsewhere.url
        bench = write_bench(isolated / "benchmark.yaml", big_host=redirecting.url, local_host=elsewhere.url,
                            tasks=[{"id": "t", "title": "T", "prompt": "Hello."}])
        data = yaml.safe_load(bench.read_text())
        data["models"][0]["headers"] = {"X-Api-Key": "${BIG_BRAIN_TOKEN}", "Authorization": "Bearer ${BIG_BRAIN_TOKEN}"}
        data["models"].append({"id": "compat", "provider": "openai", "model": "gemma3:27b",
                               "base_url": redirecting.url + "/v1", "headers": {"X-Api-Key": "${BIG_BRAIN_TOKEN}"}})
        bench.write_text(yaml.safe_dump(data, sort_keys=False))
        assert bench_cli("run", "--config", str(bench)) == 0
        out = capsys.readouterr().out
        assert bench_cli("status", "--config", str(bench)) == 0
        status = capsys.readouterr().out
        # Nothing reached the other origin but the model configured there.
        assert {r.headers.get("x-api-key") for r in elsewhere.log} == {None}
        assert all(r.headers.get("authorization") is None for r in elsewhere.log)
        assert out.strip().endswith("3 cells: 0 cached, 1 called, 2 failed")
        expected = (f"{redirecting.url} redirected the request to another origin ({elsewhere.url}); it was not "
                    f"followed, so the model's credentials stay with its host: set host to the final URL")
        assert f"t × big-brain  failed     {expected}" in status
        assert f"{redirecting.url}/v1 redirected" in status
        assert MARKER not in out + status


def test_the_redactor_knows_every_secret_of_the_benchmark_and_their_pieces(isolated):
    # An Ollama host refuses user:password@ (the ollama client drops it); an OpenAI base URL sends it.
    bench = write_bench(isolated / "benchmark.yaml", big_host="http://gpu.example:11434",
                        tasks=[{"id": "t", "title": "T", "prompt": "Hello."}])
    data = yaml.safe_load(bench.read_text())
    data["models"][0]["headers"] = {"Authorization": "Bearer tok-aaaa-bbbb-cccc", "X-Api-Key": "xkey-1234-5678"}
    data["models"].append({"id": "cloud", "provider": "openai", "model": "m",
                           "base_url": "https://user:pa55w0rd-x@api.example/v1",
                           "api_key_env": "CLOUD_KEY"})
    bench.write_text(yaml.safe_dump(data, sort_keys=False))
    env = {"CLOUD_KEY": "sk-cloud-0000-1111", "OLLAMA_API_KEY": "olk-2222-3333", "UNRELATED": "not-a-secret"}
    redact = Redactor.for_benchmark(config.load(bench), env)
    assert set(redact.secrets) == {"tok-aaaa-bbbb-cccc", "xkey-1234-5678", "sk-cloud-0000-1111", "olk-2222-3333",
                                   "pa55w0rd-x"}
    assert redact("Authorization: Bearer tok-aaaa-bbbb-cccc, key xkey-1234-5678") == \
        "Authorization: Bearer [secret], key [secret]"
    assert redact("echo: ...bbbb-cccc and sk-cloud-00…") == "echo: ...[secret] and [secret]…"
    assert redact("cut at the end: olk-2") == "cut at the end: [secret]"
    assert redact("ordinary text: tok- and 1234 and not-a-secret") == "ordinary text: tok- and 1234 and not-a-secret"


def test_a_basic_credential_is_redacted_encoded_and_decoded():
    class Model:
        headers = {"Authorization": "Basic " + base64.b64encode(b"ana:pa55/w0rd+x").decode()}
        api_key_env = None
        host = "http://h:1"

    class Bench:
        models = [Model()]

    redact = Redactor.for_benchmark(Bench(), env={})
    token = Model.headers["Authorization"].split()[1]
    assert redact(f"got {token}, user ana:pa55/w0rd+x, quoted pa55%2Fw0rd%2Bx") == \
        "got [secret], user [secret], quoted [secret]"


def test_redacting_a_long_echo_stays_fast():
    token = "tok-9d2f7c41-secret-marker-0123456789"
    redact = Redactor([token])
    start = time.perf_counter()
    assert redact((token + " ") * 50_000 + ("x" * 1000 + token[:12] + " ") * 2000).count(token[:8]) == 0
    assert time.perf_counter() - start < 2
