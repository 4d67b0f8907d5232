"""One method per Trunk event type (monitor, status, quarantine, investigation): each
schedules a builder that makes the payload, with the test's snapshot (phase, failure
rate, quarantined flag) as it was at the event's time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from . import payloads
from .population import _Action, _ms, _Population, _TestPlan
from .vocabulary import (
    _ACTORS,
    _CAUSES,
    _COMPONENTS,
    _FACT_TYPES,
    _OBJECTS,
    _PEOPLE,
    _QUARANTINE_REASONS,
    _UNQUARANTINE_REASONS,
)


class _Builders(_Population):
    """Each event type's builder; `_Generator` (story.py) decides when they happen."""

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
