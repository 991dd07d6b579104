//! Scheduling vocabulary read from configuration: cron expressions (with seconds) and what to do
//! about ticks missed while nobody ran. Both are checked when the configuration is loaded, so a
//! typo stops the process at start instead of at the first tick.

use std::fmt;
use std::str::FromStr;

use croner::Cron;
use croner::parser::{CronParser, Seconds};
use serde::{Deserialize, Serialize};

/// A cron expression with seconds (`sec min hour day-of-month month day-of-week`); day-of-month
/// and day-of-week must both match when both are given.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CronExpr {
    text: String,
    cron: Cron,
}

impl CronExpr {
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn cron(&self) -> &Cron {
        &self.cron
    }
}

impl FromStr for CronExpr {
    type Err = String;

    fn from_str(text: &str) -> Result<CronExpr, String> {
        let parser = CronParser::builder().seconds(Seconds::Required).dom_and_dow(true).build();
        let cron =
            parser.parse(text).map_err(|e| format!("{text:?} is not a cron expression with seconds: {e}"))?;
        Ok(CronExpr { text: text.into(), cron })
    }
}

impl TryFrom<String> for CronExpr {
    type Error = String;

    fn try_from(text: String) -> Result<CronExpr, String> {
        text.parse()
    }
}

impl From<CronExpr> for String {
    fn from(c: CronExpr) -> String {
        c.text
    }
}

impl fmt::Display for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// What to do with ticks missed while no process was running.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Misfire {
    /// Record them as missed; run none.
    Skip,
    /// Record them as missed, but run the latest once.
    RunOnce,
    /// Run the latest `n`; record the older ones as missed.
    CatchUp(usize),
}

impl Misfire {
    /// How many of the latest missed ticks are run.
    pub fn runs(self) -> usize {
        match self {
            Misfire::Skip => 0,
            Misfire::RunOnce => 1,
            Misfire::CatchUp(n) => n,
        }
    }
}

impl FromStr for Misfire {
    type Err = String;

    fn from_str(text: &str) -> Result<Misfire, String> {
        match text.trim() {
            "skip" => Ok(Misfire::Skip),
            "run_once" => Ok(Misfire::RunOnce),
            other => other
                .strip_prefix("catch_up:")
                .and_then(|n| n.trim().parse().ok())
                .filter(|n| *n > 0)
                .map(Misfire::CatchUp)
                .ok_or_else(|| format!("misfire policy {text:?}: expected skip, run_once or catch_up:N")),
        }
    }
}

impl TryFrom<String> for Misfire {
    type Error = String;

    fn try_from(text: String) -> Result<Misfire, String> {
        text.parse()
    }
}

impl From<Misfire> for String {
    fn from(m: Misfire) -> String {
        m.to_string()
    }
}

impl fmt::Display for Misfire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Misfire::Skip => f.write_str("skip"),
            Misfire::RunOnce => f.write_str("run_once"),
            Misfire::CatchUp(n) => write!(f, "catch_up:{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misfire_policies_parse_and_print_back() {
        for text in ["skip", "run_once", "catch_up:3"] {
            assert_eq!(text.parse::<Misfire>().unwrap().to_string(), text);
        }
        assert_eq!("catch_up:3".parse::<Misfire>().unwrap(), Misfire::CatchUp(3));
        for bad in ["catch_up:0", "sometimes", "catch_up:x"] {
            assert!(bad.parse::<Misfire>().is_err(), "{bad}");
        }
    }

    #[test]
    fn cron_expressions_need_seconds() {
        assert_eq!("0 0 1,13 * * *".parse::<CronExpr>().unwrap().as_str(), "0 0 1,13 * * *");
        assert!("0 1,13 * * *".parse::<CronExpr>().is_err(), "five fields: no seconds");
        assert!("every day".parse::<CronExpr>().is_err());
    }
}
