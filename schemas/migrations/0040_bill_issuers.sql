-- 开票人、收款人、复核人 a bill asks for (issue 20: a receipt code's own drawer, payee and
-- reviewer, or the drawer of the merchant's GET.ORDER answer). When a pending invoice's bills name
-- issuers, they go on the invoice instead of the seller's (enterprise_issuer).
CREATE TABLE bill_issuer (
    bill_no     text        PRIMARY KEY,
    drawer      text        NOT NULL CHECK (btrim(drawer) <> ''),
    payee       text,
    reviewer    text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
