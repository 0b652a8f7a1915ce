#!/usr/bin/env bash
# CPU per CDS Hooks request on one keep-alive connection (issue 19): the server's task-clock
# (`perf stat -e task-clock -p`) over N sequential seed patient-views after W warm-up ones, sent
# by a python client; the service is `osteoguard-cds-bench --serve`. Run builds in alternating
# pairs on an idle machine (BENCHMARKS.md "CDS Hooks service", round 5).
#
#   scripts/cds-onecon.sh BIN NAME [N] [W]      # prints  NAME task_clock_ms_per_req=…
#
# Needs perf and python3. Data under $OUT (default /tmp/cds-onecon).
set -euo pipefail
BIN=$1; NAME=$2; N=${3:-4000}; W=${4:-300}; PORT=${PORT:-18230}
OUT=${OUT:-/tmp/cds-onecon}
D=$OUT/$NAME; rm -rf "$D"; mkdir -p "$D"
"$BIN" --serve "$D" --port "$PORT" --tokens 1 >"$D/log" 2>&1 &
S=$!
trap 'kill -INT $S 2>/dev/null; wait $S 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do [ -f "$D/ready" ] && break; sleep 0.1; done
[ -f "$D/ready" ] || { echo "service did not start" >&2; cat "$D/log" >&2; exit 1; }
PID=$(cat "$D/pid")
cat >"$D/client.py" <<'PY'
import http.client, sys
port, body, n = int(sys.argv[1]), open(sys.argv[2], "rb").read(), int(sys.argv[3])
c = http.client.HTTPConnection("127.0.0.1", port)
for _ in range(n):
    c.request("POST", "/cds-services/osteoguard-patient-view", body, {"Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    if r.status != 200:
        sys.exit(f"status {r.status}")
PY
python3 "$D/client.py" "$PORT" "$D/request.json" "$W"
perf stat -e task-clock -x, -o "$D/perf.csv" -p "$PID" -- python3 "$D/client.py" "$PORT" "$D/request.json" "$N"
python3 - "$D/perf.csv" "$NAME" "$N" <<'PY'
import sys
path, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
row = next(l for l in open(path) if "task-clock" in l).split(",")
print(f"{name} task_clock_ms_per_req={float(row[0]) / n:.4f} (N={n})")
PY
