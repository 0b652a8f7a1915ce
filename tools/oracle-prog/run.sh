#!/bin/sh
# usage: tools/oracle-prog/run.sh BINARY [SEEDS] [N]  -- generate and diff, data under /tmp/oraprog
set -e
BIN=${1:?binary}
SEEDS=${2:-"1 2 3 4 5"}
N=${3:-500}
HERE=$(dirname "$0")
DIRS=""
for s in $SEEDS; do
  rm -rf "/tmp/oraprog/s$s"
  python3 "$HERE/gen.py" --seed "$s" --n "$N" --out "/tmp/oraprog/s$s"
  DIRS="$DIRS /tmp/oraprog/s$s"
done
python3 "$HERE/diff.py" "$BIN" $DIRS
