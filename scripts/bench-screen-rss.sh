#!/usr/bin/env bash
# Peak resident memory of one `osteoguard-screen screen` run, per phase (issue 19 goal 4).
#
# Samples VmRSS of the screening process every INTERVAL seconds (default 0.25) and names the
# phase from the run's own log lines on stderr ("pass 1 done", "pass 2 done", "merge done"):
# pass1, pass2, merge (k-way merge + registry + worklist writers), outputs (the worklists
# completed: xlsx packed, files synced and renamed, summary). Prints the samples, then per phase
# the largest VmRSS and the process's VmHWM at the phase's end.
#
#   scripts/bench-screen-rss.sh target/release/osteoguard-screen /tmp/x/p100k-f0 /tmp/x/out [0.25]
#
# Extra screen options: SCREEN_ARGS="--format csv,json,html" (default: as-of 2025-06-30, 2 jobs).
set -euo pipefail
bin=$1
export_dir=$2
out=$3
step=${4:-0.25}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$(date +%s.%N)
# shellcheck disable=SC2086
"$bin" screen "$export_dir" --as-of 2025-06-30 --out "$out" --jobs 2 ${SCREEN_ARGS:-} 2>"$log" &
pid=$!
printf 't_s\tphase\tvmrss_mb\tvmhwm_mb\n'
while kill -0 "$pid" 2>/dev/null; do
  if ! st=$(cat "/proc/$pid/status" 2>/dev/null); then break; fi
  rss=$(awk '/^VmRSS:/ {print $2}' <<<"$st")
  hwm=$(awk '/^VmHWM:/ {print $2}' <<<"$st")
  phase=pass1
  grep -q "pass 1 done" "$log" && phase=pass2
  grep -q "pass 2 done" "$log" && phase=merge
  grep -q "merge done" "$log" && phase=outputs
  now=$(date +%s.%N)
  [ -n "$rss" ] && printf '%.2f\t%s\t%.1f\t%.1f\n' "$(echo "$now - $start" | bc)" "$phase" \
    "$(echo "$rss / 1024" | bc -l)" "$(echo "$hwm / 1024" | bc -l)"
  sleep "$step"
done | tee /dev/stderr | awk -F'\t' 'NR > 1 {
    if ($3 > max[$2]) max[$2] = $3; hwm[$2] = $4; if (!($2 in seen)) { seen[$2] = 1; order[++n] = $2 } }
  END { print "phase\tmax VmRSS MB\tVmHWM MB at phase end"; for (i = 1; i <= n; i++) printf "%s\t%.1f\t%.1f\n", order[i], max[order[i]], hwm[order[i]] }' >"$log.sum"
wait "$pid"
grep -v "^$" "$log" | sed 's/^/screen: /' >&2 || true
cat "$log.sum"
rm -f "$log.sum"
