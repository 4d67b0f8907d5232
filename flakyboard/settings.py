"""flakyboard settings: one module, driven by environment variables only.

Every variable is listed with a comment in `.env.example`. SQLite is the zero-setup
default; set DATABASE_URL=postgres://... for production. HTTPS-only behaviour (redirect,
secure cookies, HSTS) is switched on by its own variables, never implied by DEBUG being
off, so the app still serves plain HTTP on 127.0.0.1 with DEBUG off.
"""

import re
from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local .env file is read when present (never required); real environment wins.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)

# Without DJANGO_SECRET_KEY a development key is used, and the system check
# `flakyboard.E001` refuses to start with DEBUG off (see events/checks.py).
INSECURE_DEV_SECRET_KEY = "django-insecure-flakyboard-development-key-do-not-use-in-production"
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="") or INSECURE_DEV_SECRET_KEY

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# Trunk's Svix endpoint secrets (`whsec_...`). Several may be configured at once,
# separated by spaces or commas, so a secret can be rotated without losing deliveries.
TRUNK_WEBHOOK_SECRETS = [s for s in re.split(r"[\s,]+", env.str("TRUNK_WEBHOOK_SECRET", default="")) if s]
# Svix bodies are small JSON documents; anything larger is refused with 413.
TRUNK_WEBHOOK_MAX_BODY_BYTES = env.int("TRUNK_WEBHOOK_MAX_BODY_BYTES", default=1024 * 1024)

FLAKYBOARD_PUBLIC_DASHBOARD = env.bool("FLAKYBOARD_PUBLIC_DASHBOARD", default=False)

# Off (default): the receiver applies each delivery before it answers (one process, no
# worker; about 250 deliveries/s on 2 cores). On: the receiver only stores it as
# `pending` (about 4x the throughput) and `manage.py project_pending --follow` applies
# pending deliveries in batches, usually within a second (events/projection/projector.py).
FLAKYBOARD_DEFERRED_PROJECTION = env.bool("FLAKYBOARD_DEFERRED_PROJECTION", default=False)

# Reverse proxies in front of the app that append to X-Forwarded-For. 0 (default): the
# client is REMOTE_ADDR and X-Forwarded-For is ignored, since anyone can send one. N: the
# N-th address from the right of X-Forwarded-For. One rule (limits/client_ip.py) for the
# API throttles and the login limiter.
# Owners' targets (METRICS "Owner targets"), in whole days: an episode should be
# triaged within FLAKYBOARD_TARGET_TRIAGE_DAYS of its start and fixed within
# FLAKYBOARD_TARGET_FIX_DAYS. An owner's own targets (admin: Owner targets) override them.
FLAKYBOARD_TARGET_TRIAGE_DAYS = env.int("FLAKYBOARD_TARGET_TRIAGE_DAYS", default=3)
FLAKYBOARD_TARGET_FIX_DAYS = env.int("FLAKYBOARD_TARGET_FIX_DAYS", default=14)
# At most 3650 (events.metrics.TARGET_MAX_DAYS, not imported here: settings load before
# the apps): past timedelta's range every page showing targets answered 500.
if not (1 <= FLAKYBOARD_TARGET_TRIAGE_DAYS <= 3650 and 1 <= FLAKYBOARD_TARGET_FIX_DAYS <= 3650):
    raise ImproperlyConfigured(
        "FLAKYBOARD_TARGET_TRIAGE_DAYS and FLAKYBOARD_TARGET_FIX_DAYS must be from 1 to 3650 (days)."
    )

FLAKYBOARD_TRUSTED_PROXY_COUNT = env.int("FLAKYBOARD_TRUSTED_PROXY_COUNT", default=0)
if FLAKYBOARD_TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured("FLAKYBOARD_TRUSTED_PROXY_COUNT must be 0 or more.")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "csp",  # django-csp: its system checks (outdated CSP_* settings)
    "django_tasks",
    "django_tasks_db",
    "events",
    "dashboard",
    "api",
    "limits",
    "notifications",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before anything that reads the database (sessions): 503 at once while it is stalled.
    "flakyboard.db.StalledDatabaseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After sessions and auth (always read from the primary): the dashboard's and API's reads.
    "flakyboard.db_router.ReplicaReadsMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",  # CONTENT_SECURITY_POLICY below
    # Last, as django-axes asks: it turns a lockout into the lockout page (429).
    "axes.middleware.AxesMiddleware",
]

