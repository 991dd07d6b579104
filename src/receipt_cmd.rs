//! `fapiao receipt …` (动态小票码: settings, keys, codes, links, statistics) and `fapiao goods …`
//! (开票项, the catalogue receipt-code lines pick from).

use chrono::{NaiveDate, Utc};
use clap::Subcommand;
use fapiao_schemas::InvoiceKind;
use fapiao_schemas::money::parse_plain_decimal;
use fapiao_usecases::goods_import;
use fapiao_usecases::receipts::{self, Delivery, GoodsRequest, LineRequest, ReceiptRequest, SettingsRequest};
use fapiao_usecases::{Actor, App};
use rust_decimal::Decimal;

use crate::exit::{Outcome, UsageError};
use crate::{Context, output};

#[derive(Subcommand)]
pub enum ReceiptCommand {
    /// 小票码配置 of an enterprise (all of it: what is not given takes its default). Its first
    /// signing key is made when it has none.
    Settings {
        #[arg(long)]
        tax_no: String,
        /// Selectable invoice kinds, comma-separated (digital_ordinary, digital_special, 数电普票…).
        #[arg(long, default_value = "digital_ordinary")]
        kinds: String,
        /// The kind shown first; default: the first of --kinds.
        #[arg(long)]
        default_kind: Option<String>,
        /// 开票码有效期 of new codes and links, minutes.
        #[arg(long, default_value_t = 1440)]
        validity_minutes: i32,
        /// Where the consumer pages answer, as printed in links (`{base}/r?…`).
        #[arg(long)]
        base_url: String,
        #[arg(long, default_value = "email", value_parser = ["email", "sms", "both"])]
        delivery: String,
        /// Turn mode 1 (the till builds the link; GET.ORDER) off.
        #[arg(long)]
        no_mode1: bool,
        /// Turn mode 2 (orders uploaded through the API) off.
        #[arg(long)]
        no_mode2: bool,
        /// The merchant's order query (GET.ORDER) for mode-1 links.
        #[arg(long)]
        order_query_url: Option<String>,
        /// Accept the documented Kingdee MD5 link format with this key (forgeable: see README).
        #[arg(long)]
        kingdee_key: Option<String>,
    },
    /// A new signing key; older keys verify their links until retired.
    RotateKey {
        #[arg(long)]
        tax_no: String,
    },
    /// Retire a key: the links it signed are refused from now on.
    RetireKey {
        #[arg(long)]
        tax_no: String,
        #[arg(long)]
        key_id: String,
    },
    /// The enterprise's keys (never a secret).
    Keys {
        #[arg(long)]
        tax_no: String,
    },
    /// 新增: a receipt code with its lines; prints its id and link.
    Add {
        #[arg(long)]
        tax_no: String,
        /// 小票流水号 (letters, digits, - and _; ≤ 50).
        #[arg(long)]
        serial: String,
        /// 开票人 (required).
        #[arg(long)]
        drawer: String,
        /// A line: GOODS_ID:QUANTITY[:PRICE incl. tax], or discount:AMOUNT (< 0, on the line
        /// before). Repeat in order.
        #[arg(long = "line", required = true)]
        lines: Vec<String>,
        #[arg(long)]
        device: Option<String>,
        #[arg(long)]
        etax_account: Option<String>,
        /// Selectable kinds (comma-separated); default: the settings'.
        #[arg(long)]
        kinds: Option<String>,
        #[arg(long)]
        default_kind: Option<String>,
        #[arg(long)]
        validity_minutes: Option<i64>,
        /// 小票底部备注
        #[arg(long)]
        bottom_remark: Option<String>,
        #[arg(long)]
        payee: Option<String>,
        #[arg(long)]
        reviewer: Option<String>,
        #[arg(long)]
        remark: Option<String>,
        /// 预览: print what would be saved (lines, discounts, totals with tax, bottom remark,
        /// validity) and write a preview PNG to --preview-out; nothing is stored, no link signed.
        #[arg(long)]
        preview: bool,
        /// Where the preview PNG goes (default `$FAPIAO_HOME/receipts`).
        #[arg(long, requires = "preview")]
        preview_out: Option<std::path::PathBuf>,
    },
    /// 新增（复制）: the same code under another serial number, with a fresh validity.
    Copy {
        id: i64,
        #[arg(long)]
        serial: String,
    },
    /// 禁用: its link is refused from now on.
    Disable { id: i64 },
    /// Receipt codes, newest first.
    List {
        #[arg(long)]
        tax_no: Option<String>,
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=10000))]
        limit: i64,
    },
    /// One code: its fields, lines, link and invoice.
    Show { id: i64 },
    /// 打印: the code's QR as a PNG and a PDF page (QR, totals, bottom remark) in --out
    /// (default `$FAPIAO_HOME/receipts`).
    Print {
        id: i64,
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// A mode-1 link as the merchant's till builds it (to test an integration).
    Link {
        #[arg(long)]
        tax_no: String,
        #[arg(long)]
        order: String,
        #[arg(long)]
        amount: String,
    },
    /// Per enterprise and day: codes made, receipts scanned, invoiced and their amount.
    Stats {
        #[arg(long)]
        tax_no: Option<String>,
        /// First day (default: 30 days ago).
        #[arg(long)]
        from: Option<NaiveDate>,
        /// Last day (default: today).
        #[arg(long)]
        to: Option<NaiveDate>,
    },
}

