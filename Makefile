# flakyboard: `make demo` and `make test` do all set-up on a machine with Python 3.11+ and make.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The demo server's port: `make demo PORT=8001` when 8000 is taken.
PORT ?= 8000
# The demo's local webhook receiver, which prints the notifications it is sent.
RECEIVER_PORT ?= 8025
# The demo's own secret: signs the demo deliveries. Never use it for a real endpoint.
DEMO_ENV := DJANGO_DEBUG=true TRUNK_WEBHOOK_SECRET=whsec_ZGVtby1zZWNyZXQtZm9yLWZsYWt5Ym9hcmQtb25seQ==

.PHONY: demo test install lint format lock clean-demo

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the pinned requirements change.
$(VENV)/.installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

demo: install
	$(DEMO_ENV) $(BIN)/python manage.py migrate --noinput
	$(DEMO_ENV) $(BIN)/python manage.py seed_demo
	$(DEMO_ENV) $(BIN)/python manage.py create_demo_subscriptions --receiver-port $(RECEIVER_PORT)
	$(DEMO_ENV) $(BIN)/python manage.py demo_alert
	$(DEMO_ENV) $(BIN)/python manage.py create_demo_user --port $(PORT)
	@# Beside the server: the projector (fast by default: the server stores each delivery, the
	@# projector applies it), the receiver that prints notifications, the task worker that
	@# sends them and the notification schedule; all stopped with the server (Ctrl-C).
	trap 'kill 0' EXIT; \
	$(DEMO_ENV) $(BIN)/python manage.py project_pending --follow & \
	$(DEMO_ENV) $(BIN)/python manage.py demo_receiver --port $(RECEIVER_PORT) & \
	$(DEMO_ENV) $(BIN)/python manage.py db_worker --no-reload --interval 2 & \
	$(DEMO_ENV) FLAKYBOARD_BASE_URL=http://127.0.0.1:$(PORT) $(BIN)/python manage.py notify --follow --every 5 & \
	$(DEMO_ENV) FLAKYBOARD_DEFERRED_PROJECTION=true $(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# mypy's Django plugin imports flakyboard.settings, which need no environment variable.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy events dashboard api notifications

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Re-pin every dependency from requirements*.in in a throwaway virtualenv. The second freeze
# is --all: it keeps setuptools and wheel (requirements-dev.in), which pip freeze skips otherwise.
lock:
	rm -rf /tmp/flakyboard-lock && $(PYTHON) -m venv /tmp/flakyboard-lock
	/tmp/flakyboard-lock/bin/pip install --quiet -r requirements.in
	/tmp/flakyboard-lock/bin/pip freeze > /tmp/flakyboard-lock/runtime.txt
	/tmp/flakyboard-lock/bin/pip install --quiet -r requirements-dev.in
	/tmp/flakyboard-lock/bin/pip freeze --all --exclude pip > /tmp/flakyboard-lock/all.txt
	(echo "# Pinned runtime dependencies (from requirements.in). Regenerate: make lock"; cat /tmp/flakyboard-lock/runtime.txt) > requirements.txt
	(echo "# Pinned test/tool dependencies (from requirements-dev.in). Regenerate: make lock"; echo "-r requirements.txt"; \
	  comm -13 <(sort /tmp/flakyboard-lock/runtime.txt) <(sort /tmp/flakyboard-lock/all.txt)) > requirements-dev.txt

clean-demo:
	rm -f db.sqlite3 db.sqlite3-wal db.sqlite3-shm

# Benchmarks on PostgreSQL (127.0.0.1:5432, trust auth; BENCH_PG_ADMIN_URL to change).
# bench: the full run (about an hour); bench-smoke: every script at a tiny size.
.PHONY: bench bench-smoke
# About 40 minutes on 2 cores (L alone: ~7 min to build, ~6 to rebuild).
bench: install
	$(BIN)/python -m bench.scale S M L
	$(BIN)/python -m bench.pages S M L --rounds 3
	$(BIN)/python -m bench.rebuild M L
	$(BIN)/python -m bench.ingest --duration 60
	$(BIN)/python -m bench.projector --deliveries 30000 --projectors 1 2 4
	$(BIN)/python -m bench.mixed --size L --duration 60
	$(BIN)/python -m bench.projector --deliveries 30000 --owners 5 --name projector-monorepo --projectors 1 2 4

bench-smoke: install
	$(BIN)/python -m bench.scale XS
	$(BIN)/python -m bench.pages XS --requests 2 --rounds 2
	$(BIN)/python -m bench.rebuild XS
	$(BIN)/python -m bench.ingest --duration 3 --concurrency 4 --max-requests 800 --name ingest-smoke
	$(BIN)/python -m bench.projector --deliveries 400 --name projector-smoke --projectors 1 2
	$(BIN)/python -m bench.projector --deliveries 400 --cold --name projector-cold-smoke --projectors 2
	$(BIN)/python -m bench.mixed --size XS --duration 3 --senders 2 --readers 2 --max-requests 400
