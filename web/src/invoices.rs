//! `/invoices` (issue 19, 已开发票): search issued invoices as `fapiao invoices list` (seller, buyer,
//! bill, number, dates), one invoice whole (`invoices show`: lines, attempts, callbacks, red
//! invoices, deliveries), and the chosen invoices' files as one zip under the default name
//! template (`invoices download`). Everyone who sees invoicing reads; a scoped user only their
//! enterprises' invoices (the use case's own `scope`).

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::NaiveDate;
use fapiao_schemas::invoice_file::{DEFAULT_TEMPLATE, NameTemplate};
use fapiao_usecases::ErrorKind;
use fapiao_usecases::audit::{self, Entry, Outcome};
use fapiao_usecases::invoices::{self, DownloadRequest, Filter, IssuedRow, Pick, Recipient};
use serde::Deserialize;

use crate::Console;
use crate::auth::{Perm, Viewer};
use crate::files;
use crate::pages::{Me, blank, error_page, internal};
use crate::view::{opt_time, time};

type St = State<Arc<Console>>;

/// Invoices shown per search.
pub const LIMIT: i64 = 200;

pub fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/invoices", get(list))
        .route("/invoices/download", post(download))
        .route("/invoices/{num}", get(show))
        .route("/invoices/{num}/send", post(send))
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    seller: Option<String>,
    buyer: Option<String>,
    bill: Option<String>,
    num: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

pub struct InvoiceView {
    pub num: String,
    pub code: String,
    pub kind: &'static str,
    pub red: bool,
    pub date: String,
    pub seller: String,
    pub buyer: String,
    pub total: String,
    pub remaining: String,
    pub status: String,
    pub red_flush: String,
    pub bills: String,
    pub blue: String,
}

