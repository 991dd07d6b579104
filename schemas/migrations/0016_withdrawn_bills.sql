-- 撤回 (seed 001): a withdrawn bill is gone, so its number may come again (a corrected bill from
-- the ERP). What it was is kept here: the application and its lines as JSON, and when.
CREATE TABLE application_withdrawal (
    id            bigserial   PRIMARY KEY,
    bill_no       text        NOT NULL,
    batch_id      bigint      REFERENCES import_batch (id),
    application   jsonb       NOT NULL,
    lines         jsonb       NOT NULL,
    withdrawn_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX application_withdrawal_bill ON application_withdrawal (bill_no);
