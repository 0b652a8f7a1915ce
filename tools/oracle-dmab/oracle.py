#!/usr/bin/env python3
"""Independent reading of knowledge.md v0.10.3 sections 1, 5, 6, 7.2/7.4 (fracture onsets), 8 and the
section-9 codes of the oradm scope, for the bundle shapes gen.py writes.  Standard library only.

oracle(bundle, as_of) -> {"findings": {code: severity}, "di_items": set(int), "values": {...}}
"""
import datetime as dt
import json
import os
import re

DMAB = "993449"
ZOL = "77655"
BISPHOS = {"77655", "46041", "73056", "115264"}
ORAL_BP = {"46041", "73056", "115264"}

# section 5.1 / 9
DUE, DUE_SOON, GRACE, LONG = 182, 154, 210, 294
CTX_DEFAULT = 280.0
LSC = {"spine": 5.3, "hip": 5.0, "neck": 6.9}
SEV_RANK = {"info": 0, "moderate": 1, "high": 2, "critical": 3}


def pdate(s):
    if not s:
        return None
    try:
        return dt.date.fromisoformat(s[:10])
    except ValueError:
        return None


def rx(r):
    for c in (r.get("medicationCodeableConcept") or {}).get("coding", []):
        if c.get("system", "").endswith("rxnorm"):
            return c.get("code")
    return None


def loinc(r):
    for c in (r.get("code") or {}).get("coding", []):
        if c.get("system") == "http://loinc.org":
            return c.get("code")
    return None


def vis_date(r):
    t = r["resourceType"]
    if t == "Condition":
        return pdate(r.get("recordedDate")) or onset_start(r)
    if t == "Observation":
        return pdate(r.get("issued")) or pdate(r.get("effectiveDateTime"))
    if t == "Procedure":
        return pdate(r.get("performedDateTime")) or pdate((r.get("performedPeriod") or {}).get("end"))
    if t == "MedicationAdministration":
        return pdate(r.get("effectiveDateTime")) or pdate((r.get("effectivePeriod") or {}).get("start"))
    if t == "MedicationRequest":
        return pdate(r.get("authoredOn"))
    if t == "MedicationStatement":
        return pdate(r.get("dateAsserted")) or pdate(r.get("effectiveDateTime")) or pdate(
            (r.get("effectivePeriod") or {}).get("start"))
    if t == "MedicationDispense":
        # not in 1.2; the day the dose left the pharmacy (else the day it was prepared)
        return disp_date(r)
    if t == "DiagnosticReport":
        # 1.2: "DiagnosticReport `issued` (else effective)"
        return pdate(r.get("issued")) or report_date(r)
    if t == "ImagingStudy":
        return pdate(r.get("started"))
    return None


def report_date(r):
    """The day a DiagnosticReport's imaging was done: effective[x] (7.2); of a period its end, as for a
    Procedure's performedPeriod (1.2), else its start."""
    p = r.get("effectivePeriod") or {}
    return pdate(r.get("effectiveDateTime")) or pdate(p.get("end")) or pdate(p.get("start"))


def disp_date(r):
    return pdate(r.get("whenHandedOver")) or pdate(r.get("whenPrepared"))


def onset_start(r):
    return pdate(r.get("onsetDateTime")) or pdate((r.get("onsetPeriod") or {}).get("start"))


def onset_end(r):
    return pdate(r.get("onsetDateTime")) or pdate((r.get("onsetPeriod") or {}).get("end")) or onset_start(r)


def quantity(r):
    q = r.get("valueQuantity")
    if not q or "value" not in q:
        return None, None
    return float(q["value"]), (q.get("code") or q.get("unit") or "")


def conv(kind, v, u):
    """section 1.3; None when unit unknown"""
    u = u.replace("µ", "u")
    table = {
        "ctx": {"ng/L": 1, "pg/mL": 1, "ng/mL": 1000, "ug/L": 1000},
        "creat": {"mg/dL": 1, "umol/L": 1 / 88.4},
        "ca": {"mg/dL": 1, "mmol/L": 4.008},
        "alb": {"g/dL": 1, "g/L": 0.1},
        "vitd": {"ng/mL": 1, "nmol/L": 1 / 2.496},
        "egfr": {"mL/min/{1.73_m2}": 1, "mL/min/1.73m2": 1},
        "weight": {"kg": 1, "g": 0.001},
        "bmd": {"g/cm2": 1, "mg/cm2": 0.001},
        "t": {"{T-score}": 1, "": 1, "1": 1},
    }[kind]
    if u not in table:
        return None
    return v * table[u]


def age_at(birth, as_of):
    a = as_of.year - birth.year
    if (as_of.month, as_of.day) < (birth.month, birth.day):
        a -= 1
    return a


def is_vertebral_fx(r):
    for c in (r.get("code") or {}).get("coding", []):
        code = c.get("code", "")
        if code.startswith(("M80.08", "M48.5", "S22.0", "S32.0")):
            return True
    return False


def subsequent(r):
    """10.3: 7th character D/G/K/S (and P) = subsequent encounter / sequela: not a new fracture event."""
    for c in (r.get("code") or {}).get("coding", []):
        code = c.get("code", "").replace(".", "")
        if code.startswith(("M8008", "M485", "S220", "S320")) and len(code) == 7 and code[6] in "DGKSP":
            return True
    return False


def level_of(r):
    for c in (r.get("code") or {}).get("coding", []):
        m = re.match(r"S32\.0([1-5])", c.get("code", ""))
        if m:
            return "L" + m.group(1)
    for bs in r.get("bodySite") or []:
        m = re.fullmatch(r"\s*([TL])\s*(\d{1,2})(\s+vertebra)?\s*", (bs.get("text") or ""), re.I)
        if m:
            return m.group(1).upper() + m.group(2)
    return None


