-- 抵扣类勾选数据下载: download-apply asks for deduction data (scope `deduction`: the input
-- invoices with the period each is selected for at the bureau) where the enterprise may have it —
-- never for small-scale taxpayers (seed 004: 小规模纳税人不支持抵扣类勾选数据下载), who get the
-- input invoices only (scope `all`). What the bureau reports reaches the pool's 勾选状态 in deal-task,
-- so an invoice selected on the e-tax website shows as selected here too.
ALTER TABLE download_log ADD COLUMN scope text NOT NULL DEFAULT 'all' CHECK (scope IN ('all', 'deduction'));
-- select_known: the download carried selection data; select_period: the period the invoice is
-- selected for there (NULL: not selected).
ALTER TABLE download_staging
    ADD COLUMN select_known  boolean NOT NULL DEFAULT false,
    ADD COLUMN select_period text;

-- 进项状态更新的发票是否查验入库 (seed 004, a switch of the sync scheme): a pooled invoice that
-- a download reports with another status is verified again (its lines and deductibility renewed).
ALTER TABLE sync_scheme ADD COLUMN verify_changed boolean NOT NULL DEFAULT false;

ALTER TABLE invoice_pool_log DROP CONSTRAINT invoice_pool_log_event_check;
ALTER TABLE invoice_pool_log ADD CONSTRAINT invoice_pool_log_event_check
    CHECK (event IN ('status_changed', 'verified', 'used', 'released', 'selected', 'unselected'));

-- How an imported invoice entered: its import batch (downloads keep their staging row).
ALTER TABLE invoice_pool ADD COLUMN import_batch_id bigint;
