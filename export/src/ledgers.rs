//! The ledgers of the export, as data: a file name, a sheet name, the rows (a FROM … WHERE with
//! the period and tax numbers filled in) and the columns. Money leaves PostgreSQL as integer
//! cents (exact in polars sums); text passes through `neutralize()` (migration 0008) so nothing
//! that reaches a spreadsheet can start a formula.

/// How a column is moved and written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Text (neutralized in SQL).
    Text,
    /// Money as integer cents; written as yuan with two decimals.
    Money,
    /// A whole number.
    Int,
}

#[derive(Debug)]
pub struct Column {
    pub name: &'static str,
    /// The header auditors see.
    pub header: &'static str,
    pub kind: Kind,
    /// The SQL expression (before the cents / neutralize wrapping).
    pub sql: &'static str,
}

#[derive(Debug)]
pub struct Ledger {
    /// File stem of the CSV (`issued_invoices.csv`).
    pub file: &'static str,
    /// Sheet name in the workbook.
    pub sheet: &'static str,
    /// `FROM … WHERE …` with `{from}`, `{to}` (date literals), `{taxnos}` (a text[] literal or NULL)
    /// and `{tz}` (the time zone of "a day").
    pub rows: &'static str,
    pub order_by: &'static str,
    pub columns: &'static [Column],
}

macro_rules! col {
    ($name:literal, $header:literal, $kind:ident, $sql:literal) => {
        Column { name: $name, header: $header, kind: Kind::$kind, sql: $sql }
    };
}

pub const ISSUED: Ledger = Ledger {
    file: "issued_invoices",
    sheet: "已开发票",
    rows: "FROM issued_invoice i WHERE i.invoice_date BETWEEN {from} AND {to} AND ({taxnos} IS NULL OR i.seller_tax_no = ANY({taxnos}))",
    order_by: "i.seller_tax_no, i.invoice_date, i.id",
    columns: &[
        col!("id", "记录号", Int, "i.id"),
        col!("seller_tax_no", "销方税号", Text, "i.seller_tax_no"),
        col!("invoice_date", "开票日期", Text, "i.invoice_date"),
        col!("invoice_kind", "发票种类", Text, "i.invoice_kind"),
        col!("invoice_property", "蓝字0/红字1", Int, "i.invoice_property"),
        col!("invoice_code", "发票代码", Text, "i.invoice_code"),
        col!("invoice_num", "发票号码", Text, "i.invoice_num"),
        col!("buyer_name", "购方名称", Text, "i.buyer_name"),
        col!("buyer_tax_no", "购方税号", Text, "i.buyer_tax_no"),
        col!("amount", "金额", Money, "i.amount"),
        col!("tax", "税额", Money, "i.tax"),
        col!("total", "价税合计", Money, "i.total"),
        col!("status", "发票状态", Text, "i.status"),
        col!(
            "red_flush_state",
            "红冲状态",
            Text,
            "CASE i.red_flush_state WHEN 'none' THEN '未红冲' WHEN 'partial' THEN '部分红冲' ELSE '全额红冲' END"
        ),
        col!("remaining", "剩余可红冲金额", Money, "i.remaining"),
        col!(
            "red_total_all",
            "已红冲金额（全部期间）",
            Money,
            "coalesce((SELECT sum(abs(r.total)) FROM issued_invoice r WHERE r.blue_invoice_id = i.id AND r.invoice_property = 1), 0)"
        ),
        col!("blue_invoice_id", "对应蓝字记录号", Int, "i.blue_invoice_id"),
        col!("serial_no", "流水号", Text, "i.serial_no"),
        col!("invoice_file_url", "版式文件", Text, "i.invoice_file_url"),
    ],
};

pub const RED_FLUSHES: Ledger = Ledger {
    file: "red_flushes",
    sheet: "红冲",
    rows: "FROM issued_invoice r
           LEFT JOIN issued_invoice b ON b.id = r.blue_invoice_id AND b.invoice_property = 0
           LEFT JOIN red_flush f ON f.pending_id = r.pending_id
          WHERE r.invoice_property = 1 AND r.invoice_date BETWEEN {from} AND {to} AND ({taxnos} IS NULL OR r.seller_tax_no = ANY({taxnos}))",
    order_by: "r.seller_tax_no, r.invoice_date, r.id",
    columns: &[
        col!("seller_tax_no", "销方税号", Text, "r.seller_tax_no"),
        col!("red_invoice_date", "红字开票日期", Text, "r.invoice_date"),
        col!("red_invoice_code", "红字发票代码", Text, "r.invoice_code"),
        col!("red_invoice_num", "红字发票号码", Text, "r.invoice_num"),
        col!("red_total", "红字价税合计", Money, "r.total"),
        col!("red_reason", "冲红原因", Text, "f.red_reason"),
        col!("track", "红冲方式", Text, "f.track"),
        col!("blue_invoice_code", "蓝字发票代码", Text, "b.invoice_code"),
        col!("blue_invoice_num", "蓝字发票号码", Text, "b.invoice_num"),
        col!("blue_invoice_date", "蓝字开票日期", Text, "b.invoice_date"),
        col!("blue_total", "蓝字价税合计", Money, "b.total"),
        col!("blue_remaining", "蓝字剩余可红冲金额", Money, "b.remaining"),
    ],
};

