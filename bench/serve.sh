#!/usr/bin/env bash
# bench/serve.sh MODEL.gguf
#
# Aggregate generation tokens/s and time-to-first-token p50/p99 at 1, 2, 4
# and 8 concurrent streams against `slm serve`, and against llama-server on
# the same file with the same number of slots when LLAMA_SERVER points at
# its binary. Each level sends REQS requests (default 16) of MAX_TOKENS
# (default 64) greedy tokens.
set -euo pipefail
MODEL=${1:?usage: bench/serve.sh MODEL.gguf}
SLM=${SLM:-./slm}
THREADS=${THREADS:-2}
REQS=${REQS:-16}
MAX_TOKENS=${MAX_TOKENS:-64}
LEVELS=${LEVELS:-"1 2 4 8"}
CTX=${CTX:-2048}
here=$(cd "$(dirname "$0")" && pwd)

wait_ready() { for _ in $(seq 600); do curl -sf "$1/health" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }

run_levels() { # name url
  for c in $LEVELS; do
    printf '%s\t' "$1"
    node "$here/serve_load.mjs" "$2" bench "$c" "$REQS" "$MAX_TOKENS"
  done
}

echo "model $(basename "$MODEL"), threads $THREADS, $REQS requests × $MAX_TOKENS tokens per level, slm $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
port=18431
"$SLM" serve -m "$MODEL" --port $port --parallel 8 --ctx "$CTX" -t "$THREADS" --alias bench 2>/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
wait_ready "http://127.0.0.1:$port" || { echo "slm serve did not start" >&2; exit 1; }
run_levels slm "http://127.0.0.1:$port"
kill $pid; wait $pid 2>/dev/null || true

if [ -n "${LLAMA_SERVER:-}" ]; then
  for c in $LEVELS; do
    "$LLAMA_SERVER" -m "$MODEL" --port $port -np "$c" -c $((CTX * c)) -t "$THREADS" --alias bench >/dev/null 2>&1 &
    pid=$!
    wait_ready "http://127.0.0.1:$port" || { echo "llama-server did not start" >&2; exit 1; }
    LEVELS=$c run_levels llama-server "http://127.0.0.1:$port"
    kill $pid; wait $pid 2>/dev/null || true
  done
fi
