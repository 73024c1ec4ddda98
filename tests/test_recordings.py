"""The fake servers answer with the shapes recorded from real ones (tests/recordings/): field names, JSON types,
units and error bodies, compared field by field. A recorded field the fake lacks, or sends with another type,
fails here; fields newer servers add (capabilities, context_length) may be extra in the fake."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from ollama_server import FakeModel, FakeOllama
from openai_server import FakeOpenAI

RECORDINGS = Path(__file__).parent / "recordings"


def recorded(name: str) -> dict[str, tuple[int, list]]:
    """Each '$ request' section of a recording: its HTTP status and its JSON documents (lines of a stream)."""
    out = {}
    for block in re.split(r"^\$ ", (RECORDINGS / name).read_text(), flags=re.M)[1:]:
        title, _, body = block.partition("\n")
        body, status = body.strip(), 200
        if m := re.search(r"\s*\[HTTP (\d+)\]$", body):
            body, status = body[: m.start()], int(m.group(1))
        if body.startswith("{\n"):
            docs = [json.loads(body)]
        else:
            docs = [json.loads(line.removeprefix("data: ")) for line in body.splitlines()
                    if line.strip() and line.strip() != "data: [DONE]"]
        out[title] = (status, docs)
    return out


def _type(v) -> str:
    if v is None:
        return "null"
    return {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "dict"}[type(v)]


def differences(real, fake, path: str = "", skip: tuple[str, ...] = ()) -> list[str]:
    """Every field of ``real`` that ``fake`` lacks or sends with another JSON type (null in real matches any)."""
    if real is None:
        return []
    if _type(real) != _type(fake):
        return [f"{path or '.'}: real {_type(real)} {real!r:.40}, fake {_type(fake)} {fake!r:.40}"]
    out = []
    if isinstance(real, dict):
        for key, value in real.items():
            if f"{path}.{key}" in skip:
                continue
            if key not in fake:
                out.append(f"{path}.{key}: missing in the fake")
            else:
                out += differences(value, fake[key], f"{path}.{key}", skip)
    elif isinstance(real, list) and real and fake:
        out += differences(real[0], fake[0], f"{path}[0]", skip)
    return out


def _ndjson(response: httpx.Response) -> list[dict]:
    return [json.loads(line) for line in response.text.splitlines() if line.strip()]


def _sse(response: httpx.Response) -> list[dict]:
    return [json.loads(line.removeprefix("data: ")) for line in response.text.splitlines()
            if line.startswith("data: {")]


@pytest.fixture
def ollama():
    with FakeOllama([FakeModel("smollm2:135m", answer="Je suis le mieux en français.", chunks=6, size=298153728,
                               size_vram=0, family="llama", parameter_size="134.52M", quantization_level="Q4_1"),
                     FakeModel("gemma3:270m", parameter_size="268.10M")]) as server:
        yield server


OLLAMA = recorded("ollama-0.5.4.txt")


def test_ollama_version_and_streamed_chat(ollama):
    status, real = OLLAMA["GET /api/version"]
    fake = httpx.get(f"{ollama.url}/api/version").json()
    assert differences(real[0], fake) == []
    _, real = OLLAMA["POST /api/chat stream (smollm2:135m, options seed/temperature/num_predict 24)"]
    lines = _ndjson(httpx.post(f"{ollama.url}/api/chat", json={
        "model": "smollm2:135m", "messages": [{"role": "user", "content": "hi"}],
        "options": {"seed": 42, "temperature": 0, "num_predict": 24}}))
    assert differences(real[0], lines[0]) == [] and set(lines[0]) == set(real[0])
    assert differences(real[-1], lines[-1]) == [] and set(lines[-1]) == set(real[-1])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", lines[0]["created_at"])
    # Durations are integers in nanoseconds, as the real server's (api/types.go).
    assert all(isinstance(lines[-1][k], int) and lines[-1][k] >= 1_000_000
               for k in ("total_duration", "prompt_eval_duration", "eval_duration"))


def test_ollama_load_only_reply_has_no_durations(ollama):
    _, real = OLLAMA["POST /api/generate empty prompt (load only)"]
    fake = httpx.post(f"{ollama.url}/api/generate", json={"model": "smollm2:135m", "prompt": "",
                                                          "stream": False}).json()
    assert set(fake) == set(real[0]) and fake["done_reason"] == "load"


def test_ollama_error_bodies(ollama):
    status, real = OLLAMA["POST /api/chat unknown model"]
    response = httpx.post(f"{ollama.url}/api/chat", json={"model": "nope:1b", "messages": []})
    assert (response.status_code, response.json()) == (status, real[0])
    status, real = OLLAMA["POST /api/show unknown model"]
    response = httpx.post(f"{ollama.url}/api/show", json={"model": "nope:1b"})
    assert (response.status_code, response.json()) == (status, real[0])


def test_ollama_show_and_ps(ollama):
    _, real = OLLAMA["POST /api/show gemma3:270m (model_info/tensors trimmed)"]
    fake = httpx.post(f"{ollama.url}/api/show", json={"model": "gemma3:270m"}).json()
    assert differences(real[0], fake, skip=tuple(f".model_info.{k}" for k in real[0]["model_info"])) == []
    assert "completion" in fake["capabilities"]  # newer servers list capabilities; the probe reads them
    httpx.post(f"{ollama.url}/api/generate", json={"model": "smollm2:135m", "prompt": "", "stream": False})
    _, real = OLLAMA["GET /api/ps"]
    fake = httpx.get(f"{ollama.url}/api/ps").json()
    assert differences(real[0], fake) == []
    assert fake["models"][0]["size_vram"] == 0 and re.fullmatch(r"[0-9a-f]{64}", fake["models"][0]["digest"])


def test_ollama_tag_in_other_case_is_served_under_the_asked_name(ollama):
    status, real = OLLAMA["POST /api/chat, model tag in other case"]
    response = httpx.post(f"{ollama.url}/api/chat", json={
        "model": "SmolLM2:135M", "messages": [{"role": "user", "content": "hi"}], "stream": False})
    assert response.status_code == status and response.json()["model"] == real[0]["model"] == "SmolLM2:135M"
    assert differences(real[0], response.json()) == []


def test_ollama_think_on_a_model_without_it_is_400(ollama):
    # The recorded 0.5.4 build ignored think; current Ollama refuses it (server/routes.go), as the fake does.
    response = httpx.post(f"{ollama.url}/api/chat", json={"model": "smollm2:135m", "think": True,
                                                          "messages": [{"role": "user", "content": "hi"}]})
    assert (response.status_code, response.json()) == (400, {"error": '"smollm2:135m" does not support thinking'})


LLAMA = recorded("llamacpp-server.txt")


def test_llama_cpp_models_and_health():
    with FakeOpenAI({"smollm2:135m": "Bonjour"}, flavor="llama.cpp") as server:
        assert httpx.get(f"{server.address}/health").json() == LLAMA["GET /health"][1][0]
        fake = httpx.get(f"{server.url}/models").json()
    assert differences(LLAMA["GET /v1/models"][1][0], fake) == []


def test_llama_cpp_stream_with_usage_and_timings():
    _, real = LLAMA["POST /v1/chat/completions stream, stream_options.include_usage (temperature 0, seed 42, "
                    "max_tokens 24)"]
    with FakeOpenAI({"smollm2:135m": "Bonjour in French! " * 10}, flavor="llama.cpp") as server:
        chunks = _sse(httpx.post(f"{server.url}/chat/completions", json={
            "model": "anything", "messages": [{"role": "user", "content": "hi"}], "stream": True,
            "max_tokens": 24, "stream_options": {"include_usage": True}}))
    for real_chunk, fake_chunk in ((real[0], chunks[0]), (real[1], chunks[1]), (real[-2], chunks[-2]),
                                   (real[-1], chunks[-1])):
        assert differences(real_chunk, fake_chunk) == []
        assert set(fake_chunk) == set(real_chunk)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": None}
    assert chunks[-2]["choices"][0]["finish_reason"] == "length" and chunks[-1]["choices"] == []
    assert chunks[-1]["model"] == "smollm2:135m"  # its one model, whatever the request named


OLLAMA_09 = recorded("ollama-0.9.3.txt")


@pytest.fixture
def ollama_09():
    with FakeOllama([FakeModel("smollm2:135m", answer="Bonjour! Je suis votre assistant.", chunks=6, size=298153728,
                               size_vram=0, family="llama", parameter_size="134.52M", quantization_level="Q4_1")],
                    version="0.9.3") as server:
        yield server


def test_ollama_09_stream_load_and_errors(ollama_09):
    url = ollama_09.url
    assert differences(OLLAMA_09["GET /api/version"][1][0], httpx.get(f"{url}/api/version").json()) == []
    _, real = OLLAMA_09["POST /api/chat stream (smollm2:135m, options seed/temperature/num_predict 24, num_ctx 2048)"]
    lines = _ndjson(httpx.post(f"{url}/api/chat", json={
        "model": "smollm2:135m", "messages": [{"role": "user", "content": "hi"}],
        "options": {"seed": 42, "temperature": 0, "num_predict": 24, "num_ctx": 2048}}))
    for real_line, fake_line in ((real[0], lines[0]), (real[-1], lines[-1])):
        assert differences(real_line, fake_line) == [] and set(fake_line) == set(real_line)
    _, real = OLLAMA_09["POST /api/generate empty prompt (load only)"]
    fake = httpx.post(f"{url}/api/generate", json={"model": "smollm2:135m", "prompt": "", "stream": False}).json()
    assert set(fake) == set(real[0]) and fake["done_reason"] == "load"
    for title, path, body in (("POST /api/chat unknown model", "/api/chat", {"model": "nope:1b", "messages": []}),
                              ("POST /api/show unknown model", "/api/show", {"model": "nope:1b"}),
                              ("POST /api/chat think true on a non-thinking model", "/api/chat",
                               {"model": "smollm2:135m", "think": True, "stream": False,
                                "messages": [{"role": "user", "content": "hi"}]})):
        status, real = OLLAMA_09[title]
        response = httpx.post(f"{url}{path}", json=body)
        assert (response.status_code, response.json()) == (status, real[0]), title


def test_ollama_09_show_lists_capabilities_and_ps_has_no_context(ollama_09):
    _, real = OLLAMA_09["POST /api/show smollm2:135m (model_info, tensors and modelfile trimmed)"]
    fake = httpx.post(f"{ollama_09.url}/api/show", json={"model": "smollm2:135m"}).json()
    assert differences(real[0], fake, skip=tuple(f".model_info.{k}" for k in real[0]["model_info"])) == []
    assert real[0]["capabilities"] == fake["capabilities"] == ["completion"]
    httpx.post(f"{ollama_09.url}/api/generate", json={"model": "smollm2:135m", "prompt": "", "stream": False})
    _, real = OLLAMA_09["GET /api/ps"]
    fake = httpx.get(f"{ollama_09.url}/api/ps").json()
    assert differences(real[0], fake) == []
    # context_length came with ollama/ollama#11331 (v0.9.6): neither recorded build has it, nor the fake of one.
    assert "context_length" not in real[0]["models"][0] and "context_length" not in fake["models"][0]
