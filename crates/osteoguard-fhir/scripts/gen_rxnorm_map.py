#!/usr/bin/env python3
"""Generates the code tables that osteoguard-fhir ships (include_str!):

* data/rxnorm-ingredients.tsv - medication codes (RxNorm IN/SCD/SBD/GPCK, ATC, SNOMED substance or
  product) -> osteoguard ingredient, route class and strength per product unit.
* data/condition-codes.tsv   - SNOMED CT / ICD-10-CM codes of the VSAC osteoporosis / osteopenia value
  sets -> osteoguard condition concept and fracture site.

Sources (each row names its own in the `source` column):
* the VSAC expansions under <shared>/data/ecqm-qicore-2024/valuesets/ (CC0 repo; codes from RxNorm,
  SNOMED CT, ICD-10-CM),
* docs/terminology-verification.md (confirmed ingredient codes and SCDs),
* knowledge.md section 10.1 (ATC / SNOMED substance columns; codes marked UNVERIFIED there say so).

The ingredient of a VSAC SCD is read from its display name (VSAC gives no RxNorm relationships);
strength is parsed from the display ("5 MG Oral Tablet" -> 5 mg per tablet, "5 MG/ML" -> 5 mg per mL).

Usage: python3 scripts/gen_rxnorm_map.py [--shared /work/shared]   (run from the crate directory)
Deterministic: rows are sorted; re-running gives byte-identical output.
"""
import argparse
import json
import os
import re
import sys

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"

VS_GC = "2.16.840.1.113883.3.464.1003.196.12.1266"
VS_OPF = "2.16.840.1.113883.3.464.1003.113.12.1050"
VS_OPNF = "2.16.840.1.113883.3.464.1003.113.12.1038"
VS_OPENIA = "2.16.840.1.113883.3.464.1003.113.12.1049"
VS_ESRD = "2.16.840.1.113883.3.526.3.353"
VS_MYELOMA = "2.16.840.1.113883.3.464.1003.1011"

TV = "docs/terminology-verification.md"
K101 = "knowledge.md 10.1"

# Ingredient names (model kebab-case) recognised in VSAC displays.
NAME_TO_INGREDIENT = [
    ("methylprednisolone", "methylprednisolone"),
    ("prednisolone", "prednisolone"),
    ("prednisone", "prednisone"),
    ("hydrocortisone", "hydrocortisone"),
    ("cortisone", "cortisone"),
    ("dexamethasone", "dexamethasone"),
    ("triamcinolone", "triamcinolone"),
    ("betamethasone", "betamethasone"),
    ("budesonide", "budesonide"),
    ("deflazacort", "deflazacort"),
    ("fludrocortisone", "fludrocortisone"),
]

