"""Environment-driven settings, checked the way production meets them: in a fresh process.

Settings are read once, at import, so every case runs `manage.py` (or a short script)
in a subprocess with a controlled environment: the current one minus every DJANGO_*,
TRUNK_* and DATABASE_URL variable, plus what the test sets.
"""

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import OTHER_SECRET, TEST_SECRET

ROOT = Path(__file__).resolve().parent.parent
ENV_EXAMPLE = ROOT / ".env.example"

# The variables that flip production behaviour; a long random key as `check --deploy`
# wants it (security.W009: 50+ characters, 5+ distinct ones).
PRODUCTION_ENV = {
    "DJANGO_DEBUG": "false",
    "DJANGO_ALLOWED_HOSTS": "flakyboard.example.com",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "https://flakyboard.example.com",
    "DJANGO_SECURE_SSL_REDIRECT": "true",
    "DJANGO_SESSION_COOKIE_SECURE": "true",
    "DJANGO_CSRF_COOKIE_SECURE": "true",
    "DJANGO_SECURE_HSTS_SECONDS": "31536000",
    "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "DJANGO_SECURE_HSTS_PRELOAD": "true",
    "DJANGO_BEHIND_TLS_PROXY": "true",
}


def project_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """os.environ without the app's variables, with a throw-away SQLite database.

    DJANGO_SECRET_KEY and TRUNK_WEBHOOK_SECRET start out empty rather than absent:
    settings.py treats empty as unset, and an empty variable also shadows a developer's
    .env file (settings.py reads it, but the real environment wins).
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "TRUNK_")) and key != "DATABASE_URL"
    }
    env.update(
        DJANGO_SECRET_KEY="",
        TRUNK_WEBHOOK_SECRET="",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(overrides)
    return env


def dot_env_defines(name: str) -> bool:
    """Whether a developer's .env file sets `name` (settings.py reads it when unset)."""
    path = ROOT / ".env"
    return path.exists() and re.search(rf"^(?:export )?{name}=", path.read_text(), flags=re.M) is not None


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def output(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr


def production(tmp_path: Path, **overrides: str) -> dict[str, str]:
    values = {
        **PRODUCTION_ENV,
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "TRUNK_WEBHOOK_SECRET": TEST_SECRET,
    }
    return project_env(tmp_path, **{**values, **overrides})


# --- Start-up errors with DEBUG off -------------------------------------------------


def test_debug_off_without_secret_key_is_error_e001(tmp_path):
    result = manage(project_env(tmp_path, DJANGO_DEBUG="false", TRUNK_WEBHOOK_SECRET=TEST_SECRET), "check")
    assert result.returncode != 0
    assert "flakyboard.E001" in output(result)
    assert "DJANGO_SECRET_KEY" in output(result)


@pytest.mark.skipif(dot_env_defines("DJANGO_DEBUG"), reason="the project's .env sets DJANGO_DEBUG")
def test_debug_unset_means_off(tmp_path):
    env = project_env(tmp_path, TRUNK_WEBHOOK_SECRET=TEST_SECRET)
    env.pop("DJANGO_DEBUG", None)
    result = manage(env, "check")
    assert result.returncode != 0
    assert "flakyboard.E001" in output(result)


@pytest.mark.parametrize("days", ["0", "3651", str(2**40)])
def test_targets_out_of_range_stop_start_up(tmp_path, days):
    """Past timedelta's range (999,999,999 days) every page showing targets answered 500."""
    env = project_env(tmp_path, DJANGO_DEBUG="true", FLAKYBOARD_TARGET_FIX_DAYS=days)
    result = manage(env, "check")
    assert result.returncode != 0
    assert "must be from 1 to 3650" in output(result)


def test_targets_from_settings_match_the_admins_limit():
    from events.metrics import TARGET_MAX_DAYS

    assert "<= 3650" in (ROOT / "flakyboard" / "settings.py").read_text()
    assert TARGET_MAX_DAYS == 3650


def test_debug_off_without_webhook_secret_is_error_e002(tmp_path):
    env = project_env(tmp_path, DJANGO_DEBUG="false", DJANGO_SECRET_KEY=secrets.token_urlsafe(50))
    result = manage(env, "check")
    assert result.returncode != 0
    assert "flakyboard.E002" in output(result)
    assert "flakyboard.E001" not in output(result)


def test_invalid_webhook_secret_is_error_e003(tmp_path):
    env = project_env(
        tmp_path,
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        TRUNK_WEBHOOK_SECRET="whsec_###",
    )
    result = manage(env, "check")
    assert result.returncode != 0
    assert "flakyboard.E003" in output(result)


def test_one_invalid_entry_among_valid_secrets_is_still_e003(tmp_path):
    env = production(tmp_path, TRUNK_WEBHOOK_SECRET=f"{TEST_SECRET},whsec_###")
    result = manage(env, "check")
    assert result.returncode != 0
    assert "flakyboard.E003" in output(result)


def test_debug_on_without_secrets_only_warns(tmp_path):
    result = manage(project_env(tmp_path, DJANGO_DEBUG="true"), "check")
    assert result.returncode == 0, output(result)
    assert "flakyboard.W002" in output(result)
    assert "flakyboard.E00" not in output(result)


# --- check --deploy ------------------------------------------------------------------


def test_production_variables_pass_check_deploy_without_warnings(tmp_path):
    result = manage(production(tmp_path), "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, output(result)
    assert "System check identified no issues" in output(result)
    assert "WARNING" not in output(result)


def test_several_rotated_secrets_pass_check_deploy(tmp_path):
    env = production(tmp_path, TRUNK_WEBHOOK_SECRET=f" {TEST_SECRET} ,{OTHER_SECRET} ")
    result = manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, output(result)


def test_check_deploy_flags_missing_https_switches(tmp_path):
    """HTTPS is opt-in: DEBUG off alone does not switch it on, and `check --deploy` says so."""
    env = project_env(
        tmp_path,
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        TRUNK_WEBHOOK_SECRET=TEST_SECRET,
    )
    result = manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in output(result)


# --- Values read from the environment ------------------------------------------------


def read_settings(env: dict[str, str], *names: str) -> dict:
    """Import the settings module in a fresh process and return the named values."""
    script = (
        "import json, django\n"
        "from django.conf import settings\n"
        "django.setup()\n"
        f"print(json.dumps({{name: getattr(settings, name) for name in {list(names)!r}}}, default=str))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "flakyboard.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, output(result)
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (TEST_SECRET, [TEST_SECRET]),
        (f"{TEST_SECRET} {OTHER_SECRET}", [TEST_SECRET, OTHER_SECRET]),
        (f"{TEST_SECRET},{OTHER_SECRET}", [TEST_SECRET, OTHER_SECRET]),
        (f"  {TEST_SECRET} ,, {OTHER_SECRET}\n", [TEST_SECRET, OTHER_SECRET]),
        (f"{TEST_SECRET},\t{OTHER_SECRET}, whsec_c2Vjb25k", [TEST_SECRET, OTHER_SECRET, "whsec_c2Vjb25k"]),
        ("", []),
        (" , ", []),
    ],
    ids=["one", "spaces", "commas", "mixed-and-padded", "three", "empty", "only-separators"],
)
def test_webhook_secret_splits_on_spaces_and_commas(tmp_path, raw, expected):
    env = project_env(tmp_path, DJANGO_DEBUG="true", TRUNK_WEBHOOK_SECRET=raw)
    assert read_settings(env, "TRUNK_WEBHOOK_SECRETS") == {"TRUNK_WEBHOOK_SECRETS": expected}


def test_https_behaviour_is_off_by_default_even_with_debug_off(tmp_path):
    env = project_env(
        tmp_path, DJANGO_DEBUG="false", DJANGO_SECRET_KEY="x" * 60, TRUNK_WEBHOOK_SECRET=TEST_SECRET
    )
    values = read_settings(
        env,
        "DEBUG",
        "SECURE_SSL_REDIRECT",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_HSTS_SECONDS",
        "SECURE_PROXY_SSL_HEADER",
    )
    assert values == {
        "DEBUG": False,
        "SECURE_SSL_REDIRECT": False,
        "SESSION_COOKIE_SECURE": False,
        "CSRF_COOKIE_SECURE": False,
        "SECURE_HSTS_SECONDS": 0,
        "SECURE_PROXY_SSL_HEADER": None,
    }


def test_production_variables_are_applied(tmp_path):
    env = production(
        tmp_path, DATABASE_URL="postgres://u:p@db.internal:5432/flakyboard", DJANGO_CONN_MAX_AGE="30"
    )
    values = read_settings(
        env,
        "ALLOWED_HOSTS",
        "CSRF_TRUSTED_ORIGINS",
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_HSTS_PRELOAD",
        "SECURE_PROXY_SSL_HEADER",
        "DATABASES",
    )
    assert values["ALLOWED_HOSTS"] == ["flakyboard.example.com"]
    assert values["CSRF_TRUSTED_ORIGINS"] == ["https://flakyboard.example.com"]
    assert (values["SECURE_HSTS_SECONDS"], values["SECURE_HSTS_INCLUDE_SUBDOMAINS"]) == (31536000, True)
    assert values["SECURE_HSTS_PRELOAD"] is True
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    db = values["DATABASES"]["default"]
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["HOST"], db["PORT"], db["NAME"], db["CONN_MAX_AGE"]) == ("db.internal", 5432, "flakyboard", 30)