#[derive(Subcommand)]
pub enum GoodsCommand {
    /// A goods item (开票项).
    Add {
        #[arg(long)]
        tax_no: String,
        #[arg(long)]
        name: String,
        /// 税收分类编码 (19 digits).
        #[arg(long)]
        revenue_code: String,
        /// e.g. 0.13
        #[arg(long)]
        tax_rate: String,
        #[arg(long)]
        spec: Option<String>,
        #[arg(long)]
        unit: Option<String>,
        /// Unit price including tax.
        #[arg(long)]
        price: Option<String>,
    },
    /// The catalogue.
    List {
        #[arg(long)]
        tax_no: Option<String>,
        /// Disabled items too.
        #[arg(long)]
        all: bool,
    },
    /// No new receipt line may pick it.
    Disable { id: i64 },
    /// Write the import template (开票项导入模板): 销方税号, 商品名称, 税收分类编码, 税率, 规格型号,
    /// 单位, 单价, and a sheet saying how to fill them in.
    Template { out: std::path::PathBuf },
    /// Import a filled-in template: all rows or none; every bad row is listed with its row
    /// number, column and reason (exit 3).
    Import {
        file: std::path::PathBuf,
        /// The enterprise of every row (the 销方税号 column may then be empty).
        #[arg(long)]
        tax_no: Option<String>,
    },
}

fn decimal(what: &str, text: &str) -> Result<Decimal, UsageError> {
    parse_plain_decimal(text).map_err(|_| UsageError(format!("{what}: {text:?} is not a plain decimal")))
}

fn kinds(text: &str) -> Result<Vec<InvoiceKind>, UsageError> {
    text.split(',')
        .filter(|k| !k.trim().is_empty())
        .map(|k| k.trim().parse::<InvoiceKind>().map_err(|e| UsageError(format!("--kinds: {e}"))))
        .collect()
}

fn kind(text: &str) -> Result<InvoiceKind, UsageError> {
    text.parse().map_err(|e| UsageError(format!("--default-kind: {e}")))
}

fn line(text: &str) -> Result<LineRequest, UsageError> {
    let parts: Vec<&str> = text.split(':').collect();
    match parts.as_slice() {
        ["discount", amount] => Ok(LineRequest::Discount { amount: decimal("--line discount", amount)? }),
        [id, qty] | [id, qty, _] => Ok(LineRequest::Goods {
            goods_id: id
                .parse()
                .map_err(|_| UsageError(format!("--line {text}: {id:?} is not a goods id")))?,
            quantity: decimal("--line quantity", qty)?,
            price: parts.get(2).map(|p| decimal("--line price", p)).transpose()?,
        }),
        _ => Err(UsageError(format!("--line {text}: GOODS_ID:QUANTITY[:PRICE] or discount:AMOUNT"))),
    }
}

