#!/usr/bin/env bash
# N local processes on CPU, one JAX multi-controller run (gloo collectives): for testing
# multi-host code paths on one machine.
#
#   launch/local.sh N CONFIG [--config.a.b=value ...]
#
# Environment: PORT (coordinator port; default random), DEVICES_PER_PROCESS (fake CPU devices
# per process; default 1), LOGDIR (default runs/local_logs; process_I.log each),
# LADDER_JAX (the command; default `ladder-jax`).
# Exits with the first non-zero status of any process; all processes are stopped on Ctrl-C.
set -euo pipefail

N=${1:?usage: launch/local.sh N CONFIG [--config.a.b=value ...]}
CONFIG=${2:?usage: launch/local.sh N CONFIG [--config.a.b=value ...]}
shift 2
PORT=${PORT:-$((20000 + RANDOM % 20000))}
LOGDIR=${LOGDIR:-runs/local_logs}
read -r -a CMD <<< "${LADDER_JAX:-ladder-jax}"
mkdir -p "$LOGDIR"

pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' INT TERM
for ((i = 0; i < N; i++)); do
  JAX_PLATFORMS=cpu XLA_FLAGS="--xla_force_host_platform_device_count=${DEVICES_PER_PROCESS:-1}" \
    "${CMD[@]}" train --config "$CONFIG" "$@" \
    --coordinator "127.0.0.1:$PORT" --num-processes "$N" --process-id "$i" \
    > "$LOGDIR/process_$i.log" 2>&1 &
  pids+=($!)
done

status=0
for pid in "${pids[@]}"; do
  wait "$pid" || { code=$?; [ "$status" -eq 0 ] && status=$code; }
done
echo "local.sh: $N processes finished with status $status (logs in $LOGDIR)"
exit "$status"
