#!/usr/bin/env python3
"""Where a Spark job's CPU goes, per process (benchmark tool, not part of the package).

    python python/profile_spark.py EXPORT_DIR --as-of DATE --out DIR [--master 'local[1]']
        [--perf FILE] [--job-arg=--single-csv ...]

Runs the job in this process (this Python is the driver's Python), and reads the CPU of every
process of the job from ``/proc/<pid>/stat`` (user + system, and ``cutime`` + ``cstime``: the
children a process has reaped, e.g. the pyspark daemon's forked workers that exited) at three
points: before the session, when the session is up, and when the job ends (``run`` returned);
a sampler thread reads the job's processes every 0.2 s too, so that a process that exits in
between is counted with its last reading. The driver JVM's threads are summed by name
(``/proc/<jvm>/task/*/stat``). The whole machine's busy CPU (``/proc/stat``) minus the job's
processes is what else ran on the machine.

``--perf FILE``: also samples the whole machine with ``perf record -e cpu-clock -a`` during the
job (not the session start), and splits the samples of each of the job's processes by shared
object: in a Python worker ``_native*.so`` is the Rust engine, ``libarrow*`` pyarrow, the
interpreter (``libpython`` / ``python3``) Python code (glue, pickling, pyspark's serializers),
``libc`` copies and allocation, ``[kernel]`` system calls (socket and file I/O, page faults).

Prints a JSON record (``--json FILE`` writes it too).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict

TCK = os.sysconf("SC_CLK_TCK")


def stat(pid, tid=None):
    """(comm, ppid, own CPU s, reaped children's CPU s) of a process (or thread), or None."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            s = f.read()
    except OSError:
        return None
    comm = s[s.index("(") + 1:s.rindex(")")]
    v = s[s.rindex(")") + 2:].split()
    # fields from 3 on: state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17)
    return comm, int(v[1]), (int(v[11]) + int(v[12])) / TCK, (int(v[13]) + int(v[14])) / TCK


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return ""


def all_pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def descendants(root):
    """{pid: (comm, ppid, cpu, children_cpu)} of ``root`` and every process below it."""
    procs = {}
    for pid in all_pids():
        s = stat(pid)
        if s:
            procs[pid] = s
    kids = defaultdict(list)
    for pid, s in procs.items():
        kids[s[1]].append(pid)
    out, todo = {}, [root]
    while todo:
        p = todo.pop()
        if p in procs:
            out[p] = procs[p]
            todo.extend(kids.get(p, []))
    return out


def machine_busy():
    with open("/proc/stat", encoding="ascii") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v) - v[3] - v[4]) / TCK


def all_cpu():
    """{pid: (comm, own + reaped children's CPU s)} of every process on the machine."""
    out = {}
    for pid in all_pids():
        s = stat(pid)
        if s:
            out[pid] = (s[0], s[2] + s[3])
    return out


def jvm_threads(jvm):
    """{thread name (digits folded to #): CPU s} of the JVM."""
    out = defaultdict(float)
    try:
        tids = os.listdir(f"/proc/{jvm}/task")
    except OSError:
        return {}
    for t in tids:
        s = stat(jvm, t)
        if s:
            out[re.sub(r"\d+", "#", s[0])] += s[2]
    return dict(out)


class Sampler(threading.Thread):
    """The last reading of every process below the driver (0.2 s period)."""

    def __init__(self, root):
        super().__init__(daemon=True)
        self.root, self.last, self.stop_ev = root, {}, threading.Event()
        self.first_seen = {}
        self.tids = {}
        self.tid = None
        self.own_cpu = 0.0

    def run(self):
        self.tid = threading.get_native_id()
        while not self.stop_ev.is_set():
            self.sample()
            s = stat(os.getpid(), self.tid)
            if s:
                self.own_cpu = s[2]
            self.stop_ev.wait(0.2)

    def sample(self):
        now = time.perf_counter()
        for pid, s in descendants(self.root).items():
            self.first_seen.setdefault(pid, now)
            self.last[pid] = s
            try:
                for t in os.listdir(f"/proc/{pid}/task"):
                    self.tids[int(t)] = pid
            except OSError:
                pass