pub async fn run(command: ReceiptCommand, ctx: &Context) -> anyhow::Result<Outcome> {
    let actor = Actor::cli();
    let app = App::open(&ctx.settings).await?;
    match command {
        ReceiptCommand::Settings {
            tax_no,
            kinds: k,
            default_kind,
            validity_minutes,
            base_url,
            delivery,
            no_mode1,
            no_mode2,
            order_query_url,
            kingdee_key,
        } => {
            let req = SettingsRequest {
                tax_no,
                kinds: kinds(&k)?,
                default_kind: default_kind.as_deref().map(kind).transpose()?,
                validity_minutes,
                base_url,
                delivery: Delivery::parse(&delivery).expect("clap checked it"),
                mode1: !no_mode1,
                mode2: !no_mode2,
                order_query_url,
                kingdee_compat: kingdee_key.is_some(),
                kingdee_key,
            };
            let row = receipts::set_settings(&app, &actor, &req).await?;
            if ctx.json {
                output::json(&row)?;
            } else {
                println!(
                    "receipt settings of {}: kinds {}, default {}, validity {} min, links {}/r?…",
                    row.tax_no,
                    row.kinds.join(","),
                    row.default_kind,
                    row.validity_minutes,
                    row.base_url
                );
                if row.kingdee_compat {
                    println!("Kingdee link format ON: its MD5 can be forged from any one link (see README).");
                }
            }
        }
        ReceiptCommand::RotateKey { tax_no } => {
            let key_id = receipts::rotate_key(&app, &actor, &tax_no).await?;
            println!("new signing key {key_id} for {tax_no}; older keys verify until retired");
        }
        ReceiptCommand::RetireKey { tax_no, key_id } => {
            receipts::retire_key(&app, &actor, &tax_no, &key_id).await?;
            println!("key {key_id} of {tax_no} retired: its links are refused");
        }
        ReceiptCommand::Keys { tax_no } => {
            let rows = receipts::keys(&app, &tax_no).await?;
            output::list(ctx.json, &rows, &["KEY", "CREATED", "RETIRED"], |k| {
                vec![
                    k.key_id.clone(),
                    k.created_at.to_rfc3339(),
                    k.retired_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                ]
            })?;
        }
        ReceiptCommand::Add {
            tax_no,
            serial,
            drawer,
            lines,
            device,
            etax_account,
            kinds: k,
            default_kind,
            validity_minutes,
            bottom_remark,
            payee,
            reviewer,
            remark,
            preview,
            preview_out,
        } => {
            let req = ReceiptRequest {
                tax_no,
                serial_no: serial,
                device_no: device,
                etax_account,
                kinds: k.as_deref().map(kinds).transpose()?.unwrap_or_default(),
                default_kind: default_kind.as_deref().map(kind).transpose()?,
                validity_minutes,
                bottom_remark,
                drawer,
                payee,
                reviewer,
                remark,
                lines: lines.iter().map(|l| line(l)).collect::<Result<_, _>>()?,
            };
            if preview {
                let p = receipts::preview(&app, &actor, &req, Utc::now()).await?;
                let dir = match preview_out {
                    Some(d) => d,
                    None => crate::demo::demo_home()?.join("receipts"),
                };
                let png = crate::receipt_print::preview_png(&p, &dir)?;
                print_preview(ctx, &p, &png)?;
                return Ok(Outcome::Done);
            }
            let id = receipts::add(&app, &actor, &req, Utc::now()).await?;
            print_detail(ctx, &receipts::show(&app, id).await?)?;
        }
        ReceiptCommand::Copy { id, serial } => {
            let id = receipts::copy(&app, &actor, id, &serial, Utc::now()).await?;
            print_detail(ctx, &receipts::show(&app, id).await?)?;
        }
        ReceiptCommand::Disable { id } => {
            receipts::disable(&app, &actor, id).await?;
            println!("receipt code {id} disabled");
        }
        ReceiptCommand::List { tax_no, limit } => {
            let rows = receipts::list(&app, tax_no.as_deref(), limit).await?;
            output::list(
                ctx.json,
                &rows,
                &["ID", "SELLER", "SERIAL", "TOTAL", "VALID UNTIL", "DISABLED", "ORIGIN"],
                |r| {
                    vec![
                        r.id.to_string(),
                        r.tax_no.clone(),
                        r.serial_no.clone(),
                        r.total.to_string(),
                        r.valid_until.to_rfc3339(),
                        if r.disabled_at.is_some() { "yes".into() } else { "no".into() },
                        r.origin.clone(),
                    ]
                },
            )?;
        }
        ReceiptCommand::Show { id } => print_detail(ctx, &receipts::show(&app, id).await?)?,
        ReceiptCommand::Print { id, out } => {
            let detail = receipts::show(&app, id).await?;
            let dir = match out {
                Some(d) => d,
                None => crate::demo::demo_home()?.join("receipts"),
            };
            let printed = crate::receipt_print::print(&detail, &dir)?;
            if ctx.json {
                output::json(
                    &serde_json::json!({ "png": printed.png, "pdf": printed.pdf, "link": detail.link }),
                )?;
            } else {
                println!("PNG: {}", printed.png.display());
                println!("PDF: {}", printed.pdf.display());
            }
        }
        ReceiptCommand::Link { tax_no, order, amount } => {
            let amount = decimal("--amount", &amount)?;
            println!("{}", receipts::sign_order_link(&app, &tax_no, &order, amount, Utc::now()).await?);
        }
        ReceiptCommand::Stats { tax_no, from, to } => {
            let today = Utc::now().with_timezone(&ctx.settings.time_zone()).date_naive();
            let to = to.unwrap_or(today);
            let from = from.unwrap_or(to - chrono::Duration::days(30));
            let rows = receipts::stats(&app, tax_no.as_deref(), from, to).await?;
            output::list(
                ctx.json,
                &rows,
                &["SELLER", "DAY", "CODES", "SCANNED", "INVOICED", "AMOUNT"],
                |r| {
                    vec![
                        r.tax_no.clone(),
                        r.day.to_string(),
                        r.codes.to_string(),
                        r.scanned.to_string(),
                        r.invoiced.to_string(),
                        r.invoiced_total.to_string(),
                    ]
                },
            )?;
        }
    }
    Ok(Outcome::Done)
}

