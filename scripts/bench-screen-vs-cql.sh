#!/usr/bin/env bash
# Population screening vs the CQL peer, CPU per patient on the same patients (issue 19, goal 3):
#
#   1. `osteoguard-screen synth --patients N --seed SEED --filler FILLER` (patient i of a synthetic
#      export depends only on (seed, i), so these are the first N patients of any larger export of
#      the same seed: the script checks that against EXPORT when it is given);
#   2. the converter (below, node): every patient of that export as one FHIR Bundle (type
#      `collection`) per line — the Patient, every resource whose subject / patient / beneficiary
#      references it, and the Medication / Device resources those reference — in files of
#      BATCH patients (one string per file in node: a 560 MB file would pass V8's string limit);
#   3. `node run.js BUNDLES AS_OF` (../shared/bench/cql-peer, copied under $OUT with `npm ci`:
#      ../shared is read-only) on every file: whole-process CPU (user + sys, `/usr/bin/time`) and
#      the evaluation-only time it prints (JSON parsing of the bundles not included);
#   4. `osteoguard-screen screen` on the same export, `--jobs 1` (one core, as node evaluates on
#      one), whole-process CPU, ROUNDS times (median).
#
# Reported: CPU ms per patient both ways (whole processes) and their ratio; run.js's own
# evaluation-only figure is printed beside it, but it is wall-clock time (hrtime), so it is not
# used for the ratio. The peer evaluates ONE rule of osteoguard's eighteen,
# so every ratio flatters the peer.
#
#   scripts/bench-screen-vs-cql.sh                     # N=2000, builds the release binary first
#   N=2000 ROUNDS=3 EXPORT=/tmp/scr/p100k scripts/bench-screen-vs-cql.sh
#   BIN=/path/to/osteoguard-screen scripts/bench-screen-vs-cql.sh
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-2000}
SEED=${SEED:-1}
FILLER=${FILLER:-30}
AS_OF=${AS_OF:-2025-06-30}
BATCH=${BATCH:-500}
ROUNDS=${ROUNDS:-3}
OUT=${OUT:-/tmp/scr/vs-cql}
PEER_SRC=${PEER_SRC:-../shared/bench/cql-peer}

if [ -z "${BIN:-}" ]; then
  cargo build --release -p osteoguard-screen --bin osteoguard-screen
  BIN=target/release/osteoguard-screen
fi
command -v node >/dev/null || { echo "node not found" >&2; exit 2; }
mkdir -p "$OUT"
if [ ! -d "$OUT/cql-peer/node_modules" ]; then
  rm -rf "$OUT/cql-peer"
  cp -r "$PEER_SRC" "$OUT/cql-peer"
  chmod -R u+w "$OUT/cql-peer"
  (cd "$OUT/cql-peer" && npm ci --no-audit --no-fund >/dev/null)
fi

