"""Shared fixtures: every user path in a temp dir, an Ollama-compatible server on loopback, small benchmarks."""

from __future__ import annotations

import os
import socket
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))

from ollama_server import FakeModel, FakeOllama  # noqa: E402

from generator import cli  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run every test in its own directory with its own cache, and no host from the developer's shell."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    for name in ("OLLAMA_HOST", "BIG_BRAIN_HOST", "BIG_BRAIN_TOKEN", "OLLAMA_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture
def server():
    """A fake Ollama holding two models, big (gemma3:27b) and small (gemma3:4b)."""
    with FakeOllama([FakeModel("gemma3:27b", digest="sha256:" + "b" * 64, parameter_size="27.4B"),
                     FakeModel("gemma3:4b", digest="sha256:" + "a" * 64)]) as s:
        yield s


def free_port() -> int:
    """A loopback port nothing listens on (for 'connection refused')."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_bench(path: Path, *, big_host: str, local_host: str | None = None, tasks: list[dict] | None = None,
                extra: dict | None = None) -> Path:
    """A benchmark.yaml with models big-brain and local and the given tasks (default: 4 small ones)."""
    tasks = tasks or [
        {"id": f"task-{i}", "title": f"Task {i}", "prompt": f"Question number {i}: explain item {i}."}
        for i in range(1, 5)
    ]
    data = {
        "title": "Test bench",
        "defaults": {"options": {"temperature": 0.3, "seed": 42, "num_predict": 256}, "timeout_s": 10},
        "models": [
            {"id": "big-brain", "label": "Big Brain", "model": "gemma3:27b", "host": big_host,
             "hardware": "test GPU"},
            {"id": "local", "label": "Local", "model": "gemma3:4b", "host": local_host or big_host},
        ],
        "tasks": tasks,
        **(extra or {}),
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def bench_cli(*args: str) -> int:
    """Run the CLI in-process like a user would; returns the exit code."""
    return cli.main(list(args))


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip()


__all__ = ["FakeModel", "FakeOllama", "ROOT", "bench_cli", "dedent", "free_port", "write_bench", "os"]
