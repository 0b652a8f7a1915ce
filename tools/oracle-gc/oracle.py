#!/usr/bin/env python3
"""Independent implementation of knowledge.md v0.10.3 §1-§4 and the §9 findings
gc-bone-protection, gc-fracture-risk-assessment-due, osteoporosis-treatment-indicated,
anabolic-therapy-preferred and data-insufficient items (1), (2), (9) (plus item (4) for a planned oral
bisphosphonate, the only other item the generator can raise).

Written from the specification only (not from the engine's code). Standard library only.
It reads the FHIR shapes gen.py writes (and the common shapes of the examples); anything else it does
not understand is ignored.

oracle(bundle, as_of) -> dict with "findings" {code: severity} and "values" (comparable key values).
"""
import datetime as dt
import json
import os
import re

RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
OG = "http://osteoguard.org/fhir/CodeSystem/osteoguard"
EXT_ADJ = "http://osteoguard.org/fhir/StructureDefinition/frax-gc-adjusted"
EXT_MECH = "http://osteoguard.org/fhir/StructureDefinition/fracture-mechanism"

# §2.2 factor = 5 / equivalent mg; None = excluded from PEq
GC_FACTOR = {
    "8640": 1.0, "8638": 1.0, "6902": 1.25, "5492": 0.25, "3264": 20.0 / 3.0, "10759": 1.25,
    "2878": 0.2, "22396": 5.0 / 6.0, "1514": 25.0 / 3.0, "19831": None, "4452": None,
}
GC_NAME = {"8640": "prednisone", "8638": "prednisolone", "6902": "methylprednisolone", "5492": "hydrocortisone",
           "3264": "dexamethasone", "10759": "triamcinolone", "2878": "cortisone", "22396": "deflazacort",
           "1514": "betamethasone", "19831": "budesonide", "4452": "fludrocortisone"}
REPLACEMENT = {"5492", "2878", "8638"}  # §2.5 physiologic_replacement agents
LOCAL_ROUTES = {"18679011000001101", "6064005", "46713006", "54485002", "10547007", "37161004", "26643008"}
SYSTEMIC_ROUTES = {"26643006", "47625008", "78421000", "34206005"}
IM = "78421000"
CALCIUM = {"1895", "1897"}
VITD = {"2418", "4511", "11253"}
ALN, RIS, IBN_, ZOL, DMAB, RALOX, TERI = "46041", "73056", "115264", "77655", "993449", "72143", "110634"
ABALO, ROMO = "1921069", "romosozumab"
ANABOLIC = {TERI, ABALO}
ORAL_BP = {ALN, RIS, IBN_}
DXA_T = {"38267-1": "spine", "38264-8": "hip", "80946-7": "hip", "80945-9": "hip", "38263-0": "femur",
         "80948-3": "femur", "80947-5": "femur"}
DXA_Z = {"85394-5", "80933-5", "80934-3"}
LAB_UNITS = {"2160-0": ("creat", {"mg/dL", "umol/L", "µmol/L", "mmol/L"}), "33914-3": ("egfr", {"mL/min/{1.73_m2}", "mL/min"}),
             "62238-1": ("egfr", {"mL/min/{1.73_m2}"}), "98979-8": ("egfr", {"mL/min/{1.73_m2}"}),
             "17861-6": ("ca", {"mg/dL", "mmol/L"}), "62292-8": ("vitd", {"ng/mL", "nmol/L", "ug/L"}),
             "1989-3": ("vitd", {"ng/mL", "nmol/L", "ug/L"}), "29463-7": ("weight", {"kg", "g", "[lb_av]"})}
DXA_BMD = {"24966-4", "38261-4", "46278-8", "46279-6", "24701-5"}

MR_STATUS = {"active", "completed", "on-hold", "stopped"}
MR_INTENT = {"order", "plan", "original-order", "filler-order", "instance-order"}
MS_STATUS = {"active", "completed", "intended", "stopped"}
OBS_STATUS = {"final", "amended", "corrected", "preliminary"}


def d(s):
    if not s:
        return None
    try:
        return dt.date.fromisoformat(s[:10])
    except ValueError:
        return None


def codes(cc, system=None):
    out = set()
    for c in (cc or {}).get("coding", []) or []:
        if system is None or c.get("system") == system:
            if c.get("code"):
                out.add(c["code"])
    return out


def ext_val(res, url, key):
    for e in res.get("extension", []) or []:
        if e.get("url") == url:
            return e.get(key)
    return None


def mg_of(q):
    """§1.3: a dose quantity in mg; None if not convertible."""
    if not q or q.get("value") is None:
        return None
    u = q.get("code") or q.get("unit")
    v = float(q["value"])
    if u == "mg":
        return v
    if u == "g":
        return v * 1000.0
    if u in ("ug", "mcg", "µg"):
        return v / 1000.0
    return None


PERIOD_DAYS = {"h": 1 / 24.0, "d": 1.0, "wk": 7.0, "mo": 30.0, "a": 365.0}
CODE_PER_DAY = {"BID": 2.0, "TID": 3.0, "QID": 4.0, "QD": 1.0, "QAM": 1.0, "QPM": 1.0, "Q2D": 0.5, "WK": 1 / 7.0}


