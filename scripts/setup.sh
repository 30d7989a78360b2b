#!/usr/bin/env bash
# Create .venv and install deepresolve with everything it needs.
# torch==2.13.0 goes first: it is the CPU wheel on local disk; a bare `torch` requirement
# on an empty environment would pull a multi-GB CUDA build instead.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[test]"
# No dependency may replace the torch installed above.
.venv/bin/python -c "import torch, sys; v = torch.__version__; print('torch', v); sys.exit(0 if v.startswith('2.13.0') else 'torch was replaced: ' + v)"