fn print_preview(ctx: &Context, p: &receipts::ReceiptPreview, png: &std::path::Path) -> anyhow::Result<()> {
    if ctx.json {
        return output::json(&serde_json::json!({ "preview": p, "png": png, "stored": false }));
    }
    let r = &p.receipt;
    println!("预览 (not saved, no link signed) · {} {} · serial {}", p.seller_name, r.tax_no, r.serial_no);
    println!(
        "kinds {} (default {}) · valid until {} · drawer {}{}{}",
        r.kinds.join(","),
        r.default_kind,
        r.valid_until.to_rfc3339(),
        r.drawer,
        r.payee.as_deref().map(|x| format!(" · payee {x}")).unwrap_or_default(),
        r.reviewer.as_deref().map(|x| format!(" · reviewer {x}")).unwrap_or_default()
    );
    output::table(&LINE_HEADERS, &line_rows(&r.lines));
    println!("total {} (amount {} + tax {})", p.total, p.amount, p.tax);
    if let Some(b) = &r.bottom_remark {
        println!("bottom remark: {b}");
    }
    if p.serial_taken {
        println!("note: serial {} is taken already: saving it would be refused", r.serial_no);
    }
    println!("preview PNG: {}", png.display());
    Ok(())
}

const LINE_HEADERS: [&str; 9] = ["#", "GOODS", "PROPERTY", "QTY", "PRICE", "AMOUNT", "RATE", "TAX", "TOTAL"];

