"""Send one JSON file to a webhook receiver, signed the way Svix signs it.

Useful to try a deployment end to end (`manage.py send_webhook --url
https://flakyboard.example.com/webhooks/trunk/ --secret whsec_... payload.json`) or to
replay a fixture by hand. Like Svix, a redirect counts as a failure: it is not followed.
"""

import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from django.core.management.base import BaseCommand, CommandError, CommandParser
from svix.webhooks import Webhook

USER_AGENT = "flakyboard-send-webhook/1.0"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Svix counts a 3xx as a failed attempt, so surface it instead of following it."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: PLR0913 - stdlib signature
        return None


class Command(BaseCommand):
    help = (
        "Sign a JSON file with a Svix secret (svix-id, svix-timestamp, svix-signature headers) "
        "and POST it to a webhook URL. Prints the answer; exits non-zero unless it is a 2xx."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "file", type=Path, help="The payload file; its bytes are sent exactly as they are."
        )
        parser.add_argument(
            "--url", required=True, help="Receiver URL, e.g. http://127.0.0.1:8000/webhooks/trunk/."
        )
        parser.add_argument(
            "--secret",
            required=True,
            help="The endpoint's signing secret (whsec_...), as shown by Trunk/Svix.",
        )
        parser.add_argument(
            "--id",
            dest="msg_id",
            help="svix-id of the message (default: a new random msg_... id). Reuse one to send a redelivery.",
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=15.0,
            help="Seconds to wait for the answer (default: 15, as Svix).",
        )

    def handle(
        self, *args, file: Path, url: str, secret: str, msg_id: str | None, timeout: float, **options
    ) -> None:
        if urlsplit(url).scheme not in ("http", "https"):
            raise CommandError(f"--url must be an http:// or https:// URL, got {url!r}.")
        try:
            raw = file.read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror or exc}.") from exc
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CommandError(f"{file} is not UTF-8 text; Svix payloads are JSON.") from exc

        msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
        signed_at = datetime.now(UTC)
        try:
            signature = Webhook(secret).sign(msg_id, signed_at, body)
        except Exception as exc:  # noqa: BLE001 - the library raises various errors for a bad secret
            raise CommandError(f"--secret is not a valid Svix secret (whsec_<base64>): {exc}") from exc

        request = urllib.request.Request(  # noqa: S310 - scheme checked above
            url,
            data=raw,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                "svix-id": msg_id,
                "svix-timestamp": str(int(signed_at.timestamp())),
                "svix-signature": signature,
            },
        )
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(request, timeout=timeout) as response:
                status, answer = response.status, response.read()
        except urllib.error.HTTPError as exc:
            # A non-2xx answer (3xx included, since redirects are not followed).
            status, answer = exc.code, exc.read()
        except urllib.error.URLError as exc:
            raise CommandError(f"Could not connect to {url}: {exc.reason}") from exc
        except (TimeoutError, OSError) as exc:
            raise CommandError(f"No answer from {url}: {exc}") from exc

        text = answer.decode("utf-8", errors="replace")
        self.stdout.write(f"{msg_id} -> {status}")
        if text:
            self.stdout.write(text)
        if not 200 <= status < 300:
            raise CommandError(f"{url} answered {status}: {text[:500]}")