pub const FAILURES: Ledger = Ledger {
    file: "pending_failures",
    sheet: "开票失败",
    rows: "FROM pending_invoice p
          WHERE p.status = 'failed' AND p.deleted_at IS NULL
            AND (p.updated_at AT TIME ZONE {tz})::date BETWEEN {from} AND {to} AND ({taxnos} IS NULL OR p.seller_tax_no = ANY({taxnos}))",
    order_by: "p.seller_tax_no, p.updated_at, p.id",
    columns: &[
        col!("id", "待开发票号", Int, "p.id"),
        col!("seller_tax_no", "销方税号", Text, "p.seller_tax_no"),
        col!("day", "日期", Text, "(p.updated_at AT TIME ZONE {tz})::date"),
        col!("bills", "单据编号", Text, "(SELECT string_agg(bill_no, ',' ORDER BY bill_no) FROM pending_bill b WHERE b.pending_id = p.id)"),
        col!("data_source", "数据来源", Text, "p.data_source"),
        col!("invoice_property", "蓝字0/红字1", Int, "p.invoice_property"),
        col!("serial_no", "流水号", Text, "p.serial_no"),
        col!("total", "价税合计", Money, "p.total"),
        col!("error_message", "失败原因", Text, "p.error_message"),
        col!("reissue_count", "重开次数", Int, "p.reissue_count"),
        col!("retry_not_before", "可重开时间", Text, "to_char(p.retry_not_before AT TIME ZONE {tz}, 'YYYY-MM-DD HH24:MI')"),
    ],
};

pub const CALLBACKS: Ledger = Ledger {
    file: "callbacks",
    sheet: "回调",
    rows: "FROM callback c JOIN application a ON a.bill_no = c.bill_no
          WHERE (c.created_at AT TIME ZONE {tz})::date BETWEEN {from} AND {to} AND ({taxnos} IS NULL OR a.seller_tax_no = ANY({taxnos}))",
    order_by: "c.id",
    columns: &[
        col!("id", "回调号", Int, "c.id"),
        col!("bill_no", "单据编号", Text, "c.bill_no"),
        col!("seller_tax_no", "销方税号", Text, "a.seller_tax_no"),
        col!("business_system", "业务系统", Text, "c.business_system"),
        col!("interface_code", "接口", Text, "c.interface_code"),
        col!("return_code", "returnCode", Text, "c.body->>'returnCode'"),
        col!("state", "状态", Text, "c.state"),
        col!("attempts", "尝试次数", Int, "c.attempts"),
        col!("last_error", "最后错误", Text, "c.last_error"),
        col!("created_at", "创建时间", Text, "to_char(c.created_at AT TIME ZONE {tz}, 'YYYY-MM-DD HH24:MI:SS')"),
    ],
};

pub const POOL: Ledger = Ledger {
    file: "pool_invoices",
    sheet: "发票池",
    rows: "FROM invoice_pool v WHERE v.invoice_date BETWEEN {from} AND {to} AND ({taxnos} IS NULL OR v.tax_no = ANY({taxnos}))",
    order_by: "v.tax_no, v.invoice_date, v.invoice_code, v.invoice_num",
    columns: &[
        col!("tax_no", "购方税号（本企业）", Text, "v.tax_no"),
        col!("invoice_date", "开票日期", Text, "v.invoice_date"),
        col!("invoice_kind", "发票种类", Text, "v.invoice_kind"),
        col!("invoice_code", "发票代码", Text, "v.invoice_code"),
        col!("invoice_num", "发票号码", Text, "v.invoice_num"),
        col!("seller_name", "销方名称", Text, "v.seller_name"),
        col!("seller_tax_no", "销方税号", Text, "v.seller_tax_no"),
        col!("amount", "金额", Money, "v.amount"),
        col!("tax", "税额", Money, "v.tax"),
        col!("total", "价税合计", Money, "v.total"),
        col!("status", "发票状态", Text, "v.status"),
        col!("source", "来源", Text, "v.source"),
        col!("verified", "已查验", Text, "CASE WHEN v.verified THEN '是' ELSE '否' END"),
        col!("deductible", "可抵扣", Text, "CASE WHEN v.deductible THEN '是' ELSE '否' END"),
        col!("deductible_tax", "可抵扣税额", Money, "CASE WHEN v.deductible THEN v.tax ELSE 0 END"),
        col!("deductible_reason", "不可抵扣原因", Text, "v.deductible_reason"),
        col!("signed", "已签收", Text, "CASE WHEN v.signed THEN '是' ELSE '否' END"),
    ],
};

