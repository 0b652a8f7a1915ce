#!/usr/bin/env python3
"""Seeded generator of single-patient FHIR R4 Bundles aimed at knowledge.md v0.10.3
sections 5 (denosumab), 6 (bone density), 8 (safety checks) and the vertebral-fracture
inputs of 5.5 / 6.2 / 7.4.  Python 3 standard library only.

Usage: gen.py --seed S --n N --out DIR   -> DIR/p<seed>-<i>.json, each with an
"as_of" written into Bundle.meta.tag (code "as-of") so the differential knows it.
"""
import argparse
import datetime as dt
import json
import os
import random

from wide import widen

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"

DMAB_GAPS = [0, 30, 100, 153, 154, 155, 181, 182, 183, 184, 209, 210, 211, 212, 293, 294, 295,
             296, 400, 600, 800]
LEVELS = ["T11", "T12", "L1", "L2", "L3", "L4", "L5"]


def d2s(d):
    return d.isoformat()


def med(code, display):
    return {"coding": [{"system": RXNORM, "code": code, "display": display}], "text": display}


def qty(value, unit, code=None):
    return {"value": value, "unit": unit, "system": UCUM, "code": code or unit}


class Gen:
    def __init__(self, rng, pid):
        self.rng = rng
        self.pid = pid
        self.res = []
        self.n = 0

    def add(self, r):
        self.n += 1
        r["id"] = f"{self.pid}-{r['resourceType'][:4].lower()}-{self.n}"
        r["subject"] = {"reference": f"Patient/{self.pid}"}
        self.res.append(r)
        return r

    # ---------------- medications ----------------
    def dmab_admin(self, day, status="completed", dose=60, with_date=True):
        r = {"resourceType": "MedicationAdministration", "status": status,
             "medicationCodeableConcept": med("993449", "denosumab"),
             "dosage": {"dose": qty(dose, "mg")}}
        if with_date:
            r["effectiveDateTime"] = d2s(day) + "T10:00:00Z"
        return self.add(r)

    def dmab_statement(self, day, status="completed"):
        return self.add({"resourceType": "MedicationStatement", "status": status,
                         "medicationCodeableConcept": med("993449", "denosumab"),
                         "effectiveDateTime": d2s(day), "dateAsserted": d2s(day)})

    def dmab_request(self, day, status):
        return self.add({"resourceType": "MedicationRequest", "status": status, "intent": "order",
                         "medicationCodeableConcept": med("993449", "denosumab"),
                         "authoredOn": d2s(day),
                         "dosageInstruction": [{"text": "60 mg SC every 6 months",
                                                "doseAndRate": [{"doseQuantity": qty(60, "mg")}]}]})

    def zol_admin(self, day, status="completed"):
        return self.add({"resourceType": "MedicationAdministration", "status": status,
                         "medicationCodeableConcept": med("77655", "zoledronic acid"),
                         "effectiveDateTime": d2s(day) + "T10:00:00Z",
                         "dosage": {"dose": qty(5, "mg")}})

    def zol_request(self, day, status):
        return self.add({"resourceType": "MedicationRequest", "status": status, "intent": "order",
                         "medicationCodeableConcept": med("77655", "zoledronic acid"),
                         "authoredOn": d2s(day),
                         "dosageInstruction": [{"text": "zoledronic acid 5 mg IV once",
                                                "doseAndRate": [{"doseQuantity": qty(5, "mg")}]}]})

    def aln_statement(self, start, status="active"):
        return self.add({"resourceType": "MedicationStatement", "status": status,
                         "medicationCodeableConcept": med("46041", "alendronate"),
                         "effectivePeriod": {"start": d2s(start)}, "dateAsserted": d2s(start),
                         "dosage": [{"text": "70 mg weekly",
                                     "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "wk"}},
                                     "doseAndRate": [{"doseQuantity": qty(70, "mg")}]}]})

    # ---------------- observations ----------------
    def obs(self, day, code, display, value=None, unit=None, ucum=None, extra=None, issued_lag=0):
        r = {"resourceType": "Observation", "status": "final",
             "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
             "effectiveDateTime": d2s(day) + "T09:00:00Z",
             "issued": d2s(day + dt.timedelta(days=issued_lag)) + "T15:00:00Z"}
        if value is not None:
            r["valueQuantity"] = qty(value, unit, ucum)
        if extra:
            r.update(extra)
        return self.add(r)

    def fracture(self, onset, recorded, level, period_end=None, s32=False, ver="confirmed"):
        code = "M80.08XA"
        if s32 and level and level.startswith("L"):
            code = f"S32.0{level[1]}0A"
        r = {"resourceType": "Condition",
             "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                                "code": ver}]},
             "code": {"coding": [{"system": ICD10, "code": code,
                                  "display": "Vertebral fracture"}],
                      "text": "Osteoporotic vertebral fracture"},
             "recordedDate": d2s(recorded)}
        if period_end:
            r["onsetPeriod"] = {"start": d2s(onset), "end": d2s(period_end)}
        else:
            r["onsetDateTime"] = d2s(onset)
        if level and not (s32 and level.startswith("L")):
            r["bodySite"] = [{"text": level}]
        return self.add(r)

    def other_med(self, code, display, day, kind="MA", status="completed"):
        if kind == "MA":
            return self.add({"resourceType": "MedicationAdministration", "status": status,
                             "medicationCodeableConcept": med(code, display),
                             "effectiveDateTime": d2s(day) + "T10:00:00Z"})
        return self.add({"resourceType": "MedicationRequest", "status": status, "intent": "order",
                         "medicationCodeableConcept": med(code, display), "authoredOn": d2s(day),
                         "dosageInstruction": [{"text": "70 mg weekly",
                                                "timing": {"repeat": {"boundsPeriod": {"start": d2s(day)},
                                                                      "frequency": 1, "period": 1, "periodUnit": "wk"}},
                                                "route": {"text": "Oral route"},
                                                "doseAndRate": [{"doseQuantity": qty(70, "mg")}]}]})