# --- .env.example documents every variable, and its examples work --------------------


def env_vars_read_by_settings() -> set[str]:
    source = (ROOT / "flakyboard" / "settings.py").read_text()
    return set(re.findall(r"""\benv(?:\.\w+)?\(\s*["']([A-Z][A-Z0-9_]*)["']""", source))


def env_example_assignments(section: str) -> dict[str, str]:
    """KEY=value lines of one section of .env.example ("Development" or "Production").

    Development: the active lines only. Production: its commented-out example lines.
    """
    text = ENV_EXAMPLE.read_text()
    development, production_part = re.split(r"^# Production example.*$", text, maxsplit=1, flags=re.M)
    if section == "Development":
        return dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", development, flags=re.M))
    return dict(re.findall(r"^# ([A-Z][A-Z0-9_]*)=(.*)$", production_part, flags=re.M))


def test_settings_reads_the_expected_variables():
    # Guards the regex of the next test: these are read in settings.py today.
    assert env_vars_read_by_settings() >= {
        "DJANGO_DEBUG",
        "DJANGO_SECRET_KEY",
        "DJANGO_ALLOWED_HOSTS",
        "TRUNK_WEBHOOK_SECRET",
        "DATABASE_URL",
        "DJANGO_SECURE_HSTS_PRELOAD",
        "DJANGO_BEHIND_TLS_PROXY",
        "DJANGO_LOG_LEVEL",
    }


