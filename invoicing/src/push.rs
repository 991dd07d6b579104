//! Push (推送): applications' open lines → pending invoices, merged (单据拆合) and split by the
//! per-kind limits (按限额拆票), in one transaction per push.
//!
//! A line is *open* while no live pending invoice covers it: never pushed, or its pending
//! invoice was returned or deleted. So a returned line is pushed again by the next push, and a
//! crash mid-push leaves nothing (the transaction rolls back).

use fapiao_schemas::config::{MergeField, Settings};
use fapiao_schemas::policy::ZeroRateMark;
use fapiao_schemas::split::{self, Limits, Line};
use fapiao_schemas::tax::{TaxLine, check_invoice_tax};
use fapiao_schemas::{BillState, Coded, DataSource, InvoiceKind, Money, Quantity, TaxRate, UnitPrice};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::PgConnection;

use crate::{Invoicing, Result};

/// Which applications to push.
#[derive(Clone, Debug)]
pub enum Selection {
    Bills(Vec<String>),
    /// Every application with open lines.
    All,
    /// Applications whose 自动开票 flag is set.
    AutoIssue,
}

/// A bill that was not pushed, and why.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Refusal {
    pub bill_no: String,
    pub code: String,
    pub message: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct PushReport {
    pub bills: Vec<String>,
    /// Pending invoices created, in order.
    pub pending_ids: Vec<i64>,
    pub refused: Vec<Refusal>,
}

/// What a pending line carries besides its figures.
#[derive(Clone, Debug, PartialEq)]
struct LineData {
    bill_no: String,
    line_no: i32,
    goods_name: String,
    revenue_code: String,
    specification: Option<String>,
    unit: Option<String>,
    /// 税收优惠政策标识, 优惠政策内容, 零税率标识: every piece of the line carries them.
    privilege_flag: bool,
    privilege_content: Option<String>,
    zero_rate_mark: Option<ZeroRateMark>,
}

#[derive(Clone, Debug, sqlx::FromRow)]
struct Bill {
    bill_no: String,
    seller_tax_no: String,
    buyer_name: String,
    buyer_tax_no: Option<String>,
    buyer_address_phone: Option<String>,
    buyer_bank_account: Option<String>,
    invoice_kind: InvoiceKind,
    remark: Option<String>,
    auto_issue: bool,
    business_system_code: Option<String>,
    source: DataSource,
    state: BillState,
}

/// Bills with equal keys may share invoices.
type MergeKey = Vec<Option<String>>;

impl Bill {
    fn merge_key(&self, settings: &Settings) -> MergeKey {
        let mut key = vec![
            Some(self.seller_tax_no.clone()),
            Some(self.buyer_name.clone()),
            self.buyer_tax_no.clone(),
            Some(self.invoice_kind.as_str().to_string()),
        ];
        if !settings.invoicing.merge {
            key.push(Some(self.bill_no.clone()));
            return key;
        }
        for field in settings.invoicing.merge_fields() {
            match field {
                MergeField::BusinessSystem => key.push(self.business_system_code.clone()),
                MergeField::Remark => key.push(self.remark.clone()),
                MergeField::BuyerContact => {
                    key.extend([self.buyer_address_phone.clone(), self.buyer_bank_account.clone()])
                }
            }
        }
        key
    }
}