def per_day(timing):
    """§2.3 step 2; None = not computable."""
    if not timing:
        return None
    rep = timing.get("repeat") or {}
    freq = rep.get("frequencyMax", rep.get("frequency"))
    if rep.get("period") is not None and rep.get("periodUnit") in PERIOD_DAYS:
        pd = float(rep["period"]) * PERIOD_DAYS[rep["periodUnit"]]
        if pd <= 0:
            return None
        return float(freq if freq is not None else 1) / pd
    for c in codes(timing.get("code")) | ({(timing.get("code") or {}).get("text")} - {None}):
        if c in CODE_PER_DAY:
            return CODE_PER_DAY[c]
    if rep.get("when") and freq is None:
        return float(len(rep["when"]))
    if freq is not None and rep.get("period") is None:
        return None
    return None


def route_systemic(dosage):
    r = dosage.get("route") if dosage else None
    if not r:
        return True  # §2.6: a record without a route counts as systemic
    cs = codes(r)
    if cs & LOCAL_ROUTES:
        return False
    if cs & SYSTEMIC_ROUTES:
        return True
    t = (r.get("text") or "").lower()
    for w in ("inhal", "nasal", "topical", "ophthal", "otic", "rectal", "articular", "lesional"):
        if w in t:
            return False
    return True


class Rec:
    """one GC instruction: interval [start, end] (inclusive), daily PEq (None = unknown)."""

    def __init__(self, kind, ing, start, end, daily, open_end, planned_days, depot=False, single=False):
        self.kind, self.ing, self.start, self.end, self.daily = kind, ing, start, end, daily
        self.open_end, self.planned_days, self.depot, self.single = open_end, planned_days, depot, single
        self.planned_end = None if open_end else end


def visible_date(res):
    rt = res["resourceType"]
    if rt == "MedicationRequest":
        return d(res.get("authoredOn"))
    if rt == "MedicationStatement":
        return d(res.get("dateAsserted")) or d((res.get("effectivePeriod") or {}).get("start")) or d(
            res.get("effectiveDateTime"))
    if rt == "MedicationAdministration":
        return d(res.get("effectiveDateTime")) or d((res.get("effectivePeriod") or {}).get("start"))
    if rt == "Observation":
        return d(res.get("issued")) or d(res.get("effectiveDateTime")) or d(
            (res.get("effectivePeriod") or {}).get("start"))
    if rt == "Condition":
        return d(res.get("recordedDate")) or d(res.get("onsetDateTime")) or d(
            (res.get("onsetPeriod") or {}).get("start"))
    if rt == "Procedure":
        return d(res.get("performedDateTime")) or d((res.get("performedPeriod") or {}).get("end"))
    return None


# §10.1 "match also any SCD/SBD whose ingredient is one of these": product codes -> (ingredient, mg per
# unit, unit kind). Read from the VSAC glucocorticoid expansion in ../shared/data (displays name the
# ingredient and strength), plus the SCD/SBD codes of the anabolic agents named in
# docs/terminology-verification.md.
SCD = {}
ING_BY_NAME = {"prednisone": "8640", "prednisolone": "8638", "methylprednisolone": "6902", "hydrocortisone": "5492",
               "dexamethasone": "3264", "cortisone acetate": "2878", "triamcinolone": "10759"}
_VS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "data", "ecqm-qicore-2024",
                   "valuesets", "valueset-2.16.840.1.113883.3.464.1003.196.12.1266.json")
for _path in (_VS, "/work/shared/data/ecqm-qicore-2024/valuesets/valueset-2.16.840.1.113883.3.464.1003.196.12.1266.json"):
    if os.path.exists(_path):
        for _c in json.load(open(_path)).get("expansion", {}).get("contains", []):
            _m = re.match(r"^(?:\{\d+ \()?([a-z ]+?) ([\d.]+) MG(/ML)? (?:Delayed Release |Disintegrating )?Oral "
                          r"(Tablet|Solution)(?: \) \} Pack)?$", _c.get("display", ""))
            if _m and _m.group(1) in ING_BY_NAME:
                SCD[_c["code"]] = (ING_BY_NAME[_m.group(1)], float(_m.group(2)), "mL" if _m.group(3) else "tbl")
        break
TERI_SCD = {"1435115", "1435117"}  # openFDA NDC: teriparatide 250 ug/mL pen (generic / Forteo)
ABALO_SCD = {"1921082", "1921083"}  # abaloparatide 2 MG/ML pen (SCD / Tymlos SBD)
ATC_MAP = {"H05AA02": TERI, "H05AA04": ABALO, "M05BX06": ROMO}
TBL_UNITS = {"{tbl}", "TAB", "tablet", "tab", "{tablet}"}
ML_UNITS = {"mL", "ml"}
MEDS = {}  # "Medication/<id>" and fullUrl -> Medication resource (set per bundle by oracle())


def unit_kind(q):
    u = (q or {}).get("code") or (q or {}).get("unit")
    if u in TBL_UNITS:
        return "tbl"
    if u in ML_UNITS:
        return "mL"
    return None


def medication_res(res):
    ref = (res.get("medicationReference") or {}).get("reference", "")
    if not ref:
        return None
    if ref.startswith("#"):
        for c in res.get("contained", []) or []:
            if c.get("id") == ref[1:] and c.get("resourceType") == "Medication":
                return c
        return None
    return MEDS.get(ref)


def ing_codes(cc):
    """ingredient codes of a CodeableConcept: RxNorm IN, a known SCD/SBD, or an ATC code of the agents
    without a verified RxNorm ingredient"""
    out = set()
    for c in codes(cc, RX):
        if c in SCD:
            out.add(SCD[c][0])
        elif c in TERI_SCD:
            out.add(TERI)
        elif c in ABALO_SCD:
            out.add(ABALO)
        else:
            out.add(c)
    for c in codes(cc, "http://www.whocc.no/atc"):
        if c in ATC_MAP:
            out.add(ATC_MAP[c])
    return out


