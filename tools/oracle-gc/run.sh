#!/bin/sh
# usage: tools/oracle-gc/run.sh BINARY [SEEDS] [N]  -- generate and diff, data under /tmp/oragc
set -e
BIN=${1:?binary}
SEEDS=${2:-"1 2 3 4 5"}
N=${3:-500}
HERE=$(dirname "$0")
DIRS=""
for s in $SEEDS; do
  rm -rf "/tmp/oragc/s$s"
  python3 "$HERE/gen.py" --seed "$s" --n "$N" --out "/tmp/oragc/s$s"
  DIRS="$DIRS /tmp/oragc/s$s"
done
python3 "$HERE/diff.py" "$BIN" $DIRS
