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


class OllamaProvider(Provider):
    """A model behind an Ollama server, through the official ``ollama`` client."""

    def __init__(self, spec: ModelSpec, timeout_s: float, max_answer_chars: int = 2_000_000):
        self.host = spec.host
        self.timeout_s = timeout_s
        self.max_answer_chars = max_answer_chars
        timeout = httpx.Timeout(timeout_s, connect=min(10.0, timeout_s))
        self._client = ollama.Client(host=spec.host, headers=spec.headers or None, timeout=timeout)

    # -- the three calls --------------------------------------------------------------------------

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
        start = time.perf_counter()
        deadline = start + self.timeout_s
        text: list[str] = []
        thinking: list[str] = []
        ttft: float | None = None
        size = 0
        final = None
        with self._errors(request.model):
            stream = self._client.chat(
                model=request.model,
                messages=request.messages(),
                options=request.options or None,
                think=request.think,
                stream=True,
            )
            try:
                for part in stream:
                    now = time.perf_counter()
                    message = part.message
                    if ttft is None and (message.content or message.thinking):
                        ttft = (now - start) * 1000
                    text.append(message.content or "")
                    thinking.append(message.thinking or "")
                    size += len(text[-1]) + len(thinking[-1])
                    if size > self.max_answer_chars:
                        raise ProviderError(
                            f"the answer passed max_answer_chars={self.max_answer_chars} and was dropped",
                            kind="too_large",
                        )
                    if part.done:
                        final = part
                    if now > deadline:
                        raise ProviderError(
                            f"the answer took longer than timeout_s={self.timeout_s:g}s", kind="timeout"
                        )
            finally:
                stream.close()
        latency = (time.perf_counter() - start) * 1000
        if final is None:
            raise ProviderError("the stream ended before the answer was complete (no done message)", kind="cut")
        eval_ms = _ms(final.eval_duration)
        return Completion(
            text="".join(text),
            thinking="".join(thinking),
            done_reason=final.done_reason,
            latency_ms=round(latency, 3),
            ttft_ms=None if ttft is None else round(ttft, 3),
            load_ms=_ms(final.load_duration),
            total_ms=_ms(final.total_duration),
            prompt_eval_ms=_ms(final.prompt_eval_duration),
            eval_ms=eval_ms,
            prompt_eval_count=final.prompt_eval_count,
            eval_count=final.eval_count,
            tokens_per_s=round(final.eval_count / (eval_ms / 1000), 2) if final.eval_count and eval_ms else None,
        )

    # -- turning the client's many exceptions into one reason ------------------------------------------

    def _errors(self, model: str):
        return _OllamaErrors(redact_url(self.host), model, self.timeout_s)


class _OllamaErrors:
    """Context manager mapping what the ollama client and httpx raise to ProviderError."""

    def __init__(self, host: str, model: str, timeout_s: float, server: str = "Ollama"):
        self.host, self.model, self.timeout_s, self.server = host, model, timeout_s, server

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None or isinstance(exc, (ProviderError, KeyboardInterrupt, SystemExit)):
            return False
        raise self.reason(exc) from None

    def reason(self, exc: BaseException) -> ProviderError:
        host, model = self.host, self.model
        if isinstance(exc, ollama.ResponseError):
            status, error = exc.status_code, _one_line(exc.error)
            if status == -1:
                return ProviderError(f"the server reported an error mid-answer: {error}", kind="server")
            if status == 404:
                hint = f"run 'ollama pull {model}' there" if "model" in error.lower() else "is the endpoint up?"
                return ProviderError(f"HTTP 404 from {host}: {error}; {hint}", kind="not_found")
            if status in (401, 403):
                return ProviderError(f"HTTP {status} from {host}: {error}; check the model's headers", kind="auth")
            return ProviderError(
                f"HTTP {status} from {host}: {error}", kind="server", transient=status in (502, 503, 504)
            )
        if isinstance(exc, httpx.ConnectTimeout):
            return ProviderError(f"timed out connecting to {host}", kind="connection", transient=True)
        if isinstance(exc, httpx.TimeoutException):
            return ProviderError(f"no answer from {host} within timeout_s={self.timeout_s:g}s", kind="timeout")
        if isinstance(exc, (httpx.ConnectError, ConnectionError)):
            # The client replaces httpx's ConnectError with a generic ConnectionError; the cause stays attached.
            text = f"{exc} {exc.__context__ or ''}".lower()
            if "name or service not known" in text or "nodename nor servname" in text or "name resolution" in text:
                return ProviderError(f"cannot resolve the host name of {host}: check the URL", kind="connection")
            return ProviderError(f"connection refused by {host}: is {self.server} running there?", kind="connection")
        if isinstance(exc, httpx.RemoteProtocolError) and "without sending a response" in str(exc):
            return ProviderError(f"connection to {host} was reset", kind="connection", transient=True)
        if isinstance(exc, httpx.RemoteProtocolError):
            return ProviderError(f"{host} closed the connection mid-answer (stream cut)", kind="cut")
        if isinstance(exc, httpx.ReadError):
            return ProviderError(f"connection to {host} was reset", kind="connection", transient=True)
        if isinstance(exc, (json.JSONDecodeError, ValidationError)):
            return ProviderError(f"{host} sent a malformed response line", kind="malformed")
        if isinstance(exc, httpx.HTTPError):
            return ProviderError(f"request to {host} failed: {_one_line(exc)}", kind="connection")
        return ProviderError(f"unexpected {type(exc).__name__} from the ollama client: {_one_line(exc)}")


