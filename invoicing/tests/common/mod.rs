//! The world invoicing tests run in: a fresh database with two enterprises, the sandbox over
//! HTTP, settings pointing at it, and helpers to import bills and read the sandbox's ledger.

#![allow(dead_code)] // each test file uses its own subset

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use fapiao_channel::codes::IssueStatus;
use fapiao_channel::sandbox::FaultPlan;
use fapiao_channel::sandbox::{Sandbox, SandboxConfig};
use fapiao_channel::{ChannelClient, ClientConfig};
use fapiao_invoicing::push::{Selection, push};
use fapiao_invoicing::{Invoicing, issue};
use fapiao_pipelines::import::{ImportOptions, import};
use fapiao_schemas::Money;
use fapiao_schemas::config::Settings;
use fapiao_store::testing::TestDb;
use rust_decimal::Decimal;
use serde_json::Value;

pub const SELLER: &str = "91310000MA1FL2AB09";
pub const BUYER: &str = "92440300MA5DXY7K3W";
pub const HEADER: &str = "单据编号,单据日期,销方税号,购方名称,购方税号,发票种类,商品名称,税收分类编码,数量,单价,金额,税率,税额,价税合计,行性质,自动开票,业务系统编码";

pub struct World {
    pub db: TestDb,
    pub sandbox: Sandbox,
    pub inv: Invoicing,
    pub dir: tempfile::TempDir,
}

pub async fn world(faults: &str, env: &[(&str, &str)]) -> World {
    let db = TestDb::with_enterprises(&[SELLER, BUYER]).await;
    let config = SandboxConfig {
        issue_delay: Duration::from_millis(30),
        faults: FaultPlan::parse(faults).unwrap(),
        seed: 7,
        ..SandboxConfig::default()
    };
    let sandbox = Sandbox::start(config, "127.0.0.1:0").await.unwrap();
    let mut vars: Vec<(String, String)> = vec![
        ("FAPIAO__CALLBACKS__URL".into(), format!("{}/erp/callback/{{system}}", sandbox.base_url())),
        ("FAPIAO__CALLBACKS__BACKOFF_BASE_SECS".into(), "1".into()),
        ("FAPIAO__INVOICING__SETTLE_POLL_MS".into(), "20".into()),
        ("FAPIAO__INVOICING__SETTLE_WITHIN_SECS".into(), "10".into()),
        ("FAPIAO__LIMITS__MAX_TOTAL__DIGITAL_ORDINARY".into(), "100000.00".into()),
    ];
    vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let settings = Settings::load_from(None, vars).unwrap();
    let mut cc = ClientConfig::from_settings(&settings.channel);
    cc.base_url = sandbox.base_url();
    let inv = Invoicing::new(db.pool.clone(), Arc::new(ChannelClient::new(cc)), Arc::new(settings));
    World { db, sandbox, inv, dir: tempfile::tempdir().unwrap() }
}

/// One CSV line: bill, kind, buyer tax number, quantity, price, rate, line property, system.
pub fn line(
    bill: &str,
    kind: &str,
    buyer_tax: &str,
    quantity: u32,
    price: &str,
    property: &str,
    system: &str,
) -> String {
    let price = Money::from_str(price).unwrap();
    let amount = Money::round(price.value() * Decimal::from(quantity));
    let tax = fapiao_schemas::tax::tax_of(amount, fapiao_schemas::TaxRate::parse("13%").unwrap());
    let q = if property == "折扣" { String::new() } else { quantity.to_string() };
    let p = if property == "折扣" { String::new() } else { price.to_string() };
    format!(
        "{bill},2026-11-01,{SELLER},深圳示例便利店,{buyer_tax},{kind},*计算机配套产品*键盘,1090511030000000000,{q},{p},{amount},13%,{tax},{},{property},否,{system}",
        amount + tax
    )
}

impl World {
    pub async fn import(&self, name: &str, lines: &[String]) {
        let s = self.import_with(name, HEADER, lines).await;
        assert!(s.problems.is_empty(), "{:?}", s.problems);
    }

    /// Import `lines` under `header`, whatever the outcome.
    pub async fn import_with(
        &self,
        name: &str,
        header: &str,
        lines: &[String],
    ) -> fapiao_pipelines::import::Summary {
        let path: PathBuf = self.dir.path().join(name);
        std::fs::write(&path, format!("{header}\n{}\n", lines.join("\n"))).unwrap();
        import(
            &self.db.pool,
            Path::new(&path),
            &ImportOptions {
                kind: fapiao_pipelines::import::ImportKind::Applications,
                ..ImportOptions::default()
            },
            &|_| {},
        )
        .await
        .unwrap()
    }

    pub async fn push_and_issue(&self) -> Vec<issue::IssueOutcome> {
        let pushed = push(&self.inv, &Selection::All).await.unwrap();
        assert!(pushed.refused.is_empty(), "{:?}", pushed.refused);
        let ids = issue::candidates(&self.inv, false).await.unwrap();
        issue::issue(&self.inv, &ids, &|_| {}).await.unwrap()
    }

    /// Per pending invoice: the serials of its attempts that the sandbox's own ledger says succeeded.
    pub async fn succeeded_at_channel(&self) -> BTreeMap<i64, usize> {
        let attempts: Vec<(i64, String)> = sqlx::query_as("SELECT pending_id, serial_no FROM issue_attempt")
            .fetch_all(&self.db.pool)
            .await
            .unwrap();
        let world = self.sandbox.world();
        let mut per: BTreeMap<i64, usize> = BTreeMap::new();
        for (id, serial) in attempts {
            let ok = world.outcome(&serial).is_some_and(|r| r.issue_status == IssueStatus::Succeeded);
            *per.entry(id).or_default() += usize::from(ok);
        }
        per
    }

    pub async fn erp_received(&self) -> Vec<Value> {
        self.sandbox.world().erp.received.clone()
    }

    pub async fn scalar<
        T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Unpin,
    >(
        &self,
        sql: &'static str,
    ) -> T {
        sqlx::query_scalar(sql).fetch_one(&self.db.pool).await.unwrap()
    }
}

pub fn money(v: &Value) -> Decimal {
    Decimal::from_str(v.as_str().unwrap()).unwrap()
}
