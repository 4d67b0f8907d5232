"""Receive a Svix delivery: verify, store exactly once, project.

The rule that everything else hangs on: a 2xx answer means the delivery row is
committed. Verification failures store nothing (the sender is not Trunk); a verified
delivery is stored whatever its content, with an outcome:

- processed: parsed and applied to the projections;
- pending:   parsed, stored, and waiting for the projector (only with
             FLAKYBOARD_DEFERRED_PROJECTION: events/projector.py applies it);
- ignored:   a type we do not handle yet (kept; `reprocess_deliveries --status ignored`
             applies it after an upgrade adds support);
- invalid:   not JSON, or a required field missing or of the wrong type (retrying cannot
             fix it, so we still answer 2xx);
- failed:    a bug or data problem while projecting: the delivery is kept, the
             projection rolled back, and the error recorded for `reprocess_deliveries`.
"""

from __future__ import annotations

import enum
import functools
import json
import logging
import traceback
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone
from svix.webhooks import Webhook, WebhookVerificationError

from . import parsing, rollups, sql
from .models import Delivery, Investigation, MonitorEvent, StatusChange
from .projections import apply_event

logger = logging.getLogger(__name__)

# Svix sends svix-*; white-labelled senders send the Standard Webhooks webhook-* names.
HEADER_SETS = (
    ("svix-id", "svix-timestamp", "svix-signature"),
    ("webhook-id", "webhook-timestamp", "webhook-signature"),
)
STORED_HEADERS = (*HEADER_SETS[0], *HEADER_SETS[1], "content-type")


class Result(enum.Enum):
    STORED = "stored"  # new delivery stored (whatever its outcome)
    REDELIVERY = "redelivery"  # same svix id again: counted, nothing applied
    MISSING_HEADERS = "missing_headers"
    NOT_UTF8 = "not_utf8"
    BAD_SIGNATURE = "bad_signature"
    NOT_CONFIGURED = "not_configured"


@dataclass(frozen=True)
class IngestResult:
    result: Result
    delivery: Delivery | None = None
    detail: str = ""


def _message_id(headers: Mapping[str, str]) -> str | None:
    for id_header, ts_header, sig_header in HEADER_SETS:
        if headers.get(id_header) and headers.get(ts_header) and headers.get(sig_header):
            return headers[id_header]
    return None


@functools.lru_cache(maxsize=16)
def _webhook(secret: str) -> Webhook:
    """A verifier per secret, decoded once (it holds only the key: safe to share)."""
    return Webhook(secret)


def verify_signature(body: bytes, headers: Mapping[str, str], secrets: list[str]) -> bool:
    """True when any configured secret verifies the body (secret rotation).

    The svix library raises WebhookVerificationError for a bad or stale signature, but
    other exceptions for a malformed header or secret (ValueError, binascii.Error...):
    all of them mean "not verified", never a 500.
    """
    for secret in secrets:
        try:
            _webhook(secret).verify(body, headers)
        except (WebhookVerificationError, Exception):  # noqa: BLE001, S112 - see docstring
            continue
        return True
    return False


def classify(text: str) -> tuple[str, Any, parsing.Event | None, str, str]:
    """(event_type, payload, event, outcome, error) for a verified body."""
    try:
        payload = json.loads(text)
    except ValueError as exc:
        return "", None, None, Delivery.Outcome.INVALID, f"body is not JSON: {exc}"
    event_type = parsing.event_type_of(payload)
    try:
        event = parsing.parse_event(payload)
    except parsing.UnknownEventType as exc:
        return event_type, payload, None, Delivery.Outcome.IGNORED, str(exc)
    except parsing.PayloadError as exc:
        return event_type, payload, None, Delivery.Outcome.INVALID, str(exc)
    return event_type, payload, event, Delivery.Outcome.PROCESSED, ""


