"""How models are reached: one Provider class per kind of server; the rest of the pipeline never imports ollama.

A provider answers three questions: what is this model on the server (probe), load it (warm_up), and
answer one request (complete). Every failure leaves as a ProviderError with a one-line reason.
The clients (ollama, openai, httpx) are imported by the provider that needs them, so a run that calls no
model, and every other command, does not pay for them.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from .config import OPENAI_EXTRA_OPTIONS, OPENAI_OPTIONS, ModelSpec
from .errors import ProviderError
from .head_start import LOAD_OPTIONS, load_ms
from .records import Completion, ModelDetails
from .safety import CrossOriginRedirect, request_guard


@dataclass(frozen=True)
class Request:
    """What is sent for one cell. Everything here except the timeout is part of the cache key."""

    model: str
    prompt: str
    system: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    think: bool | None = None

    def messages(self) -> list[dict[str, str]]:
        system = [{"role": "system", "content": self.system}] if self.system else []
        return system + [{"role": "user", "content": self.prompt}]

    def load_options(self) -> dict[str, Any]:
        """The options that decide how the model is loaded: Ollama reloads a model when these change
        (ollama/ollama api/types.go Runner options; server/sched.go needsReload)."""
        return {k: v for k, v in self.options.items() if k in LOAD_OPTIONS}




def passable_options(provider: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options a provider kind can send; the others are neither sent nor part of the cache key."""
    if provider == "openai":
        return {k: v for k, v in options.items() if k in OPENAI_OPTIONS | OPENAI_EXTRA_OPTIONS}
    return dict(options)


class Provider(ABC):
    """One model server. Implementations raise ProviderError and nothing else."""

    @abstractmethod
    def probe(self, model: str) -> ModelDetails:
        """What the server knows about ``model``; ProviderError(kind='not_found') when it lacks it."""

    @abstractmethod
    def warm_up(self, model: str, load_options: dict[str, Any] | None = None) -> float:
        """Load ``model`` with the load-time options of the calls that follow, without generating; returns the
        wall time in ms."""

    def placement(self, model: str) -> dict[str, int]:
        """Where the loaded model sits: context_length, size_bytes, vram_bytes (those the server reports)."""
        return {}

    def unsent(self, request: Request) -> list[str]:
        """Names of the request's options this server will not get (known after probe)."""
        return []

    @abstractmethod
    def complete(self, request: Request) -> Completion:
        """Answer one request, streaming, with its measurements."""


def _ms(ns: int | None) -> float | None:
    return None if ns is None else round(ns / 1e6, 3)


def _one_line(text: str, limit: int = 200) -> str:
    text = re.sub(r"<[^>]+>", " ", str(text))  # a proxy's HTML error page becomes its words
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def redact_url(url: str) -> str:
    """A URL with any user:password removed, for messages."""
    return re.sub(r"//[^/@]+@", "//", url)


class _Stream:
    """Clock and size of one streamed answer: time to first token, the deadline and the size cap."""

    def __init__(self, timeout_s: float, max_chars: int):
        self.start = time.perf_counter()
        self.timeout_s, self.max_chars = timeout_s, max_chars
        self.ttft_ms: float | None = None
        self.size = 0

    def took(self, *pieces: str) -> None:
        """Account for one chunk; raises when the answer is too long or too late."""
        now = time.perf_counter()
        if self.ttft_ms is None and any(pieces):
            self.ttft_ms = round((now - self.start) * 1000, 3)
        self.size += sum(map(len, pieces))
        if self.size > self.max_chars:
            raise ProviderError(f"the answer passed max_answer_chars={self.max_chars} and was dropped",
                                kind="too_large")
        if now - self.start > self.timeout_s:
            raise ProviderError(f"the answer took longer than timeout_s={self.timeout_s:g}s", kind="timeout")

    def elapsed_ms(self) -> float:
        return round((time.perf_counter() - self.start) * 1000, 3)


_tls_lock = threading.Lock()
_tls: list[Any] = []


def _tls_context() -> Any:
    """One TLS context for every client of a run: building one (loading the CA bundle) takes 20-40 ms, paid
    otherwise by each model before its first call."""
    with _tls_lock:
        if not _tls:
            import httpx

            _tls.append(httpx.create_ssl_context())
        return _tls[0]


def _same_tag(wanted: str, served: str) -> bool:
    """Ollama matches names case-insensitively (types/model/name.go, EqualFold) and fills in the defaults:
    gemma3 is registry.ollama.ai/library/gemma3:latest."""
    def norm(tag: str) -> str:
        tag = tag.lower().removeprefix("registry.ollama.ai/").removeprefix("library/")
        return tag if ":" in tag.rsplit("/", 1)[-1] else f"{tag}:latest"

    return norm(wanted) == norm(served)


