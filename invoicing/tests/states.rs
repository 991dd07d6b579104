//! The states and kinds against a real database: every value goes into TEXT and comes back as
//! itself, the CHECK constraints allow exactly the enum's values, and a stored text no type
//! admits is a `Corrupt` error with the code the invoicing errors always gave an unknown kind.

use std::fmt::Debug;

use fapiao_invoicing::InvoicingError;
use fapiao_schemas::enterprise::{Channel, TaxpayerKind};
use fapiao_schemas::invoice_kind::RedFlushTrack;
use fapiao_schemas::split::LineProperty;
use fapiao_schemas::{
    ApprovalState, BillState, CallbackState, Coded, DataSource, FormState, InvoiceKind, PendingStatus,
    RedDocumentKind, RedDocumentState, RedFlushRequestState, RedFlushState, SelectAction, SelectBatchState,
    SelectOutcome, SelectState, SheetState,
};
use fapiao_store::testing::TestDb;
use sqlx::postgres::{PgHasArrayType, PgPool};
use sqlx::{Decode, Encode, Postgres, Type};

/// Each value is stored as its text and read back as itself, one by one and as an array.
async fn round_trip<T>(pool: &PgPool, all: &[T], text: impl Fn(&T) -> &'static str)
where
    T: Copy + Debug + PartialEq + Send + Sync + Unpin + PgHasArrayType + for<'q> Encode<'q, Postgres>,
    T: for<'r> Decode<'r, Postgres> + Type<Postgres>,
{
    for v in all {
        let (back, stored): (T, String) =
            sqlx::query_as("SELECT $1::text, $1::text").bind(*v).fetch_one(pool).await.unwrap();
        assert_eq!((back, stored.as_str()), (*v, text(v)));
    }
    let back: Vec<T> =
        sqlx::query_scalar("SELECT $1::text[]").bind(all.to_vec()).fetch_one(pool).await.unwrap();
    assert_eq!(back, all);
}

/// The values a CHECK constraint on `table.column` allows (its quoted literals).
async fn allowed(pool: &PgPool, table: &str, column: &str) -> Vec<String> {
    let defs: Vec<String> = sqlx::query_scalar(
        "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c
          WHERE c.conrelid = $1::regclass AND c.contype = 'c' AND pg_get_constraintdef(c.oid) LIKE '%(' || $2 || ' %'",
    )
    .bind(table)
    .bind(column)
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(defs.len(), 1, "{table}.{column}: {defs:?}");
    defs[0].split('\'').skip(1).step_by(2).map(str::to_string).collect()
}

async fn same_values(pool: &PgPool, table: &str, column: &str, ours: Vec<&str>) {
    let mut theirs = allowed(pool, table, column).await;
    let mut ours: Vec<String> = ours.into_iter().map(str::to_string).collect();
    theirs.sort();
    ours.sort();
    assert_eq!(ours, theirs, "{table}.{column}");
}

#[tokio::test]
async fn states_and_kinds_round_trip_through_text_and_match_the_checks() {
    let db = TestDb::new().await;
    let pool = &db.pool;
    round_trip(pool, PendingStatus::ALL, |v| v.as_str()).await;
    round_trip(pool, DataSource::ALL, |v| v.as_str()).await;
    round_trip(pool, ApprovalState::ALL, |v| v.as_str()).await;
    round_trip(pool, BillState::ALL, |v| v.as_str()).await;
    round_trip(pool, CallbackState::ALL, |v| v.as_str()).await;
    round_trip(pool, RedFlushState::ALL, |v| v.as_str()).await;
    round_trip(pool, RedFlushRequestState::ALL, |v| v.as_str()).await;
    round_trip(pool, RedDocumentKind::ALL, |v| v.as_str()).await;
    round_trip(pool, &RedFlushTrack::ALL, |v| v.as_str()).await;
    round_trip(pool, &InvoiceKind::ALL, |v| v.as_str()).await;
    round_trip(pool, &[TaxpayerKind::General, TaxpayerKind::SmallScale], |v| v.as_str()).await;
    round_trip(pool, &[Channel::Leqi, Channel::Etax], |v| v.as_str()).await;
    round_trip(pool, &[LineProperty::Normal, LineProperty::Discount, LineProperty::Discounted], |v| {
        v.as_str()
    })
    .await;
    let documents: Vec<RedDocumentState> = FormState::ALL
        .iter()
        .map(|f| RedDocumentState::Form(*f))
        .chain(SheetState::ALL.iter().map(|s| RedDocumentState::Sheet(*s)))
        .collect();
    round_trip(pool, &documents, |v| v.as_str()).await;

    let texts = |all: &[&'static str]| all.to_vec();
    same_values(pool, "pending_invoice", "status", PendingStatus::ALL.iter().map(|v| v.as_str()).collect())
        .await;
    same_values(pool, "pending_invoice", "data_source", DataSource::ALL.iter().map(|v| v.as_str()).collect())
        .await;
    same_values(
        pool,
        "pending_invoice",
        "approval_state",
        ApprovalState::ALL.iter().map(|v| v.as_str()).collect(),
    )
    .await;
    same_values(pool, "application", "state", BillState::ALL.iter().map(|v| v.as_str()).collect()).await;
    same_values(pool, "application", "source", texts(&["批量导入", "直接开票接口", "小票码开票"])).await;
    same_values(pool, "callback", "state", CallbackState::ALL.iter().map(|v| v.as_str()).collect()).await;
    same_values(
        pool,
        "issued_invoice",
        "red_flush_state",
        RedFlushState::ALL.iter().map(|v| v.as_str()).collect(),
    )
    .await;
    same_values(pool, "red_flush", "track", RedFlushTrack::ALL.iter().map(|v| v.as_str()).collect()).await;
    same_values(pool, "red_document", "kind", RedDocumentKind::ALL.iter().map(|v| v.as_str()).collect())
        .await;
    same_values(pool, "enterprise", "taxpayer_kind", texts(&["general", "small_scale"])).await;
    same_values(pool, "pending_line", "line_property", texts(&["normal", "discount", "discounted"])).await;
    same_values(pool, "invoice_pool", "select_state", SelectState::ALL.iter().map(|v| v.as_str()).collect())
        .await;
    same_values(pool, "select_batch", "action", SelectAction::ALL.iter().map(|v| v.as_str()).collect()).await;
    same_values(pool, "select_batch", "state", SelectBatchState::ALL.iter().map(|v| v.as_str()).collect())
        .await;
    same_values(
        pool,
        "select_batch_item",
        "outcome",
        SelectOutcome::ALL.iter().map(|v| v.as_str()).collect(),
    )
    .await;
    same_values(pool, "select_log", "outcome", SelectOutcome::ALL.iter().map(|v| v.as_str()).collect()).await;
    round_trip(pool, SelectState::ALL, |v| v.as_str()).await;
    round_trip(pool, SelectBatchState::ALL, |v| v.as_str()).await;
}

#[tokio::test]
async fn a_stored_text_no_type_admits_is_corrupt() {
    let db = TestDb::new().await;
    let err: InvoicingError = sqlx::query_scalar::<_, InvoiceKind>("SELECT 'paper_receipt'::text")
        .fetch_one(&db.pool)
        .await
        .unwrap_err()
        .into();
    assert!(matches!(err, InvoicingError::Corrupt(_)), "{err:?}");
    assert_eq!(
        (err.code(), err.to_string().as_str()),
        ("INVOICE_KIND_UNKNOWN", "unknown invoice kind \"paper_receipt\"")
    );
    let err: InvoicingError = sqlx::query_scalar::<_, PendingStatus>("SELECT 'lost'::text")
        .fetch_one(&db.pool)
        .await
        .unwrap_err()
        .into();
    assert_eq!(
        (err.code(), err.to_string().as_str()),
        ("DATABASE", "unknown pending invoice status \"lost\"")
    );
}
