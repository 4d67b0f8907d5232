"""Subscriptions in the admin and the API: the destination (a secret) is never shown back
nor listed; a malformed one is refused with a clear message; failed messages retry."""

from __future__ import annotations

import pytest
from django.urls import reverse

from notifications.models import Message, Subscription

pytestmark = pytest.mark.django_db

SECRET_URL = "json://127.0.0.1:9/hooks/s3cr3t-token"


@pytest.fixture
def admin_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    return client


def test_the_api_lists_subscriptions_without_their_destination(admin_client):
    Subscription.objects.create(name="web", owners="@acme/web\n@acme/*", destination=SECRET_URL)
    response = admin_client.get("/api/v1/subscriptions/")
    assert response.status_code == 200
    assert "s3cr3t" not in response.content.decode()
    [row] = response.json()["results"]
    assert row["owners"] == ["@acme/web", "@acme/*"]
    assert row["destination_scheme"] == "json"
    assert row["mode"] == "realtime"


def test_the_api_refuses_anonymous_readers_even_on_a_public_dashboard(client, settings):
    settings.FLAKYBOARD_PUBLIC_DASHBOARD = True
    assert client.get("/api/v1/subscriptions/").status_code in (401, 403)


def test_the_admin_never_shows_the_destination_and_refuses_a_malformed_one(admin_client):
    add = reverse("admin:notifications_subscription_add")
    response = admin_client.post(
        add,
        {
            "name": "web",
            "enabled": "on",
            "mode": "realtime",
            "destination_url": SECRET_URL,
            "owners": "@acme/web",
        },
    )
    assert response.status_code == 302
    subscription = Subscription.objects.get()
    assert subscription.destination == SECRET_URL
    change = reverse("admin:notifications_subscription_change", args=[subscription.pk])
    page = admin_client.get(change).content.decode()
    assert "s3cr3t" not in page
    assert "json://127.0.0.1:9/" in page  # the masked hint
    listing = admin_client.get(reverse("admin:notifications_subscription_changelist")).content.decode()
    assert "s3cr3t" not in listing
    # Saved again without a destination: the old one is kept.
    admin_client.post(change, {"name": "web2", "mode": "realtime", "destination_url": "", "owners": ""})
    subscription.refresh_from_db()
    assert (subscription.name, subscription.destination) == ("web2", SECRET_URL)
    # A malformed one: a clear error, nothing changed.
    response = admin_client.post(change, {"name": "web3", "mode": "realtime", "destination_url": "notaurl"})
    assert response.status_code == 200
    assert "apprise" in response.content.decode()
    subscription.refresh_from_db()
    assert subscription.name == "web2"


def test_owners_with_spaces_are_refused(admin_client):
    add = reverse("admin:notifications_subscription_add")
    response = admin_client.post(
        add, {"name": "x", "mode": "realtime", "destination_url": SECRET_URL, "owners": "@acme/web team"}
    )
    assert response.status_code == 200
    assert not Subscription.objects.exists()


def test_the_message_admin_lists_failed_messages_with_their_error(admin_client):
    subscription = Subscription.objects.create(name="web", destination=SECRET_URL)
    Message.objects.create(
        subscription=subscription,
        kind=Message.Kind.ALERTS,
        key="k",
        title="t",
        content={},
        state=Message.State.FAILED,
        last_error="Sending to json://127.0.0.1:9/… failed",
    )
    page = admin_client.get(reverse("admin:notifications_message_changelist")).content.decode()
    assert "failed" in page.lower() and "s3cr3t" not in page


def test_send_a_test_message_shows_the_outcome_at_once(admin_client, receiver):
    receiver.ok("/ok")
    receiver.always_fail("/down/s3cr3t")
    good = Subscription.objects.create(
        name="good", destination=receiver.url("json", "/ok"), destination_hint="json://…"
    )
    bad = Subscription.objects.create(name="bad", destination=receiver.url("json", "/down/s3cr3t"))
    changelist = reverse("admin:notifications_subscription_changelist")
    response = admin_client.post(
        changelist,
        {"action": "send_test_message", "index": 0, "_selected_action": [good.pk, bad.pk]},
        follow=True,
    )
    text = response.content.decode().lower()  # the admin capitalises its messages
    assert "good: the test message reached json://…" in text
    assert "bad: the test message did not arrive" in text
    assert "s3cr3t" not in text
    assert len(receiver.posts("/ok")) == 1
    assert Message.objects.get(subscription=good).state == Message.State.SENT
    assert Message.objects.get(subscription=bad).state == Message.State.PENDING  # the workers retry
