"""Untrusted text made safe to keep and to show: valid UTF-8, bounded, free of secrets, inert on a terminal.

Answers, servers and answer code are untrusted. Their strings are cleaned where records are made (see
``records.Record``), so nothing unencodable is ever cached or written; secrets are removed by one
``Redactor`` before anything is stored or printed; the CLI shows control characters as visible escapes.
Requests never leave the origin of the host the user gave (``request_guard``).
"""

from __future__ import annotations

import os
import re
from typing import Any, Iterable
from urllib.parse import urlsplit

REPLACED = "\ufffd"
SECRET = "[secret]"
FRAGMENT = 8  # a piece of a secret at least this long is redacted too (a token cut by truncation)
META_MAX = 256  # a server-reported name, version, digest or size
REASON_MAX = 300  # a one-line reason

_UNENCODABLE = re.compile("[\ud800-\udfff]")
# C0 and C1 controls except newline and tab, DEL, and the bidirectional overrides (they reorder what is shown).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CREDENTIAL_SCHEMES = ("bearer", "basic", "token", "apikey")


def clean_text(text: str) -> tuple[str, bool]:
    """``text`` as valid UTF-8 text: each lone surrogate becomes U+FFFD. Returns it and whether anything was."""
    if text.isascii() or not _UNENCODABLE.search(text):
        return text, False
    return _UNENCODABLE.sub(REPLACED, text), True


def clean_tree(value: Any) -> tuple[Any, bool]:
    """Every string inside dicts, lists and tuples cleaned; returns the copy and whether anything was replaced."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        out, replaced = {}, False
        for k, v in value.items():
            (k, rk), (v, rv) = clean_tree(k), clean_tree(v)
            out[k] = v
            replaced = replaced or rk or rv
        return out, replaced
    if isinstance(value, (list, tuple)):
        items = [clean_tree(v) for v in value]
        return type(value)(v for v, _ in items), any(r for _, r in items)
    return value, False


def cap(text: str | None, limit: int) -> str | None:
    """At most ``limit`` characters; a cut text ends with '…'."""
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


def terminal_text(text: str) -> str:
    """Control characters as visible escapes (ESC → \\x1b), so a terminal shows them instead of obeying them."""
    return _CONTROL.sub(lambda m: _escape(m.group()), text)


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


# -- secrets -----------------------------------------------------------------------------------------------


def credential(value: str) -> str:
    """The secret part of a header value: the token after 'Bearer ' (or Basic, Token), else the whole value."""
    parts = value.strip().split(None, 1)
    if len(parts) == 2 and parts[0].lower() in _CREDENTIAL_SCHEMES:
        return parts[1].strip()
    return value.strip()


class Redactor:
    """Replaces every secret, and every piece of one at least FRAGMENT characters long, with '[secret]'.

    A piece matters: a reason cut at 200 characters may end in the first half of a token, and a server
    may echo part of one. Where a text was cut (its end, or an '…'), even the token's first 4 characters
    go. Secrets shorter than 4 characters are ignored (they would redact ordinary words).
    """

    def __init__(self, secrets: Iterable[str] = ()):
        values = {s for s in (v.strip() for v in secrets) if len(s) >= 4}
        self.secrets = tuple(sorted(values, key=lambda s: (-len(s), s)))

    @classmethod
    def for_benchmark(cls, bench: Any, env: dict[str, str] | None = None) -> Redactor:
        """Every secret the config knows: header values and their tokens, api_key_env values, OLLAMA_API_KEY."""
        env = dict(os.environ) if env is None else env
        values: list[str] = []
        for model in bench.models:
            # The token alone: "Bearer " is no secret, and its pieces would redact ordinary words.
            values += [credential(value) for value in model.headers.values()]
            if model.api_key_env:
                values.append(env.get(model.api_key_env, ""))
            password = urlsplit(model.host).password
            values.append(password or "")
        values.append(env.get("OLLAMA_API_KEY", ""))
        return cls(values)

    def __bool__(self) -> bool:
        return bool(self.secrets)

    def __call__(self, text: str) -> str:
        if not self.secrets or not text:
            return text
        spans: list[tuple[int, int]] = []
        for secret in self.secrets:
            if len(secret) < FRAGMENT:
                start = text.find(secret)
                while start >= 0:
                    spans.append((start, start + len(secret)))
                    start = text.find(secret, start + len(secret))
                continue
            spans += _fragments(text, secret) + _cut_tails(text, secret)
        if not spans:
            return text
        out, last = [], 0
        for start, end in _merge(spans):
            out += [text[last:start], SECRET]
            last = end
        out.append(text[last:])
        return "".join(out)

    def tree(self, value: Any) -> Any:
        """Every string inside dicts, lists and tuples redacted."""
        if not self.secrets:
            return value
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {self.tree(k): self.tree(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.tree(v) for v in value)
        return value


def _fragments(text: str, secret: str) -> list[tuple[int, int]]:
    """Spans of ``text`` that are runs of at least FRAGMENT consecutive characters of ``secret``."""
    spans = []
    for offset in range(len(secret) - FRAGMENT + 1):
        window = secret[offset: offset + FRAGMENT]
        found = text.find(window)
        while found >= 0:
            # Grow the match both ways while text and secret keep agreeing.
            left, right = found, found + FRAGMENT
            s_left, s_right = offset, offset + FRAGMENT
            while left > 0 and s_left > 0 and text[left - 1] == secret[s_left - 1]:
                left, s_left = left - 1, s_left - 1
            while right < len(text) and s_right < len(secret) and text[right] == secret[s_right]:
                right, s_right = right + 1, s_right + 1
            spans.append((left, right))
            found = text.find(window, right)
    return spans


def _cut_tails(text: str, secret: str) -> list[tuple[int, int]]:
    """A secret's first 4 to FRAGMENT-1 characters where a text was cut: at its end or before an '…'."""
    spans = []
    for size in range(min(len(secret), FRAGMENT) - 1, 3, -1):
        head = secret[:size]
        if text.endswith(head):
            spans.append((len(text) - size, len(text)))
        found = text.find(head + "…")
        while found >= 0:
            spans.append((found, found + size))
            found = text.find(head + "…", found + 1)
    return spans


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


# -- requests -----------------------------------------------------------------------------------------------


class CrossOriginRedirect(Exception):
    """A server redirected a request to another origin; it was not sent there."""

    def __init__(self, host: str, target: str):
        self.host, self.target = host, target
        super().__init__(f"{host} redirected the request to another origin ({target}); it was not followed, "
                         f"so the model's credentials stay with its host: set host to the final URL")


def origin(url: Any) -> tuple[str, str, int | None]:
    parts = urlsplit(str(url))
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def request_guard(host: str, *, send_authorization: bool, shown_host: str):
    """An httpx request hook: only ``host``'s origin is ever contacted, and no Authorization the user did not give.

    A redirect to another origin raises CrossOriginRedirect before anything (headers, credentials, the
    prompt) is sent there. ``send_authorization=False`` removes an Authorization header the client added on
    its own (ollama-python adds ``Bearer $OLLAMA_API_KEY`` to every host that has none configured).
    """
    allowed = origin(host)

    def hook(request: Any) -> None:
        if origin(request.url) != allowed:
            scheme, name, port = origin(request.url)
            raise CrossOriginRedirect(shown_host, f"{scheme}://{name}:{port}")
        if not send_authorization:
            request.headers.pop("authorization", None)

    return hook
