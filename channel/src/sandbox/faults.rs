//! Faults the sandbox injects, per run and per operation, at given rates.
//!
//! Spec: comma-separated `kind[@INTERFACE.CODE]=value`, e.g.
//! `latency=20ms,http5xx=0.3,drop@ALLE.INVOICE.OPEN=0.1,unstable@RIM.INVOICE.VERIFY=0.5`.
//! Kinds: `latency` (a duration: `20ms`, `1s`), and rates in [0, 1]:
//! `http5xx` (503 before any work), `drop` (the work is done, the answer is cut off),
//! `expire` (the caller's token is expired on the spot), `logout` (download apply: the e-tax
//! account is logged out), `repairing` (issuing fails with 局端内部错误，该开票请求修复中，请<time>后再试！),
//! `unstable` (地方税局网络不稳定，请稍后再试), `verify_expired` (该应用查验权限过期).

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Http5xx,
    Drop,
    Expire,
    Logout,
    Repairing,
    Unstable,
    VerifyExpired,
}

impl Fault {
    fn parse(name: &str) -> Option<Fault> {
        Some(match name {
            "http5xx" => Fault::Http5xx,
            "drop" => Fault::Drop,
            "expire" => Fault::Expire,
            "logout" => Fault::Logout,
            "repairing" => Fault::Repairing,
            "unstable" => Fault::Unstable,
            "verify_expired" => Fault::VerifyExpired,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, Default)]
pub struct FaultPlan {
    latency: Vec<(Option<String>, Duration)>,
    rates: Vec<(Fault, Option<String>, f64)>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("fault spec {0:?}: {1}")]
pub struct FaultSpecError(pub String, pub &'static str);

impl FaultPlan {
    pub fn none() -> FaultPlan {
        FaultPlan::default()
    }

    pub fn parse(spec: &str) -> Result<FaultPlan, FaultSpecError> {
        let mut plan = FaultPlan::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let err = |why| FaultSpecError(part.to_string(), why);
            let (lhs, value) = part.split_once('=').ok_or_else(|| err("expected kind=value"))?;
            let (kind, op) = match lhs.split_once('@') {
                Some((k, op)) => (k.trim(), Some(op.trim().to_string())),
                None => (lhs.trim(), None),
            };
            if kind == "latency" {
                plan.latency.push((
                    op,
                    parse_duration(value.trim()).ok_or_else(|| err("latency wants e.g. 20ms or 1s"))?,
                ));
                continue;
            }
            let fault = Fault::parse(kind).ok_or_else(|| err("unknown fault kind"))?;
            // A probability of the fault striking, not money: f64 is what the dice take.
            let probability: f64 =
                value.trim().parse().map_err(|_| err("rate must be a number in [0, 1]"))?;
            if !(0.0..=1.0).contains(&probability) {
                return Err(err("rate must be a number in [0, 1]"));
            }
            plan.rates.push((fault, op, probability));
        }
        Ok(plan)
    }

    /// Latency for one call of `op`: the most specific rule wins.
    pub fn latency(&self, op: &str) -> Duration {
        let specific = self.latency.iter().find(|(o, _)| o.as_deref() == Some(op));
        specific
            .or_else(|| self.latency.iter().find(|(o, _)| o.is_none()))
            .map(|(_, d)| *d)
            .unwrap_or_default()
    }

    fn rate(&self, fault: Fault, op: &str) -> f64 {
        let specific = self.rates.iter().find(|(f, o, _)| *f == fault && o.as_deref() == Some(op));
        let general = self.rates.iter().find(|(f, o, _)| *f == fault && o.is_none());
        specific.or(general).map(|(_, _, r)| *r).unwrap_or(0.0)
    }
}

/// The plan plus the seeded random source that decides each roll.
pub struct Dice {
    plan: FaultPlan,
    rng: ChaCha8Rng,
}

impl Dice {
    pub fn new(plan: FaultPlan, seed: u64) -> Dice {
        Dice { plan, rng: ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_fa17) }
    }
    pub fn plan(&self) -> &FaultPlan {
        &self.plan
    }
    pub fn set_plan(&mut self, plan: FaultPlan) {
        self.plan = plan;
    }
    /// Whether `fault` strikes this call of `op`.
    pub fn roll(&mut self, fault: Fault, op: &str) -> bool {
        let rate = self.plan.rate(fault, op);
        rate > 0.0 && self.rng.random_bool(rate)
    }
}

fn parse_duration(text: &str) -> Option<Duration> {
    if let Some(ms) = text.strip_suffix("ms") {
        return ms.trim().parse().ok().map(Duration::from_millis);
    }
    text.strip_suffix('s')?.trim().parse::<f64>().ok().filter(|s| *s >= 0.0).map(Duration::from_secs_f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_with_per_operation_overrides() {
        let plan = FaultPlan::parse(
            "latency=20ms, http5xx=0.3, http5xx@ALLE.INVOICE.QUERY=0, latency@RIM.DOWNLOAD.FETCH=1s",
        )
        .unwrap();
        assert_eq!(plan.latency("ALLE.INVOICE.OPEN"), Duration::from_millis(20));
        assert_eq!(plan.latency("RIM.DOWNLOAD.FETCH"), Duration::from_secs(1));
        assert_eq!(plan.rate(Fault::Http5xx, "ALLE.INVOICE.OPEN"), 0.3);
        assert_eq!(plan.rate(Fault::Http5xx, "ALLE.INVOICE.QUERY"), 0.0);
        assert_eq!(plan.rate(Fault::Drop, "ALLE.INVOICE.OPEN"), 0.0);
    }

    #[test]
    fn bad_specs_are_refused() {
        assert!(FaultPlan::parse("http5xx").is_err());
        assert!(FaultPlan::parse("http5xx=1.5").is_err());
        assert!(FaultPlan::parse("meteor=0.1").is_err());
        assert!(FaultPlan::parse("latency=fast").is_err());
    }

    #[test]
    fn rolls_follow_the_rate() {
        let mut dice = Dice::new(FaultPlan::parse("drop=0.3").unwrap(), 7);
        let hits = (0..10_000).filter(|_| dice.roll(Fault::Drop, "X")).count();
        assert!((2_700..3_300).contains(&hits), "{hits}");
        let mut never = Dice::new(FaultPlan::none(), 7);
        assert!(!(0..1000).any(|_| never.roll(Fault::Drop, "X")));
    }
}
