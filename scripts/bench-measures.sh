#!/bin/sh
# Benchmark: osteoguard measure vs fqm-execution (the reference eCQM engine) on the official
# CMS249/CMS645 decks and on a synthetic population cloned from them.
#
# Usage: scripts/bench-measures.sh [N_SYNTHETIC] [--no-fqm-synthetic]
#   N_SYNTHETIC  patients per measure in the synthetic population (default 10000)
#   --no-fqm-synthetic  skip fqm-execution on the synthetic population (one batched calculate per
#                    measure, timed in CPU by scripts/fqm-cpu.js: ~1-2 h of one core at 10,000)
# Needs: node + npm (fqm-execution is installed with `npm ci` into a temp copy of
# ../shared/bench/fqm, which is read-only), python3, a release build of osteoguard.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${OSTEOGUARD_SHARED:-"$root/../shared"}
n=${1:-10000}
fqm_synth=${2:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== machine: $(nproc) cores, $(uname -sr); $(date -u +%FT%TZ)"
# The measure pipeline alone (read + evaluate + MeasureReport Bundle), as `osteoguard measure`
# runs it, without building the whole CLI (server, SQLite…) in release.
cargo build --release -q -p osteoguard-measure --example measure_timing --manifest-path "$root/Cargo.toml"
ex="$root/target/release/examples/measure_timing"

cp -r "$shared/bench/fqm" "$work/fqm"
chmod -R u+w "$work/fqm"
cp "$root/scripts/fqm-cpu.js" "$work/fqm/"
(cd "$work/fqm" && npm ci --silent --no-audit --no-fund >/dev/null)

tests="$shared/data/ecqm-qicore-2024/tests"
for m in cms249:AppropriateDXAScansForWomenUnder65FHIR:CMS249 \
         cms645:BoneDensityProstateCancerAndrogenDeprivationTherapyFHIR:CMS645; do
  id=${m%%:*}; rest=${m#*:}; deck=${rest%%:*}; peer=${rest#*:}
  echo "== $id deck ($deck)"
  (cd "$work/fqm" && node run.js "$peer-measure-bundle.json.gz" "$tests/$deck" --mode batch --repeat 3) | tail -3
  for _ in 1 2 3; do "$ex" "$id" "$tests/$deck"; done
  echo "== $id synthetic population, $n patients"
  python3 "$root/scripts/clone-deck.py" "$tests/$deck" "$work/synth-$id" "$n"
  for _ in 1 2 3; do
    /usr/bin/time -f "  osteoguard whole process: %e s wall, %U s user, %S s sys, %M KB max RSS" "$ex" "$id" "$work/synth-$id"
  done
  (cd "$work/fqm" && node fqm-cpu.js "$peer-measure-bundle.json.gz" "$tests/$deck")
  if [ "$fqm_synth" != "--no-fqm-synthetic" ]; then
    (cd "$work/fqm" && /usr/bin/time -f "  fqm whole process: %e s wall, %U s user, %S s sys, %M KB max RSS" \
      node --max-old-space-size=8192 fqm-cpu.js "$peer-measure-bundle.json.gz" "$work/synth-$id")
  fi
done
