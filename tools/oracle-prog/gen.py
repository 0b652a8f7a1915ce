#!/usr/bin/env python3
"""Seeded generator of synthetic FHIR R4 Bulk-export populations for the §13 programme KPIs.

usage: gen.py --seed S --n N --out DIR [--groups G]

Writes G populations DIR/g<k>/ (one NDJSON file per resource type, what `programme-report` reads as a Bulk
export directory) and DIR/g<k>.meta.json (period, as_of). Each patient has one index candidate fracture on
"day 0" placed near a boundary (period start/end, as_of - 84/112/364 ...) and resources drawn at offsets
densely around the §13 window edges (day -1/0/1, 83/84/85, 111/112/113, 363/364/365 ...), with statuses,
visibility (recorded after as_of), death dates, dispenses vs administrations, denosumab 7 months and
zoledronate 12 months before day 364 +- days. Python 3 standard library only; deterministic per seed.
"""
import argparse
import datetime as dt
import json
import os
import random

D = dt.timedelta
SCT = "http://snomed.info/sct"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
CPT = "http://www.ama-assn.org/go/cpt"
OG = "http://osteoguard.org/fhir/CodeSystem/osteoguard"
MECH = "http://osteoguard.org/fhir/StructureDefinition/fracture-mechanism"
VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"

# (system, code, kind) kind: vert / hip / wrist / humerus / other-frag / nonfrag
FRACTURES = [
    (ICD, "M80.08XA", "vert"), (ICD, "S32.010A", "vert"), (ICD, "S22.050A", "vert"), (ICD, "M48.50XA", "vert"),
    (SCT, "443165006", "vert"),
    (SCT, "359817006", "hip"), (SCT, "5913000", "hip"), (ICD, "S72.001A", "hip"), (ICD, "M80.051A", "hip"),
    (SCT, "263102004", "wrist"), (SCT, "65966004", "wrist"), (ICD, "S52.501A", "wrist"), (ICD, "M80.031A", "wrist"),
    (ICD, "S42.201A", "humerus"), (ICD, "M80.021A", "humerus"),
]
NONFRAG = [(SCT, "16114001", "nonfrag"), (SCT, "58150001", "nonfrag"), (SCT, "33737001", "nonfrag")]
# follow-up / sequela 7th characters of the ICD codes above
FOLLOWUP = {"M80.08XA": "M80.08XD", "S32.010A": "S32.010S", "S72.001A": "S72.001D", "S52.501A": "S52.501S",
            "M80.051A": "M80.051D", "S22.050A": "S22.050D"}

AOM = {  # name: (rxnorm IN, route kind)
    "alendronate": ("46041", "oral"), "risedronate": ("73056", "oral"), "raloxifene": ("72143", "oral"),
    "denosumab": ("993449", "inj"), "zoledronic acid": ("77655", "iv"),
}
NON_AOM = ("7646", "omeprazole")
EXERCISE = (SCT, "229065009")  # site-mapped exercise code (config of the population)
LOCAL_FALLS = ("http://example.org/local", "FALLS-RISK")  # site-mapped falls-risk code
CONFIG = '[programme]\nfalls_risk_codes = ["http://example.org/local|FALLS-RISK"]\n' \
         'exercise_codes = ["http://snomed.info/sct|229065009"]\n'


# offsets (days from day 0) around every §13 window edge
EDGE = [-366, -365, -364, -30, -1, 0, 1, 2, 40, 83, 84, 85, 86, 111, 112, 113, 114, 200, 363, 364, 365, 366]


def iso(d):
    return d.isoformat()


def inst(d):
    return d.isoformat() + "T12:00:00Z"


