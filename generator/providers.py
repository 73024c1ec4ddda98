"""How models are reached: one Provider class per kind of server; the rest of the pipeline never imports ollama.

A provider answers three questions: what is this model on the server (probe), load it (warm_up), and
answer one request (complete). Every failure leaves as a ProviderError with a one-line reason.
"""

from __future__ import annotations

import json
import os
import re
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import httpx
import ollama
from pydantic import ValidationError

from .config import ModelSpec
from .errors import ProviderError
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


class Provider(ABC):
    """One model server. Implementations raise ProviderError and nothing else."""

    @abstractmethod
    def probe(self, model: str) -> ModelDetails:
        """What the server knows about ``model``; ProviderError(kind='not_found') when it lacks it."""

    @abstractmethod
    def warm_up(self, model: str) -> float:
        """Load ``model`` without generating; returns the wall time in ms."""

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


class OllamaProvider(Provider):
    """A model behind an Ollama server, through the official ``ollama`` client."""

    def __init__(self, spec: ModelSpec, timeout_s: float, max_answer_chars: int = 2_000_000):
        self.host = spec.host
        self.timeout_s = timeout_s
        self.max_answer_chars = max_answer_chars
        timeout = httpx.Timeout(timeout_s, connect=min(10.0, timeout_s))
        # The client would send $OLLAMA_API_KEY to any host without an Authorization header of its own: only
        # an Authorization the model's headers give is sent, and never to another origin.
        guard = request_guard(spec.host, shown_host=redact_url(spec.host),
                              send_authorization=any(k.lower() == "authorization" for k in spec.headers))
        self._client = ollama.Client(host=spec.host, headers=spec.headers or None, timeout=timeout,
                                     event_hooks={"request": [guard]})

    def probe(self, model: str) -> ModelDetails:
        with self._errors(model):
            # The client has no call for /api/version; its raw request keeps the same error handling.
            version = self._client._request_raw("GET", "/api/version").json().get("version")
            tags = self._client.list()
            entry = next((m for m in tags.models if m.model in (model, f"{model}:latest")), None)
            if entry is None:
                raise ProviderError(
                    f"model {model} is not on {redact_url(self.host)}: run 'ollama pull {model}' there",
                    kind="not_found",
                )
            shown = self._client.show(model)
        details = shown.details or entry.details
        return ModelDetails(
            digest=entry.digest,
            family=details.family if details else None,
            parameter_size=details.parameter_size if details else None,
            quantization_level=details.quantization_level if details else None,
            format=details.format if details else None,
            server_version=version,
        )

    def warm_up(self, model: str) -> float:
        start = time.perf_counter()
        with self._errors(model):
            self._client.generate(model=model, prompt="")  # an empty prompt only loads the model
        return round((time.perf_counter() - start) * 1000, 3)

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
        eval_ms = _ms(final.eval_duration)
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
            tokens_per_s=round(final.eval_count / (eval_ms / 1000), 2) if final.eval_count and eval_ms else None,
        )

    def _errors(self, model: str) -> _ErrorMap:
        return _OllamaErrors(redact_url(self.host), model, self.timeout_s)


class OpenAIProvider(Provider):
    """A model behind any OpenAI-compatible chat completions API (vLLM, llama.cpp, a cloud), via ``openai``."""

    # Our option names → the chat completions parameters that mean the same.
    OPTION_NAMES = {"temperature": "temperature", "seed": "seed", "num_predict": "max_tokens", "top_p": "top_p",
                    "stop": "stop"}

    def __init__(self, spec: ModelSpec, timeout_s: float, max_answer_chars: int = 2_000_000):
        import openai  # imported here: it takes half a second, and most runs never reach such a model

        self.host = spec.host
        self.timeout_s = timeout_s
        self.max_answer_chars = max_answer_chars
        key = os.environ.get(spec.api_key_env, "") if spec.api_key_env else ""
        guard = request_guard(spec.host, shown_host=redact_url(spec.host), send_authorization=True)
        self._client = openai.OpenAI(base_url=spec.host, api_key=key or "unset", timeout=timeout_s, max_retries=0,
                                     default_headers=spec.headers or None,
                                     http_client=openai.DefaultHttpxClient(event_hooks={"request": [guard]}))

    def probe(self, model: str) -> ModelDetails:
        with self._errors(model):
            ids = [m.id for m in self._client.models.list()]
        if model not in ids:
            raise ProviderError(f"model {model} is not served at {redact_url(self.host)} (it lists {len(ids)} others)",
                                kind="not_found")
        return ModelDetails()

    def warm_up(self, model: str) -> float:
        return 0.0  # the API has no load-only request; the first call's latency may include a load

    def complete(self, request: Request) -> Completion:
        params = {self.OPTION_NAMES[k]: v for k, v in request.options.items() if k in self.OPTION_NAMES}
        clock = _Stream(self.timeout_s, self.max_answer_chars)
        text: list[str] = []
        finish = usage = None
        with self._errors(request.model):
            stream = self._client.chat.completions.create(
                model=request.model, messages=request.messages(), stream=True,
                stream_options={"include_usage": True}, **params,
            )
            try:
                for chunk in stream:
                    usage = chunk.usage or usage
                    for choice in chunk.choices[:1]:
                        text.append(choice.delta.content or "")
                        finish = choice.finish_reason or finish
                    clock.took(text[-1] if chunk.choices else "")
            finally:
                stream.close()
        if finish is None:
            raise ProviderError("the stream ended before the answer was complete (no finish_reason)", kind="cut")
        latency = clock.elapsed_ms()
        tokens = usage.completion_tokens if usage else None
        generating_s = (latency - (clock.ttft_ms or 0)) / 1000
        return Completion(
            text="".join(text),
            done_reason=finish,
            latency_ms=latency,
            ttft_ms=clock.ttft_ms,
            prompt_eval_count=usage.prompt_tokens if usage else None,
            eval_count=tokens,
            tokens_per_s=round(tokens / generating_s, 2) if tokens and generating_s > 0 else None,
        )

    def _errors(self, model: str) -> _ErrorMap:
        return _OpenAIErrors(redact_url(self.host), model, self.timeout_s)


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
