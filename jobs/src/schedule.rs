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

    /// The latest tick at or before `now`: the schedule's nominal instant, in whole seconds, so
    /// that every process computes the same value whatever its clock read when its timer fired.
    pub fn tick_at_or_before(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.expr
            .cron()
            .find_previous_occurrence(&whole_second(now).with_timezone(&self.tz), true)
            .ok()
            .map(|t| whole_second(t.with_timezone(&Utc)))
    }

    /// The tick a timer firing at `fired` stands for: the nearest one at or before it, allowing
    /// for a timer that fires up to half a second early.
    pub fn tick_fired_at(&self, fired: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.tick_at_or_before(fired + chrono::Duration::milliseconds(500))
    }

    /// The first tick strictly after `t` (nominal, whole seconds).
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.expr
            .cron()
            .find_next_occurrence(&whole_second(t).with_timezone(&self.tz), false)
            .ok()
            .map(|t| whole_second(t.with_timezone(&Utc)))
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

/// `t` without its fraction of a second. Cron ticks are whole seconds; the search functions
/// otherwise carry the fraction of the instant they start from into the tick they return.
fn whole_second<T: chrono::Timelike>(t: T) -> T {
    t.with_nanosecond(0).expect("0 ns is valid")
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
    fn ticks_are_nominal_whole_seconds_whatever_the_clock_read() {
        let s = Schedule::new("*/2 * * * * *".parse().unwrap(), chrono_tz::Asia::Shanghai);
        let tick = utc("2026-11-20T18:20:00Z");
        for fired in ["2026-11-20T18:20:00.479665Z", "2026-11-20T18:20:00.486314Z", "2026-11-20T18:20:00.2Z"]
        {
            assert_eq!(s.tick_fired_at(utc(fired)), Some(tick), "{fired}");
            assert_eq!(s.tick_at_or_before(utc(fired)), Some(tick), "{fired}");
        }
        assert_eq!(s.tick_at_or_before(utc("2026-11-20T18:20:01.9Z")), Some(tick));
        // A timer a little early still stands for the tick it was set for.
        assert_eq!(s.tick_fired_at(utc("2026-11-20T18:19:59.8Z")), Some(tick));
        assert_eq!(s.next_after(utc("2026-11-20T18:19:58.123Z")), Some(tick));
        let missed = s.ticks_between(utc("2026-11-20T18:19:55.5Z"), utc("2026-11-20T18:20:01.5Z"), 10);
        assert_eq!(missed, vec![utc("2026-11-20T18:19:56Z"), utc("2026-11-20T18:19:58Z"), tick]);
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
