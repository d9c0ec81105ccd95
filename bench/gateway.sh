#!/usr/bin/env bash
# bench/gateway.sh — what the gateway adds to a request: a fast local
# upstream (bench/gw_upstream.c) is called directly and through
# `slm gateway`, at a fixed rate (open loop: latency from the scheduled
# send time, p50/p99) and flat out (closed loop: the most requests/s).
#
#   bench/gateway.sh [RATE=1000] [SECONDS=10] [CONNS=32]
#
# Prints one JSON line per run and the added p50/p99 at RATE. The machine's
# cores are shared by the generator, the gateway and the upstream, so the
# flat-out figure is a floor for the gateway alone. The generator
# (bench/gw_load.c) is one thread with an epoll loop over CONNS keep-alive
# connections, so it takes at most one core's worth of scheduling however
# many connections it drives.
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-1000}; SECS=${2:-10}; CONNS=${3:-32}
B=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$B"' EXIT
cc -O2 -pthread -o "$B/gw_load" bench/gw_load.c
cc -O2 -pthread -o "$B/gw_upstream" bench/gw_upstream.c $(pkg-config --cflags --libs libmicrohttpd)
[ -x ./slm ] || make -s slm
UP=18181; GW=18182
"$B/gw_upstream" $UP 1 2>/dev/null &
cat > "$B/gw.yaml" <<YAML
listen: {host: 127.0.0.1, port: $GW}
tiers:
  - name: local
    kind: local
    cost_per_replica_hour: 1.0
    upstreams: [{name: u, url: 'http://127.0.0.1:$UP', health_check: false}]
routes: [{name: default, tiers: [local]}]
YAML
./slm gateway -c "$B/gw.yaml" 2>"$B/gw.log" &
for i in $(seq 50); do grep -q "listening" "$B/gw.log" 2>/dev/null && break; sleep 0.1; done
BODY='{"model":"m","messages":[{"role":"user","content":"Classify this ticket: the invoice total is wrong."}]}'
run() { "$B/gw_load" "$1" /v1/chat/completions "$BODY" "$2" "$SECS" "$3"; }
echo "# commit $(git rev-parse --short HEAD), $(nproc) cores, $SECS s per run"
d=$(run $UP "$CONNS" "$RATE");  echo "direct  rate=$RATE: $d"
g=$(run $GW "$CONNS" "$RATE");  echo "gateway rate=$RATE: $g"
dm=$(run $UP "$CONNS" 0);       echo "direct  max: $dm"
gm=$(run $GW "$CONNS" 0);       echo "gateway max: $gm"
num() { sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p" <<<"$1"; }
awk -v d50="$(num "$d" p50_ms)" -v g50="$(num "$g" p50_ms)" -v d99="$(num "$d" p99_ms)" -v g99="$(num "$g" p99_ms)" \
    -v gr="$(num "$gm" rps)" 'BEGIN { printf "added latency at %s req/s: p50 %.3f ms, p99 %.3f ms; gateway flat out: %d req/s\n", '"$RATE"', g50-d50, g99-d99, gr }'
