#!/usr/bin/env python3
"""Differential: `osteoguard programme-report` vs the independent oracle (oracle.py) on generated populations.

usage: diff.py BINARY DIR [DIR ...] [--jobs N] [--show N] [--patient ID]
Each DIR holds populations gK/ (Bulk NDJSON) with gK.meta.json (period, as_of). Runs
`BINARY programme-report DIR/gK --period-start P0 --period-end P1 --as-of D --format json` per population,
compares per patient the index outcome and the status of KPIs 1-10 (true/false/unknown/pending/excluded) read
from the report's drill-down (`patients[].index.kind`, `patients[].kpis[].status`), checks that the summary
counts agree with the drill-down, groups divergences into classes (KPI, oracle value, engine value), prints
counts with the smallest examples (engine reason beside), exits 1 when any divergence remains.
"""
import argparse
import collections
import concurrent.futures as cf
import datetime as dt
import glob
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oracle import group_by_patient, oracle_population  # noqa: E402

LABEL = {}


def load(gdir):
    res = {}
    for f in glob.glob(os.path.join(gdir, "*.ndjson")):
        with open(f) as fh:
            for line in fh:
                if line.strip():
                    x = json.loads(line)
                    res.setdefault(x["resourceType"], []).append(x)
    return res


def run_engine(binary, gdir, meta):
    p = subprocess.run([binary, "programme-report", gdir, "--period-start", meta["period_start"],
                        "--period-end", meta["period_end"], "--as-of", meta["as_of"], "--format", "json"]
                       + (["--config", meta["config"]] if meta.get("config") else []),
                       capture_output=True, text=True)
    if p.returncode != 0:
        return None, p.stderr.strip()[:400]
    return json.loads(p.stdout), None


def one(binary, gdir):
    with open(gdir + ".meta.json") as f:
        meta = json.load(f)
    res = load(gdir)
    d = dt.date.fromisoformat
    config = {}
    if meta.get("config"):
        config = {"exercise": {("http://snomed.info/sct", "229065009")},
                  "falls": {("http://example.org/local", "FALLS-RISK")}}
    orc = oracle_population(res, d(meta["period_start"]), d(meta["period_end"]), d(meta["as_of"]), config)
    eng, err = run_engine(binary, gdir, meta)
    return gdir, meta, res, orc, eng, err


def level(kpi, pct):
    """§13: "< 50 % (red), 50–80 % (amber), > 80 % (green); for KPI 6 the paper's level is 50 %"."""
    if pct is None or kpi == 1:
        return None
    if kpi == 6:
        return "green" if pct >= 50 else "red"
    return "red" if pct < 50 else ("amber" if pct <= 80 else "green")


def close(a, b):
    return (a is None and b is None) or (a is not None and b is not None and abs(a - b) < 1e-9)


def check_summary(summary):
    """proportions = TRUE / (TRUE + FALSE), lower bound with UNKNOWN, levels, KPI 11 (§13, §1.4)"""
    out = []
    tot_dec = tot_app = 0
    by = {}
    for s in summary["kpis"]:
        k, t, f, u = s["kpi"], s["trueCount"], s["falseCount"], s["unknown"]
        by[k] = (t, f, u)
        pct = 100.0 * t / (t + f) if t + f else None
        low = 100.0 * t / (t + f + u) if t + f + u else None
        if not close(pct, s["percent"]):
            out.append((f"KPI{k} percent", f"{s['percent']} != {pct}"))
        if not close(low, s["percentIfUnknownNotMet"]):
            out.append((f"KPI{k} percentIfUnknownNotMet", f"{s['percentIfUnknownNotMet']} != {low}"))
        if s["denominator"] != t + f:
            out.append((f"KPI{k} denominator", f"{s['denominator']} != {t + f}"))
        if level(k, pct) != s["level"]:
            out.append((f"KPI{k} level", f"{s['level']} != {level(k, pct)}"))
    for c in summary["completeness"]:
        t, f, u = by[c["kpi"]]
        if (c["decided"], c["applicable"]) != (t + f, t + f + u):
            out.append((f"KPI11 completeness of KPI{c['kpi']}", f"{c['decided']}/{c['applicable']} != {t + f}/{t + f + u}"))
        tot_dec += t + f
        tot_app += t + f + u
    if sorted(c["kpi"] for c in summary["completeness"]) != list(range(3, 11)):
        out.append(("KPI11 completeness KPIs", str([c["kpi"] for c in summary["completeness"]])))
    o = summary["completenessOverall"]
    if (o["decided"], o["applicable"]) != (tot_dec, tot_app):
        out.append(("KPI11 overall", f"{o['decided']}/{o['applicable']} != {tot_dec}/{tot_app}"))
    return out


