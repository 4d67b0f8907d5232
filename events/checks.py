"""System checks: refuse to start a production server that cannot be trusted."""

import base64
import binascii
from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register


@register(Tags.security)
def secrets_configured(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    """With DEBUG off, a secret key and at least one webhook secret are required.

    Runs on every management command and server start (not only `check --deploy`), so
    a production deployment missing them fails at once instead of rejecting webhooks.
    """
    errors: list[CheckMessage] = []
    if not settings.DEBUG and settings.SECRET_KEY == settings.INSECURE_DEV_SECRET_KEY:
        errors.append(
            Error(
                "DJANGO_SECRET_KEY is not set.",
                hint="Set DJANGO_SECRET_KEY to a long random string (or DJANGO_DEBUG=true for development).",
                id="flakyboard.E001",
            )
        )
    if not settings.TRUNK_WEBHOOK_SECRETS:
        check = Warning if settings.DEBUG else Error
        errors.append(
            check(
                "TRUNK_WEBHOOK_SECRET is not set: every webhook will be rejected.",
                hint="Copy the endpoint's signing secret (whsec_...) from Trunk's webhook settings.",
                id="flakyboard.E002" if check is Error else "flakyboard.W002",
            )
        )
    for secret in settings.TRUNK_WEBHOOK_SECRETS:
        try:
            # The same decoding the svix library applies: optional prefix, then base64.
            base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except binascii.Error:
            errors.append(
                Error(
                    f"TRUNK_WEBHOOK_SECRET has an entry that is not a Svix secret ({secret[:10]}...).",
                    hint="Svix endpoint secrets look like whsec_<base64>; separate several with spaces or commas.",
                    id="flakyboard.E003",
                )
            )
    return errors
