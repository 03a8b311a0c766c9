# Shortcuts for developers; the README's commands work without make.
.PHONY: demo test test-unit test-integration test-system test-frontend lint format

demo:
	.venv/bin/fsml demo

test:
	bash .ci/test.sh

# The tiers alone, on an installed .venv: `make test-unit PYTEST_ARGS=-x`. The unit tier runs with the database and
# broker URLs pointing at a closed port, so it shows that it needs neither MariaDB nor Redis.
PYTEST = .venv/bin/python -m pytest
# DVC commits in the tests need a git identity, as in .ci/test.sh; one already set is kept.
GIT_AUTHOR_NAME ?= fsml tests
GIT_AUTHOR_EMAIL ?= tests@fsml.invalid
GIT_COMMITTER_NAME ?= $(GIT_AUTHOR_NAME)
GIT_COMMITTER_EMAIL ?= $(GIT_AUTHOR_EMAIL)
export GIT_AUTHOR_NAME GIT_AUTHOR_EMAIL GIT_COMMITTER_NAME GIT_COMMITTER_EMAIL
CLOSED = 127.0.0.1:1
test-unit:
	DATABASE_URL=mysql://root@$(CLOSED)/fsml CELERY_BROKER_URL=redis://$(CLOSED)/0 \
	FSML_CRAWL_REDIS_URL=redis://$(CLOSED)/0 $(PYTEST) tests/unit $(PYTEST_ARGS)

test-integration:
	$(PYTEST) tests/integration $(PYTEST_ARGS)

test-system:
	$(PYTEST) tests/system $(PYTEST_ARGS)

# The Vitest specs of the annotation front end's pure helpers (after `npm ci` there).
test-frontend:
	cd annotation/frontend && npm test

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/lint-imports
	.venv/bin/mypy

format:
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .
