"""A local JSON webhook receiver for the demo: prints each message flakyboard sends to
it (apprise's json:// posts {"title", "message", "type"}). Listens on 127.0.0.1 only."""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.core.management.base import BaseCommand

MAX_BODY = 1024 * 1024


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY)
        body = self.rfile.read(length)
        try:
            data = json.loads(body)
            text = f"{data.get('title', '')}\n{data.get('message', '')}"
        except (ValueError, AttributeError):
            text = body.decode("utf-8", "replace")
        sys.stdout.write(f"\n=== flakyboard message to {self.path} ===\n{text}\n")
        sys.stdout.flush()
        self.send_response(200)
        self.end_headers()

    def log_message(self, format, *args):  # noqa: A002 - the request lines are noise here
        pass


class Command(BaseCommand):
    help = "Print the messages flakyboard sends to json://127.0.0.1:PORT/... (the demo's subscriptions)."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8025)

    def handle(self, *args, port=8025, **options):
        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.stdout.write(f"Demo receiver: printing flakyboard's messages sent to json://127.0.0.1:{port}/")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