def _import_httpx() -> None:
    """Import httpx without its command-line client: httpx/__init__ imports httpx._main, which pulls in
    click, pygments and rich (~70 ms of CPU, measured) only to offer the `httpx` command, never used here. A
    None in sys.modules makes that import fail, and httpx falls back to a stub `main` (its own code path for a
    missing CLI extra); the None is removed afterwards, so an explicit `import httpx._main` still works."""
    if "httpx" in sys.modules or "httpx._main" in sys.modules:
        return
    sys.modules["httpx._main"] = None  # type: ignore[assignment]
    try:
        import httpx  # noqa: F401
    finally:
        if "httpx._main" in sys.modules and sys.modules["httpx._main"] is None:
            del sys.modules["httpx._main"]


class OllamaProvider(Provider):
    """A model behind an Ollama server, through the official ``ollama`` client."""

    def __init__(self, spec: ModelSpec, timeout_s: float, max_answer_chars: int = 2_000_000):
        _import_httpx()
        import httpx
        import ollama

        self.spec = spec
        self.host = spec.host
        self.timeout_s = timeout_s
        self.max_answer_chars = max_answer_chars
        timeout = httpx.Timeout(timeout_s, connect=min(10.0, timeout_s))
        # The client would send $OLLAMA_API_KEY to any host without an Authorization header of its own: only
        # an Authorization the model's headers give is sent, and never to another origin.
        guard = request_guard(spec.host, shown_host=redact_url(spec.host),
                              send_authorization=any(k.lower() == "authorization" for k in spec.headers))
        self._client = ollama.Client(host=spec.host, headers=spec.headers or None, timeout=timeout,
                                     event_hooks={"request": [guard]}, verify=_tls_context())

    def probe(self, model: str) -> ModelDetails:
        with self._errors(model):
            # The client has no call for /api/version; its raw request keeps the same error handling.
            version = self._client._request_raw("GET", "/api/version").json().get("version")
            tags = self._client.list()
            entry = next((m for m in tags.models if _same_tag(model, m.model or "")), None)
            if entry is None:
                raise ProviderError(
                    f"model {model} is not on {redact_url(self.host)}: run 'ollama pull {model}' there",
                    kind="not_found",
                )
            shown = self._client.show(entry.model)
        capabilities = list(shown.capabilities) if shown.capabilities is not None else None
        if self.spec.think and capabilities is not None and "thinking" not in capabilities:
            # Asked anyway, Ollama answers HTTP 400 '"<model>" does not support thinking' (server/routes.go).
            raise ProviderError(
                f"{model} does not support thinking (its capabilities: {', '.join(capabilities) or 'none'}); "
                f"remove think: true from model {self.spec.id} or choose a thinking model", kind="unsupported")
        details = shown.details or entry.details
        return ModelDetails(
            digest=entry.digest,
            family=details.family if details else None,
            parameter_size=details.parameter_size if details else None,
            quantization_level=details.quantization_level if details else None,
            format=details.format if details else None,
            server_version=version,
            server="ollama",
            capabilities=capabilities,
        )

    def warm_up(self, model: str, load_options: dict[str, Any] | None = None) -> float:
        start = time.perf_counter()
        with self._errors(model):
            # An empty prompt only loads the model (the reply has done_reason "load" and no durations,
            # server/routes.go). It must carry the timed calls' load options, or their first call reloads it.
            self._client.generate(model=model, prompt="", options=load_options or None)
        own = round((time.perf_counter() - start) * 1000, 3)
        # A head start asked for this load earlier; that request waited for all of it, this one for the rest.
        earlier = load_ms(self.host, model, load_options or {}, sent_at=start)
        return earlier if earlier is not None else own

    def placement(self, model: str) -> dict[str, int]:
        try:
            with self._errors(model):
                running = self._client.ps().models
        except ProviderError:
            return {}  # /api/ps is informative only
        entry = next((m for m in running if _same_tag(model, m.model or m.name or "")), None)
        if entry is None:
            return {}
        found = {"context_length": entry.context_length, "size_bytes": entry.size, "vram_bytes": entry.size_vram}
        return {k: int(v) for k, v in found.items() if v is not None}

    def complete(self, request: Request) -> Completion:
        clock = _Stream(self.timeout_s, self.max_answer_chars)
        text: list[str] = []
        thinking: list[str] = []
        final = None
        with self._errors(request.model):
            stream = self._client.chat(model=request.model, messages=request.messages(),
                                       options=request.options or None, think=request.think, stream=True)
            try:
                for part in stream:
                    text.append(part.message.content or "")
                    thinking.append(part.message.thinking or "")
                    clock.took(text[-1], thinking[-1])
                    final = part if part.done else final
            finally:
                stream.close()
        if final is None:
            raise ProviderError("the stream ended before the answer was complete (no done message)", kind="cut")
        eval_ms = _ms(final.eval_duration)  # durations are nanoseconds (api/types.go)
        rate = round(final.eval_count / (eval_ms / 1000), 2) if final.eval_count and eval_ms else None
        return Completion(
            text="".join(text),
            thinking="".join(thinking),
            done_reason=final.done_reason,
            latency_ms=clock.elapsed_ms(),
            ttft_ms=clock.ttft_ms,
            load_ms=_ms(final.load_duration),
            total_ms=_ms(final.total_duration),
            prompt_eval_ms=_ms(final.prompt_eval_duration),
            eval_ms=eval_ms,
            prompt_eval_count=final.prompt_eval_count,
            eval_count=final.eval_count,
            tokens_per_s=rate,
            tokens_per_s_source="server" if rate is not None else None,
        )

    def _errors(self, model: str) -> _ErrorMap:
        return _OllamaErrors(redact_url(self.host), model, self.timeout_s)


