#!/usr/bin/env python3
"""Independent oracle for knowledge.md §13 (fracture-liaison KPIs 1-10), written from the specification only.

oracle_population(resources_by_patient, period_start, period_end, as_of) -> {patient_id: result}
result = {"index": one of index / refracture / under-age / age-unknown / none, "kind": vert|nonvert|None,
          "day0": date|None, "kpis": {k: "true"|"false"|"unknown"|"pending"|"excluded"|None}}
None for a KPI = the oracle abstains (a reading the spec leaves open and the generator did not avoid; counted).

Readings (spec quotes in README.md / docs/differential-programme.md):
* visibility §1.2 (Condition recordedDate else onset start; Observation issued else effective; Procedure
  performed; MedicationAdministration effective; MedicationRequest authoredOn; MedicationDispense and Encounter:
  not listed, read as whenHandedOver/whenPrepared and period.start).
* index §13: the earliest fragility fracture in [P0, P1] that is at age >= 50 and has no fragility fracture in
  the 365 days before it (literal reading; see LITERAL_INDEX).
* pending: as_of <= day0 + N (the window's last day is not over); deceased (dated, visible) on or before the
  window's last day -> excluded from 7-10; a death without a date -> the exclusion is UNKNOWN.
* KPI 10: denosumab "7 months" = 210 days (§4.3 active window; §1.2 forbids calendar months), zoledronate
  "12 months" = 365 days (§1.2 states it).
"""
import datetime as dt

SCT = "http://snomed.info/sct"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
CPT = "http://www.ama-assn.org/go/cpt"
OG = "http://osteoguard.org/fhir/CodeSystem/osteoguard"
MECH = "http://osteoguard.org/fhir/StructureDefinition/fracture-mechanism"

MIN_AGE = 50
LOOKBACK = 365
W_ASSESS = 84
W_FOLLOW = 112
ONE_YEAR = 364
DMAB_7M = 210
ZOL_12M = 365
STOPPED_SPAN = 30
DMAB_DISTINCT = 60
DISPENSE_GRACE = 30
LITERAL_INDEX = True

# §10.3a / §7.2 codes (site kind)
SCT_FRACT = {"359817006": "hip", "5913000": "hip", "263102004": "wrist", "65966004": "wrist"}
ICD_PREFIX = [("M80.08", "vert"), ("M48.5", "vert"), ("S32.0", "vert"), ("S22.0", "vert"),
              ("S72.0", "hip"), ("S72.1", "hip"), ("S72.2", "hip"), ("M80.05", "hip"),
              ("S52.5", "wrist"), ("S52.6", "wrist"), ("M80.03", "wrist"), ("S42.2", "humerus"),
              ("M80.02", "humerus"), ("M80.0", "other"), ("M80.8", "other")]
DXA_LOINC = {"38267-1", "24966-4", "85394-5", "38264-8", "80946-7", "80945-9", "38261-4", "46278-8", "46279-6",
             "80933-5", "38263-0", "80948-3", "80947-5", "24701-5", "80934-3", "38265-5"}
T_HIP_SPINE = {"38267-1", "38264-8", "80946-7", "80945-9", "38263-0", "80948-3", "80947-5"}
DXA_PROC = {(CPT, "77080"), (CPT, "77081"), (CPT, "77085"), (SCT, "312681000")}
FALLS = (SCT, "414191008")
OBS_OK = {"final", "amended", "corrected", "preliminary"}
AOM_RX = {"993449": "denosumab", "77655": "zoledronic acid", "46041": "alendronate", "73056": "risedronate",
          "115264": "ibandronate", "72143": "raloxifene"}
ORAL = {"alendronate", "risedronate", "raloxifene"}
ORAL_BP = {"alendronate", "risedronate"}  # §4.3 "last fill + days supply + 30 days" rows
MR_EXPOSURE = {"active", "completed", "on-hold", "stopped"}


def day(s):
    if not s:
        return None
    return dt.date.fromisoformat(s[:10])


def codings(cc):
    return [(c.get("system"), c.get("code")) for c in (cc or {}).get("coding", [])]


def age_at(birth, d):
    return d.year - birth.year - ((d.month, d.day) < (birth.month, birth.day))


