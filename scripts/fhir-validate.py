"""Validates FHIR R4 JSON with a third-party library (fhir.resources, R4B models).

Usage: python fhir-validate.py FILE...   (a file holds one resource, a Bundle, or NDJSON)
Every resource, and every Bundle entry's resource on its own, is parsed into the library's
model; any validation error is printed and the exit status is 1. Prints `validated N resources`.
"""
import json
import sys

from fhir.resources.R4B import construct_fhir_element


def check(obj, where, errors):
    rtype = obj.get("resourceType")
    try:
        construct_fhir_element(rtype, obj)
    except Exception as e:  # the library raises pydantic ValidationError or KeyError
        errors.append(f"{where}: {rtype}: {e}")
        return 0
    n = 1
    if rtype == "Bundle":
        for i, entry in enumerate(obj.get("entry", [])):
            if "resource" in entry:
                n += check(entry["resource"], f"{where} entry {i}", errors)
    return n


def main(paths):
    errors, n = [], 0
    for p in paths:
        with open(p, encoding="utf-8") as f:
            text = f.read()
        if p.endswith(".ndjson"):
            for i, line in enumerate(text.splitlines()):
                if line.strip():
                    n += check(json.loads(line), f"{p}:{i + 1}", errors)
        else:
            n += check(json.loads(text), p, errors)
    for e in errors:
        print(e)
    print(f"validated {n} resources, {len(errors)} errors")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
