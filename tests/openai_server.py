"""An HTTP server on 127.0.0.1 speaking the OpenAI chat completions API (SSE streaming), for the openai provider.

Flavours, as recorded from the real servers (tests/recordings/, compared field by field in
test_recordings.py):
- "openai" (default): a cloud-like API; 404 for a model it does not list.
- "llama.cpp": llama.cpp's server (tools/server/): /health; /v1/models with a "models" list beside "data",
  owned_by "llamacpp" and a "meta" block; it serves its one model whatever "model" says; a first chunk with
  the role and content null; reasoning in delta.reasoning_content; the usage chunk has empty choices and
  carries "timings" (prompt_n, prompt_ms, predicted_n, predicted_ms, predicted_per_second, cache_n);
  cache_n > 0 for a prompt sharing a prefix with the previous one unless the request says cache_prompt: false.
- "ollama": Ollama's /v1 (openai/openai.go): ids carry ":latest", owned_by "library", reasoning in
  delta.reasoning.
- "openai.com": OpenAI's own API: owned_by "system"; the token limit is max_completion_tokens.
"""

from __future__ import annotations

import json
import time

from loopback import LoopbackServer, StreamingHandler


class FakeOpenAI(LoopbackServer):
    """``with FakeOpenAI({"cloud-model": "text"}) as s:``; ``s.url`` ends in /v1; ``s.requests`` logs bodies."""

    def __init__(self, answers: dict[str, str], *, api_key: str | None = None, status: int = 200,
                 flavor: str = "openai", reasoning: str = "", decode_tps: float = 64.0):
        self.answers = answers
        self.api_key = api_key
        self.status = status
        self.flavor = flavor
        self.reasoning = reasoning
        self.decode_tps = decode_tps
        self.requests: list[dict] = []
        self.auth_headers: list[str] = []
        self._last_prompt = ""
        super().__init__(self._handler())

    @property
    def url(self) -> str:
        return f"{self.address}/v1"

    def _ids(self) -> list[str]:
        if self.flavor == "ollama":
            return [m if ":" in m else f"{m}:latest" for m in self.answers]
        return list(self.answers)

    def _models(self) -> dict:
        if self.flavor == "llama.cpp":
            data = [{"id": m, "aliases": [m], "tags": [], "object": "model",
                     "architecture": {"input_modalities": ["text"], "output_modalities": ["text"]},
                     "created": int(time.time()), "owned_by": "llamacpp",
                     "meta": {"vocab_type": 2, "n_vocab": 49152, "n_ctx": 4096, "n_ctx_train": 8192, "n_embd": 576,
                              "n_params": 134515008, "size": 96576768, "ftype": "Q4_1"}} for m in self._ids()]
            models = [{"name": m, "model": m, "modified_at": "", "size": "", "digest": "", "type": "model",
                       "description": "", "tags": [""], "capabilities": ["completion"], "parameters": "",
                       "details": {"parent_model": "", "format": "gguf", "family": "", "families": [""],
                                   "parameter_size": "", "quantization_level": ""}} for m in self._ids()]
            return {"models": models, "object": "list", "data": data}
        owner = {"ollama": "library", "openai.com": "system"}.get(self.flavor, "test")
        return {"object": "list", "data": [{"id": m, "object": "model", "created": 0, "owned_by": owner}
                                           for m in self._ids()]}

    def _answer_for(self, model: str) -> str | None:
        if self.flavor == "llama.cpp":
            return next(iter(self.answers.values()))  # one server, one model, whatever the name
        for name, text in self.answers.items():
            if model.lower() in (name.lower(), f"{name.lower()}:latest"):
                return text
        return None

    def _handler(self):
        server = self

        class Handler(StreamingHandler):
            def _authorized(self) -> bool:
                header = self.headers.get("Authorization", "")
                server.auth_headers.append(header)
                if server.api_key and header != f"Bearer {server.api_key}":
                    self._json(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}})
                    return False
                return True

            def do_GET(self) -> None:
                if self.path == "/health" and server.flavor == "llama.cpp":
                    return self._json(200, {"status": "ok"})
                if not self._authorized():
                    return
                if self.path == "/v1/models":
                    return self._json(200, server._models())
                self._json(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if not self._authorized():
                    return
                server.requests.append(body)
                if server.status != 200:
                    return self._json(server.status, {"error": {"message": "upstream overloaded"}})
                text = server._answer_for(body.get("model", ""))
                if text is None:
                    return self._json(404, {"error": {"message": f"The model `{body.get('model')}` does not exist"}})
                self._stream(body, text)

            def _stream(self, body: dict, text: str) -> None:
                started = time.perf_counter()
                words = text.split(" ")
                limit = body.get("max_completion_tokens" if server.flavor == "openai.com" else "max_tokens")
                finish = "stop"
                if isinstance(limit, int) and limit > 0 and len(words) > limit:
                    words, finish = words[:limit], "length"
                model = body["model"] if server.flavor != "llama.cpp" else next(iter(server.answers))
                base = {"created": int(time.time()), "id": "chatcmpl-hEswHx0SAwg6ZxxFLuQBdhHgfVAr3YsM", "model": model,
                        "system_fingerprint": "b0-unknown", "object": "chat.completion.chunk"}
                self._start_stream("text/event-stream")
                if server.flavor == "llama.cpp":
                    self._event({"choices": [{"finish_reason": None, "index": 0,
                                              "delta": {"role": "assistant", "content": None}}], **base})
                if server.reasoning:
                    key = "reasoning" if server.flavor == "ollama" else "reasoning_content"
                    self._event({"choices": [{"finish_reason": None, "index": 0, "delta": {key: server.reasoning}}],
                                 **base})
                for i, word in enumerate(words):
                    piece = word + (" " if i < len(words) - 1 else "")
                    self._event({"choices": [{"finish_reason": None, "index": 0, "delta": {"content": piece}}], **base})
                self._event({"choices": [{"finish_reason": finish, "index": 0, "delta": {}}], **base})
                prompt = json.dumps(body.get("messages"))
                prompt_n = max(1, len(prompt) // 4)
                usage = {"completion_tokens": len(words), "prompt_tokens": prompt_n,
                         "total_tokens": prompt_n + len(words)}
                last = {"choices": [], **base, "usage": usage}
                if server.flavor == "llama.cpp":
                    shared = 0
                    if body.get("cache_prompt", True):  # the real server keeps the previous prompt's KV cache
                        while (shared < min(len(prompt), len(server._last_prompt))
                               and prompt[shared] == server._last_prompt[shared]):
                            shared += 1
                        shared = min(shared // 4, prompt_n - 1)
                    server._last_prompt = prompt
                    usage["prompt_tokens_details"] = {"cached_tokens": shared}
                    predicted_ms = len(words) / server.decode_tps * 1000
                    evaluated = prompt_n - shared
                    prompt_ms = max((time.perf_counter() - started) * 1000, 0.5)
                    last["timings"] = {
                        "cache_n": shared, "prompt_n": evaluated, "prompt_ms": prompt_ms,
                        "prompt_per_token_ms": prompt_ms / evaluated, "prompt_per_second": evaluated / prompt_ms * 1000,
                        "predicted_n": len(words), "predicted_ms": predicted_ms,
                        "predicted_per_token_ms": predicted_ms / len(words), "predicted_per_second": server.decode_tps}
                if (body.get("stream_options") or {}).get("include_usage") or server.flavor == "llama.cpp":
                    self._event(last)
                self._chunk(b"data: [DONE]\n\n")
                self._end_stream()

            def _event(self, payload: dict) -> None:
                self._chunk(b"data: " + json.dumps(payload).encode() + b"\n\n")

        return Handler