def fracture_kind(cond):
    """vert / hip / wrist / humerus / other, or None (not a fragility fracture code); 'followup' for D/G/K/S"""
    for sysc, code in codings(cond.get("code")):
        if sysc == SCT and code in SCT_FRACT:
            return SCT_FRACT[code]
        if sysc == SCT and code == "443165006":
            sites = cond.get("bodySite") or []
            for s in sites:
                t = (s.get("text") or "").strip().lower()
                if t and not (t[0] in "tl" and t[1:].strip()[:2].strip().isdigit()):
                    return "other"  # names another site by text
            return "vert"
        if sysc == ICD and code:
            for pre, kind in ICD_PREFIX:
                if code.startswith(pre):
                    if len(code.replace(".", "")) >= 7 and code[-1] in "DGKPS":
                        return "followup"
                    return kind
    return None


def followup_site(c):
    for sysc, code in codings(c.get("code")):
        for pre, kind in ICD_PREFIX:
            if sysc == ICD and code.startswith(pre):
                return kind
    return "other"


def cond_visible_date(c):
    return day(c.get("recordedDate")) or day(c.get("onsetDateTime")) or day((c.get("onsetPeriod") or {}).get("start"))


def cond_onset(c):
    return day(c.get("onsetDateTime")) or day((c.get("onsetPeriod") or {}).get("start")) or day(c.get("recordedDate"))


def fragility_events(res, as_of, followup=False):
    ev = []
    for c in res.get("Condition", []):
        vd = cond_visible_date(c)
        if vd is None or vd > as_of:
            continue
        vs = [code for _, code in codings(c.get("verificationStatus"))]
        if any(v in ("refuted", "entered-in-error") for v in vs):
            continue
        if any(e.get("url") == MECH and e.get("valueCode") == "traumatic" for e in c.get("extension", [])):
            continue
        k = fracture_kind(c)
        if k is None or (k == "followup" and not followup):
            continue
        if k == "followup":
            k = followup_site(c)
        ev.append((cond_onset(c), "vert" if k == "vert" else "nonvert", k, c["id"]))
    return ev


def find_index(pat, res, p0, p1, as_of):
    ev = fragility_events(res, as_of)
    birth = day(pat.get("birthDate"))
    cands = sorted(e for e in ev if e[0] and p0 <= e[0] <= p1)
    if not cands:
        return "none", None
    first_reason = None
    for onset, kind, site, cid in cands:
        prior = [e for e in ev if e[0] and 1 <= (onset - e[0]).days <= LOOKBACK]
        if prior:
            reason = "refracture"
        elif birth is None:
            reason = "age-unknown"
        elif age_at(birth, onset) < MIN_AGE:
            reason = "under-age"
        else:
            same = {e[1] for e in cands if e[0] == onset}
            return "index", (onset, kind if len(same) == 1 else None, site)
        if first_reason is None:
            first_reason = reason
        if not LITERAL_INDEX:
            break
        if reason == "age-unknown":
            break  # a later one cannot be decided either
    return first_reason, None


def obs_date(o):
    return day(o.get("effectiveDateTime")) or day((o.get("effectivePeriod") or {}).get("start"))


def obs_visible(o, as_of):
    v = day(o.get("issued")) or obs_date(o)
    return v is not None and v <= as_of


def frax_ok(o):
    if (OG, "frax-mof") not in codings(o.get("code")) and (OG, "frax-hip") not in codings(o.get("code")):
        return False
    q = o.get("valueQuantity") or {}
    v = q.get("value")
    if v is None:
        return False
    if q.get("unit") == "1" or q.get("code") == "1":
        if v > 1.0:
            return False
        v = v * 100
    return 0 <= v <= 100


def is_dxa_obs(o):
    return any(s == LOINC and c in DXA_LOINC for s, c in codings(o.get("code")))


def rx_name(m):
    for s, c in codings(m.get("medicationCodeableConcept")):
        if s == RX and c in AOM_RX:
            return AOM_RX[c]
    return None


