#!/usr/bin/env python3
"""Benchmark: `osteoguard screen` and the Spark job on the same synthetic export, in one session.

    python python/bench_spark.py --patients 100000 --work /tmp/ogbench \
        --osteoguard target/release/osteoguard [--masters 'local[1],local[2]']

Steps: `osteoguard synth` (skipped if WORK/export exists with the same patient count), then
`osteoguard screen` (all cores), then `python -m osteoguard.spark --single-csv` once per master,
each in a fresh process (JVM start-up included in the wall time; the job's own time, from reading
the export to the last file written, is reported too). Every Spark worklist is checked to be the
same as screen's (status and reason blanked, so that a plan without statuses compares too).
CPU: screen's from getrusage; a Spark run's as the whole machine's busy CPU time during the run
(/proc/stat: meaningful on an otherwise idle machine; the JVM and its Python workers are not all
reaped children). `--event-log DIR` writes Spark event logs (see spark_eventlog.py);
`--job-script FILE` runs another version of the job (e.g. the previous plan, for a before/after).
Prints a JSON record and a Markdown table; the load average is recorded before every run.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path


def sh(cmd, env=None):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env)
    return time.perf_counter() - t


def cpu_children():
    """User + system CPU seconds of every finished child process (and their reaped children)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def machine_busy():
    """Busy CPU seconds of the whole machine so far (/proc/stat: all but idle and iowait)."""
    with open("/proc/stat", encoding="ascii") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def worklist_digest(path: Path):
    """(rows, sha256) of a worklist.csv with the status and status_reason columns blanked."""
    h = hashlib.sha256()
    n = 0
    with open(path, newline="", encoding="utf-8") as f:
        r = csv.reader(f)
        header = next(r)
        status = header.index("status")
        reason = header.index("status_reason")
        h.update(("\x1f".join(header) + "\n").encode())
        for row in r:
            row[status] = ""
            row[reason] = ""
            h.update(("\x1f".join(row) + "\n").encode())
            n += 1
    return n, h.hexdigest()


