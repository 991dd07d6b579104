//! Cron schedules in a time zone, and what to do about ticks missed while nobody ran.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("schedule {expr:?} of {job}: {detail}")]
    Cron { job: String, expr: String, detail: String },
    #[error("misfire policy {0:?}: expected skip, run_once or catch_up:N")]
    Misfire(String),
}

/// A cron expression with seconds, evaluated in `tz`.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub expr: String,
    pub tz: Tz,
    cron: Cron,
}

impl Schedule {
    pub fn parse(job: &str, expr: &str, tz: Tz) -> Result<Schedule, ScheduleError> {
        let cron = parser().parse(expr).map_err(|e| ScheduleError::Cron {
            job: job.into(),
            expr: expr.into(),
            detail: e.to_string(),
        })?;
        Ok(Schedule { expr: expr.into(), tz, cron })
    }

    /// The latest tick at or before `now`.
    pub fn tick_at_or_before(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_previous_occurrence(&now.with_timezone(&self.tz), true)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(&t.with_timezone(&self.tz), false).ok().map(|t| t.with_timezone(&Utc))
    }

    /// Ticks strictly after `after` and strictly before `before`, at most `limit` of the latest.
    pub fn ticks_between(
        &self,
        after: DateTime<Utc>,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut ticks = Vec::new();
        let mut t = after;
        while let Some(next) = self.next_after(t) {
            if next >= before {
                break;
            }
            ticks.push(next);
            if ticks.len() > limit {
                ticks.remove(0);
            }
            t = next;
        }
        ticks
    }
}

fn parser() -> CronParser {
    CronParser::builder().seconds(Seconds::Required).dom_and_dow(true).build()
}

/// What to do with ticks missed while no process was running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Misfire {
    /// Record them as missed; run none.
    Skip,
    /// Record them as missed, but run the latest once.
    RunOnce,
    /// Run the latest `n`; record the older ones as missed.
    CatchUp(usize),
}

impl Misfire {
    pub fn parse(text: &str) -> Result<Misfire, ScheduleError> {
        match text.trim() {
            "skip" => Ok(Misfire::Skip),
            "run_once" => Ok(Misfire::RunOnce),
            other => other
                .strip_prefix("catch_up:")
                .and_then(|n| n.trim().parse().ok())
                .filter(|n| *n > 0)
                .map(Misfire::CatchUp)
                .ok_or_else(|| ScheduleError::Misfire(text.into())),
        }
    }

    /// How many of the latest missed ticks are run.
    pub fn runs(self) -> usize {
        match self {
            Misfire::Skip => 0,
            Misfire::RunOnce => 1,
            Misfire::CatchUp(n) => n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn schedules_fire_in_their_time_zone() {
        let s = Schedule::parse("apply-cache", "0 0 1,13 * * *", chrono_tz::Asia::Shanghai).unwrap();
        // 01:00 in Shanghai is 17:00 UTC the day before.
        assert_eq!(s.tick_at_or_before(utc("2026-11-20T18:00:00Z")), Some(utc("2026-11-20T17:00:00Z")));
        assert_eq!(s.next_after(utc("2026-11-20T17:00:00Z")), Some(utc("2026-11-21T05:00:00Z")));
        let t = Schedule::parse("x", "0 0 1,13 * * *", chrono_tz::UTC).unwrap();
        assert_eq!(
            t.tick_at_or_before(utc("2026-11-20T18:00:00Z")),
            Some(chrono::Utc.with_ymd_and_hms(2026, 11, 20, 13, 0, 0).unwrap())
        );
    }

    #[test]
    fn missed_ticks_are_bounded_to_the_latest() {
        let s = Schedule::parse("fetch", "0 */10 * * * *", chrono_tz::UTC).unwrap();
        let all = s.ticks_between(utc("2026-11-20T00:00:00Z"), utc("2026-11-20T01:00:00Z"), 100);
        assert_eq!(all.len(), 5, "00:10 … 00:50");
        let last2 = s.ticks_between(utc("2026-11-20T00:00:00Z"), utc("2026-11-20T01:00:00Z"), 2);
        assert_eq!(last2, vec![utc("2026-11-20T00:40:00Z"), utc("2026-11-20T00:50:00Z")]);
    }

    #[test]
    fn bad_expressions_and_policies_are_refused() {
        assert!(Schedule::parse("x", "every minute", chrono_tz::UTC).is_err());
        assert_eq!(Misfire::parse("catch_up:3").unwrap(), Misfire::CatchUp(3));
        assert!(Misfire::parse("catch_up:0").is_err());
        assert!(Misfire::parse("sometimes").is_err());
    }
}