# A receiver-only server (bin/start-server's receiver pool, RECEIVER_PORT) serves the
# webhook endpoint and the health checks, nothing else (flakyboard/receiver_urls.py).
FLAKYBOARD_RECEIVER_ONLY = env.bool("FLAKYBOARD_RECEIVER_ONLY", default=False)
ROOT_URLCONF = "flakyboard.receiver_urls" if FLAKYBOARD_RECEIVER_ONLY else "flakyboard.urls"
if FLAKYBOARD_RECEIVER_ONLY:
    # WhiteNoise answers /static/ before the URLs are read: not this server's business.
    MIDDLEWARE.remove("whitenoise.middleware.WhiteNoiseMiddleware")

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "flakyboard.wsgi.application"

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Reuse connections between requests; health-checked so a restarted server is noticed.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # A stalled database (paused, overloaded, behind a silent network) must not hold
    # requests for as long as it lasts: the receiver and /healthz answer 503 within about
    # DATABASE_STATEMENT_TIMEOUT + 1 s (flakyboard/db.py). Connecting gives up after
    # DATABASE_CONNECT_TIMEOUT seconds (every process; whole seconds, at least 2).
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env.int(
        "DATABASE_CONNECT_TIMEOUT", default=2
    )
    # PostgreSQL's JIT compiler starts above a plan cost that a sort over every test (the
    # impact order at 50,000 tests) reaches: it then spent 450 ms compiling a query that
    # runs in 120 ms (bench.pages L). Dashboard and API queries are short; JIT pays only
    # for long analytical scans, so it is off unless DATABASE_JIT=true.
    if not env.bool("DATABASE_JIT", default=False):
        DATABASES["default"]["OPTIONS"]["options"] = "-c jit=off"
else:
    # SQLite: wait for the writer lock instead of failing at once, and take the write
    # lock at BEGIN so concurrent deliveries queue up instead of deadlocking.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )

# A read replica (optional; flakyboard/db_router.py): the dashboard's and the API's reads go
# to it, writes and everything else to the primary; a user's reads stay on the primary for
# FLAKYBOARD_REPLICA_STICKY_SECONDS after their own write (longer than the replica's lag).
DATABASE_REPLICA_URL = env.str("DATABASE_REPLICA_URL", default="")
FLAKYBOARD_REPLICA_STICKY_SECONDS = env.int("FLAKYBOARD_REPLICA_STICKY_SECONDS", default=30)
# After the replica failed to answer, a process reads from the primary for this long.
FLAKYBOARD_REPLICA_RETRY_SECONDS = env.float("FLAKYBOARD_REPLICA_RETRY_SECONDS", default=30.0)
if DATABASE_REPLICA_URL:
    _replica = environ.Env.db_url_config(DATABASE_REPLICA_URL)
    if _replica["ENGINE"] != DATABASES["default"]["ENGINE"]:
        raise ImproperlyConfigured(
            "DATABASE_REPLICA_URL must be a replica of DATABASE_URL (the same engine)."
        )
    for _key in ("CONN_MAX_AGE", "CONN_HEALTH_CHECKS"):
        if _key in DATABASES["default"]:
            _replica[_key] = DATABASES["default"][_key]
    _replica["OPTIONS"] = {**DATABASES["default"].get("OPTIONS", {}), **_replica.get("OPTIONS", {})}
    # Test databases: the replica alias reads the primary's (a real replica is tested apart).
    _replica["TEST"] = {"MIRROR": "default"}
    DATABASES["replica"] = _replica
DATABASE_ROUTERS = ["flakyboard.db_router.ReplicaRouter"]

# Web server processes only (flakyboard/wsgi.py): PostgreSQL's statement_timeout on their
# connections, and the longest they wait for any answer from the database (this plus
# 1 s) before dropping the connection and answering 503. 0: no bound. Commands (the
# projector, rebuild_projections, migrate) are not bounded.
DATABASE_STATEMENT_TIMEOUT = env.float("DATABASE_STATEMENT_TIMEOUT", default=3.0)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# django-axes first: it refuses a locked-out username + address before any password is
# checked, so a correct password is refused too until the cool-off ends.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

