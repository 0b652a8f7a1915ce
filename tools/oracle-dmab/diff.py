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
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oracle import oracle, SEV_RANK  # noqa: E402

CONFIG = None  # --config FILE: passed to assess; its [bmd] LSC keys are read for the oracle
LSC_CFG = None
SERVER = None  # base URL of the CDS Hooks service (--hooks)
TEMPLATES = {}  # prefetch key -> resource type (from discovery)

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
    cmd = [binary, "assess", "--format", "json", "--as-of", as_of.isoformat(), path]
    if CONFIG:
        cmd[2:2] = ["--config", CONFIG]
    p = subprocess.run(cmd, capture_output=True, text=True)
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
    orc = oracle(bundle, as_of, lsc_cfg=LSC_CFG)
    divs = []
    hook_path = path[:-5] + ".hook"
    if SERVER and os.path.exists(hook_path) and "error" not in eng:
        with open(hook_path) as f:
            hook = json.load(f)
        divs.extend(check_hook(bundle, as_of, hook, eng, orc))
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


def start_server(binary, workdir):
    """osteoguard serve --insecure-dev on a free loopback port; returns (process, base URL)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    os.makedirs(workdir, exist_ok=True)
    cmd = [binary, "serve", "--insecure-dev", "--port", str(port), "--db", os.path.join(workdir, "hooks.db")]
    if CONFIG:
        cmd += ["--config", CONFIG]
    proc = subprocess.Popen(cmd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2) as r:
                if r.status == 200:
                    break
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.1)
    else:
        proc.kill()
        raise SystemExit("the CDS Hooks service did not start")
    with urllib.request.urlopen(base + "/cds-services", timeout=10) as r:
        disc = json.load(r)
    for svc in disc["services"]:
        for key, tpl in (svc.get("prefetch") or {}).items():
            TEMPLATES[key] = re.split(r"[/?]", tpl)[0]
    return proc, base


def request_body(bundle, as_of, hook):
    res = [e["resource"] for e in bundle["entry"]]
    patient = next(r for r in res if r["resourceType"] == "Patient")
    ss = lambda items: {"resourceType": "Bundle", "type": "searchset",  # noqa: E731
                        "entry": [{"resource": r} for r in items]}
    prefetch = {}
    used = set()
    for key, rtype in sorted(TEMPLATES.items()):
        if rtype == "Patient":
            prefetch[key] = patient
        elif rtype in used:
            prefetch[key] = ss([])  # e.g. the second Observation template: everything is in the first
        else:
            prefetch[key] = ss([r for r in res if r["resourceType"] == rtype])
            used.add(rtype)
    for rtype in sorted({r["resourceType"] for r in res} - used - {"Patient"}):
        prefetch["extra" + rtype] = ss([r for r in res if r["resourceType"] == rtype])  # used whatever its key
    ctx = {"userId": "Practitioner/oracle", "patientId": patient["id"]}
    if hook["hook"] != "patient-view":
        ctx["draftOrders"] = {"resourceType": "Bundle", "type": "collection",
                              "entry": [{"resource": d} for d in hook["drafts"]]}
    return {"hook": hook["hook"], "hookInstance": str(uuid.uuid4()), "context": ctx,
            "extension": {"osteoguard.asOf": as_of.isoformat()}, "prefetch": prefetch}


def post_hook(body):
    req = urllib.request.Request(f"{SERVER}/cds-services/osteoguard-{body['hook']}",
                                 data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        return {"error": f"HTTP {e.code} {e.read()[:200]!r}"}


def card_findings(resp):
    out = {}
    for c in resp.get("cards", []):
        for f in c["extension"]["org.osteoguard.situation"]["findings"]:
            out[f["code"]] = f["severity"]
    return out


def check_hook(bundle, as_of, hook, eng, orc):
    """knowledge.md 9 "Order hooks": the cards of order-select/order-sign come from the what-if
    assessment (drafts as if signed).  A card's finding must have the oracle's what-if severity; every
    finding the drafts make new or more severe (and, at order-sign, every high/critical one) must be
    on a card.  patient-view: the cards carry exactly the findings of `assess` for the same record."""
    resp = post_hook(request_body(bundle, as_of, hook))
    if "error" in resp:
        return [("hook-error", resp["error"][:80])]
    got = card_findings(resp)
    divs = []
    if hook["hook"] == "patient-view":
        want = {f["code"]: f["severity"] for f in eng.get("findings", [])}
        if got != want:
            diff = sorted(set(got.items()) ^ set(want.items()))
            divs.append(("patient-view-vs-assess", f"{diff[0][0]}"))
        return divs
    what_if = oracle(bundle, as_of, drafts=hook["drafts"], lsc_cfg=LSC_CFG)["findings"]
    base = orc["findings"]
    h = hook["hook"]
    for code, sev in got.items():
        if code in SCOPE and what_if.get(code) != sev:
            divs.append((f"{h}:{code}", f"card={sev} oracle={what_if.get(code)}"))
    for code, sev in what_if.items():
        new_or_worse = code not in base or SEV_RANK[base[code]] < SEV_RANK[sev]
        urgent = h == "order-sign" and SEV_RANK[sev] >= SEV_RANK["high"]
        if (new_or_worse or urgent) and code not in got:
            divs.append((f"{h}:{code}", f"card=None oracle={sev}"))
    return divs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--show", type=int, default=1)
    ap.add_argument("--hooks", action="store_true", help="also send each *.hook request to `serve`")
    ap.add_argument("--config", help="TOML passed to assess; its [bmd] lsc_* keys feed the oracle")
    a = ap.parse_args()
    global CONFIG, LSC_CFG, SERVER
    if a.config:
        CONFIG = a.config
        LSC_CFG = {}
        keys = {"lsc_lumbar_spine_pct": "spine", "lsc_total_hip_pct": "hip", "lsc_femoral_neck_pct": "neck"}
        for line in open(a.config):
            m = re.match(r"\s*(\w+)\s*=\s*([0-9.]+)", line)
            if m and m.group(1) in keys:
                LSC_CFG[keys[m.group(1)]] = float(m.group(2))
    proc = None
    if a.hooks:
        proc, SERVER = start_server(a.binary, os.path.join(a.dirs[0], ".server"))
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
    if proc:
        proc.terminate()
        proc.wait(timeout=30)
    sys.exit(1 if classes else 0)


if __name__ == "__main__":
    main()
