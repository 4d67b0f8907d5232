# syntax=docker/dockerfile:1
#
# flakyboard production image: gunicorn (bin/start-server) serving Django on port 8000,
# static files collected at build time and served by WhiteNoise.
#
#   docker build -t flakyboard .
#   docker run -p 8000:8000 --env-file .env \
#       -e DATABASE_URL=postgres://user:password@host:5432/flakyboard flakyboard
#
# Configuration is environment variables only (.env.example lists them all); nothing
# secret is baked in. Without DJANGO_SECRET_KEY and TRUNK_WEBHOOK_SECRET the container
# stops at start-up with flakyboard.E001 / E002. For SQLite instead of PostgreSQL, use
# the writable /app/data directory on a volume:
#   -e DATABASE_URL=sqlite:////app/data/db.sqlite3 -v flakyboard-data:/app/data
# `docker compose up` runs it with PostgreSQL 15 (docker-compose.yml).

# --- Stage 1: the pinned dependencies in a virtualenv, copied whole into the runtime
# stage, so pip and its build leftovers stay out of the final image. ---
FROM python:3.11-slim AS deps

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:$PATH"

WORKDIR /build
# Only the requirements first: this layer is rebuilt when they change, not the code.
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

# --- Stage 2: runtime. ---
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH="/opt/venv/bin:$PATH"

# An unprivileged user to run the app; it gets a home directory for gunicorn's
# control socket (~/.gunicorn) and nothing else writable but /app/data.
RUN groupadd --system --gid 10001 flakyboard \
    && useradd --system --uid 10001 --gid flakyboard \
        --home-dir /home/flakyboard --create-home --shell /usr/sbin/nologin flakyboard

COPY --from=deps /opt/venv /opt/venv

WORKDIR /app
# The code stays owned by root: the app user can read it, not change it.
COPY . .

# collectstatic only runs the staticfiles system checks, so it needs no secret key
# and no webhook secret: nothing dummy is set here or left in the runtime environment.
# DEBUG is off by default, so this writes the hashed, compressed manifest that
# WhiteNoise serves (DJANGO_MANIFEST_STATIC defaults to on when DEBUG is off).
# The app's bytecode is compiled now because the app user cannot write it later.
RUN chmod 0755 bin/start-server bin/start-projector bin/start-worker \
    && python manage.py collectstatic --noinput \
    && python -m compileall -q . \
    && mkdir -p /app/data \
    && chown flakyboard:flakyboard /app/data

USER flakyboard:flakyboard

# 8000: the site; 8001: the receiver pool when RECEIVER_PORT=8001 (docker-compose's receiver).
EXPOSE 8000 8001

# No curl in the slim image: python's urllib asks /healthz (app up, database answers).
# It sends the first DJANGO_ALLOWED_HOSTS entry as Host (a request for Host 127.0.0.1
# is refused with 400 when production restricts the host names) and
# X-Forwarded-Proto: https, which the app honours only with DJANGO_BEHIND_TLS_PROXY=true
# and which keeps DJANGO_SECURE_SSL_REDIRECT from redirecting the probe. An error
# status, a refused connection or a redirect to https:// (followed, and failing) makes
# urlopen raise: python exits 1 and the container is marked unhealthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; host = (os.environ.get('DJANGO_ALLOWED_HOSTS', '').split(',')[0].strip().lstrip('.') or '127.0.0.1').replace('*', '127.0.0.1'); r.urlopen(r.Request('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), headers={'Host': host, 'X-Forwarded-Proto': 'https'}), timeout=4)"]

CMD ["bin/start-server"]
