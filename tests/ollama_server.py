"""An HTTP server on 127.0.0.1 that speaks enough of Ollama's API for the official client to drive it.

Endpoints: /api/chat and /api/generate (NDJSON streaming with chunked encoding, and non-streaming),
/api/tags, /api/show, /api/ps, /api/version; errors as {"error": ...} with real status codes.
Configurable per model: answers, thinking, chunk delays, load time (one model in memory at a time if
asked), done_reason, and faults. Every request is logged so tests can count calls.

It replays the shapes recorded from two real Ollama builds (tests/recordings/ollama-0.5.4.txt and
ollama-0.9.3.txt; test_recordings.py compares them field by field; ``version=`` picks the behaviour) and the behaviours read in ollama/ollama's sources: durations in nanoseconds
(api/types.go); digests without the sha256: prefix (manifest/manifest.go); the empty-prompt load reply with
done_reason "load" and no durations (server/routes.go); a reload when load-time options such as num_ctx
change (server/sched.go); HTTP 400 '"<model>" does not support thinking' (server/routes.go); capabilities
in /api/show; names matched case-insensitively, a bare name meaning name:latest (types/model/name.go).
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from loopback import LoopbackServer, StreamingHandler

FAULTS = ("status", "cut", "error_line", "malformed", "hang", "stall", "reset")
LOAD_OPTIONS = ("num_ctx", "num_batch", "num_gpu", "main_gpu", "use_mmap", "num_thread")  # api/types.go Runner


def _now() -> str:
    """created_at as Ollama writes it: RFC 3339 with nanoseconds, UTC."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e9):09d}Z"


@dataclass
class FakeModel:
    """One model tag the server holds."""

    tag: str
    digest: str = "0" * 64
    family: str = "gemma3"
    parameter_size: str = "4.3B"
    quantization_level: str = "Q4_K_M"
    answer: Callable[[str], str] | str | None = None  # prompt → text; None: a default echo
    thinking: str = ""
    chunk_delay_s: float = 0.0
    chunks: int = 4
    first_token_delay_s: float = 0.0
    load_s: float = 0.0
    done_reason: str = "stop"
    fault: str | None = None  # one of FAULTS
    fault_status: int = 500
    fault_body: str = '{"error":"something went wrong"}'
    fault_times: int | None = None  # fail only the first N generation requests, then answer
    capabilities: list[str] | None = None  # None: completion, and thinking when the model has thinking text
    size: int = 3_300_000_000  # bytes the loaded model takes (/api/ps size)
    size_vram: int | None = None  # of which in GPU memory; None: all of it

    def caps(self) -> list[str]:
        if self.capabilities is not None:
            return self.capabilities
        return ["completion"] + (["thinking"] if self.thinking else [])

    def text_for(self, prompt: str) -> str:
        if callable(self.answer):
            return self.answer(prompt)
        if isinstance(self.answer, str):
            return self.answer
        return f"{self.tag} answers: {prompt[:60]}"


@dataclass
class LoggedRequest:
    method: str
    path: str
    body: dict
    headers: dict = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)

    @property
    def generation(self) -> bool:
        """A request that generates text (an empty /api/generate prompt only loads the model)."""
        if self.path == "/api/chat":
            return True
        return self.path == "/api/generate" and bool(self.body.get("prompt"))


