//! `worklist.xlsx` read back with a spreadsheet reader (`calamine`) holds, cell for cell, what
//! `worklist.csv` of the same run holds: every row in the same order, each column's text, dates
//! as date cells, the age as a number, and the previous findings listed apart after the rows.

use std::path::Path;

use calamine::{open_workbook, Data, Reader, Xlsx};
use chrono::NaiveDate;
use osteoguard_screen::{run_screen, ScreenArgs, SynthArgs};

/// The xlsx columns, each with the CSV column it shows.
const COLUMNS: [(&str, &str); 17] = [
    ("Severity", "severity"),
    ("Status", "status"),
    ("Due", "due_date"),
    ("Name", "name"),
    ("MRN", "mrn"),
    ("MRN system", "mrn_system"),
    ("Birth date", "birth_date"),
    ("Age", "age"),
    ("Sex", "sex"),
    ("Phone", "phone"),
    ("Finding", "title"),
    ("Next action", "next_action"),
    ("Status reason", "status_reason"),
    ("Record problems", "data_quality"),
    ("Evidence", "evidence"),
    ("Patient id", "patient_id"),
    ("Finding code", "finding_code"),
];

/// A cell as the CSV writes its value: text as is, a date cell as `yyyy-mm-dd`, a number as
/// an integer (the only number is the age), an empty cell as "".
fn cell_text(c: &Data) -> String {
    match c {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Float(f) => {
            assert_eq!(f.fract(), 0.0, "an integer: {f}");
            format!("{}", *f as i64)
        }
        Data::Int(i) => i.to_string(),
        Data::DateTime(d) => {
            assert!(d.is_datetime(), "{d:?}");
            // Excel's serial day 0 is 1899-12-30 (the 1900 leap-year bug is before 1900-03-01).
            let epoch = NaiveDate::from_ymd_opt(1899, 12, 30).unwrap();
            let days = d.as_f64();
            assert_eq!(days.fract(), 0.0, "a date without time: {days}");
            (epoch + chrono::Duration::days(days as i64)).to_string()
        }
        other => panic!("unexpected cell {other:?}"),
    }
}

fn compare(out: &Path) -> (usize, usize) {
    let mut rd = csv::Reader::from_path(out.join("worklist.csv")).unwrap();
    let h = rd.headers().unwrap().clone();
    let col = |n: &str| h.iter().position(|c| c == n).unwrap();
    let csv_rows: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();

    let mut wb: Xlsx<_> = open_workbook(out.join("worklist.xlsx")).unwrap();
    assert_eq!(wb.sheet_names(), vec!["Worklist".to_string()]);
    let range = wb.worksheet_range("Worklist").unwrap();
    let mut rows = range.rows();
    let header: Vec<String> = rows.next().unwrap().iter().map(cell_text).collect();
    let want: Vec<&str> = COLUMNS.iter().map(|c| c.0).collect();
    assert_eq!(header, want);
    let xlsx_rows: Vec<Vec<String>> = rows
        .map(|r| r.iter().map(cell_text).collect::<Vec<String>>())
        .collect();
    assert_eq!(xlsx_rows.len(), csv_rows.len(), "one xlsx row per CSV row");
    let mut apart = 0;
    for (i, (x, c)) in xlsx_rows.iter().zip(&csv_rows).enumerate() {
        // A previous finding listed apart has no title: the xlsx shows its summary instead
        // (the CSV has it in `summary`).
        let listed_apart = c[col("title")].is_empty();
        apart += usize::from(listed_apart);
        for (j, (name, csv_name)) in COLUMNS.iter().enumerate() {
            let csv_name = if listed_apart && *name == "Finding" {
                "summary"
            } else {
                csv_name
            };
            let want = &c[col(csv_name)];
            let got = x.get(j).map_or("", String::as_str);
            assert_eq!(got, want, "row {} column {name}", i + 1);
        }
    }
    (csv_rows.len(), apart)
}

#[test]
fn every_xlsx_cell_equals_the_csv_worklist() {
    let tmp = tempfile::tempdir().unwrap();
    let synth = |patients: u64, out: &Path| {
        osteoguard_screen::synth(SynthArgs {
            patients,
            seed: 9,
            out: out.to_path_buf(),
            as_of: osteoguard_screen::synth::DEFAULT_AS_OF.into(),
            filler: 3,
            quiet: true,
        })
        .unwrap()
    };
    let all = tmp.path().join("all");
    let fewer = tmp.path().join("fewer");
    synth(400, &all);
    synth(300, &fewer);
    let out = tmp.path().join("out");
    let mut a = ScreenArgs::new(&all, "2025-06-30", &out);
    a.jobs = Some(2);
    run_screen(&a).unwrap();
    let (rows, apart) = compare(&out);
    assert!(rows > 100, "{rows} rows");
    assert_eq!(apart, 0);
    // A second run, later, on fewer patients: statuses, reasons, and the findings of the
    // patients no longer in the export listed apart.
    let mut a = ScreenArgs::new(&fewer, "2025-12-31", &out);
    a.jobs = Some(2);
    run_screen(&a).unwrap();
    let (rows, apart) = compare(&out);
    assert!(rows > 100, "{rows} rows");
    assert!(apart > 0, "previous findings listed apart");
}