pub async fn push(inv: &Invoicing, selection: &Selection) -> Result<PushReport> {
    let mut tx = inv.pool.begin().await?;
    let mut report = PushReport::default();
    let (names, all, auto) = match selection {
        Selection::Bills(b) => (b.clone(), false, false),
        Selection::All => (Vec::new(), true, false),
        Selection::AutoIssue => (Vec::new(), false, true),
    };
    let rows: Vec<Bill> = sqlx::query_as(
        "SELECT bill_no, seller_tax_no, buyer_name, buyer_tax_no, buyer_address_phone, buyer_bank_account, invoice_kind, remark,
                auto_issue, business_system_code, source, state
           FROM application a
          WHERE (bill_no = ANY($1) OR $2 OR (auto_issue AND $3))
          ORDER BY bill_no
            FOR UPDATE",
    )
    .bind(&names)
    .bind(all)
    .bind(auto)
    .fetch_all(&mut *tx)
    .await?;
    for name in &names {
        if !rows.iter().any(|r| r.bill_no == *name) {
            report.refused.push(Refusal {
                bill_no: name.clone(),
                code: "BILL_NOT_FOUND".into(),
                message: format!("开票申请单{name}不存在"),
            });
        }
    }
    let mut bills: Vec<(MergeKey, Bill, Vec<Line<LineData>>)> = Vec::new();
    for bill in rows {
        if bill.state == BillState::Withdrawn {
            if !all && !auto {
                report.refused.push(Refusal {
                    bill_no: bill.bill_no.clone(),
                    code: "BILL_WITHDRAWN".into(),
                    message: "开票申请单已撤回".into(),
                });
            }
            continue;
        }
        let lines = open_lines(&mut tx, &bill.bill_no).await?;
        if lines.is_empty() {
            if !all && !auto {
                report.refused.push(Refusal {
                    bill_no: bill.bill_no.clone(),
                    code: "BILL_NOTHING_OPEN".into(),
                    message: "开票申请单没有待推送的明细（已推送或已开票）".into(),
                });
            }
            continue;
        }
        bills.push((bill.merge_key(&inv.settings), bill, lines));
    }
    for (_, group, lines) in split::merge(&bills) {
        let kind = group[0].invoice_kind;
        let limits = Limits {
            max_total: inv.settings.limits.max_total.get(kind),
            max_lines: inv.settings.limits.max_lines.get(kind) as usize,
        };
        let pieces = match split::split(&lines, limits) {
            Ok(p) => p,
            Err(e) => {
                refuse_group(&mut report, &group, &e);
                continue;
            }
        };
        // The invoice-level tax rule (SPEC "Rules"): each invoice's summed per-line rounding
        // differences within `limits.invoice_tax_tolerance` (1.27). A merge or a split can add
        // up differences no single bill showed; then the group is refused, not issued.
        let tolerance = inv.settings.limits.invoice_tax_tolerance;
        let over = pieces.iter().find_map(|piece| {
            let lines: Vec<TaxLine> =
                piece.iter().map(|l| TaxLine { amount: l.amount, rate: l.rate, tax: l.tax }).collect();
            check_invoice_tax(&lines, tolerance).err()
        });
        if let Some(e) = over {
            refuse_group(&mut report, &group, &e);
            continue;
        }
        let cut = group.len() > 1 || pieces.len() > 1;
        for piece in &pieces {
            let id = insert_pending(&mut tx, &group, piece, cut).await?;
            report.pending_ids.push(id);
        }
        report.bills.extend(group.iter().map(|b| b.bill_no.clone()));
    }
    crate::record::refresh_bill_states(&mut tx, &report.bills).await?;
    tx.commit().await?;
    Ok(report)
}

/// Every bill of a group refused with the same rule's answer (the group shares its invoices).
fn refuse_group(report: &mut PushReport, group: &[Bill], e: &impl Coded) {
    for b in group {
        report.refused.push(Refusal {
            bill_no: b.bill_no.clone(),
            code: e.code().into(),
            message: e.message_zh(),
        });
    }
}

/// The bill's lines that no live pending invoice covers, in line order.
async fn open_lines(tx: &mut PgConnection, bill_no: &str) -> Result<Vec<Line<LineData>>> {
    let rows: Vec<OpenLine> = sqlx::query_as(
        "SELECT l.line_no, l.goods_name, l.revenue_code, l.specification, l.unit, l.quantity, l.price, l.amount, l.tax_rate, l.tax, l.line_property,
                l.privilege_flag, l.privilege_content, l.zero_rate_mark
           FROM application_line l
          WHERE l.bill_no = $1
            AND NOT EXISTS (SELECT 1 FROM pending_line pl JOIN pending_invoice p ON p.id = pl.pending_id
                             WHERE pl.bill_no = l.bill_no AND pl.bill_line_no = l.line_no
                               AND p.deleted_at IS NULL AND p.released_at IS NULL AND p.invoice_property = 0)
          ORDER BY l.line_no",
    )
    .bind(bill_no)
    .fetch_all(&mut *tx)
    .await?;
    let money = |d: Decimal| Money::exact(d).expect("stored at scale 2");
    Ok(rows
        .into_iter()
        .map(|r| Line {
            data: LineData {
                bill_no: bill_no.to_string(),
                line_no: r.line_no,
                goods_name: r.goods.goods_name,
                revenue_code: r.goods.revenue_code,
                specification: r.goods.specification,
                unit: r.goods.unit,
                privilege_flag: r.goods.privilege_flag,
                privilege_content: r.goods.privilege_content,
                zero_rate_mark: r.goods.zero_rate_mark,
            },
            property: r.goods.line_property,
            quantity: r.goods.quantity.map(Quantity::round),
            price: r.goods.price.map(UnitPrice::round),
            amount: money(r.goods.amount),
            rate: TaxRate::try_from(r.goods.tax_rate).expect("validated on import"),
            tax: money(r.goods.tax),
        })
        .collect())
}

