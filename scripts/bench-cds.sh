#!/usr/bin/env bash
# CDS Hooks service under load (issue 19, goals 1 and 4), loopback only, with `wrk`:
#   * static     GET  /bench/static: the seed patient-view's response bytes, served as static JSON
#                by the same server (the floor of HTTP + these bytes);
#   * pv         POST /cds-services/osteoguard-patient-view with the seed case as complete prefetch
#                (32.8 kB, as-of 2023-06-15), --insecure-dev;
#   * pv-jwt     the same request with an ES384 JWT verified per request (a fresh jti each: the
#                replay cache is written per call; the JWKS is a configured file, cached);
#   * cql-peer   `node ../shared/bench/cql-peer/service.js` (CQL engine, one rule) on the same
#                request bytes;
# each CONN connections, THREADS wrk threads, SECS seconds after a 2 s warm-up, ROUNDS rounds in
# alternating order. Per run: throughput, p50/p99 latency, and the server process's CPU time per
# request (utime + stime from /proc/<pid>/stat, divided by the requests wrk completed). Then
# SUSTAIN seconds of pv with VmRSS sampled every second (goal 4: RSS flat), and with PROFILE=1 a
# `perf record` of the server during a pv run.
#
# Closed loop (wrk): CONN connections each send the next request when the last is answered, so at
# 64 connections the latency is mostly queueing (p50 ≈ CONN ÷ throughput) and "p99 ÷ static" is
# a throughput ratio. Fixed rate (open loop, `oha -q RATE --latency-correction`): requests are
# sent on a schedule at FIXED (space-separated fractions, default "0.5 0.8") of pv's median
# closed-loop throughput, the same rate for static and pv, CONN connections, FIXED_SECS seconds
# each; latency counts from each request's scheduled send time (coordinated omission
# corrected), so a slow answer delays no measurement. Below capacity this is the service's own
# latency: the reading of "p99 ≤ 2× the static echo" that measures the service, not the queue.
# Needs oha (OHA=/path/to/oha, or on the PATH: `cargo install oha --locked --root DIR`);
# without it the fixed-rate part is skipped with a note.
#
#   scripts/bench-cds.sh                 # builds target/profiling/osteoguard-cds-bench first
#   ROUNDS=5 SECS=10 CONN=64 SUSTAIN=60 PROFILE=1 scripts/bench-cds.sh
#   BIN=/path/to/other/osteoguard-cds-bench scripts/bench-cds.sh   # e.g. a build of the previous code
#   COMPARE="before=/tmp/b/osteoguard-cds-bench" scripts/bench-cds.sh
#       # each NAME=PATH of COMPARE (space-separated) is one more unsigned service, measured as
#       # `pv-NAME` in every round beside `pv`: before/after (or allocator A/B) in one run, with
#       # SUSTAIN seconds of RSS for each as well
#
# Needs: wrk (apt-get install wrk), node + npm (the peer's locked packages are installed with
# `npm ci` into a copy under $OUT: ../shared is read-only). Output and data go to $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
SECS=${SECS:-10}
CONN=${CONN:-64}
THREADS=${THREADS:-2}
SUSTAIN=${SUSTAIN:-60}
PROFILE=${PROFILE:-0}
OUT=${OUT:-/tmp/cds/bench}
PEER_SRC=${PEER_SRC:-../shared/bench/cql-peer}
TOKENS=${TOKENS:-60000}
PORT_PV=${PORT_PV:-18097}
PORT_JWT=${PORT_JWT:-18098}
PORT_PEER=${PORT_PEER:-18099}
PORT_COMPARE=${PORT_COMPARE:-18110}
COMPARE=${COMPARE:-}
FIXED=${FIXED:-0.5 0.8}
FIXED_SECS=${FIXED_SECS:-10}
OHA=${OHA:-$(command -v oha || true)}
TCK=$(getconf CLK_TCK)

command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 2; }
if [ -z "${BIN:-}" ]; then
  cargo build --profile profiling -p osteoguard-server --bin osteoguard-cds-bench
  BIN=target/profiling/osteoguard-cds-bench
fi
mkdir -p "$OUT"
: >"$OUT/closed.txt"
if [ ! -d "$OUT/cql-peer/node_modules" ]; then
  rm -rf "$OUT/cql-peer"
  cp -r "$PEER_SRC" "$OUT/cql-peer"
  (cd "$OUT/cql-peer" && npm ci --no-audit --no-fund >/dev/null)
