"""Subscriptions (managed here) and the messages sent (read-only, retryable)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Count, Q
from django.urls import reverse
from django.utils.html import format_html

from . import sending
from .forms import SubscriptionForm
from .models import Message, Subscription


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    form = SubscriptionForm
    list_display = ("name", "enabled", "mode", "owners_display", "destination_hint", "messages_display")
    list_filter = ("enabled", "mode")
    search_fields = ("name", "owners", "repositories")
    fields = ("name", "enabled", "mode", "destination_url", "owners", "repositories", "triggers")
    actions = ("send_test_message", "turn_on", "turn_off")
    TEST_MESSAGES_AT_ONCE = 5

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_sent=Count("messages", filter=Q(messages__state=Message.State.SENT)),
                n_failed=Count("messages", filter=Q(messages__state=Message.State.FAILED)),
            )
        )

    @admin.display(description="Owners")
    def owners_display(self, obj: Subscription) -> str:
        patterns = obj.owner_patterns()
        return (
            ", ".join(patterns[:5]) + (f" and {len(patterns) - 5} more" if len(patterns) > 5 else "")
            or "every test"
        )

    @admin.display(description="Messages")
    def messages_display(self, obj: Subscription) -> str:
        url = reverse("admin:notifications_message_changelist") + f"?subscription__id__exact={obj.pk}"
        sent, failed = getattr(obj, "n_sent", 0), getattr(obj, "n_failed", 0)  # get_queryset's counts
        return format_html('<a href="{}">{} sent, {} failed</a>', url, sent, failed)

    @admin.action(description="Send a test message")
    def send_test_message(self, request, queryset):
        """Sent at once, so the outcome shows here (each send gives up after the notify
        timeout; a few subscriptions at a time)."""
        chosen = list(queryset[: self.TEST_MESSAGES_AT_ONCE])
        for subscription in chosen:
            message = sending.send_test_message(subscription.pk)
            hint = subscription.destination_hint or "its destination"
            if message.state == Message.State.SENT:
                self.message_user(
                    request, f"{subscription}: the test message reached {hint}.", messages.SUCCESS
                )
            else:
                self.message_user(
                    request,
                    f"{subscription}: the test message did not arrive ({message.last_error or message.state}); "
                    "the workers will try again (see Messages).",
                    messages.ERROR,
                )
        if queryset.count() > len(chosen):
            self.message_user(
                request,
                f"Only the first {len(chosen)} were tested: select fewer at a time.",
                messages.WARNING,
            )

    @admin.action(description="Turn on")
    def turn_on(self, request, queryset):
        self.message_user(request, f"Turned on {queryset.update(enabled=True)} subscription(s).")

    @admin.action(description="Turn off")
    def turn_off(self, request, queryset):
        self.message_user(request, f"Turned off {queryset.update(enabled=False)} subscription(s).")


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = (
        "title",
        "subscription",
        "kind",
        "state",
        "attempts",
        "created_at",
        "sent_at",
        "error_display",
    )
    list_filter = ("state", "kind", "subscription")
    search_fields = ("title",)
    list_select_related = ("subscription",)
    readonly_fields = (
        "subscription",
        "kind",
        "key",
        "title",
        "state",
        "attempts",
        "next_attempt_at",
        "claimed_at",
        "created_at",
        "sent_at",
        "last_error",
        "content",
    )
    actions = ("retry",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # A message is the record of what was sent (and its notices point at it).
        return False

    @admin.display(description="Error")
    def error_display(self, obj: Message) -> str:
        return obj.last_error[:120]

    def has_retry_permission(self, request) -> bool:
        # The list is read-only (has_change_permission), the retry is a change: its own rule.
        return request.user.has_perm("notifications.change_message")

    @admin.action(description="Retry (fresh attempts)", permissions=["retry"])
    def retry(self, request, queryset):
        count = sending.retry(list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"Queued {count} message(s) again.", messages.SUCCESS)
