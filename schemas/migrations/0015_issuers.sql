-- 开票人、收款人、复核人 per enterprise (seed 000; before: one global drawer, no payee or
-- reviewer), and on each pending invoice as it was sent, so the issued invoice keeps them.
CREATE TABLE enterprise_issuer (
    tax_no      text        PRIMARY KEY REFERENCES enterprise (tax_no),
    drawer      text        NOT NULL CHECK (btrim(drawer) <> ''),
    payee       text,
    reviewer    text,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE pending_invoice ADD COLUMN drawer text, ADD COLUMN payee text, ADD COLUMN reviewer text;
