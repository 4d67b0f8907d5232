"""HTTP endpoints of the write side: thin; the work is in `events.receiver.receive`."""

import logging

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from flakyboard import observability
from flakyboard.db import database_unreachable

from .receive import Result, ingest_delivery

logger = logging.getLogger(__name__)

# Svix: any 2xx within 15 s is success; everything else (redirects too) is retried.
STATUS_FOR = {
    Result.STORED: 200,
    Result.REDELIVERY: 200,
    Result.MISSING_HEADERS: 400,
    Result.MIXED_HEADERS: 400,
    Result.MALFORMED_ID: 400,
    Result.BAD_SIGNATURE: 401,
    Result.NOT_CONFIGURED: 503,
}


@csrf_exempt
@require_POST
def trunk_webhook(request: HttpRequest) -> JsonResponse:
    """Receive one Trunk webhook delivered by Svix. 2xx means the delivery is committed.
    Every log line written meanwhile carries its svix id; each answer is counted and timed
    (flakyboard.observability)."""
    svix_id = observability.svix_id_var.set(request.headers.get("svix-id", "")[:120])
    try:
        with observability.Timer() as timer:
            response, event_type, outcome = _receive(request)
        observability.RECEIVER_SECONDS.observe(timer.seconds)
        observability.DELIVERIES.labels(observability.type_label(event_type), outcome).inc()
        if outcome == "duplicate":
            observability.REDELIVERIES.inc()
        logger.info(
            "delivery %s: %s %s in %.1f ms",
            outcome,
            event_type or "-",
            response.status_code,
            timer.seconds * 1000,
        )
        return response
    finally:
        observability.svix_id_var.reset(svix_id)


def _receive(request: HttpRequest) -> tuple[JsonResponse, str, str]:
    """The answer, the delivery's event type ("" unknown) and its outcome for the metrics."""
    limit = settings.TRUNK_WEBHOOK_MAX_BODY_BYTES
    body = _read_body(request, limit)
    if isinstance(body, JsonResponse):
        return body, "", "refused"

    try:
        outcome = ingest_delivery(body, request.headers, user_agent=request.headers.get("User-Agent", ""))
    except DatabaseError as exc:
        # Nothing was committed: answer 503 so Svix retries later and nothing is lost.
        database_unreachable(exc)
        logger.exception("database unavailable while storing a delivery")
        return JsonResponse({"error": "storage unavailable, retry later"}, status=503), "", "unavailable"

    status = STATUS_FOR[outcome.result]
    if status >= 400:
        return JsonResponse({"error": outcome.detail}, status=status), "", outcome.result.name.lower()
    if outcome.result is Result.REDELIVERY:
        answer = JsonResponse({"status": "duplicate", "detail": "already stored; not applied again"})
        return answer, "", "duplicate"
    delivery = outcome.delivery
    assert delivery is not None, "a stored delivery is returned with its row"
    answer = JsonResponse({"status": delivery.outcome, "delivery": delivery.pk, "error": delivery.error})
    return answer, delivery.event_type, delivery.outcome


def _too_large(limit: int) -> JsonResponse:
    return JsonResponse({"error": f"body larger than {limit} bytes"}, status=413)


def _read_body(request: HttpRequest, limit: int) -> bytes | JsonResponse:
    """The request body, at most `limit` bytes, or the answer that refuses it.

    A chunked body has no Content-Length, and Django reads such a body as empty (its
    stream stops at Content-Length): read it from the server's input when the server
    says that input ends with the body (gunicorn sets `wsgi.input_terminated`), else
    refuse it with 411, so the signature is never checked against an empty body."""
    if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        if not request.META.get("wsgi.input_terminated"):
            return JsonResponse({"error": "a chunked body needs a Content-Length on this server"}, status=411)
        body = request.META["wsgi.input"].read(limit + 1)
        return _too_large(limit) if len(body) > limit else body
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return JsonResponse({"error": "bad Content-Length"}, status=400)
    if declared > limit:
        return _too_large(limit)
    body = request.read(limit + 1)
    return _too_large(limit) if len(body) > limit else body


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and readiness: the app answers and the database accepts a query."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        database_unreachable(exc)
        return JsonResponse({"status": "error", "database": "unavailable"}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})
