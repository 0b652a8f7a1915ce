#!/usr/bin/env python3
"""show.py BINARY BUNDLE: the bundle in short, the oracle's view and the engine's (GC, risk, findings)."""
import json, subprocess, sys, os
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oracle import oracle, gc_state
from diff import as_of_of
b = json.load(open(sys.argv[2])); a = as_of_of(b)
print("as_of", a)
for e in b["entry"]:
    r = dict(e["resource"]); r.pop("subject", None)
    print(" ", json.dumps(r)[:700])
o = oracle(b, a)
print("ORACLE", o["findings"], o["values"], o["items"])
for r in gc_state([e["resource"] for e in b["entry"]], a)["recs"]:
    print("   rec", r.kind, r.ing, r.start, r.end, r.daily, "open" if r.open_end else r.planned_days)
p = subprocess.run([sys.argv[1], "assess", "--format", "json", "--as-of", a.isoformat(), sys.argv[2]], capture_output=True, text=True)
e = json.loads(p.stdout)
g = e.get("glucocorticoid")
print("ENGINE gc", json.dumps(g))
print("ENGINE risk", json.dumps({k: v for k, v in e["fractureRisk"].items() if k != "evidence"}))
for f in e["findings"]:
    print("ENGINE", f["code"], f["severity"], f.get("inputsMissing"), f.get("summary", "")[:200])
for q in e.get("dataQuality", []):
    print("DQ", q)
