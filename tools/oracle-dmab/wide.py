"""Session-10 areas of the generator (gen.py --wide): order hooks (draft orders), MedicationDispense
dose sources, explicit occurrences older than as-of, fractures of unknown onset (knowledge.md 7.4
step 5), subsequent-encounter fracture codes (10.3), spine imaging for ovcf-imaging-recommended (b),
augmentation exclusions (7.5-5), facility LSC (6.2), femoral neck by bodySite and forearm (6.3).

Everything here is drawn from its own random generator, so a patient without --wide is exactly the
patient of the earlier sessions.  Python 3 standard library only.
"""
import datetime as dt

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
CPT = "http://www.ama-assn.org/go/cpt"
SCT = "http://snomed.info/sct"
OG = "http://osteoguard.org/fhir/CodeSystem/osteoguard"
LEVELS = ["T11", "T12", "L1", "L2", "L3", "L4", "L5"]
DRUGS = {"993449": "denosumab 60 mg", "77655": "zoledronic acid 5 mg IV", "46041": "alendronate 70 mg",
         "73056": "risedronate 35 mg", "115264": "ibandronate 150 mg", "110634": "teriparatide"}


def d2s(d):
    return d.isoformat()


def med(code):
    return {"coding": [{"system": RXNORM, "code": code, "display": DRUGS[code]}], "text": DRUGS[code]}


