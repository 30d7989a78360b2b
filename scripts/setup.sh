#!/usr/bin/env bash
# Create .venv and install deepresolve with everything it needs.
# torch goes first, pinned to the version the tests run with, so that the package's `torch>=2.2` requirement is
# already met when the package is installed and pip keeps that torch (on Linux, a bare `torch` requirement in an
# empty environment may pull a multi-GB CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[test,models,onnx]"
# bpnet-lite's models import only what is installed above; its pipeline's requirements (MACS3 compiles from source)
# are not needed to load and analyse its models
.venv/bin/python -m pip install -q --no-deps "bpnet-lite>=1.1"
# onnx2torch converts ONNX files to PyTorch; its torchvision requirement (for two detection operators) would replace
# the torch installed above, and the loader does without it
.venv/bin/python -m pip install -q --no-deps "onnx2torch>=1.5"
# No dependency may replace the torch installed above.
.venv/bin/python -c "import torch, sys; v = torch.__version__; print('torch', v); sys.exit(0 if v.startswith('2.13.0') else 'torch was replaced: ' + v)"