def kpis(pat, res, ix, as_of, config):
    onset, kind, site = ix
    d0 = onset

    def inwin(d, a, b):
        return d is not None and d0 + dt.timedelta(a) <= d <= d0 + dt.timedelta(b)

    obs = [o for o in res.get("Observation", []) if o.get("status") in OBS_OK and obs_visible(o, as_of)]
    procs = [p for p in res.get("Procedure", []) if p.get("status") == "completed"
             and day(p.get("performedDateTime")) and day(p.get("performedDateTime")) <= as_of]
    out = {}
    out[1] = None if kind is None else ("true" if kind == "nonvert" else "false")
    out[2] = None if kind is None else ("true" if kind == "vert" else "false")

    dxa = any(is_dxa_obs(o) and inwin(obs_date(o), 0, W_ASSESS) for o in obs) or any(
        set(codings(p.get("code"))) & DXA_PROC and inwin(day(p.get("performedDateTime")), 0, W_ASSESS) for p in procs)
    frax = any(frax_ok(o) and inwin(obs_date(o), 0, W_ASSESS) for o in obs)
    # a DXA ImagingStudy (modality BMD or a DXA procedure code), dated by `started`: available / registered
    # = the study exists; status unknown or no date → UNKNOWN; cancelled / entered-in-error do not count
    udxa = False
    for im in res.get("ImagingStudy", []):
        st, d = im.get("status"), day(im.get("started"))
        if d is not None and d > as_of:
            continue
        if st in ("cancelled", "entered-in-error"):
            continue
        if d is None or st == "unknown":
            udxa |= d is None or inwin(d, 0, W_ASSESS)
        elif inwin(d, 0, W_ASSESS):
            dxa = True
    out[3] = "true" if (dxa or frax) else ("unknown" if udxa else "false")
    out[4] = "true" if dxa else ("unknown" if udxa else "false")
    fset = {FALLS} | config.get("falls", set())
    falls = any(set(codings(o.get("code"))) & fset and inwin(obs_date(o), 0, W_FOLLOW) for o in obs) or any(
        set(codings(p.get("code"))) & fset and inwin(day(p.get("performedDateTime")), 0, W_FOLLOW) for p in procs)
    ufalls = any(p.get("status") == "unknown" and set(codings(p.get("code"))) & fset
                 and inwin(day(p.get("performedDateTime")), 0, W_FOLLOW) for p in res.get("Procedure", []))
    out[5] = "true" if falls else ("unknown" if ufalls else "false")

    mrs = [m for m in res.get("MedicationRequest", []) if day(m.get("authoredOn")) and day(m["authoredOn"]) <= as_of]
    mas = [m for m in res.get("MedicationAdministration", [])
           if day(m.get("effectiveDateTime")) and day(m["effectiveDateTime"]) <= as_of]

    def disp_date(m):
        return day(m.get("whenHandedOver")) or day(m.get("whenPrepared"))
    mds = [m for m in res.get("MedicationDispense", []) if disp_date(m) and disp_date(m) <= as_of]

    # KPI 6
    order = any(rx_name(m) and m.get("status") != "entered-in-error" and inwin(day(m["authoredOn"]), 0, W_FOLLOW)
                for m in mrs)
    any_aom = any(rx_name(m) for m in mrs + mas + mds)
    if order:
        out[6] = "true"
    elif any_aom:
        out[6] = None  # osteoguard's own findings depend on the therapy state: not modelled
    else:
        # osteoporosis-treatment-indicated (b): >= 50, prior hip/vertebral fragility fracture or T <= -2.5
        # visible on some day in [day 0, day 112]
        end = min(d0 + dt.timedelta(W_FOLLOW), as_of)
        fired = False
        for e in fragility_events(res, end, followup=True):
            if e[2] in ("hip", "vert") and e[0] and e[0] <= end:
                fired = True
        for o in obs:
            q = (o.get("valueQuantity") or {}).get("value")
            vis = day(o.get("issued")) or obs_date(o)
            if any(s == LOINC and c in T_HIP_SPINE for s, c in codings(o.get("code"))) and q is not None \
                    and q <= -2.5 and vis and vis <= end:
                fired = True
        if fired:
            out[6] = "true"
        else:
            # an ambiguous ('other' site via 443165006 text / M80.0-) fracture could be read as hip
            out[6] = None if any(e[2] == "other" for e in fragility_events(res, end)) else "false"

    # KPI 7: "a referral/procedure for exercise or physiotherapy (site-mapped value set; none by default →
    # UNKNOWN)". A ServiceRequest made (active, on-hold, completed; not draft, revoked, entered-in-error, nor a
    # do-not-perform one) or a completed Procedure, dated in day 0-112; status unknown in the window → UNKNOWN.
    if not config.get("exercise"):
        out[7] = "unknown"
    else:
        t7 = u7 = False
        for x in res.get("ServiceRequest", []) + res.get("Procedure", []):
            if not set(codings(x.get("code"))) & config["exercise"]:
                continue
            d = day(x.get("authoredOn") or x.get("performedDateTime"))
            if d is None or d > as_of or not inwin(d, 0, W_FOLLOW):
                continue
            st = x.get("status")
            if x["resourceType"] == "ServiceRequest":
                if x.get("doNotPerform"):
                    continue
                t7 |= st in ("active", "on-hold", "completed")
            else:
                t7 |= st == "completed"
            u7 |= st == "unknown"
        out[7] = "true" if t7 else ("unknown" if u7 else "false")
    encs = [e for e in res.get("Encounter", []) if day((e.get("period") or {}).get("start"))
            and day(e["period"]["start"]) <= as_of]
    contact = any(e.get("status") not in ("cancelled", "entered-in-error", "planned")
                  and inwin(day(e["period"]["start"]), 1, W_FOLLOW) for e in encs)
    contact = contact or any(inwin(obs_date(o), 1, W_FOLLOW) for o in obs)
    out[8] = "true" if contact else ("unknown" if not encs else "false")  # no Encounter visible at all

    # KPI 9
    t9 = any(m.get("status") == "completed" and rx_name(m) and inwin(day(m["effectiveDateTime"]), 0, W_FOLLOW)
             for m in mas)
    t9 |= any(m.get("status") == "completed" and rx_name(m) and inwin(disp_date(m), 0, W_FOLLOW) for m in mds)

    def mr_start(m):
        for di in m.get("dosageInstruction", []):
            s = day((((di.get("timing") or {}).get("repeat") or {}).get("boundsPeriod") or {}).get("start"))
            if s:
                return s
        return day(m.get("authoredOn"))

    def mr_end(m):
        for di in m.get("dosageInstruction", []):
            e = day((((di.get("timing") or {}).get("repeat") or {}).get("boundsPeriod") or {}).get("end"))
            if e:
                return e
        return None
    t9 |= any(m.get("status") == "active" and rx_name(m) in ORAL and inwin(mr_start(m), 0, W_FOLLOW) for m in mrs)
    u9 = any(m.get("status") == "unknown" and rx_name(m) and inwin(day(m["effectiveDateTime"]), 0, W_FOLLOW)
             for m in mas)
    u9 |= any(m.get("status") == "unknown" and rx_name(m) and inwin(disp_date(m), 0, W_FOLLOW) for m in mds)
    u9 |= any(m.get("status") == "unknown" and rx_name(m) in ORAL and inwin(mr_start(m), 0, W_FOLLOW) for m in mrs)
    out[9] = "true" if t9 else ("unknown" if u9 else "false")

    # KPI 10
    d364 = d0 + dt.timedelta(ONE_YEAR)
    t10 = False
    u10 = False
    abst = False
    # §5.1 "distinct administrations >= 60 days apart": a later record < 60 days after a kept dose is the
    # same dose documented twice; the earlier date is kept (differential-dmab.md A1, the conservative reading)
    kept = []
    for d in sorted(day(m["effectiveDateTime"]) for m in mas
                    if rx_name(m) == "denosumab" and m.get("status") == "completed"):
        if not kept or (d - kept[-1]).days >= DMAB_DISTINCT:
            kept.append(d)
    t10 |= any(d364 - dt.timedelta(DMAB_7M) <= d <= d364 for d in kept)
    for m in mas:
        n, d = rx_name(m), day(m["effectiveDateTime"])
        if n == "denosumab" and d364 - dt.timedelta(DMAB_7M) <= d <= d364:
            u10 |= m.get("status") == "unknown"
        if n == "zoledronic acid" and d364 - dt.timedelta(ZOL_12M) <= d <= d364:
            t10 |= m.get("status") == "completed"
            u10 |= m.get("status") == "unknown"
    for m in mrs:
        n = rx_name(m)
        if n is None:
            continue
        st, s = m.get("status"), mr_start(m)
        if n in ("denosumab", "zoledronic acid"):
            a = day(m.get("authoredOn"))
            u10 |= st == "unknown" and a is not None and a <= d364  # invisible on day 364 otherwise
            if st != "entered-in-error" and a and d364 - dt.timedelta(ZOL_12M) <= a <= d364:
                abst = True  # an order as a dose date (§5.1 tier 3) vs "planned" (§4.3): not modelled
            continue
        if s is None or s > d364:
            continue
        e = mr_end(m)
        if st == "unknown":
            u10 |= e is None or e >= d364
        elif st in ("stopped", "completed"):
            if e is None:
                e = s + dt.timedelta(STOPPED_SPAN)
                if abs((d364 - e).days) <= 1:
                    abst = True  # "30 days from its start": inclusive or not
            t10 |= e >= d364
        elif st == "active":
            t10 |= e is None or e >= d364
        elif st == "on-hold":
            if e is None or e >= d364:
                abst = True
    for m in mds:
        n, d = rx_name(m), disp_date(m)
        if n not in ORAL_BP or d > d364:
            continue
        sup = (m.get("daysSupply") or {}).get("value")
        if m.get("status") == "completed":
            if sup is None:
                if (d364 - d).days <= STOPPED_SPAN + DISPENSE_GRACE + 1:
                    u10 = True
            elif (d364 - d).days <= sup + DISPENSE_GRACE:
                t10 = True
                if (d364 - d).days == sup + DISPENSE_GRACE:
                    abst = abst  # on the edge: read as covering (>=)
        elif m.get("status") == "unknown" and (d364 - d).days <= (sup or STOPPED_SPAN) + DISPENSE_GRACE:
            u10 = True
    out[10] = "true" if t10 else (None if abst else ("unknown" if u10 else "false"))

    # pending and deceased
    windows = {3: W_ASSESS, 4: W_ASSESS, 5: W_FOLLOW, 6: W_FOLLOW, 7: W_FOLLOW, 8: W_FOLLOW, 9: W_FOLLOW,
               10: ONE_YEAR}
    death = day(pat.get("deceasedDateTime"))
    if death and death > as_of:
        death = None
    for k, n in windows.items():
        end = d0 + dt.timedelta(n)
        if k >= 7 and death and death <= end:
            out[k] = "excluded"
        elif as_of <= end:
            out[k] = "pending"
        elif k >= 7 and pat.get("deceasedBoolean") is True and out[k] != "true":
            out[k] = "unknown" if out[k] is not None else None
    return out


def oracle_patient(pat, res, p0, p1, as_of, config):
    outcome, ix = find_index(pat, res, p0, p1, as_of)
    r = {"index": outcome, "kind": None, "day0": None, "kpis": {}}
    if outcome == "index":
        r["day0"] = ix[0]
        r["kind"] = ix[1]
        r["kpis"] = kpis(pat, res, ix, as_of, config)
    return r


def group_by_patient(resources):
    """resources: {type: [resource]} -> {patient id: (Patient, {type: [resource]})}"""
    pats = {p["id"]: (p, {}) for p in resources.get("Patient", [])}
    for rt, items in resources.items():
        if rt == "Patient":
            continue
        for x in items:
            ref = (x.get("subject") or x.get("patient") or {}).get("reference", "")
            pid = ref.split("/")[-1]
            if pid in pats:
                pats[pid][1].setdefault(rt, []).append(x)
    return pats


def oracle_population(resources, p0, p1, as_of, config=None):
    """config: {"exercise": {(system, code)}, "falls": {(system, code)}} — the site value sets"""
    config = config or {}
    return {pid: oracle_patient(p, res, p0, p1, as_of, config)
            for pid, (p, res) in group_by_patient(resources).items()}
