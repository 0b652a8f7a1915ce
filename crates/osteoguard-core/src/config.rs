//! Site configuration: validated threshold overrides and switched-off findings, and the
//! provenance hash that proves which settings produced a result.
//!
//! TOML layout (keys are those of [`crate::thresholds::TABLE`], `group.name`):
//! ```toml
//! [denosumab]
//! grace_end_days = 240
//!
//! [findings]
//! disabled = ["anabolic-therapy-preferred"]
//! ```

use std::collections::BTreeSet;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::finding::FindingCode;
use crate::thresholds::{ThresholdValue, Thresholds, TABLE};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("configuration is not valid TOML: {0}")]
    Syntax(String),
    #[error("unknown configuration key `{key}`")]
    UnknownKey { key: String },
    #[error("`{key}` is not configurable (it is a verified guideline threshold, {section})")]
    NotConfigurable { key: String, section: String },
    #[error("`{key}` must be {expected}, got {got}")]
    WrongType {
        key: String,
        expected: &'static str,
        got: String,
    },
    #[error("`{key}` = {value} is out of range: allowed {min} to {max} {unit}")]
    OutOfRange {
        key: String,
        value: String,
        min: f64,
        max: f64,
        unit: &'static str,
    },
    #[error("unknown finding code `{code}` in `findings.disabled`")]
    UnknownFinding { code: String },
}

/// The effective configuration of one evaluation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    pub thresholds: Thresholds,
    pub disabled_findings: BTreeSet<FindingCode>,
    /// Keys overridden from their defaults, sorted.
    pub overridden: Vec<String>,
    /// Site value sets of the programme report (`[programme]`, knowledge.md §13 KPIs 5 and 7).
    /// Not part of the provenance hash: no assessment reads them.
    pub programme: ProgrammeCodes,
    /// The last provenance stamp computed, with the settings it was computed from. Why: the
    /// stamp (canonical text + SHA-256) cost 7 % of a screening run when recomputed for every
    /// patient; the fields above are public, so the cache is used only while they still equal
    /// the snapshot — a changed setting can never carry a stale hash.
    stamp: StampCache,
}

/// The settings a stamp was computed from, and the stamp.
type Stamped = (Thresholds, BTreeSet<FindingCode>, Vec<String>, Provenance);

#[derive(Clone, Default)]
struct StampCache(std::sync::OnceLock<Box<Stamped>>);

/// A cache is not part of a configuration's identity.
impl PartialEq for StampCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for StampCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StampCache")
    }
}

/// The provenance stamp of a result (issue: governance).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    pub engine: String,
    pub engine_version: String,
    pub knowledge_version: String,
    /// `sha256:` of the canonical text of every effective threshold and switched-off finding.
    pub config_hash: String,
    pub overridden_keys: Vec<String>,
    pub disabled_findings: Vec<String>,
}

/// A coded concept a site maps into a programme value set: `system|code`
/// (e.g. `http://snomed.info/sct|414191008`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct SiteCode {
    pub system: String,
    pub code: String,
}

impl SiteCode {
    /// Parses `system|code`; both parts must be non-empty.
    pub fn parse(text: &str) -> Option<SiteCode> {
        let (system, code) = text.rsplit_once('|')?;
        let (system, code) = (system.trim(), code.trim());
        (!system.is_empty() && !code.is_empty()).then(|| SiteCode {
            system: system.to_string(),
            code: code.to_string(),
        })
    }
}

/// The site-mappable value sets of the programme report (knowledge.md §13):
/// ```toml
/// [programme]
/// falls_risk_codes = ["http://snomed.info/sct|414191008"]   # added to the default
/// exercise_codes = ["http://example.org/local|PHYSIO-STRENGTH"] # none by default
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgrammeCodes {
    /// KPI 5: codes of a falls-risk assessment (Observation / Procedure), in addition to the
    /// default of `programme::FALLS_RISK_DEFAULT`.
    pub falls_risk: Vec<SiteCode>,
    /// KPI 7: codes of a strength-and-balance exercise or physiotherapy referral or procedure
    /// (ServiceRequest / Procedure). Empty by default: KPI 7 is then UNKNOWN.
    pub exercise: Vec<SiteCode>,
}