# --- Login attempts (django-axes): every view that calls authenticate() with the request
# (the dashboard's /accounts/login/ and /admin/login/). Failures are counted in the
# database, so all server processes share them. Keyed by username and address together:
# an attacker elsewhere cannot lock a colleague out, and guessing one account's password
# from one address stops after the limit.
AXES_FAILURE_LIMIT = env.int("FLAKYBOARD_LOGIN_FAILURE_LIMIT", default=10)
if AXES_FAILURE_LIMIT < 1:
    raise ImproperlyConfigured("FLAKYBOARD_LOGIN_FAILURE_LIMIT must be 1 or more.")
# Failures older than this are forgotten and a lockout ends after it. Without a cool-off
# axes would lock for good, until an admin deletes the access attempt.
_lockout_minutes = env.int("FLAKYBOARD_LOGIN_LOCKOUT_MINUTES", default=15)
if _lockout_minutes < 1:
    raise ImproperlyConfigured("FLAKYBOARD_LOGIN_LOCKOUT_MINUTES must be 1 or more.")
AXES_COOLOFF_TIME = timedelta(minutes=_lockout_minutes)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True  # a colleague's occasional typos do not add up over weeks
AXES_CLIENT_IP_CALLABLE = "limits.client_ip.client_ip"  # the API throttles' rule
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"  # answered with status 429

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
# 2026-11-01 14:05 UTC everywhere, the admin included (flakyboard/formats/en/formats.py).
FORMAT_MODULE_PATH = ["flakyboard.formats"]
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",  # htmx from django-htmx
    "dashboard.staticfiles.PlotlyFinder",  # plotly.js from the plotly package
]
# With the manifest (production: collectstatic, then DEBUG off) every file is named by its
# content hash and gzipped; WhiteNoise serves hashed names as immutable (ten years). Without
# it (`make demo`, tests) files keep their names, except plotly.js, 4.8 MB, which is named
# by its hash all the same (dashboard/staticfiles.py) so no browser downloads it twice.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if env.bool("DJANGO_MANIFEST_STATIC", default=not DEBUG)
            else "dashboard.staticfiles.DevelopmentStaticFilesStorage"
        )
    },
}
# Files asked for by their unhashed names (nothing of flakyboard's pages; a stale page or
# a bookmark may): cached an hour in production, where they change only with a deploy,
# and revalidated every time with DEBUG on, so an edited stylesheet shows at once.
WHITENOISE_MAX_AGE = 0 if DEBUG else 60 * 60

