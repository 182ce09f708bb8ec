#!/usr/bin/env bash
# One-off GPU check (< 10 minutes): the default model with ONNX Runtime's CUDA provider at batch 1 and
# 256, the network in torch on CUDA, and one training epoch on CUDA. Prints the tables and appends them
# as a section to benchmarks/RESULTS.md, or, on the lent device machine (where $OUT is set), writes
# $OUT/RESULTS_gpu.md to paste into benchmarks/RESULTS.md here.
#
#   bash benchmarks/gpu_check.sh                      # from the repository root
#
# What it needs and where it finds it:
# - python3 with torch (CUDA build), numpy, opencv, tqdm, matplotlib; the machine's own.
# - onnxruntime-gpu (CUDA 13 build, e.g. 1.31.1) and its CUDA/cuDNN libraries: used as installed if
#   its CUDA provider is there; else installed from wheels in .whl/ (offline: pip --no-index
#   --find-links .whl, into /tmp/site, which shadows a CPU-only onnxruntime), else from the package
#   index when the machine is online. Without it the ORT rows say why and the torch rows still run.
#   Note: the onnxruntime-gpu wheel is ~200 MB; a carry limited to 64 MiB cannot hold it, so on such a
#   machine either split it (split -b 60M) over consecutive calls into /tmp/whl while the machine stays
#   warm, or accept torch-only numbers.
# - the model: $MODEL or assets/anchorface_ibug68.onnx (tracked, so it travels with the tree).
# - the training data: $DATA, else .gpu/data (copy ../shared/data there, minus video/, ~42 MB, and
#   ignore it: echo /.gpu/ >> .git/info/exclude), else ../shared/data. No data: no epoch row.
set -uo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
RESULTS=${OUT:+$OUT/RESULTS_gpu.md}
RESULTS=${RESULTS:-benchmarks/RESULTS.md}
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1

echo "== machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || echo "nvidia-smi not available"
"$PY" -c "import sys, torch; print('python', sys.version.split()[0], '| torch', torch.__version__, '| cuda', torch.version.cuda, '| device', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none')"

has_ort_cuda() {
  "$PY" - <<'EOF' 2>/dev/null
import sys
import onnxruntime as ort
sys.exit(0 if "CUDAExecutionProvider" in ort.get_available_providers() else 1)
EOF
}

echo "== onnxruntime-gpu"
if ! has_ort_cuda; then
  mkdir -p /tmp/site
  for parts in /tmp/whl/*.whl.part-aa; do  # a wheel carried in pieces over several calls
    [ -e "$parts" ] && cat "${parts%-aa}"-* > "${parts%.part-aa}"
  done
  wheels=$(ls .whl/*.whl /tmp/whl/*.whl 2>/dev/null | tr '\n' ' ')
  if [ -n "$wheels" ]; then
    echo "installing from carried wheels: $wheels"
    timeout 240 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site $wheels || echo "wheel install failed"
  else
    echo "no carried wheels; trying the package index"
    timeout 240 "$PY" -m pip install -q --no-compile --target /tmp/site onnxruntime-gpu \
      || echo "onnxruntime-gpu could not be installed (offline?)"
  fi
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
"$PY" -c "import onnxruntime as o; print('onnxruntime', o.__version__, o.get_available_providers())" || true

MODEL=${MODEL:-assets/anchorface_ibug68.onnx}
if [ -z "${DATA:-}" ]; then
  for candidate in .gpu/data ../shared/data; do
    [ -f "$candidate/manifest.csv" ] && DATA=$candidate && break
  done
fi
train_args=()
if [ -n "${DATA:-}" ]; then
  train_args=(--train-data "$DATA")
else
  echo "no training data found (.gpu/data or ../shared/data): skipping the training epoch"
fi

echo "== benchmark"
timeout 480 "$PY" -m benchmarks.gpu --model "$MODEL" "${train_args[@]}" --results "$RESULTS"
status=$?
echo "gpu_check finished in $(( $(date +%s) - started )) s (exit $status); section in $RESULTS"
exit $status