# Class R1 (session 10: spine imaging as ImagingStudy / DiagnosticReport not read by the engine) is
# fixed (session 11); OG_STRICT, which switched the oracle's reading of them on, is gone: it always reads
# them (7.2).
# Class D1 (ambiguity, engine's reading kept): 5.1 and 4.3 ("Only documented doses
# (MedicationAdministration, or a MedicationStatement/MedicationRequest dated as given)") do not list
# MedicationDispense; OG_DISPENSE=1 reads a completed dispense as a dose tier between MA and MS.
DISPENSE_IS_DOSE = os.environ.get("OG_DISPENSE", "0") == "1"
SPINE_IMAGING = {"72141", "72146", "72148", "72131"}
# 7.5-5 names the concepts, not codes; ICD-10-CM prefixes read as: vertebral osteomyelitis / discitis /
# spinal infection, coagulation defects, cord compression, malignant neoplasm of bone / secondary
EXCLUSION_PREFIXES = ("M46.2", "M46.3", "M46.4", "M46.5", "D65", "D66", "D67", "D68", "G95.2", "C41", "C79.5")
AUG_CPT = {str(c) for c in list(range(22510, 22516)) + list(range(22520, 22526))}
ORDER = ["T%d" % i for i in range(1, 13)] + ["L%d" % i for i in range(1, 6)]


def adjacent(a, b):
    return a in ORDER and b in ORDER and abs(ORDER.index(a) - ORDER.index(b)) == 1


def obs_level(r):
    bs = r.get("bodySite") or {}
    m = re.fullmatch(r"\s*([TL])\s*(\d{1,2})\s*", bs.get("text") or "", re.I)
    return m.group(1).upper() + m.group(2) if m else None


def obs_lsc(r):
    for c in r.get("component") or []:
        if any(x.get("code") == "lsc" for x in (c.get("code") or {}).get("coding", [])):
            q = c.get("valueQuantity") or {}
            u = q.get("code") or q.get("unit")
            if "value" in q and u in ("%", "g/cm2"):
                return (float(q["value"]), u)
            if "value" in q and u == "mg/cm2":
                return (float(q["value"]) / 1000, "g/cm2")
    return None


PREVALENT = dt.date(1900, 1, 1)  # onset of a prevalent fracture of unknown age (7.4 step 2)


def genant_readings(visible):
    out = {}
    for r in visible:
        if r["resourceType"] == "Observation" and any(
                c.get("code") == "genant-grade" for c in (r.get("code") or {}).get("coding", [])):
            lv = obs_level(r)
            if lv and isinstance(r.get("valueInteger"), int) and r.get("status") in ("final", "amended", "corrected", "preliminary"):
                out.setdefault(lv, []).append((pdate(r["effectiveDateTime"]), r["valueInteger"], r["effectiveDateTime"]))
    for v in out.values():
        v.sort()
    return out


def genant_events(visible, fx):
    """7.4 step 2 (v0.10.2): a grade >= 1 at a level without a fracture Condition is a fracture event;
    after an earlier grade 0 it is new (onset period), else prevalent (unknown age)."""
    have = {f[0] for f in fx if f[0]}
    ev = []
    for lv, reads in genant_readings(visible).items():
        if lv in have:
            continue
        pos = [d for d, g, _ in reads if g >= 1]
        if not pos:
            continue
        first = pos[0]
        zeros = [d for d, g, _ in reads if g == 0 and d < first]
        if zeros:
            ev.append((lv, max(zeros) + dt.timedelta(days=1), first))
        else:
            ev.append((lv, PREVALENT, PREVALENT))
    return ev


