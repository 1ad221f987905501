#!/usr/bin/env bash
# EMO's speed on one GPU in one prepared run of at most 8 minutes, written to benchmarks/results/gpu.json row by row.
#
#   bash benchmarks/gpu.sh                                      # sd15 on an H100/H200
#   bash benchmarks/gpu.sh --preset tiny --out /tmp/gpu.json    # the same plan at the tiny preset on a CPU: a dry run
#
# Most important rows first (benchmarks/gpu.py says each): sd15 at 512x512, b = 2 (guidance), 12 frames + 4 motion frames,
# random weights (speed does not depend on their values), bf16. EMO torch.compile'd at 40 DDIM steps and at the few-step
# preset's count, one compiled step's kernel time by family, diffusers' bare UNetMotionModel compiled (EMO / bare), EMOPipeline
# end to end on 60 s of speech (total / (clips x one clip's denoising), each part's share), then eager rows while time is left.
# Every finished row is in the results file even when the run is cut short. Uses the python given as $PYTHON (default
# python3) with torch (a CUDA build for sd15), diffusers, transformers and fastcore, and this checkout's emo_repro without
# installing it; PyAV and MediaPipe are optional (the pipeline row says what their absence changed).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
LIMIT=${LIMIT:-480}  # seconds for the whole run; the rows are planned to end 20 s before it
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
"$PY" -c "import torch; print('device:', torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu', '| torch', torch.__version__)"
rc=0; timeout -k 10 "$LIMIT" "$PY" benchmarks/gpu.py --budget $((LIMIT - 20)) --profile "$@" || rc=$?
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then echo "benchmarks/gpu.sh: stopped at ${LIMIT} s; the rows that finished are in the results file" >&2; fi
exit "$rc"
