"""Synthetic eCQM population: clones every test patient folder of a deck N/len(deck) times
with fresh ids (Patient id, resource ids and every reference rewritten), keeping each clone's
expected MeasureReport, so both osteoguard and fqm-execution can read it and check agreement.

Usage: python clone-deck.py DECK_DIR OUT_DIR N
Writes OUT_DIR/<patient-id>/*.json (the deck layout).
"""
import json
import os
import sys


def main(deck, out, n):
    folders = sorted(d for d in os.listdir(deck) if os.path.isdir(os.path.join(deck, d)))
    os.makedirs(out, exist_ok=True)
    made = 0
    k = 0
    while made < n:
        for d in folders:
            if made >= n:
                break
            src = os.path.join(deck, d)
            texts = {f: open(os.path.join(src, f), encoding="utf-8").read()
                     for f in sorted(os.listdir(src)) if f.endswith(".json")}
            new_pid = f"{d[:24]}-c{k:07d}"
            dst = os.path.join(out, new_pid)
            os.makedirs(dst, exist_ok=True)
            for f, t in texts.items():
                r = json.loads(t.replace(d, new_pid))
                if r.get("resourceType") not in ("Patient", "MeasureReport"):
                    r["id"] = f"{r['id'][:40]}-c{k}"
                with open(os.path.join(dst, f), "w", encoding="utf-8") as fh:
                    json.dump(r, fh)
            made += 1
        k += 1
    print(f"{made} patients in {out}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
