"""The generator's state, its stable ids, and the cast: repositories and tests with
names in their framework's style and codeowners (some spelled with another case)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .payloads import FakeRepository, FakeTest
from .vocabulary import (
    _CLASSES,
    _COMPONENTS,
    _JEST_PHRASES,
    _OBJECTS,
    _PEOPLE,
    _QUALIFIERS,
    _REPO_SPECS,
    _VERBS,
    _RepoSpec,
)

# Fixed namespace: ids are uuid5(namespace, "<seed>:..."), stable across runs and machines.
DEMO_NAMESPACE = uuid.UUID("5d0c7a8e-2f4b-4f1e-9a6d-3b8e1c0f7a21")


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


class _Population:
    """The generator's state (one seeded `random.Random`, the span of the history), its ids
    and the cast. `_Builders` (builders.py) and `_Generator` (story.py) extend it."""

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
