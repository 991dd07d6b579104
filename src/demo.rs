//! `fapiao demo`: the main job on the embedded default. Each stage of the product adds its
//! part here, so that one command shows the whole flow.

use chrono::NaiveDate;
use fapiao_schemas::TaxNo;
use fapiao_schemas::enterprise::{Channel, Enterprise, SyncScheme, TaxpayerKind};
use fapiao_schemas::params::{INPUTOUT_DAYS, RIM_CONFIG, SYNC_HIS};
use fapiao_store::{Database, Origin, enterprises, params, schemes};
use serde_json::json;

use crate::exit::Outcome;
use crate::{Context, enterprise, output, scheme};

/// Two sample enterprises sharing one e-tax account (so downloads for them are serialized):
/// a general taxpayer on 乐企 and a small-scale taxpayer on 电子税局.
fn sample_enterprises() -> Vec<Enterprise> {
    let tax_no = |s: &str| TaxNo::parse(s).expect("sample tax numbers carry valid check characters");
    vec![
        Enterprise {
            tax_no: tax_no("91310000MA1FL2AB09"),
            name: "上海示例贸易有限公司".into(),
            taxpayer_kind: TaxpayerKind::General,
            etax_account: "demo-etax-01".into(),
            channel: Channel::Leqi,
        },
        Enterprise {
            tax_no: tax_no("92440300MA5DXY7K3W"),
            name: "深圳示例便利店".into(),
            taxpayer_kind: TaxpayerKind::SmallScale,
            etax_account: "demo-etax-01".into(),
            channel: Channel::Etax,
        },
    ]
}

fn sample_schemes(enterprises: &[Enterprise]) -> Vec<SyncScheme> {
    let start = NaiveDate::from_ymd_opt(2026, 1, 1).expect("valid date");
    enterprises
        .iter()
        .enumerate()
        .map(|(i, e)| SyncScheme { code: format!("DEMO-{:02}", i + 1), tax_no: e.tax_no.clone(), start_date: start, active: true })
        .collect()
}

pub async fn run(ctx: &Context) -> anyhow::Result<Outcome> {
    // Stage 1 — foundation: database, schema, enterprises, sync schemes, parameters.
    let db = Database::open(&ctx.settings).await?;
    let migrations: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success").fetch_one(&db.pool).await?;
    let enterprise_list = sample_enterprises();
    let scheme_list = sample_schemes(&enterprise_list);
    let mut tx = db.pool.begin().await?;
    for e in &enterprise_list {
        enterprises::upsert(&mut *tx, e).await?;
    }
    for s in &scheme_list {
        schemes::upsert(&mut *tx, s).await?;
    }
    tx.commit().await?;
    let sync = params::value(&db.pool, RIM_CONFIG, SYNC_HIS).await?;
    let days = params::value(&db.pool, RIM_CONFIG, INPUTOUT_DAYS).await?;
    let day_rule = fapiao_schemas::params::DownloadDays::from_param(days.as_deref());

    let (where_, url) = match &db.origin {
        Origin::External { url } => ("DATABASE_URL".to_string(), url.clone()),
        Origin::Embedded { url, started } => {
            (format!("embedded cluster ({})", if *started { "started now" } else { "already running" }), url.clone())
        }
    };
    if ctx.json {
        output::json(&json!({
            "database": { "origin": where_, "url": url, "migrations_applied": migrations },
            "enterprises": enterprise_list,
            "schemes": scheme_list,
            "parameters": { "rim_config_sync_his": sync, "download_days": day_rule.to_string() },
        }))?;
        return Ok(Outcome::Done);
    }
    println!("== fapiao demo ==");
    println!("[1] foundation");
    println!("    database: {where_}");
    println!("    url:      {url}");
    println!("    schema:   {migrations} migration(s) applied");
    println!("    enterprises (upserted):");
    enterprise::print(&enterprise_list, false)?;
    println!("    sync schemes (upserted):");
    scheme::print(&scheme_list, false)?;
    println!("    sync jobs switch rim_config_sync_his = {}", sync.as_deref().unwrap_or("?"));
    println!("    download-apply runs on: {day_rule}");
    println!("done.");
    Ok(Outcome::Done)
}
