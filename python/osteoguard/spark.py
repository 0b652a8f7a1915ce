"""The osteoguard worklist on Apache Spark.

    python -m osteoguard.spark EXPORT_DIR --as-of DATE --out DIR [--master local[2]]
        [--previous PREVIOUS_OUT_DIR] [--single-csv]
    spark-submit --archives env.tar.gz#env ... -m osteoguard.spark ...   (see docs/spark.md)

Plan (issue 21: few, large rows through the JVM; every step on the executors but one small
collect with ``--previous``, the previous run's as-of date):

1. split the input: one map task per task slot (:func:`map_bins`), each reading its share of
   every uncompressed ``*.ndjson`` file of a local (or shared) export as byte ranges (a line
   belongs to the range holding its first byte), each ``*.ndjson.gz`` file whole (gzip cannot
   be split); a URI export (``hdfs://``, ``s3a://``) is read with ``spark.read.text``, split by
   ``spark.sql.files.maxPartitionBytes``;
2. ``mapInArrow``: the Rust engine reads / receives the lines and routes each one
   (:func:`osteoguard._native.route_file_blobs` / ``route_text_blobs``: ``osteoguard screen``'s
   router, then the FHIR reader's own disposition), dropping what no rule uses *before* the
   shuffle, and returns ONE row per byte range and target partition: ``(pkey, meds, lines,
   prev)``, the kept lines of the patients of that partition in one binary blob, the range's
   Medication resources (no patient of their own) replicated into every partition's row;
3. with ``--previous``: the previous run's rows (its ``worklist.parquet`` and
   ``resolved.parquet``) packed the same way into ``prev`` blobs;
4. ``repartition(P, "pkey")`` (the one shuffle: ranges x partitions rows, not lines; ``pkey`` is
   chosen so that partition key ``i`` lands in Spark partition ``i``);
5. ``mapInArrow`` over each partition: :func:`osteoguard._native.worklist_blobs` groups its blobs
   by patient and evaluates them with screen's own evaluation, row and status code
   (``osteoguard_core::follow_up`` through screen's run registry), one Arrow batch out;
6. sort in screen's worklist order and write ``worklist.parquet/`` and ``resolved.parquet/``
   (the previous findings listed apart: resolved, or of patients no longer in the export),
   ``summary.json`` (counts from accumulators: no count job), and with ``--single-csv``
   ``worklist.csv`` (screen's file, byte for byte) and ``resolved.csv``.

Python only wires batches: no Python code runs per line or per row.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import sys
import time
from typing import Iterator, List, Optional, Tuple

from osteoguard import _native

#: The per-line decisions, in the order of the engine's counts (`osteoguard_py::split::ACTIONS`).
LINE_ACTIONS = tuple(_native.LINE_ACTIONS)

#: The rows of the map side and of the shuffle: the Spark key of the target partition and
#: three blobs (`osteoguard_py::blobs`).
BLOB_SCHEMA = "pkey long, meds binary, lines binary, prev binary"
APART_LISTED = 0
#: The column the Parquet outputs add to screen's: the run's as-of date (what ``--previous``
#: reads back).
AS_OF_COLUMN = "as_of"


def _count(counters, counts):
    if counters is not None:
        for a, n in zip(LINE_ACTIONS, counts):
            if n:
                counters[a].add(n)


_M32 = 0xFFFFFFFF


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _M32


def _mix_k1(k: int) -> int:
    return (_rotl((k * 0xCC9E2D51) & _M32, 15) * 0x1B873593) & _M32


def _mix_h1(h: int, k: int) -> int:
    return (_rotl(h ^ k, 13) * 5 + 0xE6546B64) & _M32


def spark_hash_long(v: int, seed: int = 42) -> int:
    """Spark's ``Murmur3Hash`` of a ``long`` (``hash(col)``, what ``repartition(n, col)``
    partitions by: ``pmod(hash, n)``)."""
    v &= 0xFFFFFFFFFFFFFFFF
    h = _mix_h1(seed, _mix_k1(v & _M32))
    h = _mix_h1(h, _mix_k1(v >> 32))
    h ^= 8
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _M32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _M32
    h ^= h >> 16
    return h - (1 << 32) if h & 0x80000000 else h


def partition_keys(n: int) -> List[int]:
    """``keys[i]``: the smallest ``long`` that ``repartition(n, col)`` sends to partition ``i``
    (so the engine's partition ``i`` is Spark's partition ``i``: no two share a task)."""
    keys: List[Optional[int]] = [None] * n
    missing, k = n, 0
    while missing:
        p = spark_hash_long(k) % n
        if keys[p] is None:
            keys[p] = k
            missing -= 1
        k += 1
    return [int(x) for x in keys if x is not None]


def route_file_blobs(batches, bins, pkeys, counters=None, reader_filter: bool = False
                     ) -> Iterator:
    """mapInArrow body of step 2 (byte ranges): task numbers in (``spark.range``), one blob row
    per target partition and byte range out; task ``i`` routes the ranges ``bins[i]``
    (:func:`map_bins`)."""
    from osteoguard import _native, _record_batch

    for batch in batches:
        ranges = [r for i in batch.column(0).to_pylist() for r in bins[i]]
        for path, start, end in ranges:  # one engine call per byte range
            cols, counts = _native.route_file_blobs(path, start, end, pkeys, reader_filter)
            _count(counters, counts)
            if cols[0][2]:
                yield _record_batch(cols)


def route_text_blobs(batches, pkeys, counters=None, reader_filter: bool = False) -> Iterator:
    """mapInArrow body of step 2 (``spark.read.text``): the partition's ``value`` lines (and the
    ``file`` each came from, named if a line is not JSON) in, one blob row per target partition
    out."""
    from osteoguard import _native, _record_batch, _str_bufs

    import pyarrow as pa

    lines, files = [], []
    for b in batches:
        lines.append(b.column(0).cast(pa.large_string()))
        files.append(b.column(1).cast(pa.large_string()))
    if not lines:
        return
    cols, counts = _native.route_text_blobs(
        _str_bufs(pa.concat_arrays(lines)), pkeys, reader_filter,
        _str_bufs(pa.concat_arrays(files)))
    _count(counters, counts)
    if cols[0][2]:
        yield _record_batch(cols)


def previous_blobs(batches, pkeys) -> Iterator:
    """mapInArrow body of step 3: ``(key, prev)`` rows in, ``prev`` blob rows out."""
    from osteoguard import _native, _record_batch, _str_bufs

    for batch in batches:
        cols = _native.pack_previous(_str_bufs(batch.column(0)), _str_bufs(batch.column(1)), pkeys)
        if cols[0][2]:
            yield _record_batch(cols)


def assess_blobs(batches, as_of: str, config: Optional[str], prev_as_of: Optional[str] = None,
                 patients=None, statuses=None, listed_rows=None) -> Iterator:
    """mapInArrow body of step 5: one partition's blob rows in, its worklist rows out (listed,
    and ``_apart`` > 0 for the previous findings listed apart)."""
    import pyarrow.compute as pc

    import pyarrow as pa

    from osteoguard import _native, _record_batch, _str_bufs

    cols: List[list] = [[], [], []]
    for b in batches:  # the whole partition: one call (64-bit offsets: no 2 GiB limit)
        for i in range(3):
            cols[i].append(b.column(i + 1).cast(pa.large_binary()))
    if not cols[1]:
        return
    meds, lines, prev = (_str_bufs(pa.concat_arrays(c)) for c in cols)
    out = _record_batch(_native.worklist_blobs(meds, lines, prev, as_of, prev_as_of, config))
    if not out.num_rows:
        return
    listed = pc.equal(out.column("_apart"), APART_LISTED)
    if patients is not None:
        patients.add(pc.count_distinct(out.column("patient_id").filter(listed)).as_py())
    if statuses is not None:
        statuses.add({r["values"]: r["counts"]
                      for r in pc.value_counts(out.column("status")).to_pylist()})
    if listed_rows is not None:
        listed_rows.add(pc.sum(listed.cast("int64")).as_py() or 0)
    yield out


def _dict_accumulator(sc):
    """An accumulator of ``{key: count}`` dictionaries (summed per key)."""
    from pyspark.accumulators import AccumulatorParam

    class DictSum(AccumulatorParam):
        def zero(self, value):
            return {}

        def addInPlace(self, a, b):
            for k, v in b.items():
                a[k] = a.get(k, 0) + v
            return a

    return sc.accumulator({}, DictSum())


def spark_schema():
    """The worklist schema in Spark terms (screen's columns, age as a number)."""
    from pyspark.sql.types import ByteType, LongType, StringType, StructField, StructType

    import osteoguard

    fields = [
        StructField(c, LongType() if c == "age" else StringType(), True)
        for c in osteoguard.WORKLIST_COLUMNS
    ]
    for name in ("_severity_rank", "_patient_rank", "_apart"):
        fields.append(StructField(name, ByteType(), False))
    return StructType(fields)


def _is_uri(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def _local(path: str) -> str:
    return path[len("file://"):] if path.startswith("file://") else path


def input_paths(export_dir: str) -> List[str]:
    """The NDJSON files of a local export (sorted); a URI (hdfs://, s3a://) is passed through."""
    if _is_uri(export_dir):
        return [export_dir]
    root = _local(export_dir)
    files = []
    for pattern in ("*.ndjson", "*.ndjson.gz"):
        files += glob.glob(os.path.join(root, "**", pattern), recursive=True)
    return sorted(set(files))


#: The most input bytes one map task reads (see :func:`map_task_count`); it holds one range's
#: kept lines at a time (~20 % of the range's bytes on the synthetic exports).
MAX_TASK_BYTES = 1 << 30
#: No byte range smaller than this (a smaller file is one range).
MIN_RANGE_BYTES = 8 << 20


def map_task_count(total: int, parallelism: int) -> int:
    """One map task per task slot, or a multiple of that when the input exceeds
    :data:`MAX_TASK_BYTES` per task."""
    p = max(1, parallelism)
    return p * max(1, -(-total // (p * MAX_TASK_BYTES)))


def map_bins(paths: List[str], tasks: int, split_bytes: Optional[int] = None
             ) -> List[List[Tuple[str, int, Optional[int]]]]:
    """The byte ranges of each of ``tasks`` map tasks: every uncompressed file cut into up to
    ``tasks`` ranges of at least :data:`MIN_RANGE_BYTES` (or into ranges of ``split_bytes`` at
    most), each range given to the least-loaded task, so that every task reads about the same
    bytes *of each file* (the cost of a line depends on its resource type); a gzip file whole.
    A task's ranges are in file order."""
    sized = sorted(((os.path.getsize(p), p) for p in paths), key=lambda x: (-x[0], x[1]))
    bins: List[List[Tuple[str, int, Optional[int]]]] = [[] for _ in range(max(1, tasks))]
    load = [0] * len(bins)
    for size, p in sized:
        if p.endswith(".gz") or size == 0:
            k = 1
        elif split_bytes:
            k = max(1, -(-size // split_bytes))
        else:
            k = max(1, min(len(bins), size // MIN_RANGE_BYTES))
        cuts = [size * j // k for j in range(k + 1)]
        for j in range(k):
            i = min(range(len(bins)), key=lambda b: (load[b], b))
            end = cuts[j + 1]
            bins[i].append((p, cuts[j], None if k == 1 or end >= size else end))
            load[i] += end - cuts[j]
    for b in bins:
        b.sort(key=lambda r: (r[0], r[1]))
    return bins


def routed_blobs(spark, export_dir: str, pkeys: List[int], counters=None,
                 split_mb: Optional[int] = None, reader: Optional[str] = None,
                 reader_filter: bool = False, map_tasks: Optional[int] = None):
    """Steps 1-2: the blob rows ``(pkey, meds, lines, prev)`` of the export."""
    paths = input_paths(export_dir)
    if not paths:
        raise SystemExit(f"{export_dir}: no *.ndjson or *.ndjson.gz files")
    sc = spark.sparkContext
    reader = reader or ("text" if _is_uri(export_dir) else "ranges")
    if reader == "ranges":
        total = sum(os.path.getsize(p) for p in paths)
        # Few, large map tasks (issue 21, fourth round): one per task slot, each reading its
        # share of every file (map_bins); the tasks are numbered by spark.range, so no Python
        # RDD feeds them (a createDataFrame over a Python RDD needs a second Python worker per
        # task). Measured in BENCHMARKS.md "Spark".
        tasks = map_tasks or map_task_count(total, sc.defaultParallelism)
        bins = map_bins(paths, tasks, split_mb * (1 << 20) if split_mb else None)
        return spark.range(0, len(bins), 1, len(bins)).mapInArrow(
            lambda it: route_file_blobs(it, bins, pkeys, counters, reader_filter), BLOB_SCHEMA)
    if split_mb:
        spark.conf.set("spark.sql.files.maxPartitionBytes", str(split_mb * (1 << 20)))
    r = spark.read.option("lineSep", "\n")
    if len(paths) == 1 and _is_uri(paths[0]):
        r = r.option("recursiveFileLookup", "true").option("pathGlobFilter", "*.ndjson*")
    from pyspark.sql import functions as F

    lines = r.text(paths).select("value", F.input_file_name().alias("file"))
    return lines.mapInArrow(
        lambda it: route_text_blobs(it, pkeys, counters, reader_filter), BLOB_SCHEMA)


def previous_rows(spark, previous_dir: str):
    """The previous run's rows as the engine reads them: ``(key, prev)`` with ``prev`` the JSON
    of the columns screen's run registry keeps of a row, and the previous run's as-of date."""
    from pyspark.sql import functions as F

    parts = [os.path.join(previous_dir, "worklist.parquet")]
    apart = os.path.join(previous_dir, "resolved.parquet")
    if _is_uri(previous_dir) or os.path.exists(_local(apart)):
        parts.append(apart)
    df = spark.read.parquet(*parts)
    as_of = df.agg(F.max(AS_OF_COLUMN)).first()[0]
    if as_of is None:  # the previous run listed nothing: its as-of date is in its summary
        with open(os.path.join(_local(previous_dir), "summary.json"), encoding="utf-8") as f:
            as_of = json.load(f)["asOf"]
    cols = ["finding_code", "severity", "due_date", "summary", "evidence", "status"]
    rows = df.select(
        F.col("patient_id").alias("key"), F.to_json(F.struct(*cols)).alias("prev")
    )
    return rows, as_of


def worklist(spark, export_dir: str, as_of: str, config: Optional[str] = None,
             partitions: Optional[int] = None, counters=None, previous: Optional[str] = None,
             split_mb: Optional[int] = None, reader: Optional[str] = None, patients=None,
             reader_filter: bool = False, statuses=None, listed_rows=None,
             map_tasks: Optional[int] = None):
    """The worklist rows DataFrame (screen's columns plus ``_severity_rank``, ``_patient_rank``,
    ``_apart``) and its sort order."""
    from pyspark.sql import functions as F

    n = partitions or int(spark.conf.get("spark.sql.shuffle.partitions"))
    pkeys = partition_keys(n)
    blobs = routed_blobs(spark, export_dir, pkeys, counters, split_mb, reader, reader_filter,
                         map_tasks)
    prev_as_of = None
    if previous:
        prev, prev_as_of = previous_rows(spark, previous)
        blobs = blobs.unionByName(
            prev.mapInArrow(lambda it: previous_blobs(it, pkeys), BLOB_SCHEMA))
    schema = spark_schema()
    rows = blobs.repartition(n, "pkey").mapInArrow(
        lambda it: assess_blobs(it, as_of, config, prev_as_of, patients, statuses, listed_rows),
        schema)
    # screen's order (osteoguard_screen::pass2::sort_key): one block per patient, blocks by the
    # patient's gravest finding and earliest due date.
    order = [
        F.col("_patient_rank").desc(),
        F.col("patient_due").asc_nulls_last(),
        F.col("patient_id").asc(),
        F.col("_severity_rank").desc(),
        F.col("due_date").asc_nulls_last(),
        F.col("finding_code").asc(),
    ]
    return rows, order


#: Spark's CSV writer set to write screen's worklist.csv format (minimal quoting, ``""`` inside
#: a quoted field, nothing for null, ``\n`` line ends).
CSV_OPTIONS = {
    "quote": '"',
    "escape": '"',
    "emptyValue": "",
    "nullValue": "",
    "ignoreLeadingWhiteSpace": False,
    "ignoreTrailingWhiteSpace": False,
    "lineSep": "\n",
}


def _write_csv(df, path: str, header: bool):
    w = df.write.mode("overwrite").option("header", header)
    for k, v in CSV_OPTIONS.items():
        w = w.option(k, v)
    w.csv(path)


def _csv_parts(df, out_dir: str, name: str) -> List[str]:
    """Writes ``df`` — ordered across its partitions, as a sort's range partitions are — as
    headerless CSV part files under ``OUT/name.parts/``, one per partition, in parallel; returns
    them in partition order (a part file is named ``part-<partition>-<job>-c<n>.csv``)."""
    parts_dir = os.path.join(out_dir, name + ".parts")
    _write_csv(df, parts_dir, header=False)
    return sorted(glob.glob(os.path.join(_local(parts_dir), "part-*.csv")))


def _concat(target: str, header: str, parts: List[str]):
    """``target``: the header line, then the part files' bytes in the order given."""
    with open(target, "wb") as dst:
        dst.write(header.encode("utf-8"))
        for part in parts:
            with open(part, "rb") as src:
                shutil.copyfileobj(src, dst, 1 << 20)


def _empty_parquet(df, path: str):
    """``path``: a Parquet directory of no rows with ``df``'s columns, written on the driver
    (no Spark job), as Spark writes one: a part file holding the schema, and ``_SUCCESS``."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyspark.sql.pandas.types import to_arrow_schema

    schema = pa.schema([f.with_nullable(True) for f in to_arrow_schema(df.schema)])
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    pq.write_table(schema.empty_table(), os.path.join(path, "part-00000.snappy.parquet"),
                   compression="snappy")
    open(os.path.join(path, "_SUCCESS"), "wb").close()


def write_outputs(rows, order, out_dir: str, as_of: str, single_csv: bool = False,
                  apart_rows: bool = True):
    """Writes worklist.parquet/ (sorted) and resolved.parquet/ (the previous findings listed
    apart; empty without ``apart_rows``, i.e. without ``--previous``), and with ``single_csv``
    worklist.csv (screen's file: the listed rows, then those apart) and resolved.csv."""
    from pyspark.sql import functions as F
    from pyspark import StorageLevel

    import osteoguard

    cols = list(osteoguard.WORKLIST_COLUMNS)
    keep = StorageLevel.MEMORY_AND_DISK
    # The rows are small (worklist rows, not lines): kept, so that the sort's sampling job and
    # its shuffle (and the rows listed apart) do not run the evaluation twice.
    rows = rows.persist(keep)
    listed = rows.where(F.col("_apart") == APART_LISTED)
    apart = rows.where(F.col("_apart") != APART_LISTED)
    if not apart_rows:  # no previous run: nothing is listed apart (an empty plan, no job)
        apart = apart.limit(0)
    # As screen's worklist.csv lists them: the patients no longer in the export, then resolved.
    apart_order = [F.col("_apart").desc(), F.col("patient_id"), F.col("finding_code")]
    stamp = F.lit(as_of).alias(AS_OF_COLUMN)
    unsorted = ((listed, "worklist.csv", order), (apart, "resolved.csv", apart_order))
    sc = rows.sparkSession.sparkContext
    if sc.master.startswith("local"):
        # One sorted output partition per task slot (orderBy: spark.sql.shuffle.partitions,
        # which AQE may coalesce); with one slot no sampling job (a range of one partition).
        slots = sc.defaultParallelism

        def by(df, keys):
            return df.repartitionByRange(slots, *keys).sortWithinPartitions(*keys)
    else:
        def by(df, keys):
            return df.orderBy(*keys)
    listed = by(listed, order).select(*cols, stamp)
    apart = by(apart, apart_order).select(*cols, stamp)
    # The CSV files of a local output: the same sort of the kept rows written as one part per
    # partition in parallel, then joined in partition order (a file copy). Not kept between the
    # two writes: building the cache of the sorted rows cost more than sorting them again
    # (issue 21, fifth round, BENCHMARKS.md "Spark").
    local_csv = single_csv and not _is_uri(out_dir)
    listed.write.mode("overwrite").parquet(os.path.join(out_dir, "worklist.parquet"))
    if apart_rows or _is_uri(out_dir):
        apart.write.mode("overwrite").parquet(os.path.join(out_dir, "resolved.parquet"))
    else:  # no previous run: no rows apart, and no Spark job to write none
        _empty_parquet(apart, os.path.join(_local(out_dir), "resolved.parquet"))
    if local_csv:
        header = ",".join(cols) + "\n"
        main = _csv_parts(listed.select(*cols), out_dir, "worklist.csv")
        extra = _csv_parts(apart.select(*cols), out_dir, "resolved.csv") if apart_rows else []
        local = _local(out_dir)
        # screen lists the rows apart after the worklist rows, in the same file
        _concat(os.path.join(local, "worklist.csv"), header, main + extra)
        _concat(os.path.join(local, "resolved.csv"), header, extra)
        for name in ("worklist.csv", "resolved.csv"):
            shutil.rmtree(os.path.join(local, name + ".parts"), ignore_errors=True)
    elif single_csv:  # a URI: one sorted part file each, under OUT/name.parts/
        for df, name, by in unsorted:
            _write_csv(df.repartition(1).sortWithinPartitions(*by).select(*cols),
                       os.path.join(out_dir, name + ".parts"), header=True)
    rows.unpersist()


def input_error(e: BaseException) -> Optional[str]:
    """The message of the engine's :class:`osteoguard.InputError` (``file:line:column: not valid
    JSON: …``) inside the error of a failed Spark job (Spark wraps a task's Python exception and
    its traceback in its own), or None when the job failed for another reason."""
    import re

    m = re.search(r"osteoguard\.InputError: ([^\n]+)", str(e))
    return m.group(1).strip() if m else None


def _machine_busy() -> Optional[float]:
    """Busy CPU seconds of the whole machine so far (``/proc/stat``: all but idle and iowait),
    or None where there is no ``/proc``. Over the job's span on an otherwise idle machine in
    local mode: the job's CPU (driver and executor JVMs, Python workers, the engine)."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def run(spark, export_dir: str, as_of: str, out_dir: str, config: Optional[str] = None,
        partitions: Optional[int] = None, previous: Optional[str] = None,
        single_csv: bool = False, split_mb: Optional[int] = None,
        reader: Optional[str] = None, reader_filter: bool = False,
        map_tasks: Optional[int] = None) -> dict:
    """The whole job; returns (and writes) the summary."""
    import osteoguard

    if not _is_uri(out_dir):
        os.makedirs(_local(out_dir), exist_ok=True)
        # summary.json is written last: a run that fails leaves none, so no earlier run's
        # summary vouches for this run's (partial) files.
        try:
            os.remove(os.path.join(_local(out_dir), "summary.json"))
        except FileNotFoundError:
            pass
    sc = spark.sparkContext
    counters = {a: sc.accumulator(0) for a in LINE_ACTIONS}
    patients = sc.accumulator(0)
    statuses = _dict_accumulator(sc)
    listed_rows = sc.accumulator(0)
    t0 = time.perf_counter()
    busy0 = _machine_busy()
    rows, order = worklist(spark, export_dir, as_of, config, partitions, counters, previous,
                           split_mb, reader, patients, reader_filter, statuses,
                           listed_rows, map_tasks)
    try:
        write_outputs(rows, order, out_dir, as_of, single_csv, apart_rows=bool(previous))
    except Exception as e:  # a task's error reaches the driver wrapped in Spark's
        message = input_error(e)
        if message is None:
            raise
        raise osteoguard.InputError(message) from None
    elapsed = time.perf_counter() - t0
    busy1 = _machine_busy()
    counts = dict(statuses.value)
    n = listed_rows.value
    summary = {
        "schema": "osteoguard.spark-summary/1",
        "asOf": as_of,
        "exportDir": export_dir,
        "previous": previous,
        "engineVersion": osteoguard.ENGINE_VERSION,
        "master": sc.master,
        "defaultParallelism": sc.defaultParallelism,
        "rows": n,
        "patientsWithFindings": patients.value,
        "status": dict(sorted(counts.items(), key=lambda kv: str(kv[0]))),
        "lines": {a: c.value for a, c in counters.items()},
        "seconds": round(elapsed, 3),
        # The whole machine's busy CPU seconds during the job (meaningful when idle otherwise).
        "machineCpuSeconds": None if busy0 is None or busy1 is None else round(busy1 - busy0, 2),
    }
    if not _is_uri(out_dir):
        with open(os.path.join(_local(out_dir), "summary.json"), "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=2)
            f.write("\n")
    return summary


#: JVM options of a local session (driver = executor) and of local-cluster executors: the C1
#: JIT only. Why: on a job of tens of seconds the C2 compiler's threads were the largest single
#: CPU cost (20,000 patients, local[1]: 86 → 52 CPU-seconds, BENCHMARKS.md "Spark"); set
#: OSTEOGUARD_SPARK_JAVA_OPTIONS="" to keep the JVM's default, e.g. for very long jobs.
JAVA_OPTIONS = "-XX:TieredStopAtLevel=1"


#: Where the driver JVM's class-data-sharing archive is kept (``OSTEOGUARD_SPARK_CDS``: a
#: directory, or ``off``).
CDS_DIR = os.path.join(os.path.expanduser("~"), ".cache", "osteoguard", "spark-cds")


def cds_option() -> str:
    """The driver JVM's AppCDS option for a local session: ``-XX:SharedArchiveFile=A`` when the
    archive ``A`` of this JVM and pyspark exists, otherwise ``-XX:ArchiveClassesAtExit=A.<pid>``
    (this run's JVM writes it when it exits; the next run renames it to ``A``), or ``""`` with
    ``OSTEOGUARD_SPARK_CDS=off``.

    Why: the classes Spark loads (some 15,000: the JVM's start-up, then Catalyst, code
    generation, Arrow and Parquet on the first query) are parsed and verified again by every
    JVM; mapped from an archive they are not. Measured on 20,000 patients, ``local[1]``, idle:
    the session up in 4.8 s instead of 9.2 s (the JVM's CPU 4.6 instead of 8.8 s), the job
    23.7 s instead of 28.9 s (the JVM's CPU in it 13.1 instead of ~17.5 s; BENCHMARKS.md
    "Spark"). The run that writes the archive is slower (the JVM records and dumps its
    classes, ~160 MB, at exit). A stale or broken archive (another JVM, other jars) is ignored
    by the JVM (``-Xshare:auto``): never an error.
    """
    where = os.environ.get("OSTEOGUARD_SPARK_CDS", CDS_DIR)
    if where.lower() in ("off", "0", "false", ""):
        return ""
    import glob as _glob
    import hashlib
    import shutil as _shutil

    import pyspark

    java = os.path.join(os.environ["JAVA_HOME"], "bin", "java") if os.environ.get(
        "JAVA_HOME") else _shutil.which("java")
    if not java:
        return ""
    java = os.path.realpath(java)
    jars = os.path.join(os.path.dirname(pyspark.__file__), "jars")
    key = hashlib.sha256()
    for f in [java] + sorted(_glob.glob(os.path.join(jars, "*.jar"))):
        try:
            st = os.stat(f)
        except OSError:
            continue
        key.update(f"{f}\0{st.st_size}\0{int(st.st_mtime)}\n".encode())
    archive = os.path.join(where, f"spark-{pyspark.__version__}-{key.hexdigest()[:16]}.jsa")
    # Archives written when their run's JVM exited: the first is published (atomically, so a
    # JVM never maps a half-written file under the final name), the others removed. Only once
    # its run is over (the driver's pid gone) and the JVM done dumping (the file untouched for
    # a minute; the dump takes seconds).
    for done in sorted(_glob.glob(archive + ".*")):
        pid = done.rsplit(".", 1)[-1]
        try:
            if pid.isdigit() and not os.path.exists(f"/proc/{pid}") and \
                    time.time() - os.path.getmtime(done) > 60:
                # (an empty one: its JVM did not get to write it)
                if os.path.exists(archive) or os.path.getsize(done) < (1 << 20):
                    os.remove(done)
                else:
                    os.replace(done, archive)
        except OSError:
            pass
    if os.path.exists(archive):
        return f"-XX:SharedArchiveFile={archive}"
    try:
        os.makedirs(where, exist_ok=True)
    except OSError:
        return ""
    if _glob.glob(archive + ".*"):  # another session is writing one: not two at a time
        return ""
    # Named by this (the driver's) pid: its JVM is a child that outlives it by the dump. The
    # empty file tells other sessions that this one writes the archive.
    mine = f"{archive}.{os.getpid()}"
    try:
        open(mine, "ab").close()
    except OSError:
        return ""
    # (Its warnings — classes of signed jars are not archived — are not the user's concern.)
    return f"-XX:ArchiveClassesAtExit={mine} -Xlog:cds=off,cds+dynamic=off"


def java_options() -> str:
    """The driver JVM's options of a local session: ``OSTEOGUARD_SPARK_JAVA_OPTIONS`` if set,
    else :data:`JAVA_OPTIONS` and :func:`cds_option`."""
    if "OSTEOGUARD_SPARK_JAVA_OPTIONS" in os.environ:
        return os.environ["OSTEOGUARD_SPARK_JAVA_OPTIONS"]
    return " ".join(x for x in (JAVA_OPTIONS, cds_option()) if x)


def build_session(master: Optional[str], app: str = "osteoguard-worklist"):
    from pyspark.sql import SparkSession

    java = os.environ.get("OSTEOGUARD_SPARK_JAVA_OPTIONS", JAVA_OPTIONS)
    if master and master.startswith("local") and "PYSPARK_SUBMIT_ARGS" not in os.environ:
        # In local mode the driver JVM is the executor: its heap and JIT must be set before it
        # starts.
        mem = os.environ.get("OSTEOGUARD_SPARK_DRIVER_MEMORY", "2g")
        driver = java_options()
        opts = f" --driver-java-options '{driver}'" if driver else ""
        os.environ["PYSPARK_SUBMIT_ARGS"] = f"--driver-memory {mem}{opts} pyspark-shell"
    b = SparkSession.builder.appName(app)
    if master and master.startswith("local-cluster") and java:
        b = b.config("spark.executor.extraJavaOptions", java)
    if master:
        b = b.master(master)
    # Whole patients per Arrow batch; the per-call overhead is amortised over this many.
    b = b.config("spark.sql.execution.arrow.maxRecordsPerBatch", "2000")
    # The engine's Arrow buffers are `string` (32-bit offsets), what Spark sends by default.
    b = b.config("spark.sql.execution.arrow.useLargeVarTypes", "false")
    # The Python workers' daemon: pyspark's, importing pyspark from its installed package (with
    # its .pyc) instead of compiling pyspark.zip's sources again in every Python process, and
    # pyarrow and the engine once before it forks (osteoguard._daemon; measured in
    # BENCHMARKS.md "Spark", issue 21 fourth round).
    b = b.config("spark.python.daemon.module", "osteoguard._daemon")
    b = b.config("spark.ui.enabled", "false")
    b = b.config("spark.ui.showConsoleProgress", "false")
    if master and master.startswith("local"):
        b = b.config("spark.sql.shuffle.partitions", os.environ.get(
            "OSTEOGUARD_SPARK_SHUFFLE_PARTITIONS", "8"))
    return b.getOrCreate()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m osteoguard.spark",
        description="Screen a FHIR Bulk Data export on Spark; writes the same worklist as "
        "`osteoguard screen` (worklist.parquet/, resolved.parquet/, summary.json; worklist.csv "
        "with --single-csv).",
    )
    p.add_argument("export_dir", help="Bulk Data export directory (NDJSON / NDJSON.gz) or URI")
    p.add_argument("--as-of", required=True, help="evaluation date, YYYY-MM-DD")
    p.add_argument("--out", required=True, help="output directory (local path or URI)")
    p.add_argument("--master", default=None,
                   help="Spark master (default: spark-submit's, else local[*])")
    p.add_argument("--config", default=None, help="site configuration (TOML file)")
    p.add_argument("--partitions", type=int, default=None,
                   help="partitions of the grouped patients (default: spark.sql.shuffle.partitions)")
    p.add_argument("--previous", default=None,
                   help="output directory of the previous run: statuses as osteoguard screen's")
    p.add_argument("--single-csv", action="store_true",
                   help="also write worklist.csv (screen's file) and resolved.csv, one file each "
                   "(a serial step: one task writes all rows)")
    p.add_argument("--split-mb", type=int, default=None,
                   help="largest byte range in MB a map task reads at a time (default: a file's "
                   "share per map task); with the text reader, the input split size")
    p.add_argument("--map-tasks", type=int, default=None,
                   help="map tasks reading the export (default: one per task slot, more for "
                   "an export of over 1 GiB per slot)")
    p.add_argument("--reader", choices=("ranges", "text"), default=None,
                   help="ranges: the engine reads byte ranges of the files (local or shared "
                   "file system; default for a path); text: spark.read.text (default for a URI)")
    p.add_argument("--reader-filter", action="store_true",
                   help="also drop, before the shuffle, lines the FHIR reader would ignore "
                   "(a second parse of each kept line for a smaller shuffle)")
    args = p.parse_args(argv)

    import datetime

    try:
        datetime.date.fromisoformat(args.as_of)
    except ValueError:
        print(f"--as-of {args.as_of!r} is not YYYY-MM-DD", file=sys.stderr)
        return 2
    config = None
    if args.config:
        with open(args.config, encoding="utf-8") as f:
            config = f.read()
        import osteoguard

        try:  # validate on the driver: a bad file fails before any task starts
            osteoguard.worklist_batch([], [], args.as_of, None, config)
        except ValueError as e:
            print(f"{args.config}: {e}", file=sys.stderr)
            return 2
    master = args.master
    if master is None and "SPARK_ENV_LOADED" not in os.environ and \
            "spark.master" not in os.environ.get("PYSPARK_SUBMIT_ARGS", ""):
        master = os.environ.get("OSTEOGUARD_SPARK_MASTER", "local[*]")
    import osteoguard

    spark = build_session(master)
    try:
        summary = run(spark, args.export_dir, args.as_of, args.out, config, args.partitions,
                      args.previous, args.single_csv, args.split_mb, args.reader,
                      args.reader_filter, args.map_tasks)
    except osteoguard.InputError as e:
        # As `osteoguard screen` refuses the same export: exit 2, naming file:line; no
        # summary.json (the outputs are not complete).
        print(f"osteoguard.spark: {e}", file=sys.stderr)
        return 2
    finally:
        spark.stop()
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