def one_patient(rng, seed, i, wide=False):
    pid = f"p{seed}-{i}"
    g = Gen(rng, pid)
    as_of = dt.date(2023, 1, 1) + dt.timedelta(days=rng.randrange(0, 900))
    age = rng.choice([45, 55, 64, 70, 79, 85, 92])
    birth = dt.date(as_of.year - age, as_of.month, min(as_of.day, 28)) - dt.timedelta(days=rng.randrange(1, 360))
    sex = rng.choice(["female", "female", "male"] * 6 + ["unknown", "other"])
    patient = {"resourceType": "Patient", "id": pid, "gender": sex, "birthDate": d2s(birth)}
    day = lambda k: as_of - dt.timedelta(days=k)  # noqa: E731

    # ---- denosumab history ----
    ndoses = rng.choice([0, 1, 2, 2, 3, 4, 5, 6])
    gap = rng.choice(DMAB_GAPS)
    d_last = day(gap)
    dose_days = []
    cur = d_last
    for k in range(ndoses):
        dose_days.append(cur)
        cur = cur - dt.timedelta(days=rng.choice([182, 182, 175, 190, 59, 60, 210]))
    tier = rng.choice(["MA", "MA", "MA", "MA", "MS", "MR"])
    for dday in dose_days:
        if tier == "MA":
            g.dmab_admin(dday)
        elif tier == "MS":
            g.dmab_statement(dday)
        else:
            r = g.dmab_request(dday, rng.choice(["active", "completed", "stopped"]))
            if rng.random() < 0.1:
                r["intent"] = rng.choice(["proposal", "plan"])  # 1.6: a proposal is not an order
    if tier == "MA" and ndoses and rng.random() < 0.08:
        g.dmab_statement(day(rng.choice([10, 100])))  # a lower tier is never merged (5.1)
    if ndoses and rng.random() < 0.08:
        g.dmab_admin(day(rng.choice([5, 40, 100])), status=rng.choice(["not-done", "entered-in-error"]))
    if ndoses and rng.random() < 0.05:
        g.dmab_admin(None, with_date=False)
    if rng.random() < 0.05:
        x = g.dmab_admin(day(rng.choice([10, 100, 200])), dose=120)
        x["medicationCodeableConcept"]["text"] = "denosumab 120 mg (Xgeva)"
    if ndoses and rng.random() < 0.04:
        # a dose recorded in the future: invisible
        g.dmab_admin(as_of + dt.timedelta(days=rng.choice([1, 20])))
    # clause (b): explicit stop
    if ndoses and tier == "MA" and rng.random() < 0.35:
        auth = rng.choice([dose_days[-1] - dt.timedelta(days=10), d_last, d_last + dt.timedelta(days=min(gap, 30))])
        if auth <= as_of:
            g.dmab_request(auth, rng.choice(["stopped", "completed", "active"]))
    if ndoses and tier == "MA" and rng.random() < 0.12:
        occ = as_of + dt.timedelta(days=rng.choice([-5, 0, 14, 28, 29]))
        auth = as_of - dt.timedelta(days=rng.choice([3, min(gap, 40), gap + 3]))
        r = g.dmab_request(auth, "active")
        r["dosageInstruction"][0]["timing"] = {"event": [d2s(occ)]}
    if ndoses and rng.random() < 0.08:
        stop = d_last - dt.timedelta(days=rng.choice([0, 0, 100]))  # 100: stopped, then restarted
        g.add({"resourceType": "MedicationStatement", "status": "stopped",
               "medicationCodeableConcept": med("993449", "denosumab"),
               "effectivePeriod": {"start": d2s(dose_days[-1] - dt.timedelta(days=200)), "end": d2s(stop)},
               "dateAsserted": d2s(stop)})
    if ndoses and tier == "MA" and rng.random() < 0.05:
        g.dmab_request(d_last - dt.timedelta(days=5), "on-hold")

    # ---- transition ----
    if ndoses and gap > 20 and rng.random() < 0.45:
        kind = rng.choice(["zol", "zol", "zol", "aln", "zol-planned", "aln-mr", "teri", "zol-dlast", "zol-ms"])
        zgap = rng.randrange(0, gap)  # days before as_of
        zgap = rng.choice([zgap, 0, 1, 76, 77, 78, 167, 168, 169, 365, 366]) if rng.random() < 0.5 else zgap
        zgap = min(zgap, gap - 1)
        zday = day(zgap)
        if kind == "zol":
            g.zol_admin(zday)
            if rng.random() < 0.2:
                g.zol_admin(day(max(zgap - rng.choice([30, 100]), 0)))
            # CTX after the infusion
            for _ in range(rng.choice([0, 1, 1, 2])):
                off = rng.choice([30, 60, 61, 77, 90, 168, 180, 200])
                cday = zday + dt.timedelta(days=off)
                if cday > as_of:
                    continue
                val, unit, ucum = rng.choice([(rng.choice([150, 279, 280, 281, 400, 520]), "ng/L", "ng/L"),
                                              (rng.choice([0.25, 0.281, 0.5]), "ng/mL", "ng/mL"),
                                              (rng.choice([250, 300]), "pg/mL", "pg/mL"),
                                              (rng.choice([0.2, 0.35]), "ug/L", "ug/L"),
                                              (300, "mmol/L", "mmol/L")])
                extra = {}
                if rng.random() < 0.4:
                    rh = rng.choice([200, 250, 573])
                    extra["referenceRange"] = [{"high": qty(rh, "ng/L")}]
                g.obs(cday, "41171-0", "Collagen crosslinked C-telopeptide", val, unit, ucum, extra,
                      issued_lag=rng.choice([0, 0, 0, 3]))
        elif kind == "aln":
            g.aln_statement(zday, rng.choice(["active", "completed"]))
        elif kind == "aln-mr":
            g.other_med("46041", "alendronate 70 mg oral tablet", zday, "MR", rng.choice(["active", "draft", "stopped"]))
        elif kind == "teri":
            g.other_med("110634", "teriparatide", zday, "MR", "active")
        elif kind == "zol-dlast":
            g.zol_admin(d_last)
        elif kind == "zol-ms":
            g.add({"resourceType": "MedicationStatement", "status": rng.choice(["completed", "stopped", "not-taken"]),
                   "medicationCodeableConcept": med("77655", "zoledronic acid"),
                   "effectiveDateTime": d2s(zday), "dateAsserted": d2s(zday)})
        else:
            g.zol_request(day(rng.choice([0, 10, 89, 90, 91, 120])), rng.choice(["active", "draft", "cancelled"]))
    elif rng.random() < 0.15:
        g.zol_request(day(rng.choice([0, 10, 89, 90, 91, 120])), rng.choice(["active", "draft", "cancelled"]))

    # CTX after D_last + 182 (rebound evidence), without zoledronate
    if ndoses >= 2 and rng.random() < 0.2:
        off = rng.choice([150, 182, 183, 200, 300])
        cday = d_last + dt.timedelta(days=off)
        if cday <= as_of:
            g.obs(cday, "41171-0", "Collagen crosslinked C-telopeptide", rng.choice([200, 281, 700]), "ng/L", "ng/L")

    # ---- vertebral fractures ----
    for _ in range(rng.choice([0, 0, 0, 1, 1, 2, 3])):
        rel = rng.choice(["win", "win", "pre", "recent", "any"])
        if rel == "win" and ndoses:
            onset = d_last + dt.timedelta(days=rng.choice([182, 183, 184, 400, 729, 730, 731]))
        elif rel == "pre":
            onset = (d_last if ndoses else as_of) - dt.timedelta(days=rng.choice([30, 400]))
        elif rel == "recent":
            onset = day(rng.choice([0, 10, 42, 43, 90, 91, 120]))
        else:
            onset = day(rng.randrange(0, 1500))
        recorded = onset + dt.timedelta(days=rng.choice([0, 0, 2, 30]))
        if onset > as_of:
            continue
        level = rng.choice(LEVELS + [None])
        pend = None
        if rng.random() < 0.2:
            pend = onset + dt.timedelta(days=rng.choice([10, 27, 60]))
            if pend > as_of:
                pend = as_of
            recorded = max(recorded, pend)
        g.fracture(onset, recorded, level, period_end=pend, s32=rng.random() < 0.2,
                   ver="refuted" if rng.random() < 0.05 else "confirmed")
        if rng.random() < 0.1:
            g.fracture(onset + dt.timedelta(days=rng.choice([0, 5])), recorded + dt.timedelta(days=5), level)

    # ---- OVCF: augmentation, MRI oedema, pain (7.2-7.6) ----
    if rng.random() < 0.35:
        aug_levels = rng.sample(LEVELS, rng.choice([1, 1, 2]))
        t_aug = day(rng.choice([5, 30, 89, 90, 91, 200, 364, 365, 366, 500]))
        for lv in aug_levels:
            g.add({"resourceType": "Procedure", "status": rng.choice(["completed"] * 9 + ["not-done"]),
                   "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": rng.choice(["22511", "22514", "22523"]),
                                        "display": "vertebral augmentation"}], "text": f"Vertebral augmentation {lv}"},
                   "performedDateTime": d2s(t_aug) + "T14:00:00Z", "bodySite": [{"text": lv}]})
        # new fractures after it
        for _ in range(rng.choice([0, 1, 1, 2])):
            onset = t_aug + dt.timedelta(days=rng.choice([0, 1, 30, 90, 91, 200, 365, 366]))
            if onset > as_of:
                continue
            lv = rng.choice(LEVELS + [None])
            g.fracture(onset, onset + dt.timedelta(days=rng.choice([0, 3])), lv)
    for lv in rng.sample(LEVELS, rng.choice([0, 0, 1, 2])):  # one oedema finding per level
        g.add({"resourceType": "Observation", "status": "final",
               "code": {"coding": [{"system": "http://osteoguard.org/fhir/CodeSystem/osteoguard", "code": "vertebral-edema",
                                    "display": "Vertebral bone marrow oedema on MRI"}]},
               "effectiveDateTime": d2s(day(rng.choice([0, 20, 42, 43, 60, 90, 91, 120]))) + "T11:00:00Z",
               "valueBoolean": rng.random() < 0.8, "bodySite": {"text": lv}})
        if rng.random() < 0.6:
            onset = day(rng.choice([20, 27, 28, 29, 50, 100]))
            g.fracture(onset, onset, lv)
    for _ in range(rng.choice([0, 0, 1, 2, 3])):
        pd = day(rng.choice([0, 2, 7, 8, 20, 60]))
        g.add({"resourceType": "Observation", "status": "final",
               "code": {"coding": [{"system": LOINC, "code": "72514-3", "display": "Pain severity 0-10"}]},
               "effectiveDateTime": d2s(pd) + f"T{rng.randrange(8, 16):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}Z",
               "issued": d2s(pd) + "T16:00:00Z",
               "valueQuantity": qty(rng.choice([2, 3, 4, 5, 6, 7, 8, 9]), "{score}")})

    # ---- Genant grades (7.3, 7.4 steps 1a/2) ----
    for lv in rng.sample(LEVELS, rng.choice([0, 0, 0, 1, 2])):
        reads = sorted(rng.sample([5, 30, 100, 200, 400, 700], rng.choice([1, 2])), reverse=True)
        for k, ago in enumerate(reads):
            grade = rng.choice([0, 1, 2, 3]) if k < len(reads) - 1 else rng.choice([0, 1, 1, 2, 3])
            if ndoses and rng.random() < 0.3:
                rd = min(d_last + dt.timedelta(days=rng.choice([100, 190, 400])), as_of)
            else:
                rd = day(ago)
            g.add({"resourceType": "Observation", "status": "final",
                   "code": {"coding": [{"system": "http://osteoguard.org/fhir/CodeSystem/osteoguard",
                                        "code": "genant-grade", "display": "Genant grade"}]},
                   "effectiveDateTime": d2s(rd) + "T10:00:00Z", "issued": d2s(rd) + "T12:00:00Z",
                   "valueInteger": grade, "bodySite": {"text": lv}})

    # ---- DXA ----
    nscans = rng.choice([0, 0, 1, 2, 2, 3])
    devices = ["Hologic Horizon A", "Hologic Horizon A", "Hologic Discovery W", "GE Lunar iDXA", None]
    base_dev = rng.choice(devices[:4])
    sdate = day(rng.choice([0, 10, 100, 300]))
    if ndoses >= 2 and rng.random() < 0.3:
        # rebound evidence: a later scan after D_last+30, an earlier one on treatment
        later = d_last + dt.timedelta(days=rng.choice([31, 200, 400]))
        if later <= as_of:
            sdate = later
            nscans = max(nscans, 2)
    scans = []
    for k in range(nscans):
        scans.append(sdate)
        sdate = sdate - dt.timedelta(days=rng.choice([179, 180, 181, 365, 400, 730, 100]))
    scans.reverse()
    sites = {"spine": ("24966-4", "38267-1", 0.95, 5.3), "hip": ("38261-4", "38264-8", 0.80, 5.0),
             "neck": ("24701-5", "38263-0", 0.70, 6.9)}
    hip_mode = rng.choice(["total", "total", "left", "right", "both", "lr", "both-left"])
    side_codes = {"left": ("46278-8", "80946-7"), "right": ("46279-6", "80945-9")}
    for site, (bmd_code, t_code, base_bmd, lsc) in sites.items():
        if rng.random() < (0.7 if site == "neck" else 0.3):
            continue
        bmd = base_bmd * rng.uniform(0.85, 1.1)
        tsc = rng.choice([-0.8, -1.0, -1.6, -2.3, -2.4, -2.6, -3.0])
        mode = rng.choice(["both", "both", "bmd", "t"])
        for k, sd in enumerate(scans):
            if k > 0:
                pct = rng.choice([0.0, -lsc + 0.1, -lsc, -lsc - 0.1, -2 * lsc, -2 * lsc - 0.2, -2 * lsc + 0.1, 3.0, -12.0])
                bmd = round(bmd * (1 + pct / 100), 4)
                tsc = round(tsc + rng.choice([0.0, -0.4, -0.5, -0.6, -1.0, -1.1, 0.3]), 2)
            dev = base_dev if rng.random() < 0.8 else rng.choice(devices)
            extra = {"device": {"display": dev}} if dev else {}
            if rng.random() < 0.04:
                extra["status"] = rng.choice(["preliminary", "entered-in-error", "cancelled"])
            if site == "hip" and hip_mode != "total":
                if hip_mode in ("left", "right"):
                    sides = [hip_mode]
                elif hip_mode == "both":
                    sides = ["left", "right"]
                elif hip_mode == "lr":
                    sides = ["left"] if k == 0 else ["right"]
                else:
                    sides = ["left", "right"] if k == 0 else ["left"]
                for si, side in enumerate(sides):
                    off = 0.0 if si == 0 else rng.choice([0.02, -0.03])
                    if mode in ("both", "bmd"):
                        g.obs(sd, side_codes[side][0], f"DXA hip {side} BMD", round(bmd + off, 4), "g/cm2", "g/cm2", extra)
                    if mode in ("both", "t"):
                        g.obs(sd, side_codes[side][1], f"DXA hip {side} T-score", round(tsc + off * 10, 2), "{T-score}",
                              "{T-score}", extra)
                continue
            if mode in ("both", "bmd"):
                if rng.random() < 0.1:
                    g.obs(sd, bmd_code, "DXA BMD", round(bmd * 1000, 1), "mg/cm2", "mg/cm2", extra)
                else:
                    g.obs(sd, bmd_code, "DXA BMD", bmd, "g/cm2", "g/cm2", extra)
            if mode in ("both", "t"):
                g.obs(sd, t_code, "DXA T-score", tsc, "{T-score}", "{T-score}", extra)

    # ---- safety labs ----
    if rng.random() < 0.8:
        lab_day = lambda: day(rng.choice([0, 5, 29, 30, 31, 200, 364, 365, 366]))  # noqa: E731
        if rng.random() < 0.1:
            late = g.obs(day(1), "17861-6", "Calcium", 7.9, "mg/dL", "mg/dL", issued_lag=2)  # issued after as_of
        if rng.random() < 0.05:
            g.obs(day(2), "62292-8", "25-OH vitamin D", 11, "ng/mL", "ng/mL", {"status": "entered-in-error"})
        if rng.random() < 0.75:
            cr = rng.choice([0.7, 0.9, 1.2, 1.6, 2.4, 3.5])
            if rng.random() < 0.2:
                g.obs(lab_day(), "2160-0", "Creatinine", round(cr * 88.4, 1), "umol/L", "umol/L")
            else:
                g.obs(lab_day(), "2160-0", "Creatinine", cr, "mg/dL", "mg/dL")
        if rng.random() < 0.6:
            g.obs(lab_day(), "29463-7", "Body weight", rng.choice([40, 48, 62, 80]), "kg", "kg")
        if rng.random() < 0.4:
            g.obs(lab_day(), rng.choice(["33914-3", "98979-8", "62238-1"]), "eGFR", rng.choice([20, 29, 30, 34, 35, 60]), "mL/min/{1.73_m2}",
                  "mL/min/{1.73_m2}")
        if rng.random() < 0.6:
            ca_day = lab_day()
            if rng.random() < 0.2:
                g.obs(ca_day, "17861-6", "Calcium", rng.choice([2.0, 2.12, 2.3]), "mmol/L", "mmol/L")
            else:
                extra = {}
                if rng.random() < 0.2:
                    extra["referenceRange"] = [{"low": qty(8.8, "mg/dL")}]
                g.obs(ca_day, "17861-6", "Calcium", rng.choice([8.0, 8.4, 8.5, 8.6, 8.7, 9.2]), "mg/dL", "mg/dL", extra)
            if rng.random() < 0.3:
                alb = rng.choice([3.0, 3.5, 4.0, 4.5])
                unit = rng.choice(["g/dL", "g/dL", "g/L"])
                g.obs(ca_day + dt.timedelta(days=rng.choice([0, 20, -40])), "1751-7", "Albumin",
                      alb * 10 if unit == "g/L" else alb, unit, unit)
        if rng.random() < 0.6:
            if rng.random() < 0.2:
                g.obs(lab_day(), "62292-8", "25-OH vitamin D", rng.choice([45, 49.9, 50, 75]), "nmol/L", "nmol/L")
            else:
                g.obs(lab_day(), "62292-8", "25-OH vitamin D", rng.choice([12, 19.9, 20, 28]), "ng/mL", "ng/mL")

    hook = None
    if wide:
        # new areas (session 10): drawn from a second generator so that the old seeds' patients
        # stay exactly as they were without --wide
        hook = widen(g, random.Random(f"wide-{seed}-{i}"), as_of, d_last if ndoses else None, ndoses, tier)
    # drop labs that ended up after as_of (clinical dates never exceed as_of here)
    entries = [{"fullUrl": f"urn:uuid:{pid}-patient", "resource": patient}]
    for r in g.res:
        entries.append({"fullUrl": f"urn:uuid:{r['id']}", "resource": r})
    b = {"resourceType": "Bundle", "id": pid, "type": "collection",
         "meta": {"tag": [{"system": "urn:osteoguard:oracle", "code": "as-of", "display": d2s(as_of)}]},
         "entry": entries}
    return b, hook


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--out", required=True)
    ap.add_argument("--wide", action="store_true", help="add the session-10 areas (wide.py)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rng = random.Random(a.seed)
    for i in range(a.n):
        b, hook = one_patient(rng, a.seed, i, a.wide)
        with open(os.path.join(a.out, f"{b['id']}.json"), "w") as f:
            json.dump(b, f)
        if hook:
            # the order-hook request of this patient (drafts), read by diff.py --hooks
            with open(os.path.join(a.out, f"{b['id']}.hook"), "w") as f:
                json.dump(hook, f)


if __name__ == "__main__":
    main()
