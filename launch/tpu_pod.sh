#!/usr/bin/env bash
# A Cloud TPU pod slice with `gcloud compute tpus tpu-vm`: create it, install this checkout into a
# Python >= 3.11 environment on every worker, run the curriculum on all workers at once, read any
# worker's log, stop the run (it saves first), delete the slice.
#
#   launch/tpu_pod.sh create                  # the slice (ACCELERATOR; runtime VERSION follows it)
#   launch/tpu_pod.sh install                 # every worker: copy this checkout, make $VENV, pip install .[tpu]
#   launch/tpu_pod.sh import HF_DIR CKPT_DIR  # worker 0, on its CPU: ladder-jax import-hf (see below)
#   launch/tpu_pod.sh train CONFIG [--config.a.b=value ...]   # every worker, in the background
#   launch/tpu_pod.sh logs [WORKER|all]       # follow a worker's train.log (default 0); all: last lines of each
#   launch/tpu_pod.sh stop                    # SIGTERM on every worker: the run saves, then exits (rerun `train` to resume)
#   launch/tpu_pod.sh delete
#
# e.g. ACCELERATOR=v5litepod-16 launch/tpu_pod.sh create && launch/tpu_pod.sh install &&
#      launch/tpu_pod.sh train configs/qwen25vl_3b_spatialladder.py:tpu-v5e-16
#
# Stock TPU VM images ship Python 3.10; `install` makes a Python $PYTHON_VERSION virtual environment
# ($VENV) on every worker with uv (installed with the image's pip; uv fetches that Python) and runs
# everything as `$VENV/bin/python -m ladder_jax.cli ...`: nothing relies on PATH over ssh.
# Every worker runs the same program; jax.distributed finds the slice from the TPU metadata (the
# tpu-* config variants set distributed="auto"). Keep config.workdir, config.data.root and
# config.model.path on storage all workers see (a gs:// bucket or a mounted filestore).
#
# The model import step: a Hugging Face Qwen2.5-VL folder becomes an Orbax checkpoint once, before
# training, on one machine; the pod then reads it with --config.model.init=params
# --config.model.path=CKPT_DIR. `import` runs `ladder-jax import-hf` on worker 0 with
# JAX_PLATFORMS=cpu (a single-host job: the TPU runtime of a multi-host slice waits for every worker;
# a worker's host memory holds a 7B model in fp32 twice over). HF_DIR must be on worker 0 (e.g.
# fetched there with `huggingface-cli download`) or on shared storage; write CKPT_DIR to storage all
# workers see. The same works on any CPU machine: `JAX_PLATFORMS=cpu ladder-jax import-hf HF_DIR CKPT_DIR`.
# Alternatively --config.model.init=hf --config.model.path=HF_DIR reads the HF folder directly on
# every worker at the start of each run.
#
# Environment: TPU_NAME (default ladder-jax), ZONE (default us-east5-a), PROJECT (default: gcloud's),
# ACCELERATOR (default v5p-32; e.g. v5litepod-16, v6e-16, v4-32), VERSION (runtime image; default:
# the one for ACCELERATOR), REMOTE_DIR (default ladder_jax, in the worker's home), VENV (default
# .venv-ladder-jax), PYTHON_VERSION (default 3.11), SPOT=1 for a spot slice.
set -euo pipefail

TPU_NAME=${TPU_NAME:-ladder-jax}
ZONE=${ZONE:-us-east5-a}
ACCELERATOR=${ACCELERATOR:-v5p-32}
REMOTE_DIR=${REMOTE_DIR:-ladder_jax}
VENV=${VENV:-.venv-ladder-jax}
PYTHON_VERSION=${PYTHON_VERSION:-3.11}
GCLOUD=(gcloud compute tpus tpu-vm)
LOCATION=(--zone "$ZONE" ${PROJECT:+--project "$PROJECT"})
PY="\$HOME/$VENV/bin/python"  # expanded on the worker

