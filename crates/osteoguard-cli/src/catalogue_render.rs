//! Renders the rule catalogue (pending: wired once every rule module exports its citation).

use osteoguard_core::Config;

pub fn text(config: &Config) -> String {
    let _ = config;
    String::from("rule catalogue pending\n")
}

pub fn json(config: &Config) -> anyhow::Result<String> {
    Ok(text(config))
}

pub fn markdown(config: &Config) -> String {
    text(config)
}