# (system, code, ingredient, route, display, source). route: oral | injection | local | any
MANUAL = [
    # RxNorm ingredients (IN)
    (RXNORM, "8640", "prednisone", "any", "prednisone", TV + " 1 (RXCLASS-MD)"),
    (RXNORM, "8638", "prednisolone", "any", "prednisolone", TV + " 1 (RXCLASS-MD)"),
    (RXNORM, "6902", "methylprednisolone", "any", "methylprednisolone", TV + " 1 (RXCLASS-MD)"),
    (RXNORM, "5492", "hydrocortisone", "any", "hydrocortisone", TV + " 1 (RXCLASS-MD)"),
    (RXNORM, "2878", "cortisone", "any", "cortisone", TV + " 1 (RXCLASS-MD; not 3008 = cyclosporine)"),
    (RXNORM, "3264", "dexamethasone", "any", "dexamethasone", TV + " 1 (RXCLASS-MD)"),
    (RXNORM, "1514", "betamethasone", "any", "betamethasone", TV + " 1 (RXCLASS-MD; not 1347)"),
    (RXNORM, "10759", "triamcinolone", "any", "triamcinolone", TV + " 1 (RXCLASS-MD, CPIC)"),
    (RXNORM, "22396", "deflazacort", "any", "deflazacort", TV + " 1 (RXCLASS-MD, one source)"),
    (RXNORM, "4452", "fludrocortisone", "any", "fludrocortisone", TV + " 1 (RXCLASS-MD, one source)"),
    (RXNORM, "19831", "budesonide", "any", "budesonide", TV + " 1 (CPIC; not 1810)"),
    (RXNORM, "50121", "other-local-corticosteroid", "local", "fluticasone propionate", TV + " 1 (CPIC, one source)"),
    (RXNORM, "993449", "denosumab", "any", "denosumab", K101 + " (verified)"),
    (RXNORM, "77655", "zoledronic-acid", "any", "zoledronic acid", K101 + " (verified)"),
    (RXNORM, "46041", "alendronate", "any", "alendronate", K101 + " (verified)"),
    (RXNORM, "73056", "risedronate", "any", "risedronate", K101 + " (verified)"),
    (RXNORM, "115264", "ibandronate", "any", "ibandronate", K101 + " (verified)"),
    (RXNORM, "72143", "raloxifene", "any", "raloxifene", K101 + " (verified)"),
    (RXNORM, "1921069", "abaloparatide", "any", "abaloparatide", TV + " 1 (one weak source)"),
    (RXNORM, "1895", "calcium", "any", "calcium", K101 + " (UNVERIFIED; used by examples/)"),
    (RXNORM, "1897", "calcium", "any", "calcium carbonate", K101 + " (UNVERIFIED; used by examples/)"),
    (RXNORM, "2418", "cholecalciferol", "any", "cholecalciferol", K101 + " (UNVERIFIED; used by examples/)"),
    (RXNORM, "4511", "ergocalciferol", "any", "ergocalciferol", K101 + " (UNVERIFIED)"),
    (RXNORM, "11253", "cholecalciferol", "any", "vitamin D", K101 + " (UNVERIFIED; generic vitamin D counted as cholecalciferol)"),
    # RxNorm clinical drugs outside the VSAC oral GC list
    (RXNORM, "238755", "hydrocortisone", "injection", "hydrocortisone 100 MG Injection", TV + " 1b (one source)"),
    (RXNORM, "1116927", "dexamethasone", "injection", "dexamethasone phosphate 4 MG/ML Injectable Solution", TV + " 1b (one source)"),
    (RXNORM, "1812194", "dexamethasone", "injection", "1 ML dexamethasone phosphate 4 MG/ML Injection", TV + " 1b (one source)"),
    (RXNORM, "106258", "hydrocortisone", "local", "Hydrocortisone 10 MG/ML Topical Cream", TV + " 1b (SYN-COST; Synthea data)"),
    (RXNORM, "351109", "budesonide", "local", "budesonide 0.25 MG/ML Inhalation Suspension", TV + " 1b (bulk-10-patients data)"),
    (RXNORM, "895994", "other-local-corticosteroid", "local", "120 ACTUAT Fluticasone propionate 0.044 MG/ACTUAT Metered Dose Inhaler", TV + " 1b (SYN-COST; Synthea data)"),
    (RXNORM, "896209", "other-local-corticosteroid", "local", "60 ACTUAT Fluticasone propionate 0.25 MG/ACTUAT / salmeterol 0.05 MG/ACTUAT Dry Powder Inhaler", TV + " 1b (SYN-COST; Synthea data)"),
    (RXNORM, "1797870", "other-local-corticosteroid", "local", "Nasonex 0.05 MG/ACTUAT Nasal Inhaler", TV + " 1b (FHIR-EX)"),
    (RXNORM, "358793", "other-local-corticosteroid", "local", "Mometasone Furoate 0.05 MG/ACTUAT", TV + " 1b (FHIR-EX)"),
    (RXNORM, "993452", "denosumab", "injection", "1 ML denosumab 60 MG/ML Prefilled Syringe [Prolia]", TV + " 1b (SYN-COST)"),
    (RXNORM, "1046402", "denosumab", "injection", "1.7 ML denosumab 70 MG/ML Injection [Xgeva]", TV + " 1b (one source)"),
    (RXNORM, "1114085", "zoledronic-acid", "injection", "100 ML zoledronic acid 0.04 MG/ML Injection", TV + " 1b (SYN-COST)"),
    (RXNORM, "904419", "alendronate", "oral", "Alendronic acid 10 MG Oral Tablet", TV + " 1b (Synthea data; SYN-COST)"),
    (RXNORM, "1921082", "abaloparatide", "injection", "abaloparatide 2 MG/ML Pen Injector", TV + " 1b (one weak source)"),
    (RXNORM, "1921083", "abaloparatide", "injection", "abaloparatide 2 MG/ML Pen Injector [Tymlos]", TV + " 1b (one weak source)"),
    (RXNORM, "1435115", "teriparatide", "injection", "teriparatide 0.25 MG/ML Pen Injector", TV + " 1b (openFDA NDC, one source)"),
    (RXNORM, "1435117", "teriparatide", "injection", "teriparatide 0.25 MG/ML Pen Injector [Forteo]", TV + " 1b (openFDA NDC, one source)"),
    # ATC (knowledge.md 10.1; all UNVERIFIED there)
    (ATC, "H02AB07", "prednisone", "any", "prednisone", K101 + " ATC (UNVERIFIED)"),
    (ATC, "H02AB06", "prednisolone", "any", "prednisolone", K101 + " ATC (UNVERIFIED)"),
    (ATC, "H02AB04", "methylprednisolone", "any", "methylprednisolone", K101 + " ATC (UNVERIFIED)"),
    (ATC, "H02AB09", "hydrocortisone", "any", "hydrocortisone", K101 + " ATC (UNVERIFIED)"),
    (ATC, "H02AB10", "cortisone", "any", "cortisone", K101 + " ATC (UNVERIFIED)"),
    (ATC, "H02AB02", "dexamethasone", "any", "dexamethasone", K101 + " ATC (UNVERIFIED)"),
    (ATC, "H02AB01", "betamethasone", "any", "betamethasone", K101 + " ATC (UNVERIFIED)"),
    (ATC, "H02AB08", "triamcinolone", "any", "triamcinolone", K101 + " ATC (UNVERIFIED)"),
    (ATC, "H02AB13", "deflazacort", "any", "deflazacort", K101 + " ATC (UNVERIFIED)"),
    (ATC, "H02AA02", "fludrocortisone", "any", "fludrocortisone", K101 + " ATC (UNVERIFIED)"),
    (ATC, "A07EA06", "budesonide", "oral", "budesonide (intestinal)", K101 + " ATC (UNVERIFIED)"),
    (ATC, "M05BX04", "denosumab", "any", "denosumab", K101 + " ATC (UNVERIFIED)"),
    (ATC, "M05BA08", "zoledronic-acid", "any", "zoledronic acid", K101 + " ATC (UNVERIFIED)"),
    (ATC, "M05BA04", "alendronate", "any", "alendronic acid", K101 + " ATC (UNVERIFIED)"),
    (ATC, "M05BA07", "risedronate", "any", "risedronic acid", K101 + " ATC (UNVERIFIED)"),
    (ATC, "M05BA06", "ibandronate", "any", "ibandronic acid", K101 + " ATC (UNVERIFIED)"),
    (ATC, "G03XC01", "raloxifene", "any", "raloxifene", K101 + " ATC (UNVERIFIED)"),
    (ATC, "H05AA02", "teriparatide", "any", "teriparatide", K101 + " ATC (UNVERIFIED)"),
    (ATC, "H05AA04", "abaloparatide", "any", "abaloparatide", K101 + " ATC (UNVERIFIED)"),
    (ATC, "M05BX06", "romosozumab", "any", "romosozumab", K101 + " ATC (UNVERIFIED)"),
    (ATC, "A11CC05", "cholecalciferol", "any", "colecalciferol", K101 + " ATC (UNVERIFIED)"),
    (ATC, "A11CC01", "ergocalciferol", "any", "ergocalciferol", K101 + " ATC (UNVERIFIED)"),
    # SNOMED CT substances (knowledge.md 10.1, verified) and FHIR-example product/substance
    (SNOMED, "446321003", "denosumab", "any", "Denosumab (substance)", K101 + " SNOMED (verified)"),
    (SNOMED, "395926009", "zoledronic-acid", "any", "Zoledronic acid (substance)", K101 + " SNOMED (verified)"),
    (SNOMED, "96290008", "alendronate", "any", "Alendronic acid (substance)", K101 + " SNOMED (verified)"),
    (SNOMED, "387582001", "risedronate", "any", "Risedronic acid (substance)", K101 + " SNOMED (verified)"),
    (SNOMED, "96287002", "ibandronate", "any", "Ibandronic acid (substance)", K101 + " SNOMED (verified)"),
    (SNOMED, "109029006", "raloxifene", "any", "Raloxifene (substance)", K101 + " SNOMED (verified)"),
    (SNOMED, "116602009", "prednisone", "any", "Prednisone (substance)", TV + " 6 (FHIR-EX)"),
    (SNOMED, "373994007", "prednisone", "oral", "Prednisone 5mg tablet (product)", TV + " 6 (FHIR-EX)"),
]