impl InvoiceView {
    fn of(i: &IssuedRow) -> InvoiceView {
        InvoiceView {
            num: i.invoice_num.clone(),
            code: i.invoice_code.clone(),
            kind: i.invoice_kind.label_zh(),
            red: i.red,
            date: i.invoice_date.to_string(),
            seller: i.seller_tax_no.clone(),
            buyer: i.buyer_name.clone(),
            total: i.total.round_dp(2).to_string(),
            remaining: i.remaining.round_dp(2).to_string(),
            status: i.status.to_string(),
            red_flush: match i.red_flush_state.as_str() {
                "none" => "未红冲",
                "partial" => "部分红冲",
                "full" => "全额红冲",
                _ => "未知",
            }
            .to_string(),
            bills: i.bills.join("、"),
            blue: i.blue_invoice_num.clone().unwrap_or_default(),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "invoices.html")]
struct InvoicesPage {
    me: Me,
    q_seller: String,
    q_buyer: String,
    q_bill: String,
    q_num: String,
    q_from: String,
    q_to: String,
    error: Option<String>,
    rows: Vec<InvoiceView>,
    limit: i64,
    /// The zip's file name template (`{发票号码}_{购方名称}`, as `invoices download --name`).
    name_template: String,
}

async fn invoices_page(
    c: &Console,
    v: &Viewer,
    status: StatusCode,
    q: ListQuery,
    error: Option<String>,
) -> Response {
    let (seller, buyer, bill, num, from, to) =
        (blank(q.seller), blank(q.buyer), blank(q.bill), blank(q.num), blank(q.from), blank(q.to));
    let mut bad = error;
    let mut day = |s: &Option<String>| {
        let d = s.as_deref().map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d"));
        match d {
            Some(Ok(d)) => Some(d),
            Some(Err(_)) => {
                bad = Some("日期格式应为 YYYY-MM-DD".into());
                None
            }
            None => None,
        }
    };
    let filter = Filter {
        seller_tax_no: seller.clone(),
        buyer: buyer.clone(),
        bill_no: bill.clone(),
        invoice_num: num.clone(),
        from: day(&from),
        to: day(&to),
        scope: v.scope().map(|s| s.to_vec()),
        limit: LIMIT,
        ..Filter::default()
    };
    let rows = if bad.is_some() {
        Vec::new()
    } else {
        match invoices::list(&c.app, &filter).await {
            Ok(r) => r,
            Err(e) => return internal(e),
        }
    };
    let status =
        if bad.is_some() && status == StatusCode::OK { StatusCode::UNPROCESSABLE_ENTITY } else { status };
    let page = InvoicesPage {
        me: Me::of(v),
        q_seller: seller.unwrap_or_default(),
        q_buyer: buyer.unwrap_or_default(),
        q_bill: bill.unwrap_or_default(),
        q_num: num.unwrap_or_default(),
        q_from: from.unwrap_or_default(),
        q_to: to.unwrap_or_default(),
        error: bad,
        rows: rows.iter().map(InvoiceView::of).collect(),
        limit: LIMIT,
        name_template: DEFAULT_TEMPLATE.to_string(),
    };
    (status, page).into_response()
}

pub async fn list(State(c): St, v: Viewer, Query(q): Query<ListQuery>) -> Response {
    if let Err(r) = v.require(Perm::ViewInvoicing) {
        return r;
    }
    invoices_page(&c, &v, StatusCode::OK, q, None).await
}

#[derive(Template, WebTemplate)]
#[template(path = "invoice.html")]
struct InvoicePage {
    me: Me,
    i: InvoiceView,
    serial: String,
    file_url: String,
    lines: Vec<(i32, String, String, String, String, String)>,
    attempts: Vec<(i32, String, String, String, String)>,
    callbacks: Vec<(i64, String, String, String)>,
    reds: Vec<InvoiceView>,
    deliveries: Vec<(String, String, String)>,
    can_send: bool,
    message: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct ShowQuery {
    code: Option<String>,
}

pub async fn show(State(c): St, v: Viewer, Path(num): Path<String>, Query(q): Query<ShowQuery>) -> Response {
    if let Err(r) = v.require(Perm::ViewInvoicing) {
        return r;
    }
    invoice_page(&c, &v, StatusCode::OK, &num, blank(q.code), None).await
}

async fn invoice_page(
    c: &Console,
    v: &Viewer,
    status: StatusCode,
    num: &str,
    code: Option<String>,
    message: Option<String>,
) -> Response {
    let missing = || error_page(StatusCode::NOT_FOUND, "没有这张发票");
    let d = match invoices::show(&c.app, num, code.as_deref()).await {
        Ok(d) if v.user.sees(&d.invoice.seller_tax_no) => d,
        Ok(_) => return missing(),
        Err(e) if e.kind() == ErrorKind::NotFound => return missing(),
        Err(e) if e.kind() == ErrorKind::BadInput || e.kind() == ErrorKind::Conflict => {
            return error_page(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string());
        }
        Err(e) => return internal(e),
    };
    let page = InvoicePage {
        me: Me::of(v),
        can_send: v.may(Perm::Invoicing),
        message,
        deliveries: d
            .deliveries
            .iter()
            .map(|x| (time(&x.delivered_at, c.tz), x.channel.clone(), x.address.clone()))
            .collect(),
        serial: d.invoice.serial_no.clone(),
        file_url: d.invoice.invoice_file_url.clone().unwrap_or_default(),
        lines: d
            .lines
            .iter()
            .map(|l| {
                let bill = match (&l.bill_no, l.bill_line_no) {
                    (Some(b), Some(n)) => format!("{b} 第{n}行"),
                    _ => "—".into(),
                };
                let g = &l.goods;
                (
                    l.seq,
                    g.goods_name.clone(),
                    g.amount.round_dp(2).to_string(),
                    g.tax_rate.to_string(),
                    g.tax.round_dp(2).to_string(),
                    bill,
                )
            })
            .collect(),
        attempts: d
            .attempts
            .iter()
            .map(|a| {
                let outcome = format!("{} {}", a.outcome, a.message.clone().unwrap_or_default());
                (
                    a.attempt,
                    a.serial_no.clone(),
                    outcome,
                    time(&a.started_at, c.tz),
                    opt_time(a.settled_at.as_ref(), c.tz),
                )
            })
            .collect(),
        callbacks: d
            .callbacks
            .iter()
            .map(|cb| {
                (cb.id, cb.bill_no.clone(), cb.state.to_string(), cb.last_error.clone().unwrap_or_default())
            })
            .collect(),
        reds: d.red_invoices.iter().map(InvoiceView::of).collect(),
        i: InvoiceView::of(&d.invoice),
    };
    (status, page).into_response()
}

#[derive(Deserialize)]
pub struct SendForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    phone: String,
}

/// `POST /invoices/{num}/send` (`email` or `phone`): 交付 to the buyer through the channel
/// (`fapiao invoices send`); the invoice page again with the outcome. The address is the
/// buyer's personal data: the audit row says how, not where.
pub async fn send(State(c): St, v: Viewer, Path(num): Path<String>, Form(f): Form<SendForm>) -> Response {
    if let Err(r) = crate::pages::require_to_change(&c, &v, Perm::Invoicing, "invoices.send", &num).await {
        return r;
    }
    let seller = match invoices::show(&c.app, &num, None).await {
        Ok(d) if v.user.sees(&d.invoice.seller_tax_no) => d.invoice.seller_tax_no,
        Ok(_) => return error_page(StatusCode::NOT_FOUND, "没有这张发票"),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return error_page(StatusCode::NOT_FOUND, "没有这张发票");
        }
        Err(e) => return internal(e),
    };
    let to = match (f.email.trim(), f.phone.trim()) {
        (e, "") if !e.is_empty() => Recipient::Email(e.to_string()),
        ("", p) if !p.is_empty() => Recipient::Phone(p.to_string()),
        _ => {
            let m = "请填写邮箱或手机号（二选一）".to_string();
            return invoice_page(&c, &v, StatusCode::UNPROCESSABLE_ENTITY, &num, None, Some(m)).await;
        }
    };
    let how = if matches!(to, Recipient::Email(_)) { "邮件" } else { "短信" };
    let result = invoices::send(&c.app, &v.actor, &num, &to).await;
    let detail = format!("以{how}交付");
    let tax_nos = vec![seller];
    let entry = Entry {
        actor: &v.actor,
        action: "invoices.send",
        target: &num,
        outcome: Outcome::Ok,
        detail: &detail,
        tax_nos: &tax_nos,
    };
    audit::record_result(&c.app.pool, entry, &result, |e| e.kind()).await;
    match result {
        Ok(_) => invoice_page(&c, &v, StatusCode::OK, &num, None, Some(format!("已{how}交付给购方"))).await,
        Err(e) if e.kind() != ErrorKind::Internal => {
            let status =
                StatusCode::from_u16(e.kind().http_status()).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            invoice_page(&c, &v, status, &num, None, Some(e.to_string())).await
        }
        Err(e) => internal(e),
    }
}