def loadavg():
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--patients", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--work", default="/tmp/osteoguard-bench")
    p.add_argument("--osteoguard", default="target/release/osteoguard",
                   help="binary with `screen` and `synth` subcommands")
    p.add_argument("--masters", default="local[1],local[2]")
    p.add_argument("--driver-memory", default="6g")
    p.add_argument("--java-options", default=None,
                   help="driver JVM options (default: the job's own for a local session, "
                   "osteoguard.spark.java_options(): the C1 JIT and the class-data archive, "
                   "which the first run writes; PYSPARK_SUBMIT_ARGS set here replaces the job's)")
    p.add_argument("--skip-screen", action="store_true")
    p.add_argument("--event-log", default=None, help="directory for Spark event logs")
    p.add_argument("--job-script", default=None,
                   help="run this file instead of `-m osteoguard.spark` (a previous plan)")
    p.add_argument("--extra", default="", help="extra arguments for the Spark job")
    args = p.parse_args(argv)

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    export = work / "export"
    manifest = export / "synth-manifest.json"
    result = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "patients": args.patients,
        "seed": args.seed,
    }
    if not (manifest.exists() and json.loads(manifest.read_text()).get("patients") == args.patients):
        result["synthSeconds"] = round(sh([args.osteoguard, "synth", "--patients", str(args.patients),
                                           "--seed", str(args.seed), "--out", str(export), "-q"]), 2)
    m = json.loads(manifest.read_text())
    as_of = m.get("asOf", "2025-06-30")
    result.update(asOf=as_of, exportLines=m.get("lines"), exportBytes=m.get("bytes"))

    runs = []
    if not args.skip_screen:
        out = work / "screen"
        import shutil

        shutil.rmtree(out, ignore_errors=True)  # a fresh registry: a first run
        load = loadavg()
        cpu0 = cpu_children()
        secs = sh([args.osteoguard, "screen", str(export), "--as-of", as_of, "--out", str(out),
                   "--format", "csv", "-q"])
        rows, digest = worklist_digest(out / "worklist.csv")
        runs.append({"run": "osteoguard screen (all cores)", "seconds": round(secs, 2),
                     "patientsPerSecond": round(args.patients / secs, 1), "rows": rows,
                     "digest": digest, "loadBefore": load,
                     "cpuSeconds": round(cpu_children() - cpu0, 1),
                     "cpuMsPerPatient": round(1000 * (cpu_children() - cpu0) / args.patients, 3)})

    env = dict(os.environ)
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    env.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if args.java_options is None:
        from osteoguard.spark import java_options

        args.java_options = java_options()
    conf = f"--driver-memory {args.driver_memory}"
    if args.java_options:
        conf += f" --driver-java-options '{args.java_options}'"
    if args.event_log:
        Path(args.event_log).mkdir(parents=True, exist_ok=True)
        conf += (f" --conf spark.eventLog.enabled=true"
                 f" --conf spark.eventLog.dir=file://{Path(args.event_log).resolve()}")
    env["PYSPARK_SUBMIT_ARGS"] = f"{conf} pyspark-shell"
    result["driverJavaOptions"] = args.java_options
    job = [args.job_script] if args.job_script else ["-m", "osteoguard.spark", "--single-csv"]
    import re

    # Commas inside brackets belong to the master (`local-cluster[2,1,1024]`).
    for master in [x.strip() for x in re.split(r",(?![^\[]*\])", args.masters) if x.strip()]:
        name = master.replace("[", "-").replace("]", "").replace(",", "-").replace("*", "all")
        out = work / ("spark-" + name)
        load = loadavg()
        busy0 = machine_busy()
        secs = sh([sys.executable, *job, str(export), "--as-of", as_of,
                   "--out", str(out), "--master", master, *args.extra.split()], env=env)
        busy = machine_busy() - busy0
        summary = json.loads((out / "summary.json").read_text())
        rows, digest = worklist_digest(out / "worklist.csv")
        runs.append({"run": f"Spark job, {master}", "seconds": round(secs, 2),
                     "jobSeconds": summary["seconds"],
                     "patientsPerSecond": round(args.patients / secs, 1),
                     "jobPatientsPerSecond": round(args.patients / summary["seconds"], 1),
                     "machineCpuSeconds": round(busy, 1),
                     "cpuMsPerPatient": round(1000 * busy / args.patients, 3),
                     "jobCpuSeconds": summary.get("machineCpuSeconds"),
                     "jobCpuMsPerPatient": None if summary.get("machineCpuSeconds") is None
                     else round(1000 * summary["machineCpuSeconds"] / args.patients, 3),
                     "rows": rows, "digest": digest, "lines": summary["lines"],
                     "loadBefore": load, "loadAfter": loadavg()})
    result["runs"] = runs
    digests = {r["digest"] for r in runs}
    result["sameWorklist"] = len(digests) == 1
    spark = {r["run"]: r for r in runs if r["run"].startswith("Spark")}
    one, two = spark.get("Spark job, local[1]"), spark.get("Spark job, local[2]")
    if one and two:
        result["scaling_local1_to_local2"] = round(one["seconds"] / two["seconds"], 2)
        result["scaling_job_local1_to_local2"] = round(one["jobSeconds"] / two["jobSeconds"], 2)

    print(json.dumps(result, indent=2))
    print()
    print("| run | wall s | patients/s | job s (excl. JVM start) | CPU ms/patient (run) "
          "| CPU ms/patient (job span) | load before | rows |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        print(f"| {r['run']} | {r['seconds']} | {r['patientsPerSecond']} | "
              f"{r.get('jobSeconds', '–')} | {r.get('cpuMsPerPatient', '–')} | "
              f"{r.get('jobCpuMsPerPatient', '–')} | {r['loadBefore']} | {r['rows']} |")
    (work / "bench-result.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["sameWorklist"] else 1


if __name__ == "__main__":
    sys.exit(main())