def role(pid, comm, ppid, me, jvm, daemon):
    if pid == me:
        return "driver Python"
    if pid == jvm:
        return "driver JVM"
    if pid == daemon:
        return "pyspark daemon"
    if ppid == daemon:
        return "Python worker"
    if comm == "java":
        return "executor JVM"
    if comm.startswith("python") and ppid != me:
        return "Python worker"  # (a daemon of an executor JVM, or its workers)
    return comm


def snapshot(me):
    procs = descendants(me)
    jvm = next((p for p, s in procs.items() if s[0] == "java" and s[1] == me), None)
    daemon = next((p for p, s in procs.items() if s[1] == jvm and "pyspark.daemon" in cmdline(p)),
                  None)
    return procs, jvm, daemon


def perf_split(data, pids, tids):
    """{pid: {dso group: samples}} from ``perf report --sort pid,dso`` (its "pid" is the thread:
    ``tids`` maps the job's threads to their process)."""
    r = subprocess.run(["perf", "report", "-i", data, "--sort", "pid,dso", "--stdio", "-n",
                        "--percent-limit", "0"], capture_output=True, text=True, check=False)
    out = defaultdict(lambda: defaultdict(int))
    total = 0
    for line in r.stdout.splitlines():
        m = re.match(r"\s*[\d.]+%\s+(\d+)\s+(\d+):(\S.*?)\s{2,}(\S.*)$", line)
        if not m:
            continue
        n, pid, dso = int(m.group(1)), int(m.group(2)), m.group(4).strip()
        total += n
        if "_native" in dso:
            g = "engine (_native .so)"
        elif "arrow" in dso:
            g = "pyarrow (libarrow*)"
        elif "python" in dso:
            g = "interpreter (libpython)"
        elif dso.startswith("libc") or dso.startswith("ld-linux"):
            g = "libc (copies, malloc)"
        elif "kernel" in dso:
            g = "kernel (syscalls, faults)"
        elif "libjvm" in dso:
            g = "libjvm"
        elif "unknown" in dso or "perf-" in dso or "anon" in dso:
            g = "JIT code / unknown"
        else:
            g = "other: " + dso
        pid = tids.get(pid, pid)
        out[pid if pid in pids else -1][g] += n
    return out, total


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("export")
    p.add_argument("--as-of", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--master", default="local[1]")
    p.add_argument("--driver-memory", default="6g")
    p.add_argument("--perf", default=None, help="perf.data path: sample the machine in the job")
    p.add_argument("--perf-freq", type=int, default=499)
    p.add_argument("--json", default=None)
    p.add_argument("--single-csv", action="store_true")
    p.add_argument("--conf", action="append", default=[], help="KEY=VALUE Spark settings")
    p.add_argument("--partitions", type=int, default=None)
    p.add_argument("--split-mb", type=int, default=None)
    p.add_argument("--map-tasks", type=int, default=None)
    a = p.parse_args(argv)

    from osteoguard.spark import build_session, java_options, run

    me = os.getpid()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    opts = java_options()
    conf = f"--driver-memory {a.driver_memory}"
    if opts:
        conf += f" --driver-java-options '{opts}'"
    for kv in a.conf:
        conf += f" --conf {kv}"
    os.environ["PYSPARK_SUBMIT_ARGS"] = conf + " pyspark-shell"

    t0 = time.perf_counter()
    busy0 = machine_busy()
    spark = build_session(a.master, "osteoguard-profile")
    spark.sparkContext.setLogLevel("ERROR")
    t_up = time.perf_counter()
    busy_up = machine_busy()
    procs_up, jvm, _ = snapshot(me)
    threads_up = jvm_threads(jvm) if jvm else {}
    others_up = all_cpu()
    sampler = Sampler(me)
    sampler.start()
    perf = None
    if a.perf:
        perf = subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F",
                                 str(a.perf_freq), "-a", "-o", a.perf],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # perf is up
    t1 = time.perf_counter()
    busy1 = machine_busy()
    kw = {"map_tasks": a.map_tasks} if a.map_tasks else {}
    summary = run(spark, a.export, a.as_of, a.out, partitions=a.partitions,
                  single_csv=a.single_csv, split_mb=a.split_mb, **kw)
    t2 = time.perf_counter()
    busy2 = machine_busy()
    sampler.sample()
    procs_end, jvm, daemon = snapshot(me)
    threads_end = jvm_threads(jvm) if jvm else {}
    others_end = all_cpu()
    if perf:
        perf.send_signal(signal.SIGINT)
        perf.wait()
    sampler.stop_ev.set()
    sampler.join()
    sampler_cpu = sampler.own_cpu
    spark.stop()

    # Per process: CPU in the job = last reading - reading at session-up (0 if it started after).
    last = dict(sampler.last)
    last.update(procs_end)
    per = []
    for pid, s in last.items():
        comm, ppid, cpu, ccpu = s
        before = procs_up.get(pid)
        c0 = (before[2] + before[3]) if before else 0.0
        exited = pid not in procs_end
        per.append({"pid": pid, "role": role(pid, comm, ppid, me, jvm, daemon), "comm": comm,
                    "ppid": ppid, "cpuS": round(cpu + ccpu - c0, 2),
                    "ownS": round(cpu - (before[2] if before else 0.0), 2),
                    "reapedChildrenS": round(ccpu - (before[3] if before else 0.0), 2),
                    "exitedBeforeEnd": exited})
    per.sort(key=lambda r: -r["cpuS"])
    # The daemon's reaped children are its workers: do not count them twice.
    by_role = defaultdict(float)
    for r in per:
        if r["role"] == "pyspark daemon":
            by_role["pyspark daemon (own)"] += r["ownS"]
            by_role["Python workers (exited, reaped by the daemon)"] += r["reapedChildrenS"]
        elif r["role"] == "Python worker" and r["exitedBeforeEnd"] and daemon:
            continue  # already in the daemon's reaped children
        else:
            by_role[r["role"]] += r["cpuS"]
    if sampler_cpu is not None:
        by_role["driver Python"] -= sampler_cpu
        by_role["profiler (this tool's sampler thread)"] = sampler_cpu
    if perf:
        by_role["perf record"] = 0.0
    ours = set(last)
    other = defaultdict(float)
    for pid, (comm, c) in others_end.items():
        if pid in ours:
            continue
        d = c - others_up.get(pid, (comm, 0.0))[1] if pid in others_up else c
        if d > 0.05:
            other[comm] += d
    thr = {k: round(v - threads_up.get(k, 0.0), 2) for k, v in threads_end.items()}
    thr = dict(sorted(((k, v) for k, v in thr.items() if v >= 0.05), key=lambda kv: -kv[1]))
    result = {
        "master": a.master,
        "sessionUpS": round(t_up - t0, 2),
        "machineCpuSessionUpS": round(busy_up - busy0, 2),
        "jobS": round(t2 - t1, 2),
        "jobSummaryS": summary["seconds"],
        "machineCpuJobS": round(busy2 - busy1, 2),
        "jobCpuByRole": {k: round(v, 2) for k, v in sorted(by_role.items(), key=lambda kv: -kv[1])},
        "jobProcessesCpuS": round(sum(by_role.values()), 2),
        "otherProcessesCpuS": dict(sorted(((k, round(v, 2)) for k, v in other.items()),
                                          key=lambda kv: -kv[1])[:15]),
        "jvmThreadsInJobS": thr,
        "processes": per[:30],
        "loadAfter": os.getloadavg()[0],
    }
    if perf:
        pids = {r["pid"]: r["role"] for r in per}
        split, total = perf_split(a.perf, pids, sampler.tids)
        period = 1.0 / a.perf_freq
        roles = defaultdict(lambda: defaultdict(float))
        for pid, groups in split.items():
            name = pids.get(pid, "not the job's")
            for g, n in groups.items():
                roles[name][g] += n * period
        result["perfSamples"] = total
        result["perfSecondsByRoleAndDso"] = {
            r: dict(sorted(((g, round(v, 2)) for g, v in gs.items()), key=lambda kv: -kv[1]))
            for r, gs in roles.items()}
    text = json.dumps(result, indent=2)
    print(text)
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