class Pop:
    def __init__(self, rnd, as_of, p0, p1):
        self.r = rnd
        self.as_of, self.p0, self.p1 = as_of, p0, p1
        self.res = {}
        self.n = 0

    def add(self, rt, body):
        self.n += 1
        body = dict(body)
        body["resourceType"] = rt
        body["id"] = body.get("id") or f"{rt[:3].lower()}{self.n}"
        self.res.setdefault(rt, []).append(body)
        return body

    def pick_day0(self):
        r = self.r
        kind = r.random()
        if kind < 0.15:  # period edges
            cands = [self.p0 - D(1), self.p0, self.p0 + D(1), self.p1 - D(1), self.p1, self.p1 + D(1)]
            return r.choice(cands)
        k = r.choice([0, 1, 30, 83, 84, 85, 86, 111, 112, 113, 114, 200, 363, 364, 365, 365, 366, 366, 367,
                      380, 400, 450, 500, 600])
        d0 = self.as_of - D(k)
        if d0 < self.p0 or d0 > self.p1:
            d0 = self.p0 + D(r.randint(0, (self.p1 - self.p0).days))
        return d0

    def patient(self, i):
        r = self.r
        pid = f"p{i}"
        ref = {"reference": f"Patient/{pid}"}
        d0 = self.pick_day0()
        # age at onset: mostly 55-90; boundary 49/50 around a birthday
        pat = {"id": pid, "gender": r.choice(["female", "male"])}
        u = r.random()
        if u < 0.12:
            years = r.choice([49, 50])
            base = d0 if (d0.month, d0.day) != (2, 29) else d0 - D(1)
            bday = base.replace(year=base.year - years)
            bday = bday + D(r.choice([-1, 0, 1]))
            pat["birthDate"] = iso(bday)
        elif u < 0.15:
            pass  # no birth date: age unknown
        else:
            pat["birthDate"] = iso(d0 - D(r.randint(55 * 366, 90 * 365)))
        if r.random() < 0.15:
            death = d0 + D(r.choice([0, 50, 83, 84, 85, 111, 112, 113, 300, 363, 364, 365, 366]))
            if r.random() < 0.1:
                pat["deceasedBoolean"] = True
            else:
                pat["deceasedDateTime"] = iso(death)
        self.add("Patient", pat)

        # the index candidate
        sysc, code, kind = r.choice(FRACTURES)
        self.condition(ref, sysc, code, d0, main=True)
        # extra fractures
        for _ in range(r.choice([0, 0, 0, 1, 1, 2])):
            t = r.random()
            if t < 0.45:
                off = r.choice([-366, -365, -364, -200, -1, 0, 1, 30, 366, 400, 500])
                sysc, code, kind = r.choice(FRACTURES)
            elif t < 0.75:
                off = r.choice([-365, -100, -1, 10])
                sysc, code, kind = r.choice(NONFRAG)
            else:
                off = r.choice([-365, -30, 5])
                code = r.choice(list(FOLLOWUP.values()))
                sysc = ICD
            self.condition(ref, sysc, code, d0 + D(off), main=False)

        # KPI 3/4/5 observations and procedures
        for _ in range(r.choice([0, 1, 1, 2, 3])):
            self.observation(ref, d0)
        for _ in range(r.choice([0, 0, 1, 2])):
            self.procedure(ref, d0)
        # KPI 8 encounters (sometimes none at all)
        if r.random() > 0.15:
            for _ in range(r.choice([1, 1, 2, 3])):
                st = r.choice(["finished"] * 6 + ["cancelled", "entered-in-error", "planned", "in-progress"])
                d = d0 + D(r.choice([-10, 0, 0, 1, 1, 2, 60, 112, 113, 150]))
                self.add("Encounter", {"status": st, "subject": ref,
                                       "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                                 "code": r.choice(["AMB", "IMP", "EMER"])},
                                       "period": {"start": inst(d), "end": inst(d)}})
        # KPI 7 exercise referrals / procedures and site-mapped falls-risk codes (read with --config)
        for _ in range(r.choice([0, 0, 1, 2])):
            self.exercise(ref, d0)
        # KPI 3/4 DXA ImagingStudies
        if r.random() < 0.15:
            self.imaging(ref, d0)
        # KPI 6/9/10 medications
        for _ in range(r.choice([0, 1, 1, 2, 3, 4])):
            self.medication(ref, d0)
        return pid

    def condition(self, ref, sysc, code, onset, main):
        r = self.r
        c = {"subject": ref, "code": {"coding": [{"system": sysc, "code": code}]},
             "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                            "code": r.choice(["active", "resolved"])}]}}
        vs = "confirmed"
        if r.random() < (0.06 if main else 0.12):
            vs = r.choice(["refuted", "entered-in-error", "unconfirmed", "provisional"])
        c["verificationStatus"] = {"coding": [{"system": VER, "code": vs}]}
        u = r.random()
        if u < 0.55:
            c["onsetDateTime"] = iso(onset)
            c["recordedDate"] = iso(onset + D(r.choice([0, 0, 0, 1, 3])))
        elif u < 0.7:
            c["onsetPeriod"] = {"start": iso(onset), "end": iso(onset + D(r.choice([1, 10, 40])))}
            c["recordedDate"] = iso(onset + D(r.choice([0, 5, 45])))
        elif u < 0.85:
            c["recordedDate"] = iso(onset)  # no onset: recordedDate decides
        else:
            c["onsetDateTime"] = iso(onset)  # no recordedDate
        if main and r.random() < 0.07:
            # recorded after as_of: invisible
            c["recordedDate"] = iso(self.as_of + D(r.choice([1, 20])))
        if r.random() < (0.06 if main else 0.15):
            c["extension"] = [{"url": MECH, "valueCode": r.choice(["traumatic", "traumatic", "fragility"])}]
        if code == "443165006" and r.random() < 0.3:
            c["bodySite"] = [r.choice([{"text": "L2"}, {"text": "left hip"}])]
        self.add("Condition", c)

    def observation(self, ref, d0):
        r = self.r
        off = r.choice(EDGE + [r.randint(-400, 400)])
        d = d0 + D(off)
        t = r.random()
        status = r.choice(["final"] * 6 + ["amended", "preliminary", "cancelled", "entered-in-error", "registered"])
        o = {"status": status, "subject": ref, "effectiveDateTime": iso(d), "issued": inst(d)}
        if r.random() < 0.08:
            o["issued"] = inst(self.as_of + D(r.choice([1, 10])))  # entered the record after as_of
        if t < 0.3:
            o["code"] = {"coding": [{"system": OG, "code": r.choice(["frax-mof", "frax-hip"])}]}
            if r.random() < 0.15:
                o["valueQuantity"] = {"value": r.choice([0.12, 0.3]), "unit": "1",
                                      "system": "http://unitsofmeasure.org", "code": "1"}
            else:
                o["valueQuantity"] = {"value": r.choice([3.0, 12.5, 25.0, 101.0, -2.0]), "unit": "%",
                                      "system": "http://unitsofmeasure.org", "code": "%"}
        elif t < 0.65:
            code = r.choice(["38267-1", "38264-8", "38263-0", "80946-7"])
            o["code"] = {"coding": [{"system": LOINC, "code": code}]}
            o["valueQuantity"] = {"value": r.choice([-3.1, -2.6, -2.5, -2.4, -1.2, 0.3]), "unit": "{T-score}",
                                  "system": "http://unitsofmeasure.org", "code": "{T-score}"}
        elif t < 0.75:
            o["code"] = {"coding": [{"system": LOINC, "code": "24966-4"}]}
            o["valueQuantity"] = {"value": 0.81, "unit": "g/cm2", "system": "http://unitsofmeasure.org",
                                  "code": "g/cm2"}
        elif t < 0.88:
            o["code"] = {"coding": [{"system": SCT, "code": "414191008"}]}
            o["valueCodeableConcept"] = {"text": "assessed"}
        else:
            o["code"] = {"coding": [{"system": LOINC, "code": "29463-7"}]}  # body weight: a follow-up obs
            o["valueQuantity"] = {"value": 62, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}
        self.add("Observation", o)

    def exercise(self, ref, d0):
        r = self.r
        d = d0 + D(r.choice(EDGE))
        code = r.choice([EXERCISE, EXERCISE, LOCAL_FALLS, (SCT, "183516009")])
        if r.random() < 0.6:
            st = r.choice(["active", "completed", "active", "draft", "revoked", "entered-in-error", "on-hold",
                           "unknown"])
            sr = {"status": st, "intent": "order", "subject": ref,
                  "code": {"coding": [{"system": code[0], "code": code[1]}]}, "authoredOn": iso(d)}
            if r.random() < 0.1:
                sr["doNotPerform"] = True
            self.add("ServiceRequest", sr)
        else:
            st = r.choice(["completed", "completed", "in-progress", "not-done", "unknown"])
            self.add("Procedure", {"status": st, "subject": ref,
                                   "code": {"coding": [{"system": code[0], "code": code[1]}]},
                                   "performedDateTime": iso(d)})

    def imaging(self, ref, d0):
        r = self.r
        d = d0 + D(r.choice([-1, 0, 1, 84, 85, 200]))
        st = r.choice(["available", "registered", "cancelled", "entered-in-error", "unknown"])
        im = {"status": st, "subject": ref}
        if r.random() < 0.5:
            im["modality"] = [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "BMD"}]
        else:
            im["procedureCode"] = [{"coding": [{"system": CPT, "code": "77080"}]}]
        if r.random() < 0.9:
            im["started"] = inst(d)
        self.add("ImagingStudy", im)

    def procedure(self, ref, d0):
        r = self.r
        d = d0 + D(r.choice(EDGE))
        st = r.choice(["completed"] * 5 + ["in-progress", "not-done", "entered-in-error", "preparation"])
        code = r.choice([(CPT, "77080"), (SCT, "312681000"), (SCT, "414191008"), (SCT, "414191008")])
        self.add("Procedure", {"status": st, "subject": ref,
                               "code": {"coding": [{"system": code[0], "code": code[1]}]},
                               "performedDateTime": iso(d)})

    def medication(self, ref, d0):
        r = self.r
        name = r.choice(list(AOM) + ["denosumab", "zoledronic acid", "alendronate", "omeprazole"])
        if name == "omeprazole":
            cc = {"coding": [{"system": RX, "code": NON_AOM[0], "display": NON_AOM[1]}]}
        else:
            cc = {"coding": [{"system": RX, "code": AOM[name][0], "display": name}]}
        kind = r.random()
        if name in ("denosumab", "zoledronic acid") and kind < 0.6:
            # administrations: around day 364 - 7 months / 12 months, and in the day 0-112 window
            if name == "denosumab":
                off = 364 - r.choice([180, 208, 209, 210, 211, 212, 213, 214, 215])
            else:
                off = 364 - r.choice([300, 363, 364, 365, 366, 367])
            if r.random() < 0.4:
                off = r.choice([-1, 0, 1, 50, 112, 113, 364, 365])
            st = r.choice(["completed"] * 6 + ["not-done", "entered-in-error", "in-progress", "unknown"])
            self.add("MedicationAdministration", {"status": st, "subject": ref, "medicationCodeableConcept": cc,
                                                  "effectiveDateTime": iso(d0 + D(off))})
            return
        if kind < 0.3:
            off = r.choice([-1, 0, 1, 112, 113, 300, 334, 335, 336, 364, 365])
            st = r.choice(["completed"] * 5 + ["unknown", "in-progress", "cancelled", "entered-in-error"])
            md = {"status": st, "subject": ref, "medicationCodeableConcept": cc}
            if r.random() < 0.85:
                md["whenHandedOver"] = inst(d0 + D(off))
            else:
                md["whenPrepared"] = inst(d0 + D(off))
            if r.random() < 0.85:
                md["daysSupply"] = {"value": r.choice([28, 30, 90]), "unit": "days",
                                    "system": "http://unitsofmeasure.org", "code": "d"}
            self.add("MedicationDispense", md)
            return
        off = r.choice([-30, -1, 0, 1, 50, 111, 112, 113, 114, 200, 300, 363, 364, 365])
        st = r.choice(["active"] * 4 + ["stopped", "completed", "on-hold", "draft", "cancelled",
                                        "entered-in-error", "unknown"])
        mr = {"status": st, "intent": "order", "subject": ref, "medicationCodeableConcept": cc,
              "authoredOn": iso(d0 + D(off))}
        if r.random() < 0.35:
            start = d0 + D(off + r.choice([0, 0, 5, 120]))
            rep = {"boundsPeriod": {"start": iso(start)}, "frequency": 1, "period": 1, "periodUnit": "d"}
            if r.random() < 0.5:
                rep["boundsPeriod"]["end"] = iso(start + D(r.choice([30, 90, 364, 400])))
            mr["dosageInstruction"] = [{"timing": {"repeat": rep}}]
        self.add("MedicationRequest", mr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--n", type=int, default=500, help="patients in total")
    ap.add_argument("--groups", type=int, default=0, help="populations (default n/100)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    groups = a.groups or max(1, a.n // 100)
    per = a.n // groups
    os.makedirs(a.out, exist_ok=True)
    for g in range(groups):
        as_of = dt.date(2024, 1, 1) + D(rnd.randint(0, 364))
        if as_of.month == 2 and as_of.day == 29:
            as_of += D(1)
        p1 = as_of - D(rnd.choice([0, 0, 3, 20])) if rnd.random() < 0.85 else as_of + D(30)
        p0 = p1 - D(rnd.choice([364, 365, 500, 730]))
        pop = Pop(rnd, as_of, p0, p1)
        for i in range(per):
            pop.patient(f"{a.seed}-{g}-{i}")
        d = os.path.join(a.out, f"g{g}")
        os.makedirs(d, exist_ok=True)
        for rt, items in pop.res.items():
            with open(os.path.join(d, f"{rt}.ndjson"), "w") as f:
                for x in items:
                    f.write(json.dumps(x, separators=(",", ":")) + "\n")
        meta = {"as_of": iso(as_of), "period_start": iso(p0), "period_end": iso(p1), "seed": a.seed, "group": g}
        if g % 2 == 1:  # every other population with the site value sets (KPI 7 answered, KPI 5 local code)
            with open(d + ".toml", "w") as f:
                f.write(CONFIG)
            meta["config"] = d + ".toml"
        with open(d + ".meta.json", "w") as f:
            json.dump(meta, f)


if __name__ == "__main__":
    main()
