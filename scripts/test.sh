#!/usr/bin/env bash
# The checks CI runs, in order: lint (ruff), the import layering (import-linter), then the test suite.
# Run after scripts/setup.sh, from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/lint-imports
.venv/bin/python -m pytest -q "$@"
