"""Make the projection of one event type fail, to test what happens to its deliveries."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from unittest import mock

from events.trunk import parsing, registry


@contextmanager
def projection_of(event_class: type[parsing.Event], replacement: Callable) -> Iterator[None]:
    """Every registered type of `event_class` folds with `replacement(fold, event,
    delivery_id, key)` instead of its own projection."""
    patched = {
        name: dataclasses.replace(entry, project=replacement)
        for name, entry in registry.EVENT_TYPES.items()
        if entry.event is event_class
    }
    with mock.patch.dict(registry.EVENT_TYPES, patched):
        yield


def failing(exception: BaseException, event_class: type[parsing.Event] = parsing.StatusChanged):
    """The projection of `event_class` raises `exception`."""
    return projection_of(event_class, mock.Mock(side_effect=exception))
