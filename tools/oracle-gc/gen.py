#!/usr/bin/env python3
"""Seeded generator of single-patient FHIR R4 Bundles aimed at knowledge.md v0.10.3 §1-§4
(glucocorticoid exposure, ACR-2022 risk category, treatment findings).

Every patient has its own as_of (stored in Bundle.meta.tag code "as-of:YYYY-MM-DD" so that diff.py
and oracle.py read the same date). Parameters are drawn densely around the thresholds of §2-§4.
Standard library only.

usage: gen.py --seed S --n N --out DIR
"""
import argparse
import datetime as dt
import json
import os
import random

RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
UCUM = "http://unitsofmeasure.org"
OG = "http://osteoguard.org/fhir/CodeSystem/osteoguard"
EXT_ADJ = "http://osteoguard.org/fhir/StructureDefinition/frax-gc-adjusted"
EXT_MECH = "http://osteoguard.org/fhir/StructureDefinition/fracture-mechanism"

# (name, rxnorm, mg equivalent to prednisone 5 mg); §2.2
GCS = [
    ("prednisone", "8640", 5.0),
    ("prednisolone", "8638", 5.0),
    ("methylprednisolone", "6902", 4.0),
    ("hydrocortisone", "5492", 20.0),
    ("dexamethasone", "3264", 0.75),
    ("triamcinolone", "10759", 4.0),
    ("cortisone", "2878", 25.0),
    ("deflazacort", "22396", 6.0),
    ("budesonide", "19831", None),
    ("fludrocortisone", "4452", None),
]
ROUTES = {
    "oral": ("26643006", "Oral route"),
    "iv": ("47625008", "Intravenous route"),
    "im": ("78421000", "Intramuscular route"),
    "inhaled": ("18679011000001101", "Inhalation"),
    "topical": ("6064005", "Topical route"),
}
# PEq values around the bands of §2.7 and the criteria of §2.6/§3.2
PEQS = [1.0, 2.4, 2.5, 2.6, 5.0, 7.4, 7.5, 7.6, 8.0, 10.0, 15.0, 20.0, 29.9, 30.0, 40.0, 60.0]
# day offsets before as_of around every day boundary of §2.5/§2.6/§4.4
STARTS = [0, 1, 6, 7, 8, 30, 60, 89, 90, 91, 92, 120, 150, 181, 182, 183, 184, 200, 250,
          300, 364, 365, 366, 400, 500, 700, 729, 730, 731, 800]
AGES = [16, 17, 18, 19, 25, 39, 40, 41, 49, 50, 51, 60, 72, 85]


def iso(d):
    return d.isoformat()


class Gen:
    def __init__(self, rng, idx):
        self.r = rng
        self.idx = idx
        self.entries = []
        self.n = 0

    def rid(self, p):
        self.n += 1
        return f"{p}-{self.n}"

    def add(self, res):
        res["subject" if res["resourceType"] != "Patient" else "_"] = {"reference": f"Patient/p{self.idx}"}
        res.pop("_", None)
        self.entries.append({"fullUrl": f"urn:uuid:{self.idx:08d}-{self.n:04d}", "resource": res})

    def med_cc(self, name, code):
        return {"coding": [{"system": RX, "code": code, "display": name}], "text": name}


def dose_block(g, mg):
    r = g.r
    k = r.random()
    if k < 0.06:
        return None, "missing"  # no dose at all -> UNKNOWN
    if k < 0.10:
        return {"doseQuantity": {"value": 1, "unit": "tablet", "system": UCUM, "code": "{tbl}"}}, "tbl"
    if k < 0.14:
        return {"doseQuantity": {"value": round(mg / 1000.0, 6), "unit": "g", "system": UCUM, "code": "g"}}, "g"
    if k < 0.17:
        return {"doseQuantity": {"value": round(mg * 1000.0, 3), "unit": "ug", "system": UCUM, "code": "ug"}}, "ug"
    if k < 0.21:
        return {"doseRange": {"low": {"value": round(mg / 2, 4), "unit": "mg", "system": UCUM, "code": "mg"},
                              "high": {"value": round(mg, 4), "unit": "mg", "system": UCUM, "code": "mg"}}}, "range"
    if k < 0.23:
        return {"doseQuantity": {"value": round(mg, 4), "unit": "puffs", "system": UCUM, "code": "{puff}"}}, "badunit"
    return {"doseQuantity": {"value": round(mg, 4), "unit": "mg", "system": UCUM, "code": "mg"}}, "mg"


def timing_variant(g):
    """returns (timing-repeat fields dict or None, timing code or None, per_day)"""
    r = g.r
    k = r.random()
    if k < 0.55:
        return {"frequency": 1, "period": 1, "periodUnit": "d"}, None, 1.0
    if k < 0.63:
        return {"frequency": 2, "period": 1, "periodUnit": "d"}, None, 2.0
    if k < 0.68:
        return {"frequency": 1, "period": 2, "periodUnit": "d"}, None, 0.5
    if k < 0.72:
        return {"frequency": 1, "frequencyMax": 2, "period": 1, "periodUnit": "d"}, None, 2.0
    if k < 0.75:
        return {"frequency": 1, "period": 1, "periodUnit": "wk"}, None, 1 / 7
    if k < 0.78:
        return {"frequency": 3, "period": 24, "periodUnit": "h"}, None, 3.0
    if k < 0.83:
        return None, "BID", 2.0
    if k < 0.86:
        return None, "QD", 1.0
    if k < 0.89:
        return {"when": ["MORN", "EVE"]}, None, 2.0
    if k < 0.94:
        return "none", None, None  # a dose without any timing -> UNKNOWN daily dose
    return {"frequency": 1, "period": 1, "periodUnit": "d"}, None, 1.0


def apply_product(g, res, name, code, product):
    if product is None:
        return
    if product[0] == "scd":
        res["medicationCodeableConcept"] = {"coding": [{"system": RX, "code": product[1]}], "text": name + " tablet"}
        return
    del res["medicationCodeableConcept"]
    res["contained"] = [{"resourceType": "Medication", "id": "med",
                         "code": {"coding": [{"system": RX, "code": code, "display": name}]},
                         "ingredient": [{"itemCodeableConcept": {"coding": [{"system": RX, "code": code}]},
                                         "strength": {"numerator": {"value": product[1], "unit": "mg",
                                                                    "system": UCUM, "code": "mg"},
                                                      "denominator": {"value": 1, "unit": "tablet",
                                                                      "system": UCUM, "code": "{tbl}"}}}]}]
    res["medicationReference"] = {"reference": "#med"}