def ingest_delivery(body: bytes, headers: Mapping[str, str], *, user_agent: str = "") -> IngestResult:
    """Verify and store one delivery; project it if new. Raises DatabaseError if the
    database is unavailable (the view answers 503 so Svix retries)."""
    msg_id = _message_id(headers)
    if msg_id is None:
        return IngestResult(
            Result.MISSING_HEADERS, detail="svix-id, svix-timestamp and svix-signature are required"
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return IngestResult(Result.NOT_UTF8, detail="body is not UTF-8")
    secrets = settings.TRUNK_WEBHOOK_SECRETS
    if not secrets:
        return IngestResult(Result.NOT_CONFIGURED, detail="no webhook secret is configured")
    if not verify_signature(body, headers, secrets):
        return IngestResult(Result.BAD_SIGNATURE, detail="signature verification failed")

    event_type, payload, event, outcome, error = classify(text)
    stored_headers = {k: headers[k] for k in STORED_HEADERS if headers.get(k)}
    delivery = Delivery(
        svix_id=msg_id[:255],
        event_type=event_type,
        body=text,
        headers=stored_headers,
        user_agent=user_agent[:500],
        received_at=timezone.now(),
        occurred_at=event.occurred_at if event else parsing.event_time_of(payload),
        outcome=outcome,
        error=error,
    )
    deferred = event is not None and settings.FLAKYBOARD_DEFERRED_PROJECTION
    if deferred:
        delivery.outcome = Delivery.Outcome.PENDING  # the projector applies it (events.projector)
    try:
        if deferred:
            # One statement, committed when it returns (autocommit). Inside a caller's
            # transaction, a savepoint keeps a duplicate svix id from aborting it.
            with transaction.atomic() if connection.in_atomic_block else nullcontext():
                sql.insert_instance(delivery)
        else:
            # One transaction, no savepoint: the delivery row and its projection commit together.
            with transaction.atomic():
                delivery.processed_at = timezone.now() if event else None
                sql.insert_instance(delivery)  # save(force_insert=True), without the ORM's CPU
                if event is not None:
                    apply_event(event, delivery)
        return IngestResult(Result.STORED, delivery=delivery)
    except IntegrityError as exc:
        # The svix id is stored already: a retry, a manual resend, or a concurrent
        # delivery of the same message that committed first (the unique index made us
        # wait for it). Trying the INSERT first keeps the common path one statement
        # shorter than a look-up would.
        if _count_redelivery(msg_id):
            return IngestResult(Result.REDELIVERY)
        if event is None:
            raise
        failure: Exception = exc
    except (OperationalError, InterfaceError):
        raise  # database unavailable, or a deadlock: the view answers 503 and Svix retries
    except Exception as exc:  # noqa: BLE001 - any projection bug must not lose the delivery
        if event is None:
            raise
        failure = exc
    return _store_failed(delivery, failure)


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


def error_text(exc: Exception) -> str:
    return "".join(traceback.format_exception_only(exc)).strip()[:10_000]


def _count_redelivery(msg_id: str) -> bool:
    return bool(
        Delivery.objects.filter(svix_id=msg_id[:255]).update(
            redeliveries=F("redeliveries") + 1, last_redelivered_at=timezone.now()
        )
    )


def _apply_or_record_failure(event: parsing.Event, delivery: Delivery, *, removed: rollups.Stale) -> None:
    """For reprocessing a stored delivery: apply inside a savepoint, so a failing
    projection rolls back alone and the delivery is marked failed with the error.

    `removed`: the rollups that removing what this delivery projected before made stale,
    refreshed with those the new projection changes, in one pass; alone when the
    projection fails."""
    try:
        with transaction.atomic():
            stale = removed.copy()
            apply_event(event, delivery, stale=stale)
            stale.refresh()
    except Exception as exc:  # noqa: BLE001 - any projection bug must not lose the delivery
        logger.exception("projection failed for delivery %s", delivery.svix_id)
        delivery.outcome = Delivery.Outcome.FAILED
        delivery.error = error_text(exc)
        delivery.processed_at = None
        Delivery.objects.filter(pk=delivery.pk).update(
            outcome=delivery.outcome, error=delivery.error, processed_at=None
        )
        removed.refresh()


def reprocess_delivery(delivery: Delivery, *, projections_empty: bool = False) -> str:
    """Parse and project a stored delivery again (after an upgrade or a fix).

    Removes what this delivery projected before, so reprocessing is idempotent; a
    rebuild, which starts from empty projections, skips that (`projections_empty`).
    The delivery row is written only when its outcome or parsed fields change, so
    `processed_at` stays the time it was first applied. Returns the new outcome.
    """
    event_type, payload, event, outcome, error = classify(delivery.body)
    parsed = {
        "event_type": event_type or delivery.event_type,
        "outcome": outcome,
        "error": error,
        "occurred_at": event.occurred_at if event else parsing.event_time_of(payload),
    }
    with transaction.atomic():
        removed = rollups.Stale() if projections_empty else remove_projection_of(delivery)
        changed = [name for name, value in parsed.items() if getattr(delivery, name) != value]
        if changed:
            for name, value in parsed.items():
                setattr(delivery, name, value)
            delivery.processed_at = timezone.now() if event else None
            delivery.save(update_fields=[*changed, "processed_at"])
        if event is not None:
            _apply_or_record_failure(event, delivery, removed=removed)
        else:
            removed.refresh()
    return delivery.outcome


def remove_projection_of(delivery: Delivery) -> rollups.Stale:
    """Delete the history rows this delivery projected. Returns the rollups that made
    stale (its status change's test, its monitor event's pair, its investigation's day),
    for the caller to refresh."""
    # History rows point at their delivery; deleting them lets it be applied again.
    # (Current state is guarded by event time, so re-applying is harmless.)
    stale = rollups.Stale(
        tests=set(StatusChange.objects.filter(delivery=delivery).values_list("test_case_id", flat=True)),
        pairs=set(MonitorEvent.objects.filter(delivery=delivery).values_list("monitor_id", "test_case_id")),
        days={
            rollups.day_of(at)
            for at in Investigation.objects.filter(delivery=delivery).values_list("occurred_at", flat=True)
        },
    )
    for relation in ("status_change", "monitor_event", "investigation", "quarantine_change"):
        model = Delivery._meta.get_field(relation).related_model
        model.objects.filter(delivery=delivery).delete()
    return stale
