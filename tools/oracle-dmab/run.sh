#!/bin/sh
# Usage: tools/oracle-dmab/run.sh BINARY [SEED...]   (default seeds 1 2 3 4, 600 patients each)
# WIDE=1: generate the session-10 areas too (gen.py --wide) and send the order hooks to `serve`
# (diff.py --hooks); CONFIG=FILE: pass a TOML (e.g. facility LSC) to assess and the oracle.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bin=$1; shift
seeds=${*:-1 2 3 4}
n=${N:-600}
out=${OUT:-/tmp/oradm-diff}
gflags=""; dflags=""
if [ "${WIDE:-0}" = 1 ]; then gflags="--wide"; dflags="--hooks"; fi
if [ -n "${CONFIG:-}" ]; then dflags="$dflags --config $CONFIG"; fi
rm -rf "$out"; dirs=""
for s in $seeds; do
  python3 "$here/gen.py" --seed "$s" --n "$n" --out "$out/s$s" $gflags
  dirs="$dirs $out/s$s"
done
rc=0
python3 "$here/diff.py" "$bin" $dirs $dflags || rc=$?
[ "${KEEP:-0}" = 1 ] || rm -rf "$out"
exit $rc