class OpenAIProvider(Provider):
    """A model behind any OpenAI-compatible chat completions API (vLLM, llama.cpp, a cloud), via ``openai``."""

    # Our option names → the chat completions parameters that mean the same.
    OPTION_NAMES = {"temperature": "temperature", "seed": "seed", "num_predict": "max_tokens", "top_p": "top_p",
                    "stop": "stop"}

    def __init__(self, spec: ModelSpec, timeout_s: float, max_answer_chars: int = 2_000_000):
        import openai

        self._openai = openai
        self.host = spec.host
        self.timeout_s = timeout_s
        self.max_answer_chars = max_answer_chars
        key = os.environ.get(spec.api_key_env, "") if spec.api_key_env else ""
        self._client = openai.OpenAI(base_url=spec.host, api_key=key or "unset", timeout=timeout_s, max_retries=0,
                                     default_headers=spec.headers or None)

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
        start = time.perf_counter()
        deadline = start + self.timeout_s
        text: list[str] = []
        ttft = None
        size = 0
        finish = None
        usage = None
        with self._errors(request.model):
            stream = self._client.chat.completions.create(
                model=request.model, messages=request.messages(), stream=True,
                stream_options={"include_usage": True}, **params,
            )
            try:
                for chunk in stream:
                    now = time.perf_counter()
                    usage = chunk.usage or usage
                    for choice in chunk.choices[:1]:
                        piece = choice.delta.content or ""
                        if piece and ttft is None:
                            ttft = (now - start) * 1000
                        text.append(piece)
                        size += len(piece)
                        finish = choice.finish_reason or finish
                    if size > self.max_answer_chars:
                        raise ProviderError(
                            f"the answer passed max_answer_chars={self.max_answer_chars} and was dropped",
                            kind="too_large",
                        )
                    if now > deadline:
                        raise ProviderError(f"the answer took longer than timeout_s={self.timeout_s:g}s",
                                            kind="timeout")
            finally:
                stream.close()
        latency = (time.perf_counter() - start) * 1000
        if finish is None:
            raise ProviderError("the stream ended before the answer was complete (no finish_reason)", kind="cut")
        tokens = usage.completion_tokens if usage else None
        generating_s = (latency - (ttft or 0)) / 1000
        return Completion(
            text="".join(text),
            done_reason=finish,
            latency_ms=round(latency, 3),
            ttft_ms=None if ttft is None else round(ttft, 3),
            prompt_eval_count=usage.prompt_tokens if usage else None,
            eval_count=tokens,
            tokens_per_s=round(tokens / generating_s, 2) if tokens and generating_s > 0 else None,
        )

    def _errors(self, model: str):
        return _OpenAIErrors(self._openai, redact_url(self.host), model, self.timeout_s)


class _OpenAIErrors:
    """Context manager mapping the openai client's exceptions to ProviderError."""

    def __init__(self, openai, host: str, model: str, timeout_s: float):
        self.openai, self.host, self.model, self.timeout_s = openai, host, model, timeout_s

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None or isinstance(exc, (ProviderError, KeyboardInterrupt, SystemExit)):
            return False
        openai, host = self.openai, self.host
        if isinstance(exc, openai.APITimeoutError):
            raise ProviderError(f"no answer from {host} within timeout_s={self.timeout_s:g}s", kind="timeout") from None
        if isinstance(exc, openai.APIConnectionError):
            cause = f"{exc.__cause__ or exc}".lower()
            if "name or service not known" in cause or "name resolution" in cause:
                raise ProviderError(f"cannot resolve the host name of {host}: check the URL", kind="connection") from None
            if "incomplete" in cause or "peer closed" in cause:
                raise ProviderError(f"{host} closed the connection mid-answer (stream cut)", kind="cut") from None
            if "refused" in cause:
                raise ProviderError(f"connection refused by {host}: is the server running there?",
                                    kind="connection") from None
            raise ProviderError(f"cannot reach {host}: {_one_line(exc.__cause__ or exc)}", kind="connection",
                                transient=True) from None
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            body = exc.body if isinstance(exc.body, dict) else {}
            message = _one_line(body.get("message") or re.sub(r"^Error code: \d+ - ", "", str(exc)))
            if status in (401, 403):
                raise ProviderError(f"HTTP {status} from {host}: {message}; check api_key_env", kind="auth") from None
            raise ProviderError(f"HTTP {status} from {host}: {message}", kind="not_found" if status == 404 else "server",
                                transient=status in (502, 503, 504)) from None
        if isinstance(exc, (json.JSONDecodeError, ValidationError)):
            raise ProviderError(f"{host} sent a malformed response line", kind="malformed") from None
        if isinstance(exc, openai.OpenAIError):
            raise ProviderError(f"request to {host} failed: {_one_line(exc)}") from None
        return False


def provider_for(spec: ModelSpec, timeout_s: float, max_answer_chars: int = 2_000_000) -> Provider:
    """The provider that reaches this model."""
    kind = OpenAIProvider if spec.provider == "openai" else OllamaProvider
    return kind(spec, timeout_s, max_answer_chars)
