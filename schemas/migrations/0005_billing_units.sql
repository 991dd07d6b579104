-- 票量: what the tenant has been charged per invoice identity (seed 004 rules 1–8). One row per
-- invoice for the whole tenant; never decremented (re-collecting or deleting does not refund).
CREATE TABLE billing_unit (
    invoice_code          text          NOT NULL DEFAULT '',
    invoice_num           text          NOT NULL,
    recognition_charged   boolean       NOT NULL DEFAULT false,
    verification_charged  boolean       NOT NULL DEFAULT false,
    units                 numeric(6,1)  NOT NULL DEFAULT 0,
    first_charged_at      timestamptz   NOT NULL DEFAULT now(),
    updated_at            timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (invoice_code, invoice_num)
);