# --- Content-Security-Policy (django-csp): every script, style, image and connection
# from this origin, on every response (pages, the admin, /api/docs/, error pages).
# No third-party source is allowed (no CDN, fonts or analytics). Scripts are files only:
# charts are drawn by static/flakyboard/charts.js from JSON data islands, never inline
# code, and /api/docs/ is drf-spectacular's split Swagger view, whose start-up code is a
# script file too (api/urls.py). Plotly styles its SVG through style attributes and
# <style> elements it creates, which is why styles allow 'unsafe-inline' (styles cannot
# run code); Swagger UI's page has a <style> element as well. With DEBUG on, django-csp
# sends no header with 404 and 500 responses: Django's debug pages use inline code.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# --- HTTPS-only behaviour: explicit switches, set by the production example. ---
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=False)
SESSION_COOKIE_SECURE = env.bool("DJANGO_SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("DJANGO_CSRF_COOKIE_SECURE", default=False)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)
if env.bool("DJANGO_BEHIND_TLS_PROXY", default=False):
    # The proxy terminates TLS and says so in this header; only trust it behind one.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Svix cannot follow redirects; the receiver must stay reachable over the scheme it is
# configured with, so the SSL redirect exempts nothing: configure Svix with https://.

# Prometheus metrics at /metrics (flakyboard/observability.py): off unless a token is set;
# scrapers send `Authorization: Bearer <token>`.
FLAKYBOARD_METRICS_TOKEN = env.str("FLAKYBOARD_METRICS_TOKEN", default="")

# Logs go to stderr, as text or (DJANGO_LOG_FORMAT=json) one JSON object per line, for log
# collectors. Every line written while a delivery is received carries its svix id.
LOG_FORMAT = env.str("DJANGO_LOG_FORMAT", default="text")
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured("DJANGO_LOG_FORMAT must be text or json.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"svix_id": {"()": "flakyboard.observability.SvixIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(svix_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["svix_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
    # django-axes announces its version at every start of every command; its login
    # failures and lockouts (axes.handlers) are still logged.
    "loggers": {"axes.apps": {"level": "WARNING"}},
}

# --- Notifications (notifications/): alerts and weekly digests to subscriptions.

# The address users reach flakyboard at: messages link to a test's page from there.
FLAKYBOARD_BASE_URL = env.str("FLAKYBOARD_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
# An alert whose moment (the event time of the change, or the time a deadline passed) lies
# further back than this when it is recorded is not sent: a late or replayed delivery, a
# rebuild or a catch-up after downtime shows in the digest only.
FLAKYBOARD_NOTIFY_MAX_AGE_MINUTES = env.int("FLAKYBOARD_NOTIFY_MAX_AGE_MINUTES", default=60)
# Bursts: a subscription's alerts wait this long after the first of them, and go out as one
# message (ten tests turning flaky in one minute make one message).
FLAKYBOARD_NOTIFY_GROUP_SECONDS = env.int("FLAKYBOARD_NOTIFY_GROUP_SECONDS", default=60)
# Attempts per message before it is marked failed (back-off doubles from 30 s between them).
FLAKYBOARD_NOTIFY_ATTEMPTS = env.int("FLAKYBOARD_NOTIFY_ATTEMPTS", default=5)
FLAKYBOARD_NOTIFY_RETRY_SECONDS = env.int("FLAKYBOARD_NOTIFY_RETRY_SECONDS", default=30)
# A destination that does not answer is given up on after this many seconds (connect and read).
FLAKYBOARD_NOTIFY_TIMEOUT_SECONDS = env.float("FLAKYBOARD_NOTIFY_TIMEOUT_SECONDS", default=8.0)
EMAIL_TIMEOUT = FLAKYBOARD_NOTIFY_TIMEOUT_SECONDS  # a mail server that hangs fails like a webhook

# The weekly digest goes out once per ISO week, after this weekday (0 Monday) and UTC hour.
FLAKYBOARD_DIGEST_WEEKDAY = env.int("FLAKYBOARD_DIGEST_WEEKDAY", default=0)
FLAKYBOARD_DIGEST_HOUR = env.int("FLAKYBOARD_DIGEST_HOUR", default=8)
if not (0 <= FLAKYBOARD_DIGEST_WEEKDAY <= 6 and 0 <= FLAKYBOARD_DIGEST_HOUR <= 23):
    raise ImproperlyConfigured(
        "FLAKYBOARD_DIGEST_WEEKDAY must be 0-6 (Monday 0) and FLAKYBOARD_DIGEST_HOUR 0-23."
    )

# django-tasks (the backport of Django 6's task framework) runs the sends. The default is its
# database queue: no extra server; `manage.py db_worker` runs them. With
# FLAKYBOARD_TASKS_REDIS_URL (redis://host:6379/0) the queue is Redis instead (django-tasks-rq;
# `manage.py rqworker default --with-scheduler` runs them; bin/start-worker picks the right one).
# FLAKYBOARD_TASKS=immediate runs each send inside the process that enqueues it (one-off scripts).
FLAKYBOARD_TASKS_REDIS_URL = env.str("FLAKYBOARD_TASKS_REDIS_URL", default="")
if FLAKYBOARD_TASKS_REDIS_URL:
    TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
    # django-rq: its queues and `manage.py rqworker` (only then: its admin page needs Redis).
    INSTALLED_APPS.append("django_rq")
elif env.str("FLAKYBOARD_TASKS", default="database") == "immediate":
    TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
else:
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
# django-rq's queues (used only with FLAKYBOARD_TASKS_REDIS_URL). A job may run 60 s: a send
# gives up after FLAKYBOARD_NOTIFY_TIMEOUT_SECONDS.
RQ_QUEUES = {
    "default": {"URL": FLAKYBOARD_TASKS_REDIS_URL or "redis://127.0.0.1:6379/0", "DEFAULT_TIMEOUT": 60}
}

# --- Caches. The API throttle counters need a cache that every server process shares, or
# each of N workers would allow the whole limit again. The dashboard's aggregate pages share
# their rendered content between readers for FLAKYBOARD_SHARED_PAGE_SECONDS
# (dashboard/shared_pages.py; 0 turns it off): under many readers a page is computed about
# once per interval instead of once per request. A copy lives twice the interval at most,
# never longer than the sticky interval above, so that a user's own write is on every page
# once their fresh-reads cookie ends.

THROTTLE_CACHE = "throttle"
SHARED_PAGE_CACHE = "shared_pages"
FLAKYBOARD_SHARED_PAGE_SECONDS = min(
    env.int("FLAKYBOARD_SHARED_PAGE_SECONDS", default=10), FLAKYBOARD_REPLICA_STICKY_SECONDS // 2
)
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # The database by default, like the throttle's: every process (and host) shares one
    # copy of a page and one computation of it, with nothing else to run. One entry per
    # page, filters and audience, tens to hundreds of KB each; a redis:// URL works too.
    SHARED_PAGE_CACHE: env.cache_url(
        "FLAKYBOARD_SHARED_PAGE_CACHE_URL", default="dbcache://flakyboard_shared_pages?max_entries=2000"
    ),
    # The database by default (no other service to run); its table is created by
    # `migrate` (limits/apps.py). Any cache URL django-environ reads works, e.g. redis://.
    # max_entries: past Django's default of 300 rows (clients counted in the last
    # period), a third of the counters would be dropped, i.e. those clients' counts reset.
    THROTTLE_CACHE: env.cache_url(
        "FLAKYBOARD_THROTTLE_CACHE_URL", default="dbcache://flakyboard_throttle_cache?max_entries=10000"
    ),
}

# --- REST API (api/): DRF and its OpenAPI schema (drf-spectacular). ---


def _throttle_rate(name: str, value: str) -> str | None:
    """`<number>/<second|minute|hour|day>` (DRF's format), or "off" for no limit."""
    value = value.strip()
    if value.lower() in ("", "off", "none"):
        return None
    if not re.fullmatch(r"[0-9]+/(s|sec|second|m|min|minute|h|hour|d|day)", value):
        raise ImproperlyConfigured(f"{name}={value!r}: expected e.g. 100/minute, 5000/hour or off.")
    return value


REST_FRAMEWORK = {
    # Token first: an anonymous request is refused with 401 and `WWW-Authenticate: Token`.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["api.permissions.ReadOrTriage"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    # JSON bodies only: DRF reads an empty form field as "not sent", which would hide mistakes.
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "api.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.AnonThrottle", "api.throttling.UserThrottle"],
    # The client address rule of limits/client_ip.py (DRF's get_ident reads it).
    "NUM_PROXIES": FLAKYBOARD_TRUSTED_PROXY_COUNT,
    "DEFAULT_THROTTLE_RATES": {
        "anon": _throttle_rate(
            "FLAKYBOARD_API_THROTTLE_ANON", env.str("FLAKYBOARD_API_THROTTLE_ANON", default="60/minute")
        ),
        "user": _throttle_rate(
            "FLAKYBOARD_API_THROTTLE_USER", env.str("FLAKYBOARD_API_THROTTLE_USER", default="1200/minute")
        ),
    },
    "DEFAULT_SCHEMA_CLASS": "api.schema.AutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "flakyboard API",
    "DESCRIPTION": (
        "Trunk Flaky Tests data as flakyboard projects it from Trunk's webhooks: tests, their "
        "history, and the numbers behind every dashboard chart. Authenticate with "
        "`Authorization: Token <key>` (tokens are created in the admin or with "
        "`manage.py drf_create_token <username>`) or a session."
    ),
    "VERSION": "1.0.0",
    "SCHEMA_PATH_PREFIX": r"/api/v[0-9]+",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # No deep links: Swagger UI puts each as a link inside the operation's toggle button
    # (nested interactive controls, which a screen reader cannot reach).
    "SWAGGER_UI_SETTINGS": {"deepLinking": False},
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.schema.document_query_conventions",
    ],
    "ENUM_NAME_OVERRIDES": {
        "StatusEnum": "events.models.Status",
        "MonitorStatusEnum": "events.models.MonitorEvent.MonitorStatus",
        "TriageStateEnum": "events.models.TestCase.Triage",
        "OutcomeEnum": "events.models.Delivery.Outcome",
    },
}
