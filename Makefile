# Quick start: `make demo` serves the portal with demo data; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: demo test lint typecheck fmt serve worker migrate schema clean check-python

check-python:
	@$(PYTHON) -c 'import sys; v = sys.version_info; sys.exit(0 if v >= (3, 12) else "Python 3.12 or newer is needed, found %d.%d (%s). Install Python 3.13 and re-run, or name it: make PYTHON=python3.13 ..." % (v[0], v[1], sys.executable))'

$(VPY): | check-python
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(VPY)
	$(VPY) -m pip install --quiet -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(VPY)
	$(VPY) -m pip install --quiet -r requirements-dev.txt
	@touch $@ $(VENV)/.installed

migrate: $(VENV)/.installed
	$(VPY) manage.py migrate --noinput

demo: migrate $(VENV)/.installed-dev  # the development requirements bring the demo's SSO provider
	$(VPY) manage.py seed_demo
	$(VPY) manage.py rundemo --addr $(HOST) --port $(PORT)

test: $(VENV)/.installed-dev
	$(VPY) -m pytest

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

fmt: $(VENV)/.installed-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: $(VENV)/.installed-dev
	$(VENV)/bin/mypy

schema: $(VENV)/.installed-dev
	env -u DATABASE_URL $(VPY) manage.py spectacular --file docs/openapi.yaml --validate  # bounds follow the backend: SQLite, as the test checks

serve: migrate
	$(VENV)/bin/gunicorn portal.wsgi --bind $(HOST):$(PORT)

worker: migrate
	$(VPY) manage.py runworker

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