fi

# --- wrk scripts --------------------------------------------------------------------------------
cat >"$OUT/report.lua" <<'EOF'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT requests=%d secs=%.3f rps=%.1f p50_ms=%.3f p99_ms=%.3f non2xx=%d sockerr=%d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, e.status,
    e.connect + e.read + e.write + e.timeout))
end
EOF
cat >"$OUT/post.lua" <<'EOF'
local f = assert(io.open(os.getenv("BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
EOF
cat "$OUT/report.lua" >>"$OUT/post.lua"
# One token per request, each thread its own share of the file (a jti is accepted once).
cat >"$OUT/post-jwt.lua" <<'EOF'
local counter = 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end
function init(args)
  local f = assert(io.open(os.getenv("BODY"), "rb"))
  body = f:read("*a")
  f:close()
  tokens = {}
  -- Skip the tokens earlier runs sent (TOKEN_OFFSET lines), then take this thread's share.
  local n, skip, i = tonumber(os.getenv("THREADS")), tonumber(os.getenv("TOKEN_OFFSET") or "0"), 0
  for line in io.lines(os.getenv("TOKENS_FILE")) do
    if i >= skip and (i - skip) % n == tid then tokens[#tokens + 1] = line end
    i = i + 1
  end
  next_token = 0
end
function request()
  next_token = next_token % #tokens + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. tokens[next_token]}, body)
end
EOF
cat "$OUT/report.lua" >>"$OUT/post-jwt.lua"

# --- processes ----------------------------------------------------------------------------------
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -INT "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

start_service() { # dir port [--secure | --bin PATH]
  local dir=$1 port=$2 bin=$BIN; shift 2
  if [ "${1:-}" = --bin ]; then bin=$2; shift 2; fi
  rm -rf "$dir"; mkdir -p "$dir"
  "$bin" --serve "$dir" --port "$port" --tokens "$TOKENS" "$@" >"$dir/log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 600); do [ -f "$dir/ready" ] && return 0; sleep 0.5; done
  echo "service in $dir did not start" >&2; cat "$dir/log" >&2; exit 1
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# Tokens already sent (each is accepted once): every wrk run starts after them, with a margin
# for the requests in flight when a run stops.
TOKEN_OFFSET=0
count() { sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$1"; }
# run NAME PID URL LUA [env...]: warm-up, then SECS seconds; one line of results.
run() {
  local name=$1 pid=$2 url=$3 lua=$4; shift 4
  local w t0 r t1 n
  w=$(env "$@" THREADS="$THREADS" TOKEN_OFFSET="$TOKEN_OFFSET" wrk -t"$THREADS" -c"$CONN" -d2s -s "$lua" "$url" | grep '^RESULT')
  [[ "$*" == *TOKENS_FILE* ]] && TOKEN_OFFSET=$((TOKEN_OFFSET + $(count "$w") + 4 * CONN))
  t0=$(ticks "$pid")
  r=$(env "$@" THREADS="$THREADS" TOKEN_OFFSET="$TOKEN_OFFSET" wrk -t"$THREADS" -c"$CONN" -d"${SECS}s" -s "$lua" "$url" | grep '^RESULT')
  t1=$(ticks "$pid")
  n=$(count "$r")
  [[ "$*" == *TOKENS_FILE* ]] && TOKEN_OFFSET=$((TOKEN_OFFSET + n + 4 * CONN))
  awk -v name="$name" -v r="$r" -v d=$((t1 - t0)) -v n="$n" -v tck="$TCK" -v load="$(cut -d' ' -f1 /proc/loadavg)" \
    'BEGIN { printf "%-9s %s cpu_ms_per_req=%.3f load1=%s\n", name, substr(r, 8), (n > 0 ? d * 1000 / tck / n : 0), load }' |
    tee -a "$OUT/closed.txt"
}

# fixed NAME PID URL RATE [oha args...]: FIXED_SECS seconds at RATE requests/s (open loop, latency
# from the scheduled send time); one line: achieved rate, p50/p99/p99.9, errors, CPU per request.
fixed() {
  local name=$1 pid=$2 url=$3 rate=$4; shift 4
  local t0 t1
  t0=$(ticks "$pid")
  "$OHA" --no-tui --output-format json -z "${FIXED_SECS}s" -c "$CONN" -q "$rate" --latency-correction \
    "$@" "$url" >"$OUT/fixed-$name-$rate.json" 2>"$OUT/fixed-$name-$rate.err" || true
  t1=$(ticks "$pid")
  python3 - "$OUT/fixed-$name-$rate.json" "$name" "$rate" $((t1 - t0)) "$TCK" "$(cut -d' ' -f1 /proc/loadavg)" <<'PY'
import json, sys
path, name, rate, ticks, tck, load = sys.argv[1:]
try:
    d = json.load(open(path))
except Exception as e:
    print(f"{name:<9} rate={rate} (no result: {e})"); sys.exit(0)
s, p = d["summary"], d["latencyPercentiles"]
ok = sum(v for k, v in d.get("statusCodeDistribution", {}).items() if k.startswith("2"))
err = sum(d.get("errorDistribution", {}).values())
ms = lambda k: (p.get(k) or 0) * 1000
cpu = int(ticks) * 1000 / int(tck) / ok if ok else 0
print(f"{name:<9} offered={rate} achieved_rps={s['requestsPerSec']:.1f} ok={ok} errors={err} "
      f"p50_ms={ms('p50'):.3f} p99_ms={ms('p99'):.3f} p99.9_ms={ms('p99.9'):.3f} "
      f"cpu_ms_per_req={cpu:.3f} load1={load}")
PY
}

start_service "$OUT/pv" "$PORT_PV"
start_service "$OUT/jwt" "$PORT_JWT" --secure
node "$OUT/cql-peer/service.js" "$PORT_PEER" >"$OUT/peer.log" 2>&1 &
PEER_PID=$!
PIDS+=($PEER_PID)
sleep 2
PV_PID=$(cat "$OUT/pv/pid")
JWT_PID=$(cat "$OUT/jwt/pid")
BODY=$OUT/pv/request.json
# The services to compare with `pv` (other builds): name, pid and port of each.
CMP_NAMES=()
declare -A CMP_PID CMP_PORT
port=$PORT_COMPARE
for spec in $COMPARE; do
  name=${spec%%=*}
  start_service "$OUT/cmp-$name" "$port" --bin "${spec#*=}"
  CMP_NAMES+=("$name")
  CMP_PID[$name]=$(cat "$OUT/cmp-$name/pid")
  CMP_PORT[$name]=$port
  # The same bytes but for the report links (port and random token).
  mask() { sed -E 's#http://127\.0\.0\.1:[0-9]+/reports/[0-9a-f]{64}#LINK#g' "$1"; }
  [ "$(mask "$OUT/cmp-$name/response.json")" = "$(mask "$OUT/pv/response.json")" ] ||
    echo "# WARNING: pv-$name answers other bytes than pv" >&2
  port=$((port + 1))
done
echo "# $(date -u +%FT%TZ) $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), binary $BIN${COMPARE:+, compared: $COMPARE}"
echo "# request $(stat -c %s "$BODY") bytes, response $(stat -c %s "$OUT/pv/response.json") bytes; $CONN connections, $THREADS wrk threads, ${SECS}s per run"
for round in $(seq 1 "$ROUNDS"); do
  echo "## round $round"
  order="static pv ${CMP_NAMES[*]/#/pv-} pv-jwt cql-peer"
  [ $((round % 2)) -eq 0 ] && order=$(tr ' ' '\n' <<<"$order" | grep . | tac | tr '\n' ' ')
  for e in $order; do
    case $e in
      pv-jwt) ;;
      pv-*) n=${e#pv-}
        run "$e" "${CMP_PID[$n]}" "http://127.0.0.1:${CMP_PORT[$n]}/cds-services/osteoguard-patient-view" \
          "$OUT/post.lua" BODY="$BODY"
        continue ;;
    esac
    case $e in
      static) run static "$PV_PID" "http://127.0.0.1:$PORT_PV/bench/static" "$OUT/report.lua" ;;
      pv) run pv "$PV_PID" "http://127.0.0.1:$PORT_PV/cds-services/osteoguard-patient-view" "$OUT/post.lua" BODY="$BODY" ;;
      pv-jwt) run pv-jwt "$JWT_PID" "http://127.0.0.1:$PORT_JWT/cds-services/osteoguard-patient-view" "$OUT/post-jwt.lua" \
        BODY="$BODY" TOKENS_FILE="$OUT/jwt/tokens.txt" ;;
      cql-peer) run cql-peer "$PEER_PID" "http://127.0.0.1:$PORT_PEER/cds-services/denosumab" "$OUT/post.lua" BODY="$BODY" ;;
    esac
  done
done

# Fixed offered rate (open loop): static and pv at the same rates, fractions of pv's median
# closed-loop throughput of the rounds above.
if [ -n "$OHA" ] && [ -x "$OHA" ]; then
  PV_RPS=$(awk '$1 == "pv" { for (i = 2; i <= NF; i++) if ($i ~ /^rps=/) print substr($i, 5) }' "$OUT/closed.txt" |
    sort -n | awk '{ v[NR] = $1 } END { print (NR ? v[int((NR + 1) / 2)] : 0) }')
  echo "## fixed rate (oha, open loop, latency from the scheduled send time): fractions $FIXED of pv's median closed-loop $PV_RPS req/s, ${FIXED_SECS}s each, $CONN connections"
  for f in $FIXED; do
    rate=$(awk -v r="$PV_RPS" -v f="$f" 'BEGIN { printf "%d", r * f }')
    [ "$rate" -gt 0 ] || continue
    fixed static "$PV_PID" "http://127.0.0.1:$PORT_PV/bench/static" "$rate"
    fixed pv "$PV_PID" "http://127.0.0.1:$PORT_PV/cds-services/osteoguard-patient-view" "$rate" \
      -m POST -H "Content-Type: application/json" -D "$BODY"
    for n in "${CMP_NAMES[@]}"; do
      fixed "pv-$n" "${CMP_PID[$n]}" "http://127.0.0.1:${CMP_PORT[$n]}/cds-services/osteoguard-patient-view" "$rate" \
        -m POST -H "Content-Type: application/json" -D "$BODY"
    done
  done
else
  echo "## fixed rate skipped: no oha (OHA=/path/to/oha; cargo install oha --locked --root DIR)"
fi

if [ "$PROFILE" = 1 ] && command -v perf >/dev/null; then
  env BODY="$BODY" wrk -t"$THREADS" -c"$CONN" -d"$((SECS + 2))s" -s "$OUT/post.lua" \
    "http://127.0.0.1:$PORT_PV/cds-services/osteoguard-patient-view" >/dev/null &
  sleep 1
  perf record -F 999 -g -p "$PV_PID" -o "$OUT/perf.data" -- sleep "$SECS" 2>/dev/null >/dev/null
  wait $! 2>/dev/null || true
  perf report -i "$OUT/perf.data" --stdio --no-children --sort symbol --percent-limit 1 2>/dev/null \
    | grep -E '^ +[0-9]' | head -40 >"$OUT/profile.txt" || true
  echo "## profile (self time, top symbols): $OUT/profile.txt"
  cat "$OUT/profile.txt"
fi

# Goal 4: RSS of the service over SUSTAIN seconds of patient-view load.
sustain() { # name pid port
  local name=$1 pid=$2 port=$3 wrk_pid rss_before
  echo "## RSS of $name over ${SUSTAIN}s of patient-view at $CONN connections (VmRSS kB, one sample a second)"
  env BODY="$BODY" wrk -t"$THREADS" -c"$CONN" -d"${SUSTAIN}s" -s "$OUT/post.lua" \
    "http://127.0.0.1:$port/cds-services/osteoguard-patient-view" >"$OUT/sustain-$name.txt" &
  wrk_pid=$!
  : >"$OUT/rss-$name.txt"
  rss_before=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  while kill -0 "$wrk_pid" 2>/dev/null; do
    awk '/VmRSS/ {print $2}' "/proc/$pid/status" >>"$OUT/rss-$name.txt"
    sleep 1
  done
  grep '^RESULT' "$OUT/sustain-$name.txt" | sed "s/^RESULT /sustained $name /"
  awk -v before="$rss_before" '{ v[NR] = $1; if ($1 > max) max = $1; if (min == "" || $1 < min) min = $1 }
    END { printf "rss_kb before_load=%d at_1s=%d at_10s=%d at_30s=%d last=%d min=%d max=%d samples=%d\n",
          before, v[1], v[10], v[30], v[NR], min, max, NR }' "$OUT/rss-$name.txt"
}
sustain pv "$PV_PID" "$PORT_PV"
# SUSTAIN_COMPARE=0: the RSS run of `pv` only.
if [ "${SUSTAIN_COMPARE:-1}" = 1 ]; then
  for n in "${CMP_NAMES[@]}"; do sustain "pv-$n" "${CMP_PID[$n]}" "${CMP_PORT[$n]}"; done
fi
echo "# end $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
