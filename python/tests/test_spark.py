"""The Spark job (local mode) against `osteoguard screen` on the same exports."""

import csv
import json
import subprocess
from pathlib import Path

import pytest

from conftest import shared_dir
from osteoguard import WORKLIST_COLUMNS
from osteoguard.spark import AS_OF_COLUMN, run


def read_csv(path: Path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def screen_worklist(exe, export, as_of, out):
    subprocess.run(
        [exe, "screen", str(export), "--as-of", as_of, "--out", str(out), "--format", "csv", "-q"],
        check=True,
    )
    # A first run (a fresh registry): every finding "new", as the Spark job without --previous.
    return read_csv(out / "worklist.csv")


def spark_worklist(spark, export, as_of, out, **kw):
    summary = run(spark, str(export), as_of, str(out), single_csv=True, **kw)
    header, rows = read_csv(out / "worklist.csv")
    return summary, header, rows


def check_same(spark, exe, export, as_of, tmp_path, **kw):
    header_s, rows_s = screen_worklist(exe, export, as_of, tmp_path / "screen")
    summary, header_k, rows_k = spark_worklist(spark, export, as_of, tmp_path / "spark", **kw)
    assert header_k == header_s == list(WORKLIST_COLUMNS)
    assert summary["rows"] == len(rows_k)
    assert rows_k == rows_s  # same rows, same order
    # Byte for byte as a CSV writer with minimal quoting writes screen's rows.
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header_s)
    w.writerows(rows_s)
    spark_text = (tmp_path / "spark" / "worklist.csv").read_text(encoding="utf-8")
    assert spark_text == buf.getvalue()
    # Parquet holds the same rows in the same order.
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "spark" / "worklist.parquet")
    assert table.column_names == list(WORKLIST_COLUMNS) + [AS_OF_COLUMN]
    assert set(table.column(AS_OF_COLUMN).to_pylist()) <= {as_of}
    pq_rows = [
        ["" if row[c] is None else str(row[c]) for c in WORKLIST_COLUMNS]
        for row in table.to_pylist()
    ]
    assert pq_rows == rows_k
    return summary, rows_k


@pytest.mark.parametrize("as_of", ["2019-06-30", "2024-06-30"])
def test_spark_equals_screen_on_bulk_10(spark, osteoguard_exe, tmp_path, as_of):
    export = shared_dir() / "data" / "bulk-10-patients"
    if not export.is_dir():
        pytest.skip(f"{export} not found (set OSTEOGUARD_SHARED)")
    summary, _ = check_same(spark, osteoguard_exe, export, as_of, tmp_path)
    assert summary["lines"]["drop:not-fhir"] > 0  # log.ndjson
    assert summary["lines"]["drop:irrelevant"] > 0  # filtered before the shuffle


def test_spark_equals_screen_on_synthea_cohort(spark, osteoguard_exe, tmp_path):
    export = shared_dir() / "data" / "synthea-r4-cohort-ndjson"
    if not export.is_dir():
        pytest.skip(f"{export} not found (set OSTEOGUARD_SHARED)")
    _, rows = check_same(spark, osteoguard_exe, export, "2020-01-01", tmp_path)
    assert rows


def test_spark_equals_screen_on_synthetic_export(spark, osteoguard_exe, synthetic_export, tmp_path):
    manifest = json.loads((synthetic_export / "synth-manifest.json").read_text())
    as_of = manifest.get("asOf", "2025-06-30")
    summary, rows = check_same(spark, osteoguard_exe, synthetic_export, as_of, tmp_path)
    assert summary["lines"]["shared"] > 0  # Medication resources joined by reference
    assert len({r[0] for r in rows}) > 50
    # Without --previous, resolved.parquet (written on the driver) has no rows and the
    # worklist's columns, for pyarrow and for Spark (what the next run's --previous reads).
    import pyarrow.parquet as pq

    apart = pq.read_table(tmp_path / "spark" / "resolved.parquet")
    assert apart.num_rows == 0
    assert apart.column_names == list(WORKLIST_COLUMNS) + [AS_OF_COLUMN]
    types = [(f.name, f.dataType) for f in
             spark.read.parquet(str(tmp_path / "spark" / "resolved.parquet")).schema]
    assert types == [(f.name, f.dataType) for f in
                     spark.read.parquet(str(tmp_path / "spark" / "worklist.parquet")).schema]
    assert (tmp_path / "spark" / "resolved.csv").read_text(encoding="utf-8") == \
        ",".join(WORKLIST_COLUMNS) + "\n"