fn line_rows(lines: &[fapiao_store::receipts::ReceiptLineRow]) -> Vec<Vec<String>> {
    lines
        .iter()
        .map(|l| {
            vec![
                l.line_no.to_string(),
                l.goods_name.clone(),
                l.line_property.clone(),
                l.quantity.map(|q| q.normalize().to_string()).unwrap_or_default(),
                l.price.map(|p| p.normalize().to_string()).unwrap_or_default(),
                l.amount.to_string(),
                l.tax_rate.normalize().to_string(),
                l.tax.to_string(),
                l.total.to_string(),
            ]
        })
        .collect()
}

fn print_detail(ctx: &Context, d: &receipts::ReceiptDetail) -> anyhow::Result<()> {
    if ctx.json {
        return output::json(d);
    }
    let r = &d.receipt;
    println!(
        "receipt code {} · {} · serial {} · {}",
        r.id,
        r.tax_no,
        r.serial_no,
        if r.disabled_at.is_some() { "禁用" } else { "启用" }
    );
    println!(
        "kinds {} (default {}) · valid until {} · drawer {}",
        r.kinds.join(","),
        r.default_kind,
        r.valid_until.to_rfc3339(),
        r.drawer
    );
    output::table(&LINE_HEADERS, &line_rows(&d.lines));
    println!("total {} (amount {} + tax {})", r.total, r.amount, r.tax);
    if let Some(b) = &r.bottom_remark {
        println!("bottom remark: {b}");
    }
    println!("link: {}", d.link);
    if let Some(bill) = &d.claimed_by {
        println!("invoiced as bill {bill}");
    }
    Ok(())
}

pub async fn goods(command: GoodsCommand, ctx: &Context) -> anyhow::Result<Outcome> {
    let actor = Actor::cli();
    let app = App::open(&ctx.settings).await?;
    match command {
        GoodsCommand::Add { tax_no, name, revenue_code, tax_rate, spec, unit, price } => {
            let req = GoodsRequest {
                tax_no,
                name,
                revenue_code,
                tax_rate: decimal("--tax-rate", &tax_rate)?,
                specification: spec,
                unit,
                price: price.as_deref().map(|p| decimal("--price", p)).transpose()?,
            };
            let id = receipts::add_goods(&app, &actor, &req).await?;
            println!("goods item {id} added");
        }
        GoodsCommand::List { tax_no, all } => {
            let rows = receipts::goods(&app, tax_no.as_deref(), all).await?;
            output::list(
                ctx.json,
                &rows,
                &["ID", "SELLER", "NAME", "REVENUE CODE", "RATE", "SPEC", "UNIT", "PRICE", "DISABLED"],
                |g| {
                    vec![
                        g.id.to_string(),
                        g.tax_no.clone(),
                        g.name.clone(),
                        g.revenue_code.clone(),
                        g.tax_rate.normalize().to_string(),
                        g.specification.clone().unwrap_or_default(),
                        g.unit.clone().unwrap_or_default(),
                        g.price.map(|p| p.normalize().to_string()).unwrap_or_default(),
                        if g.disabled { "yes".into() } else { "no".into() },
                    ]
                },
            )?;
        }
        GoodsCommand::Disable { id } => {
            receipts::disable_goods(&app, &actor, id).await?;
            println!("goods item {id} disabled");
        }
        GoodsCommand::Template { out } => {
            goods_import::write_template(&out)?;
            println!("goods import template: {}", out.display());
        }
        GoodsCommand::Import { file, tax_no } => {
            let done = goods_import::import(&app, &actor, &file, tax_no.as_deref()).await?;
            if ctx.json {
                output::json(&done)?;
            } else if done.problems.is_empty() {
                println!("{} goods items imported from {} rows", done.imported.len(), done.rows);
            } else {
                println!("nothing imported: {} problems in {} rows", done.problems.len(), done.rows);
                let rows: Vec<Vec<String>> = done
                    .problems
                    .iter()
                    .map(|p| vec![p.row.to_string(), p.column.clone(), p.code.clone(), p.message.clone()])
                    .collect();
                output::table(&["ROW", "COLUMN", "CODE", "MESSAGE"], &rows);
            }
            if !done.problems.is_empty() {
                return Ok(Outcome::SomeRejected);
            }
        }
    }
    Ok(Outcome::Done)
}
