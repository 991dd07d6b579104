-- 发票操作日志 (rim_invoice_log, seed 004) of the pool: what happened to an invoice after it
-- entered — a later status from the bureau (voided, red-flushed, abnormal, out of control) with
-- the deductibility decided again. The pool row keeps how it entered (source, staging_id,
-- created_at).
CREATE TABLE invoice_pool_log (
    id            bigserial   PRIMARY KEY,
    tax_no        text        NOT NULL,
    invoice_code  text        NOT NULL,
    invoice_num   text        NOT NULL,
    event         text        NOT NULL CHECK (event IN ('status_changed')),
    detail        text        NOT NULL,
    at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    FOREIGN KEY (tax_no, invoice_code, invoice_num) REFERENCES invoice_pool ON DELETE CASCADE
);
CREATE INDEX invoice_pool_log_invoice ON invoice_pool_log (tax_no, invoice_code, invoice_num, id);