def test_cli_in_one_slot_equals_screen(osteoguard_exe, synthetic_export, tmp_path):
    """`python -m osteoguard.spark --master local[1] --single-csv`: with one task slot the
    worklist is sorted in one range partition (no sampling job); screen's worklist.csv byte
    for byte, and the Parquet in the same order."""
    import sys

    import pyarrow.parquet as pq

    as_of = json.loads((synthetic_export / "synth-manifest.json").read_text())["asOf"]
    _, rows_s = screen_worklist(osteoguard_exe, synthetic_export, as_of, tmp_path / "screen")
    out = tmp_path / "spark"
    subprocess.run([sys.executable, "-m", "osteoguard.spark", str(synthetic_export), "--as-of",
                    as_of, "--out", str(out), "--master", "local[1]", "--single-csv"],
                   check=True, capture_output=True)
    assert (out / "worklist.csv").read_text(encoding="utf-8") == \
        (tmp_path / "screen" / "worklist.csv").read_text(encoding="utf-8")
    table = pq.read_table(out / "worklist.parquet")
    assert table.column("patient_id").to_pylist() == [r[0] for r in rows_s]
    assert json.loads((out / "summary.json").read_text())["rows"] == len(rows_s)


def test_spark_equals_screen_when_map_tasks_read_many_ranges(
        spark, osteoguard_exe, synthetic_export, tmp_path):
    """Three map tasks, each file cut into 1 MB ranges spread over them (map_bins): the same
    worklist as screen's, and every line counted once."""
    import os

    from osteoguard.spark import map_bins

    as_of = json.loads((synthetic_export / "synth-manifest.json").read_text())["asOf"]
    files = sorted(str(p) for p in synthetic_export.glob("*.ndjson"))
    bins = map_bins(files, 3, 1 << 20)
    assert sum(len(b) for b in bins) > len(files)  # some file is cut into several ranges
    assert max(os.path.getsize(f) for f in files) > 1 << 20
    summary, _ = check_same(spark, osteoguard_exe, synthetic_export, as_of, tmp_path / "a",
                            split_mb=1, map_tasks=3)
    lines = sum(1 for f in files for _ in open(f, "rb"))
    assert sum(summary["lines"].values()) == lines
    whole = run(spark, str(synthetic_export), as_of, str(tmp_path / "b"), map_tasks=1)
    assert whole["lines"] == summary["lines"] and whole["rows"] == summary["rows"]


