#!/usr/bin/env python3
"""Differential: osteoguard engine vs the independent oracle (oracle.py) on generated bundles.

usage: diff.py BINARY DIR [DIR ...] [--jobs N] [--show N]
Runs `BINARY assess --format json --as-of D FILE` for every bundle (as_of from Bundle.meta.tag), compares
the in-scope findings (code + severity) and key values, groups divergences into classes
(what + direction + triggering feature), prints counts and the smallest example per class,
exits 1 when any divergence remains.
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
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oracle import oracle  # noqa: E402

SCOPE = ["gc-bone-protection", "gc-fracture-risk-assessment-due", "osteoporosis-treatment-indicated",
         "anabolic-therapy-preferred", "data-insufficient"]


# knowledge.md §9: the recommendation text and the citation of each in-scope finding
SPEC_TEXT = {
    "gc-bone-protection": "Long-term glucocorticoid use: ensure calcium 1000–1200 mg/day and vitamin D 600–800 IU/day "
                          "plus lifestyle measures (exercise, no smoking, alcohol ≤1–2 drinks/day).",
    "gc-fracture-risk-assessment-due": "Fracture-risk assessment is due: DXA with vertebral fracture assessment (or "
                                       "spine X-ray) and, if ≥40 years, FRAX with glucocorticoid adjustment.",
    "osteoporosis-treatment-indicated": "Osteoporosis pharmacotherapy is indicated (risk category: ",
    "anabolic-therapy-preferred": "Very high fracture risk: consider an anabolic agent (teriparatide or abaloparatide) "
                                  "as initial therapy, followed by an antiresorptive.",
    "data-insufficient": "Cannot fully evaluate: missing ",
}
SPEC_CITATION = {
    "gc-bone-protection": ["ACR-2022"],
    "gc-fracture-risk-assessment-due": ["ACR-2022"],
    "osteoporosis-treatment-indicated": ["ACR-2022", "WHO-1994"],
    "anabolic-therapy-preferred": ["ACR-2022"],
    "data-insufficient": ["1.4"],
}


def text_checks(e, o):
    """§9 texts and citations; §2.8 replacement annotation; §9 interactions: no finding names zoledronate
    while zoledronate-renal-contraindication fires"""
    out = []
    codes_ = {f["code"] for f in e.get("findings", [])}
    for f in e.get("findings", []):
        c = f["code"]
        if c not in SPEC_TEXT:
            continue
        rec = f.get("recommendation") or ""
        if SPEC_TEXT[c] not in rec:
            out.append(("text", f"{c}: recommendation is not the §9 text"))
        for tag in SPEC_CITATION[c]:
            if tag not in (f.get("citation") or "") + " " + (f.get("ruleSection") or ""):
                out.append(("text", f"{c}: citation lacks {tag}"))
        words = json.dumps([f.get("summary"), rec, f.get("notes")], ensure_ascii=False).lower()
        if "zoledronate-renal-contraindication" in codes_ and c != "data-insufficient" and \
                ("zoledron" in words or "iv bisphosphonate" in words):
            out.append(("text", f"{c}: names zoledronate while it is contraindicated"))
        if c in ("osteoporosis-treatment-indicated", "anabolic-therapy-preferred") and \
                o["values"].get("therapy_unknown") and "confirm current therapy" not in words:
            out.append(("text", f"{c}: therapy status unknown without 'confirm current therapy' (§4.3)"))
        if c in ("gc-bone-protection", "gc-fracture-risk-assessment-due") and o["values"]["phys"]:
            if "replacement" not in words:
                out.append(("text", f"{c}: no §2.8 replacement-range note"))
            if "withdraw" in words or "taper" in words:
                out.append(("text", f"{c}: suggests GC withdrawal under replacement"))
    return out


def as_of_of(bundle):
    for t in (bundle.get("meta") or {}).get("tag", []):
        c = t.get("code", "")
        if c.startswith("as-of:"):
            return dt.date.fromisoformat(c[6:])
    raise SystemExit("bundle without as-of tag")


def run_engine(binary, path, as_of):
    p = subprocess.run([binary, "assess", "--format", "json", "--as-of", as_of.isoformat(), path],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return None, p.stderr.strip()[:300]
    return json.loads(p.stdout), None


def features(bundle, o):
    """coarse input features used to split a divergence class"""
    f = []
    v = o["values"]
    txt = json.dumps(bundle)
    if '"asNeededBoolean": true' in txt:
        f.append("prn")
    for tag, needle in (("gc-product", '"mr-gcp-'), ("gc-product", '"ms-gcp-'), ("combo", '"mr-cavd-'),
                        ("anabolic", '-ana-'), ("depot", '"ma-depot-'), ("pulse", '"ma-pulse-'),
                        ("replacement", '"mr-hc-'), ("dmab-undated", 'dmab-nodate'), ("rebound-fx", '"fx-reb-'),
                        ("frax-gc-no", '"Glucocorticoids entered"'), ("therapy-unknown", '"ms-unknown-')):
        if needle in txt and tag not in f:
            f.append(tag)
    seen = set()
    for e in bundle["entry"]:
        r = e["resource"]
        for c in (r.get("code") or {}).get("coding", []):
            if c.get("code") in ("frax-mof", "frax-hip"):
                k = (c["code"], (r.get("effectiveDateTime") or "")[:10])
                if k in seen and "frax-same-day" not in f:
                    f.append("frax-same-day")
                seen.add(k)
    f.append("gcq=" + v["qualifying"])
    for k in ("dmab_due", "zol_planned", "disc"):
        if v.get(k):
            f.append(k)
    age = o["age"]
    f.append("age<18" if age is not None and age < 18 else ("age18-39" if age is not None and age < 40 else
                                                            "age40+"))
    return f


ORACLE_LOCK = threading.Lock()  # oracle.MEDS is per bundle: one oracle call at a time
# §9 data-insufficient items the oracle does not model (DXA comparability: tools/oracle-dmab)
NOT_MODELLED = {6}


def compare(path, binary):
    bundle = json.load(open(path))
    as_of = as_of_of(bundle)
    with ORACLE_LOCK:
        o = oracle(bundle, as_of)
    e, err = run_engine(binary, path, as_of)
    if e is None:
        return path, len(bundle["entry"]), [("engine-error", err[:80])], o, None
    ef = {}
    for f in e.get("findings", []):
        if f["code"] in SCOPE:
            ef[f["code"]] = f["severity"]
        if f["code"] == "data-insufficient" and {x.get("item") for x in f.get("insufficientItems") or []} <= \
                NOT_MODELLED and "data-insufficient" not in o["findings"]:
            ef.pop("data-insufficient", None)  # only an item the oracle does not model
    divs = []
    for code in SCOPE:
        ov, ev = o["findings"].get(code), ef.get(code)
        if ov != ev:
            divs.append(("finding", f"{code}: oracle={ov} engine={ev}"))
    g = e.get("glucocorticoid") or {}
    fr = e.get("fractureRisk") or {}
    v = o["values"]
    # §9 data-insufficient: the closed list's item numbers
    ei = set()
    for f in e.get("findings", []):
        if f["code"] == "data-insufficient":
            ei = {x.get("item") for x in f.get("insufficientItems") or []} - NOT_MODELLED
    for it in sorted(set(o["items"]) ^ ei):
        divs.append(("items", f"data-insufficient item ({it}): oracle={'yes' if it in o['items'] else 'no'} "
                              f"engine={'yes' if it in ei else 'no'}"))
    divs += text_checks(e, o)

    def num(a, b, tol=1e-3):
        if a is None or b is None:
            return a is None and b is None
        return abs(float(a) - float(b)) <= tol

    if g.get("physiologicReplacement") != v["phys"]:
        divs.append(("value", f"physiologicReplacement: oracle={v['phys']} engine={g.get('physiologicReplacement')}"))
    eq = g.get("qualifying")
    if eq != v["qualifying"]:
        divs.append(("value", f"qualifying: oracle={v['qualifying']} engine={eq}"))
    if fr.get("category") != v["category"]:
        divs.append(("value", f"category: oracle={v['category']} engine={fr.get('category')}"))
    # unknown numbers are null (README): cumulative when a dose in the last 365 days is not computable,
    # current when a present record's dose is not computable
    ecum = g.get("cumulativePrednisoneEquivalentGramsLast12Months")
    if 1 in o["items"]:
        if ecum is not None:
            divs.append(("value", "cumulative grams not null with an unknown dose"))
    elif ecum is None or abs(v["cum"] - ecum) > 0.0006:
        divs.append(("value", "cumulative grams differ"))
    ecur = g.get("currentPrednisoneEquivalentMgPerDay")
    if o["unknown_present"]:
        if ecur is not None:
            divs.append(("value", "current mg/day not null with an unknown dose"))
    elif ecur is None or abs((v["current"] or 0.0) - ecur) > 0.006:
        divs.append(("value", "current mg/day differ"))
    if v["qualifying"] != "unknown":
        if v["days30"] != g.get("daysAtOrAbove30MgLast365"):
            divs.append(("value", "days>=30 differ"))
        if v["cont"] != g.get("continuousDaysAtOrAbove25Mg"):
            divs.append(("value", "continuous days differ"))
    if v["qualifying"] != "false" and v["start"] != g.get("courseStart"):
        divs.append(("value", f"courseStart differ (gcq={v['qualifying']})"))
    for k, ek in (("mof", "gcAdjustedFraxMofPercent"), ("hip", "gcAdjustedFraxHipPercent")):
        if not num(v[k], fr.get(ek), 0.006):
            divs.append(("value", f"gc-adjusted FRAX {k} differ"))
    return path, len(bundle["entry"]), divs, o, e


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--show", type=int, default=1)
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--list", action="store_true", help="print every patient file of each class")
    ap.add_argument("--by-what", action="store_true", help="one class per difference; features counted inside")
    a = ap.parse_args()
    files = sorted(f for d in a.dirs for f in glob.glob(os.path.join(d, "*.json")))
    classes = collections.defaultdict(list)
    n_div = 0
    with cf.ThreadPoolExecutor(a.jobs) as ex:
        for path, size, divs, o, e in ex.map(lambda p: compare(p, a.binary), files):
            if divs:
                n_div += 1
            for kind, what in divs:
                feats = ", ".join(features(json.load(open(path)), o))
                key = what if a.by_what else what + " | " + feats
                classes[key].append((size, path, o, e, feats))
    print(f"patients: {len(files)}; with a divergence: {n_div}; classes: {len(classes)}")
    for key in sorted(classes, key=lambda k: -len(classes[k])):
        ex_ = sorted(classes[key], key=lambda x: (x[0], x[1]))[: a.show]
        print(f"\n[{len(classes[key])}] {key}")
        if a.by_what:
            fc = collections.Counter(t for x in classes[key] for t in x[4].split(", "))
            print("   features:", ", ".join(f"{k} {v}" for k, v in fc.most_common(12)))
        if a.list:
            print("   files:", " ".join(x[1] for x in sorted(classes[key], key=lambda x: (x[0], x[1]))))
        for size, path, o, e, _ in ex_:
            print(f"   e.g. {path} ({size} resources) oracle values={o['values']} items={o['items']}")
            if a.verbose and e is not None:
                g = e.get("glucocorticoid") or {}
                g = {k: v for k, v in g.items() if k != "series"}
                print("   engine gc:", json.dumps(g))
                print("   engine risk:", json.dumps({k: v for k, v in (e.get("fractureRisk") or {}).items()
                                                      if k != "evidence"}))
                for f in e.get("findings", []):
                    print("   engine finding:", f["code"], f["severity"], f.get("inputsMissing", ""))
    sys.exit(1 if n_div else 0)


if __name__ == "__main__":
    main()
