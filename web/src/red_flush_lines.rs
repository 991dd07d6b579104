//! `/red-flush/lines` (issue 19, 按明细行红冲): one blue invoice's lines with what each holds, the
//! user fills in what to red-flush per line — the quantity for a line with one (the price stays),
//! else the net amount — previews it (the red lines, the remaining amount before and after, or
//! the rule's refusal verbatim) and runs it (`fapiao red-flush --invoice NUM:L1=2,L3=0.5`).

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use fapiao_schemas::money::parse_plain_decimal;
use fapiao_usecases::red_flush::{LineRequest, Request};
use fapiao_usecases::{ErrorKind, invoices};
use serde::Deserialize;

use crate::Console;
use crate::auth::{Perm, Viewer};
use crate::pages::{Me, blank, internal, require_to_change};
use crate::red_flush::{PreviewView, Shown, action_of, preview_or_run};

type St = State<Arc<Console>>;

pub fn routes() -> Router<Arc<Console>> {
    Router::new().route("/red-flush/lines", get(form).post(submit))
}

/// A line of the blue invoice, with what the user typed for it.
pub struct LineView {
    pub seq: i32,
    pub goods: String,
    pub quantity: String,
    pub price: String,
    pub amount: String,
    pub tax: String,
    /// Red-flushed by quantity (the line has one), else by net amount.
    pub by_quantity: bool,
    pub value: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "red_flush_lines.html")]
struct LinesPage {
    me: Me,
    num: String,
    reason: String,
    buyer: String,
    total: String,
    remaining: String,
    lines: Vec<LineView>,
    error: Option<String>,
    preview: Option<PreviewView>,
    result: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct LinesQuery {
    num: Option<String>,
}

/// The page for invoice `num` (its lines, for a user who sees it), with `typed` values and what
/// was shown; a form to name the invoice when there is none.
async fn page(
    c: &Console,
    v: &Viewer,
    status: StatusCode,
    num: &str,
    reason: String,
    typed: &[(String, String)],
    shown: Shown,
) -> Response {
    let mut page = LinesPage {
        me: Me::of(v),
        num: num.to_string(),
        reason,
        buyer: String::new(),
        total: String::new(),
        remaining: String::new(),
        lines: Vec::new(),
        error: shown.error,
        preview: shown.preview,
        result: shown.result,
    };
    let mut status = status;
    if !num.is_empty() {
        match invoices::show(&c.app, num, None).await {
            Ok(d) if v.user.sees(&d.invoice.seller_tax_no) && !d.invoice.red => {
                let i = &d.invoice;
                page.buyer = i.buyer_name.clone();
                page.total = i.total.round_dp(2).to_string();
                page.remaining = i.remaining.round_dp(2).to_string();
                page.lines = d
                    .lines
                    .iter()
                    .map(|l| {
                        let g = &l.goods;
                        let text = |d: Option<rust_decimal::Decimal>| d.map(|d| d.normalize().to_string());
                        LineView {
                            seq: l.seq,
                            goods: g.goods_name.clone(),
                            quantity: text(g.quantity).unwrap_or_else(|| "—".into()),
                            price: text(g.price).unwrap_or_else(|| "—".into()),
                            amount: g.amount.round_dp(2).to_string(),
                            tax: g.tax.round_dp(2).to_string(),
                            by_quantity: g.quantity.is_some(),
                            value: typed
                                .iter()
                                .find(|(k, _)| *k == format!("L{}", l.seq))
                                .map(|(_, v)| v.clone())
                                .unwrap_or_default(),
                        }
                    })
                    .collect();
            }
            Ok(_) => {
                page.error = Some(format!("发票{num}不存在、不是蓝字发票或不在您负责的企业范围内"));
                status = StatusCode::NOT_FOUND;
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                page.error = Some(e.to_string());
                status = StatusCode::NOT_FOUND;
            }
            Err(e) if e.kind() != ErrorKind::Internal => page.error = Some(e.to_string()),
            Err(e) => return internal(e),
        }
    }
    (status, page).into_response()
}

/// `GET /red-flush/lines?num=…`.
pub async fn form(State(c): St, v: Viewer, Query(q): Query<LinesQuery>) -> Response {
    if let Err(r) = v.require(Perm::Invoicing) {
        return r;
    }
    let num = blank(q.num).unwrap_or_default();
    let shown = Shown { error: None, preview: None, result: None };
    page(&c, &v, StatusCode::OK, &num, String::new(), &[], shown).await
}

/// The lines asked for: `L<seq>` fields with a value (blank ones are left alone).
fn line_requests(fields: &[(String, String)]) -> Result<Vec<LineRequest>, String> {
    let mut lines = Vec::new();
    for (k, v) in fields {
        let (Some(seq), Some(v)) = (k.strip_prefix('L'), blank(Some(v.clone()))) else { continue };
        let Ok(seq) = seq.parse::<i32>() else { continue };
        let value = parse_plain_decimal(&v).map_err(|e| format!("第{seq}行的数量或金额不正确：{e}"))?;
        lines.push(LineRequest { seq, value });
    }
    if lines.is_empty() {
        return Err("请至少填写一行的红冲数量或金额".into());
    }
    Ok(lines)
}

/// `POST /red-flush/lines` (`num`, `reason`, `L<seq>` per line, `action` = preview | run).
pub async fn submit(State(c): St, v: Viewer, Form(fields): Form<Vec<(String, String)>>) -> Response {
    let field =
        |k: &str| fields.iter().find(|(f, _)| f == k).map(|(_, v)| v.trim().to_string()).unwrap_or_default();
    let (num, reason, run) = (field("num"), field("reason"), field("action") == "run");
    if let Err(r) = require_to_change(&c, &v, Perm::Invoicing, action_of(run), &num).await {
        return r;
    }
    let (status, shown) = match line_requests(&fields) {
        Ok(lines) => {
            let request = Request {
                invoice_num: num.clone(),
                reason: blank(Some(reason.clone())),
                lines,
                ..Request::default()
            };
            match preview_or_run(&c, &v, run, request).await {
                Ok(done) => done,
                Err(r) => return r,
            }
        }
        Err(m) => (StatusCode::UNPROCESSABLE_ENTITY, Shown::error(m)),
    };
    page(&c, &v, status, &num, reason, &fields, shown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_filled_lines_are_asked_for_and_bad_values_say_which_line() {
        let f = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        let lines = line_requests(&f(&[("num", "1"), ("L1", "2"), ("L2", " "), ("L3", "0.5")])).unwrap();
        let got: Vec<(i32, String)> = lines.iter().map(|l| (l.seq, l.value.to_string())).collect();
        assert_eq!(got, [(1, "2".to_string()), (3, "0.5".to_string())]);
        assert!(line_requests(&f(&[("L1", "")])).is_err());
        assert!(line_requests(&f(&[("L2", "x")])).unwrap_err().contains("第2行"));
    }
}
