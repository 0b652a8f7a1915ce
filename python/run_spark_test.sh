#!/usr/bin/env bash
# Builds the osteoguard Python wheel (maturin + PyO3) and runs the Python / Spark local-mode
# tests, which compare the Spark job's worklist with `osteoguard screen`'s on the same exports.
#
#   bash python/run_spark_test.sh            # from anywhere; CI calls it from .ci/run
#
# Environment: OSTEOGUARD_SHARED (default ../shared from the repo root), VENV (default
# .venv-spark), OSTEOGUARD_WHEEL_PROFILE=release for an optimised wheel (default: debug, CI time),
# PYSPARK_VERSION (default 4.0.1, what CI runs; `PYSPARK_VERSION=3.5.7` runs the same tests on
# Spark 3.5).
#
# Needs python3 (>= 3.9, with venv) and Java 17. The wheel is built as shipped: abi3, stripped,
# manylinux2014 (cross-linked with zig from the PyPI `ziglang` package, so it loads on glibc
# >= 2.17), and checked with `auditwheel show`.
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
PYSPARK_VERSION="${PYSPARK_VERSION:-4.0.1}"
# Pinned: pyspark 4.0 and 3.5 both run on Java 17; pyarrow / pandas / numpy versions both support.
"$VENV/bin/pip" install -q --disable-pip-version-check \
  "pyspark==$PYSPARK_VERSION" "pyarrow==16.1.0" "pandas==2.2.3" "numpy==1.26.4" \
  "pytest>=8,<9"
# Wheel build tools (maturin, zig for manylinux2014 linking, auditwheel to check the tag).
"$VENV/bin/pip" install -q --disable-pip-version-check \
  "maturin>=1.7,<2" "ziglang>=0.10,<1" "auditwheel>=6,<7"
# (Other Python test dependencies: add their pins to the first install above.)

echo "== osteoguard binary (screen, synth) for the comparison"
cargo build -q -p osteoguard-cli
export OSTEOGUARD_BIN="$ROOT/target/debug/osteoguard"

echo "== wheel (maturin)"
WHEELS="$ROOT/target/wheels"
rm -f "$WHEELS"/osteoguard-*.whl
PROFILE_FLAG=()
[ "${OSTEOGUARD_WHEEL_PROFILE:-debug}" = "release" ] && PROFILE_FLAG=(--release)
# maturin finds zig through the venv's PATH; compatibility and strip come from pyproject.toml.
(cd python && PATH="$VENV/bin:$PATH" "$VENV/bin/maturin" build -q "${PROFILE_FLAG[@]}" --zig -o "$WHEELS")
WHEEL=$(ls "$WHEELS"/osteoguard-*.whl)
echo "$WHEEL ($(du -k "$WHEEL" | cut -f1) KiB)"
"$VENV/bin/auditwheel" show "$WHEEL" | tee "$ROOT/target/wheels/auditwheel.txt"
grep -q 'manylinux_2_17_x86_64\|manylinux2014' "$ROOT/target/wheels/auditwheel.txt" || {
  echo "the wheel is not manylinux2014-compatible" >&2
  exit 1
}
"$VENV/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps "$WHEEL"

echo "== pytest (Spark local mode)"
# The driver JVM's class-data archive (osteoguard.spark.cds_option): kept with the build, so
# the run after the first maps it instead of loading Spark's classes again.
export OSTEOGUARD_SPARK_CDS="${OSTEOGUARD_SPARK_CDS:-$ROOT/target/spark-cds}"
export PYSPARK_PYTHON="$VENV/bin/python"
export PYSPARK_DRIVER_PYTHON="$VENV/bin/python"
cd "$ROOT/python/tests"
"$VENV/bin/python" -m pytest -q -p no:cacheprovider .
