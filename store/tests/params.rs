//! Parameters against a real database.

use fapiao_schemas::params::{INPUTOUT_DAYS, RIM_CONFIG, SIM_AUTO_ISSUE_CONFIG, SYNC_HIS};
use fapiao_store::StoreError;
use fapiao_store::params;
use fapiao_store::testing::TestDb;

#[tokio::test]
async fn defaults_then_set_then_unset() {
    let db = TestDb::new().await;
    let v = params::get(&db.pool, RIM_CONFIG, SYNC_HIS).await.unwrap();
    assert_eq!((v.value.as_deref(), v.source), (Some("1"), "default"));

    assert_eq!(params::set(&db.pool, RIM_CONFIG, SYNC_HIS, "0").await.unwrap(), "0");
    let v = params::get(&db.pool, RIM_CONFIG, SYNC_HIS).await.unwrap();
    assert_eq!((v.value.as_deref(), v.source), (Some("0"), "set"));

    assert!(params::unset(&db.pool, RIM_CONFIG, SYNC_HIS).await.unwrap());
    assert!(!params::unset(&db.pool, RIM_CONFIG, SYNC_HIS).await.unwrap());
    assert_eq!(params::value(&db.pool, RIM_CONFIG, SYNC_HIS).await.unwrap().as_deref(), Some("1"));

    let history: i64 = sqlx::query_scalar("SELECT count(*) FROM sys_param_history WHERE key = $1")
        .bind(SYNC_HIS)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(history, 2);
}

#[tokio::test]
async fn an_invalid_value_changes_nothing() {
    let db = TestDb::new().await;
    params::set(&db.pool, RIM_CONFIG, INPUTOUT_DAYS, "1,15").await.unwrap();
    let err = params::set(&db.pool, RIM_CONFIG, INPUTOUT_DAYS, "1,32").await.unwrap_err();
    assert!(matches!(err, StoreError::Param(_)), "{err}");
    assert_eq!(params::value(&db.pool, RIM_CONFIG, INPUTOUT_DAYS).await.unwrap().as_deref(), Some("1,15"));
    let err = params::set(&db.pool, RIM_CONFIG, "no_such_key", "1").await.unwrap_err();
    assert!(err.to_string().contains("unknown parameter"), "{err}");
}

#[tokio::test]
async fn families_are_listed_key_by_key() {
    let db = TestDb::new().await;
    params::set(&db.pool, SIM_AUTO_ISSUE_CONFIG, "repairing", "局端内部错误，该开票请求修复中")
        .await
        .unwrap();
    params::set(&db.pool, SIM_AUTO_ISSUE_CONFIG, "unstable", "地方税局网络不稳定").await.unwrap();
    let listed = params::list(&db.pool).await.unwrap();
    let fragments: Vec<_> =
        listed.iter().filter(|p| p.ptype == SIM_AUTO_ISSUE_CONFIG).map(|p| p.key.as_str()).collect();
    assert_eq!(fragments, ["repairing", "unstable"]);
    assert!(listed.iter().any(|p| p.key == SYNC_HIS && p.source == "default"));
    assert_eq!(params::family(&db.pool, SIM_AUTO_ISSUE_CONFIG).await.unwrap().len(), 2);
}
