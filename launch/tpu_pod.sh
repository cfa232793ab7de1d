#!/usr/bin/env bash
# A Cloud TPU pod slice with `gcloud compute tpus tpu-vm`: create it, copy and install this
# checkout on every worker, run one command on all workers at once, read the logs, delete it.
#
#   launch/tpu_pod.sh create                      # the slice (ACCELERATOR, VERSION below)
#   launch/tpu_pod.sh install                     # copy this checkout to every worker, pip install it
#   launch/tpu_pod.sh train CONFIG [--config.a.b=value ...]   # on every worker, in the background
#   launch/tpu_pod.sh logs [WORKER]               # tail the train log of a worker (default 0)
#   launch/tpu_pod.sh delete
#
# e.g. launch/tpu_pod.sh train configs/qwen25vl_3b_spatialladder.py:tpu-v5p-32
# Every worker runs the same program; jax.distributed finds the slice from the TPU metadata
# (the tpu-* config variants set distributed="auto"). Keep config.workdir, config.data.root and
# config.model.path on storage all workers see (a gs:// bucket or a mounted filestore).
#
# Environment: TPU_NAME (default ladder-jax), ZONE (default us-east5-a), PROJECT (default: gcloud's),
# ACCELERATOR (default v5p-32; e.g. v5litepod-16), VERSION (runtime; default v2-alpha-tpuv5),
# REMOTE_DIR (default ~/ladder_jax), SPOT=1 for a spot slice.
set -euo pipefail

TPU_NAME=${TPU_NAME:-ladder-jax}
ZONE=${ZONE:-us-east5-a}
ACCELERATOR=${ACCELERATOR:-v5p-32}
VERSION=${VERSION:-v2-alpha-tpuv5}
REMOTE_DIR=${REMOTE_DIR:-ladder_jax}
GCLOUD=(gcloud compute tpus tpu-vm)
LOCATION=(--zone "$ZONE" ${PROJECT:+--project "$PROJECT"})

on_all() {  # run a shell command on every worker
  "${GCLOUD[@]}" ssh "$TPU_NAME" "${LOCATION[@]}" --worker=all --command "$1"
}

case "${1:-}" in
  create)
    "${GCLOUD[@]}" create "$TPU_NAME" "${LOCATION[@]}" --accelerator-type "$ACCELERATOR" \
      --version "$VERSION" ${SPOT:+--spot}
    ;;
  install)
    tarball=$(mktemp --suffix .tar.gz)
    git ls-files -z | tar --null -czf "$tarball" -T -
    "${GCLOUD[@]}" scp "$tarball" "$TPU_NAME:ladder_jax.tar.gz" "${LOCATION[@]}" --worker=all
    rm -f "$tarball"
    on_all "mkdir -p $REMOTE_DIR && tar -xzf ladder_jax.tar.gz -C $REMOTE_DIR && \
      cd $REMOTE_DIR && pip install -q -e . 'jax[tpu]'"
    ;;
  train)
    shift
    [ $# -ge 1 ] || { echo "usage: launch/tpu_pod.sh train CONFIG [--config.a.b=value ...]" >&2; exit 2; }
    args=$(printf ' %q' "$@")
    # nohup + a log file: the run survives the ssh session; `logs` reads it.
    on_all "cd $REMOTE_DIR && nohup ladder-jax train --config$args --config.distributed=auto \
      > train.log 2>&1 < /dev/null &"
    ;;
  logs)
    "${GCLOUD[@]}" ssh "$TPU_NAME" "${LOCATION[@]}" --worker="${2:-0}" --command "tail -n 100 -f $REMOTE_DIR/train.log"
    ;;
  delete)
    "${GCLOUD[@]}" delete "$TPU_NAME" "${LOCATION[@]}" --quiet
    ;;
  *)
    sed -n '2,20p' "$0" >&2
    exit 2
    ;;
esac
