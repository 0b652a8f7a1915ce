"""Statuses on Spark (`--previous`): two Spark runs and two `osteoguard screen` runs over the same
pair of exports give the same statuses, reasons and disappeared rows.

The exports are written here from `examples/example-7-dmab-due-renal.json` (knowledge.md §11
example 7: denosumab due soon, zoledronate ordered with a low creatinine clearance), one copy per
patient, as in screen's own two-run tests (crates/osteoguard-screen/tests/worklist.rs):

* ``pa``: unchanged — the due-soon dose becomes overdue (escalated), the renal results age out of
  their window (recheck needed);
* ``pb``: a denosumab dose given between the runs (resolved, with the dose as evidence);
* ``pc``: in the first export only (its open findings: recheck needed, patient not in the export);
* ``pd``: in the second export only (new).
"""

import csv
import io
import json
import subprocess
from pathlib import Path

import pyarrow.parquet as pq

from conftest import REPO
from osteoguard import WORKLIST_COLUMNS
from osteoguard.spark import AS_OF_COLUMN, run

EX7 = REPO / "examples" / "example-7-dmab-due-renal.json"
AS_OF_1, AS_OF_2 = "2024-09-20", "2024-11-20"
KEEP = ["patient_id", "finding_code", "severity", "status", "summary", "status_reason"]


def ex7(pid):
    text = EX7.read_text(encoding="utf-8").replace("example-7", pid).replace("ex7-", f"{pid}-")
    return [e["resource"] for e in json.loads(text)["entry"]]


def dose_on(resources, pid, date):
    """A copy of the patient's last denosumab administration, given on `date`."""
    last = next(r for r in resources if r["id"] == f"{pid}-dmab-3")
    r = json.loads(json.dumps(last))
    r["id"] = f"{pid}-dmab-4"
    r["effectiveDateTime"] = f"{date}T10:00:00-05:00"
    return r


def write_export(path: Path, resources):
    path.mkdir(parents=True)
    by_type = {}
    for r in resources:
        by_type.setdefault(r["resourceType"], []).append(json.dumps(r))
    for t, lines in by_type.items():
        (path / f"{t}.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")


def exports(tmp_path):
    first = ex7("pa") + ex7("pb") + ex7("pc")
    pb = ex7("pb")
    second = ex7("pa") + pb + [dose_on(pb, "pb", "2024-11-10")] + ex7("pd")
    e1, e2 = tmp_path / "e1", tmp_path / "e2"
    write_export(e1, first)
    write_export(e2, second)
    return e1, e2


def screen(exe, export, as_of, out):
    subprocess.run(
        [exe, "screen", str(export), "--as-of", as_of, "--out", str(out), "--format", "csv,json",
         "-q"],
        check=True,
    )
    return (out / "worklist.csv").read_text(encoding="utf-8"), json.loads(
        (out / "worklist.json").read_text(encoding="utf-8"))


def statuses(csv_text):
    """(patient, finding) → (status, reason) of every row of a worklist.csv (apart rows too)."""
    rows = list(csv.reader(io.StringIO(csv_text)))
    h = rows[0]
    pid, code, st, why = (h.index(c) for c in ("patient_id", "finding_code", "status",
                                               "status_reason"))
    out = {}
    for r in rows[1:]:
        out.setdefault((r[pid], r[code]), []).append((r[st], r[why]))
    return out


def test_two_spark_runs_give_screens_statuses_and_disappeared_rows(spark, osteoguard_exe,
                                                                   tmp_path):
    e1, e2 = exports(tmp_path)
    screen_out = tmp_path / "screen"  # one output directory: one run registry, two runs
    s1_csv, _ = screen(osteoguard_exe, e1, AS_OF_1, screen_out)
    k1 = run(spark, str(e1), AS_OF_1, str(tmp_path / "spark1"), single_csv=True)
    s2_csv, s2_json = screen(osteoguard_exe, e2, AS_OF_2, screen_out)
    k2 = run(spark, str(e2), AS_OF_2, str(tmp_path / "spark2"), single_csv=True,
             previous=str(tmp_path / "spark1"))

    # The scenario reaches every status (as screen decides them).
    got = {s for v in statuses(s2_csv).values() for s, _ in v}
    assert {"new", "escalated", "resolved", "recheck-needed"} <= got, got
    assert s2_json["absentPatients"] and s2_json["resolved"]

    # First run: every finding new, as screen's first run; second: the same statuses and
    # reasons per (patient, finding), and the same file byte for byte (apart rows included).
    k1_csv = (tmp_path / "spark1" / "worklist.csv").read_text(encoding="utf-8")
    k2_csv = (tmp_path / "spark2" / "worklist.csv").read_text(encoding="utf-8")
    assert statuses(k1_csv) == statuses(s1_csv)
    assert k1_csv == s1_csv
    assert statuses(k2_csv) == statuses(s2_csv)
    assert k2_csv == s2_csv
    assert k2["status"].get("escalated", 0) >= 1 and k1["previous"] is None

    # The disappeared rows: resolved.parquet holds screen's `absentPatients` then `resolved`
    # (the order of screen's worklist.csv).
    table = pq.read_table(tmp_path / "spark2" / "resolved.parquet")
    assert table.column_names == list(WORKLIST_COLUMNS) + [AS_OF_COLUMN]
    spark_apart = [[r[c] or "" for c in KEEP] for r in table.to_pylist()]
    screen_apart = [
        [r["patientId"], r["code"], r["severity"], r["status"], r["summary"], r["reason"]]
        for r in s2_json["absentPatients"] + s2_json["resolved"]
    ]
    assert spark_apart == screen_apart
    assert {r[AS_OF_COLUMN] for r in table.to_pylist()} == {AS_OF_2}
    # resolved.csv: the same rows, as screen's worklist.csv lists them after the worklist.
    apart_csv = (tmp_path / "spark2" / "resolved.csv").read_text(encoding="utf-8")
    body = apart_csv.split("\n", 1)[1]
    assert body and s2_csv.endswith(body)
