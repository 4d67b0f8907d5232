"""Receive a Svix delivery: verify, store exactly once, project.

The rule that everything else hangs on: a 2xx answer means the delivery row is
committed. Verification failures store nothing (the sender is not Trunk); a verified
delivery is stored whatever its content, with an outcome:

- processed: parsed and applied to the projections;
- pending:   parsed, stored, and waiting for the projector (only with
             FLAKYBOARD_DEFERRED_PROJECTION: events/projection/projector.py applies it);
- ignored:   a type we do not handle yet (kept; `reprocess_deliveries --status ignored`
             applies it after an upgrade adds support);
- invalid:   not UTF-8, not JSON, or a field missing, of the wrong type or out of range
             (retrying cannot fix it, so we still answer 2xx); the error names the field;
- failed:    a bug or data problem while projecting: the delivery is kept, the
             projection rolled back, and the error recorded for `reprocess_deliveries`.
"""

from __future__ import annotations

import base64
import enum
import functools
import hashlib
import hmac
import logging
import re
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from events import rollups, sql
from events.models import Delivery
from events.projection.apply import Pending, TestCreatedConcurrently, apply_now, error_text
from events.trunk import parsing, reader
from events.trunk.classify import classify
from flakyboard.db import statement_timed_out

logger = logging.getLogger(__name__)

# Svix sends svix-*; white-labelled senders send the Standard Webhooks webhook-* names.
# A request carries exactly one of these sets: the id that is stored (and deduplicated)
# is the id that was verified.
HEADER_SETS = (
    ("svix-id", "svix-timestamp", "svix-signature"),
    ("webhook-id", "webhook-timestamp", "webhook-signature"),
)
STORED_HEADERS = (*HEADER_SETS[0], *HEADER_SETS[1], "content-type")
# Svix's message ids are "msg_" and 27 characters; an id may also be one the sender chose.
# It must fit its column whole (a cut id could collide with another) and be one token:
# printable ASCII without spaces or commas (a repeated header reaches us comma-joined).
MESSAGE_ID = re.compile(r"[\x21-\x2b\x2d-\x7e]{1,255}")
# The timestamp header: unix seconds in ASCII digits ("²" is a digit to str.isdigit, not
# to int()), at most 10 of them (until the year 2286; more overflows a datetime).
UNIX_SECONDS = re.compile(r"[0-9]{1,10}")
# Standard Webhooks: signatures older or newer than this are refused (replay window).
TIMESTAMP_TOLERANCE = timedelta(minutes=5)


class Result(enum.Enum):
    STORED = "stored"  # new delivery stored (whatever its outcome)
    REDELIVERY = "redelivery"  # same svix id again: counted, nothing applied
    MISSING_HEADERS = "missing_headers"
    MIXED_HEADERS = "mixed_headers"
    MALFORMED_ID = "malformed_id"
    BAD_SIGNATURE = "bad_signature"
    NOT_CONFIGURED = "not_configured"


@dataclass(frozen=True)
class IngestResult:
    result: Result
    delivery: Delivery | None = None
    detail: str = ""


@dataclass(frozen=True)
class SignedMessage:
    """The one header set a request was signed with."""

    msg_id: str
    timestamp: str
    signatures: str


def signed_message(headers: Mapping[str, str]) -> SignedMessage | IngestResult:
    """The request's header set, or the refusal: none, an incomplete or a mixed set.

    Mixing is refused outright: verifying one set while storing another set's id would
    let a captured delivery be replayed under a fresh id (and be applied again)."""
    sent = [names for names in HEADER_SETS if any(name in headers for name in names)]
    if len(sent) > 1:
        return IngestResult(
            Result.MIXED_HEADERS, detail="send either the svix-* or the webhook-* headers, not both"
        )
    names = sent[0] if sent else HEADER_SETS[0]
    values = [headers.get(name, "") for name in names]
    if not all(values):
        return IngestResult(Result.MISSING_HEADERS, detail=f"{', '.join(names)} are required")
    if not MESSAGE_ID.fullmatch(values[0]):
        return IngestResult(
            Result.MALFORMED_ID,
            detail=f"{names[0]} must be one value of 1 to 255 printable ASCII characters, no spaces or commas",
        )
    return SignedMessage(*values)


