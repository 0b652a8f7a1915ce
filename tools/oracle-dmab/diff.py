#!/usr/bin/env python3
"""Differential: osteoguard engine vs the independent oracle (oracle.py) on gen.py bundles.

Usage: diff.py BINARY DIR [DIR...] [--jobs 2] [--show 1]
Exit status 1 when any divergence remains.
"""
import argparse
import collections
import concurrent.futures as cf
import datetime as dt
import glob
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oracle import oracle  # noqa: E402

SCOPE = ["denosumab-due-soon", "denosumab-overdue", "denosumab-discontinuation-without-transition",
         "post-denosumab-ctx-monitoring", "rebound-vertebral-fractures-suspected", "bmd-significant-loss",
         "acute-ovcf", "ovcf-refractory-pain-augmentation-candidate", "ovcf-imaging-recommended",
         "new-fracture-after-augmentation", "zoledronate-renal-contraindication",
         "hypocalcaemia-antiresorptive-caution", "vitamin-d-deficiency-antiresorptive-caution",
         "data-insufficient"]


def as_of_of(bundle):
    for t in bundle.get("meta", {}).get("tag", []):
        if t.get("code") == "as-of":
            return dt.date.fromisoformat(t["display"])
    raise SystemExit("bundle without as-of tag")


def run_engine(binary, path, as_of):
    p = subprocess.run([binary, "assess", "--format", "json", "--as-of", as_of.isoformat(), path],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return {"error": p.stderr.strip()[:300]}
    return json.loads(p.stdout)


DI_KEYS = [(3, r"^zoledronate planned"), (4, r"25-oh vitamin d"), (5, r"^denosumab due/planned"),
           (7, r"^one vertebral fracture after stopping denosumab|rebound"), (6, r"^valid serial dxa"),
           (8, r"without a usable dose date")]


def di_items(finding):
    """Item numbers (section 9 closed list) of the engine's inputsMissing texts; 0 = not recognised."""
    items = set()
    for s in finding.get("inputsMissing") or []:
        txt = (s if isinstance(s, str) else json.dumps(s)).lower()
        hit = [n for n, rx in DI_KEYS if re.search(rx, txt)]
        items.add(hit[0] if hit else 0)
    return items


def one(binary, path):
    with open(path) as f:
        bundle = json.load(f)
    as_of = as_of_of(bundle)
    eng = run_engine(binary, path, as_of)
    orc = oracle(bundle, as_of)
    divs = []
    if "error" in eng:
        return path, [("engine-error", eng["error"][:80])], len(bundle["entry"])
    ef = {f["code"]: f for f in eng.get("findings", [])}
    for code in SCOPE:
        e = ef.get(code)
        o = orc["findings"].get(code)
        es = e["severity"] if e else None
        if es != o:
            divs.append((code, f"engine={es} oracle={o}"))
    if "data-insufficient" in ef and "data-insufficient" in orc["findings"]:
        items = di_items(ef["data-insufficient"])
        scoped = {i for i in items if 3 <= i <= 8 or i == 0}
        if items and scoped != orc["di_items"]:
            divs.append(("data-insufficient-items",
                         f"engine={sorted(scoped)} oracle={sorted(orc['di_items'])}"))
    dm = eng.get("denosumab") or {}
    if (dm.get("lastDose") or None) != orc["values"]["dmab_last"]:
        divs.append(("denosumab.lastDose", "differs"))
    if orc["values"]["dmab_last"] and dm.get("doseCount") is not None and dm.get("doseCount") != orc["values"]["dmab_count"]:
        divs.append(("denosumab.doseCount", f"engine={dm.get('doseCount')} oracle={orc['values']['dmab_count']}"))
    return path, divs, len(bundle["entry"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--show", type=int, default=1)
    a = ap.parse_args()
    paths = sorted(p for d in a.dirs for p in glob.glob(os.path.join(d, "*.json")))
    classes = collections.defaultdict(list)
    with cf.ThreadPoolExecutor(a.jobs) as ex:
        for path, divs, size in ex.map(lambda p: one(a.binary, p), paths):
            for c in divs:
                classes[c].append((size, path))
    print(f"patients: {len(paths)}  divergence classes: {len(classes)}  "
          f"patients with a divergence: {len({p for v in classes.values() for _, p in v})}")
    for c, lst in sorted(classes.items(), key=lambda kv: -len(kv[1])):
        lst.sort()
        print(f"{len(lst):6d}  {c[0]:48s} {c[1]}")
        for _, p in lst[:a.show]:
            print(f"        e.g. {p}")
    sys.exit(1 if classes else 0)


if __name__ == "__main__":
    main()
