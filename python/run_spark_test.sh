#!/usr/bin/env bash
# Builds the osteoguard Python wheel (maturin + PyO3) and runs the Python / Spark local-mode
# tests, which compare the Spark job's worklist with `osteoguard screen`'s on the same exports.
#
#   bash python/run_spark_test.sh            # from anywhere; CI calls it from .ci/run
#
# Environment: OSTEOGUARD_SHARED (default ../shared from the repo root), VENV (default
# .venv-spark), OSTEOGUARD_WHEEL_PROFILE=release for an optimised wheel (default: debug, CI time).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

export OSTEOGUARD_SHARED="${OSTEOGUARD_SHARED:-$(cd "$ROOT/.." && pwd)/shared}"
VENV="${VENV:-$ROOT/.venv-spark}"
PY="${PYTHON:-python3}"

if ! command -v java >/dev/null 2>&1; then
  echo "java not found: Spark needs a JRE (17)" >&2
  exit 1
fi

echo "== python venv ($VENV)"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
# Pinned: pyspark 3.5.x runs on Java 17; pyarrow / pandas / numpy versions it supports.
"$VENV/bin/pip" install -q --disable-pip-version-check \
  "pyspark==3.5.7" "pyarrow==16.1.0" "pandas==2.2.3" "numpy==1.26.4" \
  "maturin>=1.7,<2" "pytest>=8,<9"

echo "== osteoguard binary (screen, synth) for the comparison"
cargo build -q -p osteoguard-cli
export OSTEOGUARD_BIN="$ROOT/target/debug/osteoguard"

echo "== wheel (maturin)"
WHEELS="$ROOT/target/wheels"
rm -f "$WHEELS"/osteoguard-*.whl
if [ "${OSTEOGUARD_WHEEL_PROFILE:-debug}" = "release" ]; then
  (cd python && "$VENV/bin/maturin" build -q --release -o "$WHEELS")
else
  (cd python && "$VENV/bin/maturin" build -q -o "$WHEELS")
fi
"$VENV/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps "$WHEELS"/osteoguard-*.whl

echo "== pytest (Spark local mode)"
export PYSPARK_PYTHON="$VENV/bin/python"
export PYSPARK_DRIVER_PYTHON="$VENV/bin/python"
cd "$ROOT/python/tests"
"$VENV/bin/python" -m pytest -q -p no:cacheprovider .