def gc_record(g, as_of, peq_target=None, start_back=None, kind=None):
    r = g.r
    name, code, eq = r.choice(GCS[:8]) if r.random() < 0.93 else r.choice(GCS)
    peq = peq_target if peq_target is not None else r.choice(PEQS)
    start_back = start_back if start_back is not None else r.choice(STARTS)
    start = as_of - dt.timedelta(days=start_back)
    if r.random() < 0.05:
        start = as_of + dt.timedelta(days=r.choice([1, 5]))  # authored after as_of: invisible
    tim, tcode, per_day = timing_variant(g)
    per = per_day if per_day else 1.0
    factor = 5.0 / eq if eq else 1.0
    mg = peq / factor / per
    mg = round(mg, 4)
    route = r.choices(["oral", "iv", "none", "inhaled", "topical", "im"], [70, 6, 10, 5, 4, 5])[0]
    kind = kind or r.choices(["MR", "MS", "MA"], [70, 18, 12])[0]
    dose, dkind = dose_block(g, mg)
    dosage = {"text": f"{name} {mg} mg"}
    if route != "none":
        c, disp = ROUTES[route]
        dosage["route"] = {"coding": [{"system": SCT, "code": c, "display": disp}], "text": disp}
    if kind == "MA":
        res = {"resourceType": "MedicationAdministration", "id": g.rid("ma-gc"),
               "status": r.choices(["completed", "entered-in-error", "not-done"], [90, 5, 5])[0],
               "medicationCodeableConcept": g.med_cc(name, code),
               "effectiveDateTime": iso(start) + "T10:00:00Z"}
        pulse = r.choice([mg, 125, 250, 500, 1000, 40, 80]) if code in ("6902", "8638") else mg
        dd = {"text": dosage["text"]}
        if "route" in dosage:
            dd["route"] = dosage["route"]
        if r.random() < 0.93:
            dd["dose"] = {"value": pulse, "unit": "mg", "system": UCUM, "code": "mg"}
        res["dosage"] = dd
        g.add(res)
        return
    rep = {}
    timing = {}
    if tim == "none":
        timing = None
    else:
        if tim:
            rep.update(tim)
        if tcode:
            timing["code"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation",
                                          "code": tcode}], "text": tcode}
    # interval variants
    end = None
    ivk = r.random()
    dur = r.choice([5, 14, 29, 30, 31, 60, 89, 90, 91, 92, 120, 182, 365])
    if ivk < 0.40:
        bp = {"start": iso(start)}
        rep["boundsPeriod"] = bp
    elif ivk < 0.70:
        end = start + dt.timedelta(days=max(0, r.choice([dur, start_back - r.choice([0, 1, 6, 7, 8, 9, 30]),
                                                         start_back + 10])))
        rep["boundsPeriod"] = {"start": iso(start), "end": iso(end)}
    elif ivk < 0.80:
        rep["boundsDuration"] = {"value": dur, "unit": "days", "system": UCUM, "code": "d"}
    else:
        pass  # no bounds: authoredOn / effective start
    if timing is not None and (rep or not timing):
        timing["repeat"] = rep
    if timing is not None and "repeat" not in timing and rep:
        timing["repeat"] = rep
    if timing is not None:
        dosage["timing"] = timing
    if dose:
        dosage["doseAndRate"] = [dose]
    if r.random() < 0.04:
        dosage["asNeededBoolean"] = True
    product = None
    if kind in ("MR", "MS") and r.random() < 0.08 and name in ("prednisone", "prednisolone", "hydrocortisone"):
        # tablets with a known strength: a contained Medication (§2.2 ingredient.strength) or an SCD code
        strength = {"prednisone": 5.0, "prednisolone": 5.0, "hydrocortisone": 10.0}[name]
        n_tab = r.choice([0.5, 1, 2, 3])
        dosage["doseAndRate"] = [{"doseQuantity": {"value": n_tab, "unit": "tablet", "system": UCUM,
                                                   "code": "{tbl}"}}]
        dose = dosage["doseAndRate"][0]
        if r.random() < 0.5:
            product = ("contained", strength)
        else:
            product = ("scd", {"prednisone": "312617", "prednisolone": "198142", "hydrocortisone": "197782"}[name])
    if kind == "MR":
        status = r.choices(["active", "completed", "stopped", "on-hold", "entered-in-error", "cancelled", "draft"],
                           [50, 12, 22, 4, 4, 4, 4])[0]
        res = {"resourceType": "MedicationRequest", "id": g.rid("mr-gc"), "status": status,
               "intent": r.choices(["order", "plan", "proposal"], [90, 6, 4])[0],
               "medicationCodeableConcept": g.med_cc(name, code), "authoredOn": iso(start),
               "dosageInstruction": [dosage]}
        apply_product(g, res, name, code, product)
        if ivk >= 0.80 and r.random() < 0.3:
            vend = start + dt.timedelta(days=dur)
            res["dispenseRequest"] = {"validityPeriod": {"start": iso(start), "end": iso(vend)}}
        elif ivk >= 0.80 and r.random() < 0.3:
            res["dispenseRequest"] = {"expectedSupplyDuration": {"value": dur, "unit": "days", "system": UCUM,
                                                                 "code": "d"}}
        if r.random() < 0.08 and start_back > 20:
            # taper: two sequenced instructions with their own bounds
            split = start + dt.timedelta(days=r.choice([7, 14, start_back // 2]))
            end_ = (start + dt.timedelta(days=dur)) if ivk >= 0.4 else None
            first = json.loads(json.dumps(dosage))
            second = json.loads(json.dumps(dosage))
            if end_ is not None and end_ < split:
                end_ = split
            for x, (a_, b_) in ((first, (start, split - dt.timedelta(days=1))), (second, (split, end_))):
                t_ = x.setdefault("timing", {}).setdefault("repeat", {"frequency": 1, "period": 1, "periodUnit": "d"})
                t_.pop("boundsDuration", None)
                t_["boundsPeriod"] = {"start": iso(a_)} if b_ is None else {"start": iso(a_), "end": iso(b_)}
            first["sequence"], second["sequence"] = 1, 2
            if second.get("doseAndRate") and second["doseAndRate"][0].get("doseQuantity"):
                q = second["doseAndRate"][0]["doseQuantity"]
                q["value"] = round(q["value"] * r.choice([0.5, 0.25, 0.75]), 4)
            res["dosageInstruction"] = [first, second]
    else:
        status = r.choices(["active", "completed", "stopped", "not-taken", "intended"], [55, 15, 20, 5, 5])[0]
        res = {"resourceType": "MedicationStatement", "id": g.rid("ms-gc"), "status": status,
               "medicationCodeableConcept": g.med_cc(name, code), "dosage": [dosage]}
        apply_product(g, res, name, code, product)
        ep = {"start": iso(start)}
        if status in ("stopped", "completed") or r.random() < 0.3:
            ep["end"] = iso(start + dt.timedelta(days=dur))
        if status == "active" and r.random() < 0.1:
            res["effectiveDateTime"] = iso(start)
        else:
            res["effectivePeriod"] = ep
        res["dateAsserted"] = iso(start)
    g.add(res)


def simple_gc(g, as_of, kind, code, name, mg, start, end=None, status="active"):
    rep = {"frequency": 1, "period": 1, "periodUnit": "d", "boundsPeriod": {"start": iso(start)}}
    if end:
        rep["boundsPeriod"]["end"] = iso(end)
    dosage = {"timing": {"repeat": rep},
              "route": {"coding": [{"system": SCT, "code": "26643006"}]},
              "doseAndRate": [{"doseQuantity": {"value": mg, "unit": "mg", "system": UCUM, "code": "mg"}}]}
    if kind == "MR":
        g.add({"resourceType": "MedicationRequest", "id": g.rid("mr-gc"), "status": status, "intent": "order",
               "medicationCodeableConcept": g.med_cc(name, code), "authoredOn": iso(start),
               "dosageInstruction": [dosage]})
    else:
        ep = {"start": iso(start)}
        if end:
            ep["end"] = iso(end)
        g.add({"resourceType": "MedicationStatement", "id": g.rid("ms-gc"), "status": status,
               "medicationCodeableConcept": g.med_cc(name, code), "effectivePeriod": ep,
               "dateAsserted": iso(start), "dosage": [dosage]})


def dup_course(g, as_of, back):
    """the same prednisone course as an order and a statement (§2.3 step 5: counted once)"""
    r = g.r
    mg = r.choice([2.5, 5.0, 7.5, 10.0, 15.0, 30.0])
    start = as_of - dt.timedelta(days=back)
    simple_gc(g, as_of, "MR", "8640", "prednisone", mg, start)
    s2 = start + dt.timedelta(days=r.choice([0, 3, 10]))
    simple_gc(g, as_of, "MS", "8640", "prednisone", r.choice([mg, mg, mg / 2]), min(s2, as_of))


def gap_course(g, as_of):
    """two back-to-back courses with a gap of 6-9 days (gaps <= 7 bridged, §2.5)"""
    r = g.r
    mg = r.choice([2.5, 5.0, 7.5, 10.0, 30.0])
    second = r.choice([3, 10, 30, 60, 85, 88, 89, 90, 170, 176])
    gap = r.choice([6, 7, 8, 9])
    first_len = r.choice([10, 60, 90, 100, 200])
    s2 = as_of - dt.timedelta(days=second)
    e1 = s2 - dt.timedelta(days=gap + 1)
    s1 = e1 - dt.timedelta(days=first_len - 1)
    simple_gc(g, as_of, "MR", "8640", "prednisone", mg, s1, e1, status=r.choice(["completed", "stopped"]))
    end2 = None if r.random() < 0.5 else as_of - dt.timedelta(days=r.choice([0, 3, 7, 8]))
    if end2 is not None and end2 < s2:
        end2 = s2
    simple_gc(g, as_of, "MR", "8640", "prednisone", r.choice([mg, 2.4, 7.4]), s2, end2,
              status="active" if end2 is None else r.choice(["active", "completed"]))


def long_course(g, as_of):
    """a long course around the B2 (>= 7.5 mg for 182 days) and replacement boundaries"""
    r = g.r
    if r.random() < 0.5:
        name, code, mg = r.choice([("prednisone", "8640", 7.5), ("prednisone", "8640", 7.4),
                                   ("prednisolone", "8638", 10.0), ("prednisone", "8640", 20.0)])
    else:
        name, code, mg = r.choice([("hydrocortisone", "5492", 20.0), ("hydrocortisone", "5492", 30.0),
                                   ("hydrocortisone", "5492", 32.0), ("prednisolone", "8638", 5.0),
                                   ("cortisone", "2878", 25.0), ("prednisone", "8640", 5.0)])
    back = r.choice([175, 180, 181, 182, 183, 190, 400, 1000])
    simple_gc(g, as_of, "MR", code, name, mg, as_of - dt.timedelta(days=back))
    if r.random() < 0.5:
        g.add({"resourceType": "Condition", "id": g.rid("ai"),
               "code": {"coding": [{"system": ICD, "code": r.choice(["E27.40", "E27.1", "E23.0"])}]},
               "onsetDateTime": iso(as_of - dt.timedelta(days=2000)),
               "recordedDate": iso(as_of - dt.timedelta(days=2000))})


def unknown_course(g, as_of):
    """v0.10.3 2.5: a course whose current record has no computable dose, with known-dose records
    before it (the course start is the earliest record of the course)"""
    r = g.r
    b1 = r.choice([100, 200, 300, 400])
    e1 = b1 - r.choice([30, 60, 90])
    mg1 = r.choice([1.0, 2.4, 5.0, 10.0])
    simple_gc(g, as_of, "MR", "8640", "prednisone", mg1, as_of - dt.timedelta(days=b1),
              as_of - dt.timedelta(days=e1), status="completed")
    s2 = e1 + r.choice([-5, 1, 7, 8, 9])
    s2 = max(s2, 0)
    res = {"resourceType": "MedicationRequest", "id": g.rid("mr-gc"), "status": "active", "intent": "order",
           "medicationCodeableConcept": g.med_cc("prednisone", "8640"),
           "authoredOn": iso(as_of - dt.timedelta(days=s2)),
           "dosageInstruction": [{"text": "as directed", "timing": {"repeat": {
               "boundsPeriod": {"start": iso(as_of - dt.timedelta(days=s2))}, "frequency": 1, "period": 1,
               "periodUnit": "d"}}}]}
    g.add(res)
    if r.random() < 0.5:
        # a DXA near the start window edge of gc-fracture-risk-assessment-due clause (a)
        back = b1 + r.choice([364, 365, 366])
        obs(g, LOINC, "38264-8", r.choice([-1.0, -2.6]), "{T-score}", "{T-score}", as_of - dt.timedelta(days=back))


def supplement(g, as_of, what):
    r = g.r
    name, code = ("calcium carbonate", "1897") if what == "ca" else ("cholecalciferol", "2418")
    back = r.choice([5, 20, 29, 30, 31, 45, 100, 400])
    start = as_of - dt.timedelta(days=back)
    kind = r.choice(["MR", "MR", "MS"])
    if kind == "MR":
        st = r.choices(["active", "stopped", "completed", "entered-in-error"], [70, 15, 8, 7])[0]
        res = {"resourceType": "MedicationRequest", "id": g.rid("mr-" + what), "status": st, "intent": "order",
               "medicationCodeableConcept": g.med_cc(name, code), "authoredOn": iso(start),
               "dosageInstruction": [{"text": "once daily", "timing": {"repeat": {
                   "boundsPeriod": {"start": iso(start)}, "frequency": 1, "period": 1, "periodUnit": "d"}}}]}
    else:
        st = r.choices(["active", "stopped", "not-taken"], [75, 15, 10])[0]
        ep = {"start": iso(start)}
        if st == "stopped":
            ep["end"] = iso(start + dt.timedelta(days=r.choice([3, back - 1, back, back + 3])))
        res = {"resourceType": "MedicationStatement", "id": g.rid("ms-" + what), "status": st,
               "medicationCodeableConcept": g.med_cc(name, code), "effectivePeriod": ep,
               "dateAsserted": iso(start)}
    g.add(res)


def obs(g, code_sys, code, value, unit, ucum, when, issued=None, extra=None):
    res = {"resourceType": "Observation", "id": g.rid("obs"), "status": "final",
           "code": {"coding": [{"system": code_sys, "code": code}]},
           "effectiveDateTime": iso(when) + "T09:00:00Z",
           "issued": iso(issued or when) + "T12:00:00Z"}
    if value is not None:
        q = {"value": value, "unit": unit, "system": UCUM}
        if ucum:
            q["code"] = ucum
        res["valueQuantity"] = q
    if extra:
        res.update(extra)
    g.add(res)


def frax(g, as_of):
    r = g.r
    back = r.choice([0, 10, 100, 300, 364, 365, 366, 400])
    when = as_of - dt.timedelta(days=back)
    issued = when if r.random() < 0.95 else as_of + dt.timedelta(days=2)
    ext = r.choice([None, None, False, True])
    mof = r.choice([5.0, 8.0, 8.7, 8.69, 9.0, 9.99, 10.0, 12.0, 17.4, 17.39, 18.0, 19.9, 20.0, 25.0, 26.1, 26.08,
                    29.9, 30.0, 35.0])
    hip = r.choice([0.5, 0.87, 0.9, 0.99, 1.0, 1.2, 2.5, 2.8, 2.9, 2.99, 3.0, 3.75, 3.8, 4.4, 4.5, 5.0])
    for code, v in (("frax-mof", mof), ("frax-hip", hip)):
        if r.random() < 0.12:
            continue
        unit, ucum = "%", "%"
        k = r.random()
        if k < 0.08:
            v, unit, ucum = round(v / 100.0, 6), "1", "1"
        elif k < 0.11:
            unit, ucum = "mg", "mg"  # unit unknown -> missing + data-insufficient (9)
        elif k < 0.14:
            v = r.choice([101.0, -1.0, 150.0])  # out of range
        extra = {}
        if ext is not None:
            extra["extension"] = [{"url": EXT_ADJ, "valueBoolean": ext}]
        obs(g, OG, code, v, unit, ucum, when, issued, extra)


DXA_T = {"spine": "38267-1", "hip": "38264-8", "femur": "38263-0"}
DXA_Z = {"spine": "85394-5", "hip": "80933-5"}


def dxa(g, as_of):
    r = g.r
    back = r.choice([0, 14, 100, 200, 365, 729, 730, 731, 900])
    when = as_of - dt.timedelta(days=back)
    issued = when if r.random() < 0.95 else as_of + dt.timedelta(days=3)
    sites = r.sample(list(DXA_T), r.choice([1, 1, 2, 3]))
    for s in sites:
        t = r.choice([0.5, -0.9, -1.0, -1.1, -2.0, -2.4, -2.5, -2.6, -3.4, -3.5, -3.6])
        obs(g, LOINC, DXA_T[s], t, "{T-score}", "{T-score}", when, issued)
        if r.random() < 0.06:
            g.entries[-1]["resource"]["status"] = r.choice(["preliminary", "entered-in-error", "cancelled",
                                                            "registered"])
    if r.random() < 0.6:
        s = r.choice(list(DXA_Z))
        z = r.choice([-1.0, -2.9, -3.0, -3.1, -3.5])
        obs(g, LOINC, DXA_Z[s], z, "{Z-score}", "{Z-score}", when, issued)


def fracture(g, as_of):
    r = g.r
    back = r.choice([1, 30, 100, 400, 2000])
    onset = as_of - dt.timedelta(days=back)
    rec = onset if r.random() < 0.9 else as_of + dt.timedelta(days=2)
    kind = r.choice(["hip", "wrist", "vert", "vert-nolevel", "other", "hip-icd", "humerus", "subsequent",
                     "sct-osteo", "vert-s32"])
    res = {"resourceType": "Condition", "id": g.rid("fx"), "onsetDateTime": iso(onset), "recordedDate": iso(rec)}
    if kind == "hip":
        res["code"] = {"coding": [{"system": SCT, "code": "359817006", "display": "Closed fracture of hip"}]}
    elif kind == "wrist":
        res["code"] = {"coding": [{"system": ICD, "code": "S52.501A", "display": "fracture of radius, distal"}]}
    elif kind == "vert":
        res["code"] = {"coding": [{"system": ICD, "code": "M80.08XA"}]}
        res["bodySite"] = [{"text": r.choice(["T12", "L1", "L2"])}]
    elif kind == "vert-nolevel":
        res["code"] = {"coding": [{"system": ICD, "code": "M48.50XA"}]}
    elif kind == "hip-icd":
        res["code"] = {"coding": [{"system": ICD, "code": r.choice(["S72.001A", "S72.141A", "M80.051A"])}]}
    elif kind == "humerus":
        res["code"] = {"coding": [{"system": ICD, "code": r.choice(["S42.201A", "M80.021A"])}]}
    elif kind == "subsequent":
        res["code"] = {"coding": [{"system": ICD, "code": r.choice(["M80.08XD", "S72.001D", "S32.010S"])}]}
    elif kind == "sct-osteo":
        res["code"] = {"coding": [{"system": SCT, "code": "443165006"}]}
    elif kind == "vert-s32":
        res["code"] = {"coding": [{"system": ICD, "code": r.choice(["S32.010A", "S22.060A", "S32.029A"])}]}
    else:
        res["code"] = {"coding": [{"system": ICD, "code": "S82.101A", "display": "fracture of tibia"}]}
    if r.random() < 0.08:
        del res["onsetDateTime"]
        res["onsetPeriod"] = {"start": iso(onset - dt.timedelta(days=20)), "end": iso(onset)}
    vs = r.choices(["confirmed", "refuted", "entered-in-error", None], [80, 7, 5, 8])[0]
    if vs:
        res["verificationStatus"] = {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": vs}]}
    if r.random() < 0.1:
        res["extension"] = [{"url": EXT_MECH, "valueCode": r.choice(["traumatic", "fragility"])}]
    g.add(res)


def op_therapy(g, as_of):
    r = g.r
    k = r.choice(["aln-active", "aln-stopped", "aln-draft", "zol", "dmab", "ralox", "teri"])
    if k.startswith("aln"):
        back = r.choice([10, 60, 100, 400])
        start = as_of - dt.timedelta(days=back)
        st = {"aln-active": "active", "aln-stopped": "stopped", "aln-draft": "draft"}[k]
        res = {"resourceType": "MedicationRequest", "id": g.rid("mr-aln"), "status": st, "intent": "order",
               "medicationCodeableConcept": g.med_cc("alendronate", "46041"), "authoredOn": iso(start),
               "dosageInstruction": [{"text": "70 mg weekly", "timing": {"repeat": {
                   "boundsPeriod": {"start": iso(start)}, "frequency": 1, "period": 1, "periodUnit": "wk"}},
                   "doseAndRate": [{"doseQuantity": {"value": 70, "unit": "mg", "system": UCUM, "code": "mg"}}]}]}
        g.add(res)
    elif k == "zol":
        back = r.choice([30, 364, 365, 366, 500])
        g.add({"resourceType": "MedicationAdministration", "id": g.rid("ma-zol"), "status": "completed",
               "medicationCodeableConcept": g.med_cc("zoledronic acid", "77655"),
               "effectiveDateTime": iso(as_of - dt.timedelta(days=back)) + "T10:00:00Z",
               "dosage": {"dose": {"value": 5, "unit": "mg", "system": UCUM, "code": "mg"}}})
    elif k == "dmab":
        back = r.choice([20, 100, 150])
        g.add({"resourceType": "MedicationAdministration", "id": g.rid("ma-dmab"), "status": "completed",
               "medicationCodeableConcept": g.med_cc("denosumab", "993449"),
               "effectiveDateTime": iso(as_of - dt.timedelta(days=back)) + "T10:00:00Z",
               "dosage": {"dose": {"value": 60, "unit": "mg", "system": UCUM, "code": "mg"}}})
    elif k in ("ralox", "teri"):
        start = as_of - dt.timedelta(days=r.choice([10, 200]))
        if k == "ralox":
            cc = g.med_cc("raloxifene", "72143")
        else:
            # teriparatide has no verified RxNorm code (knowledge.md 10.1 "110634?"): ATC H05AA02
            cc = {"coding": [{"system": "http://www.whocc.no/atc", "code": "H05AA02", "display": "teriparatide"}]}
        g.add({"resourceType": "MedicationRequest", "id": g.rid("mr-op"), "status": "active", "intent": "order",
               "medicationCodeableConcept": cc, "authoredOn": iso(start),
               "dosageInstruction": [{"text": "daily", "timing": {"repeat": {
                   "boundsPeriod": {"start": iso(start)}, "frequency": 1, "period": 1, "periodUnit": "d"}}}]})


# ---------------------------------------------------------------------------------------------------
# New areas (session 10; only with --new, drawn from a separate random stream so that the old seeds'
# bundles stay byte-identical): Medication resources with ingredient strength, SCD/SBD product codes,
# calcium + vitamin D combinations, abaloparatide / romosozumab / teriparatide products, completed anabolic
# courses, FRAX "glucocorticoids entered = no", §2.4 depot / pulse series, §2.8 replacement, and the inputs of
# the data-insufficient items (3)-(5), (7), (8): denosumab doses and orders, zoledronate orders, labs.
ATC = "http://www.whocc.no/atc"
# VSAC glucocorticoid SCDs (code, ingredient, mg per unit, unit)
SCDS = [("312617", "prednisone", "8640", 5.0, "tbl"), ("198145", "prednisone", "8640", 10.0, "tbl"),
        ("198146", "prednisone", "8640", 2.5, "tbl"), ("312615", "prednisone", "8640", 20.0, "tbl"),
        ("198142", "prednisolone", "8638", 5.0, "tbl"), ("429199", "prednisolone", "8638", 20.0, "tbl"),
        ("197782", "hydrocortisone", "5492", 10.0, "tbl"), ("197787", "hydrocortisone", "5492", 5.0, "tbl"),
        ("259966", "methylprednisolone", "6902", 4.0, "tbl"), ("197582", "dexamethasone", "3264", 4.0, "tbl"),
        ("197577", "dexamethasone", "3264", 0.5, "tbl"), ("312614", "prednisolone", "8638", 1.0, "mL"),
        ("205301", "prednisone", "8640", 5.0, "mL"), ("828248", "cortisone", "2878", 25.0, "tbl")]
EQ = {"8640": 5.0, "8638": 5.0, "6902": 4.0, "5492": 20.0, "3264": 0.75, "2878": 25.0, "10759": 4.0}


def daily_rep(start, end=None, freq=1):
    rep = {"frequency": freq, "period": 1, "periodUnit": "d", "boundsPeriod": {"start": iso(start)}}
    if end:
        rep["boundsPeriod"]["end"] = iso(end)
    return {"repeat": rep}


def unit_q(n, kind):
    if kind == "tbl":
        return {"value": n, "unit": "tablet", "system": UCUM, "code": r_choice_tbl[0]}
    return {"value": n, "unit": "mL", "system": UCUM, "code": "mL"}


r_choice_tbl = ["{tbl}"]


def gc_product(g, as_of, r):
    """a GC order/statement whose dose is in product units (tablets, mL): strength from a standalone or
    contained Medication's ingredient.strength, or from an SCD code (§2.2, §2.3 step 1, §10.1)"""
    code, name, ing, strength, kind = r.choice(SCDS)
    r_choice_tbl[0] = r.choice(["{tbl}", "{tbl}", "TAB"])
    peq = r.choice(PEQS)
    per_unit_peq = strength * 5.0 / EQ[ing]
    n = max(0.5, round(peq / per_unit_peq * 2) / 2)  # half units
    if kind == "mL":
        n = round(peq / per_unit_peq, 2)
    back = r.choice(STARTS)
    start = as_of - dt.timedelta(days=back)
    end = None if r.random() < 0.6 else start + dt.timedelta(days=r.choice([29, 89, 90, 91, 181, 364]))
    dosage = {"text": f"{n} {kind} daily", "route": {"coding": [{"system": SCT, "code": "26643006"}]},
              "timing": daily_rep(start, end, r.choice([1, 1, 2])),
              "doseAndRate": [{"doseQuantity": unit_q(n, kind)}]}
    how = r.choice(["scd", "contained", "standalone", "standalone-code-only", "no-strength", "g-strength",
                    "ug-strength", "den5"])
    kind_res = r.choice(["MR", "MR", "MS"])
    res = {"resourceType": "MedicationRequest" if kind_res == "MR" else "MedicationStatement",
           "id": g.rid("mr-gcp" if kind_res == "MR" else "ms-gcp"), "status": "active"}
    if kind_res == "MR":
        res.update({"intent": "order", "authoredOn": iso(start), "dosageInstruction": [dosage]})
    else:
        res.update({"effectivePeriod": {"start": iso(start)}, "dateAsserted": iso(start), "dosage": [dosage]})
    if how == "scd":
        res["medicationCodeableConcept"] = {"coding": [{"system": RX, "code": code}], "text": name}
        g.add(res)
        return
    num = {"value": strength, "unit": "mg", "system": UCUM, "code": "mg"}
    den_v = 1
    if how == "g-strength":
        num = {"value": strength / 1000.0, "unit": "g", "system": UCUM, "code": "g"}
    elif how == "ug-strength":
        num = {"value": strength * 1000.0, "unit": "ug", "system": UCUM, "code": "ug"}
    elif how == "den5":
        den_v = 5
        num = {"value": strength * 5, "unit": "mg", "system": UCUM, "code": "mg"}
    den = {"value": den_v, "unit": "tablet" if kind == "tbl" else "mL", "system": UCUM,
           "code": r_choice_tbl[0] if kind == "tbl" else "mL"}
    med = {"resourceType": "Medication", "id": "med" if how == "contained" else g.rid("med")}
    if how == "standalone-code-only":
        med["code"] = {"coding": [{"system": RX, "code": code}], "text": name}
    else:
        med["code"] = {"coding": [{"system": RX, "code": ing, "display": name}]}
        ingr = {"itemCodeableConcept": {"coding": [{"system": RX, "code": ing}]}}
        if how != "no-strength":
            ingr["strength"] = {"numerator": num, "denominator": den}
        med["ingredient"] = [ingr]
    if how == "contained":
        res["contained"] = [med]
        res["medicationReference"] = {"reference": "#med"}
        g.add(res)
    else:
        g.add(med)
        res["medicationReference"] = {"reference": "Medication/" + med["id"]}
        g.add(res)


def combo_supplement(g, as_of, r):
    """calcium + vitamin D combination product (§10.1: satisfies both supplement predicates)"""
    back = r.choice([5, 29, 30, 31, 100])
    start = as_of - dt.timedelta(days=back)
    med = {"resourceType": "Medication", "id": g.rid("med-cavd"),
           "code": {"text": "calcium carbonate 600 MG / cholecalciferol 400 UNT Oral Tablet"},
           "ingredient": [{"itemCodeableConcept": {"coding": [{"system": RX, "code": "1897"}]}},
                          {"itemCodeableConcept": {"coding": [{"system": RX, "code": "2418"}]}}]}
    st = r.choices(["active", "stopped", "entered-in-error", "draft"], [70, 15, 8, 7])[0]
    res = {"resourceType": "MedicationRequest", "id": g.rid("mr-cavd"), "status": st, "intent": "order",
           "authoredOn": iso(start), "dosageInstruction": [{"text": "1 tablet daily", "timing": daily_rep(start)}]}
    if r.random() < 0.5:
        med["id"] = "cavd"
        res["contained"] = [med]
        res["medicationReference"] = {"reference": "#cavd"}
    else:
        g.add(med)
        res["medicationReference"] = {"reference": "Medication/" + med["id"]}
    g.add(res)


def anabolic(g, as_of, r):
    """teriparatide / abaloparatide / romosozumab orders: active, planned (draft), stopped, and completed
    courses around 730 days (§4.2, §4.3, §9 anabolic-therapy-preferred)"""
    agent = r.choice(["teri", "abalo", "romo"])
    cc = {"teri": r.choice([{"coding": [{"system": ATC, "code": "H05AA02"}], "text": "teriparatide"},
                            {"coding": [{"system": RX, "code": r.choice(["1435115", "1435117"])}],
                             "text": "teriparatide pen"}]),
          "abalo": r.choice([{"coding": [{"system": ATC, "code": "H05AA04"}], "text": "abaloparatide"},
                             {"coding": [{"system": RX, "code": r.choice(["1921069", "1921082", "1921083"])}],
                              "text": "abaloparatide"}]),
          "romo": {"coding": [{"system": ATC, "code": "M05BX06"}], "text": "romosozumab"}}[agent]
    k = r.choice(["active", "draft", "stopped", "course", "course", "course2"])
    if k in ("active", "draft", "stopped"):
        start = as_of - dt.timedelta(days=r.choice([0, 10, 89, 90, 91, 200]))
        g.add({"resourceType": "MedicationRequest", "id": g.rid("mr-ana"), "status": k, "intent": "order",
               "medicationCodeableConcept": cc, "authoredOn": iso(start),
               "dosageInstruction": [{"text": "daily", "timing": daily_rep(start)}]})
        return
    total = r.choice([728, 729, 730, 731, 732])
    end_back = r.choice([1, 30, 200, 400])
    end = as_of - dt.timedelta(days=end_back)
    if k == "course":
        start = end - dt.timedelta(days=total - 1)
        g.add({"resourceType": "MedicationRequest", "id": g.rid("mr-ana"), "status": r.choice(["completed",
                                                                                              "stopped"]),
               "intent": "order", "medicationCodeableConcept": cc, "authoredOn": iso(start),
               "dosageInstruction": [{"text": "daily", "timing": daily_rep(start, end)}]})
    else:
        # two statements with a gap of 20 days; together `total` days
        first = total // 2
        s2 = end - dt.timedelta(days=total - first - 1)
        e1 = s2 - dt.timedelta(days=21)
        s1 = e1 - dt.timedelta(days=first - 1)
        for a_, b_ in ((s1, e1), (s2, end)):
            g.add({"resourceType": "MedicationStatement", "id": g.rid("ms-ana"), "status": "completed",
                   "medicationCodeableConcept": cc, "effectivePeriod": {"start": iso(a_), "end": iso(b_)},
                   "dateAsserted": iso(b_)})


def depot_pulse(g, as_of, r):
    """§2.4: IM triamcinolone depot spread over 21 days; IV pulses counted on the day given"""
    if r.random() < 0.5:
        mg = r.choice([40, 80])
        every = r.choice([21, 28, 42])
        n = r.choice([1, 2, 5, 6])
        last = r.choice([0, 6, 7, 8, 14, 20, 21, 22, 28])
        for i in range(n):
            day = as_of - dt.timedelta(days=last + i * every)
            g.add({"resourceType": "MedicationAdministration", "id": g.rid("ma-depot"), "status": "completed",
                   "medicationCodeableConcept": g.med_cc("triamcinolone", "10759"),
                   "effectiveDateTime": iso(day) + "T10:00:00Z",
                   "dosage": {"route": {"coding": [{"system": SCT, "code": "78421000"}]},
                              "dose": {"value": mg, "unit": "mg", "system": UCUM, "code": "mg"}}})
    else:
        name, code, mg = r.choice([("dexamethasone", "3264", 8.0), ("methylprednisolone", "6902", 500.0),
                                   ("methylprednisolone", "6902", 24.0), ("dexamethasone", "3264", 4.5)])
        n = r.choice([3, 29, 30, 31, 32])
        first = r.choice([n - 1, 100, 340, 364 - n + 2, 366])
        for i in range(n):
            day = as_of - dt.timedelta(days=first - i)
            if day > as_of:
                break
            g.add({"resourceType": "MedicationAdministration", "id": g.rid("ma-pulse"), "status": "completed",
                   "medicationCodeableConcept": g.med_cc(name, code),
                   "effectiveDateTime": iso(day) + "T10:00:00Z",
                   "dosage": {"route": {"coding": [{"system": SCT, "code": "47625008"}]},
                              "dose": {"value": mg, "unit": "mg", "system": UCUM, "code": "mg"}}})


def replacement(g, as_of, r):
    """§2.8: adrenal insufficiency on hydrocortisone / cortisone / prednisolone around 7.5 mg PEq"""
    ai_code = r.choice(["E27.1", "E27.40", "E23.0", "E27.49"])
    vs = r.choices(["confirmed", "refuted", None], [80, 10, 10])[0]
    rec = as_of - dt.timedelta(days=2000) if r.random() < 0.9 else as_of + dt.timedelta(days=3)
    cond = {"resourceType": "Condition", "id": g.rid("ai"), "code": {"coding": [{"system": ICD, "code": ai_code}]},
            "onsetDateTime": iso(as_of - dt.timedelta(days=2000)), "recordedDate": iso(rec)}
    if vs:
        cond["verificationStatus"] = {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": vs}]}
    g.add(cond)
    start = as_of - dt.timedelta(days=r.choice([60, 100, 400, 1500]))
    k = r.choice(["split", "hc", "pred", "cortisone"])
    if k == "split":
        doses = r.choice([(10, 5, 5), (10, 5), (15, 10, 5), (20, 10), (10, 10, 10)])
        lines = [{"text": f"{x} mg", "timing": daily_rep(start), "route": {"coding": [{"system": SCT,
                                                                                      "code": "26643006"}]},
                  "doseAndRate": [{"doseQuantity": {"value": x, "unit": "mg", "system": UCUM, "code": "mg"}}]}
                 for x in doses]
        g.add({"resourceType": "MedicationRequest", "id": g.rid("mr-hc"), "status": "active", "intent": "order",
               "medicationCodeableConcept": g.med_cc("hydrocortisone", "5492"), "authoredOn": iso(start),
               "dosageInstruction": lines})
    else:
        name, code, mg = {"hc": ("hydrocortisone", "5492", r.choice([15, 20, 25, 30, 31, 32])),
                          "pred": ("prednisolone", "8638", r.choice([3, 5, 7.5, 7.6, 8])),
                          "cortisone": ("cortisone", "2878", r.choice([25, 37.5, 37.6]))}[k]
        simple_gc(g, as_of, "MR", code, name, mg, start)
    if r.random() < 0.2:
        simple_gc(g, as_of, "MR", "3264", "dexamethasone", 0.5, start)


LABS = {"creat": ("2160-0", [(0.9, "mg/dL"), (80.0, "umol/L"), (1.1, "mmol/L")]),
        "egfr": (None, [(60.0, "mL/min/{1.73_m2}"), (34.0, "mL/min/{1.73_m2}"), (36.0, "mL/min/{1.73_m2}"),
                        (60.0, "mL/min")]),
        "ca": ("17861-6", [(9.4, "mg/dL"), (2.35, "mmol/L"), (9.4, "mEq/L")]),
        "vitd": (None, [(32.0, "ng/mL"), (80.0, "nmol/L"), (32.0, "ug/L")]),
        "weight": ("29463-7", [(65.0, "kg"), (65000.0, "g"), (65.0, "stone")])}


def labs(g, as_of, r):
    for kind, (code, variants) in LABS.items():
        if r.random() < 0.35:
            continue
        if kind == "egfr":
            code = r.choice(["33914-3", "62238-1", "98979-8"])
        if kind == "vitd":
            code = r.choice(["62292-8", "1989-3"])
        v, u = variants[0] if r.random() < 0.6 else r.choice(variants)
        back = r.choice([0, 10, 29, 30, 31, 60, 200, 364, 365, 366, 500])
        when = as_of - dt.timedelta(days=back)
        issued = when if r.random() < 0.95 else as_of + dt.timedelta(days=1)
        obs(g, LOINC, code, v, u, u, when, issued)


def denosumab(g, as_of, r):
    k = r.choice(["doses", "doses", "doses", "order", "undated", "zol-order"])
    if k == "doses":
        n = r.choice([1, 2, 2, 3])
        last = r.choice([100, 153, 154, 155, 182, 183, 200, 209, 210, 211, 212, 250, 294, 295, 300])
        for i in range(n):
            day = as_of - dt.timedelta(days=last + 182 * (n - 1 - i))
            g.add({"resourceType": "MedicationAdministration", "id": g.rid("ma-dmab"), "status": "completed",
                   "medicationCodeableConcept": g.med_cc("denosumab", "993449"),
                   "effectiveDateTime": iso(day) + "T10:00:00Z",
                   "dosage": {"dose": {"value": 60, "unit": "mg", "system": UCUM, "code": "mg"}}})
        if n >= 2 and last >= 183 and r.random() < 0.4:
            onset = as_of - dt.timedelta(days=r.randrange(0, last - 182))
            fx = {"resourceType": "Condition", "id": g.rid("fx-reb"), "onsetDateTime": iso(onset),
                  "recordedDate": iso(onset), "code": {"coding": [{"system": ICD, "code": r.choice(
                      ["M80.08XA", "M48.56XA", "S32.020A"])}]}}
            if r.random() < 0.5:
                fx["bodySite"] = [{"text": r.choice(["L1", "L2", "T12"])}]
            g.add(fx)
    elif k == "order" or k == "zol-order":
        name, code = ("denosumab", "993449") if k == "order" else ("zoledronic acid", "77655")
        back = r.choice([0, 30, 89, 90, 91, 120])
        start = as_of - dt.timedelta(days=back)
        g.add({"resourceType": "MedicationRequest", "id": g.rid("mr-" + k), "status": r.choice(["draft", "active"]),
               "intent": "order", "medicationCodeableConcept": g.med_cc(name, code), "authoredOn": iso(start),
               "dosageInstruction": [{"text": "once"}]})
        if r.random() < 0.3:
            given = start + dt.timedelta(days=r.choice([-1, 0, 1]))
            if given <= as_of:
                g.add({"resourceType": "MedicationAdministration", "id": g.rid("ma-" + k), "status": "completed",
                       "medicationCodeableConcept": g.med_cc(name, code),
                       "effectiveDateTime": iso(given) + "T10:00:00Z"})
    else:
        kind = r.choice(["MA", "MS"])
        if kind == "MA":
            g.add({"resourceType": "MedicationAdministration", "id": g.rid("ma-dmab-nodate"), "status": "completed",
                   "medicationCodeableConcept": g.med_cc("denosumab", "993449")})
        else:
            g.add({"resourceType": "MedicationStatement", "id": g.rid("ms-dmab-nodate"),
                   "status": r.choice(["active", "completed"]),
                   "medicationCodeableConcept": g.med_cc("denosumab", "993449")})


def frax_gc_no(g, r):
    """§3.3: FRAX entered with glucocorticoids = no: the same multipliers apply"""
    for e in g.entries:
        res = e["resource"]
        if res["resourceType"] == "Observation" and any(
                c.get("code") in ("frax-mof", "frax-hip") for c in res["code"]["coding"]):
            res["component"] = [{"code": {"text": "Glucocorticoids entered"}, "valueBoolean": False}]


def extend(g, as_of, r):
    if r.random() < 0.35:
        gc_product(g, as_of, r)
    if r.random() < 0.2:
        combo_supplement(g, as_of, r)
    if r.random() < 0.25:
        anabolic(g, as_of, r)
    if r.random() < 0.12:
        depot_pulse(g, as_of, r)
    if r.random() < 0.12:
        replacement(g, as_of, r)
    if r.random() < 0.45:
        denosumab(g, as_of, r)
    if r.random() < 0.6:
        labs(g, as_of, r)
    if r.random() < 0.25:
        frax_gc_no(g, r)
    if r.random() < 0.1:
        # §4.3: a statement of unknown status -> therapy UNKNOWN -> "confirm current therapy"
        start = as_of - dt.timedelta(days=r.choice([0, 30, 400]))
        name, code = r.choice([("alendronate", "46041"), ("risedronate", "73056"), ("raloxifene", "72143")])
        g.add({"resourceType": "MedicationStatement", "id": g.rid("ms-unknown"), "status": "unknown",
               "medicationCodeableConcept": g.med_cc(name, code), "effectivePeriod": {"start": iso(start)},
               "dateAsserted": iso(start)})


def patient(rng, idx, new=False):
    g = Gen(rng, idx)
    r = rng
    as_of = dt.date(2022, 1, 1) + dt.timedelta(days=r.randrange(0, 1400))
    age = r.choice(AGES)
    birth = dt.date(as_of.year - age, as_of.month, min(as_of.day, 28))
    birth += dt.timedelta(days=r.choice([0, 0, 1, -1]))  # birthday tomorrow/yesterday
    g.add({"resourceType": "Patient", "id": f"p{idx}", "gender": r.choice(["female", "male"]),
           "birthDate": iso(birth)})
    # GC exposure: a main course (often), sometimes a taper / second record / pulse
    ngc = r.choices([0, 1, 2, 3], [12, 55, 25, 8])[0]
    main_back = r.choice(STARTS)
    shape = r.random()
    if shape < 0.06:
        dup_course(g, as_of, main_back)
        ngc = 0
    elif shape < 0.14:
        gap_course(g, as_of)
        ngc = 0
    elif shape < 0.20:
        long_course(g, as_of)
        ngc = 0
    elif shape < 0.26:
        unknown_course(g, as_of)
        ngc = 0
    for i in range(ngc):
        if i == 0:
            gc_record(g, as_of, start_back=main_back)
        elif r.random() < 0.5:
            # a second record near the first (course continuity / overlap / MR+MS duplicate)
            gc_record(g, as_of, start_back=max(0, main_back - r.choice([0, 7, 8, 30, 60])))
        else:
            gc_record(g, as_of)
    if r.random() < 0.08:
        g.add({"resourceType": "Condition", "id": g.rid("ai"),
               "code": {"coding": [{"system": ICD, "code": "E27.40"}]},
               "onsetDateTime": iso(as_of - dt.timedelta(days=1000)),
               "recordedDate": iso(as_of - dt.timedelta(days=1000))})
    if r.random() < 0.55:
        supplement(g, as_of, "ca")
    if r.random() < 0.55:
        supplement(g, as_of, "vitd")
    for _ in range(r.choices([0, 1, 2], [45, 50, 5])[0]):
        frax(g, as_of)
    if r.random() < 0.6:
        dxa(g, as_of)
    if r.random() < 0.3:
        fracture(g, as_of)
    if r.random() < 0.25:
        op_therapy(g, as_of)
    if new:
        extend(g, as_of, random.Random(idx * 7919 + 17))
    return {"resourceType": "Bundle", "id": f"oragc-{idx}", "type": "collection",
            "meta": {"tag": [{"system": "urn:oragc", "code": "as-of:" + iso(as_of)}]},
            "entry": g.entries}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--out", required=True)
    ap.add_argument("--new", action="store_true", help="add the session-10 areas (separate random stream)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rng = random.Random(a.seed)
    for i in range(a.n):
        idx = a.seed * 100000 + i
        b = patient(rng, idx, a.new)
        with open(os.path.join(a.out, f"p{idx}.json"), "w") as f:
            json.dump(b, f)


if __name__ == "__main__":
    main()
