# Shortcuts for developers; the README's commands work without make.
.PHONY: demo test lint format

demo:
	.venv/bin/fsml demo

test:
	bash .ci/test.sh

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/lint-imports
	.venv/bin/mypy

format:
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .
