#!/usr/bin/env bash
# bench/serve.sh MODEL.gguf
#
# Aggregate generation tokens/s and time-to-first-token p50/p99 at 1, 2, 4
# and 8 concurrent streams against `slm serve`, and against llama-server on
# the same file with the same number of slots when LLAMA_SERVER points at
# its binary. Each level sends REQS requests (default 16) of MAX_TOKENS
# (default 64) greedy tokens. ROUNDS (default 1) repeats each level, the
# two servers alternating; the ratio per round and its median are printed.
set -euo pipefail
MODEL=${1:?usage: bench/serve.sh MODEL.gguf}
SLM=${SLM:-./slm}
THREADS=${THREADS:-2}
REQS=${REQS:-16}
MAX_TOKENS=${MAX_TOKENS:-64}
LEVELS=${LEVELS:-"1 2 4 8"}
CTX=${CTX:-2048}
ROUNDS=${ROUNDS:-1}
here=$(cd "$(dirname "$0")" && pwd)

wait_ready() { for _ in $(seq 600); do curl -sf "$1/health" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }

# Prints the level's JSON line (stderr) and its aggregate tokens/s (stdout).
run_one() { # name url concurrency
  local out
  out=$(node "$here/serve_load.mjs" "$2" bench "$3" "$REQS" "$MAX_TOKENS")
  printf '%s\t%s\n' "$1" "$out" >&2
  sed -n 's/.*"tokens_per_s":\([0-9.]*\).*/\1/p' <<<"$out"
}

echo "model $(basename "$MODEL"), threads $THREADS, $REQS requests × $MAX_TOKENS tokens per level, $ROUNDS round(s), slm $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
port=18431; lport=18432
"$SLM" serve -m "$MODEL" --port $port --parallel 8 --ctx "$CTX" -t "$THREADS" --alias bench 2>/dev/null &
pid=$!; lpid=
trap 'kill $pid $lpid 2>/dev/null || true' EXIT
wait_ready "http://127.0.0.1:$port" || { echo "slm serve did not start" >&2; exit 1; }

# Per level, llama-server (when given) runs with that many slots beside the
# idle slm server, and the two are measured alternately, round by round, so
# that both see the same minutes of this shared machine.
for c in $LEVELS; do
  if [ -n "${LLAMA_SERVER:-}" ]; then
    "$LLAMA_SERVER" -m "$MODEL" --port $lport -np "$c" -c $((CTX * c)) -t "$THREADS" --alias bench >/dev/null 2>&1 &
    lpid=$!
    wait_ready "http://127.0.0.1:$lport" || { echo "llama-server did not start" >&2; exit 1; }
  fi
  ratios=()
  for r in $(seq "$ROUNDS"); do
    s=$(run_one slm "http://127.0.0.1:$port" "$c")
    if [ -n "$lpid" ]; then
      l=$(run_one llama-server "http://127.0.0.1:$lport" "$c")
      ratios+=("$(awk -v a="$s" -v b="$l" 'BEGIN { printf "%.2f", a / b }')")
    fi
  done
  if [ -n "$lpid" ]; then
    kill $lpid; wait $lpid 2>/dev/null || true; lpid=
    echo "streams $c: aggregate t/s ratio slm/llama-server per round: ${ratios[*]} (median $(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'))"
  fi
done
