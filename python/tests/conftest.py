"""Fixtures: the shared data directory, the `osteoguard` binary, one local Spark session."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    return Path(os.environ.get("OSTEOGUARD_SHARED", REPO.parent / "shared"))


def osteoguard_bin() -> str:
    env = os.environ.get("OSTEOGUARD_BIN")
    if env:
        return env
    for profile in ("debug", "release"):
        p = REPO / "target" / profile / "osteoguard"
        if p.exists():
            return str(p)
    found = shutil.which("osteoguard")
    if found:
        return found
    pytest.skip("osteoguard binary not built (cargo build -p osteoguard-cli, or set OSTEOGUARD_BIN)")


@pytest.fixture(scope="session")
def osteoguard_exe() -> str:
    return osteoguard_bin()


@pytest.fixture(scope="session")
def spark():
    from osteoguard.spark import build_session

    s = build_session(os.environ.get("OSTEOGUARD_SPARK_MASTER", "local[2]"), "osteoguard-tests")
    s.sparkContext.setLogLevel("ERROR")
    yield s
    s.stop()


@pytest.fixture(scope="session")
def synthetic_export(tmp_path_factory, osteoguard_exe) -> Path:
    out = tmp_path_factory.mktemp("synth") / "export"
    subprocess.run(
        [osteoguard_exe, "synth", "--patients", "400", "--seed", "11", "--out", str(out), "-q"],
        check=True,
    )
    return out
