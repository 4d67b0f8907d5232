"""
WSGI config for flakyboard project.

It exposes the WSGI callable as a module-level variable named ``application``.

For more information on this file, see
https://docs.djangoproject.com/en/5.2/howto/deployment/wsgi/
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flakyboard.settings")

application = get_wsgi_application()

# A web server: bound every wait on the database (503 instead of hanging; flakyboard/db.py).
from flakyboard.db import bound_database_waits  # noqa: E402 - needs the settings loaded

bound_database_waits()
