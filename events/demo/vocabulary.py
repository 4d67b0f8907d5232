"""The demo's vocabulary: repositories (with their test styles, areas, owners and
variants), the words test names are made of, monitor types, people who quarantine,
and the causes an investigation finds."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class _RepoSpec:
    name: str
    styles: tuple[str, ...]
    areas: tuple[str, ...]
    owners: tuple[str, ...]  # canonical spellings, the first is the main team
    variants: tuple[str, ...] = ()
    variant_share: float = 0.04


_REPO_SPECS = (
    _RepoSpec(
        "acme/checkout",
        ("pytest",),
        ("payments", "refunds", "cart", "tax", "shipping", "promotions"),
        ("@acme/payments", "@acme/checkout", "@acme/fraud"),
    ),
    _RepoSpec(
        "acme/web",
        ("jest",),
        ("checkout", "search", "account", "navigation", "design-system", "analytics"),
        ("@acme/web", "@acme/design-system", "@acme/growth"),
    ),
    _RepoSpec(
        "acme/mobile",
        ("junit", "jest"),
        ("cart", "login", "push", "offline", "payments"),
        ("@acme/mobile", "@acme/web", "@acme/payments"),
        variants=("linux", "macos"),
        variant_share=0.35,
    ),
    _RepoSpec(
        "acme/platform",
        ("pytest", "junit"),
        ("auth", "queue", "storage", "billing", "scheduler", "gateway"),
        ("@acme/platform", "@acme/infra", "@acme/data"),
        variants=("linux",),
        variant_share=0.1,
    ),
    _RepoSpec(
        "acme/search", ("junit",), ("indexer", "ranking", "query", "suggest"), ("@acme/search", "@acme/data")
    ),
    _RepoSpec(
        "acme/billing",
        ("pytest",),
        ("invoices", "dunning", "ledger", "plans"),
        ("@acme/billing", "@acme/payments"),
    ),
    _RepoSpec("acme/infra", ("pytest",), ("terraform", "deploy", "dns", "secrets"), ("@acme/infra",)),
    _RepoSpec("acme/data", ("pytest", "junit"), ("etl", "warehouse", "events", "exports"), ("@acme/data",)),
)

_PEOPLE = ("@mgarcia", "@ktanaka", "@priya-n", "@sokafor", "@lwei", "@jmartin")

_VERBS = (
    "creates", "updates", "deletes", "retries", "rejects", "accepts", "refunds", "charges", "syncs",
    "expires", "caches", "rounds", "validates", "renders", "paginates", "reconnects", "publishes",
    "imports", "exports", "merges", "schedules", "cancels", "locks", "streams",
)  # fmt: skip
_OBJECTS = (
    "order", "refund", "invoice", "session", "token", "webhook", "cart_item", "coupon", "payment_intent",
    "user", "report", "job", "message", "upload", "address", "currency", "subscription", "receipt",
    "search_query", "shipment", "api_key", "notification", "price", "batch",
)  # fmt: skip
_QUALIFIERS = (
    "", "", "", "when_offline", "with_expired_card", "twice", "concurrently", "after_timeout", "on_retry",
    "for_guest_user", "with_unicode_name", "at_midnight_utc", "under_load", "with_empty_cart",
    "when_rate_limited", "across_dst_change", "with_large_payload", "after_restart",
)  # fmt: skip
_COMPONENTS = (
    "CheckoutForm", "SearchBar", "AccountMenu", "PriceTag", "CartDrawer", "LoginModal", "NavigationTabs",
    "Toast", "DatePicker", "ProductCard", "AddressForm", "OrderSummary", "PaymentSheet", "FilterPanel",
)  # fmt: skip
_JEST_PHRASES = (
    "renders the {obj}", "shows an error when the {obj} is invalid", "submits the {obj} once",
    "keeps focus after the {obj} updates", "announces the {obj} to screen readers",
    "debounces {obj} changes", "restores the {obj} after reload", "handles a slow {obj} response",
    "renders “Zoë’s” {obj} without mojibake",
)  # fmt: skip
_CLASSES = (
    "CartRepository", "LoginViewModel", "PushRegistrar", "OfflineQueue", "PaymentClient", "TokenStore",
    "RateLimiter", "JobScheduler", "BlobStorage", "GatewayRouter", "IndexWriter", "QueryParser",
    "LedgerService", "EventConsumer", "ExportWriter", "SessionCache",
)  # fmt: skip

_MONITOR_TYPES = ("pass_on_retry", "failure_rate", "failure_count")

_ACTORS = (
    ("maria.garcia@acme.dev", "María García"),
    ("kenji.tanaka@acme.dev", "Kenji Tanaka"),
    ("priya.nair@acme.dev", "Priya Nair"),
    ("sam.okafor@acme.dev", "Sam Okafor"),
)
_QUARANTINE_REASONS = (
    "Blocking merges on main; quarantining until the race is fixed.",
    "Known flaky, tracked in ACME-{ticket}.",
    "Fails on every macOS runner since the image update.",
    "Quarantine while @acme/platform investigates the shared fixture.",
)
_UNQUARANTINE_REASONS = (
    "Fixed in #{pr}; removing the override.",
    "Stable for a week, back to automatic quarantining.",
    "Root cause fixed (ACME-{ticket}).",
)

# (headline, explanation, fix, failure message per style, failure mode)
_CAUSES = (
    (
        "Race between the test and a background worker",
        "The test asserts before the worker has committed its write, so it passes only when the worker wins.",
        "wait for the worker's completion signal instead of sleeping",
        {
            "pytest": "AssertionError: assert 2 == 1\n +  where 2 = len(refunds)",
            "jest": "expect(received).toHaveLength(expected)\n\nExpected length: 1\nReceived length: 2",
            "junit": "org.opentest4j.AssertionFailedError: expected: <1> but was: <2>",
        },
        "duplicate side effect",
    ),
    (
        "Timeout talking to the sandbox API",
        "The third-party sandbox answers slowly at peak hours and the client gives up after 5 s.",
        "stub the sandbox with a recorded response",
        {
            "pytest": "httpx.ReadTimeout: timed out after 5.0 seconds",
            "jest": 'thrown: "Exceeded timeout of 5000 ms for a test."',
            "junit": "java.net.SocketTimeoutException: Read timed out",
        },
        "network timeout",
    ),
    (
        "Depends on the wall clock",
        "The expected date is computed in local time while the code under test uses UTC; runs near midnight fail.",
        "freeze time in the test and compare dates in UTC",
        {
            "pytest": "AssertionError: assert datetime.date(2026, 3, 29) == datetime.date(2026, 3, 30)",
            "jest": 'expect(received).toBe(expected)\n\nExpected: "2026-03-30"\nReceived: "2026-03-29"',
            "junit": "org.opentest4j.AssertionFailedError: expected: <2026-03-30> but was: <2026-03-29>",
        },
        "time-dependent assertion",
    ),
    (
        "Order-dependent: leaks state into the next test",
        "A previous test leaves a cached {obj} behind; this test fails when it runs after it in the same worker.",
        "reset the cache in a fixture teardown",
        {
            "pytest": "KeyError: 'currency'",
            "jest": "TypeError: Cannot read properties of undefined (reading 'currency')",
            "junit": 'java.lang.NullPointerException: Cannot invoke "Currency.code()" because "price.currency" is null',
        },
        "shared state",
    ),
    (
        "Runner runs out of memory",
        "The test builds a large fixture in memory; on the smaller CI runners the process is killed.",
        "stream the fixture from disk or mark the test for the large runner",
        {
            "pytest": "MemoryError",
            "jest": "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
            "junit": "java.lang.OutOfMemoryError: Java heap space",
        },
        "resource exhaustion",
    ),
    (
        "Assertion on an unordered collection",
        "The result comes from a set/hash map whose iteration order changes between runs.",
        "compare sorted values, or compare as a set",
        {
            "pytest": "AssertionError: assert ['b', 'a'] == ['a', 'b']",
            "jest": "expect(received).toEqual(expected)\n\n- Expected: <button disabled>Pay</button>\n+ Received: <button>Pay</button>",
            "junit": "org.opentest4j.AssertionFailedError: expected: <[a, b]> but was: <[b, a]>",
        },
        "nondeterministic ordering",
    ),
)

_FACT_TYPES = ("GIT_BLAME", "CI_LOGS", "FAILURE_MODE", "ENVIRONMENT", "CO_FAILURE", "FILE_CO_CHANGE")
