#!/usr/bin/env bash
# bench/compare.sh MODEL.gguf [MODEL.gguf ...]
#
# Measures slm against llama.cpp on the same GGUF files, alternating the two
# programs round by round so that both see the same machine state, and prints
# each round's tokens/s and the ratio slm/llama.cpp (median over rounds).
#
# Environment:
#   LLAMA_BENCH  path to llama.cpp's llama-bench (required for the comparison;
#                without it only slm is measured)
#   SLM          slm binary (default ./slm)
#   THREADS      threads for both (default 2)
#   PP, TG       prompt and generation lengths (default 512 and 128)
#   ROUNDS       alternating rounds (default 3)
set -euo pipefail
SLM=${SLM:-./slm}
THREADS=${THREADS:-2}
PP=${PP:-512}
TG=${TG:-128}
ROUNDS=${ROUNDS:-3}
[ $# -ge 1 ] || { echo "usage: $0 MODEL.gguf [MODEL.gguf ...]" >&2; exit 2; }

slm_tps() { # model test(pp|tg) -> tokens/s
  local p=0 n=0
  if [ "$2" = pp ]; then p=$PP; else n=$TG; fi
  "$SLM" bench -m "$1" -p "$p" -n "$n" -t "$THREADS" -r 1 --json |
    sed -n 's/.*"tps":\([0-9.]*\).*/\1/p'
}

llama_tps() { # model test -> tokens/s (llama-bench csv: avg_ts column)
  local p=0 n=0
  if [ "$2" = pp ]; then p=$PP; else n=$TG; fi
  "$LLAMA_BENCH" -m "$1" -t "$THREADS" -p "$p" -n "$n" -r 1 -o csv 2>/dev/null |
    awk -F, 'NR==1{for(i=1;i<=NF;i++){gsub(/"/,"",$i); if($i=="avg_ts") c=i}} NR==2{gsub(/"/,"",$c); print $c}'
}

median() { sort -g | awk '{a[NR]=$1} END{if(NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

printf "machine: %s, %s cores; slm %s; threads %s; pp%s tg%s; %s rounds\n" \
  "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" "$(nproc)" \
  "$(git rev-parse --short HEAD 2>/dev/null || echo '?')" "$THREADS" "$PP" "$TG" "$ROUNDS"
echo
echo "| model | test | slm t/s (rounds) | llama.cpp t/s (rounds) | ratio (median) |"
echo "| --- | --- | --- | --- | ---: |"
for model in "$@"; do
  for test in pp tg; do
    s_all=() l_all=() r_all=()
    for r in $(seq "$ROUNDS"); do
      s=$(slm_tps "$model" "$test")
      s_all+=("$s")
      if [ -n "${LLAMA_BENCH:-}" ]; then
        l=$(llama_tps "$model" "$test")
        l_all+=("$l")
        r_all+=("$(awk -v a="$s" -v b="$l" 'BEGIN{printf "%.3f", a/b}')")
      fi
    done
    if [ -n "${LLAMA_BENCH:-}" ]; then
      ratio=$(printf "%s\n" "${r_all[@]}" | median)
      echo "| $(basename "$model") | $test$([ $test = pp ] && echo $PP || echo $TG) | ${s_all[*]} | ${l_all[*]} | $ratio |"
    else
      echo "| $(basename "$model") | $test$([ $test = pp ] && echo $PP || echo $TG) | ${s_all[*]} | - | - |"
    fi
  done
done
