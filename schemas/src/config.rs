//! Configuration: `config/default.toml`, then the file in `FAPIAO_CONFIG`, then
//! `FAPIAO__SECTION__KEY` environment variables. Unknown keys are errors; secrets are a
//! redacting type.

use std::fmt;
use std::path::{Path, PathBuf};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::money::Money;
use crate::schedule::{CronExpr, Misfire};

/// The defaults, compiled in so the binary never runs without them.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");
/// Environment variable naming an override file.
pub const CONFIG_FILE_ENV: &str = "FAPIAO_CONFIG";
/// Prefix of per-key environment overrides.
pub const ENV_PREFIX: &str = "FAPIAO__";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config {origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("unknown config key {key} (from {origin}); see config/default.toml for every key")]
    UnknownKey { key: String, origin: String },
    #[error("config {key}: {message}")]
    Invalid { key: String, message: String },
}

/// A value that must never reach a log or a terminal. `Debug` and `Serialize` print `******`.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "******" })
    }
}
impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if self.0.is_empty() { "" } else { "******" })
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub general: General,
    pub database: DatabaseSettings,
    pub schedules: Schedules,
    pub jobs: JobSettings,
    pub metrics: MetricsSettings,
    pub http: HttpSettings,
    pub api: ApiSettings,
    pub receipt: ReceiptSettings,
    pub channel: ChannelSettings,
    pub invoicing: InvoicingSettings,
    pub callbacks: CallbackSettings,
    pub import: ImportSettings,
    pub limits: Limits,
}

/// What one imported file may hold (decompression bombs, issue 14.3).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ImportSettings {
    /// No part of a zipped workbook (a sheet, the shared strings, …) may inflate beyond this.
    pub max_inflated_mib: u64,
    /// No cell may hold more characters (Excel's own limit is 32,767).
    pub max_cell_chars: u64,
    /// The memory the shared strings table may take when read (it is kept whole).
    pub max_shared_strings_mib: u64,
}

/// The compiled-in defaults of `config/default.toml`.
impl Default for ImportSettings {
    fn default() -> ImportSettings {
        Settings::load_from(None, Vec::new()).expect("the compiled-in defaults load").import
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InvoicingSettings {
    pub merge: bool,
    pub merge_also_by: MergeFields,
    pub issue_concurrency: u32,
    pub settle_poll_ms: u64,
    pub settle_within_secs: u64,
    pub max_reissues: u32,
    pub drawer: String,
}

/// Fields besides seller, buyer and kind that must match for bills to merge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeField {
    BusinessSystem,
    Remark,
    BuyerContact,
}

impl InvoicingSettings {
    pub fn merge_fields(&self) -> &[MergeField] {
        &self.merge_also_by.0
    }
}

/// `merge_also_by`: a comma-separated list of business_system, remark, buyer_contact.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct MergeFields(pub Vec<MergeField>);

impl TryFrom<String> for MergeFields {
    type Error = String;