def ovcf(visible, as_of, fx, findings):
    """7.1-7.7 and the section-9 OVCF codes for the shapes gen.py writes (no Genant, no imaging
    procedures, no exclusions)."""
    augs = []  # (level, date)
    for r in visible:
        if r["resourceType"] == "Procedure" and r.get("status") == "completed":
            if any(c.get("code") in AUG_CPT for c in (r.get("code") or {}).get("coding", [])):
                d = pdate(r.get("performedDateTime"))
                for bs in r.get("bodySite") or []:
                    lv = bs.get("text")
                    if lv:
                        augs.append((lv.upper(), d))
    edema = {}  # level -> list of (date, bool)
    edema_ts = {}  # level -> list of (effectiveDateTime text, bool)
    for r in visible:
        if r["resourceType"] == "Observation" and any(
                c.get("code") == "vertebral-edema" for c in (r.get("code") or {}).get("coding", [])):
            lv = obs_level(r)
            if lv and "valueBoolean" in r:
                edema.setdefault(lv, []).append((pdate(r["effectiveDateTime"]), r["valueBoolean"]))
                edema_ts.setdefault(lv, []).append((r["effectiveDateTime"], r["valueBoolean"]))
    pains = []
    for r in visible:
        if r["resourceType"] == "Observation" and loinc(r) in ("72514-3", "38208-5"):
            v = (r.get("valueQuantity") or {}).get("value", r.get("valueInteger"))
            if v is not None:
                pains.append((r["effectiveDateTime"], float(v)))
    pains.sort()
    latest_pain = None
    if pains and (as_of - pdate(pains[-1][0])).days <= 7:
        latest_pain = pains[-1][1]

    # spine imaging (7.2 "DiagnosticReport / ImagingStudy / Observation for MRI, CT, X-ray spine"): MRI / CT
    # (10.3: CPT 72141/72146/72148, 72131) as Procedure (`code`), ImagingStudy (`procedureCode`) or
    # DiagnosticReport (`code`). Done = Procedure `completed` (1.6); ImagingStudy `available`; a report
    # `final` / `amended` / `corrected` / `appended` (class R2: 1.6 lists no DiagnosticReport status; a
    # preliminary or partial report is not yet imaging done). Dated by performedDateTime / `started` /
    # effective[x] (report_date); an undated one is imaging on no day. A report is in the record from
    # `issued` (vis_date), so one issued after as-of is not in `visible`.
    imaging = []
    for r in visible:
        t = r["resourceType"]
        codes = set()
        if t in ("Procedure", "DiagnosticReport"):
            codes = {c.get("code") for c in (r.get("code") or {}).get("coding", [])}
        elif t == "ImagingStudy":
            codes = {c.get("code") for pc in r.get("procedureCode") or [] for c in pc.get("coding", [])}
        if not codes & SPINE_IMAGING:
            continue
        ok = (t == "Procedure" and r.get("status") == "completed") or (
            t == "ImagingStudy" and r.get("status") == "available") or (
            t == "DiagnosticReport" and r.get("status") in ("final", "amended", "corrected", "appended"))
        if ok:
            d = pdate(r.get("performedDateTime")) if t == "Procedure" else pdate(r.get("started")) if \
                t == "ImagingStudy" else report_date(r)
            if d:
                imaging.append(d)
    # 7.5-5: a documented exclusion (spinal infection, coagulopathy, neurological deficit /
    # retropulsion, suspected malignancy) stops the candidacy
    excluded = False
    for r in visible:
        if r["resourceType"] == "Condition":
            vs = [c.get("code") for c in (r.get("verificationStatus") or {}).get("coding", [])]
            if "refuted" in vs or "entered-in-error" in vs:
                continue
            if any(c.get("code", "").startswith(EXCLUSION_PREFIXES) for c in (r.get("code") or {}).get("coding", [])):
                excluded = True

    genant = genant_readings(visible)
    aug_level = {}
    for lv, d in augs:
        aug_level[lv] = min(d, aug_level.get(lv, d))
    states = {}
    for lv in ORDER:
        if lv in aug_level:
            states[lv] = ("augmented", None)
            continue
        lfx_all = [f for f in fx if f[0] == lv]
        # the dated records decide the onsets; an undated one may only make the level less healed
        lfx = [f for f in lfx_all if f[2] is not None] or lfx_all
        ed = sorted(edema.get(lv, []))
        st = None
        gr = genant.get(lv)
        # "no oedema reported after that reading": by time of day (both written in UTC here)
        if gr and gr[-1][1] == 0 and not lfx and not any(ts > gr[-1][2] and v for ts, v in edema_ts.get(lv, [])):
            states[lv] = ("intact", None)
            continue
        if ed and ed[-1][1] and (as_of - ed[-1][0]).days <= 90:
            st = "acute" if (as_of - ed[-1][0]).days <= 42 else "subacute"
        elif ed and ed[-1][1] and not lfx:
            st = "chronic"  # class C5: oedema > 90 days ago documents an old fracture
        elif lfx and lfx[0][2] is None:
            # 7.4 step 5: onset unknown and no MRI -> SUBACUTE, age indeterminate; an MRI without
            # oedema (step 3) -> CHRONIC
            st = "chronic" if ed else "subacute"
        elif lfx:
            onset_e = max(f[2] for f in lfx)
            # several records at one level: the most recent onset decides (conservative, class C2)
            onset_s = max(f[1] for f in lfx)
            # "MRI after onset": after the onset used for acuity (period end), class C4
            if any((not v) and d >= onset_e for d, v in ed):
                st = "chronic"
            else:
                age = (as_of - onset_e).days
                st = "acute" if age <= 42 else "subacute" if age <= 90 else "chronic"
            # class U1: a record of unknown onset beside dated ones may be another fracture; with no
            # MRI it is SUBACUTE (7.4 step 5) and the most unhealed state of the level wins
            if st == "chronic" and not ed and any(f[2] is None for f in lfx_all):
                st = "subacute"
        if st:
            states[lv] = (st, lfx)
    unhealed = [lv for lv, (st, _) in states.items() if st in ("acute", "subacute")]
    # a level-less fracture of unknown onset is not assumed old (7.4 step 5, conservative)
    recent_nolevel = [f for f in fx if f[0] is None and (f[2] is None or 0 <= (as_of - f[2]).days <= 90)]
    if unhealed or recent_nolevel:
        findings["acute-ovcf"] = "high"

    def confirmed(lv):
        lfx = states[lv][1] or []
        # class C2: the level's fracture is the record with the latest onset for acuity (period
        # end); "onset start" is that record's start
        cur = max(lfx, key=lambda f: (f[2], f[1])) if lfx else None
        if cur is not None and cur[1] is None:
            cur = None  # onset unknown: any MRI oedema within 90 days confirms
        for d, v in edema.get(lv, []):
            if v and 0 <= (as_of - d).days <= 90 and (cur is None or d >= cur[1] - dt.timedelta(days=7)):
                return True
        return False

    cand = False
    img = None
    for lv in unhealed:
        lfx = states[lv][1] or []
        if confirmed(lv):
            # class C7: criterion 4 needs a known onset (a prevalent fracture of unknown age has none)
            if lfx and latest_pain is not None and latest_pain >= 7 and lfx[0][2] is not None and \
                    max(f[2] for f in lfx) != PREVALENT and (as_of - max(f[2] for f in lfx)).days >= 28 \
                    and not excluded:
                cand = True
        elif latest_pain is not None and latest_pain >= 5:
            img = "high" if latest_pain >= 7 else "moderate"
    # class C1: a fracture without a level has no per-level state (7.2) and is not a level of
    # clause (a); the spec lists where it counts and imaging is not among them.
    if cand:
        findings["ovcf-refractory-pain-augmentation-candidate"] = "high"
    # (b): a pain rise >= 3 to >= 5 within 365 d after an augmentation, no spine imaging dated on/after it
    for _, t_aug in augs:
        after = [(ts, v) for ts, v in pains if t_aug < pdate(ts) <= t_aug + dt.timedelta(days=365)]
        for i, (ts, v) in enumerate(after):
            lows = [w for _, w in after[:i]]
            # a vertebral-edema finding is an MRI reading: spine imaging (class C6)
            imaged = any(d >= pdate(ts) for eds in edema.values() for d, _ in eds) or any(
                d >= pdate(ts) for d in imaging)
            if v >= 5 and lows and v - min(lows) >= 3 and not imaged:
                img = img or "moderate"
    if img:
        findings["ovcf-imaging-recommended"] = img

    # 7.6
    new = []
    for f in fx:
        lv, os_, _ = f
        if os_ is None:
            continue  # onset unknown: not known to be after the augmentation
        for alv, t_aug in augs:
            if alv == lv:
                continue
            if lv in aug_level and aug_level[lv] < os_:
                continue
            if 0 < (os_ - t_aug).days <= 365:
                new.append((f, alv, t_aug))
    if new:
        # class C3: the engine counts fracture records (two records at one level = two); kept
        nf = {id(f) for f, _, _ in new}
        if len(nf) >= 2:
            sev = "critical"
        elif any(adjacent(f[0], alv) or (f[1] - t).days <= 90 for f, alv, t in new):
            sev = "high"
        else:
            sev = "moderate"
        findings["new-fracture-after-augmentation"] = sev
    return [lv for lv, (st, _) in states.items() if st != "intact"]


