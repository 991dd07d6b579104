//! Prometheus text metrics of one `fapiao serve` process: runs by outcome, durations, rows
//! moved, schedule lag.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use crate::ledger::Outcome;

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    runs: BTreeMap<(String, String), u64>,
    seconds: BTreeMap<String, (f64, u64)>,
    rows: BTreeMap<(String, &'static str), i64>,
    lag: BTreeMap<String, f64>,
}

impl Metrics {
    pub fn record(&self, job: &str, state: &str, elapsed: Duration, lag: Duration, outcome: &Outcome) {
        let mut m = self.inner.lock().expect("metrics lock");
        *m.runs.entry((job.into(), state.into())).or_default() += 1;
        let d = m.seconds.entry(job.into()).or_default();
        d.0 += elapsed.as_secs_f64();
        d.1 += 1;
        for (kind, n) in [
            ("read", outcome.rows_read),
            ("written", outcome.rows_written),
            ("rejected", outcome.rows_rejected),
        ] {
            *m.rows.entry((job.into(), kind)).or_default() += n;
        }
        m.lag.insert(job.into(), lag.as_secs_f64());
    }

    pub fn render(&self) -> String {
        let m = self.inner.lock().expect("metrics lock");
        let mut out = String::new();
        out.push_str("# HELP fapiao_job_runs_total Finished runs by job and outcome.\n# TYPE fapiao_job_runs_total counter\n");
        for ((job, state), n) in &m.runs {
            let _ = writeln!(out, "fapiao_job_runs_total{{job=\"{job}\",state=\"{state}\"}} {n}");
        }
        out.push_str("# HELP fapiao_job_run_seconds Run durations.\n# TYPE fapiao_job_run_seconds summary\n");
        for (job, (sum, count)) in &m.seconds {
            let _ = writeln!(out, "fapiao_job_run_seconds_sum{{job=\"{job}\"}} {sum}");
            let _ = writeln!(out, "fapiao_job_run_seconds_count{{job=\"{job}\"}} {count}");
        }
        out.push_str("# HELP fapiao_job_rows_total Rows read, written and rejected by job.\n# TYPE fapiao_job_rows_total counter\n");
        for ((job, kind), n) in &m.rows {
            let _ = writeln!(out, "fapiao_job_rows_total{{job=\"{job}\",kind=\"{kind}\"}} {n}");
        }
        out.push_str("# HELP fapiao_job_schedule_lag_seconds Delay between a run's tick and its start, last run.\n# TYPE fapiao_job_schedule_lag_seconds gauge\n");
        for (job, lag) in &m.lag {
            let _ = writeln!(out, "fapiao_job_schedule_lag_seconds{{job=\"{job}\"}} {lag}");
        }
        out
    }
}
