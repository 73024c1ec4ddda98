"""An HTTP server on 127.0.0.1 speaking the OpenAI chat completions API (SSE streaming), for the openai provider."""

from __future__ import annotations

import json

from loopback import LoopbackServer, StreamingHandler


class FakeOpenAI(LoopbackServer):
    """``with FakeOpenAI({"cloud-model": "text"}) as s:``; ``s.url`` ends in /v1; ``s.requests`` logs bodies."""

    def __init__(self, answers: dict[str, str], *, api_key: str | None = None, status: int = 200):
        self.answers = answers
        self.api_key = api_key
        self.status = status
        self.requests: list[dict] = []
        self.auth_headers: list[str] = []
        super().__init__(self._handler())

    @property
    def url(self) -> str:
        return f"{self.address}/v1"

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
                if not self._authorized():
                    return
                if self.path == "/v1/models":
                    return self._json(200, {"object": "list", "data": [
                        {"id": m, "object": "model", "created": 0, "owned_by": "test"} for m in server.answers]})
                self._json(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if not self._authorized():
                    return
                server.requests.append(body)
                if server.status != 200:
                    return self._json(server.status, {"error": {"message": "upstream overloaded"}})
                text = server.answers.get(body.get("model"))
                if text is None:
                    return self._json(404, {"error": {"message": f"The model `{body.get('model')}` does not exist"}})
                self._start_stream("text/event-stream")
                base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": body["model"]}
                words = text.split(" ")
                for i, word in enumerate(words):
                    piece = word + (" " if i < len(words) - 1 else "")
                    self._event({**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
                self._event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                self._event({**base, "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": len(words),
                                                               "total_tokens": 9 + len(words)}})
                self._chunk(b"data: [DONE]\n\n")
                self._end_stream()

            def _event(self, payload: dict) -> None:
                self._chunk(b"data: " + json.dumps(payload).encode() + b"\n\n")

        return Handler
