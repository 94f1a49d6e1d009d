# The commands in README.md. Everything runs inside .venv, created on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint check-deploy check-invariants format worker beat serve messages bench load clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)  ## The portal on its embedded default, with demo data, at http://127.0.0.1:8000
	@mkdir -p var
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py seed_demo_vouchers
	$(BIN)/python manage.py seed_demo_upgrades
	$(BIN)/python manage.py seed_demo_partners
	$(BIN)/python manage.py releases seed-demo
	$(BIN)/python manage.py seed_demo_ef
	$(BIN)/python manage.py runserver 127.0.0.1:8000

test: $(STAMP) lint  ## Lint, migrations check, the whole test suite and the invariants
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	$(MAKE) --no-print-directory check-invariants

# `manage.py check_invariants` on a freshly migrated database holding the demo data (a
# throwaway SQLite file, tasks run in-process): what the demo creates must keep every invariant.
check-invariants: $(STAMP)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	  export DATABASE_URL="sqlite:///$$tmp/invariants.sqlite3" PORTAL_VAR_DIR="$$tmp" \
	    DJANGO_LOG_LEVEL=WARNING && \
	  unset REDIS_URL && \
	  $(BIN)/python manage.py migrate --noinput -v 0 && \
	  $(BIN)/python manage.py seed_demo >/dev/null && \
	  $(BIN)/python manage.py seed_demo_vouchers >/dev/null && \
	  $(BIN)/python manage.py seed_demo_upgrades >/dev/null && \
	  $(BIN)/python manage.py seed_demo_partners >/dev/null && \
	  $(BIN)/python manage.py seed_demo_ef >/dev/null && \
	  $(BIN)/python manage.py check_invariants

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy portal licensing upgrades vouchers fileconnect enterprise_flex
	$(BIN)/djlint templates --lint --quiet
	$(MAKE) --no-print-directory check-deploy

# `manage.py check --deploy` in production mode, with a throwaway secret and signing key (and a
# REDIS_URL, which production requires; the check does not connect to it).
check-deploy: $(STAMP)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	  PORTAL_VAR_DIR="$$tmp" $(BIN)/python manage.py signing_key create --path "$$tmp/key.pem" >/dev/null && \
	  DJANGO_PRODUCTION=true DJANGO_DEBUG=false LICENSE_SIGNING_KEY_FILE="$$tmp/key.pem" \
	  DJANGO_SECRET_KEY="$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(64))')" \
	  DJANGO_ALLOWED_HOSTS=licensing.example.com PORTAL_VAR_DIR="$$tmp" \
	  REDIS_URL=redis://127.0.0.1:6379/0 \
	  $(BIN)/python manage.py check --deploy --fail-level WARNING

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

messages: $(STAMP)  ## Refresh and compile the translations
	$(BIN)/python manage.py makemessages -l pt_BR --ignore=.venv --ignore=var --ignore=tests --ignore=bench --no-obsolete
	$(BIN)/python manage.py compilemessages --ignore=.venv

worker: $(STAMP)
	$(BIN)/celery -A portal worker --loglevel=INFO

beat: $(STAMP)
	$(BIN)/celery -A portal beat --loglevel=INFO --schedule var/celerybeat-schedule

serve: $(STAMP)  ## gunicorn, for the full stack
	$(BIN)/python manage.py collectstatic --noinput -v 0
	$(BIN)/gunicorn portal.wsgi --bind 0.0.0.0:8000 --workers 3

# Every benchmark beside its floor, on PostgreSQL + Redis (started when absent), gunicorn (2
# workers) and a Celery worker, into bench/REPORT.md. BENCH_SCALE=100000 licenses; BENCH_QUICK=1
# shortens the run; BENCH_ARGS="--only license_list,get_a_key" picks scripts (bench/run.py).
bench: $(STAMP)  ## Every benchmark beside its floor, into bench/REPORT.md
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# The load test: locust headless against gunicorn (2 workers) + a Celery worker + PostgreSQL +
# Redis on a seed_bench database, then check_invariants, into bench/LOAD.md. USERS (several,
# comma-separated, one run each), DURATION per run (default 2m). Installs the `load` extra.
USERS ?= 20
DURATION ?= 2m
load: $(STAMP)  ## Load test (locust, headless) into bench/LOAD.md
	@$(BIN)/python -c "import locust, psutil" 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[load]'
	$(BIN)/python bench/load.py --users $(USERS) --duration $(DURATION) $(LOAD_ARGS)

clean:
	rm -rf $(VENV) var/portal.sqlite3 var/emails var/staticfiles var/fileconnect