/// An application line as `open_lines` reads it.
#[derive(sqlx::FromRow)]
struct OpenLine {
    line_no: i32,
    #[sqlx(flatten)]
    goods: crate::Goods,
}

async fn insert_pending(
    tx: &mut PgConnection,
    group: &[Bill],
    piece: &[Line<LineData>],
    cut: bool,
) -> Result<i64> {
    let in_piece: Vec<&Bill> =
        group.iter().filter(|b| piece.iter().any(|l| l.data.bill_no == b.bill_no)).collect();
    let head = in_piece[0];
    let mut remarks: Vec<&str> =
        in_piece.iter().filter_map(|b| b.remark.as_deref()).filter(|r| !r.is_empty()).collect();
    remarks.dedup();
    let amount: Money = piece.iter().map(|l| l.amount).sum();
    let tax: Money = piece.iter().map(|l| l.tax).sum();
    let source = if cut { DataSource::SplitMerge } else { head.source };
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO pending_invoice (seller_tax_no, buyer_name, buyer_tax_no, buyer_address_phone, buyer_bank_account, invoice_kind,
                                      remark, business_system_code, data_source, amount, tax, total, auto_issue, approval_state)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
                 -- sim_issue_approval = 1 for the seller or the business system: 暂存 until approved.
                 CASE WHEN EXISTS (SELECT 1 FROM sys_param WHERE type = 'sim_issue_approval' AND value = '1'
                                     AND key IN ($1, coalesce($8, '')))
                      THEN '暂存' ELSE '无需审批' END)
         RETURNING id",
    )
    .bind(&head.seller_tax_no)
    .bind(&head.buyer_name)
    .bind(&head.buyer_tax_no)
    .bind(&head.buyer_address_phone)
    .bind(&head.buyer_bank_account)
    .bind(head.invoice_kind)
    .bind((!remarks.is_empty()).then(|| remarks.join("；")))
    .bind(&head.business_system_code)
    .bind(source)
    .bind(amount.value())
    .bind(tax.value())
    .bind((amount + tax).value())
    .bind(in_piece.iter().any(|b| b.auto_issue))
    .fetch_one(&mut *tx)
    .await?;
    for (seq, l) in piece.iter().enumerate() {
        sqlx::query(
            "INSERT INTO pending_line (pending_id, seq, bill_no, bill_line_no, line_property, goods_name, revenue_code, specification, unit,
                                       quantity, price, amount, tax_rate, tax, privilege_flag, privilege_content, zero_rate_mark)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        )
        .bind(id)
        .bind(seq as i32 + 1)
        .bind(&l.data.bill_no)
        .bind(l.data.line_no)
        .bind(l.property)
        .bind(&l.data.goods_name)
        .bind(&l.data.revenue_code)
        .bind(&l.data.specification)
        .bind(&l.data.unit)
        .bind(l.quantity.map(Quantity::value))
        .bind(l.price.map(UnitPrice::value))
        .bind(l.amount.value())
        .bind(l.rate.value())
        .bind(l.tax.value())
        .bind(l.data.privilege_flag)
        .bind(&l.data.privilege_content)
        .bind(l.data.zero_rate_mark)
        .execute(&mut *tx)
        .await?;
    }
    for b in &in_piece {
        sqlx::query("INSERT INTO pending_bill (pending_id, bill_no) VALUES ($1, $2)")
            .bind(id)
            .bind(&b.bill_no)
            .execute(&mut *tx)
            .await?;
    }
    crate::record::event(
        &mut *tx,
        id,
        "created",
        Some(&format!(
            "{source}：{}",
            in_piece.iter().map(|b| b.bill_no.as_str()).collect::<Vec<_>>().join(",")
        )),
    )
    .await?;
    Ok(id)
}