EXP="$OUT/export-$N"
rm -rf "$EXP" "$OUT/bundles" "$OUT/screen-out"
"$BIN" synth --patients "$N" --seed "$SEED" --filler "$FILLER" --as-of "$AS_OF" --out "$EXP" -q
if [ -n "${EXPORT:-}" ]; then
  # Same patients as the big export: every type file of the sample is a prefix of the big one's.
  for f in "$EXP"/*.ndjson; do
    big="$EXPORT/$(basename "$f")"
    [ -f "$big" ] || { echo "no $big" >&2; exit 1; }
    cmp -n "$(stat -c %s "$f")" "$f" "$big" >/dev/null \
      || { echo "$(basename "$f"): the sample is not a prefix of $EXPORT" >&2; exit 1; }
  done
  echo "sample = the first $N patients of $EXPORT (every type file a byte prefix)"
fi

# --- the converter: an export's NDJSON files -> one Bundle per patient per line ---------------
mkdir -p "$OUT/bundles"
cat >"$OUT/to-bundles.js" <<'EOF'
// node to-bundles.js EXPORT_DIR OUT_DIR BATCH — writes OUT_DIR/bundles-NNN.ndjson.
const fs = require('fs');
const path = require('path');
const readline = require('readline');
const [dir, outDir, batchArg] = process.argv.slice(2);
const batch = Number(batchArg);
const patientOf = (r) => {
  if (r.resourceType === 'Patient') return r.id;
  for (const k of ['subject', 'patient', 'beneficiary']) {
    const ref = r[k] && r[k].reference;
    if (typeof ref !== 'string') continue;
    if (ref.startsWith('urn:uuid:')) return ref.slice(9);
    const i = ref.lastIndexOf('Patient/');
    if (i >= 0) return ref.slice(i + 8).split('/')[0];
  }
  return null;
};
const refOf = (r, k, ty) => {
  const ref = r[k] && r[k].reference;
  if (typeof ref !== 'string') return null;
  const i = ref.lastIndexOf(ty + '/');
  return i >= 0 ? ty + '/' + ref.slice(i + ty.length + 1).split('/')[0] : null;
};
(async () => {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.ndjson')).sort();
  const order = [];           // patient ids in Patient.ndjson order
  const byPatient = new Map(); // id -> resources
  const shared = new Map();    // 'Medication/x' | 'Device/x' -> resource
  let unattached = 0;
  for (const f of files) {
    const rl = readline.createInterface({ input: fs.createReadStream(path.join(dir, f)), crlfDelay: Infinity });
    for await (const line of rl) {
      if (!line.trim()) continue;
      const r = JSON.parse(line);
      if (r.resourceType === 'Medication' || r.resourceType === 'Device') {
        shared.set(r.resourceType + '/' + r.id, r);
        continue;
      }
      const p = patientOf(r);
      if (p === null) { unattached++; continue; }
      if (!byPatient.has(p)) byPatient.set(p, []);
      byPatient.get(p).push(r);
      if (r.resourceType === 'Patient') order.push(p);
    }
  }
  let file = 0, inFile = 0, out = null, resources = 0;
  for (const id of order) {
    if (out === null || inFile === batch) {
      if (out) out.end();
      out = fs.createWriteStream(path.join(outDir, `bundles-${String(file++).padStart(3, '0')}.ndjson`));
      inFile = 0;
    }
    const rs = byPatient.get(id);
    const extra = new Set();
    for (const r of rs) {
      for (const [k, ty] of [['medicationReference', 'Medication'], ['device', 'Device']]) {
        const key = refOf(r, k, ty);
        if (key && shared.has(key)) extra.add(key);
      }
    }
    const entry = rs.concat([...extra].map((k) => shared.get(k)))
      .map((r) => ({ fullUrl: `urn:uuid:${r.resourceType}-${r.id}`, resource: r }));
    resources += entry.length;
    out.write(JSON.stringify({ resourceType: 'Bundle', type: 'collection', entry }) + '\n');
    inFile++;
  }
  if (out) out.end();
  console.error(`to-bundles: ${order.length} patients, ${resources} resources, ${file} files, ${unattached} unattached lines`);
})().catch((e) => { console.error(e); process.exit(1); });
EOF
node "$OUT/to-bundles.js" "$EXP" "$OUT/bundles" "$BATCH"

# --- the peer ----------------------------------------------------------------------------------
peer_cpu=0; peer_eval=0; peer_n=0
for b in "$OUT"/bundles/bundles-*.ndjson; do
  /usr/bin/time -f "TIME %U %S %e %M" -o "$OUT/time.txt" \
    node "$OUT/cql-peer/run.js" "$b" "$AS_OF" >"$OUT/peer.txt"
  line=$(tail -n 1 "$OUT/peer.txt")
  echo "peer $(basename "$b"): $line; $(cat "$OUT/time.txt")"
  n=$(sed -E 's/^cql-execution: ([0-9]+) patient evaluations in ([0-9.]+) s.*/\1/' <<<"$line")
  s=$(sed -E 's/^cql-execution: ([0-9]+) patient evaluations in ([0-9.]+) s.*/\2/' <<<"$line")
  read -r _ u sy _ _ <"$OUT/time.txt"
  peer_n=$((peer_n + n))
  peer_eval=$(awk -v a="$peer_eval" -v b="$s" 'BEGIN{print a+b}')
  peer_cpu=$(awk -v a="$peer_cpu" -v b="$u" -v c="$sy" 'BEGIN{print a+b+c}')
done

# --- screen, one core --------------------------------------------------------------------------
screen_cpus=()
for r in $(seq 1 "$ROUNDS"); do
  rm -rf "$OUT/screen-out"
  /usr/bin/time -f "TIME %U %S %e %M" -o "$OUT/time.txt" \
    "$BIN" screen "$EXP" --as-of "$AS_OF" --jobs 1 -q --out "$OUT/screen-out" >/dev/null
  read -r _ u sy e m <"$OUT/time.txt"
  c=$(awk -v b="$u" -v d="$sy" 'BEGIN{print b+d}')
  echo "screen round $r: CPU ${c} s (user $u, sys $sy), wall $e s, peak RSS $((m / 1024)) MB"
  screen_cpus+=("$c")
done
screen_cpu=$(printf '%s\n' "${screen_cpus[@]}" | sort -g | awk '{a[NR]=$1} END{print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')
patients=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["patientsRead"])' "$OUT/screen-out/summary.json" 2>/dev/null || echo "$N")

awk -v pn="$peer_n" -v pc="$peer_cpu" -v pe="$peer_eval" -v sn="$patients" -v sc="$screen_cpu" 'BEGIN{
  printf "\npatients: peer %d, screen %d (%s)\n", pn, sn, (pn == sn ? "same" : "DIFFERENT");
  printf "peer (cql-execution, 1 rule): %.3f ms CPU/patient end to end (node process); evaluation alone %.3f ms/patient wall clock (run.js times it with hrtime: on a busy machine wall > CPU)\n", 1000*pc/pn, 1000*pe/pn;
  printf "screen (18 rules, --jobs 1): %.3f ms CPU/patient end to end (median of rounds)\n", 1000*sc/sn;
  printf "ratio per core (CPU per patient, end to end, peer / screen): %.1fx\n", (pc/pn)/(sc/sn);
}'
if [ "${KEEP:-0}" != 1 ]; then rm -rf "$EXP" "$OUT/bundles" "$OUT/screen-out"; fi
