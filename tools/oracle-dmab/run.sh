#!/bin/sh
# Usage: tools/oracle-dmab/run.sh BINARY [SEED...]   (default seeds 1 2 3 4, 600 patients each)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bin=$1; shift
seeds=${*:-1 2 3 4}
n=${N:-600}
out=${OUT:-/tmp/oradm-diff}
rm -rf "$out"; dirs=""
for s in $seeds; do
  python3 "$here/gen.py" --seed "$s" --n "$n" --out "$out/s$s"
  dirs="$dirs $out/s$s"
done
rc=0
python3 "$here/diff.py" "$bin" $dirs || rc=$?
[ "${KEEP:-0}" = 1 ] || rm -rf "$out"
exit $rc
