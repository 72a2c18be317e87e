#!/usr/bin/env bash
# Create .venv and install alife. Usage: bash scripts/setup.sh [EXTRAS]   (default viewer,analysis; e.g. dev, all)
# torch is installed first, pinned to a CPU build, so that pip does not pull a multi-GB CUDA
# build; pyproject.toml accepts a range, so a machine with CUDA can install its own torch.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-viewer,analysis}"
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  .venv/bin/python -m pip install -q "torch==2.13.0" || .venv/bin/python -m pip install -q torch --index-url https://download.pytorch.org/whl/cpu
fi
.venv/bin/python -m pip install -q -e ".[${extras}]"
# compile the CPU step's numba kernels now (cached in __pycache__), so that the first `alife run`
# starts at full speed instead of spending ~10 s compiling inside its clock
.venv/bin/python -c "from alife.world.warmup import warm_kernels; warm_kernels(print)" \
  || echo "setup: warning: the kernel warm-up failed; the first run will compile them" >&2