runtime_for() {  # the TPU VM runtime image of an accelerator type
  case "$1" in
    v5litepod-* | v5e-*) echo v2-alpha-tpuv5-lite ;;
    v5p-*) echo v2-alpha-tpuv5 ;;
    v6e-*) echo v2-alpha-tpuv6e ;;
    v4-* | v3-* | v2-*) echo tpu-ubuntu2204-base ;;
    *) echo "launch/tpu_pod.sh: no known runtime for ACCELERATOR=$1; set VERSION" >&2; return 1 ;;
  esac
}

on() {  # on WORKER (a number or all) run a shell command
  "${GCLOUD[@]}" ssh "$TPU_NAME" "${LOCATION[@]}" --worker="$1" --command "$2"
}

case "${1:-}" in
  create)
    VERSION=${VERSION:-$(runtime_for "$ACCELERATOR")}
    "${GCLOUD[@]}" create "$TPU_NAME" "${LOCATION[@]}" --accelerator-type "$ACCELERATOR" \
      --version "$VERSION" ${SPOT:+--spot}
    ;;
  install)
    tarball=$(mktemp --suffix .tar.gz)
    git ls-files -z | tar --null -czf "$tarball" -T -
    "${GCLOUD[@]}" scp "$tarball" "$TPU_NAME:ladder_jax.tar.gz" "${LOCATION[@]}" --worker=all
    rm -f "$tarball"
    on all "set -e; mkdir -p $REMOTE_DIR && tar -xzf ladder_jax.tar.gz -C $REMOTE_DIR
      export PATH=\$HOME/.local/bin:\$PATH
      command -v uv > /dev/null || python3 -m pip install --user -q uv
      uv venv --allow-existing --python $PYTHON_VERSION \$HOME/$VENV
      cd $REMOTE_DIR && uv pip install -q --python $PY -e '.[tpu]'
      $PY -c 'import sys, jax, ladder_jax; print(sys.version.split()[0], jax.__version__, jax.local_device_count(), \"local TPU devices\")'"
    ;;
  import)
    [ $# -eq 3 ] || { echo "usage: launch/tpu_pod.sh import HF_DIR CKPT_DIR" >&2; exit 2; }
    on 0 "cd $REMOTE_DIR && JAX_PLATFORMS=cpu $PY -m ladder_jax.cli import-hf $(printf '%q %q' "$2" "$3")"
    ;;
  train)
    shift
    [ $# -ge 1 ] || { echo "usage: launch/tpu_pod.sh train CONFIG [--config.a.b=value ...]" >&2; exit 2; }
    args=$(printf ' %q' "$@")
    # nohup + a log file: the run survives the ssh session; `logs` reads it, `stop` signals its pid.
    on all "cd $REMOTE_DIR && { nohup $PY -m ladder_jax.cli train --config$args --config.distributed=auto \
      > train.log 2>&1 < /dev/null & echo \$! > train.pid; }"
    ;;
  logs)
    if [ "${2:-0}" = all ]; then
      on all "echo \"== \$(hostname)\"; tail -n 20 $REMOTE_DIR/train.log"
    else
      on "${2:-0}" "tail -n 100 -f $REMOTE_DIR/train.log"
    fi
    ;;
  stop)
    # SIGTERM is the preemption notice: every worker saves at the same step boundary and exits.
    on all "cd $REMOTE_DIR && if [ -f train.pid ] && kill -0 \$(cat train.pid) 2> /dev/null; then \
      kill -TERM \$(cat train.pid) && echo \"\$(hostname): stopping (saves first)\"; \
      else echo \"\$(hostname): no run\"; fi"
    ;;
  delete)
    "${GCLOUD[@]}" delete "$TPU_NAME" "${LOCATION[@]}" --quiet
    ;;
  *)
    sed -n '2,37p' "$0" >&2
    exit 2
    ;;
esac
