#!/bin/bash
# scripts/ab-rounds.sh N PHASES TARGET...: N rounds of scripts/ab-small.mjs (1,000 files), the targets in a rotating
# order each round (a run slows the next: benchmarking.md, sixth session); one JSON line per run on stdout.
# Summary: node scripts/ab-summary.mjs FILE
N=$1; PH=$2; shift 2; T=("$@")
for r in $(seq $N); do
  k=$(( (r - 1) % ${#T[@]} ))
  for i in $(seq 0 $(( ${#T[@]} - 1 ))); do
    t=${T[$(( (i + k) % ${#T[@]} ))]}
    line=$(node "$(dirname "$0")/ab-small.mjs" $t ${AB_N:-1000} $PH 2>/dev/null | tail -1)
    echo "{\"round\":$r,\"load\":\"$(cut -d' ' -f1 /proc/loadavg)\",\"run\":$line}"
  done
done