def show(meta, pr, o, e):
    """one patient, compactly: resources one per line, the oracle's and the engine's answers"""
    print("meta", json.dumps(meta))
    print("Patient", json.dumps({k: v for k, v in pr[0].items() if k not in ("resourceType",)}))
    for rt, items in pr[1].items():
        for x in items:
            y = {k: v for k, v in x.items() if k not in ("resourceType", "subject", "clinicalStatus")}
            print(" ", rt, json.dumps(y, separators=(",", ":")))
    print("oracle", json.dumps(o, default=str))
    if e:
        print("engine index", json.dumps(e["index"]))
        for k in e["kpis"]:
            print("  engine KPI", k["kpi"], k["status"], k["evidence"], k["reason"])
    else:
        print("engine: no entry (none)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--show", type=int, default=2)
    ap.add_argument("--patient", help="print one patient's resources, oracle and engine answer")
    a = ap.parse_args()
    gdirs = sorted(g for d in a.dirs for g in glob.glob(os.path.join(d, "g*")) if os.path.isdir(g))
    classes = collections.defaultdict(list)
    abstained = collections.Counter()
    n_pat = n_index = n_cmp = n_sum = 0
    errors = []
    ostat = collections.Counter()
    with cf.ThreadPoolExecutor(a.jobs) as ex:
        for gdir, meta, res, orc, eng, err in ex.map(lambda g: one(a.binary, g), gdirs):
            if err:
                errors.append((gdir, err))
                continue
            byp = {p["patient"].split("/")[-1]: p for p in eng["patients"]}
            grouped = group_by_patient(res)
            for pid, o in orc.items():
                n_pat += 1
                e = byp.get(pid)
                elabel = e["index"]["kind"] if e else "none"
                olabel = LABEL.get(o["index"], o["index"])
                size = sum(len(v) for v in grouped[pid][1].values())
                if a.patient == pid:
                    show(meta, grouped[pid], o, e)
                if olabel != elabel:
                    classes[("index", olabel, elabel)].append((size, pid, gdir, ""))
                    continue
                if olabel != "index":
                    continue
                n_index += 1
                ek = {k["kpi"]: k for k in e["kpis"]}
                for k in range(1, 11):
                    ov = o["kpis"].get(k)
                    if ov is None:
                        abstained[k] += 1
                        continue
                    n_cmp += 1
                    ostat[(k, ov)] += 1
                    ev = ek[k]["status"] if k in ek else "missing"
                    if ov != ev:
                        why = ek[k]["reason"] if k in ek else ""
                        classes[(f"KPI{k}", ov, ev)].append((size, pid, gdir, why))
            n_sum += 1
            for key, why in check_summary(eng["summary"]):
                classes[("summary", key, why)].append((0, "-", gdir, ""))
            # the summary must agree with the drill-down
            stat = collections.defaultdict(collections.Counter)
            for p in eng["patients"]:
                for k in p["kpis"]:
                    stat[k["kpi"]][k["status"]] += 1
            for s in eng["summary"]["kpis"]:
                got = {"true": s["trueCount"], "false": s["falseCount"], "unknown": s["unknown"],
                       "pending": s["pending"], "excluded": s["excluded"]}
                for st, c in got.items():
                    if stat[s["kpi"]][st] != c:
                        classes[("summary", f"KPI{s['kpi']} {st} drill-down={stat[s['kpi']][st]}",
                                 f"summary={c}")].append((0, "-", gdir, ""))
    print(f"summaries checked {n_sum} (proportions, §13 levels, KPI 11 completeness)")
    print(f"populations {len(gdirs)}, patients {n_pat}, index (agreed) {n_index}, KPI values compared {n_cmp}, "
          f"oracle abstained {dict(abstained)}")
    print("oracle values compared:", ", ".join(f"K{k}:{v}={c}" for (k, v), c in sorted(ostat.items())))
    for g, e in errors:
        print("ENGINE ERROR", g, e)
    total = 0
    for key in sorted(classes, key=lambda k: -len(classes[k])):
        ex_ = sorted(classes[key])[: a.show]
        total += len(classes[key])
        print(f"[{len(classes[key]):5d}] {key[0]}: oracle={key[1]} engine={key[2]}")
        for size, pid, gdir, why in ex_:
            print(f"         e.g. {gdir} {pid} ({size} resources) {why[:200]}")
    pats = {(g, p) for v in classes.values() for _, p, g, _ in v if p != "-"}
    print(f"divergences: {total} in {len(pats)} patients, {len(classes)} classes")
    sys.exit(1 if total or errors else 0)


if __name__ == "__main__":
    main()