pub const DOWNLOADS: Ledger = Ledger {
    file: "download_log",
    sheet: "下载日志",
    rows: "FROM download_log d WHERE d.invoice_date BETWEEN {from} AND {to} AND ({taxnos} IS NULL OR d.tax_no = ANY({taxnos}))",
    order_by: "d.id",
    columns: &[
        col!("id", "日志号", Int, "d.id"),
        col!("tax_no", "税号", Text, "d.tax_no"),
        col!("etax_account", "电子税局账号", Text, "d.etax_account"),
        col!("invoice_date", "发票日期", Text, "d.invoice_date"),
        col!("task_id", "任务号", Text, "d.task_id"),
        col!("state", "状态", Text, "d.state"),
        col!("total", "发票数", Int, "d.total"),
        col!("pages_fetched", "已取页数", Int, "d.pages_fetched"),
        col!("error", "错误", Text, "d.error"),
    ],
};

pub const JOB_RUNS: Ledger = Ledger {
    file: "job_runs",
    sheet: "调度记录",
    rows: "FROM job_run j WHERE (j.scheduled_for AT TIME ZONE {tz})::date BETWEEN {from} AND {to}",
    order_by: "j.scheduled_for, j.id",
    columns: &[
        col!("id", "运行号", Int, "j.id"),
        col!("job", "任务", Text, "j.job"),
        col!(
            "scheduled_for",
            "计划时间",
            Text,
            "to_char(j.scheduled_for AT TIME ZONE {tz}, 'YYYY-MM-DD HH24:MI:SS')"
        ),
        col!("trigger", "触发", Text, "j.trigger"),
        col!("state", "状态", Text, "j.state"),
        col!("rows_read", "读取", Int, "j.rows_read"),
        col!("rows_written", "写入", Int, "j.rows_written"),
        col!("rows_rejected", "拒绝", Int, "j.rows_rejected"),
        col!("reason", "原因", Text, "j.reason"),
        col!("error", "错误", Text, "j.error"),
    ],
};

pub const BILLING_UNITS: Ledger = Ledger {
    file: "billing_units",
    sheet: "票量",
    rows: "FROM billing_unit u
           LEFT JOIN LATERAL (SELECT v.tax_no FROM invoice_pool v WHERE v.invoice_code = u.invoice_code AND v.invoice_num = u.invoice_num LIMIT 1) v ON true
          WHERE (u.first_charged_at AT TIME ZONE {tz})::date BETWEEN {from} AND {to} AND ({taxnos} IS NULL OR v.tax_no = ANY({taxnos}))",
    order_by: "u.first_charged_at, u.invoice_code, u.invoice_num",
    columns: &[
        col!("tax_no", "税号", Text, "v.tax_no"),
        col!("day", "日期", Text, "(u.first_charged_at AT TIME ZONE {tz})::date"),
        col!("invoice_code", "发票代码", Text, "u.invoice_code"),
        col!("invoice_num", "发票号码", Text, "u.invoice_num"),
        col!("recognition", "识别", Text, "CASE WHEN u.recognition_charged THEN '是' ELSE '否' END"),
        col!("verification", "查验", Text, "CASE WHEN u.verification_charged THEN '是' ELSE '否' END"),
        col!("units", "票量", Money, "u.units"),
    ],
};

/// Every ledger, in the order of the workbook's sheets.
pub const ALL: [&Ledger; 8] =
    [&ISSUED, &RED_FLUSHES, &FAILURES, &CALLBACKS, &POOL, &DOWNLOADS, &JOB_RUNS, &BILLING_UNITS];

/// The period and filter, as SQL literals (dates we formatted, tax numbers that parsed, a time
/// zone that chrono-tz knows — nothing a user typed goes in raw).
pub struct Filter {
    pub from: String,
    pub to: String,
    pub taxnos: String,
    pub tz: String,
}

impl Ledger {
    /// `COPY (SELECT …) TO STDOUT WITH (FORMAT csv, HEADER)` for this ledger and filter.
    pub fn copy_sql(&self, f: &Filter) -> String {
        let fill = |s: &str| {
            s.replace("{from}", &f.from)
                .replace("{to}", &f.to)
                .replace("{taxnos}", &f.taxnos)
                .replace("{tz}", &f.tz)
        };
        let select: Vec<String> = self
            .columns
            .iter()
            .map(|c| {
                let e = fill(c.sql);
                match c.kind {
                    Kind::Text => format!("neutralize(({e})::text) AS {}", c.name),
                    Kind::Money => format!("round(({e}) * 100)::bigint AS {}", c.name),
                    Kind::Int => format!("({e})::bigint AS {}", c.name),
                }
            })
            .collect();
        format!(
            "COPY (SELECT {} {} ORDER BY {}) TO STDOUT WITH (FORMAT csv, HEADER)",
            select.join(", "),
            fill(self.rows),
            self.order_by
        )
    }
}
