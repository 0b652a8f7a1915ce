#!/bin/sh
# Creates the Python venv with the third-party FHIR validator the osteoguard tests use:
# fhir.resources 7.1.0 (pydantic models of FHIR R4B, which shares R4's resources used here).
# Usage: scripts/fhir-validator-venv.sh [VENV_DIR]   (default: target/fhir-validator-venv)
# The cargo test `fhir_validation` finds the venv at $OSTEOGUARD_FHIR_VALIDATOR_PY (a python
# executable) or at target/fhir-validator-venv/bin/python.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${1:-"$root/target/fhir-validator-venv"}
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check 'fhir.resources==7.1.0'
"$venv/bin/python" -c 'import fhir.resources.R4B.bundle as b; print("fhir.resources R4B ok")'
