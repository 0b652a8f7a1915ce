"""The osteoguard worklist on Apache Spark.

    python -m osteoguard.spark EXPORT_DIR --as-of DATE --out DIR [--master local[2]]
    spark-submit --archives env.tar.gz#env ... -m osteoguard.spark ...   (see docs/spark.md)

Plan (every step on the executors but the small Medication collect):

1. read every ``*.ndjson`` / ``*.ndjson.gz`` line of the Bulk Data export (sub-directories too);
2. ``mapInArrow``: route each line with the Rust engine (:func:`osteoguard.classify_lines`:
   ``osteoguard screen``'s router, then the FHIR reader's own disposition) and drop what no
   rule uses *before* the shuffle; a line that cannot change a finding but names a patient is
   shipped as its patient id alone (once per batch);
3. Medication resources (no patient of their own) are collected and broadcast;
4. group by patient id (the one shuffle; ``collect_list``);
5. ``mapInArrow`` over batches of whole patients: :func:`osteoguard.worklist_batch` evaluates
   many patients per call with screen's own evaluation and row code;
6. sort in screen's worklist order (most severe first, then earliest due date — none last —,
   patient id, finding code) and write ``worklist.parquet/`` and ``worklist.csv`` with
   screen's columns, plus ``summary.json``.

The ``status`` column (new / persisting) comes from screen's run registry, which this job does
not keep: it is empty here.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import sys
import time
from typing import Iterator, List, Optional

LINE_ACTIONS = (
    "keep",
    "key-only",
    "shared",
    "drop:blank",
    "drop:not-fhir",
    "drop:irrelevant",
    "drop:no-patient",
)


def _routed_schema():
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("kind", pa.string(), nullable=False),
            pa.field("key", pa.string()),
            pa.field("line", pa.string()),
        ]
    )


def route_batches(batches, counters=None) -> Iterator:
    """mapInArrow body of step 2: ``value`` lines in, ``(kind, key, line)`` rows out."""
    import pyarrow as pa

    import osteoguard

    schema = _routed_schema()
    for batch in batches:
        lines = batch.column(0).to_pylist()
        actions, ids = osteoguard.classify_lines(lines)
        kinds: List[str] = []
        keys: List[Optional[str]] = []
        out: List[Optional[str]] = []
        marked = set()
        counts = dict.fromkeys(LINE_ACTIONS, 0)
        for line, action, key in zip(lines, actions, ids):
            counts[action] += 1
            if action == "keep":
                kinds.append("p")
                keys.append(key)
                out.append(line)
            elif action == "key-only":
                if key not in marked:
                    marked.add(key)
                    kinds.append("p")
                    keys.append(key)
                    out.append(None)
            elif action == "shared":
                kinds.append("m")
                keys.append(key)
                out.append(line)
        if counters is not None:
            for a, n in counts.items():
                if n:
                    counters[a].add(n)
        if kinds:
            yield pa.RecordBatch.from_arrays(
                [
                    pa.array(kinds, pa.string()),
                    pa.array(keys, pa.string()),
                    pa.array(out, pa.string()),
                ],
                schema=schema,
            )


def assess_batches(batches, as_of: str, shared_bc, config: Optional[str]) -> Iterator:
    """mapInArrow body of step 5: ``(key, lines)`` rows (whole patients) in, worklist rows out."""
    import osteoguard

    shared = shared_bc.value if shared_bc is not None else None
    for batch in batches:
        keys = batch.column(0).to_pylist()
        groups = batch.column(1).to_pylist()
        cols = osteoguard.worklist_batch(keys, groups, as_of, shared, config)
        if cols["patient_id"]:
            yield osteoguard._to_arrow(cols)


def spark_schema():
    """The worklist schema in Spark terms (screen's columns, age as a number)."""
    from pyspark.sql.types import ByteType, LongType, StringType, StructField, StructType

    import osteoguard

    fields = [
        StructField(c, LongType() if c == "age" else StringType(), True)
        for c in osteoguard.WORKLIST_COLUMNS
    ]
    fields.append(StructField("_severity_rank", ByteType(), False))
    fields.append(StructField("_patient_rank", ByteType(), False))
    return StructType(fields)


def input_paths(export_dir: str) -> List[str]:
    """The NDJSON files of a local export (sorted); a URI (hdfs://, s3a://) is passed through."""
    if "://" in export_dir and not export_dir.startswith("file://"):
        return [export_dir]
    root = export_dir[len("file://"):] if export_dir.startswith("file://") else export_dir
    files = []
    for pattern in ("*.ndjson", "*.ndjson.gz"):
        files += glob.glob(os.path.join(root, "**", pattern), recursive=True)
    return sorted(set(files))


def worklist(spark, export_dir: str, as_of: str, config: Optional[str] = None,
             partitions: Optional[int] = None, counters=None):
    """The sorted worklist DataFrame (screen's columns plus ``_severity_rank``)."""
    from pyspark.sql import functions as F
    from pyspark import StorageLevel

    paths = input_paths(export_dir)
    if not paths:
        raise SystemExit(f"{export_dir}: no *.ndjson or *.ndjson.gz files")
    reader = spark.read.option("lineSep", "\n")
    if len(paths) == 1 and "://" in paths[0]:
        reader = reader.option("recursiveFileLookup", "true").option("pathGlobFilter", "*.ndjson*")
    lines = reader.text(paths)

    routed = lines.mapInArrow(
        lambda it: route_batches(it, counters), "kind string, key string, line string"
    ).persist(StorageLevel.MEMORY_AND_DISK)

    shared_rows = routed.where(F.col("kind") == "m").select("key", "line").collect()
    shared = [(r["key"], r["line"]) for r in shared_rows]
    shared_bc = spark.sparkContext.broadcast(shared) if shared else None

    grouped = routed.where(F.col("kind") == "p").groupBy("key").agg(
        F.collect_list("line").alias("lines")
    )
    if partitions:
        grouped = grouped.repartition(partitions, "key")

    schema = spark_schema()
    rows = grouped.mapInArrow(
        lambda it: assess_batches(it, as_of, shared_bc, config), schema
    )
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
    return rows, order, routed


def write_outputs(rows, order, out_dir: str, single_csv: bool = True) -> int:
    """Writes worklist.parquet/ (sorted) and worklist.csv; returns the row count."""
    import osteoguard

    cols = list(osteoguard.WORKLIST_COLUMNS)
    rows = rows.persist()
    n = rows.count()
    rows.orderBy(*order).select(*cols).write.mode("overwrite").parquet(
        os.path.join(out_dir, "worklist.parquet")
    )
    csv_dir = os.path.join(out_dir, "worklist.csv.parts")
    (
        rows.repartition(1)
        .sortWithinPartitions(*order)
        .select(*cols)
        .write.mode("overwrite")
        .option("header", True)
        .option("quote", '"')
        .option("escape", '"')
        .option("emptyValue", "")
        .option("nullValue", "")
        .option("ignoreLeadingWhiteSpace", False)
        .option("ignoreTrailingWhiteSpace", False)
        .option("lineSep", "\n")
        .csv(csv_dir)
    )
    if single_csv and "://" not in out_dir:
        parts = sorted(glob.glob(os.path.join(csv_dir, "part-*.csv")))
        target = os.path.join(out_dir, "worklist.csv")
        if parts:
            shutil.move(parts[0], target)
        else:  # no rows: header only, as screen writes it
            with open(target, "w", encoding="utf-8") as f:
                f.write(",".join(cols) + "\n")
        shutil.rmtree(csv_dir, ignore_errors=True)
    rows.unpersist()
    return n


def run(spark, export_dir: str, as_of: str, out_dir: str, config: Optional[str] = None,
        partitions: Optional[int] = None) -> dict:
    """The whole job; returns (and writes) the summary."""
    import osteoguard

    os.makedirs(out_dir, exist_ok=True) if "://" not in out_dir else None
    sc = spark.sparkContext
    counters = {a: sc.accumulator(0) for a in LINE_ACTIONS}
    t0 = time.perf_counter()
    rows, order, routed = worklist(spark, export_dir, as_of, config, partitions, counters)
    n = write_outputs(rows, order, out_dir)
    patients = rows.select("patient_id").distinct().count() if n else 0
    elapsed = time.perf_counter() - t0
    routed.unpersist()
    summary = {
        "schema": "osteoguard.spark-summary/1",
        "asOf": as_of,
        "exportDir": export_dir,
        "engineVersion": osteoguard.ENGINE_VERSION,
        "master": sc.master,
        "defaultParallelism": sc.defaultParallelism,
        "rows": n,
        "patientsWithFindings": patients,
        "lines": {a: c.value for a, c in counters.items()},
        "seconds": round(elapsed, 3),
    }
    if "://" not in out_dir:
        with open(os.path.join(out_dir, "summary.json"), "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=2)
            f.write("\n")
    return summary


def build_session(master: Optional[str], app: str = "osteoguard-worklist"):
    from pyspark.sql import SparkSession

    if master and master.startswith("local") and "PYSPARK_SUBMIT_ARGS" not in os.environ:
        # In local mode the driver JVM is the executor: its heap must be set before it starts.
        mem = os.environ.get("OSTEOGUARD_SPARK_DRIVER_MEMORY", "2g")
        os.environ["PYSPARK_SUBMIT_ARGS"] = f"--driver-memory {mem} pyspark-shell"
    b = SparkSession.builder.appName(app)
    if master:
        b = b.master(master)
    # Whole patients per Arrow batch; the per-call overhead is amortised over this many.
    b = b.config("spark.sql.execution.arrow.maxRecordsPerBatch", "2000")
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
        "`osteoguard screen` (worklist.parquet/, worklist.csv, summary.json).",
    )
    p.add_argument("export_dir", help="Bulk Data export directory (NDJSON / NDJSON.gz) or URI")
    p.add_argument("--as-of", required=True, help="evaluation date, YYYY-MM-DD")
    p.add_argument("--out", required=True, help="output directory (local path or URI)")
    p.add_argument("--master", default=None,
                   help="Spark master (default: spark-submit's, else local[*])")
    p.add_argument("--config", default=None, help="site configuration (TOML file)")
    p.add_argument("--partitions", type=int, default=None,
                   help="partitions of the grouped patients (default: spark.sql.shuffle.partitions)")
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
    spark = build_session(master)
    try:
        summary = run(spark, args.export_dir, args.as_of, args.out, config, args.partitions)
    finally:
        spark.stop()
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