class FakeOllama(LoopbackServer):
    """Start with ``with FakeOllama() as server:``; ``server.url`` is its base URL."""

    def __init__(self, models: list[FakeModel] | None = None, *, one_model_at_a_time: bool = False,
                 version: str = "0.12.3"):
        self.models: dict[str, FakeModel] = {m.tag: m for m in (models or [])}
        self.one_model_at_a_time = one_model_at_a_time
        self.version = version
        # Poison and leak tests: rewrite each JSON reply (request, payload) → payload; answer everything
        # with a 307 to this base URL instead.
        self.reply_hook: Callable[[LoggedRequest, Any], Any] | None = None
        self.redirect_to: str | None = None
        self.log: list[LoggedRequest] = []
        self.loaded: list[str] = []
        self.load_options: dict[str, dict] = {}  # tag → load-time options it was loaded with
        self.loads = 0
        self._lock = threading.Lock()
        self._model_lock = threading.Lock()
        super().__init__(self._handler())

    @property
    def url(self) -> str:
        return self.address

    def at_least(self, version: str) -> bool:
        """Whether this server's version is ``version`` or later ("0.5.4-ipexllm-20250407" reads as 0.5.4)."""
        def parts(v: str) -> tuple[int, ...]:
            found = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", v)
            return tuple(int(p or 0) for p in found.groups()) if found else (999,)  # unreadable: the newest
        return parts(self.version) >= parts(version)

    @property
    def modern(self) -> bool:
        """Recorded: Ollama 0.5.4 lists no capabilities in /api/show and ignores think; 0.9.3 lists them and
        answers think on a model without it with 400 (tests/recordings/)."""
        return self.at_least("0.9.0")

    @property
    def reports_context(self) -> bool:
        """/api/ps context_length: added by ollama/ollama#11331 (July 2025, v0.9.6); absent in both recordings."""
        return self.at_least("0.9.6")

    def no_thinking_error(self, asked: str) -> str:
        """The 400 body for think on a model without it: 0.9.3 names the full model (recorded); the current
        source quotes the name asked for (server/routes.go)."""
        if self.at_least("0.10.0"):
            return f'"{asked}" does not support thinking'
        return f"registry.ollama.ai/library/{asked} does not support thinking"

    def add(self, model: FakeModel) -> FakeModel:
        self.models[model.tag] = model
        return model

    # -- what tests read -----------------------------------------------------------------------------

    def generations(self, model: str | None = None) -> list[LoggedRequest]:
        with self._lock:
            return [r for r in self.log if r.generation and (model is None or r.body.get("model") == model)]

    def prompts(self) -> list[str]:
        out = []
        for r in self.generations():
            if r.path == "/api/chat":
                out.append(r.body["messages"][-1]["content"])
            else:
                out.append(r.body["prompt"])
        return out

    # -- model memory ------------------------------------------------------------------------------

    def _load(self, model: FakeModel, options: dict) -> int:
        """Load a model if it is not in memory, or reload it when its load-time options changed (Ollama's
        scheduler does, server/sched.go needsReload); returns the load duration in ns."""
        wanted = {k: v for k, v in (options or {}).items() if k in LOAD_OPTIONS}
        with self._model_lock:
            if model.tag in self.loaded and self.load_options.get(model.tag) == wanted:
                return 100_000
            if model.tag in self.loaded:
                self.loaded.remove(model.tag)
            if self.one_model_at_a_time:
                self.loaded.clear()
            time.sleep(model.load_s)
            self.loaded.append(model.tag)
            self.load_options[model.tag] = wanted
            self.loads += 1
            return int(model.load_s * 1e9) + 100_000

    def find(self, name: str) -> FakeModel | None:
        """Names match case-insensitively; a bare name means name:latest."""
        def norm(tag: str) -> str:
            tag = tag.lower().removeprefix("registry.ollama.ai/").removeprefix("library/")
            return tag if ":" in tag.rsplit("/", 1)[-1] else f"{tag}:latest"

        return next((m for m in self.models.values() if norm(m.tag) == norm(name)), None)

    def _handler(self):
        server = self

        class Handler(StreamingHandler):
            # -- plumbing --
            def _body(self) -> dict:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    return json.loads(raw) if raw else {}
                except json.JSONDecodeError:
                    return {}

            def _line(self, payload: dict) -> None:
                self._chunk(json.dumps(payload).encode() + b"\n")

            def _log(self, body: dict) -> LoggedRequest:
                entry = LoggedRequest(self.command, self.path, body, {k.lower(): v for k, v in self.headers.items()})
                with server._lock:
                    server.log.append(entry)
                self._entry = entry
                return entry

            def _json(self, status: int, payload: dict | str) -> None:
                if server.reply_hook is not None:
                    payload = server.reply_hook(self._entry, payload)
                super()._json(status, payload)

            def _redirected(self) -> bool:
                if server.redirect_to is None:
                    return False
                self.send_response(307)
                self.send_header("Location", server.redirect_to + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return True

            def _model(self, body: dict) -> FakeModel | None:
                return server.find(body.get("model") or body.get("name") or "")

            # -- GET --
            def do_GET(self) -> None:
                self._log({})
                if self._redirected():
                    return
                if self.path == "/api/version":
                    self._json(200, {"version": server.version})
                elif self.path == "/api/tags":
                    self._json(200, {"models": [self._describe(m) for m in server.models.values()]})
                elif self.path == "/api/ps":
                    loaded = [server.models[t] for t in server.loaded if t in server.models]
                    self._json(200, {"models": [self._running(m) for m in loaded]})
                else:
                    self._json(404, {"error": "404 page not found"})

            def _describe(self, m: FakeModel) -> dict:
                return {
                    "name": m.tag, "model": m.tag, "modified_at": "2026-01-01T00:00:00Z", "size": m.size,
                    "digest": m.digest.removeprefix("sha256:"),
                    "details": {"parent_model": "", "format": "gguf", "family": m.family, "families": [m.family],
                                "parameter_size": m.parameter_size, "quantization_level": m.quantization_level},
                }

            def _running(self, m: FakeModel) -> dict:
                entry = self._describe(m)
                del entry["modified_at"]
                num_ctx = server.load_options.get(m.tag, {}).get("num_ctx", 4096)
                return {**entry, "expires_at": "2026-01-01T00:05:00Z",
                        "size_vram": m.size if m.size_vram is None else m.size_vram,
                        **({"context_length": num_ctx} if server.reports_context else {})}

            # -- POST --
            def do_POST(self) -> None:
                body = self._body()
                entry = self._log(body)
                if self._redirected():
                    return
                if self.path == "/api/show":
                    model = self._model(body)
                    if model is None:
                        return self._json(404, {"error": f"model '{body.get('model')}' not found"})
                    shown = {"modelfile": "", "parameters": "num_ctx                        4096",
                             "template": "{{ .Prompt }}", "details": self._describe(model)["details"],
                             "model_info": {"general.architecture": model.family,
                                            "general.parameter_count": 4_300_000_000},
                             "modified_at": "2026-01-01T00:00:00Z"}
                    if server.modern:
                        shown["capabilities"] = model.caps()
                        shown["tensors"] = [{"name": "token_embd.weight", "type": "Q8_0", "shape": [576, 49152]}]
                    return self._json(200, shown)
                if self.path not in ("/api/chat", "/api/generate"):
                    return self._json(404, {"error": "404 page not found"})
                model = self._model(body)
                if model is None:
                    return self._json(404, {"error": f'model "{body.get("model")}" not found, try pulling it first'})
                if body.get("think") and server.modern and "thinking" not in model.caps():
                    return self._json(400, {"error": server.no_thinking_error(str(body.get("model")))})
                if entry.generation and model.fault and self._fault_applies(model):
                    return self._fault(model, body)
                load_ns = server._load(model, body.get("options") or {})
                if not entry.generation:  # empty prompt: load only
                    return self._done_only(model, body, load_ns)
                self._generate(model, body, load_ns)

            def _fault_applies(self, model: FakeModel) -> bool:
                if model.fault_times is None:
                    return True
                return len(server.generations(model.tag)) <= model.fault_times

            def _fault(self, model: FakeModel, body: dict) -> None:
                kind = model.fault
                if kind == "status":
                    return self._json(model.fault_status, model.fault_body)
                if kind == "hang":
                    time.sleep(model.first_token_delay_s or 30)
                    return self._json(200, {"error": "too late"})
                if kind == "reset":
                    self.connection.shutdown(2)
                    self.close_connection = True
                    return None
                self._start_stream("application/x-ndjson")
                first = {"model": body.get("model"), "created_at": _now(), "done": False}
                self._line({**first, **self._piece(body, "partial ")})
                if kind == "cut":
                    self.close_connection = True
                    self.wfile.flush()
                    self.connection.shutdown(2)  # no terminating chunk: the stream is cut
                elif kind == "error_line":
                    self._line({"error": "model runner has unexpectedly stopped"})
                    self._end_stream()
                elif kind == "malformed":
                    self._chunk(b"{this is not json\n")
                    self._end_stream()
                elif kind == "stall":
                    time.sleep(model.chunk_delay_s or 30)
                    self._end_stream()

            def _piece(self, body: dict, text: str, thinking: str = "") -> dict:
                if self.path == "/api/chat":
                    message = {"role": "assistant", "content": text}
                    if thinking:
                        message["thinking"] = thinking
                    return {"message": message}
                out = {"response": text}
                if thinking:
                    out["thinking"] = thinking
                return out

            def _done_only(self, model: FakeModel, body: dict, load_ns: int) -> None:
                # A load-only reply has no durations at all (server/routes.go); load_ns is not reported.
                payload = {"model": body.get("model"), "created_at": _now(), **self._piece(body, ""),
                           "done": True, "done_reason": "load"}
                if body.get("stream", True) is False:
                    return self._json(200, payload)
                self._start_stream("application/x-ndjson")
                self._line(payload)
                self._end_stream()

            def _generate(self, model: FakeModel, body: dict, load_ns: int) -> None:
                prompt = body["messages"][-1]["content"] if self.path == "/api/chat" else body.get("prompt", "")
                text = model.text_for(prompt)
                started = time.perf_counter()
                if model.first_token_delay_s:
                    time.sleep(model.first_token_delay_s)
                n = max(1, min(model.chunks, len(text) or 1))
                size = -(-len(text) // n) if text else 0
                pieces = [text[i: i + size] for i in range(0, len(text), size)] if text else [""]
                think_on = bool(body.get("think")) and model.thinking
                eval_count = max(1, len(text.split()))
                meta = {"model": body.get("model"), "created_at": _now()}  # the name as asked (recorded)
                stream = body.get("stream", True) is not False
                if not stream:
                    time.sleep(model.chunk_delay_s * len(pieces))
                    elapsed = int((time.perf_counter() - started) * 1e9)
                    return self._json(200, {**meta, **self._piece(body, text, model.thinking if think_on else ""),
                                            "done": True, **self._metrics(model, load_ns, elapsed, eval_count)})
                self._start_stream("application/x-ndjson")
                if think_on:
                    self._line({**meta, **self._piece(body, "", model.thinking), "done": False})
                for piece in pieces:
                    if model.chunk_delay_s:
                        time.sleep(model.chunk_delay_s)
                    self._line({**meta, **self._piece(body, piece), "done": False})
                elapsed = int((time.perf_counter() - started) * 1e9)
                self._line({**meta, **self._piece(body, ""), "done": True,
                            **self._metrics(model, load_ns, elapsed, eval_count)})
                self._end_stream()

            def _metrics(self, model: FakeModel, load_ns: int, elapsed_ns: int, eval_count: int) -> dict:
                prompt_ns = 5_000_000
                return {"done_reason": model.done_reason, "total_duration": load_ns + prompt_ns + elapsed_ns,
                        "load_duration": load_ns, "prompt_eval_count": 12, "prompt_eval_duration": prompt_ns,
                        "eval_count": eval_count, "eval_duration": max(elapsed_ns, 1_000_000)}

        return Handler
