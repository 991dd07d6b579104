//! Every way a channel call can fail, and the one function that says what happens next.

use std::time::Duration;

use crate::codec::CodecError;
use crate::codes::{self, error as code};

/// What the caller should do about a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Transient: the same call may be made again.
    Retry,
    /// Transient, but not before this long.
    RetryAfter(Duration),
    /// Will fail the same way every time (permission expired, duplicate serial, bad state).
    NeverRetry,
    /// The request itself is wrong; fix the input.
    BadInput,
    /// The request was sent and its answer lost: the work may or may not have been done.
    /// Never re-send a non-idempotent call; settle it by a query.
    UnknownOutcome,
}

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The request never left (connection refused, DNS): nothing happened on the other side.
    #[error("{op}: could not send: {detail}")]
    NotSent { op: String, detail: String },
    /// The request left and no usable answer came back (timeout, connection dropped mid-answer).
    #[error("{op}: answer lost: {detail}")]
    AnswerLost { op: String, detail: String },
    #[error("{op}: HTTP {status}")]
    Http { op: String, status: u16, retry_after: Option<Duration> },
    /// The channel answered `success = false`.
    #[error("{op}: error {code}: {message}")]
    Api { op: String, code: String, message: String },
    #[error("token: credentials rejected: {0}")]
    Credentials(String),
    #[error("{op}: {source}")]
    Codec { op: String, source: CodecError },
    /// The answer arrived but does not have the documented shape.
    #[error("{op}: unexpected answer: {detail}")]
    Decode { op: String, detail: String },
}

impl ChannelError {
    /// The single place that decides retry / retry-after / never / bad input / unknown outcome.
    pub fn disposition(&self) -> Disposition {
        match self {
            ChannelError::NotSent { .. } => Disposition::Retry,
            ChannelError::AnswerLost { .. } | ChannelError::Decode { .. } => Disposition::UnknownOutcome,
            ChannelError::Http { status: 429, retry_after, .. } => {
                Disposition::RetryAfter(retry_after.unwrap_or(Duration::from_secs(1)))
            }
            ChannelError::Http { status, .. } if *status >= 500 => Disposition::Retry,
            ChannelError::Http { .. } => Disposition::BadInput,
            ChannelError::Credentials(_) => Disposition::NeverRetry,
            ChannelError::Codec { .. } => Disposition::NeverRetry,
            ChannelError::Api { code: c, message, .. } => match c.as_str() {
                code::TOKEN_INVALID | code::INTERNAL | code::BUREAU_UNSTABLE | code::ACCOUNT_LOGGED_OUT => {
                    Disposition::Retry
                }
                code::BUSY => Disposition::RetryAfter(Duration::from_secs(1)),
                code::BAD_REQUEST
                | code::NOT_FOUND
                | code::SMALL_SCALE_NO_DEDUCTION
                | code::NO_PRESELECT_PERMISSION => Disposition::BadInput,
                code::DUPLICATE_SERIAL | code::STATE_CONFLICT | code::VERIFY_PERMISSION_EXPIRED => {
                    Disposition::NeverRetry
                }
                _ => match codes::retry_not_before(message) {
                    Some(at) => {
                        Disposition::RetryAfter((at - chrono::Utc::now()).to_std().unwrap_or_default())
                    }
                    None => Disposition::NeverRetry,
                },
            },
        }
    }

    /// A fault of the moment (token, 5xx, busy, the bureau unstable or under repair, a dropped
    /// answer): it says nothing about the request itself, so it never counts as an attempt of
    /// the row being worked on — the row is simply tried again later.
    pub fn is_transient(&self) -> bool {
        matches!(self, ChannelError::AnswerLost { .. })
            || matches!(self.disposition(), Disposition::Retry | Disposition::RetryAfter(_))
    }

    /// The channel's error code, when it answered with one.
    pub fn api_code(&self) -> Option<&str> {
        match self {
            ChannelError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(c: &str, message: &str) -> ChannelError {
        ChannelError::Api { op: "x".into(), code: c.into(), message: message.into() }
    }

    #[test]
    fn every_kind_of_failure_is_classified() {
        use Disposition::*;
        assert_eq!(ChannelError::NotSent { op: "x".into(), detail: String::new() }.disposition(), Retry);
        assert_eq!(
            ChannelError::AnswerLost { op: "x".into(), detail: String::new() }.disposition(),
            UnknownOutcome
        );
        assert_eq!(
            ChannelError::Http { op: "x".into(), status: 503, retry_after: None }.disposition(),
            Retry
        );
        assert_eq!(
            ChannelError::Http { op: "x".into(), status: 429, retry_after: Some(Duration::from_secs(7)) }
                .disposition(),
            RetryAfter(Duration::from_secs(7))
        );
        assert_eq!(
            ChannelError::Http { op: "x".into(), status: 404, retry_after: None }.disposition(),
            BadInput
        );
        assert_eq!(api("10127", "流水号重复").disposition(), NeverRetry);
        assert_eq!(api("9603", "该应用查验权限过期").disposition(), NeverRetry);
        assert_eq!(api("9602", "地方税局网络不稳定，请稍后再试").disposition(), Retry);
        assert_eq!(api("9604", "请核对用户信息或重新调用登录接口").disposition(), Retry);
        assert_eq!(api("9400", "bad").disposition(), BadInput);
        assert_eq!(ChannelError::Credentials("no".into()).disposition(), NeverRetry);
    }

    #[test]
    fn a_repair_time_in_the_future_means_retry_after() {
        let later =
            (chrono::Utc::now() + chrono::Duration::hours(2)).with_timezone(&chrono_tz::Asia::Shanghai);
        let msg = format!("局端内部错误，该开票请求修复中，请{}后再试！", later.format("%Y-%m-%d %H:%M"));
        match api("9999", &msg).disposition() {
            Disposition::RetryAfter(d) => {
                assert!(d > Duration::from_secs(3600) && d <= Duration::from_secs(7200))
            }
            other => panic!("{other:?}"),
        }
    }
}
