"""Pagination: page numbers for current-state lists, cursors for the long time-ordered
lists (events, deliveries), where an offset would get slower the deeper one pages and
would skip or repeat rows while new events arrive.

Bad paging values are 400 naming the parameter (DRF answers 404 or silently falls back
to the default size); a page past the end stays DRF's 404 "Invalid page.".
"""

import re

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import pagination
from rest_framework.exceptions import NotFound, ValidationError

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
_POSITIVE_INT = re.compile(r"[0-9]{1,18}", re.ASCII)


def _positive_int(request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if not _POSITIVE_INT.fullmatch(raw) or int(raw) < 1:
        raise ValidationError({name: [f"Enter a whole number of at least 1 (got {raw!r})."]})
    return int(raw)


def _page_size_parameter() -> dict:
    return {
        "name": "page_size",
        "required": False,
        "in": "query",
        "description": f"Results per page (default {DEFAULT_PAGE_SIZE}, at most {MAX_PAGE_SIZE}; "
        "larger values are cut to the maximum).",
        "schema": {"type": "integer", "minimum": 1},
    }


class PageNumberPagination(pagination.PageNumberPagination):
    page_size = DEFAULT_PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE

    def get_page_size(self, request) -> int:
        size = _positive_int(request, self.page_size_query_param)
        return self.page_size if size is None else min(size, self.max_page_size)

    def paginate_queryset(self, queryset, request, view=None):
        if request.query_params.get(self.page_query_param) not in self.last_page_strings:
            _positive_int(request, self.page_query_param)
        return super().paginate_queryset(queryset, request, view)

    def get_schema_operation_parameters(self, view) -> list[dict]:
        return [
            {
                "name": self.page_query_param,
                "required": False,
                "in": "query",
                "description": "Page number, from 1 (or `last`). A page past the end is 404.",
                "schema": {"type": "integer", "minimum": 1},
            },
            _page_size_parameter(),
        ]


class CursorPagination(pagination.CursorPagination):
    """Newest first by event time (id breaks ties); follow `next` / `previous`."""

    page_size = DEFAULT_PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    ordering = ("-occurred_at", "-id")
    invalid_cursor = "Invalid cursor: pass the `next` or `previous` link of a page unchanged."

    def get_page_size(self, request) -> int:
        size = _positive_int(request, self.page_size_query_param)
        return self.page_size if size is None else min(size, self.max_page_size)

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except (NotFound, UnicodeError):
            raise ValidationError({self.cursor_query_param: [self.invalid_cursor]}) from None

    def paginate_queryset(self, queryset, request, view=None):
        # A cursor is opaque but client-supplied: a forged position that is not a valid
        # timestamp must be a 400, not a 500 from the field's conversion.
        if not request.query_params.get(self.cursor_query_param):
            return super().paginate_queryset(queryset, request, view)
        try:
            return super().paginate_queryset(queryset, request, view)
        except (DjangoValidationError, ValueError, TypeError, OverflowError):
            raise ValidationError({self.cursor_query_param: [self.invalid_cursor]}) from None

    def get_schema_operation_parameters(self, view) -> list[dict]:
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "Opaque position: the value from a previous page's `next` or `previous` link.",
                "schema": {"type": "string"},
            },
            _page_size_parameter(),
        ]


class DeliveryCursorPagination(CursorPagination):
    """Deliveries: newest received first (our clock, see events.models)."""

    ordering = ("-received_at", "-id")


class TriageCursorPagination(CursorPagination):
    """The triage history: newest action first (flakyboard's clock)."""

    ordering = ("-at", "-id")