def product_of(res):
    """(ingredient codes, {unit kind: mg per unit} of the single GC ingredient) from a referenced Medication
    (contained or standalone: ingredient.strength, else its code) or a known SCD code"""
    med = medication_res(res)
    if med is not None:
        ings = set()
        strength = {}
        for i in med.get("ingredient", []) or []:
            ic = ing_codes(i.get("itemCodeableConcept"))
            ings |= ic
            num = (i.get("strength") or {}).get("numerator")
            den = (i.get("strength") or {}).get("denominator") or {}
            k = unit_kind(den)
            mg = mg_of(num)
            if k and mg is not None and den.get("value") not in (None, 0):
                strength[k] = mg / float(den["value"])
        mc = med.get("code")
        ings |= ing_codes(mc)
        if not strength:
            for c in codes(mc, RX):
                if c in SCD:
                    strength[SCD[c][2]] = SCD[c][1]
        if len([x for x in ings if x in GC_FACTOR]) > 1:
            strength = {}
        return ings, strength
    cc = res.get("medicationCodeableConcept")
    strength = {}
    for c in codes(cc, RX):
        if c in SCD:
            strength[SCD[c][2]] = SCD[c][1]
    return ing_codes(cc), strength


def med_code(res):
    return product_of(res)[0]


def dose_mg(q, res):
    """§2.3 step 1 for one dose quantity: mg, product units x labelled strength, else None"""
    if not q or q.get("value") is None:
        return None
    k = unit_kind(q)
    if k:
        st = product_of(res)[1].get(k)
        return float(q["value"]) * st if st else None
    return mg_of(q)


def interval_of(res, dosage, as_of):
    """§1.6 and §2.3 step 4: (start, end, open_end, planned_days)."""
    rt = res["resourceType"]
    rep = ((dosage or {}).get("timing") or {}).get("repeat") or {}
    if rt == "MedicationRequest":
        base = d(res.get("authoredOn"))
    else:
        base = d((res.get("effectivePeriod") or {}).get("start")) or d(res.get("effectiveDateTime")) or d(
            res.get("dateAsserted"))
    start, end = base, None
    dur = None
    if rep.get("boundsPeriod"):
        bp = rep["boundsPeriod"]
        start = d(bp.get("start")) or base
        end = d(bp.get("end"))
    elif rep.get("boundsDuration"):
        bd = rep["boundsDuration"]
        dur = days_of(bd)
    elif rt == "MedicationRequest" and ((res.get("dispenseRequest") or {}).get("validityPeriod")):
        vp = res["dispenseRequest"]["validityPeriod"]
        start = d(vp.get("start")) or base
        end = d(vp.get("end"))
    if rt == "MedicationStatement" and end is None and dur is None:
        end = d((res.get("effectivePeriod") or {}).get("end"))
    if start is None:
        return None
    if dur is not None and end is None:
        end = start + dt.timedelta(days=max(int(round(dur)), 1) - 1)
    status = res.get("status")
    open_end = False
    if end is None:
        if rt == "MedicationRequest":
            if status in ("stopped", "completed"):
                # §1.6: end from validity period / expected supply duration, else 30 days from start
                dr = res.get("dispenseRequest") or {}
                vp_end = d((dr.get("validityPeriod") or {}).get("end"))
                esd = days_of(dr.get("expectedSupplyDuration"))
                if vp_end:
                    end = vp_end
                elif esd:
                    end = start + dt.timedelta(days=int(round(esd)) - 1)
                else:
                    end = start + dt.timedelta(days=29)
            else:
                open_end = True
                end = as_of
        else:
            if status == "stopped":
                end = d(res.get("dateAsserted")) or start
            else:
                open_end = True
                end = as_of
    planned = None if open_end else (end - start).days + 1
    return start, end, open_end, planned


def days_of(q):
    if not q or q.get("value") is None:
        return None
    u = q.get("code") or q.get("unit")
    v = float(q["value"])
    return {"d": v, "day": v, "days": v, "wk": v * 7, "mo": v * 30, "a": v * 365, "h": v / 24}.get(u)