@functools.lru_cache(maxsize=16)
def _signing_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret, decoded once (as svix decodes it)."""
    return base64.b64decode(secret.removeprefix("whsec_") + "==")


def verify_signature(
    body: bytes, message: SignedMessage, secrets: list[str], *, now: datetime | None = None
) -> bool:
    """True when any configured secret (rotation) signed these exact bytes recently.

    The Standard Webhooks scheme that svix implements: HMAC-SHA256 keyed with the secret
    over `{id}.{timestamp}.{body}`, base64, sent as space-separated `v1,<signature>`
    entries (any match is enough), timestamp within 5 minutes of now. Written here
    rather than calling `svix.Webhook.verify` because that decodes the body as UTF-8
    first: a validly signed body that is not UTF-8 would be unverifiable, and it must be
    stored like any other (tests/events/test_signature.py checks both agree on the rest).
    """
    if not UNIX_SECONDS.fullmatch(message.timestamp):
        return False
    signed_at = datetime.fromtimestamp(int(message.timestamp), tz=UTC)
    if abs((now or datetime.now(UTC)) - signed_at) > TIMESTAMP_TOLERANCE:
        return False
    signed = b"%s.%s.%s" % (message.msg_id.encode(), str(int(message.timestamp)).encode(), body)
    offered = []
    for entry in message.signatures.split(" "):
        version, _, signature = entry.partition(",")
        if version != "v1":
            continue
        try:
            offered.append(base64.b64decode(signature, validate=True))
        except ValueError:  # binascii.Error: not base64
            continue
    for secret in secrets:
        try:
            key = _signing_key(secret)
        except ValueError:  # a malformed secret verifies nothing (checks.py warns about it)
            continue
        expected = hmac.new(key, signed, hashlib.sha256).digest()
        if any(hmac.compare_digest(expected, sig) for sig in offered):
            return True
    return False


def storable_body(body: bytes) -> tuple[str, bytes | None]:
    """(text, raw): the body as text for the `body` column, and the exact bytes when the
    text cannot hold them (not UTF-8, or a NUL byte, which PostgreSQL text refuses)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return reader.storable_text(body.decode("utf-8", "replace")), body
    if "\x00" in text:
        return reader.storable_text(text), body
    return text, None


def ingest_delivery(body: bytes, headers: Mapping[str, str], *, user_agent: str = "") -> IngestResult:
    """Verify and store one delivery; project it if new. Raises DatabaseError if the
    database is unavailable (the view answers 503 so Svix retries)."""
    message = signed_message(headers)
    if isinstance(message, IngestResult):
        return message
    secrets = settings.TRUNK_WEBHOOK_SECRETS
    if not secrets:
        return IngestResult(Result.NOT_CONFIGURED, detail="no webhook secret is configured")
    if not verify_signature(body, message, secrets):
        return IngestResult(Result.BAD_SIGNATURE, detail="signature verification failed")

    received_at = timezone.now()
    event_type, payload, event, outcome, error = classify(body, received_at=received_at)
    text, raw = storable_body(body)
    delivery = Delivery(
        svix_id=message.msg_id,
        event_type=event_type,
        body=text,
        raw_body=raw,
        headers={k: reader.storable_text(headers[k]) for k in STORED_HEADERS if headers.get(k)},
        user_agent=reader.bounded(reader.storable_text(user_agent), 500),
        received_at=received_at,
        occurred_at=event.occurred_at if event else parsing.event_time_of(payload, received_at=received_at),
        outcome=outcome,
        error=reader.storable_text(error),
    )
    deferred = event is not None and settings.FLAKYBOARD_DEFERRED_PROJECTION
    if deferred:
        delivery.outcome = Delivery.Outcome.PENDING  # the projector applies it (events.projection.projector)
    try:
        if deferred:
            # One statement, committed when it returns (autocommit). Inside a caller's
            # transaction, a savepoint keeps a duplicate svix id from aborting it.
            with transaction.atomic() if connection.in_atomic_block else nullcontext():
                sql.insert_instance(delivery)
        else:
            _store_and_apply(delivery, event)
        return IngestResult(Result.STORED, delivery=delivery)
    except IntegrityError as exc:
        # The svix id is stored already: a retry, a manual resend, or a concurrent
        # delivery of the same message that committed first (the unique index made us
        # wait for it). Trying the INSERT first keeps the common path one statement
        # shorter than a look-up would.
        if _count_redelivery(message.msg_id):
            return IngestResult(Result.REDELIVERY)
        if event is None:
            raise
        failure: Exception = exc
    except (OperationalError, InterfaceError) as exc:
        if event is None or not statement_timed_out(exc):
            raise  # database unavailable, or a deadlock: the view answers 503 and Svix retries
        # A projection slower than the web's statement timeout (flakyboard/db.py) would
        # time out on every retry too: keep the delivery, failed, for
        # `reprocess_deliveries`, which runs without that bound.
        failure = exc
    except Exception as exc:  # noqa: BLE001 - any projection bug must not lose the delivery
        if event is None:
            raise
        failure = exc
    return _store_failed(delivery, failure)


