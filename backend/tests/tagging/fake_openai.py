"""A fake OpenAI-compatible chat-completions server on loopback, for the `openai` tagger.

It runs in a thread of the test process on a port of its own, records every request,
and answers as the test says: a completion with given text, an HTTP error, bytes that
are no completion at all, or nothing for a while (a hung model server).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HANG_SECONDS = 3.0  # longer than the tests' tagger timeout, short enough to end by itself


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeOpenAI:
    url: str = ""
    mode: str = "ok"  # ok | error | garbage | hang
    reply: str = '["beach", "sunset"]'
    requests: list[Recorded] = field(default_factory=list)

    def completion(self) -> bytes:
        return json.dumps(
            {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": self.reply},
                        "finish_reason": "stop",
                    }
                ],
            }
        ).encode()


def _handler(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            fake.requests.append(Recorded(self.path, dict(self.headers.items()), body))
            if fake.mode == "hang":
                time.sleep(HANG_SECONDS)
            if fake.mode == "error":
                self._answer(500, b'{"error": {"message": "model crashed"}}')
            elif fake.mode == "garbage":
                self._answer(200, b"<html>this is no completion</html>")
            else:
                self._answer(200, fake.completion())

        def _answer(self, status: int, payload: bytes) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                pass  # the client gave up (a timeout): nothing to answer

        def log_message(self, format: str, *args: Any) -> None:
            return None

    return Handler


@contextmanager
def fake_openai() -> Iterator[FakeOpenAI]:
    """The fake, serving at `fake.url` (an API base ending in /v1) until the block ends."""
    fake = FakeOpenAI()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