def gc_records(entries, as_of):
    """the systemic GC records visible at as_of; ingredient excluded ones are dropped (recorded, not summed)."""
    recs = []
    prn = []
    for res in entries:
        rt = res.get("resourceType")
        if rt not in ("MedicationRequest", "MedicationStatement", "MedicationAdministration"):
            continue
        cs = med_code(res)
        ing = next((c for c in cs if c in GC_FACTOR), None)
        if ing is None:
            continue
        vd = visible_date(res)
        if vd is None or vd > as_of:
            continue
        factor = GC_FACTOR[ing]
        st = res.get("status")
        if rt == "MedicationAdministration":
            if st != "completed":
                continue
            dosage = res.get("dosage") or {}
            if not route_systemic(dosage):
                continue
            if factor is None or factor == 0:
                continue
            day = vd
            mg = dose_mg(dosage.get("dose"), res)
            is_im_triam = ing == "10759" and IM in codes(dosage.get("route"))
            if mg is None:
                recs.append(Rec("MA", ing, day, day, None, False, 1, single=True))
            elif is_im_triam:
                # §2.4: depot IM triamcinolone spread evenly over 21 days
                recs.append(Rec("MA", ing, day, day + dt.timedelta(days=20), mg * factor / 21.0, False, 21,
                                depot=True))
            else:
                recs.append(Rec("MA", ing, day, day, mg * factor, False, 1, single=True))
            continue
        if rt == "MedicationRequest":
            if st not in MR_STATUS or res.get("intent") not in MR_INTENT:
                continue
            dosages = res.get("dosageInstruction") or [None]
        else:
            if st not in MS_STATUS:
                continue
            dosages = res.get("dosage") or [None]
        if factor is None or factor == 0:
            continue
        for dos in dosages:
            if dos is not None and not route_systemic(dos):
                continue
            iv = interval_of(res, dos, as_of)
            if iv is None:
                continue
            start, end, open_end, planned = iv
            if start > as_of:
                continue
            daily = None
            if dos is not None:
                dr = (dos.get("doseAndRate") or [{}])[0]
                mg = None
                if dr.get("doseQuantity"):
                    mg = dose_mg(dr["doseQuantity"], res)
                elif dr.get("doseRange"):
                    mg = mg_of((dr["doseRange"] or {}).get("high"))
                pdv = per_day(dos.get("timing"))
                if mg is not None and pdv is not None:
                    daily = mg * pdv * factor
            rec = Rec(rt[10:12] if rt != "MedicationRequest" else "MR", ing, start, end, daily, open_end, planned)
            if dos is not None and dos.get("asNeededBoolean"):
                # §2.3: PRN is not chronic exposure; the only GC source -> exposure with an UNKNOWN dose
                rec.daily = None
                prn.append(rec)
                continue
            recs.append(rec)
    # "the only GC source": no other record present (§2.6, within 7 days of as_of) -> the PRN
    # record is exposure with an UNKNOWN dose (see README: ambiguity)
    if not any(r.end >= as_of - dt.timedelta(days=7) for r in recs):
        recs = recs + prn
    return recs


def gc_metrics(recs, as_of):
    lo = min([r.start for r in recs] + [as_of - dt.timedelta(days=400)])
    series = {}
    # §2.3 step 5: MR/MS duplicates (same ingredient, same daily dose, overlapping) count once
    for day_i in range((as_of - lo).days + 1):
        day = lo + dt.timedelta(days=day_i)
        tot = 0.0
        groups = {}
        for r in recs:
            if r.daily is None or not (r.start <= day <= min(r.end, as_of)):
                continue
            if r.kind in ("MR", "St"):
                g = groups.setdefault((r.ing, round(r.daily, 6)), [0, 0])
                g[0 if r.kind == "MR" else 1] += 1
            else:
                tot += r.daily
        for (ing, daily), (n_mr, n_ms) in groups.items():
            tot += daily * max(n_mr, n_ms)
        series[day] = tot

    def peq(day):
        return series.get(day, 0.0)

    cur = peq(as_of)
    if cur == 0:
        prior = [peq(as_of - dt.timedelta(days=k)) for k in range(1, 8)]
        if any(p > 0 for p in prior):
            cur = sum(prior) / 7.0
    # continuous run ending at as_of with PEq >= 2.5, gaps <= 7 days bridged
    run_start = None
    gap = 0
    day = as_of
    while day >= lo:
        if peq(day) >= 2.5:
            run_start = day
            gap = 0
        else:
            gap += 1
            if gap > 7:
                break
        day -= dt.timedelta(days=1)
    cont = (as_of - run_start).days + 1 if run_start else 0
    w0 = as_of - dt.timedelta(days=364)
    win = [w0 + dt.timedelta(days=k) for k in range(365)]
    days30 = sum(1 for t in win if peq(t) >= 30)
    cum = sum(peq(t) for t in win) / 1000.0
    return {"series": series, "current": cur, "cont": cont, "run_start": run_start, "days30": days30, "cum": cum}


def gc_state(entries, as_of):
    recs = gc_records(entries, as_of)
    m = gc_metrics(recs, as_of)
    present = [r for r in recs if r.end >= as_of - dt.timedelta(days=7)]
    unknown_present = any(r.daily is None for r in present)
    known_present = [r for r in present if r.daily is not None]
    # open-ended, or the planned total duration of the current course (from the start of the
    # current run to the latest planned end of the records covering as_of) > 90 days
    covering = [r for r in known_present if r.start <= as_of <= r.end]
    long_term = any(r.open_end for r in covering)
    if not long_term and covering and m["run_start"] is not None:
        planned_end = max(r.end if not r.open_end else as_of for r in covering)
        planned_end = max([planned_end] + [r.planned_end for r in covering if r.planned_end])
        long_term = (planned_end - m["run_start"]).days + 1 > 90
    known_q = m["current"] >= 2.5 and (m["cont"] > 90 or long_term)
    if not present:
        q = "false"
    elif known_q:
        q = "true"
    elif unknown_present:
        q = "unknown"
    else:
        q = "false"
    # §2.5 gc_start_date
    start = None
    if q == "unknown":
        # earliest systemic GC record of the current course (records <= 7 days apart are one course)
        ordered = sorted(recs, key=lambda r: r.start, reverse=True)
        course = []
        for r in sorted(recs, key=lambda r: r.end, reverse=True):
            if not course:
                if r.end >= as_of - dt.timedelta(days=7):
                    course.append(r)
                continue
        if course:
            lo_start = course[0].start
            changed = True
            members = set([id(course[0])])
            hi_end = course[0].end
            while changed:
                changed = False
                for r in ordered:
                    if id(r) in members:
                        continue
                    if r.end >= lo_start - dt.timedelta(days=8) and r.start <= hi_end + dt.timedelta(days=8):
                        members.add(id(r))
                        lo_start = min(lo_start, r.start)
                        hi_end = max(hi_end, r.end)
                        changed = True
            start = lo_start
    elif m["run_start"] is not None and q == "true":
        start = m["run_start"]
    # item (1): a systemic GC record with a non-computable dose active within the last 365 days
    item1 = any(r.daily is None and r.end >= as_of - dt.timedelta(days=364) for r in recs)
    hd_unknown = item1
    return {"recs": recs, "m": m, "q": q, "start": start, "item1": item1, "hd_unknown": hd_unknown,
            "unknown_present": unknown_present, "present": present}