def merge_drafts(res, drafts, as_of):
    """9 "Order hooks": the drafts as if signed -- draft -> active, other statuses kept, a missing
    authoredOn is as_of; a draft with the id of a record resource replaces it."""
    signed = []
    for d in drafts:
        r = json.loads(json.dumps(d))
        if r.get("status") == "draft":
            r["status"] = "active"
        r.setdefault("authoredOn", as_of.isoformat())
        r["_draft"] = True
        signed.append(r)
    ids = {r.get("id") for r in signed if r.get("id")}
    return [r for r in res if r.get("id") not in ids or r["resourceType"] != "MedicationRequest"] + signed


def oracle(bundle, as_of, drafts=None, lsc_cfg=None):
    res = [e["resource"] for e in bundle.get("entry", [])]
    if drafts is not None:
        res = merge_drafts(res, drafts, as_of)
    patient = next(r for r in res if r["resourceType"] == "Patient")
    sex = patient.get("gender")
    birth = pdate(patient.get("birthDate"))
    age = age_at(birth, as_of) if birth else None
    findings = {}
    di = set()
    values = {}

    visible = []
    undated_dmab = False
    for r in res:
        if r["resourceType"] == "Patient":
            continue
        vd = vis_date(r)
        if vd is None:
            if r["resourceType"].startswith("Medication") and rx(r) == DMAB and r.get("status") in (
                    "completed", "active", "stopped", "intended") and (
                    r["resourceType"] != "MedicationDispense" or DISPENSE_IS_DOSE):
                undated_dmab = True
            if r["resourceType"] == "Condition":
                visible.append(r)  # nothing dates it after as_of: visible, onset unknown (7.4 step 5)
            continue
        if r["resourceType"] == "MedicationRequest" and r.get("intent") not in (
                "order", "plan", "original-order", "filler-order", "instance-order"):
            continue  # 1.6 intent filter
        if vd <= as_of:
            visible.append(r)

    # ---------------- denosumab doses (5.1 tiers) ----------------
    tiers = {1: [], 2: [], 3: [], 15: []}
    dmab_reqs = []
    stopped_ms = []
    undated_ms = False
    for r in visible:
        t = r["resourceType"]
        if rx(r) != DMAB:
            continue
        if t == "MedicationAdministration" and r.get("status") == "completed":
            dose = ((r.get("dosage") or {}).get("dose") or {}).get("value")
            if dose == 120 or "xgeva" in (r.get("medicationCodeableConcept") or {}).get("text", "").lower():
                continue  # oncology denosumab, outside the schedule (5.1)
            tiers[1].append(pdate(r.get("effectiveDateTime")))
        elif t == "MedicationDispense" and r.get("status") == "completed" and DISPENSE_IS_DOSE:
            # not in 5.1's list: read as a documented dose below the administration and above the
            # statement (a pharmacy event is more than a statement, less than an administration)
            tiers[15].append(disp_date(r))
        elif t == "MedicationStatement":
            if r.get("status") == "stopped":
                ep = r.get("effectivePeriod") or {}
                stopped_ms.append(pdate(ep.get("end")) or pdate(r.get("dateAsserted")))
            if r.get("status") in ("active", "completed", "intended", "stopped"):
                ep = r.get("effectivePeriod") or {}
                if r.get("effectiveDateTime"):
                    tiers[2].append(pdate(r["effectiveDateTime"]))
                elif ep.get("start") and ep.get("start") == ep.get("end"):
                    tiers[2].append(pdate(ep["start"]))  # a one-day period is a date
                else:
                    undated_ms = True
        elif t == "MedicationRequest":
            if r.get("status") not in ("entered-in-error", "cancelled"):
                dmab_reqs.append(r)  # 1.6: an erroneous or cancelled order is no "newer order"
            if r.get("_draft"):
                continue  # a draft order is a plan, never a dose (4.3: an order is not a given dose)
            if r.get("status") in ("active", "completed", "on-hold", "stopped") and r.get("intent") in (
                    "order", "plan", "original-order", "filler-order", "instance-order"):
                tiers[3].append(pdate(r["authoredOn"]))
    doses = []
    for k in (1, 15, 2, 3):
        if tiers[k]:
            doses = sorted(set(tiers[k]))
            break
    # item (8): an undated record of the chosen tier or a higher one (an undated statement does not
    # matter when administrations are dated; ambiguity class A2).
    if undated_dmab or (undated_ms and not tiers[1] and not tiers[15]):
        di.add(8)
    # Distinct administrations are >= 60 days apart (5.1).  Ambiguity (docs/differential-dmab.md,
    # class A1): a record < 60 days after a kept dose is the same administration documented twice,
    # and the EARLIER date is kept (conservative: the next dose falls due sooner).
    distinct = []
    for d in doses:
        if not distinct or (d - distinct[-1]).days >= 60:
            distinct.append(d)
    count = len(distinct)
    d_last = distinct[-1] if distinct else None
    values["dmab_last"] = d_last.isoformat() if d_last else None
    values["dmab_count"] = count if doses else 0

    # transition (5.2)
    zol_after = []
    transition = False
    zol_admins = []
    for r in visible:
        code = rx(r)
        t = r["resourceType"]
        if code == ZOL and t == "MedicationAdministration" and r.get("status") == "completed":
            zol_admins.append(pdate(r["effectiveDateTime"]))
        if code == ZOL and t == "MedicationStatement" and r.get("status") in ("active", "completed", "stopped") \
                and r.get("effectiveDateTime"):
            zol_admins.append(pdate(r["effectiveDateTime"]))  # 4.3: a statement dated as given
        if not d_last or code not in BISPHOS:
            continue
        if (t == "MedicationAdministration" and r.get("status") == "completed") or (
                t == "MedicationStatement" and code == ZOL and r.get("status") in ("active", "completed", "stopped")
                and r.get("effectiveDateTime")):
            d = pdate(r["effectiveDateTime"])
            if d > d_last:
                transition = True
                if code == ZOL:
                    zol_after.append(d)
        elif t == "MedicationDispense" and r.get("status") == "completed":
            d = disp_date(r)  # a bisphosphonate handed over after D_last: started (5.2)
            if d and d_last < d <= as_of:
                transition = True
        elif t == "MedicationStatement" and r.get("status") in ("active", "completed"):
            d = pdate((r.get("effectivePeriod") or {}).get("start")) or pdate(r.get("effectiveDateTime"))
            if d and d_last < d <= as_of:
                transition = True
        elif t == "MedicationRequest" and code in ORAL_BP and r.get("status") in (
                "active", "completed", "on-hold", "stopped"):
            # an oral bisphosphonate prescription is "started" (5.2) from its bounds start
            bp = [pdate(((di.get("timing") or {}).get("repeat") or {}).get("boundsPeriod", {}).get("start"))
                  for di in r.get("dosageInstruction") or []]
            bp = [x for x in bp if x]
            d = min(bp) if bp else pdate(r.get("authoredOn"))
            if d and d_last < d <= as_of:
                transition = True
    Z = max(zol_after) if zol_after else None

    gap = (as_of - d_last).days if d_last else None
    # (b) a stopped statement counts unless a dose was documented after the stop (a restart; class A7)
    dmab_ms_stopped = any(d and d_last and d >= d_last for d in stopped_ms)

    # ---------------- fractures ----------------
    fx = []  # (level, onset_start, onset_end); onsets None = unknown (7.4 step 5)
    followups = []  # levels (or None) of fractures known only from subsequent-encounter codes
    for r in visible:
        if r["resourceType"] != "Condition" or not is_vertebral_fx(r):
            continue
        vs = [c.get("code") for c in (r.get("verificationStatus") or {}).get("coding", [])]
        if "refuted" in vs or "entered-in-error" in vs:
            continue
        if subsequent(r):
            # a fracture known from a follow-up code: it exists (a prior / prevalent vertebral
            # fracture), but it is not a new fracture event (10.3)
            followups.append((level_of(r), onset_start(r) or pdate(r.get("recordedDate"))))
            continue
        os_ = onset_start(r) or pdate(r.get("recordedDate"))
        oe = onset_end(r) or pdate(r.get("recordedDate"))
        fx.append((level_of(r), os_, oe))
    fx.extend(genant_events(visible, fx))

    fracture_levels = ovcf(visible, as_of, fx, findings)

    # ---------------- DXA (6.2) ----------------
    side_codes = {"46278-8": ("L", "bmd"), "80946-7": ("L", "t"), "46279-6": ("R", "bmd"), "80945-9": ("R", "t")}
    sides = {}  # date -> side -> {"bmd","t","dev"}
    for r in visible:
        if r["resourceType"] == "Observation" and loinc(r) in side_codes and r.get("status") in (
                "final", "amended", "corrected", "preliminary"):
            side, kind = side_codes[loinc(r)]
            v, u = quantity(r)
            v = conv(kind, v, u) if v is not None else None
            if v is None:
                continue
            e = sides.setdefault(pdate(r["effectiveDateTime"]), {}).setdefault(side, {"bmd": None, "t": None, "dev": set()})
            e[kind] = v
            if kind == "bmd" and obs_lsc(r):
                e["lsc"] = obs_lsc(r)
            dev = (r.get("device") or {}).get("display")
            if dev:
                e["dev"].add(dev.strip().lower())
    site_codes = {"24966-4": ("spine", "bmd"), "38267-1": ("spine", "t"),
                  "38261-4": ("hip", "bmd"), "38264-8": ("hip", "t"),
                  "24701-5": ("neck", "bmd"), "38263-0": ("neck", "t")}
    dxa = {}  # site -> date -> {"bmd":, "t":, "dev": set}
    for r in visible:
        if r["resourceType"] != "Observation" or r.get("status") not in ("final", "amended", "corrected",
                                                                         "preliminary"):
            continue
        c = loinc(r)
        if c not in site_codes:
            continue
        site, kind = site_codes[c]
        v, u = quantity(r)
        if v is None:
            continue
        v = conv(kind, v, u)
        if v is None:
            continue
        d = pdate(r.get("effectiveDateTime"))
        e = dxa.setdefault(site, {}).setdefault(d, {"bmd": None, "t": None, "dev": set()})
        e[kind] = v
        if kind == "bmd" and obs_lsc(r):
            e["lsc"] = obs_lsc(r)
        dev = (r.get("device") or {}).get("display")
        if dev:
            # Ambiguity (docs/differential-dmab.md, class B1): a display names a device, not its
            # manufacturer; without a Device resource the whole display is compared (case-insensitive).
            e["dev"].add(dev.strip().lower())

    aug_dates = []
    for r in visible:
        if r["resourceType"] == "Procedure" and r.get("status") == "completed" and any(
                c.get("code") in AUG_CPT for c in (r.get("code") or {}).get("coding", [])):
            for bs in r.get("bodySite") or []:
                aug_dates.append(((bs.get("text") or "").upper(), pdate(r.get("performedDateTime"))))

    # sided hip readings: one "hip" entry per date with its sides (6.3 like with like)
    for d, bys in sides.items():
        e = dxa.setdefault("hip", {}).setdefault(d, {"bmd": None, "t": None, "dev": set()})
        e["sides"] = bys
        for se in bys.values():
            e["dev"] |= se["dev"]

    def hip_pair(a, b):
        sa, sb = a.get("sides"), b.get("sides")
        if not sa and not sb:
            return a, b
        if not sa or not sb:
            return None  # uncoded vs sided: not generated
        common = [x for x in ("L", "R") if x in sa and x in sb]
        if not common:
            return None  # left-only vs right-only
        if len(common) == 2:
            def mean(e):
                bm = [e[x]["bmd"] for x in common]
                ts = [e[x]["t"] for x in common]
                ls = [e[x].get("lsc") for x in common if e[x].get("lsc")]
                return {"lsc": ls[0] if ls else None,
                        "bmd": sum(bm) / 2 if None not in bm else None,
                        "t": sum(ts) / 2 if None not in ts else None,
                        "tmin": min(ts) if None not in ts else None, "dev": set()}
            return mean(sa), mean(sb)
        x = common[0]
        return dict(sa[x], tmin=sa[x]["t"]), dict(sb[x], tmin=sb[x]["t"])

    def spine_confounded(later):
        if any(lv in ("L1", "L2", "L3", "L4") and d <= later for lv, d in aug_dates):
            return True
        # a follow-up-coded fracture (10.3) is a fracture the patient has: it confounds like a
        # fractured level from its date (onset start, else recordedDate, as 6.2 reads a level-less
        # fracture); undated = age unknown = present at every date (7.4 step 2)
        if any((lv is None or lv in ("L1", "L2", "L3", "L4")) and (d is None or d <= later) for lv, d in followups):
            return True
        for (lvl, os_, oe) in fx:
            if os_ is not None and os_ > later:
                continue
            if lvl is None or lvl in ("L1", "L2", "L3", "L4"):
                return True
        return False

    def lsc_of(site, a, b):
        """6.2: the facility's LSC (Observation component `lsc` of this site's BMD result, % or
        g/cm2) -- the later scan's (class L2: an LSC given only with the earlier scan is not used,
        the engine's reading); else the configured default."""
        if b.get("lsc"):
            return b["lsc"]
        return ((lsc_cfg or {}).get(site, LSC[site]), "%")

    def compare(site, old, new, a, b):
        """returns None if not comparable, else (significant, high, delta_text)"""
        if a["dev"] and b["dev"] and a["dev"] != b["dev"]:
            return None
        if site == "hip":
            p = hip_pair(a, b)
            if p is None:
                return None
            a, b = p
        if site == "spine" and spine_confounded(new):
            return None
        if a["bmd"] is not None and b["bmd"] is not None:
            pct = (b["bmd"] - a["bmd"]) / a["bmd"] * 100
            lv, lu = lsc_of(site, a, b)
            loss = -pct if lu == "%" else a["bmd"] - b["bmd"]
            sig = loss >= lv - 1e-9
            tl = b.get("tmin", b["t"])
            hi = loss >= 2 * lv - 1e-9 or (tl is not None and tl <= -2.5)
            return (sig, hi)
        if a["t"] is not None and b["t"] is not None:
            dlt = a["t"] - b["t"]
            sig = dlt >= 0.5 - 1e-9
            hi = dlt >= 1.0 - 1e-9 or b.get("tmin", b["t"]) <= -2.5
            return (sig, hi)
        return None

    def sig_loss(limit_old=None, limit_new_after=None):
        """bmd-significant-loss at any site (latest scan vs latest earlier scan >= 180 d before)."""
        best = None
        any_valid = False
        for site, bydate in dxa.items():
            dates = sorted(bydate)
            if limit_new_after is not None:
                news = [d for d in dates if d > limit_new_after]
            else:
                news = dates
            if not news:
                continue
            new = news[-1]
            olds = [d for d in dates if (new - d).days >= 180]
            if limit_old is not None:
                olds = [d for d in olds if d <= limit_old]
            # Ambiguity (class B2): "the latest two DXA ... (6.2 comparability rules)" read as the
            # latest COMPARABLE earlier scan (an older scan is tried when the newest is not comparable;
            # item 6 says "cannot be validly compared with ANY earlier DXA").
            r = None
            for old in reversed(olds):
                r = compare(site, old, new, bydate[old], bydate[new])
                if r is not None:
                    break
            if r is None:
                continue
            any_valid = True
            sig, hi = r
            if sig:
                sev = "high" if hi else "moderate"
                if best is None or SEV_RANK[sev] > SEV_RANK[best]:
                    best = sev
        return best, any_valid

    loss, _ = sig_loss()
    if loss:
        findings["bmd-significant-loss"] = loss
    # item 6: the most recent DXA cannot be compared validly with any earlier one >= 180 d before
    # a forearm T-score (38265-5) is a DXA too (6.3: diagnosis only); a latest scan with only the
    # forearm has nothing to compare (class F1)
    forearm = {pdate(r.get("effectiveDateTime")) for r in visible if r["resourceType"] == "Observation"
               and loinc(r) in ("38265-5", "38250-5", "24890-6") and r.get("status") in (
                   "final", "amended", "corrected", "preliminary") and quantity(r)[0] is not None}
    all_dates = sorted({d for s in dxa.values() for d in s} | forearm)
    if len(all_dates) >= 2:
        latest = all_dates[-1]
        earlier = [d for d in all_dates if (latest - d).days >= 180]
        if earlier:
            ok = False
            for site, bydate in dxa.items():
                if latest not in bydate:
                    continue
                for d in earlier:
                    if d in bydate and compare(site, d, latest, bydate[d], bydate[latest]) is not None:
                        ok = True
            if not ok:
                di.add(6)

    # ---------------- CTX ----------------
    ctx = []  # (date, value, limit)
    for r in visible:
        if r["resourceType"] == "Observation" and loinc(r) == "41171-0":
            v, u = quantity(r)
            if v is None:
                continue
            v = conv("ctx", v, u)
            if v is None:
                continue
            lim = CTX_DEFAULT
            for rr in r.get("referenceRange") or []:
                h = rr.get("high")
                if h and "value" in h:
                    hv = conv("ctx", float(h["value"]), h.get("code") or h.get("unit") or "")
                    if hv is not None:
                        lim = min(lim, hv)
            ctx.append((pdate(r["effectiveDateTime"]), v, lim))

    # ---------------- denosumab schedule findings ----------------
    disc = False
    if d_last and count >= 1 and not transition:
        if DUE_SOON <= gap <= GRACE:
            findings["denosumab-due-soon"] = "info" if gap <= DUE else "moderate"
        elif gap > GRACE:
            findings["denosumab-overdue"] = "high" if gap <= LONG else "critical"
        stopped = False
        if dmab_reqs:
            latest_req = max(dmab_reqs, key=lambda r: r["authoredOn"])
            if latest_req.get("status") in ("stopped", "completed"):
                stopped = True
        if dmab_ms_stopped:
            stopped = True
        # (c) order hooks: a draft (as sent) sets denosumab to stopped/completed/cancelled and no
        # bisphosphonate is ordered with it (a draft zoledronate/alendronate/risedronate/ibandronate
        # order that is a live order: draft or active) -- whatever the day
        clause_c = bool(drafts) and any(
            rx(d) == DMAB and d.get("status") in ("stopped", "completed", "cancelled") for d in drafts) and not any(
            rx(d) in BISPHOS and d.get("status") in ("draft", "active") for d in drafts)
        if gap > GRACE or (stopped and gap >= DUE) or clause_c:
            disc = True
            # an augmentation implies a fracture (3.1); a level in a fracture state (oedema, 7.1) too
            prevalent = len(fx) > 0 or bool(aug_dates) or bool(fracture_levels) or bool(followups)
            findings["denosumab-discontinuation-without-transition"] = (
                "critical" if (count >= 4 or prevalent or gap > LONG) else "high")

    ctx_high = False
    if Z and d_last and 0 <= (as_of - Z).days <= 365:
        sev = "info"
        if any(cd > Z + dt.timedelta(days=60) and v > lim for (cd, v, lim) in ctx):
            sev = "high"
            ctx_high = True
        else:
            for k in (77, 168):
                if (as_of - Z).days >= k and not any(cd >= Z + dt.timedelta(days=k) for (cd, _, _) in ctx):
                    sev = "moderate"
        findings["post-denosumab-ctx-monitoring"] = sev

    # rebound (5.5)
    rebound = False
    if d_last and count >= 2:
        lo, hi = d_last + dt.timedelta(days=183), d_last + dt.timedelta(days=730)
        levels = set()
        nolevel = 0
        for (lvl, os_, _) in fx:
            if os_ and lo <= os_ <= hi:
                if lvl:
                    levels.add(lvl)
                else:
                    nolevel += 1
        F = len(levels) + nolevel
        if F >= 2:
            findings["rebound-vertebral-fractures-suspected"] = "critical"
            rebound = True
        elif F == 1:
            # any on-treatment / off-treatment pair (>= 180 d apart, comparable) with a loss >= LSC
            cut = d_last + dt.timedelta(days=30)
            lossr, valid = False, False
            for site, bydate in dxa.items():
                for new in [d for d in bydate if d > cut]:
                    for old in [d for d in bydate if d <= cut and (new - d).days >= 180]:
                        rr = compare(site, old, new, bydate[old], bydate[new])
                        if rr is not None:
                            valid = True
                            lossr = lossr or rr[0]
            ctx_after = [(cd, v, lim) for (cd, v, lim) in ctx if cd > d_last + dt.timedelta(days=182)]
            if lossr or any(v > lim for (_, v, lim) in ctx_after):
                findings["rebound-vertebral-fractures-suspected"] = "high"
                rebound = True
            elif not valid and not ctx_after:
                di.add(7)

    # ---------------- safety (section 8) ----------------
    def latest_lab(code, kind, window):
        best = None
        for r in visible:
            if r["resourceType"] == "Observation" and loinc(r) in code and r.get("status") in (
                    "final", "amended", "corrected", "preliminary"):
                d = pdate(r["effectiveDateTime"])
                if not (0 <= (as_of - d).days <= window):
                    continue
                v, u = quantity(r)
                if v is None:
                    continue
                v2 = conv(kind, v, u)
                if v2 is None:
                    continue
                if best is None or d > best[0]:
                    best = (d, v2, r)
        return best

    def crcl(window):
        cr = latest_lab({"2160-0"}, "creat", window)
        wt = latest_lab({"29463-7"}, "weight", 365)
        if cr is None or wt is None or age is None:
            return None, cr
        v = (140 - age) * wt[1] / (72 * cr[1])
        if sex != "male":
            v *= 0.85  # class S2: sex not recorded as male -> the female factor (the lower CrCl)
        return v, cr

    egfr_codes = {"98979-8", "62238-1", "33914-3"}
    dmab_active = d_last is not None and gap <= GRACE
    zol_active = any(0 <= (as_of - d).days <= 365 for d in zol_admins)
    def oral_active(r):
        if rx(r) not in ORAL_BP:
            return False
        if r["resourceType"] == "MedicationStatement":
            ep = r.get("effectivePeriod") or {}
            start, end = pdate(ep.get("start")), pdate(ep.get("end"))
            if r.get("status") == "active":
                return True
            # a completed statement without an end covers its start day only (class A8)
            return r.get("status") == "completed" and start is not None and start <= as_of and (
                (end is not None and end >= as_of) or (end is None and start == as_of))
        if r["resourceType"] == "MedicationRequest":
            if r.get("status") in ("active", "on-hold"):
                return True
            # 1.6: a stopped/completed order without an end counts 30 days from its start
            start = pdate(r.get("authoredOn"))
            return r.get("status") in ("stopped", "completed") and start and (as_of - start).days <= 30
        return False
    oral_bp_active = any(oral_active(r) for r in visible)

    def planned(code):
        for r in visible:
            if r["resourceType"] == "MedicationRequest" and rx(r) == code and r.get("status") in ("draft", "active"):
                a = pdate(r["authoredOn"])
                if not (0 <= (as_of - a).days <= 90):
                    continue
                if code == DMAB and not r.get("_draft") and not tiers[1] and not tiers[15] and not tiers[2] \
                        and a == d_last and dmab_active:
                    continue  # it is itself the dose source (active therapy)
                if code == ZOL and any(d >= a for d in zol_admins):
                    continue
                if code == DMAB and any(d >= a for d in tiers[1]):
                    continue
                return True
        return False

    oral_planned = any(r["resourceType"] == "MedicationRequest" and rx(r) in ORAL_BP and r.get("status") == "draft"
                       and 0 <= (as_of - pdate(r["authoredOn"])).days <= 90 for r in visible)
    zol_planned = planned(ZOL) or disc or (rebound and not transition) or ctx_high
    occurrence_due = False
    for r in visible:
        if r["resourceType"] == "MedicationRequest" and rx(r) == DMAB and r.get("status") == "active":
            a = pdate(r["authoredOn"])
            if any(d >= a for d in tiers[1] + tiers[2]):
                continue  # fulfilled by a documented dose
            for di_ in r.get("dosageInstruction") or []:
                for ev in ((di_.get("timing") or {}).get("event") or []):
                    e = pdate(ev)
                    if e and 0 <= (e - as_of).days <= 28:
                        occurrence_due = True
    dmab_due = "denosumab-due-soon" in findings or "denosumab-overdue" in findings or occurrence_due
    dmab_planned = planned(DMAB)
    dmab_any = dmab_active or dmab_due or dmab_planned
    antires_any = dmab_any or zol_active or zol_planned or oral_bp_active or oral_planned

    if zol_planned:
        c, cr = crcl(30)
        e = latest_lab(egfr_codes, "egfr", 30)
        if c is not None:
            if c < 35:
                findings["zoledronate-renal-contraindication"] = "critical"
        elif e is not None and e[1] < 35:
            findings["zoledronate-renal-contraindication"] = "critical"
        if (cr is None and e is None) or (cr is not None and e is None and c is None):
            di.add(3)
        if latest_lab({"17861-6"}, "ca", 30) is None:
            di.add(3)
    if dmab_due or dmab_planned:
        cr = latest_lab({"2160-0"}, "creat", 365)
        e = latest_lab(egfr_codes, "egfr", 365)
        c, _ = crcl(365)
        if (cr is None and e is None) or (cr is not None and e is None and c is None):
            di.add(5)
    if (dmab_due or dmab_planned or zol_planned or oral_planned) and latest_lab({"62292-8", "1989-3"}, "vitd", 365) is None:
        di.add(4)

    if dmab_any or zol_active or zol_planned:
        hyp = None
        ca = latest_lab({"17861-6"}, "ca", 30)
        if ca is not None:
            val = ca[1]
            alb = None
            for r in visible:
                if r["resourceType"] == "Observation" and loinc(r) == "1751-7":
                    d = pdate(r["effectiveDateTime"])
                    if abs((d - ca[0]).days) <= 30 and d <= as_of:
                        v, u = quantity(r)
                        v = conv("alb", v, u) if v is not None else None
                        if v is not None and (alb is None or d > alb[0]):
                            alb = (d, v)
            if alb:
                val = val + 0.8 * (4.0 - alb[1])
            low = 8.5
            for rr in ca[2].get("referenceRange") or []:
                lw = rr.get("low")
                if lw and "value" in lw:
                    lv = conv("ca", float(lw["value"]), lw.get("code") or lw.get("unit") or "")
                    if lv is not None:
                        low = max(low, lv)
            if val < low:  # compared unrounded (3.3), as the spec's arithmetic gives it
                hyp = "critical"
        if hyp is None and dmab_any:
            e = latest_lab(egfr_codes, "egfr", 365)
            if e is not None:
                if e[1] < 30:
                    hyp = "high"
            else:
                c, _ = crcl(365)
                if c is not None and c < 30:
                    hyp = "high"
        if hyp:
            findings["hypocalcaemia-antiresorptive-caution"] = hyp
    if antires_any:
        vd = latest_lab({"62292-8", "1989-3"}, "vitd", 365)
        if vd is not None and vd[1] < 20 - 1e-9:
            findings["vitamin-d-deficiency-antiresorptive-caution"] = "high"

    if di:
        findings["data-insufficient"] = "moderate" if di & {3, 4, 5} else "info"
    return {"findings": findings, "di_items": di, "values": values}