def _server_kind(owners: set[str]) -> str | None:
    """Which server answers /v1/models: llama.cpp says owned_by "llamacpp" (tools/server/server.cpp, now
    server-context.cpp), vLLM "vllm", Ollama the model's namespace ("library", openai/openai.go), OpenAI's
    own API "openai" or "system"."""
    if "llamacpp" in owners:
        return "llama.cpp"
    if "vllm" in owners:
        return "vllm"
    if "library" in owners:
        return "ollama"
    if owners & {"openai", "system", "openai-internal"}:
        return "openai"
    return None


class OpenAIProvider(Provider):
    """A model behind any OpenAI-compatible chat completions API (vLLM, llama.cpp, a cloud), via ``openai``.

    What is sent depends on the server the probe recognises: top_k, min_p and repeat_penalty go as extra body
    fields to llama.cpp and vLLM only (a cloud API rejects unknown fields); llama.cpp also gets
    ``cache_prompt: false`` so that every call evaluates its whole prompt and TTFT is comparable.
    """

    def __init__(self, spec: ModelSpec, timeout_s: float, max_answer_chars: int = 2_000_000):
        _import_httpx()
        import openai  # imported here: it takes half a second, and most runs never reach such a model

        self.spec = spec
        self.host = spec.host
        self.timeout_s = timeout_s
        self.max_answer_chars = max_answer_chars
        self.server: str | None = None  # set by probe
        key = os.environ.get(spec.api_key_env, "") if spec.api_key_env else ""
        guard = request_guard(spec.host, shown_host=redact_url(spec.host), send_authorization=True)
        self._client = openai.OpenAI(base_url=spec.host, api_key=key or "unset", timeout=timeout_s, max_retries=0,
                                     default_headers=spec.headers or None,
                                     http_client=openai.DefaultHttpxClient(event_hooks={"request": [guard]}))

    def probe(self, model: str) -> ModelDetails:
        with self._errors(model):
            page = self._client.models.list()
            entries = list(page.data)
        ids = [m.id for m in entries]
        self.server = _server_kind({str(getattr(m, "owned_by", "")) for m in entries})
        entry = next((m for m in entries if _same_tag(model, m.id)), None)
        if entry is None:
            if self.server == "llama.cpp":
                # llama.cpp would answer any name with its one model; a name it does not serve is a mistake here.
                raise ProviderError(f"model {model} is not loaded at {redact_url(self.host)}: that llama.cpp server "
                                    f"serves {', '.join(ids)} only", kind="not_found")
            raise ProviderError(f"model {model} is not served at {redact_url(self.host)} (it lists {len(ids)} others)",
                                kind="not_found")
        meta = (entry.model_extra or {}).get("meta") or {}
        return ModelDetails(
            server=self.server,
            context_length=meta.get("n_ctx"),
            parameter_size=_count(meta.get("n_params")),
            quantization_level=meta.get("ftype"),
            format="gguf" if self.server == "llama.cpp" else None,
        )

    def warm_up(self, model: str, load_options: dict[str, Any] | None = None) -> float:
        return 0.0  # the API has no load-only request; the first call's latency may include a load

    def unsent(self, request: Request) -> list[str]:
        if self.server in ("llama.cpp", "vllm"):
            return []
        return sorted(set(request.options) & OPENAI_EXTRA_OPTIONS)

    def _params(self, request: Request) -> dict[str, Any]:
        params: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for name, value in request.options.items():
            if name == "num_predict":
                if value > 0:  # -1 (no limit) and -2 (fill the context) mean: send no max_tokens
                    # OpenAI's own API refuses max_tokens for its reasoning (o-series) models and takes
                    # max_completion_tokens from every chat model.
                    params["max_completion_tokens" if self.server == "openai" else "max_tokens"] = value
            elif name in OPENAI_OPTIONS:
                params[name] = value
            elif name in OPENAI_EXTRA_OPTIONS and self.server in ("llama.cpp", "vllm"):
                # vLLM names the repeat penalty repetition_penalty (vllm/entrypoints/openai/protocol.py).
                extra["repetition_penalty" if name == "repeat_penalty" and self.server == "vllm" else name] = value
        if self.server == "llama.cpp":
            # llama.cpp reuses the KV cache of an earlier request with the same prefix (cache_n > 0), which
            # shortens the TTFT of later calls (tools/server/README.md, cache_prompt).
            extra["cache_prompt"] = False
        if extra:
            params["extra_body"] = extra
        return params

    def complete(self, request: Request) -> Completion:
        params = self._params(request)
        clock = _Stream(self.timeout_s, self.max_answer_chars)
        text: list[str] = []
        thinking: list[str] = []
        finish = usage = timings = None
        with self._errors(request.model):
            stream = self._client.chat.completions.create(
                model=request.model, messages=request.messages(), stream=True,
                stream_options={"include_usage": True}, **params,
            )
            try:
                for chunk in stream:
                    usage = chunk.usage or usage
                    # llama.cpp puts its own timings on the last chunk (tools/server/server-task.cpp).
                    timings = (chunk.model_extra or {}).get("timings") or timings
                    piece = thought = ""
                    for choice in chunk.choices[:1]:  # the usage chunk has no choices
                        piece = choice.delta.content or ""
                        # Reasoning: delta.reasoning_content (llama.cpp, vLLM) or delta.reasoning (Ollama /v1,
                        # newer vLLM); it is the model's first output, so it counts for TTFT.
                        more = choice.delta.model_extra or {}
                        thought = more.get("reasoning_content") or more.get("reasoning") or ""
                        finish = choice.finish_reason or finish
                    text.append(piece)
                    thinking.append(thought)
                    clock.took(piece, thought)
            finally:
                stream.close()
        if finish is None:
            raise ProviderError("the stream ended before the answer was complete (no finish_reason)", kind="cut")
        latency = clock.elapsed_ms()
        timings = timings if isinstance(timings, dict) else {}
        tokens = timings.get("predicted_n") or (usage.completion_tokens if usage else None)
        rate, source = timings.get("predicted_per_second"), "server"
        if rate is None:
            generating_s = (latency - (clock.ttft_ms or 0)) / 1000
            rate, source = (tokens / generating_s, "stream") if tokens and generating_s > 0 else (None, None)
        return Completion(
            text="".join(text),
            thinking="".join(thinking),
            done_reason=finish,
            latency_ms=latency,
            ttft_ms=clock.ttft_ms,
            prompt_eval_ms=_round(timings.get("prompt_ms")),
            eval_ms=_round(timings.get("predicted_ms")),
            prompt_eval_count=timings.get("prompt_n", usage.prompt_tokens if usage else None),
            eval_count=tokens,
            tokens_per_s=_round(rate, 2),
            tokens_per_s_source=source,
            prompt_cached_count=timings.get("cache_n"),
        )

    def _errors(self, model: str) -> _ErrorMap:
        return _OpenAIErrors(redact_url(self.host), model, self.timeout_s)