# ATC prefix (group) rows: the Rust reader matches these as prefixes (route 'any').
ATC_PREFIX = [
    ("A12AA", "calcium", "calcium (any salt)", K101 + " ATC group (UNVERIFIED)"),
]


def strength(display):
    """(mg per unit, unit) from an RxNorm display, or ('', '')."""
    d = display.lower()
    inner = re.search(r"\(([^()]*)\)", d)
    if d.startswith("{") and inner:
        d = inner.group(1)
    m = re.search(r"([0-9.]+)\s*mg/ml", d)
    if m:
        return m.group(1), "mL"
    m = re.search(r"([0-9.]+)\s*mg/mg", d)
    if m:
        return "", ""
    m = re.search(r"([0-9.]+)\s*mg\b.*\b(tablet|capsule|granules)", d)
    if m:
        unit = {"tablet": "tablet", "capsule": "capsule", "granules": "packet"}[m.group(2)]
        return m.group(1), unit
    return "", ""


def route_of(display):
    d = display.lower()
    if any(w in d for w in ("inhal", "nasal", "topical", "ophthalmic", "otic", "rectal", "paste", "cream", "actuat")):
        return "local"
    if any(w in d for w in ("injection", "injectable", "syringe", "pen injector")):
        return "injection"
    if "oral" in d:
        return "oral"
    return "any"


