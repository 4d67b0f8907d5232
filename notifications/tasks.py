"""The task the workers run (django-tasks; `manage.py db_worker` with the database queue)."""

from __future__ import annotations

from django_tasks import task

from . import sending


@task()
def send_message(message_id: int) -> str:
    """One attempt at sending a message; a failure queues the next attempt itself (back-off)."""
    return sending.attempt(message_id)
