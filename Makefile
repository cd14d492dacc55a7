# The two commands in README.md: `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Two test processes (pytest-xdist), one database each; PYTEST_ARGS="-n 0" runs them in one.
PYTEST_ARGS ?= -n 2

.PHONY: demo test lint bench-refresh clean

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed; set PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $(STAMP)

# Fresh keys for a development checkout; never committed (.gitignore).
.env: | $(STAMP)
	@umask 077 && $(PY) -c "import secrets; from cryptography.fernet import Fernet; \
	print('SECRET_KEY=' + secrets.token_urlsafe(50)); \
	print('PORTAL_ENCRYPTION_KEYS=' + Fernet.generate_key().decode())" > .env
	@echo "Wrote .env with a fresh SECRET_KEY and PORTAL_ENCRYPTION_KEYS."

demo: $(STAMP) .env
	DEBUG=$${DEBUG:-true} $(PY) manage.py demo $(DEMO_ARGS)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

clean:
	rm -rf $(VENV) .pytest_cache