def qty(value, unit):
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def widen(g, rng, as_of, d_last, ndoses, tier):
    """Adds the new-area resources to g; returns the hook request description or None."""
    day = lambda k: as_of - dt.timedelta(days=k)  # noqa: E731

    # ---- B. MedicationDispense as a denosumab dose source ----
    if rng.random() < 0.25:
        for _ in range(rng.choice([1, 1, 2, 3])):
            k = rng.choice([0, 5, 100, 153, 154, 182, 183, 210, 211, 294, 295, 400])
            if ndoses and rng.random() < 0.5:
                k = max((as_of - d_last).days + rng.choice([-30, -1, 0, 1, 30, 182]), -5)
            r = {"resourceType": "MedicationDispense",
                 "status": rng.choice(["completed"] * 6 + ["in-progress", "entered-in-error", "cancelled",
                                                           "declined"]),
                 "medicationCodeableConcept": med("993449"), "quantity": qty(1, "syringe")}
            when = day(k)
            form = rng.random()
            if form < 0.75:
                r["whenHandedOver"] = d2s(when) + "T11:00:00Z"
                if rng.random() < 0.3:
                    r["whenPrepared"] = d2s(when - dt.timedelta(days=2)) + "T11:00:00Z"
            elif form < 0.92:
                r["whenPrepared"] = d2s(when) + "T11:00:00Z"
            g.add(r)
    if d_last and rng.random() < 0.06:
        # an oral bisphosphonate filled after the last denosumab dose (5.2 "started")
        g.add({"resourceType": "MedicationDispense", "status": "completed", "medicationCodeableConcept": med("46041"),
               "whenHandedOver": d2s(min(as_of, d_last + dt.timedelta(days=rng.choice([30, 180, 200])))) + "T11:00:00Z",
               "quantity": qty(4, "tablet"), "daysSupply": {"value": 28, "unit": "day", "system": UCUM, "code": "d"}})

    # ---- C. explicit occurrences, also older than as-of ----
    if ndoses and rng.random() < 0.15:
        auth = day(rng.choice([3, 40, 120]))
        events = [d2s(as_of + dt.timedelta(days=rng.choice([-60, -29, -1, 0, 1, 27, 28, 29, 60])))
                  for _ in range(rng.choice([1, 1, 2]))]
        g.add({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
               "medicationCodeableConcept": med("993449"), "authoredOn": d2s(auth),
               "dosageInstruction": [{"text": "60 mg SC", "timing": {"event": events},
                                      "doseAndRate": [{"doseQuantity": qty(60, "mg")}]}]})

    # ---- D. vertebral fracture of unknown onset (7.4 step 5) ----
    if rng.random() < 0.12:
        lv = rng.choice(LEVELS + [None])
        r = {"resourceType": "Condition",
             "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                                "code": "confirmed"}]},
             "code": {"coding": [{"system": ICD10, "code": "M80.08XA", "display": "Vertebral fracture"}]}}
        if lv:
            r["bodySite"] = [{"text": lv}]
        if rng.random() < 0.3:
            r["onsetString"] = "some months ago"
        g.add(r)
        if lv and rng.random() < 0.3:
            g.add({"resourceType": "Observation", "status": "final",
                   "code": {"coding": [{"system": OG, "code": "vertebral-edema"}]},
                   "effectiveDateTime": d2s(day(rng.choice([3, 60, 120]))) + "T11:00:00Z",
                   "valueBoolean": rng.random() < 0.5, "bodySite": {"text": lv}})
        add_pain(g, rng, day(rng.choice([0, 3, 8])), rng.choice([3, 5, 7, 8]))

    # ---- E. subsequent-encounter / sequela fracture codes (10.3) ----
    if rng.random() < 0.15:
        lv = rng.choice(["L1", "L2", "L3", "L4", "T12"])
        ch = rng.choice("DGKS")
        code = rng.choice([f"M80.08X{ch}", f"S32.0{lv[1]}0{ch}" if lv.startswith("L") else f"M48.56X{ch}"])
        on = day(rng.choice([5, 30, 60, 100, 250, 400]))
        if d_last and rng.random() < 0.4:
            on = min(as_of, d_last + dt.timedelta(days=rng.choice([200, 300])))
        r = {"resourceType": "Condition",
             "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                                "code": "confirmed"}]},
             "code": {"coding": [{"system": ICD10, "code": code, "display": "Vertebral fracture, subsequent encounter"}]},
             "onsetDateTime": d2s(on), "recordedDate": d2s(on)}
        if not code.startswith("S32") or rng.random() < 0.5:
            r["bodySite"] = [{"text": lv}]
        g.add(r)
        if rng.random() < 0.4:
            add_pain(g, rng, day(rng.choice([0, 3])), rng.choice([5, 7, 8]))

    # ---- F. imaging after a pain rise after augmentation (9 ovcf-imaging-recommended (b)) ----
    if rng.random() < 0.25:
        lv = rng.choice(LEVELS)
        t_aug = day(rng.choice([20, 60, 200, 364]))
        g.add({"resourceType": "Procedure", "status": "completed",
               "code": {"coding": [{"system": CPT, "code": "22511", "display": "vertebroplasty"}]},
               "performedDateTime": d2s(t_aug) + "T14:00:00Z", "bodySite": [{"text": lv}]})
        low = t_aug + dt.timedelta(days=2)
        add_pain(g, rng, low, 2, "T10:00:00Z")
        hi = day(rng.choice([0, 1, 5, 10]))
        if hi <= low:
            hi = low + dt.timedelta(days=1)
        add_pain(g, rng, hi, rng.choice([4, 5, 6, 8]), "T15:00:00Z")
        for _ in range(rng.choice([0, 1, 1, 2])):
            when = hi + dt.timedelta(days=rng.choice([-1, 0, 0, 1]))
            if when > as_of:
                when = as_of
            t = rng.choice(["T09:00:00Z", "T16:00:00Z"])
            code = rng.choice(["72148", "72146", "72131", "72141"])
            kind = rng.choice(["Procedure", "ImagingStudy", "DiagnosticReport"])
            cc = {"coding": [{"system": CPT, "code": code, "display": "spine imaging"}]}
            if kind == "Procedure":
                g.add({"resourceType": "Procedure", "status": rng.choice(["completed"] * 4 + ["not-done"]),
                       "code": cc, "performedDateTime": d2s(when) + t})
            elif kind == "ImagingStudy":
                # session 11: every ImagingStudy status (7.2, conservative: only `available` is done),
                # and a study without its `started` date
                r = {"resourceType": "ImagingStudy", "procedureCode": [cc],
                     "status": rng.choice(["available"] * 6 + ["registered", "cancelled", "entered-in-error",
                                                               "unknown", None]),
                     "modality": [{"system": "http://dicom.nema.org/resources/ontology/DCM",
                                   "code": "CT" if code == "72131" else "MR"}]}
                if rng.random() < 0.9:
                    r["started"] = d2s(when) + t
                g.add({k: v for k, v in r.items() if v is not None})
            else:
                # session 11: every DiagnosticReport status; the imaging date as effectiveDateTime,
                # effectivePeriod (with or without its end) or absent; `issued` on the day, days later
                # (possibly after as-of: the report is then not in the record, 1.2) or absent
                r = {"resourceType": "DiagnosticReport", "code": cc,
                     "status": rng.choice(["final"] * 6 + ["amended", "corrected", "appended", "preliminary",
                                                           "partial", "registered", "cancelled",
                                                           "entered-in-error", "unknown", None])}
                eff = rng.choice(["dt"] * 6 + ["period", "open-period", "none"])
                if eff == "dt":
                    r["effectiveDateTime"] = d2s(when) + t
                elif eff == "period":
                    r["effectivePeriod"] = {"start": d2s(when - dt.timedelta(days=rng.choice([0, 1]))) + "T08:00:00Z",
                                            "end": d2s(when) + t}
                elif eff == "open-period":
                    r["effectivePeriod"] = {"start": d2s(when) + t}
                late = rng.choice([0, 0, 0, 1, 3, None])
                if late is not None:
                    r["issued"] = d2s(when + dt.timedelta(days=late)) + "T18:00:00Z"
                g.add({k: v for k, v in r.items() if v is not None})

    # ---- G. augmentation exclusions (7.5-5) ----
    if rng.random() < 0.12:
        ex = rng.choice([("A41.9", "Sepsis"), ("M46.26", "Osteomyelitis of vertebra, lumbar"),
                         ("D68.9", "Coagulation defect"), ("C79.51", "Secondary malignant neoplasm of bone"),
                         ("G95.20", "Cord compression"), ("M46.46", "Discitis, lumbar")])
        g.add({"resourceType": "Condition",
               "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                                  "code": rng.choice(["confirmed"] * 4 + ["refuted"])}]},
               "code": {"coding": [{"system": ICD10, "code": ex[0], "display": ex[1]}], "text": ex[1]},
               "onsetDateTime": d2s(day(rng.choice([3, 30, 400]))), "recordedDate": d2s(day(rng.choice([3, 30])))})

    # ---- H. facility LSC, femoral neck by bodySite, forearm ----
    bone = [r for r in g.res if r["resourceType"] == "Observation"
            and r["code"]["coding"][0]["code"] in ("24966-4", "38261-4", "24701-5", "46278-8", "46279-6")]
    if bone and rng.random() < 0.3:
        code = rng.choice(sorted({r["code"]["coding"][0]["code"] for r in bone}))
        mode = rng.choice(["pct", "pct", "abs", "later-only", "earlier-only"])
        lsc_pct = rng.choice([2.5, 2.6, 3.0, 4.0, 5.1, 5.4])
        lsc_abs = rng.choice([0.02, 0.025, 0.04])
        mine = sorted([r for r in bone if r["code"]["coding"][0]["code"] == code], key=lambda r: r["effectiveDateTime"])
        for k, r in enumerate(mine):
            if mode == "later-only" and k != len(mine) - 1:
                continue
            if mode == "earlier-only" and k == len(mine) - 1:
                continue
            v = qty(lsc_abs, "g/cm2") if mode == "abs" else qty(lsc_pct, "%")
            r["component"] = [{"code": {"coding": [{"system": OG, "code": "lsc", "display": "facility LSC"}]},
                               "valueQuantity": v}]
    neck = [r for r in g.res if r["resourceType"] == "Observation"
            and r["code"]["coding"][0]["code"] in ("24701-5", "38263-0")]
    if neck and rng.random() < 0.3:
        bs = rng.choice([{"coding": [{"system": SCT, "code": "29627003", "display": "Femoral neck"}]},
                         {"text": "Femoral neck"}])
        for r in neck:
            r["bodySite"] = bs
    if rng.random() < 0.1:
        t0 = rng.choice([-1.5, -2.4, -2.6])
        for k, ago in enumerate(sorted(rng.sample([0, 10, 200, 400, 800], 2), reverse=True)):
            g.add({"resourceType": "Observation", "status": "final",
                   "code": {"coding": [{"system": LOINC, "code": "38265-5", "display": "DXA Radius and Ulna [T-score]"}]},
                   "effectiveDateTime": d2s(day(ago)) + "T09:00:00Z", "issued": d2s(day(ago)) + "T15:00:00Z",
                   "valueQuantity": qty(round(t0 - (0.0 if k == 0 else rng.choice([0.4, 0.5, 1.0, 1.2])), 2),
                                        "{T-score}")})

    # ---- A. order hooks ----
    if rng.random() < 0.6:
        return make_hook(g, rng, as_of)
    return None


