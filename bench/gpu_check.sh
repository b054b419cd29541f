#!/usr/bin/env bash
# The GPU check of bench/gpu_check.py (read its docstring), prepared here, run there.
#
#   bash bench/gpu_check.sh wheels    # here (PyPI reachable): the cp312 wheels the GPU image
#                                     # lacks (biopython, sae_lens and its needs) -> .whl/
#   bash bench/gpu_check.sh run       # on the GPU machine, in one device call with
#                                     # carry [".whl"] and timeout_s 560: installs .whl/ into
#                                     # /tmp/site, runs the check (at most 450 s), writes
#                                     # $OUT/gpu.json, $OUT/gpu.log, $OUT/gpu-model/
#   bash bench/gpu_check.sh dry-run   # here: the same code paths on the CPU (< 1 min idle)
#
# Extra arguments go to gpu_check.py (e.g. run --sections parity,mfu --mfu-compile).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}
shift || true

# Versions as in this repository's .venv, where they work together; --no-deps, so every
# package the GPU image lacks is named (the image: .library/device/KINDS.md).
WHEELS=(
  biopython==1.88
  sae-lens==6.54.12 transformer-lens==3.9.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19
  better-abc==0.0.3 simple-parsing==0.1.9 docstring-parser==0.18.0
  wandb==0.31.0 pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0
  typing-inspection==0.4.5 platformdirs==4.14.9 sniffio==1.3.1 googleapis-common-protos==1.76.0
  opentelemetry-api==1.45.2 opentelemetry-sdk==1.45.2 opentelemetry-proto==1.45.2
  opentelemetry-exporter-otlp-proto-http==1.45.2 opentelemetry-exporter-otlp-proto-common==1.45.2
  opentelemetry-semantic-conventions==0.66b2 opentelemetry-exporter-http-transport==0.66b2
  opentelemetry-exporter-otlp-common==0.66b2
)

case "$mode" in
  wheels)
    PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
    exclude=$(git rev-parse --git-path info/exclude)
    grep -qx '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >> "$exclude"
    mkdir -p .whl
    platforms=()
    for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 \
             manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
      platforms+=(--platform "$p")
    done
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
      --implementation cp "${platforms[@]}" -d .whl "${WHEELS[@]}"
    du -sh .whl
    ;;
  run)
    PY=${PYTHON:-python3}
    OUT=${OUT:-runs/gpu-check}
    mkdir -p "$OUT"
    if compgen -G ".whl/*.whl" > /dev/null; then
      t=$SECONDS
      "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl
      export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
      echo "installed $(ls .whl/*.whl | wc -l) wheels into /tmp/site in $((SECONDS - t)) s"
    else
      echo "no .whl/ here: sae_lens and biopython only if the image has them"
    fi
    export PYTHONUNBUFFERED=1
    set -o pipefail
    timeout -k 10 "${GPU_CHECK_TIMEOUT:-450}" "$PY" bench/gpu_check.py --out "$OUT/gpu.json" \
      --model-out "$OUT/gpu-model" "$@" 2>&1 | tee "$OUT/gpu.log"
    ;;
  dry-run)
    PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
    exec "$PY" bench/gpu_check.py --dry-run "$@"
    ;;
  *)
    sed -n '2,13p' "$0"
    exit 2
    ;;
esac