def med_active_on(res, as_of):
    """an order/statement covering as_of (§1.6 status filters; stopped order = 30 days)."""
    rt = res["resourceType"]
    st = res.get("status")
    if rt == "MedicationRequest":
        if st not in MR_STATUS or res.get("intent") not in MR_INTENT:
            return False
    elif rt == "MedicationStatement":
        if st not in MS_STATUS:
            return False
    else:
        return False
    vd = visible_date(res)
    if vd is None or vd > as_of:
        return False
    dos = (res.get("dosageInstruction") or res.get("dosage") or [None])[0]
    iv = interval_of(res, dos, as_of)
    if iv is None:
        return False
    s, e, _, _ = iv
    return s <= as_of <= e


def oracle(bundle, as_of):
    entries = [e["resource"] for e in bundle.get("entry", []) if "resource" in e]
    MEDS.clear()
    for e in bundle.get("entry", []):
        r = e.get("resource") or {}
        if r.get("resourceType") == "Medication":
            if r.get("id"):
                MEDS["Medication/" + r["id"]] = r
            if e.get("fullUrl"):
                MEDS[e["fullUrl"]] = r
    pat = next((r for r in entries if r.get("resourceType") == "Patient"), {})
    bd = d(pat.get("birthDate"))
    age = None
    if bd:
        age = as_of.year - bd.year - ((as_of.month, as_of.day) < (bd.month, bd.day))
    gc = gc_state(entries, as_of)
    m = gc["m"]
    cur = m["current"]
    items = set()
    if gc["item1"]:
        items.add(1)

    # --- supplements (§4.1 / gc-bone-protection)
    ca = any(med_code(r) & CALCIUM and med_active_on(r, as_of) for r in entries)
    vd_ = any(med_code(r) & VITD and med_active_on(r, as_of) for r in entries)

    # --- observations
    t_latest = {}
    z_latest = {}
    dxa_dates = []
    frax = {"frax-mof": None, "frax-hip": None}
    frax_date = {"frax-mof": None, "frax-hip": None}
    for r in entries:
        if r.get("resourceType") != "Observation" or r.get("status") not in OBS_STATUS:
            continue
        vd = visible_date(r)
        if vd is None or vd > as_of:
            continue
        eff = d(r.get("effectiveDateTime")) or vd
        lc = codes(r.get("code"), LOINC)
        oc = codes(r.get("code"), OG)
        q = r.get("valueQuantity") or {}
        v = q.get("value")
        for c in lc:
            if c in DXA_T and v is not None:
                site = DXA_T[c]
                if site not in t_latest or eff >= t_latest[site][0]:
                    t_latest[site] = (eff, float(v))
                dxa_dates.append(eff)
            elif c in DXA_Z and v is not None:
                if c not in z_latest or eff >= z_latest[c][0]:
                    z_latest[c] = (eff, float(v))
                dxa_dates.append(eff)
            elif c in DXA_BMD and v is not None:
                dxa_dates.append(eff)
        for c in oc & {"frax-mof", "frax-hip"}:
            if v is None:
                continue
            u = q.get("code") or q.get("unit")
            val = float(v)
            if (as_of - eff).days > 365:
                continue  # not used; an unusable value this old is not reported (item 9: see README)
            if u == "%":
                pass
            elif u == "1" and val <= 1.0:
                val *= 100.0
            else:
                items.add(9)  # unit unknown
                continue
            if not (0.0 <= val <= 100.0):
                items.add(9)  # out of range
                continue
            adj = ext_val(r, EXT_ADJ, "valueBoolean") is True
            if frax_date[c] is None or eff > frax_date[c] or (eff == frax_date[c] and val > frax[c][0]):
                frax[c] = (val, adj)
                frax_date[c] = eff
    min_t = min((v for _, v in t_latest.values()), default=None)
    min_z = min((v for _, v in z_latest.values()), default=None)
    has_dxa = bool(dxa_dates)
    latest_dxa = max(dxa_dates) if dxa_dates else None

    def adj(kind):
        f = frax[kind]
        if f is None:
            return None
        val, already = f
        if already or cur <= 7.5:
            return val
        return val * (1.15 if kind == "frax-mof" else 1.20)

    mof, hip = adj("frax-mof"), adj("frax-hip")

    # --- fractures (§3.1, §10.3, §10.3a)
    prior_fx = False
    prior_hip_vert = False
    vert_incident = []  # (onset, level or None) of incident (7th character A/B or none) vertebral fractures
    for r in entries:
        if r.get("resourceType") != "Condition":
            continue
        vs = codes(r.get("verificationStatus"))
        if vs & {"refuted", "entered-in-error"}:
            continue
        vdt = visible_date(r)
        if vdt is None or vdt > as_of:
            continue
        if ext_val(r, EXT_MECH, "valueCode") == "traumatic":
            continue
        ic = codes(r.get("code"), ICD)
        sc = codes(r.get("code"), SCT)
        vert = any(c.startswith(("M80.08", "M48.5", "S22.0", "S32.0")) for c in ic) or "443165006" in sc
        hipf = bool(sc & {"359817006", "5913000"}) or any(c.startswith(("S72.0", "S72.1", "S72.2", "M80.05"))
                                                          for c in ic)
        other = bool(sc & {"263102004", "65966004"}) or any(
            c.startswith(("S52.5", "S52.6", "M80.03", "S42.2", "M80.02", "M80.0", "M80.8")) for c in ic)
        # 7th character D/G/K/S = subsequent encounter, not a new fracture (still a prior fracture? see README)
        if vert or hipf or other:
            prior_fx = True
        if vert or hipf:
            prior_hip_vert = True
        subsequent = any(len(c) >= 8 and c[7] in "DGKS" for c in ic)
        if vert and not subsequent:
            onset = d((r.get("onsetPeriod") or {}).get("start")) or d(r.get("onsetDateTime")) or vdt
            lvl = next((b.get("text") for b in (r.get("bodySite") or []) if isinstance(b, dict) and b.get("text")),
                       None)
            vert_incident.append((onset, lvl))

    # --- active osteoporosis pharmacotherapy (§4.3) and planned orders (§8 "planned", v0.10.1/v0.10.2)
    active = set()
    planned = False
    planned_agents = set()
    admin_dates = {DMAB: [], ZOL: []}
    for r in entries:
        if r.get("resourceType") == "MedicationAdministration" and r.get("status") == "completed":
            vd = visible_date(r)
            cs = med_code(r)
            if vd is not None and vd <= as_of:
                for ag in (DMAB, ZOL):
                    if ag in cs:
                        admin_dates[ag].append(vd)
    for r in entries:
        rt = r.get("resourceType")
        cs = med_code(r)
        vd = visible_date(r)
        if vd is None or vd > as_of:
            continue
        if rt == "MedicationAdministration" and r.get("status") == "completed":
            days = (as_of - vd).days
            if DMAB in cs and days <= 210:
                active.add("dmab")
            if ZOL in cs and days <= 365:
                active.add("zol")
        if rt in ("MedicationRequest", "MedicationStatement"):
            if cs & (ORAL_BP | {RALOX, ROMO} | ANABOLIC) and med_active_on(r, as_of):
                active.add("oralbp" if cs & ORAL_BP else ("anabolic" if cs & ANABOLIC else
                                                          ("romo" if ROMO in cs else "ralox")))
            if rt == "MedicationRequest" and r.get("status") in ("draft", "active") and \
                    r.get("intent") in MR_INTENT | {"proposal"} and (as_of - vd).days <= 90:
                for ag in cs & (ORAL_BP | {RALOX, ROMO, ZOL, DMAB} | ANABOLIC):
                    if ag in (ZOL, DMAB):
                        # an infusion/injection order is planned until a matching administration on/after it
                        if not any(x >= vd for x in admin_dates[ag]):
                            planned_agents.add(ag)
                    elif r.get("status") == "draft" or not med_active_on(r, as_of):
                        planned_agents.add(ag)
    planned = bool(planned_agents)
    dmab_730 = any((as_of - x).days <= 730 for x in admin_dates[DMAB])
    # completed anabolic course: cumulative teriparatide/abaloparatide days >= 730 (§9 anabolic-therapy-preferred)
    ana_days = set()
    for r in entries:
        rt = r.get("resourceType")
        if rt not in ("MedicationRequest", "MedicationStatement") or not (med_code(r) & ANABOLIC):
            continue
        st = r.get("status")
        if (rt == "MedicationRequest" and (st not in MR_STATUS or r.get("intent") not in MR_INTENT)) or \
                (rt == "MedicationStatement" and st not in MS_STATUS):
            continue
        vd = visible_date(r)
        if vd is None or vd > as_of:
            continue
        dos = (r.get("dosageInstruction") or r.get("dosage") or [None])[0]
        iv = interval_of(r, dos, as_of)
        if iv is None:
            continue
        s_, e_ = iv[0], min(iv[1], as_of)
        for k in range((e_ - s_).days + 1):
            ana_days.add(s_ + dt.timedelta(days=k))
    ana_completed = len(ana_days) >= 730

    # --- denosumab (§5.1, §5.2) as far as §9 items (4), (5), (7), (8) and the §8 "planned/due" need it
    # §5.1 dose-date tiers (never merged): administrations > statements with effectiveDateTime > requests
    # (authoredOn, uncertain date). A tier-3 order is then a dose, not a plan (ambiguity, see the doc).
    tiers = {1: [], 2: [], 3: []}
    tier3_sources = set()
    undated_tiers = []
    for r in entries:
        rt = r.get("resourceType")
        if rt not in ("MedicationRequest", "MedicationStatement", "MedicationAdministration") or \
                DMAB not in med_code(r):
            continue
        st = r.get("status")
        if rt == "MedicationAdministration" and st == "completed":
            t_, dd = 1, d(r.get("effectiveDateTime")) or d((r.get("effectivePeriod") or {}).get("start"))
        elif rt == "MedicationStatement" and st in ("active", "completed", "stopped"):
            t_, dd = 2, d(r.get("effectiveDateTime"))
            if dd is None and r.get("effectivePeriod") is None and not r.get("dateAsserted"):
                dd = None
            elif dd is None:
                continue
        elif rt == "MedicationRequest" and st in ("active", "completed", "on-hold", "stopped"):
            t_, dd = 3, d(r.get("authoredOn"))
        else:
            continue
        if dd is None:
            undated_tiers.append(t_)
        elif dd <= as_of:
            tiers[t_].append(dd)
            if t_ == 3:
                tier3_sources.add(id(r))
    chosen = next((k for k in (1, 2, 3) if tiers[k]), None)
    dm = sorted(set(tiers[chosen])) if chosen else []
    dmab_undated = any(chosen is None or t_ <= chosen for t_ in undated_tiers)
    if chosen == 3:
        planned_agents.discard(DMAB) if not any(
            r.get("resourceType") == "MedicationRequest" and r.get("status") == "draft" and DMAB in med_code(r)
            and visible_date(r) and 0 <= (as_of - visible_date(r)).days <= 90 for r in entries) else None
        if d_last_active := (dm and (as_of - dm[-1]).days <= 210):
            active.add("dmab")
        dmab_730 = dmab_730 or any((as_of - x).days <= 730 for x in dm)
    dmab_count = 0
    last_counted = None
    for x in dm:
        if last_counted is None or (x - last_counted).days >= 60:
            dmab_count += 1
            last_counted = x
    # D_last = the last counted dose (a record < 60 days after the previous counted dose documents the
    # same dose; ambiguity, the engine's earlier date is the conservative one: see the doc)
    d_last = last_counted
    transition = False
    if d_last is not None:
        for r in entries:
            rt = r.get("resourceType")
            cs = med_code(r)
            if not cs & (ORAL_BP | {ZOL}):
                continue
            vd = visible_date(r)
            if vd is None or vd > as_of:
                continue
            if rt == "MedicationAdministration" and r.get("status") == "completed" and vd > d_last:
                transition = True
            if rt in ("MedicationRequest", "MedicationStatement") and cs & ORAL_BP:
                st = r.get("status")
                ok = (rt == "MedicationRequest" and st in MR_STATUS) or (rt == "MedicationStatement" and
                                                                          st in MS_STATUS)
                dos = (r.get("dosageInstruction") or r.get("dosage") or [None])[0]
                iv = interval_of(r, dos, as_of)
                if ok and iv and d_last < iv[0] <= as_of:
                    transition = True
    dmab_due = d_last is not None and not transition and (as_of - d_last).days >= 154
    disc = d_last is not None and not transition and (as_of - d_last).days > 210
    # §5.5 rebound: |F| = distinct levels + records without a level, fractures in [D_last+183, D_last+730]
    f_levels, f_nolevel = set(), 0
    if dmab_count >= 2 and d_last is not None:
        for t_f, lvl in vert_incident:
            if d_last + dt.timedelta(days=183) <= t_f <= d_last + dt.timedelta(days=730):
                if lvl:
                    f_levels.add(lvl.strip().upper())
                else:
                    f_nolevel += 1
    n_f = len(f_levels) + f_nolevel
    rebound = n_f >= 2
    zol_planned = ZOL in planned_agents or disc or (rebound and not transition)
    # --- labs (§8 freshness; §1.3 units)
    labs = {}
    for r in entries:
        if r.get("resourceType") != "Observation" or r.get("status") not in OBS_STATUS:
            continue
        vd = visible_date(r)
        if vd is None or vd > as_of:
            continue
        eff = d(r.get("effectiveDateTime")) or vd
        q = r.get("valueQuantity") or {}
        if q.get("value") is None:
            continue
        u = q.get("code") or q.get("unit")
        for c in codes(r.get("code"), LOINC):
            kind = LAB_UNITS.get(c)
            if kind and u in kind[1]:
                labs.setdefault(kind[0], []).append(eff)

    def lab_within(kind, days):
        return any(0 <= (as_of - x).days <= days for x in labs.get(kind, []))

    if zol_planned:
        renal = lab_within("creat", 30) or lab_within("egfr", 30)
        crcl_gap = lab_within("creat", 30) and not lab_within("egfr", 30) and not lab_within("weight", 365)
        if not renal or crcl_gap or not lab_within("ca", 30):
            items.add(3)
    if (planned_agents & (ORAL_BP | {ZOL, DMAB})) or zol_planned or dmab_due:
        if not lab_within("vitd", 365):
            items.add(4)
    if dmab_due or DMAB in planned_agents:
        renal = lab_within("creat", 365) or lab_within("egfr", 365)
        crcl_gap = lab_within("creat", 365) and not lab_within("egfr", 365) and not lab_within("weight", 365)
        if not renal or crcl_gap:
            items.add(5)
    if dmab_undated:
        items.add(8)
    # item (7): rebound UNKNOWN - exactly one fracture in the rebound window, no CTX, no serial BMD
    if n_f == 1:
        items.add(7)

    # --- §3.2 category
    hd_true = m["days30"] > 30 or m["cum"] >= 5.0
    hd_false = not hd_true and not gc["hd_unknown"]
    cat, row = "unknown", None
    q = gc["q"]
    if age is None or age < 18:
        cat = "unknown"
    elif age >= 40:
        if prior_fx or (min_t is not None and min_t <= -3.5) or (mof is not None and mof >= 30) or \
                (hip is not None and hip >= 4.5) or hd_true:
            cat, row = "very-high", "A1"
        elif (min_t is not None and min_t <= -2.5) or (mof is not None and mof >= 20) or \
                (hip is not None and hip >= 3):
            cat, row = "high", "A2"
        elif (mof is not None and mof >= 10) or (hip is not None and hip >= 1) or \
                (min_t is not None and min_t <= -1.0):
            cat, row = "moderate", "A3"
        elif mof is not None and hip is not None and min_t is not None and hd_false:
            cat, row = "low", "A4"
        else:
            cat, row = "unknown", "A5"
    else:
        if prior_fx or hd_true:
            cat, row = "very-high", "B1"
        else:
            # B2 dose part: every day of the last 182 has PEq >= 7.5 (gaps <= 7 bridged), current >= 7.5
            s = m["series"]
            run75 = None
            gap = 0
            t = as_of
            while t >= as_of - dt.timedelta(days=800):
                if s.get(t, 0.0) >= 7.5:
                    run75, gap = t, 0
                else:
                    gap += 1
                    if gap > 7:
                        break
                t -= dt.timedelta(days=1)
            ok = cur >= 7.5 and run75 is not None and (as_of - run75).days + 1 >= 182
            dose_part = "true" if ok else ("unknown" if gc["unknown_present"] else "false")
            if min_z is not None and min_z < -3.0:
                zl = "true"
            elif min_z is not None:
                zl = "false"
            else:
                zl = "unknown"
            if dose_part == "true" and zl == "true":
                b2 = "true"
            elif dose_part == "false" or zl == "false":
                b2 = "false"
            else:
                b2 = "unknown"
            if b2 == "true":
                cat, row = "moderate", "B2"
            elif q == "true" and b2 == "false" and hd_false and has_dxa:
                cat, row = "low", "B3"
            elif not has_dxa and not prior_fx:
                cat, row = "unknown", "B4"
            else:
                cat, row = "unknown", "B5"

    findings = {}
    adult = age is not None and age >= 18
    gq = q in ("true", "unknown")
    if gq and adult and not (ca and vd_):
        findings["gc-bone-protection"] = "moderate"
    op_active = bool(active)
    if gq and adult:
        start = gc["start"]
        a = False
        if start is not None and (as_of - start).days >= 0:
            lo = start - dt.timedelta(days=365)
            a = not any(lo <= x <= as_of for x in dxa_dates)
        b = latest_dxa is not None and (as_of - latest_dxa).days > 730
        no_frax = frax["frax-mof"] is None and frax["frax-hip"] is None
        c = age >= 40 and not op_active and no_frax and cat != "very-high"
        dd = cat == "unknown"
        if a or b or c or dd:
            findings["gc-fracture-risk-assessment-due"] = "high" if (a and (as_of - start).days > 182) \
                else "moderate"
    if not op_active and not planned and not disc:
        ca_ = gq and cat in ("moderate", "high", "very-high")
        cb = age is not None and age >= 50 and ((min_t is not None and min_t <= -2.5) or prior_hip_vert)
        if ca_ or cb:
            findings["osteoporosis-treatment-indicated"] = "high" if (cb or cat in ("high", "very-high")) \
                else "moderate"
    if cat == "very-high" and adult and "anabolic" not in active and not ana_completed and not dmab_730 and \
            not (active - {"oralbp"}) and not planned:
        findings["anabolic-therapy-preferred"] = "moderate"
    if q in ("true", "unknown") and cat == "unknown" and adult:
        items.add(2)
    if items:
        findings["data-insufficient"] = "moderate" if items & {3, 4, 5} else "info"
    # §2.5 physiologic_replacement
    ai = False
    for r in entries:
        if r.get("resourceType") == "Condition" and visible_date(r) and visible_date(r) <= as_of and \
                not (codes(r.get("verificationStatus")) & {"refuted", "entered-in-error"}) and \
                any(c.startswith(("E27.1", "E27.4", "E23.0")) for c in codes(r.get("code"), ICD)):
            ai = True
    ings = {x.ing for x in gc["present"]}
    phys = ai and bool(ings) and ings <= REPLACEMENT and cur <= 7.5 and not gc["unknown_present"]
    values = {
        "phys": phys,
        "qualifying": q,
        "current": round(cur, 4) if (q != "unknown" or cur > 0) else None,
        "cum": round(m["cum"], 4),
        "days30": m["days30"],
        "cont": m["cont"],
        "start": gc["start"].isoformat() if gc["start"] else None,
        "category": cat,
        "row": row,
        "mof": None if mof is None else round(mof, 4),
        "hip": None if hip is None else round(hip, 4),
    }
    # §4.3 "If therapy status cannot be determined (e.g. a MedicationStatement 'unknown') -> UNKNOWN ->
    # treatment-indicated findings still fire with text 'confirm current therapy'"
    values["therapy_unknown"] = not active and any(
        r.get("resourceType") in ("MedicationStatement", "MedicationRequest") and r.get("status") == "unknown" and
        med_code(r) & (ORAL_BP | {RALOX, ROMO, ZOL, DMAB} | ANABOLIC) and visible_date(r) is not None and
        visible_date(r) <= as_of for r in entries)
    values["dmab_due"] = dmab_due
    values["zol_planned"] = zol_planned
    values["disc"] = disc
    return {"findings": findings, "values": values, "items": sorted(items), "age": age,
            "unknown_present": gc["unknown_present"]}
