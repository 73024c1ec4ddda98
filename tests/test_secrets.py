"""Secrets: header values and env-expanded tokens never reach the cache, docs/, results.json, the site or logs."""

from __future__ import annotations

from pathlib import Path

import yaml
from conftest import bench_cli, free_port, write_bench
from site_helpers import mkdocs_build, project

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
