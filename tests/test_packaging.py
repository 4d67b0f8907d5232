"""`pip install .` works from a clean clone: the wheel built from the repository's files
holds every module of the project's packages (migrations and management commands
included) and nothing else, its metadata declares the dependencies of requirements.in
and a `dev` extra with those of requirements-dev.in, and pyproject.toml lists the same.

Offline and fast: the wheel is built without build isolation or dependencies
(setuptools and wheel come from requirements-dev.txt), from a copy of the files git
tracks (plus new ones it does not ignore), so stale `build/` output cannot hide a
missing file.
"""

import email.parser
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
# The importable packages the wheel ships: the project and its apps.
PACKAGES = ("flakyboard", "events", "dashboard", "api", "limits", "notifications")
IGNORED = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "node_modules"
)


def requirement_key(req: Requirement) -> tuple[str, frozenset[str], str]:
    return canonicalize_name(req.name), frozenset(req.extras), str(req.specifier)


def requirements_in(name: str) -> set[tuple[str, frozenset[str], str]]:
    """The requirements a requirements*.in file lists (comments and blank lines aside)."""
    found = set()
    for line in (ROOT / name).read_text().splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            found.add(requirement_key(Requirement(line)))
    return found


def keys(requirements: list[str]) -> set[tuple[str, frozenset[str], str]]:
    return {requirement_key(Requirement(r)) for r in requirements}


def source_files() -> list[Path]:
    """The files a clean clone has: tracked ones and new ones git does not ignore."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return []  # not a git checkout: copy the tree instead
    return [Path(p) for p in listed.decode().split("\0") if p and (ROOT / p).is_file()]


def project_modules(files: list[Path]) -> set[str]:
    return {
        path.as_posix()
        for path in files
        if path.suffix == ".py" and path.parts[0] in PACKAGES and "__pycache__" not in path.parts
    }


@pytest.fixture(scope="module")
def clean_copy(tmp_path_factory) -> Path:
    copy = tmp_path_factory.mktemp("clone") / "flakyboard"
    files = source_files()
    if files:
        for path in files:
            (copy / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / path, copy / path)
    else:
        shutil.copytree(ROOT, copy, ignore=IGNORED)
    return copy


@pytest.fixture(scope="module")
def wheel(clean_copy, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "--quiet",
            "--wheel-dir",
            str(out),
            str(clean_copy),
        ],
        check=True,
        timeout=120,
    )
    (built,) = out.glob("flakyboard-*.whl")
    return built


@pytest.fixture(scope="module")
def metadata(wheel):
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.Parser().parsestr(archive.read(name).decode())


def test_pyproject_lists_the_requirements_files():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert keys(project["dependencies"]) == requirements_in("requirements.in")
    assert keys(project["optional-dependencies"]["dev"]) == requirements_in("requirements-dev.in")


def test_wheel_holds_every_module_of_the_packages_and_nothing_else(wheel, clean_copy):
    expected = project_modules(source_files()) or {
        p.relative_to(clean_copy).as_posix()
        for package in PACKAGES
        for p in (clean_copy / package).rglob("*.py")
    }
    # The ones that matter most, named so that a wrong discovery rule cannot pass unnoticed.
    for module in (
        "flakyboard/settings.py",
        "events/migrations/0001_initial.py",
        "events/management/commands/seed_demo.py",
        "events/trunk/registry.py",
        "events/projection/apply.py",
        "dashboard/templatetags/dashboard.py",
        "api/serializers/__init__.py",
        "limits/client_ip.py",
        "notifications/migrations/0001_initial.py",
    ):
        assert module in expected
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {n for n in names if n.endswith(".py")} == expected
    assert {n.split("/")[0] for n in names if ".dist-info/" not in n} == set(PACKAGES)


def test_wheel_metadata_declares_the_requirements(metadata):
    runtime, dev = [], []
    for line in metadata.get_all("Requires-Dist") or []:
        req = Requirement(line)
        if req.marker is None:
            runtime.append(req)
        elif req.marker.evaluate({"extra": "dev"}):
            dev.append(req)
        else:
            raise AssertionError(f"unexpected requirement {line!r}")
    assert {requirement_key(r) for r in runtime} == requirements_in("requirements.in")
    assert {requirement_key(r) for r in dev} == requirements_in("requirements-dev.in")
    assert metadata.get_all("Provides-Extra") == ["dev"]
    assert metadata["Requires-Python"] == ">=3.11"


def test_the_wheel_installs_and_its_packages_import_from_there(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        timeout=120,
    )
    # From a directory without the checkout: the packages must come from the installed wheel.
    probe = (
        "import importlib, sys; print('\\n'.join(importlib.import_module(p).__file__ for p in sys.argv[1:]))"
    )
    shown = subprocess.run(
        [sys.executable, "-c", probe, *PACKAGES, "events.trunk", "events.migrations"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    assert len(shown) == len(PACKAGES) + 2
    assert all(Path(f).is_relative_to(target) for f in shown), shown
