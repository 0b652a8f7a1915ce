#!/usr/bin/env bash
# Instructions per CDS Hooks request (issue 19): the seed patient-view served by
# `osteoguard-cds-bench --serve` under callgrind, counted over N sequential requests on one
# keep-alive connection after a warm-up. Instruction counts do not depend on what else the machine
# runs, so a code change can be measured on a shared machine (wall and CPU time cannot).
#
#   scripts/cds-callgrind.sh BIN NAME [N]
#     BIN   an osteoguard-cds-bench binary (e.g. target/release/osteoguard-cds-bench, or a copy of
#           an earlier build), NAME a label for the output files, N requests (default 100)
#   prints   NAME Ir_per_req=…   and leaves $OUT/cg-NAME.out (callgrind_annotate --inclusive=yes
#           $OUT/cg-NAME.out shows where they go) and $OUT/response-NAME.json (the bytes answered,
#           to compare two builds: only the report link differs).
#
# Needs valgrind and python3. The counters are zeroed after 30 warm-up requests and dumped after
# the N measured ones (callgrind_control), so start-up is not counted.
set -euo pipefail
BIN=$1
NAME=$2
N=${3:-100}
PORT=${PORT:-18202}
OUT=${OUT:-/tmp/cds-callgrind}
D=$OUT/serve-$NAME
rm -rf "$D"
mkdir -p "$D"
cat >"$OUT/client.py" <<'EOF'
# Sequential keep-alive POSTs of the seed request; every answer must be 200.
import http.client, sys
port, body_path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
body = open(body_path, "rb").read()
c = http.client.HTTPConnection("127.0.0.1", port)
bad = 0
for _ in range(n):
    c.request("POST", "/cds-services/osteoguard-patient-view", body,
              {"Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    bad += r.status != 200
if bad:
    sys.exit(f"{bad} of {n} requests not answered 200")
EOF
valgrind --tool=callgrind --callgrind-out-file="$D/cg.%p" --dump-instr=no --collect-jumps=no \
  "$BIN" --serve "$D" --port "$PORT" --tokens 1 >"$D/log" 2>&1 &
SERVER=$!
trap 'kill -INT $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 1200); do [ -f "$D/ready" ] && break; sleep 0.5; done
[ -f "$D/ready" ] || { echo "service did not start" >&2; cat "$D/log" >&2; exit 1; }
PID=$(cat "$D/pid")
python3 "$OUT/client.py" "$PORT" "$D/request.json" 30
callgrind_control -z "$PID" >/dev/null
python3 "$OUT/client.py" "$PORT" "$D/request.json" "$N"
callgrind_control -d "$PID" >/dev/null
sleep 1
DUMP=$(ls -t "$D"/cg."$PID".* | head -1)
cp "$DUMP" "$OUT/cg-$NAME.out"
cp "$D/response.json" "$OUT/response-$NAME.json"
TOTAL=$(grep -E '^(summary|totals):' "$DUMP" | head -1 | awk '{print $2}')
echo "$NAME Ir_per_req=$((TOTAL / N)) (N=$N; $OUT/cg-$NAME.out)"