/// `POST /invoices/download` (`num` repeated, `name` the file name template, default
/// `{发票号码}`): the chosen invoices' files (the configured format) as one zip, streamed back; an invoice the channel would not
/// give is left out (the use case reports it). Only invoices in the user's scope are fetched.
pub async fn download(State(c): St, v: Viewer, Form(fields): Form<Vec<(String, String)>>) -> Response {
    if let Err(r) = v.require(Perm::ViewInvoicing) {
        return r;
    }
    let nums: Vec<String> = fields
        .iter()
        .filter(|(f, v)| f == "num" && !v.trim().is_empty())
        .map(|(_, v)| v.trim().to_string())
        .collect();
    if nums.is_empty() {
        return invoices_page(
            &c,
            &v,
            StatusCode::UNPROCESSABLE_ENTITY,
            ListQuery::default(),
            Some("请先勾选发票".into()),
        )
        .await;
    }
    let dir = match files::new_folder(&c.root, "downloads") {
        Ok(d) => d,
        Err(e) => return internal(e),
    };
    let template = fields
        .iter()
        .find(|(f, _)| f == "name")
        .map(|(_, t)| t.trim())
        .filter(|t| !t.is_empty())
        .unwrap_or(DEFAULT_TEMPLATE);
    let name = match NameTemplate::parse(template) {
        Ok(n) => n,
        Err(e) => {
            let message = format!("文件名模板不正确：{e}");
            return invoices_page(
                &c,
                &v,
                StatusCode::UNPROCESSABLE_ENTITY,
                ListQuery::default(),
                Some(message),
            )
            .await;
        }
    };
    let request = DownloadRequest {
        pick: Pick::Numbers(nums.clone()),
        format: None,
        name,
        out: dir.join("发票.zip"),
        scope: v.scope().map(|s| s.to_vec()),
    };
    let result = invoices::download(&c.app, &v.actor, &request).await;
    let target = nums.join(",");
    let detail = match &result {
        Ok(r) => format!("写入{}张，失败{}张", r.written.len(), r.failed.len()),
        Err(_) => String::new(),
    };
    let tax_nos: Vec<String> = v.scope().map(|s| s.to_vec()).unwrap_or_default();
    let entry = Entry {
        actor: &v.actor,
        action: "invoices.download",
        target: &target,
        outcome: Outcome::Ok,
        detail: &detail,
        tax_nos: &tax_nos,
    };
    audit::record_result(&c.app.pool, entry, &result, |e| e.kind()).await;
    match result {
        Ok(r) if !r.written.is_empty() => files::download(&r.out, "发票.zip", "application/zip").await,
        Ok(_) => {
            let message = "所选发票没有可下载的文件（或不在您负责的企业范围内）".to_string();
            invoices_page(&c, &v, StatusCode::UNPROCESSABLE_ENTITY, ListQuery::default(), Some(message)).await
        }
        Err(e) if matches!(e.kind(), ErrorKind::BadInput | ErrorKind::NotFound | ErrorKind::Refused) => {
            invoices_page(&c, &v, StatusCode::UNPROCESSABLE_ENTITY, ListQuery::default(), Some(e.to_string()))
                .await
        }
        Err(e) => internal(e),
    }
}
