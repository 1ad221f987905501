#!/usr/bin/env bash
# EMO's inference speed on one GPU: the sd15 set in one run, written to benchmarks/results/gpu.json.
#
#   bash benchmarks/gpu.sh            # about 8 minutes on an H100/H200
#
# sd15 at 512x512 (64x64 latents), b = 2 (guidance), 12 frames + 4 motion frames, random weights (speed does not
# depend on their values): bf16 eager and torch.compile'd, fp16 eager; 40 DDIM steps and the few-step preset's count (10);
# EMO beside diffusers' bare UNetMotionModel and beside EMO with the lean paths off; seconds per clip, counted TFLOP,
# achieved TFLOP/s, % of the device's peak, peak memory. Uses the python given as $PYTHON (default python3), which
# needs a CUDA build of torch; installs this package into it (editable) if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
FEW=${FEW_STEPS:-10}  # chapter 10's FEW_STEPS preset: UniPC, 10 steps (a step costs what a DDIM step costs: one network call)
if ! "$PY" -c "import torch, sys; sys.exit(not torch.cuda.is_available())" 2>/dev/null; then
  echo "benchmarks/gpu.sh: $PY has no CUDA-enabled torch (install one first, e.g. pip install torch)" >&2; exit 1
fi
"$PY" -c "import emo_repro" 2>/dev/null || "$PY" -m pip install -q -e .
"$PY" -c "import torch; print('device:', torch.cuda.get_device_name(), '| torch', torch.__version__)"
"$PY" benchmarks/speed.py --preset sd15 --compile --steps "40,$FEW" --repeats 2 --out benchmarks/results/gpu.json