def _round(value: Any, digits: int = 3) -> float | None:
    return round(float(value), digits) if isinstance(value, (int, float)) else None


def _count(n: Any) -> str | None:
    """134515008 → '134.5M', as Ollama writes parameter sizes."""
    if not isinstance(n, (int, float)) or n <= 0:
        return None
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(int(n))


# -- turning each client's many exceptions into one reason ------------------------------------------------


class _ErrorMap:
    """Context manager: whatever a client raises leaves as a ProviderError with a one-line reason."""

    server = "the server"

    def pull_hint(self) -> str:
        return "check the model name"

    def __init__(self, host: str, model: str, timeout_s: float):
        self.host, self.model, self.timeout_s = host, model, timeout_s

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None or isinstance(exc, (ProviderError, KeyboardInterrupt, SystemExit)):
            return False
        for cause in (exc, exc.__cause__):  # the openai client wraps what a request hook raises
            if isinstance(cause, CrossOriginRedirect):
                raise ProviderError(str(cause), kind="redirect") from None
        raise self.reason(exc) from None

    def reason(self, exc: BaseException) -> ProviderError:
        raise NotImplementedError

    # Reasons both clients share.
    def status(self, status: int, message: str, auth_hint: str) -> ProviderError:
        host = self.host
        if status == 404:
            hint = self.pull_hint() if "model" in message.lower() else "is the endpoint up?"
            return ProviderError(f"HTTP 404 from {host}: {message}; {hint}", kind="not_found")
        if status in (401, 403):
            return ProviderError(f"HTTP {status} from {host}: {message}; {auth_hint}", kind="auth")
        if status == 524:
            # Cloudflare's answer after ~100 s in which the origin sent nothing: often a model still loading.
            # Transient, retried once (Runner._call).
            return ProviderError(f"HTTP 524 from {host}: the proxy gave up after about 100 s with nothing sent "
                                 f"(the model may still be loading)", kind="proxy_timeout", transient=True)
        return ProviderError(f"HTTP {status} from {host}: {message}", kind="server", transient=status in (502, 503, 504))

    def connection(self, cause: BaseException) -> ProviderError:
        text = f"{cause} {cause.__context__ or ''}".lower()
        if any(s in text for s in ("name or service not known", "nodename nor servname", "name resolution")):
            return ProviderError(f"cannot resolve the host name of {self.host}: check the URL", kind="connection")
        if "without sending a response" in text or "reset" in text:
            return ProviderError(f"connection to {self.host} was reset", kind="connection", transient=True)
        if "incomplete" in text or "peer closed" in text:
            return ProviderError(f"{self.host} closed the connection mid-answer (stream cut)", kind="cut")
        return ProviderError(f"connection refused by {self.host}: is {self.server} running there?", kind="connection")

    def timeout(self) -> ProviderError:
        return ProviderError(f"no answer from {self.host} within timeout_s={self.timeout_s:g}s", kind="timeout")

    def malformed(self) -> ProviderError:
        return ProviderError(f"{self.host} sent a malformed response line", kind="malformed")


