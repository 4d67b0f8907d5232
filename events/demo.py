"""A realistic, deterministic history of Trunk webhooks for demos, screenshots and load.

Pure functions only: the same arguments (seed and "now" included) give the same
payloads, byte for byte once serialised. `manage.py seed_demo` delivers them through the
real receiver; tests call these functions directly.

What the history looks like (shapes from ../shared/trunk-webhooks.md, built with
`events.payloads` so the demo sends exactly what the parser expects):

- a few repositories (acme/checkout, acme/web, ...) with pytest, jest and JUnit style
  tests, codeowners (none, one or several; some spelled with another case in some tests,
  because owners compare case-insensitively), and a few platform variants;
- most tests stay healthy: a monitor blips active then resolved, nothing more;
- troubled tests go through episodes driven by monitors: the monitor turns `active`,
  the status goes HEALTHY -> FLAKY (or BROKEN; FLAKY may escalate to BROKEN and back),
  investigations complete, someone may quarantine the test, then the monitors resolve
  and the status returns to HEALTHY. Some episodes are still open at "now", and some
  tests relapse (flaky again within 30 days of the fix);
- the earliest status changes use the legacy v1 shape (as if the endpoint was upgraded);
- payloads come sorted by event time, except a small fraction delivered late, so the
  receiver's order independence is exercised. `plan_deliveries` adds svix ids and a
  few redeliveries of the same message.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from . import payloads
from .payloads import FakeRepository, FakeTest

# Fixed namespace: ids are uuid5(namespace, "<seed>:..."), stable across runs and machines.
DEMO_NAMESPACE = uuid.UUID("5d0c7a8e-2f4b-4f1e-9a6d-3b8e1c0f7a21")

# Fractions of the generated messages delivered late, and delivered twice.
OUT_OF_ORDER_FRACTION = 0.03
REDELIVERY_FRACTION = 0.01

MIN_DAYS = 7  # episodes last hours to weeks: a shorter history cannot hold them


# ---------------------------------------------------------------- vocabulary


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


# ---------------------------------------------------------------- public API


def generate_history(
    *, now: datetime, tests: int = 300, days: int = 120, seed: int = 42, repositories: int = 4
) -> list[dict[str, Any]]:
    """The demo's payloads, in delivery order (event time, with ~3% delivered late).

    Pure: uses `random.Random(seed)` and the given `now` only. Every event time lies in
    [now - days, now). Every generated test appears in at least one event.
    """
    if tests < 1 or repositories < 1:
        raise ValueError("tests and repositories must be at least 1")
    if days < MIN_DAYS:
        raise ValueError(f"days must be at least {MIN_DAYS}")
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    return _Generator(now=now.astimezone(UTC), days=days, seed=seed).run(
        tests=tests, repositories=repositories
    )


def message_id_prefix(*, seed: int, tests: int, days: int, repositories: int) -> str:
    """Svix id prefix of a demo run: the same arguments give the same ids (re-runs are
    redeliveries), different sizes never reuse each other's ids."""
    return f"msg_demo_{seed}_{tests}t{days}d{repositories}r"


def plan_deliveries(
    messages: list[dict[str, Any]], *, seed: int, id_prefix: str
) -> list[tuple[str, dict[str, Any]]]:
    """(svix id, payload) in delivery order: one id per message, ~1% sent again later
    with the same id (Svix is at-least-once)."""
    planned = [(f"{id_prefix}_{n:05d}", payload) for n, payload in enumerate(messages, 1)]
    if len(planned) < 2:
        return planned
    rng = random.Random(f"flakyboard-demo-redeliveries:{seed}")
    count = max(1, round(len(planned) * REDELIVERY_FRACTION))
    keyed: list[tuple[float, tuple[str, dict[str, Any]]]] = [
        (float(i), item) for i, item in enumerate(planned)
    ]
    for i in sorted(rng.sample(range(len(planned)), count)):
        # The retry comes a little later than the original (after a few other messages).
        keyed.append((i + rng.randint(1, 200) + 0.5, planned[i]))
    keyed.sort(key=lambda pair: pair[0])
    return [item for _, item in keyed]


# ---------------------------------------------------------------- the generator


