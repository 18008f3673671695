# Switchboard. The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.lock requirements-dev.lock | sha256sum | cut -c1-12)

.PHONY: run test test-fast bench lint lint-imports install clean

$(PY):
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(PY) requirements.lock requirements-dev.lock
	$(PY) -m pip install --quiet -r requirements-dev.lock
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

## make run: install, migrate, create the first admin, then web + worker + beat (+ demo vendors) until Ctrl-C.
run: install
	$(PY) -m dashboard.envfile
	$(PY) manage.py migrate --no-input
	$(PY) manage.py collectstatic --no-input --verbosity 0
	$(PY) manage.py setup_schedules
	$(PY) manage.py ensure_admin
	@if grep -qi '^DEMO_MODE=true' .env 2>/dev/null || [ "$$DEMO_MODE" = "true" ]; then $(PY) manage.py demo; fi
	$(PY) manage.py runall

## make test: the whole suite against PostgreSQL and Redis when reachable (REQUIRE_SERVICES=1: they must be).
test: install
	@test -x /usr/bin/chromium || echo "!! /usr/bin/chromium is missing: browser tests will be skipped (apt-get install chromium)"
	$(PY) -m pytest $(PYTEST_ARGS)

## make test-fast: everything but the browser (tests/e2e), system (tests/system) and process tests
## (-m process, celery_worker), on FAST_WORKERS pytest-xdist workers, with smaller fuzz and model budgets.
## One worker more than cores: the lane waits (PostgreSQL, sandbox stalls, deadlines) as much as it computes.
FAST_WORKERS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 1) + 1 )))
test-fast: install
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-10} ROTATION_MODEL_EXAMPLES=$${ROTATION_MODEL_EXAMPLES:-4} \
	  $(PY) -m pytest -q -n $(FAST_WORKERS) --dist worksteal -m "not process and not celery_worker and not e2e and not system" \
	  --ignore=tests/e2e --ignore=tests/system $(PYTEST_ARGS)

bench: install
	$(PY) bench/run.py

lint: install lint-imports
	$(VENV)/bin/ruff check .
	DEBUG=true $(PY) manage.py makemigrations --check --dry-run

## make lint-imports: the layering contracts of pyproject.toml ([tool.importlinter]; DESIGN.md).
lint-imports: install
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) var .pytest_cache
