#!/usr/bin/env bash
# One prepared device check (issue 11): the environment, synthetic data, training and tiled-inference
# throughput of both detectors (ResNet-50, fp32 and AMP), one params/synth experiment through
# papermill, and the merge's worst case, in at most 8 minutes on a CUDA machine without the network.
#
#   bash benchmarks/gpu_check.sh OUT_DIR [--smoke]
#
# Writes OUT_DIR/gpu_check.json (every step's record; per step also OUT_DIR/steps/, raw benchmark
# JSON in OUT_DIR/raw/, logs in OUT_DIR/logs/, the executed notebook OUT_DIR/exp.ipynb) and the whole
# log, OUT_DIR/gpu_check.log. The bulky files (synthetic data, the run folder with its checkpoints)
# go to a work folder outside OUT_DIR, so that OUT_DIR stays small enough to copy back. Each step runs
# under its own time limit, cut to what is left of the budget, and is independent: a failed or
# timed-out step is recorded with its error and the check goes on. The exit status says that the
# check ran to the end; the JSON says which steps passed. benchmarks/gpu_results_to_markdown.py
# turns the JSON into the RESULTS.md section afterwards, off the device.
#
# --smoke: the same steps on the CPU at tiny sizes, in under 2 minutes (tests/test_gpu_check.py).
# Environment: PYTHON (default python3), GPU_CHECK_BUDGET_S (default 450 s; 240 s with --smoke),
# GPU_CHECK_WORK (the work folder; default a new one under ${TMPDIR:-/tmp}, kept afterwards).
set -uo pipefail

if [[ $# -lt 1 || $# -gt 2 || ( $# -eq 2 && $2 != --smoke ) ]]; then
    echo "usage: bash benchmarks/gpu_check.sh OUT_DIR [--smoke]" >&2
    exit 2
fi
OUT=$(mkdir -p "$1" && cd "$1" && pwd) || exit 2
SMOKE=${2:-}
if [[ -z ${GPU_CHECK_LOGGING:-} ]]; then  # run again under tee: the log keeps everything, in order
    GPU_CHECK_LOGGING=1 bash "$0" "$@" 2>&1 | tee "$OUT/gpu_check.log"
    exit "${PIPESTATUS[0]}"
fi

REPO=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
CHECK=("$PYTHON" "$REPO/benchmarks/gpu_check.py")
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if [[ -n $SMOKE ]]; then
    BUDGET=${GPU_CHECK_BUDGET_S:-240}
    export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # a shared CPU: more threads only spin-wait
else
    BUDGET=${GPU_CHECK_BUDGET_S:-450}             # + collecting and the kill grace: under 8 minutes
fi
STARTED=$(date -u +%Y-%m-%dT%H:%M:%S+00:00)
WORK=${GPU_CHECK_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/gpu_check_work.XXXXXX")}
mkdir -p "$WORK" || exit 2
rm -rf "$OUT/steps" "$OUT/raw" "$OUT/logs"     # never read a previous check's records as this one's
mkdir -p "$OUT/logs"
cd "$REPO" || exit 2
echo "gpu_check: $OUT (work folder $WORK), ${SMOKE:-gpu} mode, budget $BUDGET s, $("$PYTHON" --version 2>&1)"

# step NAME LIMIT_S COMMAND...: run COMMAND under min(LIMIT_S, the budget left), log it, and let
# gpu_check.py finish its record (wall time; a crash or a timeout that left none).
step() {
    local name=$1 cap=$2
    shift 2
    local left=$((BUDGET - SECONDS))
    local limit=$((cap < left ? cap : left))
    if ((limit < 10)); then
        echo "=== $name: not started, $left s left of the budget"
        "${CHECK[@]}" finish "$OUT" "$name" --no-time --limit "$left"
        return
    fi
    echo "=== $name: limit $limit s ($(date -u +%H:%M:%S) UTC, $SECONDS s into the check)"
    local start=$SECONDS
    timeout -k 10 "$limit" "$@" 2>&1 | tee "$OUT/logs/$name.log"
    local code=${PIPESTATUS[0]}
    "${CHECK[@]}" finish "$OUT" "$name" --exit-code "$code" --seconds $((SECONDS - start)) --limit "$limit"
}

step env 60 "${CHECK[@]}" env "$OUT" $SMOKE
step data 120 "${CHECK[@]}" data "$OUT" --work "$WORK" $SMOKE
step train_fp32 120 "${CHECK[@]}" train "$OUT" --precision fp32 $SMOKE
step train_amp 120 "${CHECK[@]}" train "$OUT" --precision amp $SMOKE
step infer_fp32 60 "${CHECK[@]}" infer "$OUT" --precision fp32 $SMOKE
step infer_amp 60 "${CHECK[@]}" infer "$OUT" --precision amp $SMOKE
step experiment 300 "${CHECK[@]}" experiment "$OUT" --work "$WORK" $SMOKE
step infer_saturated 120 "${CHECK[@]}" infer "$OUT" --scores saturated $SMOKE
"${CHECK[@]}" collect "$OUT" --started "$STARTED" --budget "$BUDGET" $SMOKE || exit 1
echo "gpu_check: done in $SECONDS s; $OUT/gpu_check.json"
echo "RESULTS.md section: $PYTHON benchmarks/gpu_results_to_markdown.py $OUT [--append benchmarks/RESULTS.md]"
