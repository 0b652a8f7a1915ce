//! Dated events of the visible record for the timeline chart (HTML report).

use chrono::NaiveDate;

use crate::assessment::{
    Timeline, TimelineDose, TimelineFracture, TimelinePain, TimelineProcedure,
};
use crate::config::Config;
use crate::engine::Evaluation;
use crate::model::{
    ConditionKind, FractureSite, Ingredient, MedicationSource, MedicationStatus, ObservationKind,
    PatientRecord, ProcedureStatus, VertebralLocation,
};

fn site_label(site: FractureSite) -> String {
    match site {
        FractureSite::Vertebral(VertebralLocation::Unspecified) => {
            "vertebra (level unknown)".into()
        }
        FractureSite::Vertebral(loc) => loc.to_string(),
        FractureSite::Hip => "hip".into(),
        FractureSite::Wrist => "wrist".into(),
        FractureSite::Humerus => "humerus".into(),
        FractureSite::OsteoporoticOther => "osteoporotic (site unknown)".into(),
        FractureSite::Other => "other".into(),
    }
}

/// The earliest and latest of the dates seen.
#[derive(Default)]
struct Span {
    first: Option<NaiveDate>,
    last: Option<NaiveDate>,
}

impl Span {
    fn push(&mut self, d: NaiveDate) {
        self.first = Some(self.first.map_or(d, |f| f.min(d)));
        self.last = Some(self.last.map_or(d, |l| l.max(d)));
    }
}

impl Extend<NaiveDate> for Span {
    fn extend<I: IntoIterator<Item = NaiveDate>>(&mut self, dates: I) {
        for d in dates {
            self.push(d);
        }
    }
}

pub(crate) fn build(record: &PatientRecord, ev: &Evaluation, config: &Config) -> Timeline {
    let t = &config.thresholds;
    // Only the first and last date are kept (no list of every date).
    let mut dates = Span::default();
    let mut fractures = Vec::new();
    for c in record.conditions.iter().filter(|c| c.is_valid()) {
        if let ConditionKind::Fracture(site) = c.kind {
            if c.subsequent_encounter {
                continue;
            }
            let onset = c.onset.and_then(|p| p.start.or(p.end)).or(c.recorded);
            dates.extend(onset);
            fractures.push(TimelineFracture {
                site: site_label(site),
                onset,
                reference: c.source.clone(),
            });
        }
    }
    let mut procedures = Vec::with_capacity(record.procedures.len());
    for p in record
        .procedures
        .iter()
        .filter(|p| p.status == ProcedureStatus::Completed)
    {
        if let Some(date) = p.date() {
            dates.push(date);
            procedures.push(TimelineProcedure {
                kind: p.kind,
                levels: p.levels.iter().map(|l| l.label().to_string()).collect(),
                date,
                reference: p.source.clone(),
            });
        }
    }
    let mut doses = Vec::with_capacity(ev.dmab.doses.len());
    for d in &ev.dmab.doses {
        doses.push(TimelineDose {
            agent: Ingredient::Denosumab.name().into(),
            date: d.date,
            covers_days: t.dmab_due_days,
            reference: d.source.clone(),
        });
    }
    for m in &record.medications {
        let administered = m.kind == MedicationSource::Administration
            && matches!(m.status, MedicationStatus::Completed);
        if !administered {
            continue;
        }
        let Some(date) = m.administration_date() else {
            continue;
        };
        for agent in [Ingredient::ZoledronicAcid, Ingredient::Ibandronate] {
            if m.has(agent) {
                doses.push(TimelineDose {
                    agent: agent.name().into(),
                    date,
                    covers_days: if agent == Ingredient::ZoledronicAcid {
                        t.zoledronate_active_days
                    } else {
                        t.ibandronate_iv_active_days
                    },
                    reference: m.source.clone(),
                });
            }
        }
    }
    dates.extend(doses.iter().map(|d| d.date));
    let mut pain = Vec::new();
    for o in record
        .observations
        .iter()
        .filter(|o| o.kind == ObservationKind::Pain && o.status.is_usable())
    {
        if let (Some(date), Some(value)) = (o.date(), o.value) {
            pain.push(TimelinePain {
                date,
                value,
                reference: o.source.clone(),
            });
        }
    }
    dates.extend(pain.iter().map(|p| p.date));
    dates.extend(ev.gc.series.iter().map(|(d, _)| *d));
    dates.extend(ev.dxa.t_series.iter().map(|(d, ..)| *d));
    doses.sort_by(|a, b| (a.date, &a.reference).cmp(&(b.date, &b.reference)));
    procedures.sort_by(|a, b| (a.date, &a.reference).cmp(&(b.date, &b.reference)));
    fractures.sort_by(|a, b| (a.onset, &a.reference).cmp(&(b.onset, &b.reference)));
    Timeline {
        start: dates.first,
        end: dates.last,
        fractures,
        procedures,
        antiresorptive_doses: doses,
        pain,
    }
}
