//! Cron schedules in a time zone, and what to do about ticks missed while nobody ran.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use fapiao_schemas::schedule::CronExpr;

pub use fapiao_schemas::schedule::Misfire;

/// A cron expression with seconds (checked when the configuration loaded), evaluated in `tz`.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub expr: CronExpr,
    pub tz: Tz,
}

impl Schedule {
    pub fn new(expr: CronExpr, tz: Tz) -> Schedule {
        Schedule { expr, tz }
    }

    /// The latest tick at or before `now`.
    pub fn tick_at_or_before(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.expr
            .cron()
            .find_previous_occurrence(&now.with_timezone(&self.tz), true)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.expr
            .cron()
            .find_next_occurrence(&t.with_timezone(&self.tz), false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn schedules_fire_in_their_time_zone() {
        let s = Schedule::new("0 0 1,13 * * *".parse().unwrap(), chrono_tz::Asia::Shanghai);
        // 01:00 in Shanghai is 17:00 UTC the day before.
        assert_eq!(s.tick_at_or_before(utc("2026-11-20T18:00:00Z")), Some(utc("2026-11-20T17:00:00Z")));
        assert_eq!(s.next_after(utc("2026-11-20T17:00:00Z")), Some(utc("2026-11-21T05:00:00Z")));
        let t = Schedule::new("0 0 1,13 * * *".parse().unwrap(), chrono_tz::UTC);
        assert_eq!(
            t.tick_at_or_before(utc("2026-11-20T18:00:00Z")),
            Some(chrono::Utc.with_ymd_and_hms(2026, 11, 20, 13, 0, 0).unwrap())
        );
    }

    #[test]
    fn missed_ticks_are_bounded_to_the_latest() {
        let s = Schedule::new("0 */10 * * * *".parse().unwrap(), chrono_tz::UTC);
        let all = s.ticks_between(utc("2026-11-20T00:00:00Z"), utc("2026-11-20T01:00:00Z"), 100);
        assert_eq!(all.len(), 5, "00:10 … 00:50");
        let last2 = s.ticks_between(utc("2026-11-20T00:00:00Z"), utc("2026-11-20T01:00:00Z"), 2);
        assert_eq!(last2, vec![utc("2026-11-20T00:40:00Z"), utc("2026-11-20T00:50:00Z")]);
    }
}