impl ProgrammeCodes {
    fn from_table(table: &toml::Table) -> Result<ProgrammeCodes, ConfigError> {
        let mut out = ProgrammeCodes::default();
        for (k, v) in table {
            let target = match k.as_str() {
                "falls_risk_codes" => &mut out.falls_risk,
                "exercise_codes" => &mut out.exercise,
                _ => {
                    return Err(ConfigError::UnknownKey {
                        key: format!("programme.{k}"),
                    })
                }
            };
            let wrong = |got: &str| ConfigError::WrongType {
                key: format!("programme.{k}"),
                expected: "a list of \"system|code\" strings",
                got: got.to_string(),
            };
            let list = v.as_array().ok_or_else(|| wrong(v.type_str()))?;
            for item in list {
                let text = item.as_str().ok_or_else(|| wrong(item.type_str()))?;
                target.push(SiteCode::parse(text).ok_or_else(|| wrong(text))?);
            }
            target.sort();
            target.dedup();
        }
        Ok(out)
    }
}

impl Config {
    /// Parses and validates a site configuration. Every problem names its key.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        Self::from_toml_str_allowing(text, &[])
    }

    /// As [`Config::from_toml_str`], skipping the named top-level tables (e.g. `server`,
    /// `screen`), which belong to other components of the same file.
    pub fn from_toml_str_allowing(
        text: &str,
        other_sections: &[&str],
    ) -> Result<Config, ConfigError> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Syntax(e.message().to_string()))?;
        let mut config = Config::default();
        for (group, value) in &table {
            if other_sections.contains(&group.as_str()) {
                continue;
            }
            let Some(inner) = value.as_table() else {
                return Err(ConfigError::UnknownKey { key: group.clone() });
            };
            if group == "programme" {
                config.programme = ProgrammeCodes::from_table(inner)?;
                continue;
            }
            if group == "findings" {
                for (k, v) in inner {
                    if k != "disabled" {
                        return Err(ConfigError::UnknownKey {
                            key: format!("findings.{k}"),
                        });
                    }
                    let list = v.as_array().ok_or_else(|| ConfigError::WrongType {
                        key: "findings.disabled".into(),
                        expected: "a list of finding codes",
                        got: v.type_str().into(),
                    })?;
                    for item in list {
                        let s = item.as_str().ok_or_else(|| ConfigError::WrongType {
                            key: "findings.disabled".into(),
                            expected: "a list of finding codes",
                            got: item.type_str().into(),
                        })?;
                        let code = FindingCode::parse(s)
                            .ok_or_else(|| ConfigError::UnknownFinding { code: s.into() })?;
                        config.disabled_findings.insert(code);
                    }
                }
                continue;
            }
            for (name, v) in inner {
                let key = format!("{group}.{name}");
                config.set(&key, v)?;
            }
        }
        config.overridden.sort();
        config.overridden.dedup();
        Ok(config)
    }

    fn set(&mut self, key: &str, v: &toml::Value) -> Result<(), ConfigError> {
        let spec = TABLE
            .iter()
            .find(|s| s.key == key)
            .ok_or_else(|| ConfigError::UnknownKey { key: key.into() })?;
        if !spec.configurable {
            return Err(ConfigError::NotConfigurable {
                key: key.into(),
                section: spec.section.into(),
            });
        }
        let is_days = Thresholds::is_days(key).unwrap_or(false);
        let value = match (v, is_days) {
            (toml::Value::Integer(i), true) => ThresholdValue::Days(*i),
            (toml::Value::Integer(i), false) => ThresholdValue::Number(*i as f64),
            (toml::Value::Float(f), false) if f.is_finite() => ThresholdValue::Number(*f),
            (other, days) => {
                return Err(ConfigError::WrongType {
                    key: key.into(),
                    expected: if days {
                        "a whole number of days"
                    } else {
                        "a number"
                    },
                    got: format!("{} `{}`", other.type_str(), other),
                })
            }
        };
        let x = value.as_f64();
        if x < spec.min || x > spec.max {
            return Err(ConfigError::OutOfRange {
                key: key.into(),
                value: value.to_string(),
                min: spec.min,
                max: spec.max,
                unit: spec.unit,
            });
        }
        self.thresholds.set_unchecked(key, value);
        if value != spec.default {
            self.overridden.push(key.to_string());
        }
        Ok(())
    }

    /// The canonical text the provenance hash is computed from: one `key=value` line per
    /// threshold in table order, then the disabled findings. Independent of platform and of
    /// the order of the TOML file.
    pub fn canonical_text(&self) -> String {
        let mut s = String::new();
        for spec in TABLE {
            if let Some(v) = self.thresholds.get(spec.key) {
                s.push_str(spec.key);
                s.push('=');
                s.push_str(&v.to_string());
                s.push('\n');
            }
        }
        for code in &self.disabled_findings {
            s.push_str("disabled=");
            s.push_str(code.as_str());
            s.push('\n');
        }
        s
    }

    pub fn provenance(&self) -> Provenance {
        let cached = self.stamp.0.get_or_init(|| {
            Box::new((
                self.thresholds.clone(),
                self.disabled_findings.clone(),
                self.overridden.clone(),
                self.compute_provenance(),
            ))
        });
        let (t, d, o, p) = &**cached;
        if *t == self.thresholds && *d == self.disabled_findings && *o == self.overridden {
            p.clone()
        } else {
            self.compute_provenance()
        }
    }

    fn compute_provenance(&self) -> Provenance {
        let digest = Sha256::digest(self.canonical_text().as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        Provenance {
            engine: "osteoguard".into(),
            engine_version: env!("CARGO_PKG_VERSION").into(),
            knowledge_version: crate::thresholds::KNOWLEDGE_VERSION.into(),
            config_hash: format!("sha256:{hex}"),
            overridden_keys: self.overridden.clone(),
            disabled_findings: self
                .disabled_findings
                .iter()
                .map(|c| c.as_str().to_string())
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_is_applied_and_listed() {
        let c = Config::from_toml_str("[denosumab]\ngrace_end_days = 240\n").unwrap();
        assert_eq!(c.thresholds.dmab_grace_end_days, 240);
        assert_eq!(c.overridden, vec!["denosumab.grace_end_days".to_string()]);
        assert_ne!(
            c.provenance().config_hash,
            Config::default().provenance().config_hash
        );
    }

    #[test]
    fn a_setting_changed_after_stamping_changes_the_stamp() {
        let mut c = Config::default();
        let before = c.provenance();
        assert_eq!(before, c.provenance());
        c.thresholds.dmab_grace_end_days += 1;
        let after = c.provenance();
        assert_ne!(before.config_hash, after.config_hash);
        assert_eq!(after, c.clone().provenance());
        let mut fresh = Config::default();
        fresh.thresholds.dmab_grace_end_days += 1;
        assert_eq!(after, fresh.provenance());
    }

    #[test]
    fn unknown_key_is_refused_by_name() {
        let e = Config::from_toml_str("[denosumab]\ngrace_days = 240\n").unwrap_err();
        assert_eq!(
            e,
            ConfigError::UnknownKey {
                key: "denosumab.grace_days".into()
            }
        );
    }

    #[test]
    fn wrong_type_and_out_of_range_are_refused() {
        let e = Config::from_toml_str("[denosumab]\ngrace_end_days = \"soon\"\n").unwrap_err();
        assert!(
            matches!(e, ConfigError::WrongType { ref key, .. } if key == "denosumab.grace_end_days")
        );
        let e = Config::from_toml_str("[denosumab]\ngrace_end_days = 1000\n").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("denosumab.grace_end_days") && msg.contains("182") && msg.contains("294"),
            "{msg}"
        );
    }

    #[test]
    fn guideline_thresholds_are_not_configurable() {
        let e = Config::from_toml_str("[risk]\nt_score_high = -2.0\n").unwrap_err();
        assert!(matches!(e, ConfigError::NotConfigurable { .. }));
    }

    #[test]
    fn programme_codes_are_read_and_checked() {
        let c = Config::from_toml_str(
            "[programme]\nfalls_risk_codes = [\"http://example.org/x|F1\"]\nexercise_codes = [\"http://example.org/x|E1\", \"http://example.org/x|E2\"]",
        )
        .expect("valid");
        assert_eq!(c.programme.falls_risk.len(), 1);
        assert_eq!(c.programme.exercise[1].code, "E2");
        // The programme value sets do not change the provenance hash of assessments.
        assert_eq!(
            c.provenance().config_hash,
            Config::default().provenance().config_hash
        );
        assert!(matches!(
            Config::from_toml_str("[programme]\nexercise_codes = [\"no-bar\"]"),
            Err(ConfigError::WrongType { .. })
        ));
        assert!(matches!(
            Config::from_toml_str("[programme]\nother = []"),
            Err(ConfigError::UnknownKey { .. })
        ));
    }

    #[test]
    fn default_hash_is_stable() {
        // The hash depends only on the table; recomputing gives the same value.
        assert_eq!(
            Config::default().provenance().config_hash,
            Config::default().provenance().config_hash
        );
        let same = Config::from_toml_str("[denosumab]\ngrace_end_days = 210\n").unwrap();
        assert_eq!(
            same.provenance().config_hash,
            Config::default().provenance().config_hash
        );
        assert!(same.overridden.is_empty());
    }
}
