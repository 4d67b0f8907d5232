"""A local HTTP receiver for notification tests: a threaded `http.server` on 127.0.0.1
(port 0) that records every POST and answers per path as told.

    receiver.url("json", path="/ok")       # "json://127.0.0.1:PORT/ok"
    receiver.fail_times("/flaky", 2)        # 500 twice, then 200
    receiver.always_fail("/down")           # 500 every time
    receiver.hang("/slow", seconds=12)      # answers after sleeping (a destination that hangs)
    receiver.posts("/ok")                   # [Post(path, headers, body, json, form), ...]

Paths are matched without the query string; a path not configured answers 200.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Post:
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)


@dataclass
class _Mode:
    status: int = 200
    fail_first: int = 0  # answer 500 this many more times, then `status`
    hang_seconds: float = 0.0


class Receiver:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._modes: dict[str, _Mode] = {}
        self._posts: list[Post] = []
        self._release = threading.Event()  # set at stop: hanging requests end at once
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver._handle(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # quiet test output

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    # --- configuration -----------------------------------------------------------------

    def url(self, scheme: str = "json", path: str = "/", query: str = "") -> str:
        """An apprise URL for this receiver, e.g. url("json", path="/ok")."""
        suffix = f"?{query}" if query else ""
        return f"{scheme}://127.0.0.1:{self.port}{path}{suffix}"

    def http_url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def ok(self, path: str) -> None:
        with self._lock:
            self._modes[path] = _Mode()

    def fail_times(self, path: str, times: int) -> None:
        with self._lock:
            self._modes[path] = _Mode(fail_first=times)

    def always_fail(self, path: str, status: int = 500) -> None:
        with self._lock:
            self._modes[path] = _Mode(status=status)

    def hang(self, path: str, seconds: float = 30.0) -> None:
        with self._lock:
            self._modes[path] = _Mode(hang_seconds=seconds)

    # --- what arrived --------------------------------------------------------------------

    def posts(self, path: str | None = None) -> list[Post]:
        with self._lock:
            return [p for p in self._posts if path is None or p.path == path]

    def clear(self) -> None:
        with self._lock:
            self._posts.clear()

    # --- the server side ---------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in handler.headers.items()}
        parsed_json: Any = None
        form: dict[str, str] = {}
        content_type = headers.get("content-type", "")
        if "json" in content_type:
            try:
                parsed_json = json.loads(body or b"null")
            except ValueError:
                parsed_json = None
        elif "form" in content_type:
            form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        with self._lock:
            self._posts.append(Post(parts.path, parts.query, headers, body, parsed_json, form))
            mode = self._modes.setdefault(parts.path, _Mode())
            status = mode.status
            if mode.fail_first > 0:
                mode.fail_first -= 1
                status = 500
            hang = mode.hang_seconds
        if hang:
            self._release.wait(hang)
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            payload = b'{"ok": true}' if status < 400 else b'{"error": "receiver told to fail"}'
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        except OSError:
            pass  # the client gave up (a timeout test): nothing to answer


def wait_for_posts(receiver: Receiver, path: str, count: int, timeout: float = 5.0) -> list[Post]:
    """The posts to `path` once there are `count` of them (or whatever arrived by `timeout`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        posts = receiver.posts(path)
        if len(posts) >= count:
            return posts
        time.sleep(0.02)
    return receiver.posts(path)
