//! How values read on the pages: times in `general.time_zone`, states and schedules in Chinese.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

pub fn time(t: &DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string()
}

pub fn opt_time(t: Option<&DateTime<Utc>>, tz: Tz) -> String {
    t.map(|t| time(t, tz)).unwrap_or_else(|| "—".into())
}

/// A run state in Chinese.
pub fn run_state(state: &str) -> &'static str {
    match state {
        "due" => "排队中",
        "running" => "运行中",
        "succeeded" => "成功",
        "failed" => "失败",
        "skipped" => "跳过",
        "missed" => "错过",
        _ => "未知",
    }
}

pub fn trigger(trigger: &str) -> &'static str {
    match trigger {
        "schedule" => "定时",
        "manual" => "手动",
        _ => "未知",
    }
}

pub fn pending_status(status: &str) -> &'static str {
    match status {
        "not_issued" => "未开票",
        "submitted" => "已提交",
        "issuing" => "开票中",
        "failed" => "开票失败",
        "succeeded" => "开票成功",
        _ => "未知",
    }
}

pub fn outcome(outcome: &str) -> &'static str {
    match outcome {
        "ok" => "成功",
        "refused" => "拒绝",
        "failed" => "失败",
        _ => "未知",
    }
}

fn step(field: &str) -> Option<(u32, u32)> {
    let (start, every) = field.split_once('/')?;
    let start = if start == "*" { 0 } else { start.parse().ok()? };
    Some((start, every.parse().ok()?))
}

fn numbers(field: &str) -> Option<Vec<u32>> {
    field.split(',').map(|n| n.parse().ok()).collect()
}

/// A six-field cron expression (seconds first) in words, for the common shapes; the expression
/// itself otherwise.
pub fn cron_words(expr: &str) -> String {
    let f: Vec<&str> = expr.split_whitespace().collect();
    let [sec, min, hour, dom, mon, dow] = f[..] else {
        return expr.to_string();
    };
    if (dom, mon, dow) != ("*", "*", "*") {
        return expr.to_string();
    }
    let at_sec = |s: &str| if s == "0" { String::new() } else { format!("第{s}秒") };
    match (sec, min, hour) {
        ("*", "*", "*") => "每秒".into(),
        (s, "*", "*") if step(s).is_some() => format!("每{}秒", step(s).unwrap_or_default().1),
        (s, "*", "*") => format!("每分钟{}", at_sec(s)),
        (s, m, "*") if step(m).is_some() => {
            let (start, every) = step(m).unwrap_or_default();
            let from = if start == 0 { String::new() } else { format!("（自第{start}分起）") };
            format!("每{every}分钟{from}{}", at_sec(s))
        }
        ("0", "0", "*") => "每小时整点".into(),
        (s, m, "*") if numbers(m).is_some() => format!("每小时第{m}分{}", at_sec(s)),
        (s, m, h) => match (numbers(s), numbers(m), numbers(h)) {
            (Some(s), Some(m), Some(h)) if s.len() == 1 && m.len() == 1 => {
                let times: Vec<String> =
                    h.iter().map(|h| format!("{h:02}:{:02}:{:02}", m[0], s[0])).collect();
                format!("每天 {}", times.join("、"))
            }
            _ => expr.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedules_read_in_words() {
        assert_eq!(cron_words("0 0 1,13 * * *"), "每天 01:00:00、13:00:00");
        assert_eq!(cron_words("0 0 * * * *"), "每小时整点");
        assert_eq!(cron_words("0 */10 * * * *"), "每10分钟");
        assert_eq!(cron_words("0 5/10 * * * *"), "每10分钟（自第5分起）");
        assert_eq!(cron_words("30 */2 * * * *"), "每2分钟第30秒");
        assert_eq!(cron_words("* * * * * *"), "每秒");
        assert_eq!(cron_words("0 0 2 1 * *"), "0 0 2 1 * *");
    }
}
