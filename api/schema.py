"""OpenAPI schema helpers: every operation documents its error responses too, so that
clients (and schemathesis's status-code conformance check) know a 400 names the bad
parameter, a 401 asks for a token, and so on."""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema as BaseAutoSchema
from drf_spectacular.plumbing import ResolvedComponent

from .pagination import PageNumberPagination

ERROR_SCHEMA = {
    "type": "object",
    "description": (
        "An error. `detail` explains it; a validation error maps each bad parameter or body "
        'field to its messages instead, e.g. `{"status": ["Select a valid choice. ..."]}`.'
    ),
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
}
ERROR_DESCRIPTIONS = {
    "400": "A parameter or body field is invalid: the body names it.",
    "401": "Authentication needed: `Authorization: Token <key>` or a session.",
    "403": "Authenticated, but not allowed (staff only, or triage permission needed).",
    "404": "No such object, or a page past the end.",
    "429": "Too many requests: retry after the number of seconds in `Retry-After`.",
}


class AutoSchema(BaseAutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response" or not self.path.startswith("/api/v1/"):
            return responses
        codes = ["401", "429"]
        if self.method == "PATCH" or any(p.get("in") == "query" for p in self._get_parameters()):
            codes.append("400")
        if self.method != "GET" or getattr(self.view, "staff_only", False):
            codes.append("403")
        paginator = self._get_paginator()
        if "{" in self.path or isinstance(paginator, PageNumberPagination):
            codes.append("404")
        component = ResolvedComponent(
            name="Error", type=ResolvedComponent.SCHEMA, object="Error", schema=ERROR_SCHEMA
        )
        self.registry.register_on_missing(component)
        for code in sorted(codes):
            responses.setdefault(
                code,
                {
                    "content": {"application/json": {"schema": component.ref}},
                    "description": ERROR_DESCRIPTIONS[code],
                },
            )
        return responses


def document_query_conventions(result: dict, generator, request, public) -> dict:
    """drf-spectacular postprocessing hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]).

    - Every optional query parameter of the API treats an empty value as absent (the
      browsable API's filter form sends every field): say so with `allowEmptyValue`.
    - The triage PATCH body refuses any field but its own: `additionalProperties: false`.
    """
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/v1/"):
            continue
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query" and not parameter.get("required"):
                    parameter["allowEmptyValue"] = True
    triage = result.get("components", {}).get("schemas", {}).get("PatchedTriageRequest")
    if triage is not None:
        triage["additionalProperties"] = False
    return result