def test_map_bins_read_every_byte_once_and_share_each_file(tmp_path, monkeypatch):
    """Each uncompressed file is cut into contiguous ranges covering it exactly once, spread
    over the tasks (each task a share of every large file); a gzip file is read whole; a
    task's ranges are in file order."""
    import gzip

    import osteoguard.spark as job

    monkeypatch.setattr(job, "MIN_RANGE_BYTES", 1000)
    sizes = {"Observation.ndjson": 10_000, "Condition.ndjson": 4_100, "Patient.ndjson": 900,
             "Empty.ndjson": 0}
    files = []
    for name, size in sizes.items():
        (tmp_path / name).write_bytes(b"x" * size)
        files.append(str(tmp_path / name))
    gz = tmp_path / "MedicationRequest.ndjson.gz"
    gz.write_bytes(gzip.compress(b"y" * 5000))
    files.append(str(gz))
    for tasks in (1, 2, 3, 7):
        bins = job.map_bins(files, tasks)
        assert len(bins) == tasks
        covered = {}
        for b in bins:
            assert b == sorted(b, key=lambda r: (r[0], r[1]))
            for path, start, end in b:
                covered.setdefault(path, []).append((start, end))
        assert sorted(covered) == sorted(files)
        for path, ranges in covered.items():
            size = (tmp_path / path).stat().st_size
            ranges.sort()
            assert ranges[0][0] == 0 and ranges[-1][1] is None
            for (s0, e0), (s1, _) in zip(ranges, ranges[1:]):
                assert e0 == s1 and s0 < e0  # contiguous, no overlap, none empty
            if path.endswith(".gz") or size <= 1000:
                assert ranges == [(0, None)]
            else:
                assert len(ranges) == min(tasks, size // 1000)
        # the largest file: one range in each of min(tasks, 10) tasks
        obs = str(tmp_path / "Observation.ndjson")
        assert sum(any(r[0] == obs for r in b) for b in bins) == min(tasks, 10)
    # split_bytes caps a range
    bins = job.map_bins(files, 2, 3000)
    obs_ranges = [r for b in bins for r in b if r[0].endswith("Observation.ndjson")]
    assert len(obs_ranges) == 4
    assert max(job.map_task_count(5 << 30, 2), job.map_task_count(1 << 20, 2)) == 6
    assert job.map_task_count(1 << 20, 2) == 2


def test_daemon_module_prefers_the_installed_pyspark_over_its_zip():
    """The job's daemon (osteoguard._daemon) takes a pip-installed pyspark's own pyspark.zip
    (and py4j's) off sys.path (compiled .pyc instead of sources compiled again in every
    worker), and leaves a Spark distribution's zip first."""
    import os
    import sys

    import pyspark

    from osteoguard import _daemon

    site = os.path.dirname(os.path.dirname(pyspark.__file__))
    lib = os.path.join(site, "pyspark", "python", "lib")
    own = os.path.join(lib, "pyspark.zip")
    py4j = os.path.join(lib, "py4j-0.10.9.9-src.zip")
    dist = "/opt/spark-4.0.1-bin-hadoop3/python/lib/pyspark.zip"
    saved = list(sys.path)
    try:
        sys.path[:] = [own, py4j, dist, site, "/elsewhere"]
        _daemon.prefer_installed_pyspark()
        has_py4j = os.path.isdir(os.path.join(site, "py4j"))
        assert sys.path == [dist, site, "/elsewhere"] if has_py4j else [py4j, dist, site,
                                                                       "/elsewhere"]
        assert own not in sys.path_importer_cache
        sys.path[:] = [own, "/elsewhere"]  # no installed package beside it: left first
        _daemon.prefer_installed_pyspark()
        assert sys.path == [own, "/elsewhere"]
    finally:
        sys.path[:] = saved


def test_spark_session_uses_the_osteoguard_daemon(spark):
    assert spark.sparkContext.getConf().get("spark.python.daemon.module") == "osteoguard._daemon"


def test_cli_entry_point(tmp_path):
    """`python -m osteoguard.spark` as a user runs it (its own local[1] session)."""
    import sys

    export = shared_dir() / "data" / "bulk-10-patients"
    if not export.is_dir():
        pytest.skip("shared data not found")
    bad = subprocess.run(
        [sys.executable, "-m", "osteoguard.spark", str(export), "--as-of", "30/06/2024", "--out", str(tmp_path)],
        capture_output=True, text=True,
    )
    assert bad.returncode == 2 and "YYYY-MM-DD" in bad.stderr


def test_spark_text_reader_equals_screen(spark, osteoguard_exe, tmp_path):
    """The URI path (spark.read.text, batches routed into blobs) gives the same worklist."""
    export = shared_dir() / "data" / "bulk-10-patients"
    if not export.is_dir():
        pytest.skip(f"{export} not found (set OSTEOGUARD_SHARED)")
    summary, rows = check_same(spark, osteoguard_exe, export, "2024-06-30", tmp_path,
                               reader="text", partitions=3)
    assert rows and summary["lines"]["keep"] > 0


def test_partition_keys_land_in_their_own_partition(spark):
    """The blob rows' keys: Spark's own hash partitioning sends key i to partition i."""
    from pyspark.sql import functions as F

    from osteoguard.spark import partition_keys, spark_hash_long

    for n in (1, 3, 8, 13):
        keys = partition_keys(n)
        df = spark.createDataFrame([(k,) for k in keys], "pkey long").repartition(n, "pkey")
        got = {r["pkey"]: r["p"] for r in
               df.select("pkey", F.spark_partition_id().alias("p")).collect()}
        assert got == {k: i for i, k in enumerate(keys)}
    sample = [0, 1, -1, 2**40 + 7, -(2**63), 2**63 - 1]
    rows = spark.createDataFrame([(v,) for v in sample], "v long").select(
        "v", F.hash("v").alias("h")).collect()
    assert {r["v"]: r["h"] for r in rows} == {v: spark_hash_long(v) for v in sample}


def _export_with_a_bad_line(tmp_path, bad: str, file: str = "Condition.000.ndjson", at: int = 7):
    """bulk-10-patients copied, with ``bad`` as line ``at`` of ``file``: (export, that file)."""
    import shutil

    src = shared_dir() / "data" / "bulk-10-patients"
    if not src.is_dir():
        pytest.skip(f"{src} not found (set OSTEOGUARD_SHARED)")
    export = tmp_path / "export"
    shutil.copytree(src, export)
    target = export / file
    target.chmod(0o644)
    lines = target.read_text(encoding="utf-8").splitlines(keepends=True)
    lines.insert(at - 1, bad + "\n")
    target.write_text("".join(lines), encoding="utf-8")
    return export, target


TRUNCATED = '{"resourceType":"Condition","id":"c-bad","subject":{"reference":"Patient/p1"},"code":'
DOUBLED = ('{"resourceType":"Encounter","id":"e1","subject":{"reference":"Patient/p1"}}'
           '{"resourceType":"Encounter","id":"e2","subject":{"reference":"Patient/p1"}}')


@pytest.mark.parametrize("reader,bad", [("ranges", TRUNCATED), ("ranges", DOUBLED),
                                        ("text", DOUBLED)],
                         ids=["ranges-truncated", "ranges-two-objects", "text-two-objects"])
def test_spark_refuses_a_line_that_is_not_json(spark, osteoguard_exe, tmp_path, reader, bad):
    """A line screen refuses fails the job with the file (and line), not counted away."""
    import osteoguard

    export, target = _export_with_a_bad_line(tmp_path, bad)
    screen = subprocess.run(
        [osteoguard_exe, "screen", str(export), "--as-of", "2024-06-30", "--out",
         str(tmp_path / "screen"), "--format", "csv", "-q"], capture_output=True, text=True)
    assert screen.returncode == 2 and f"{target}:7:" in screen.stderr
    out = tmp_path / "spark"
    out.mkdir()
    (out / "summary.json").write_text("{}")  # an earlier run's: must not survive a failed run
    with pytest.raises(osteoguard.InputError) as e:
        run(spark, str(export), "2024-06-30", str(out), single_csv=True, reader=reader,
            partitions=3)
    msg = str(e.value)
    if reader == "ranges":
        # screen's own words: file:line:column: not valid JSON: … (resource …, field …)
        assert screen.stderr.strip().endswith(msg), (msg, screen.stderr)
    else:  # spark.read.text knows the file, not the line
        assert target.name in msg and "not valid JSON" in msg, msg
    assert not (out / "summary.json").exists()


def test_cli_exits_2_naming_the_file_of_a_line_that_is_not_json(tmp_path):
    """`python -m osteoguard.spark` on such an export: exit 2, file:line on stderr."""
    import sys

    export, target = _export_with_a_bad_line(tmp_path, TRUNCATED, at=3)
    out = tmp_path / "out"
    p = subprocess.run(
        [sys.executable, "-m", "osteoguard.spark", str(export), "--as-of", "2024-06-30",
         "--out", str(out), "--master", "local[1]"],
        capture_output=True, text=True,
    )
    assert p.returncode == 2, p.stderr[-3000:]
    assert f"{target}:3:" in p.stderr and "not valid JSON" in p.stderr, p.stderr[-3000:]
    assert not (out / "summary.json").exists()


def test_cds_archive_is_written_once_then_used(tmp_path, monkeypatch):
    """The driver JVM's class-data archive: written by the first session's JVM at exit (under
    its driver's pid), published by the next session once that run is over, then mapped."""
    import os

    from osteoguard.spark import cds_option, java_options

    monkeypatch.setenv("OSTEOGUARD_SPARK_CDS", str(tmp_path))
    monkeypatch.delenv("OSTEOGUARD_SPARK_JAVA_OPTIONS", raising=False)
    first = cds_option()
    assert first.startswith(f"-XX:ArchiveClassesAtExit={tmp_path}/spark-")
    written = first.split()[0].split("=", 1)[1]
    assert written.endswith(f".jsa.{os.getpid()}")
    archive = written.rsplit(".", 1)[0]
    # This run's JVM writes it (when it exits): no second writer, nothing to map yet.
    assert os.path.exists(written)
    assert cds_option() == ""
    assert os.path.exists(written) and not os.path.exists(archive)
    # Earlier runs have ended (pids that are not running): two JVMs dumped long ago, one did
    # not get to write (empty).
    os.remove(written)
    dead = [f"{archive}.999999997", f"{archive}.999999998", f"{archive}.999999999"]
    for i, d in enumerate(dead):
        with open(d, "wb") as f:
            f.write(b"x" * (0 if i == 0 else 2 << 20))
        os.utime(d, (0, 0))
    assert cds_option() == f"-XX:SharedArchiveFile={archive}"
    assert os.path.exists(archive) and not any(os.path.exists(d) for d in dead)
    assert java_options().split() == ["-XX:TieredStopAtLevel=1", f"-XX:SharedArchiveFile={archive}"]
    monkeypatch.setenv("OSTEOGUARD_SPARK_CDS", "off")
    assert cds_option() == ""
    monkeypatch.setenv("OSTEOGUARD_SPARK_JAVA_OPTIONS", "-Xss4m")
    assert java_options() == "-Xss4m"