def _store_and_apply(delivery: Delivery, event: parsing.Event | None, *, attempts: int = 3) -> None:
    """One transaction, no savepoint: the delivery row and its projection commit together
    (a batch of one: events.projection.apply). Should a concurrent transaction change what
    the batch loaded meanwhile (TestCreatedConcurrently, rare: concurrent creations of one
    test wait for each other at its claim), the
    transaction rolls back and runs again, and then finds the change."""
    for attempt in range(1, attempts + 1):
        try:
            with transaction.atomic():
                delivery.pk = None
                delivery.processed_at = timezone.now() if event else None
                sql.insert_instance(delivery)  # save(force_insert=True), without the ORM's CPU
                if event is not None:
                    # Live: an episode this starts is an alert (events/alerts.py).
                    live = rollups.Stale(alerts_at=delivery.processed_at)
                    apply_now([Pending(event, delivery.pk, delivery.svix_id)], live)
            return
        except TestCreatedConcurrently:
            if attempt == attempts:
                raise


def _store_failed(delivery: Delivery, failure: Exception) -> IngestResult:
    """The projection failed and rolled back: keep the delivery anyway, marked failed with
    the error, for `reprocess_deliveries`."""
    logger.error("projection failed for delivery %s", delivery.svix_id, exc_info=failure)
    delivery.pk = None
    delivery.outcome = Delivery.Outcome.FAILED
    delivery.error = error_text(failure)
    delivery.processed_at = None
    try:
        with transaction.atomic():
            delivery.save(force_insert=True)
    except IntegrityError:
        if _count_redelivery(delivery.svix_id):
            return IngestResult(Result.REDELIVERY)
        raise
    return IngestResult(Result.STORED, delivery=delivery)


def _count_redelivery(msg_id: str) -> bool:
    """Count a redelivery of the stored message `msg_id`; False when none is stored.

    Waiting at most REDELIVERY_LOCK_WAIT_MS for the row: a projector applying that delivery
    holds it until its batch commits, seconds under load, and a redelivery that waited for
    it timed out (503, and a receiver thread held for the web's statement timeout). Then
    it is answered as a redelivery (it is one: the row exists) and logged, and only the
    row's counter misses it (flakyboard_redeliveries_total counts it). Concurrent
    redeliveries of one message hold the row a moment each and are all counted."""
    postgresql = connection.vendor == "postgresql"  # SQLite has no row locks
    callers = ""
    try:
        with transaction.atomic():
            if postgresql:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT current_setting('lock_timeout')")
                    callers = cursor.fetchone()[0]
                    cursor.execute(f"SET LOCAL lock_timeout = '{REDELIVERY_LOCK_WAIT_MS}ms'")
            counted = Delivery.objects.filter(svix_id=msg_id).update(
                redeliveries=F("redeliveries") + 1, last_redelivered_at=timezone.now()
            )
            if postgresql:  # back to what it was, in a caller's transaction
                with connection.cursor() as cursor:
                    cursor.execute("SELECT set_config('lock_timeout', %s, true)", [callers])
            return bool(counted)
    except OperationalError as exc:
        if not sql.lock_not_available(exc):
            raise
    # Some lock was busy: the row's, held by a projector's batch, or the table's (a
    # migration). A redelivery only if the message is stored: a plain read takes no row
    # lock (and waits for a table lock as any statement would, up to the statement timeout).
    if not Delivery.objects.filter(svix_id=msg_id).exists():
        return False
    logger.warning(
        "redelivery of %s while a projector applies it: answered as a redelivery, not counted on its row",
        msg_id,
    )
    return True


REDELIVERY_LOCK_WAIT_MS = 200