def add_pain(g, rng, when, value, t=None):
    g.add({"resourceType": "Observation", "status": "final",
           "code": {"coding": [{"system": LOINC, "code": "72514-3", "display": "Pain severity 0-10"}]},
           "effectiveDateTime": d2s(when) + (t or f"T{rng.randrange(8, 16):02d}:{rng.randrange(60):02d}:00Z"),
           "issued": d2s(when) + "T16:30:00Z",
           "valueQuantity": qty(value, "{score}")})


def make_hook(g, rng, as_of):
    hook = rng.choice(["order-sign", "order-sign", "order-select", "order-select", "patient-view"])
    drafts = []
    n = 0
    existing = [r for r in g.res if r["resourceType"] == "MedicationRequest"
                and r["medicationCodeableConcept"]["coding"][0]["code"] == "993449"]
    if rng.random() < 0.65:
        st = rng.choice(["stopped", "stopped", "stopped", "completed", "cancelled", "draft", "active",
                         "entered-in-error", "on-hold"])
        r = {"resourceType": "MedicationRequest", "status": st, "intent": "order",
             "medicationCodeableConcept": med("993449"),
             "dosageInstruction": [{"text": "60 mg SC every 6 months", "doseAndRate": [{"doseQuantity": qty(60, "mg")}]}]}
        drafts.append(r)
    if rng.random() < 0.4 or not drafts:
        code = rng.choice(["77655", "77655", "46041", "73056", "115264", "110634"])
        r = {"resourceType": "MedicationRequest", "status": rng.choice(["draft", "draft", "active", "cancelled"]),
             "intent": "order", "medicationCodeableConcept": med(code),
             "dosageInstruction": [{"text": DRUGS[code]}]}
        drafts.append(r)
    for r in drafts:
        n += 1
        idm = rng.random()
        if idm < 0.5:
            r["id"] = f"{g.pid}-draft-{n}"
        elif idm < 0.6 and existing and r["medicationCodeableConcept"]["coding"][0]["code"] == "993449":
            r["id"] = existing[-1]["id"]  # the draft replaces the order it changes
        if rng.random() < 0.5:
            r["subject"] = {"reference": f"Patient/{g.pid}"}
        if rng.random() < 0.4:
            r["authoredOn"] = d2s(as_of - dt.timedelta(days=rng.choice([0, 0, 2])))
    if hook == "patient-view":
        drafts = []
    return {"hook": hook, "drafts": drafts}
