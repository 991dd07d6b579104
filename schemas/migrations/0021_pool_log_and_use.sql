-- 发票操作日志 (rim_invoice_log, seed 004) of the pool: what happened to an invoice after it
-- entered — a later status from the bureau (voided, red-flushed, abnormal, out of control) with
-- the deductibility decided again; a document using part of it, and its release. The pool row
-- keeps how it entered (source, staging_id, created_at).
CREATE TABLE invoice_pool_log (
    id            bigserial   PRIMARY KEY,
    tax_no        text        NOT NULL,
    invoice_code  text        NOT NULL,
    invoice_num   text        NOT NULL,
    event         text        NOT NULL CHECK (event IN ('status_changed', 'used', 'released')),
    detail        text        NOT NULL,
    at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    FOREIGN KEY (tax_no, invoice_code, invoice_num) REFERENCES invoice_pool ON DELETE CASCADE
);
CREATE INDEX invoice_pool_log_invoice ON invoice_pool_log (tax_no, invoice_code, invoice_num, id);

-- 发票使用: an expense or payment document (单据) uses part of a pool invoice's amount, with its
-- voucher number (凭证号); a document called twice keeps both (seed 004: 全票池上显示两个凭证号).
-- Released when the document is deleted. What is used never exceeds the invoice's total.
CREATE TABLE invoice_use (
    id            bigserial     PRIMARY KEY,
    tax_no        text          NOT NULL,
    invoice_code  text          NOT NULL,
    invoice_num   text          NOT NULL,
    document_no   text          NOT NULL CHECK (document_no <> ''),
    voucher_no    text,
    amount        numeric(18,2) NOT NULL CHECK (amount > 0),
    used_at       timestamptz   NOT NULL DEFAULT now(),
    released_at   timestamptz,
    FOREIGN KEY (tax_no, invoice_code, invoice_num) REFERENCES invoice_pool ON DELETE CASCADE
);
CREATE INDEX invoice_use_invoice ON invoice_use (tax_no, invoice_code, invoice_num) WHERE released_at IS NULL;
CREATE INDEX invoice_use_document ON invoice_use (document_no) WHERE released_at IS NULL;
