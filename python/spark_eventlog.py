#!/usr/bin/env python3
"""Where a Spark job's time goes, from its event log (benchmark tool, not part of the package).

    python python/spark_eventlog.py EVENT_LOG_FILE_OR_DIR [--json]

Run the job with ``--conf spark.eventLog.enabled=true --conf spark.eventLog.dir=file:///DIR``
(``bench_spark.py --event-log DIR`` does it). Prints one line per stage: wall time (submission to
completion), tasks, the sum of the tasks' run time (``Executor Run Time``: the task thread's wall
time, which includes waiting for the Python worker) and of their JVM CPU time (``Executor CPU
Time``: the task thread only, not the Python worker), GC, input bytes, shuffle read / write, the
largest task's share of the stage's input (skew), and the SQL metrics of the Python operators
(data sent to / returned from the Python workers); then one line per job (start, wall time, the
driver's gap before it, the stages it ran), and the sum of the gaps between jobs.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from collections import defaultdict

PY_METRICS = ("data sent to Python workers", "data returned from Python workers")


def log_files(path):
    """The event log's files: a file, or the newest log under a directory (Spark 4 writes
    ``eventlog_v2_<app>/events_<n>_<app>[.zstd]``, rolled in parts)."""
    if os.path.isfile(path):
        return [path]
    if glob.glob(os.path.join(path, "events_*")):
        path = os.path.dirname(os.path.join(path, ""))
        return sorted(glob.glob(os.path.join(path, "events_*")),
                      key=lambda p: int(os.path.basename(p).split("_")[1]))
    apps = sorted(glob.glob(os.path.join(path, "*")), key=os.path.getmtime)
    if not apps:
        raise SystemExit(f"{path}: no event log")
    newest = apps[-1]
    if os.path.isfile(newest):
        return [newest]
    parts = glob.glob(os.path.join(newest, "events_*"))
    return sorted(parts, key=lambda p: int(os.path.basename(p).split("_")[1]))


def events(path):
    import subprocess

    for name in log_files(path):
        if name.endswith(".zstd"):  # Spark 4 compresses event logs with zstd
            text = subprocess.run(["zstd", "-dc", name], check=True, capture_output=True).stdout
            lines = text.decode("utf-8").splitlines()
        else:
            with open(name, encoding="utf-8") as f:
                lines = f.read().splitlines()
        for line in lines:
            line = line.strip()
            if line:
                yield json.loads(line)


def stages(path):
    st = {}
    tasks = defaultdict(list)
    jobs = {}
    for e in events(path):
        kind = e.get("Event")
        if kind == "SparkListenerStageCompleted":
            i = e["Stage Info"]
            st[i["Stage ID"]] = i
        elif kind == "SparkListenerTaskEnd":
            tasks[e["Stage ID"]].append(e)
        elif kind == "SparkListenerJobStart":
            infos = e.get("Stage Infos") or []
            jobs[e["Job ID"]] = {"start": e["Submission Time"], "stages": e["Stage IDs"],
                                 "name": infos[-1].get("Stage Name", "") if infos else ""}
        elif kind == "SparkListenerJobEnd":
            jobs.setdefault(e["Job ID"], {})["end"] = e["Completion Time"]
        elif kind == "SparkListenerApplicationStart":
            app_start = e["Timestamp"]
        elif kind == "SparkListenerApplicationEnd":
            app_end = e["Timestamp"]
    out = []
    for sid in sorted(st):
        i = st[sid]
        ts = tasks.get(sid, [])
        m = [t.get("Task Metrics") or {} for t in ts]
        inputs = [x.get("Input Metrics", {}).get("Bytes Read", 0) for x in m]
        sr = [x.get("Shuffle Read Metrics", {}) for x in m]
        sw = [x.get("Shuffle Write Metrics", {}) for x in m]
        run = [x.get("Executor Run Time", 0) for x in m]
        acc = defaultdict(int)
        for t in ts:
            for a in (t.get("Task Info") or {}).get("Accumulables", []):
                if a.get("Name") in PY_METRICS:
                    try:
                        acc[a["Name"]] += int(a.get("Update", 0))
                    except (TypeError, ValueError):
                        pass
        sub, comp = i.get("Submission Time"), i.get("Completion Time")
        out.append({
            "stage": sid,
            "name": i.get("Stage Name", "")[:60],
            "wallS": round((comp - sub) / 1000, 2) if sub and comp else None,
            "tasks": len(ts),
            "runS": round(sum(run) / 1000, 2),
            "maxTaskS": round(max(run) / 1000, 2) if run else 0,
            "jvmCpuS": round(sum(x.get("Executor CPU Time", 0) for x in m) / 1e9, 2),
            "gcS": round(sum(x.get("JVM GC Time", 0) for x in m) / 1000, 2),
            "deserS": round(sum(x.get("Executor Deserialize Time", 0) for x in m) / 1000, 2),
            "inputMB": round(sum(inputs) / 1e6, 1),
            "maxTaskInputShare": round(max(inputs) / sum(inputs), 2) if inputs and sum(inputs) else None,
            "shuffleReadMB": round(sum(s.get("Remote Bytes Read", 0) + s.get("Local Bytes Read", 0)
                                       for s in sr) / 1e6, 1),
            "shuffleWriteMB": round(sum(s.get("Shuffle Bytes Written", 0) for s in sw) / 1e6, 1),
            "shuffleWriteS": round(sum(s.get("Shuffle Write Time", 0) for s in sw) / 1e9, 2),
            "toPythonMB": round(acc[PY_METRICS[0]] / 1e6, 1),
            "fromPythonMB": round(acc[PY_METRICS[1]] / 1e6, 1),
        })
    span = None
    starts = [j["start"] for j in jobs.values() if "start" in j]
    ends = [j["end"] for j in jobs.values() if "end" in j]
    if starts and ends:
        span = round((max(ends) - min(starts)) / 1000, 2)
    return out, span, job_rows(jobs, st)


def job_rows(jobs, st):
    """One row per Spark job in submission order: its start (from the first job's), wall time,
    the driver's gap before it (since the previous job ended: planning, commits, Python), the
    stages it ran (not those skipped: their shuffle output was reused) and its call site."""
    rows, first, prev_end = [], None, None
    for jid in sorted(jobs, key=lambda j: jobs[j].get("start", 0)):
        j = jobs[jid]
        if "start" not in j or "end" not in j:
            continue
        first = j["start"] if first is None else first
        ran = [s for s in j.get("stages", []) if s in st and st[s].get("Submission Time")]
        rows.append({
            "job": jid,
            "startS": round((j["start"] - first) / 1000, 2),
            "wallS": round((j["end"] - j["start"]) / 1000, 2),
            "gapBeforeS": None if prev_end is None else round((j["start"] - prev_end) / 1000, 2),
            "stagesRun": ran,
            "tasks": sum(st[s].get("Number of Tasks", 0) for s in ran),
            "name": j.get("name", "")[:50],
        })
        prev_end = j["end"] if prev_end is None else max(prev_end, j["end"])
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("path")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    rows, span, jobs = stages(a.path)
    if a.json:
        print(json.dumps({"stages": rows, "jobs": jobs, "jobsSpanS": span}, indent=2))
        return 0
    cols = ["stage", "name", "wallS", "tasks", "runS", "maxTaskS", "jvmCpuS", "gcS", "inputMB",
            "maxTaskInputShare", "shuffleReadMB", "shuffleWriteMB", "toPythonMB", "fromPythonMB"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")
    print(f"\nfirst job submitted → last job ended: {span} s")
    jcols = ["job", "startS", "wallS", "gapBeforeS", "stagesRun", "tasks", "name"]
    print("\n| " + " | ".join(jcols) + " |")
    print("|" + "---|" * len(jcols))
    for r in jobs:
        print("| " + " | ".join(str(r[c]) for c in jcols) + " |")
    gaps = [r["gapBeforeS"] for r in jobs if r["gapBeforeS"]]
    print(f"\n{len(jobs)} jobs; the driver's gaps between them: {round(sum(gaps), 2)} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
