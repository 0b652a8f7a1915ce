"""The Python module over the Rust engine (no Spark)."""

import json

import pytest

import osteoguard

PATIENT = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1950-03-15"}
DXA = {
    "resourceType": "Observation",
    "id": "o1",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "38267-1"}]},
    "subject": {"reference": "Patient/p1"},
    "effectiveDateTime": "2023-01-10",
    "valueQuantity": {"value": -2.7},
}
ENCOUNTER = {"resourceType": "Encounter", "id": "e1", "subject": {"reference": "Patient/p1"}}


def test_assess_returns_the_assessment_json():
    a = osteoguard.assess([json.dumps(PATIENT), json.dumps(DXA)], "2023-06-15")
    assert a["schema"] == "osteoguard.assessment/1"
    assert a["patient"]["ageYears"] == 73
    assert a["boneDensity"]["lowestTScore"] == -2.7
    # The same from NDJSON text, parsed dicts and a date object.
    import datetime

    text = json.dumps(PATIENT) + "\n" + json.dumps(DXA) + "\n"
    assert osteoguard.assess(text, datetime.date(2023, 6, 15)) == a
    assert osteoguard.assess([PATIENT, DXA], "2023-06-15") == a


def test_assess_refuses_bad_input_by_name():
    with pytest.raises(ValueError, match="as-of"):
        osteoguard.assess([PATIENT], "15/06/2023")
    with pytest.raises(ValueError, match="no patient"):
        osteoguard.assess([], "2023-06-15")
    with pytest.raises(ValueError, match="line 1"):
        osteoguard.assess(["{nope"], "2023-06-15")
    with pytest.raises(ValueError, match="unknown configuration key"):
        osteoguard.assess([PATIENT], "2023-06-15", config="[denosumab]\nfoo = 1\n")
    two = [PATIENT, dict(PATIENT, id="p2")]
    with pytest.raises(ValueError, match="2 patients"):
        osteoguard.assess(two, "2023-06-15")
    assert osteoguard.assess(two, "2023-06-15", patient="p2")["patient"]["reference"] == "Patient/p2"


def test_relevance_is_the_engines_decision():
    assert osteoguard.is_relevant(json.dumps(PATIENT))
    assert osteoguard.is_relevant(json.dumps(DXA))
    assert not osteoguard.is_relevant(json.dumps(ENCOUNTER))
    other_loinc = dict(DXA, code={"coding": [{"system": "http://loinc.org", "code": "8302-2"}]})
    assert not osteoguard.is_relevant(json.dumps(other_loinc))
    actions, ids = osteoguard.classify_lines(
        [json.dumps(PATIENT), json.dumps(ENCOUNTER), "", '{"eventId":"kickoff"}', None]
    )
    assert actions == ["keep", "drop:irrelevant", "drop:blank", "drop:not-fhir", "drop:blank"]
    assert ids == ["p1", None, None, None, None]


def test_worklist_batch_is_columnar_and_many_patients_per_call():
    keys = [f"p{i}" for i in range(50)]
    groups = [
        [json.dumps(dict(PATIENT, id=k)), json.dumps(dict(DXA, id=f"o{k}", subject={"reference": f"Patient/{k}"}))]
        for k in keys
    ]
    cols = osteoguard.worklist_batch(keys, groups, "2023-06-15")
    assert list(cols)[: len(osteoguard.WORKLIST_COLUMNS)] == list(osteoguard.WORKLIST_COLUMNS)
    n = len(cols["patient_id"])
    assert n >= 50 and all(len(v) == n for v in cols.values())
    assert set(cols["patient_id"]) == set(keys)
    assert cols["status"] == [None] * n  # screen's registry column: no registry on Spark
    batch = osteoguard.worklist_arrow(keys, groups, "2023-06-15")
    assert batch.num_rows == n
    assert batch.schema.field("age").type.bit_width == 64