@dataclass
class _Action:
    at: datetime
    build: Callable[[], dict[str, Any]]


@dataclass
class _TestPlan:
    test: FakeTest
    style: str
    spec: _RepoSpec
    repository: FakeRepository
    actions: list[_Action] = field(default_factory=list)
    phase: str = "HEALTHY"  # drives failure_rate_last_7d; set by the actions as they run
    setting: str = "UNSPECIFIED"  # quarantine override, as scheduled (the builders set the flag)


def _ms(moment: datetime) -> datetime:
    """Truncate to milliseconds: the precision the payloads carry (`payloads.iso`)."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


class _Generator:
    def __init__(self, *, now: datetime, days: int, seed: int):
        self.rng = random.Random(seed)
        self.seed = seed
        self.now = now
        self.start = now - timedelta(days=days)
        self.span = timedelta(days=days)
        self.v1_until = self.start + self.span * 0.12
        self.forced_bands = ["high", "medium", "low"]  # the first investigations cover every band
        self.events: list[tuple[datetime, int, dict[str, Any]]] = []

    # ------------------------------------------------------------ ids and helpers

    def _uuid(self, *parts: object) -> uuid.UUID:
        return uuid.uuid5(DEMO_NAMESPACE, ":".join([str(self.seed), *map(str, parts)]))

    def _random_uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def _sha(self) -> str:
        return f"{self.rng.getrandbits(160):040x}"

    def _at(self, fraction: float) -> datetime:
        return _ms(self.start + self.span * fraction)

    def _monitor_id(self, plan: _TestPlan, monitor_type: str) -> uuid.UUID:
        # One monitor per (type, repository), as Trunk configures monitors per repository.
        return self._uuid("monitor", plan.repository.html_url, monitor_type)

    # ------------------------------------------------------------ repositories and tests

    def _repositories(self, count: int) -> list[tuple[_RepoSpec, FakeRepository]]:
        specs = list(_REPO_SPECS)
        for i in range(len(specs), count):
            specs.append(
                _RepoSpec(f"acme/service-{i + 1}", ("pytest",), ("api", "worker"), ("@acme/platform",))
            )
        return [
            (
                spec,
                FakeRepository(
                    id=self._uuid("repository", spec.name), html_url=f"https://github.com/{spec.name}"
                ),
            )
            for spec in specs[:count]
        ]

    def _names(self, style: str, area: str) -> tuple[str, str, str]:
        """(name, classname, file_path) in the style of the test framework."""
        rng = self.rng
        verb, obj, qualifier = rng.choice(_VERBS), rng.choice(_OBJECTS), rng.choice(_QUALIFIERS)
        if style == "pytest":
            module = f"test_{obj}s" if rng.random() < 0.5 else f"test_{area.replace('-', '_')}"
            file_path = f"tests/{area.replace('-', '_')}/{module}.py"
            dotted = file_path.removesuffix(".py").replace("/", ".")
            klass = "".join(part.title() for part in obj.split("_")) + "Tests"
            classname = f"{dotted}.{klass}" if rng.random() < 0.7 else dotted
            name = f"test_{verb}_{obj}" + (f"_{qualifier}" if qualifier else "")
            return name, classname, file_path
        if style == "jest":
            component = rng.choice(_COMPONENTS)
            file_path = f"src/{area}/__tests__/{component}.test.tsx"
            phrase = rng.choice(_JEST_PHRASES).format(obj=obj.replace("_", " "))
            if qualifier:
                phrase += " " + qualifier.replace("_", " ")
            return f"{component} {phrase}", component, file_path
        klass = rng.choice(_CLASSES)
        package = f"com.acme.{area.replace('-', '')}"
        file_path = f"src/test/java/{package.replace('.', '/')}/{klass}Test.java"
        words = [*obj.split("_"), *(qualifier.split("_") if qualifier else [])]
        name = verb + "".join(w.title() for w in words)
        return name, f"{package}.{klass}Test", file_path

    def _owners(self, spec: _RepoSpec, index: int) -> list[str]:
        rng = self.rng
        if index == 0:
            return []  # guaranteed: a test with no owner
        roll = rng.random()
        if roll < 0.1:
            return []
        owners = [spec.owners[0] if rng.random() < 0.7 else rng.choice(spec.owners)]
        if index == 1 or roll > 0.78:
            # Several owners: another team, sometimes a person.
            extra = [o for o in spec.owners if o not in owners] or [rng.choice(_PEOPLE)]
            owners.append(rng.choice(extra))
            if rng.random() < 0.3:
                owners.append(rng.choice(_PEOPLE))
        return owners

    @staticmethod
    def _other_case(owner: str) -> str:
        """Another spelling of a team owner, as a hand-edited CODEOWNERS might have it."""
        org, _, team = owner.removeprefix("@").partition("/")
        return f"@{org.title()}/{team.title()}" if team else owner

    def _tests(self, count: int, repositories: list[tuple[_RepoSpec, FakeRepository]]) -> list[_TestPlan]:
        rng = self.rng
        plans: list[_TestPlan] = []
        seen: set[tuple[str, str, str, str, str]] = set()
        while len(plans) < count:
            spec, repository = repositories[len(plans) % len(repositories)]
            style = rng.choice(spec.styles)
            name, classname, file_path = self._names(style, rng.choice(spec.areas))
            variants = [""]
            if spec.variants and rng.random() < spec.variant_share:
                # The same test on several platforms: each variant is its own test case.
                variants = list(spec.variants) if rng.random() < 0.6 else [rng.choice(spec.variants)]
            elif rng.random() < 0.02:
                variants = ["linux"]
            owners = self._owners(spec, len(plans))
            for variant in variants:
                key = (spec.name, file_path, classname, name, variant)
                if key in seen or len(plans) >= count:
                    continue
                seen.add(key)
                test = FakeTest(
                    id=self._uuid("test", *key),
                    name=name,
                    classname=classname,
                    file_path=file_path,
                    repository=repository,
                    codeowners=list(owners),
                    variant=variant,
                )
                plans.append(_TestPlan(test=test, style=style, spec=spec, repository=repository))
        # Owners compare case-insensitively: spell a team differently in a few tests
        # (as a hand-edited CODEOWNERS might), and for sure in the second test naming
        # the first team seen, while the first test keeps the usual spelling.
        spelled: dict[str, int] = {}
        for plan in plans:
            codeowners = plan.test.codeowners
            for i, owner in enumerate(codeowners):
                if "/" not in owner:
                    continue
                seen_before = spelled.get(owner, 0)
                spelled[owner] = seen_before + 1
                first_team = next(iter(spelled))
                if (owner == first_team and seen_before == 1) or (seen_before > 0 and rng.random() < 0.06):
                    codeowners[i] = self._other_case(owner)
        return plans

    # ------------------------------------------------------------ state snapshots

    def _refresh_rates(self, plan: _TestPlan) -> None:
        """failure_rate_last_7d / PRs impacted follow the phase: high while flaky or broken."""
        rng, test = self.rng, plan.test
        if plan.phase == "BROKEN":
            test.failure_rate_last_7d = rng.uniform(0.55, 1.0)
            test.pull_requests_impacted_last_7d = rng.randint(8, 60)
        elif plan.phase == "FLAKY":
            test.failure_rate_last_7d = rng.uniform(0.08, 0.45)
            test.pull_requests_impacted_last_7d = rng.randint(2, 25)
        elif plan.phase == "BLIP":
            test.failure_rate_last_7d = rng.uniform(0.02, 0.08)
            test.pull_requests_impacted_last_7d = rng.randint(0, 3)
        else:
            test.failure_rate_last_7d = rng.choice((0.0, 0.0, rng.uniform(0.0, 0.03)))
            test.pull_requests_impacted_last_7d = rng.choice((0, 0, 1))

    def _add(self, plan: _TestPlan, at: datetime, build: Callable[[], dict[str, Any]]) -> None:
        plan.actions.append(_Action(at=_ms(at), build=build))

    # ------------------------------------------------------------ event builders

    def _evidence(self, monitor_type: str, status: str, phase: str) -> dict[str, Any]:
        rng = self.rng
        resolved = status == "resolved"
        if monitor_type == "pass_on_retry":
            runs = 0 if resolved else rng.randint(1, 6)
            return {
                "retried_runs": [
                    {
                        "run_id": rng.randint(100_000, 999_999),
                        "attempts": rng.choice((2, 2, 3)),
                        "branch": rng.choice(
                            ("main", "main", "release/2026.04", f"feature/acme-{rng.randint(100, 999)}")
                        ),
                        "commit": self._sha()[:12],
                    }
                    for _ in range(runs)
                ],
                "window_days": 7,
            }
        if monitor_type == "failure_rate":
            threshold = rng.choice((0.1, 0.2, 0.25))
            rate = (
                rng.uniform(0.0, threshold * 0.5)
                if resolved
                else (rng.uniform(0.6, 1.0) if phase == "BROKEN" else rng.uniform(threshold, 0.5))
            )
            return {
                "failure_rate": round(rate, 3),
                "threshold": threshold,
                "runs": rng.randint(40, 400),
                "window_days": 7,
            }
        threshold = rng.choice((3, 5))
        failures = rng.randint(0, threshold - 1) if resolved else rng.randint(threshold, threshold * 4)
        return {
            "failure_count": failures,
            "threshold": threshold,
            "window_hours": 24,
            "runs": rng.randint(20, 120),
        }

    def _monitor(
        self, plan: _TestPlan, at: datetime, monitor_type: str, status: str, phase: str | None = None
    ) -> None:
        def build() -> dict[str, Any]:
            if phase is not None:
                plan.phase = phase
            self._refresh_rates(plan)
            return payloads.monitor_status_changed(
                plan.test,
                at=_ms(at),
                monitor_id=self._monitor_id(plan, monitor_type),
                monitor_type=monitor_type,
                status=status,
                evidence=self._evidence(monitor_type, status, plan.phase),
            )

        self._add(plan, at, build)

    def _status(
        self, plan: _TestPlan, at: datetime, previous: str, new: str, monitor_type: str, monitor_status: str
    ) -> None:
        legacy = at < self.v1_until and self.rng.random() < 0.6

        def build() -> dict[str, Any]:
            plan.phase = new
            self._refresh_rates(plan)
            if legacy:
                reason = f"{monitor_type} monitor {monitor_status}"
                return payloads.status_changed_v1(
                    plan.test, at=_ms(at), previous=previous, new=new, reason=reason
                )
            return payloads.status_changed(
                plan.test,
                at=_ms(at),
                previous=previous,
                new=new,
                monitor_id=self._monitor_id(plan, monitor_type),
                monitor_type=monitor_type,
                monitor_status=monitor_status,
            )

        self._add(plan, at, build)

    def _quarantine(self, plan: _TestPlan, at: datetime, previous: str, updated: str) -> None:
        rng = self.rng
        email, full_name = rng.choice(_ACTORS)
        templates = _QUARANTINE_REASONS if updated == "ALWAYS_QUARANTINE" else _UNQUARANTINE_REASONS
        reason = rng.choice(templates).format(ticket=rng.randint(1000, 9999), pr=rng.randint(1000, 9999))

        def build() -> dict[str, Any]:
            # The event's snapshot shows the test after the change; later events keep it.
            plan.test.quarantined = updated == "ALWAYS_QUARANTINE"
            return payloads.quarantining_setting_changed(
                plan.test, at=_ms(at), previous=previous, updated=updated,
                actor_email=email, actor_name=full_name, reason=reason,
            )  # fmt: skip

        self._add(plan, at, build)

    def _confidence(self) -> float:
        rng = self.rng
        band = (
            self.forced_bands.pop(0)
            if self.forced_bands
            else rng.choices(("high", "medium", "low"), (40, 35, 25))[0]
        )
        if rng.random() < 0.06:
            return {"high": 0.8, "medium": 0.5, "low": 0.0}[band]  # exact band edges happen
        low, high = {"high": (0.8, 0.99), "medium": (0.5, 0.79), "low": (0.05, 0.49)}[band]
        return round(rng.uniform(low, high), 3)

    def _investigation(self, plan: _TestPlan, at: datetime) -> None:
        rng, test = self.rng, plan.test
        repo = plan.spec.name
        headline, explanation, fix, messages, mode = rng.choice(_CAUSES)
        confidence = self._confidence()
        run = rng.randint(100_000, 999_999)
        later = rng.randint(1, 9)
        summary = (
            f"**{headline}.** {explanation.format(obj=rng.choice(_OBJECTS).replace('_', ' '))}\n\n"
            f"The first failure was in [CI run #{run}](https://ci.acme.dev/{repo}/runs/{run}); "
            f"{later} later run{'s' if later > 1 else ''} failed the same way.\n\n"
            f"Suggested fix: {fix}."
        )
        facts = []
        for fact_type in rng.sample(_FACT_TYPES, rng.randint(1, 4)):
            facts.append(
                {
                    "fact_type": fact_type,
                    "content": self._fact_content(fact_type, plan, mode, run),
                    "confidence": round(min(1.0, max(0.0, confidence + rng.uniform(-0.25, 0.15))), 2),
                }
            )
        investigation_id = self._random_uuid()
        failure_message = messages[plan.style]

        def build() -> dict[str, Any]:
            self._refresh_rates(plan)
            return payloads.investigation_completed(
                test, at=_ms(at), investigation_id=investigation_id, confidence=confidence,
                markdown_summary=summary, failure_message=failure_message, facts=facts,
            )  # fmt: skip

        self._add(plan, at, build)

    def _fact_content(self, fact_type: str, plan: _TestPlan, mode: str, run: int) -> str:
        rng, test, repo = self.rng, plan.test, plan.spec.name
        if fact_type == "GIT_BLAME":
            sha = self._sha()
            return (
                f"`{test.file_path}` changed in [`{sha[:7]}`](https://github.com/{repo}/commit/{sha}) "
                f"by {rng.choice(_PEOPLE)} {rng.randint(1, 9)} days before the first failure."
            )
        if fact_type == "CI_LOGS":
            failing = rng.randint(2, 9)
            return (
                f"{failing} of the last {failing + rng.randint(1, 20)} failing runs log the same error "
                f"([run {run}](https://ci.acme.dev/{repo}/runs/{run}))."
            )
        if fact_type == "FAILURE_MODE":
            return f"Failures share one mode: **{mode}** ({rng.randint(60, 100)}% of failures)."
        if fact_type == "ENVIRONMENT":
            runner = test.variant or rng.choice(("ubuntu-22.04", "ubuntu-24.04-arm", "macos-14"))
            return f"Failures happen only on `{runner}` runners; other runners pass."
        if fact_type == "CO_FAILURE":
            return f"Fails together with `{rng.choice(_COMPONENTS)}` tests in {rng.randint(30, 95)}% of failing runs."
        other = f"src/{rng.choice(plan.spec.areas)}/{rng.choice(_OBJECTS)}.py"
        return (
            f"`{test.file_path}` and `{other}` changed together in {rng.randint(2, 12)} commits last month."
        )

    # ------------------------------------------------------------ histories

    def _blips(self, plan: _TestPlan, count: int) -> None:
        """A healthy test: monitors briefly active, then resolved, without a status change."""
        rng = self.rng
        starts = sorted(self._at(rng.uniform(0.0, 0.97)) for _ in range(count))
        for at, following in zip(starts, [*starts[1:], None], strict=True):
            monitor_type = rng.choices(_MONITOR_TYPES, (50, 20, 30))[0]
            self._monitor(plan, at, monitor_type, "active", phase="BLIP")
            resolved = at + timedelta(hours=rng.uniform(2, 72))
            if following is not None:
                resolved = min(resolved, at + (following - at) * 0.9)
            self._monitor(plan, resolved, monitor_type, "resolved", phase="HEALTHY")

    def _episode(
        self,
        plan: _TestPlan,
        t0: datetime,
        *,
        kind: str,
        duration: timedelta | None,
        quarantine: str | None = None,
        escalate: bool = True,
    ) -> datetime | None:
        """HEALTHY -> kind ... -> HEALTHY. Returns the end, or None when still open at now
        (or when it would start too close to now to unfold)."""
        rng = self.rng
        if t0 >= self.now - timedelta(hours=1):
            return None
        end = t0 + duration if duration is not None else None
        if end is not None and end >= self.now:
            end = None
        primary = (
            rng.choice(("pass_on_retry", "pass_on_retry", "failure_rate"))
            if kind == "FLAKY"
            else (rng.choice(("failure_count", "failure_count", "failure_rate")))
        )
        active = [primary]
        since = {primary: 0.0}  # when each monitor became active, as a fraction of the episode
        self._monitor(plan, t0, primary, "active", phase=kind)
        t_sc = t0 + timedelta(minutes=rng.uniform(1, 20))
        self._status(plan, t_sc, "HEALTHY", kind, primary, "active")
        horizon = end if end is not None else self.now
        span = horizon - t_sc

        def mid(lo: float, hi: float) -> datetime:
            return t_sc + span * rng.uniform(lo, hi)

        status = kind
        # A second monitor often agrees with the first.
        if rng.random() < 0.35:
            candidates = (
                ("pass_on_retry", "failure_rate") if kind == "FLAKY" else ("failure_count", "failure_rate")
            )
            second = next(m for m in candidates if m != primary)
            since[second] = rng.uniform(0.05, 0.6)
            self._monitor(plan, t_sc + span * since[second], second, "active")
            active.append(second)
        # Monitors flap: resolved for a while, then active again, status unchanged.
        # Long episodes flap more (the "flapping" figure counts these activations).
        for monitor_type in list(active):
            flaps = min(5, int(rng.random() * 2.5 * (1 + span / timedelta(days=4))))
            first = since[monitor_type] + 0.02
            moments = sorted(rng.uniform(first, 0.75) for _ in range(2 * flaps))
            for off, on in zip(moments[::2], moments[1::2], strict=True):
                self._monitor(plan, t_sc + span * off, monitor_type, "resolved")
                self._monitor(plan, t_sc + span * on, monitor_type, "active")
        # Escalation: a flaky test starts failing every time (and sometimes calms down).
        if escalate and kind == "FLAKY" and "failure_count" not in active and rng.random() < 0.18:
            t_esc = mid(0.2, 0.45)
            self._monitor(plan, t_esc, "failure_count", "active", phase="BROKEN")
            self._status(
                plan,
                t_esc + timedelta(minutes=rng.uniform(1, 15)),
                "FLAKY",
                "BROKEN",
                "failure_count",
                "active",
            )
            status = "BROKEN"
            active.append("failure_count")
            if end is not None and rng.random() < 0.35:
                t_back = mid(0.5, 0.7)
                self._monitor(plan, t_back, "failure_count", "resolved", phase="FLAKY")
                self._status(
                    plan,
                    t_back + timedelta(minutes=rng.uniform(1, 15)),
                    "BROKEN",
                    "FLAKY",
                    "failure_count",
                    "resolved",
                )
                status = "FLAKY"
                active.remove("failure_count")
        # Trunk's AI looks into ~60% of episodes, sometimes twice.
        if rng.random() < 0.6:
            self._investigation(plan, mid(0.01, 0.25))
            if rng.random() < 0.25:
                self._investigation(plan, mid(0.3, 0.75))
        if quarantine is not None and quarantine != plan.setting:
            self._quarantine(plan, mid(0.05, 0.4), plan.setting, quarantine)
            plan.setting = quarantine
        if end is None:
            return None
        # The fix lands: every active monitor resolves, the last one brings HEALTHY back.
        window = min(timedelta(hours=2), (end - t_sc) * 0.1)
        times = sorted(end - window * rng.random() for _ in active)
        for monitor_type, at in zip(active, times, strict=True):
            self._monitor(plan, at, monitor_type, "resolved", phase="HEALTHY")
        self._status(
            plan, end + timedelta(seconds=rng.uniform(5, 120)), status, "HEALTHY", active[-1], "resolved"
        )
        return end + timedelta(seconds=121)

    def _half_years(self) -> int:
        return max(1, round(self.span / timedelta(days=182)))

    def _episode_duration(self) -> timedelta:
        days = min(45.0, max(0.25, self.rng.lognormvariate(math.log(5), 0.9)))
        return timedelta(days=days)

    def _troubled(self, plan: _TestPlan, forced: str | None) -> None:
        rng = self.rng
        relapse_gap = min(self.span * 0.1, timedelta(days=12))
        # The first three troubled tests make sure every kind of figure has data.
        if forced == "open_flaky":
            self._episode(plan, self._at(rng.uniform(0.75, 0.9)), kind="FLAKY", duration=None, escalate=False)
            return
        if forced == "open_broken":
            t0 = self._at(rng.uniform(0.6, 0.8))
            self._episode(plan, t0, kind="BROKEN", duration=None, quarantine="ALWAYS_QUARANTINE")
            return
        if forced == "relapse":
            duration = max(self.span * 0.05, timedelta(hours=12))
            end = self._episode(
                plan, self._at(0.1), kind="FLAKY", duration=duration, quarantine="ALWAYS_QUARANTINE"
            )
            assert end is not None
            self._quarantine(plan, end + relapse_gap * 0.3, plan.setting, "UNSPECIFIED")
            plan.setting = "UNSPECIFIED"
            self._episode(plan, end + relapse_gap, kind="FLAKY", duration=duration)
            return
        t = self._at(rng.uniform(0.0, 0.5))
        episodes = rng.choices((1, 2, 3, 4, 5), (35, 30, 18, 10, 7))[0]
        chronic = rng.random() < 0.25  # the last episode is still open at now
        for n in range(episodes):
            kind = "BROKEN" if rng.random() < 0.2 else "FLAKY"
            quarantine = None
            if rng.random() < (0.5 if kind == "BROKEN" else 0.3):
                quarantine = "ALWAYS_QUARANTINE" if rng.random() < 0.9 else "NEVER_QUARANTINE"
            duration = None if chronic and n == episodes - 1 else self._episode_duration()
            end = self._episode(plan, t, kind=kind, duration=duration, quarantine=quarantine)
            if end is None:
                break
            # Relapses: about 40% of fixed tests turn flaky again within 30 days.
            gap = (
                timedelta(days=rng.uniform(1, 27))
                if rng.random() < 0.4
                else timedelta(days=rng.uniform(31, 70))
            )
            if plan.setting != "UNSPECIFIED" and rng.random() < 0.65:
                self._quarantine(plan, end + gap * rng.uniform(0.1, 0.8), plan.setting, "UNSPECIFIED")
                plan.setting = "UNSPECIFIED"
            t = end + gap

    def run(self, *, tests: int, repositories: int) -> list[dict[str, Any]]:
        rng = self.rng
        plans = self._tests(tests, self._repositories(repositories))
        forced = {0: "open_flaky", 1: "open_broken", 2: "relapse"}
        for i, plan in enumerate(plans):
            if i in forced or rng.random() < 0.38:
                self._troubled(plan, forced.get(i))
            else:
                # A longer history holds more blips (about 1 to 4 per half year).
                self._blips(plan, rng.choices((1, 2, 3, 4), (40, 30, 20, 10))[0] * self._half_years())
            if not any(a.at < self.now for a in plan.actions):
                # A test exists only through an event: give it at least one.
                at = self._at(rng.uniform(0.0, 0.9))
                self._monitor(plan, at, "failure_count", "active", phase="BLIP")
                self._monitor(plan, at + (self.now - at) * 0.5, "failure_count", "resolved", phase="HEALTHY")
            # Builders set the snapshot (phase, rates, quarantined flag) as they run, in
            # event-time order, so each payload shows the test as it was at that time.
            actions = sorted((a for a in plan.actions if a.at < self.now), key=lambda a: a.at)
            plan.phase = "HEALTHY"
            for action in actions:
                self.events.append((action.at, len(self.events), action.build()))
        return self._delivery_order()

    def _delivery_order(self) -> list[dict[str, Any]]:
        """Sorted by event time, except ~3% delivered a few positions late."""
        ordered = sorted(self.events, key=lambda e: (e[0], e[1]))
        keyed = [(float(i), payload) for i, (_, _, payload) in enumerate(ordered)]
        if len(keyed) > 1:
            count = max(1, round(len(keyed) * OUT_OF_ORDER_FRACTION))
            for i in self.rng.sample(range(len(keyed)), count):
                keyed[i] = (i + self.rng.randint(2, 40) + 0.5, keyed[i][1])
        keyed.sort(key=lambda pair: pair[0])
        return [payload for _, payload in keyed]