def ingredient_from_display(display):
    d = display.lower()
    for name, ing in NAME_TO_INGREDIENT:
        if re.search(r"\b" + name + r"\b", d):
            return ing
    return None


def load_vs(shared, oid):
    path = os.path.join(shared, "data", "ecqm-qicore-2024", "valuesets", "valueset-%s.json" % oid)
    with open(path, encoding="utf-8") as f:
        return json.load(f)["expansion"]["contains"]


def site_of(display):
    d = display.lower()
    if "sacral" in d or "cervical" in d:
        return "osteoporotic-other"
    if "vertebra" in d or "spine" in d:
        return "vertebral"
    if "femur" in d or "hip" in d:
        return "hip"
    if "radius" in d or "wrist" in d or "forearm" in d or "ulna" in d:
        return "wrist"
    if "humerus" in d:
        return "humerus"
    return "osteoporotic-other"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    crate = os.path.dirname(here)
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=os.environ.get("OSTEOGUARD_SHARED", os.path.join(crate, "..", "..", "..", "shared")))
    args = ap.parse_args()

    rows = {}

    def add(system, code, ing, route, display, source, match="exact"):
        key = (system, code)
        if key in rows:
            sys.exit("duplicate code %s|%s" % key)
        s, unit = strength(display) if system == RXNORM or display.lower().endswith("(product)") else ("", "")
        if "(product)" in display.lower():
            s, unit = "5", "tablet"
        rows[key] = (system, code, match, ing, route, s, unit, display, source)

    for system, code, ing, route, display, source in MANUAL:
        add(system, code, ing, route, display, source)
    for code, ing, display, source in ATC_PREFIX:
        add(ATC, code, ing, "any", display, source, match="prefix")
    for c in load_vs(args.shared, VS_GC):
        ing = ingredient_from_display(c["display"])
        if ing is None:
            sys.exit("no ingredient in VSAC display %r" % c["display"])
        route = route_of(c["display"])
        if route == "any":
            route = "oral"  # the value set is 'Glucocorticoids (oral only)'
        add(c["system"], c["code"], ing, route, c["display"], "VSAC " + VS_GC + " (ingredient read from display)")

    out = os.path.join(crate, "data", "rxnorm-ingredients.tsv")
    with open(out, "w", encoding="utf-8", newline="\n") as f:
        f.write("# Generated by scripts/gen_rxnorm_map.py - do not edit by hand.\n")
        f.write("# route: oral | injection | local (inhaled/nasal/topical/oromucosal: never systemic) | any (ingredient code)\n")
        f.write("# strength_mg per strength_unit is the labelled strength of one product unit (empty = not a product)\n")
        f.write("system\tcode\tmatch\tingredient\troute\tstrength_mg\tstrength_unit\tdisplay\tsource\n")
        for key in sorted(rows):
            f.write("\t".join(rows[key]) + "\n")

    # Conditions
    crow = {}

    def cadd(system, code, concept, site, display, source):
        key = (system, code)
        if key in crow:
            return  # first value set wins (fracture sets are read first)
        crow[key] = (system, code, concept, site, display.replace("\t", " "), source)

    for oid in (VS_OPF, VS_OPNF):
        for c in load_vs(args.shared, oid):
            if c["system"] != SNOMED:
                continue  # ICD-10-CM M80/M81 are decoded by prefix rules in Rust
            d = c["display"].lower()
            if "fracture" in d or "collapse" in d:
                cadd(SNOMED, c["code"], "fracture", site_of(c["display"]), c["display"], "VSAC " + oid)
            else:
                cadd(SNOMED, c["code"], "osteoporosis", "", c["display"], "VSAC " + oid)
    for c in load_vs(args.shared, VS_OPENIA):
        cadd(c["system"], c["code"], "osteopenia", "", c["display"], "VSAC " + VS_OPENIA)
    for c in load_vs(args.shared, VS_ESRD):
        cadd(c["system"], c["code"], "ckd45", "", c["display"], "VSAC " + VS_ESRD)
    for c in load_vs(args.shared, VS_MYELOMA):
        cadd(c["system"], c["code"], "malignancy", "", c["display"], "VSAC " + VS_MYELOMA)
    out = os.path.join(crate, "data", "condition-codes.tsv")
    with open(out, "w", encoding="utf-8", newline="\n") as f:
        f.write("# Generated by scripts/gen_rxnorm_map.py - do not edit by hand.\n")
        f.write("# concept: fracture | osteoporosis | osteopenia | ckd45 | malignancy; site for fractures\n")
        f.write("system\tcode\tconcept\tsite\tdisplay\tsource\n")
        for key in sorted(crow):
            f.write("\t".join(crow[key]) + "\n")
    print("wrote %d medication rows, %d condition rows" % (len(rows), len(crow)))


if __name__ == "__main__":
    main()
