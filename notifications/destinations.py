"""Where notifications go: validating, masking and sending to a destination URL.

`mailto:a@x,b@y` (the standard URI, no //) goes through Django's email backend; any other
URL goes to apprise (slack://, msteams://, discord://, mmost://, json://, apprise's own
mailto:// SMTP ...). The outbox calls only `validate_destination`, `masked`, `send` and
catches `SendFailed`; the message types live in `formatting` and are re-exported here.

Privacy: a destination URL holds secrets (tokens, passwords, webhook paths). They never
appear in a ValidationError, in SendFailed's text, or in a log line: apprise's own log
records made while we instantiate or send are taken off its logger (`_hushed`) and only
their masked text reaches SendFailed.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import unicodedata
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit

import apprise
from apprise import NotifyFormat, OverflowMode
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.validators import EmailValidator

from notifications.formatting import (
    Dialect,
    Link,
    Outgoing,
    Segment,
    Text,
    render_body,
    render_email,
    render_title,
)

__all__ = [
    "Link",
    "Outgoing",
    "Segment",
    "SendFailed",
    "Text",
    "dialect_for",
    "masked",
    "send",
    "validate_destination",
]

logger = logging.getLogger(__name__)

MAX_URL_LENGTH = 2000
NOT_UNDERSTOOD = (
    "Not a destination apprise understands: use a URL such as slack://..., workflows://... "
    "(Microsoft Teams; apprise 2 has no msteams://), "
    "json://host/path, or mailto:team@example.com"
)
MASK = "…"

# Schemes whose host is a server's name and no secret (json://127.0.0.1:8025/...); for
# every other scheme the "host" may be a token (slack://TokenA/TokenB/TokenC) and is masked.
_HOST_SCHEMES = frozenset({"json", "jsons", "form", "forms", "xml", "xmls", "mmost", "mmosts"})
# Schemes rendered as Markdown when apprise's plugin accepts it (their chat renders it).
_MARKDOWN_SCHEMES = frozenset({"msteams", "workflow", "workflows", "discord"})
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*)://")


class SendFailed(Exception):
    """The destination did not take the message. The text is safe to store and show: it
    holds no secret of the URL."""


def _is_django_mailto(url: str) -> bool:
    return url[:7].lower() == "mailto:" and not url[7:].startswith("//")


# --- validation --------------------------------------------------------------------------


def validate_destination(url: str) -> None:
    """Raise ValidationError (a message for the user, never quoting the URL) unless `url`
    is a destination we can send to."""
    if not url:
        raise ValidationError("Enter a destination URL.", code="required")
    if len(url) > MAX_URL_LENGTH:
        raise ValidationError(
            f"A destination URL has at most {MAX_URL_LENGTH} characters.", code="max_length"
        )
    if any(ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf") for ch in url):
        raise ValidationError(
            "A destination URL cannot contain spaces, line breaks or control characters.",
            code="invalid",
        )
    if _is_django_mailto(url):
        _mailto_addresses(url)
        return
    if not _SCHEME.match(url) or _instantiate(url) is None:
        raise ValidationError(NOT_UNDERSTOOD, code="invalid")


def _mailto_addresses(url: str) -> list[str]:
    """The addresses of a `mailto:a@x,b@y` URL (a query such as ?subject= is not ours to
    honour and is refused rather than ignored)."""
    rest = url[7:]
    message = "Use mailto: with one or more email addresses separated by commas, e.g. mailto:team@example.com"
    if "?" in rest or "#" in rest:
        raise ValidationError(message, code="invalid")
    addresses = [unquote(part) for part in rest.split(",")]
    validator = EmailValidator()
    for address in addresses:
        try:
            validator(address)
        except ValidationError:
            # Django's message would be fine, but ours says what a good value looks like.
            raise ValidationError(message, code="invalid") from None
    return addresses


def _instantiate(url: str) -> apprise.plugins.NotifyBase | None:
    """apprise's plugin for `url`, or None. apprise logs a rejected URL's parts (a bad
    Mattermost token, say) at WARNING: those records are dropped."""
    with _hushed():
        try:
            plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
        except Exception:  # noqa: BLE001 - a plugin raising on odd input means "not a URL we can use"
            return None
    return plugin if isinstance(plugin, apprise.plugins.NotifyBase) else None


# --- masking -----------------------------------------------------------------------------


def masked(url: str) -> str:
    """A form of `url` safe to show: its scheme and, where that is no secret, its host.
    "slack://…", "json://127.0.0.1:8025/…", "mailto:t…@example.com"."""
    if _is_django_mailto(url):
        parts = [_mask_address(unquote(part)) for part in url[7:].split("?")[0].split(",")]
        return "mailto:" + ",".join(parts)
    match = _SCHEME.match(url)
    if not match:
        return MASK
    scheme = match.group(1).lower()
    if scheme in _HOST_SCHEMES:
        try:
            split = urlsplit(url)
            host = split.hostname or ""
            port = f":{split.port}" if split.port else ""
        except ValueError:
            return f"{scheme}://{MASK}"
        if host:
            rest = url[match.end() :].split("@")[-1]
            tail = "/" + MASK if rest.rstrip("/") != f"{host}{port}" else ""
            return f"{scheme}://{host}{port}{tail}"
    return f"{scheme}://{MASK}"


def _mask_address(address: str) -> str:
    local, at, domain = address.rpartition("@")
    if not at:
        return MASK
    return f"{local[:1]}{MASK}@{domain}"


def _secrets(url: str) -> list[str]:
    """The pieces of `url` that must not appear in a message: the URL itself, its user and
    password, every path segment and query value, and (for token-in-host schemes) the host."""
    pieces = [url]
    match = _SCHEME.match(url)
    if match:
        rest = url[match.end() :]
        netloc, _, tail = rest.partition("/")
        userinfo, at, host = netloc.rpartition("@")
        if at:
            pieces.extend(userinfo.split(":"))
        if match.group(1).lower() not in _HOST_SCHEMES:
            pieces.extend(host.split(":"))
        pieces.extend(re.split(r"[/?&=#]", tail))
    else:
        pieces.extend(re.split(r"[:,/?&=#]", url))
    # Longest first, so a token is replaced whole before a shorter piece inside it.
    found = {unquote(piece) for piece in pieces} | {piece for piece in pieces}
    return sorted((p for p in found if len(p) >= 3), key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """`text` with every secret piece of `url` replaced by "…"."""
    for piece in _secrets(url):
        text = text.replace(piece, MASK)
    return text


# --- apprise's log -----------------------------------------------------------------------

# Threads whose apprise log records are being taken off the logger, with what they said.
_hushed_threads: dict[int, list[str]] = {}
_hushed_lock = threading.Lock()


class _HushFilter(logging.Filter):
    """Drops apprise's records made by a thread inside `_hushed()` and keeps their text
    (WARNING and up: the reasons a send failed) for SendFailed. Records of other threads
    pass: a concurrent send elsewhere is not disturbed and not mixed into our message."""

    def filter(self, record: logging.LogRecord) -> bool:
        captured = _hushed_threads.get(record.thread or 0)
        if captured is None:
            return True
        if record.levelno >= logging.WARNING:
            with contextlib.suppress(Exception):
                captured.append(record.getMessage())
        return False


# apprise's plugins all log to "apprise" (apprise.logger.LOGGER_NAME); requests' urllib3
# logs each request line, path and token included, at DEBUG. A filter on a logger sees the
# records made at that logger, so each gets one.
for _name in ("apprise", "urllib3.connectionpool"):
    logging.getLogger(_name).addFilter(_HushFilter())


@contextlib.contextmanager
def _hushed() -> Iterator[list[str]]:
    captured: list[str] = []
    ident = threading.get_ident()
    with _hushed_lock:
        _hushed_threads[ident] = captured
    try:
        yield captured
    finally:
        with _hushed_lock:
            _hushed_threads.pop(ident, None)


# --- sending -----------------------------------------------------------------------------


def dialect_for(plugin: apprise.plugins.NotifyBase) -> tuple[Dialect, NotifyFormat]:
    """The one place that decides how a destination's message is rendered: our dialect,
    and the body format declared to apprise. The declared format is the one apprise
    resolves for the plugin, so apprise converts nothing; a `?format=` in the URL wins."""
    scheme = _scheme_of(plugin)
    preferred = NotifyFormat.MARKDOWN if scheme in _MARKDOWN_SCHEMES else NotifyFormat.TEXT
    resolved = NotifyFormat(plugin.resolve_format(preferred))
    if scheme in ("mmost", "mmosts") and resolved is NotifyFormat.TEXT:
        # Mattermost's plugin passes text through as {"text": ...}, which Mattermost renders
        # as Markdown with Slack's <url|label> and <!channel>: we escape all of it.
        return Dialect.SLACK, resolved
    if resolved is NotifyFormat.MARKDOWN:
        return Dialect.MARKDOWN, resolved
    if resolved is NotifyFormat.HTML:
        return Dialect.HTML, resolved
    if scheme in ("slack", "slacks"):
        # apprise's Slack plugin escapes &, < and > of text itself (and the title always).
        return Dialect.TEXT_ESCAPED_BY_APPRISE, resolved
    return Dialect.TEXT, resolved


def _scheme_of(plugin: apprise.plugins.NotifyBase) -> str:
    url = plugin.url(privacy=True)
    match = _SCHEME.match(url)
    return match.group(1).lower() if match else ""


def send(url: str, message: Outgoing) -> None:
    """Deliver `message` to `url`, or raise SendFailed (whose text holds no secret)."""
    try:
        validate_destination(url)
    except ValidationError as error:
        raise SendFailed(f"Not a valid destination ({masked(url)}): {error.messages[0]}") from None
    if _is_django_mailto(url):
        _send_email(url, message)
    else:
        _send_apprise(url, message)


def _send_email(url: str, message: Outgoing) -> None:
    addresses = _mailto_addresses(url)
    subject, text, html = render_email(message)
    email = EmailMultiAlternatives(
        subject=subject, body=text, from_email=settings.DEFAULT_FROM_EMAIL, to=addresses
    )
    email.attach_alternative(html, "text/html")
    try:
        # EMAIL_TIMEOUT (settings) bounds a mail server that does not answer.
        email.send(fail_silently=False)
    except Exception as error:  # noqa: BLE001 - any backend failure is a failed send
        detail = scrub(str(error), url)
        for address in addresses:
            detail = detail.replace(address, _mask_address(address))
        raise SendFailed(f"Email to {masked(url)} failed: {type(error).__name__}: {detail}"[:1000]) from None


def _send_apprise(url: str, message: Outgoing) -> None:
    plugin = _instantiate(url)
    if plugin is None:  # validated above; a race with a plugin's own state is still a failure
        raise SendFailed(f"Not a valid destination ({masked(url)}).")
    timeout = float(settings.FLAKYBOARD_NOTIFY_TIMEOUT_SECONDS)
    # A hanging destination fails within the timeout: apprise's default is 4 s to connect
    # and 4 s per read, and a URL's ?cto=/?rto= could set anything; ours wins.
    plugin.socket_connect_timeout = timeout
    plugin.socket_read_timeout = timeout
    # The outbox retries with back-off; apprise's own retries (?retry=) would multiply the
    # time a send may take.
    plugin.retry = 0
    # ":smile:" in a test name stays as typed.
    plugin.interpret_emojis = False
    dialect, body_format = dialect_for(plugin)
    separate_title = plugin.title_maxlen > 0
    body = render_body(message, dialect, with_title=not separate_title)
    title = render_title(message.title, dialect) if separate_title else ""
    with _hushed() as captured:
        try:
            ok = plugin.notify(
                body=body,
                title=title,
                body_format=body_format,
                # One request per message: split pieces would each get the full timeout.
                overflow=OverflowMode.TRUNCATE,
            )
        except Exception as error:  # noqa: BLE001 - a plugin raising is a failed send
            captured.append(f"{type(error).__name__}: {error}")
            ok = False
    if ok:
        return
    detail = " / ".join(dict.fromkeys(captured)) or "the destination did not accept the message"
    text = f"Sending to {masked(url)} failed: {scrub(detail, url)}"
    logger.info("notification send failed: %s", text)
    raise SendFailed(text[:1000])