def test_env_example_lists_every_variable_settings_reads():
    text = ENV_EXAMPLE.read_text()
    listed = set(re.findall(r"^(?:# )?([A-Z][A-Z0-9_]*)=", text, flags=re.M))
    assert env_vars_read_by_settings() - listed == set()
    # ... and the production example sets each of them too.
    assert env_vars_read_by_settings() - set(env_example_assignments("Production")) == set()


def test_env_example_development_section_works_as_a_dot_env(tmp_path):
    development = env_example_assignments("Development")
    assert development["DJANGO_DEBUG"] == "true"
    result = manage(project_env(tmp_path, **development), "check")
    assert result.returncode == 0, output(result)


def test_env_example_production_section_passes_check_deploy(tmp_path):
    example = env_example_assignments("Production")
    assert example["DJANGO_DEBUG"] == "false"
    # Fill in the placeholders; keep SQLite so the check needs no PostgreSQL server.
    example.update(
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        TRUNK_WEBHOOK_SECRET=TEST_SECRET,
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
    )
    example.pop("DATABASE_REPLICA_URL")  # a replica of a PostgreSQL primary (tests/test_replica.py)
    result = manage(project_env(tmp_path, **example), "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, output(result)


def test_favicon_ico_leads_to_the_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"].endswith(".svg") and "favicon" in response["Location"]
