"""The floor cost of this stack: a view that stores the raw body and nothing else
(same server, same database, no verification, no parsing, no projection). The ingest
benchmark runs the same load against it and against the real receiver."""

from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

TABLE = "bench_raw_delivery"
CREATE = f"CREATE TABLE IF NOT EXISTS {TABLE} (id bigserial PRIMARY KEY, svix_id text, body text, received_at timestamptz)"


@csrf_exempt
def store_raw_body(request: HttpRequest) -> HttpResponse:
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (svix_id, body, received_at) VALUES (%s, %s, %s)",  # noqa: S608
            [request.headers.get("svix-id", ""), request.body.decode("utf-8", "replace"), timezone.now()],
        )
    return HttpResponse(b'{"status":"stored"}', content_type="application/json")