class _OllamaErrors(_ErrorMap):
    """What the ollama client and httpx raise."""

    server = "Ollama"

    def pull_hint(self) -> str:
        return f"run 'ollama pull {self.model}' there"

    def reason(self, exc: BaseException) -> ProviderError:
        import httpx
        import ollama

        if isinstance(exc, ollama.ResponseError):
            error = _one_line(exc.error)
            if exc.status_code == -1:  # an {"error": ...} line in the middle of a stream
                return ProviderError(f"the server reported an error mid-answer: {error}", kind="server")
            return self.status(exc.status_code, error, "check the model's headers")
        if isinstance(exc, httpx.ConnectTimeout):
            return ProviderError(f"timed out connecting to {self.host}", kind="connection", transient=True)
        if isinstance(exc, httpx.TimeoutException):
            return self.timeout()
        # The client replaces httpx's ConnectError with a generic ConnectionError; the cause stays attached.
        if isinstance(exc, (httpx.ConnectError, ConnectionError, httpx.RemoteProtocolError, httpx.ReadError)):
            return self.connection(exc)
        if isinstance(exc, (json.JSONDecodeError, ValidationError)):
            return self.malformed()
        if isinstance(exc, httpx.HTTPError):
            return ProviderError(f"request to {self.host} failed: {_one_line(exc)}", kind="connection")
        return ProviderError(f"unexpected {type(exc).__name__} from the ollama client: {_one_line(exc)}")


class _OpenAIErrors(_ErrorMap):
    """What the openai client raises."""

    def reason(self, exc: BaseException) -> ProviderError:
        import openai

        if isinstance(exc, openai.APITimeoutError):
            return self.timeout()
        if isinstance(exc, openai.APIConnectionError):
            return self.connection(exc.__cause__ or exc)
        if isinstance(exc, openai.APIStatusError):
            body = exc.body if isinstance(exc.body, dict) else {}
            message = _one_line(body.get("message") or re.sub(r"^Error code: \d+ - ", "", str(exc)))
            return self.status(exc.status_code, message, "check api_key_env")
        if isinstance(exc, (json.JSONDecodeError, ValidationError)):
            return self.malformed()
        return ProviderError(f"request to {self.host} failed: {_one_line(exc)}")


def provider_for(spec: ModelSpec, timeout_s: float, max_answer_chars: int = 2_000_000) -> Provider:
    """The provider that reaches this model."""
    kind = OpenAIProvider if spec.provider == "openai" else OllamaProvider
    return kind(spec, timeout_s, max_answer_chars)
