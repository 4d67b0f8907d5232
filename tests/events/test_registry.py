"""The registry (events/trunk/registry.py) declares each Trunk event type once: its typed
event, its parser, its projection and its history relation. Every registered type has
every part, a reference delivery of it lands in its history relation, and the types
deliberately ignored are stored `ignored` without an error."""

import inspect
import json
from pathlib import Path

import pytest
from django.db import models

from events.models import Delivery
from events.projection.fold import Fold
from events.trunk import parsing, registry
from tests.events.factories import deliver

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def reference_payloads() -> dict[str, list[Path]]:
    """The reference payloads (tests/fixtures) by the event type they are."""
    by_type: dict[str, list[Path]] = {}
    for path in sorted(FIXTURES.glob("*.json")):
        by_type.setdefault(parsing.event_type_of(json.loads(path.read_text())), []).append(path)
    return by_type


@pytest.mark.parametrize("name", sorted(registry.EVENT_TYPES))
def test_every_registered_type_has_every_part(name):
    entry = registry.EVENT_TYPES[name]
    assert entry.name == name
    assert issubclass(entry.event, parsing.Event) and entry.event is not parsing.Event
    # The parser reads a PayloadReader and the event type; the projection is a Fold method.
    assert list(inspect.signature(entry.parse).parameters) == ["p", "event_type"]
    assert getattr(Fold, entry.project.__name__) is entry.project
    # The history relation is a relation of Delivery whose rows point at their delivery.
    relation = Delivery._meta.get_field(entry.history)
    assert relation.is_relation and relation.auto_created
    history_model = relation.related_model
    assert isinstance(history_model._meta.get_field("delivery"), models.ForeignKey | models.OneToOneField)
    assert entry.history in registry.HISTORY_RELATIONS


def test_known_ignored_and_registered_types_are_apart():
    assert not registry.IGNORED_TYPES & set(registry.EVENT_TYPES)


@pytest.mark.parametrize("name", sorted(registry.EVENT_TYPES))
def test_a_delivery_of_each_type_lands_in_its_history_relation(name):
    paths = reference_payloads().get(name)
    assert paths, f"add a reference payload of {name} to tests/fixtures/"
    entry = registry.EVENT_TYPES[name]
    history_model = Delivery._meta.get_field(entry.history).related_model
    for path in paths:
        result = deliver(path.read_text())
        delivery = Delivery.objects.get(pk=result.delivery.pk)
        assert (delivery.outcome, delivery.error, delivery.event_type) == ("processed", "", name), path.name
        assert history_model.objects.filter(delivery=delivery).count() == 1, path.name
        # Its parser gives the registered typed event.
        event = registry.parse_event(json.loads(path.read_text()), received_at=delivery.received_at)
        assert type(event) is entry.event


def test_every_reference_payload_is_of_a_registered_type():
    assert set(reference_payloads()) <= set(registry.EVENT_TYPES)


def test_an_ignored_type_is_stored_ignored_without_an_error(monkeypatch):
    monkeypatch.setattr(registry, "IGNORED_TYPES", frozenset({"test_case.something_we_skip"}))
    result = deliver(json.dumps({"type": "test_case.something_we_skip", "test_case": {"id": "x"}}))
    delivery = Delivery.objects.get(pk=result.delivery.pk)
    assert (delivery.outcome, delivery.error) == ("ignored", "")
    unknown = deliver(json.dumps({"type": "test_case.from_the_future"}))
    assert (
        Delivery.objects.get(pk=unknown.delivery.pk).error == "unknown event type 'test_case.from_the_future'"
    )