    fn try_from(text: String) -> Result<MergeFields, String> {
        let fields = text
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(|f| match f {
                "business_system" => Ok(MergeField::BusinessSystem),
                "remark" => Ok(MergeField::Remark),
                "buyer_contact" => Ok(MergeField::BuyerContact),
                other => Err(format!("{other:?} is not one of business_system, remark, buyer_contact")),
            })
            .collect::<Result<_, _>>()?;
        Ok(MergeFields(fields))
    }
}

impl From<MergeFields> for String {
    fn from(m: MergeFields) -> String {
        let names: Vec<&str> =
            m.0.iter()
                .map(|f| match f {
                    MergeField::BusinessSystem => "business_system",
                    MergeField::Remark => "remark",
                    MergeField::BuyerContact => "buyer_contact",
                })
                .collect();
        names.join(",")
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CallbackSettings {
    pub url: String,
    pub max_attempts: u32,
    pub backoff_base_secs: u64,
    pub backoff_max_secs: u64,
    pub timeout_secs: u64,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct General {
    /// IANA time zone of schedules and of "today".
    #[serde(with = "tz_name")]
    pub time_zone: chrono_tz::Tz,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// Empty: DATABASE_URL, else the embedded cluster.
    pub url: Secret,
    pub max_connections: u32,
    pub acquire_timeout_secs: u64,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Schedules {
    pub apply_cache: CronExpr,
    pub download_apply: CronExpr,
    pub fetch: CronExpr,
    pub deal_task: CronExpr,
    pub auto_issue: CronExpr,
    pub auto_reissue: CronExpr,
    pub red_flush_poll: CronExpr,
    pub deduct_poll: CronExpr,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JobSettings {
    pub heartbeat_secs: u64,
    pub lease_secs: u64,
    pub max_attempts: u32,
    pub poll_ms: u64,
    pub apply_cache_misfire: Misfire,
    pub download_apply_misfire: Misfire,
    pub fetch_misfire: Misfire,
    pub deal_task_misfire: Misfire,
    pub auto_issue_misfire: Misfire,
    pub auto_reissue_misfire: Misfire,
    pub red_flush_poll_misfire: Misfire,
    pub deduct_poll_misfire: Misfire,
    pub backfill_chunk_days: u32,
    pub fetch_page_size: u32,
    pub deal_batch_size: u32,
    pub deal_max_attempts: u32,
    pub download_wait_secs: u64,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// Where `fapiao serve` answers GET /metrics; empty in the file: no endpoint.
    #[serde(with = "optional_addr")]
    pub listen: Option<std::net::SocketAddr>,
}

/// The web console of `fapiao serve`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Where `fapiao serve` answers the console; empty in the file: no console (`--http` overrides).
    #[serde(with = "optional_addr")]
    pub listen: Option<std::net::SocketAddr>,
    /// Session cookies carry `Secure` (on behind TLS).
    pub secure_cookies: bool,
    /// A session unused this long ends.
    pub idle_minutes: u32,
    /// A session ends this long after login, used or not.
    pub absolute_hours: u32,
    /// The largest workbook the console accepts for upload (MiB); it streams to disk.
    pub max_upload_mib: u32,
}

/// The inbound ERP API (issue 17), served by `fapiao serve` on the console's listener.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    /// The 数据中心 id an ERP must send as `accountId` (getAppToken.do / login.do).
    pub account_id: String,
    /// Lifetime of an app token (getAppToken.do), seconds.
    pub app_token_secs: u64,
    /// Lifetime of an access token (login.do), seconds (2 h like the invoice cloud's).
    pub access_token_secs: u64,
    /// Largest request body, KiB; a larger one is refused in the envelope (9413).
    pub max_body_kib: u64,
    /// Bills per BILL.PUSH request.
    pub max_bills: u32,
    /// Lines per BILL.PUSH request, all bills together.
    pub max_lines: u32,
    /// Business calls per system per second (a token bucket of `rate_burst`); 0: no limit.
    pub rate_per_sec: u32,
    /// Calls a system may make at once after a quiet spell.
    pub rate_burst: u32,
}

/// The consumer pages of receipt codes (动态小票码开票, issue 20): limits per process.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptSettings {
    /// Requests per minute one link may make (opening and submitting); 0: no limit.
    pub per_link_per_minute: u32,
    /// Requests per minute one client address may make; 0: no limit.
    pub per_address_per_minute: u32,
    /// How long the merchant's order query (GET.ORDER) may take, milliseconds.
    pub order_query_timeout_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DataEncoding {
    Base64,
    Aes,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSettings {
    pub base_url: String,
    pub app_id: String,
    pub app_secret: Secret,
    pub account_id: String,
    pub tenant_id: String,
    pub user: String,
    pub business_system_code: String,
    pub data_encoding: DataEncoding,
    pub encryption_password: Secret,
    pub max_in_flight: u32,
    pub timeout_secs: u64,
}

/// One value per invoice kind; every kind must be given.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PerKind<T> {
    pub digital_special: T,
    pub digital_ordinary: T,
    pub taxctl_special: T,
    pub taxctl_ordinary: T,
    pub taxctl_roll: T,
    pub taxctl_e_ordinary: T,
    pub taxctl_e_special: T,
}

impl<T: Copy> PerKind<T> {
    pub fn get(&self, kind: crate::InvoiceKind) -> T {
        use crate::InvoiceKind::*;
        match kind {
            DigitalSpecial => self.digital_special,
            DigitalOrdinary => self.digital_ordinary,
            TaxctlSpecial => self.taxctl_special,
            TaxctlOrdinary => self.taxctl_ordinary,
            TaxctlRoll => self.taxctl_roll,
            TaxctlEOrdinary => self.taxctl_e_ordinary,
            TaxctlESpecial => self.taxctl_e_special,
            // Received only, never issued (refused before any limit is read): the 数电 ordinary
            // invoice's limits stand for them.
            DigitalAirTicket | DigitalRailTicket => self.digital_ordinary,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub invoice_tax_tolerance: Decimal,
    pub max_total: PerKind<Money>,
    pub max_lines: PerKind<u32>,
}

impl Settings {
    /// Defaults, then `$FAPIAO_CONFIG`, then `FAPIAO__…` variables of this process.
    pub fn load() -> Result<Settings, ConfigError> {
        let file = std::env::var_os(CONFIG_FILE_ENV).map(PathBuf::from);
        Settings::load_from(file.as_deref(), std::env::vars())
    }

    /// The same layering with explicit inputs (for tests and tools).
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let defaults = parse_table(DEFAULT_TOML, "config/default.toml")?;
        let mut merged = defaults.clone();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
            let origin = path.display().to_string();
            merge(&mut merged, parse_table(&text, &origin)?, &defaults, "", &origin)?;
        }
        let mut overrides: Vec<(String, String)> =
            env.into_iter().filter(|(k, _)| k.starts_with(ENV_PREFIX)).collect();
        overrides.sort(); // deterministic error reporting
        for (var, value) in overrides {
            apply_env(&mut merged, &defaults, &var, &value)?;
        }
        let text = toml::to_string(&merged)
            .map_err(|e| ConfigError::Parse { origin: "merged config".into(), message: e.to_string() })?;
        let parse_error = |message: String| ConfigError::Parse { origin: "merged config".into(), message };
        let de = toml::Deserializer::parse(&text).map_err(|e| parse_error(e.message().to_string()))?;
        let settings: Settings = serde_path_to_error::deserialize(de)
            .map_err(|e| parse_error(format!("{}: {}", e.path(), e.inner().message())))?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid { key: key.into(), message };
        if self.database.max_connections == 0 {
            return Err(invalid("database.max_connections", "must be at least 1".into()));
        }
        if self.api.max_bills == 0 || self.api.max_lines == 0 || self.api.max_body_kib == 0 {
            return Err(invalid("api", "max_bills, max_lines and max_body_kib must be at least 1".into()));
        }
        if self.channel.max_in_flight == 0 {
            return Err(invalid("channel.max_in_flight", "must be at least 1".into()));
        }
        if self.channel.data_encoding == DataEncoding::Aes && self.channel.encryption_password.is_empty() {
            return Err(invalid(
                "channel.encryption_password",
                "required when data_encoding = \"aes\"".into(),
            ));
        }
        if self.invoicing.issue_concurrency == 0 || self.invoicing.settle_poll_ms == 0 {
            return Err(invalid(
                "invoicing",
                "issue_concurrency and settle_poll_ms must be at least 1".into(),
            ));
        }
        if self.callbacks.max_attempts == 0 || self.callbacks.backoff_base_secs == 0 {
            return Err(invalid("callbacks", "max_attempts and backoff_base_secs must be at least 1".into()));
        }
        let j = &self.jobs;
        if j.heartbeat_secs == 0 || j.lease_secs <= j.heartbeat_secs {
            return Err(invalid(
                "jobs.lease_secs",
                "must be longer than jobs.heartbeat_secs (and both above 0)".into(),
            ));
        }
        if j.max_attempts == 0
            || j.deal_batch_size == 0
            || j.deal_max_attempts == 0
            || j.fetch_page_size == 0
            || j.backfill_chunk_days == 0
        {
            return Err(invalid(
                "jobs",
                "attempts, batch and page sizes and the backfill chunk must be at least 1".into(),
            ));
        }
        let i = &self.import;
        if i.max_inflated_mib == 0 || i.max_cell_chars == 0 || i.max_shared_strings_mib == 0 {
            return Err(invalid(
                "import",
                "max_inflated_mib, max_cell_chars and max_shared_strings_mib must be at least 1".into(),
            ));
        }
        if i.max_inflated_mib > 1 << 20 || i.max_shared_strings_mib > 1 << 20 {
            return Err(invalid("import", "sizes in MiB must be at most 1048576 (1 TiB)".into()));
        }
        if self.limits.invoice_tax_tolerance.is_sign_negative() {
            return Err(invalid("limits.invoice_tax_tolerance", "must not be negative".into()));
        }
        for &kind in crate::InvoiceKind::ISSUABLE {
            if !self.limits.max_total.get(kind).is_positive() {
                return Err(invalid(&format!("limits.max_total.{kind}"), "must be positive".into()));
            }
            if self.limits.max_lines.get(kind) == 0 {
                return Err(invalid(&format!("limits.max_lines.{kind}"), "must be at least 1".into()));
            }
        }
        Ok(())
    }

    pub fn time_zone(&self) -> chrono_tz::Tz {
        self.general.time_zone
    }
}

/// A time zone in configuration: its IANA name.
mod tz_name {
    use serde::{Deserialize, Deserializer, Serializer, de};

    pub fn serialize<S: Serializer>(tz: &chrono_tz::Tz, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(tz.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<chrono_tz::Tz, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(|_| de::Error::custom(format!("{name:?} is not an IANA time zone")))
    }
}

/// A socket address in configuration, or the empty string for none.
mod optional_addr {
    use std::net::SocketAddr;

    use serde::{Deserialize, Deserializer, Serializer, de};

    pub fn serialize<S: Serializer>(addr: &Option<SocketAddr>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&addr.map(|a| a.to_string()).unwrap_or_default())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
        let text = String::deserialize(d)?;
        if text.trim().is_empty() {
            return Ok(None);
        }
        text.trim().parse().map(Some).map_err(|_| de::Error::custom(format!("{text:?} is not IP:PORT")))
    }
}

fn parse_table(text: &str, origin: &str) -> Result<toml::Table, ConfigError> {
    text.parse::<toml::Table>()
        .map_err(|e| ConfigError::Parse { origin: origin.into(), message: e.to_string() })
}

/// Merge `layer` into `base`; every key must exist in `defaults` (unknown keys are errors).
fn merge(
    base: &mut toml::Table,
    layer: toml::Table,
    defaults: &toml::Table,
    prefix: &str,
    origin: &str,
) -> Result<(), ConfigError> {
    for (key, value) in layer {
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        let unknown = || ConfigError::UnknownKey { key: path.clone(), origin: origin.into() };
        let default = defaults.get(&key).ok_or_else(unknown)?;
        match (value, default) {
            (toml::Value::Table(sub), toml::Value::Table(sub_defaults)) => {
                let target = base
                    .get_mut(&key)
                    .and_then(toml::Value::as_table_mut)
                    .expect("merged config keeps the defaults' tables");
                merge(target, sub, sub_defaults, &path, origin)?;
            }
            (toml::Value::Table(_), _) => return Err(unknown()),
            (v, _) => {
                base.insert(key, v);
            }
        }
    }
    Ok(())
}

/// `FAPIAO__LIMITS__MAX_TOTAL__DIGITAL_SPECIAL=…` sets `limits.max_total.digital_special`,
/// typed like its default (text stays text, so a numeric-looking secret is not mangled).
fn apply_env(
    merged: &mut toml::Table,
    defaults: &toml::Table,
    var: &str,
    raw: &str,
) -> Result<(), ConfigError> {
    let origin = "the environment";
    let unknown = || ConfigError::UnknownKey { key: var.into(), origin: origin.into() };
    let path: Vec<String> = var[ENV_PREFIX.len()..].split("__").map(str::to_ascii_lowercase).collect();
    let (last, parents) = path.split_last().ok_or_else(unknown)?;
    let (mut table, mut default_table) = (merged, defaults);
    for part in parents {
        default_table = default_table.get(part).and_then(toml::Value::as_table).ok_or_else(unknown)?;
        table = table.get_mut(part).and_then(toml::Value::as_table_mut).ok_or_else(unknown)?;
    }
    let invalid =
        |what: &str| ConfigError::Invalid { key: var.into(), message: format!("{raw:?} is not {what}") };
    let value = match default_table.get(last).ok_or_else(unknown)? {
        toml::Value::String(_) => toml::Value::String(raw.to_string()),
        toml::Value::Integer(_) => {
            toml::Value::Integer(raw.trim().parse().map_err(|_| invalid("an integer"))?)
        }
        toml::Value::Boolean(_) => {
            toml::Value::Boolean(raw.trim().parse().map_err(|_| invalid("true or false"))?)
        }
        _ => return Err(unknown()),
    };
    table.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_load_and_are_documented_values() {
        let s = Settings::load_from(None, Vec::new()).unwrap();
        assert_eq!(s.general.time_zone, chrono_tz::Asia::Shanghai);
        assert_eq!(s.schedules.apply_cache.as_str(), "0 0 1,13 * * *");
        assert_eq!(s.jobs.apply_cache_misfire, Misfire::CatchUp(2));
        assert_eq!(s.invoicing.merge_fields(), [MergeField::BusinessSystem, MergeField::BuyerContact]);
        assert_eq!(s.limits.invoice_tax_tolerance, dec!(1.27));
        assert_eq!(
            s.limits.max_total.get(crate::InvoiceKind::TaxctlSpecial),
            Money::parse("100000").unwrap()
        );
    }

    #[test]
    fn file_then_environment_override() {
        let dir = std::env::temp_dir().join(format!("fapiao-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("override.toml");
        std::fs::write(&file, "[general]\ntime_zone = \"UTC\"\n[channel]\nmax_in_flight = 4\n").unwrap();
        let s = Settings::load_from(
            Some(&file),
            env(&[
                ("FAPIAO__CHANNEL__MAX_IN_FLIGHT", "8"),
                ("FAPIAO__CHANNEL__APP_SECRET", "12345"),
                ("FAPIAO__LIMITS__MAX_TOTAL__DIGITAL_SPECIAL", "500000.00"),
                ("FAPIAO_HOME", "/elsewhere"), // single underscore: not a config key
            ]),
        )
        .unwrap();
        assert_eq!(s.general.time_zone, chrono_tz::UTC);
        assert_eq!(s.channel.max_in_flight, 8);
        assert_eq!(s.channel.app_secret.expose(), "12345");
        assert_eq!(s.limits.max_total.digital_special, Money::parse("500000").unwrap());
    }

    #[test]
    fn unknown_keys_are_errors_in_files_and_environment() {
        let dir = std::env::temp_dir().join(format!("fapiao-config-test-u-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("typo.toml");
        std::fs::write(&file, "[channel]\nmax_inflight = 4\n").unwrap();
        let err = Settings::load_from(Some(&file), Vec::new()).unwrap_err();
        assert!(
            matches!(&err, ConfigError::UnknownKey { key, .. } if key == "channel.max_inflight"),
            "{err}"
        );
        let err = Settings::load_from(None, env(&[("FAPIAO__CHANEL__BASE_URL", "x")])).unwrap_err();
        assert!(matches!(err, ConfigError::UnknownKey { .. }), "{err}");
    }

    #[test]
    fn invalid_values_name_the_key() {
        let err =
            Settings::load_from(None, env(&[("FAPIAO__GENERAL__TIME_ZONE", "Mars/Olympus")])).unwrap_err();
        assert!(err.to_string().contains("general.time_zone"), "{err}");
        let err =
            Settings::load_from(None, env(&[("FAPIAO__SCHEDULES__FETCH", "*/10 * * * *")])).unwrap_err();
        assert!(err.to_string().contains("schedules.fetch"), "{err}");
        let err =
            Settings::load_from(None, env(&[("FAPIAO__JOBS__FETCH_MISFIRE", "sometimes")])).unwrap_err();
        assert!(err.to_string().contains("jobs.fetch_misfire"), "{err}");
        let err =
            Settings::load_from(None, env(&[("FAPIAO__INVOICING__MERGE_ALSO_BY", "colour")])).unwrap_err();
        assert!(err.to_string().contains("invoicing.merge_also_by"), "{err}");
        let err = Settings::load_from(None, env(&[("FAPIAO__CHANNEL__MAX_IN_FLIGHT", "many")])).unwrap_err();
        assert!(err.to_string().contains("FAPIAO__CHANNEL__MAX_IN_FLIGHT"), "{err}");
        let err = Settings::load_from(None, env(&[("FAPIAO__LIMITS__INVOICE_TAX_TOLERANCE", "1.2.7")]))
            .unwrap_err();
        assert!(matches!(err, ConfigError::Parse { .. }), "{err}");
        let err = Settings::load_from(None, env(&[("FAPIAO__CHANNEL__DATA_ENCODING", "aes")])).unwrap_err();
        assert!(err.to_string().contains("encryption_password"), "{err}");
    }

    #[test]
    fn secrets_never_print() {
        let s = Settings::load_from(None, env(&[("FAPIAO__CHANNEL__APP_SECRET", "hunter2")])).unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!toml::to_string(&s).unwrap().contains("hunter2"));
    }
}
