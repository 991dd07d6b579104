-- Deliveries (交付) of issued invoices to the buyer, by e-mail or SMS through the channel: each
-- one that the channel accepted, so `fapiao invoices show` can say where an invoice went.
CREATE TABLE invoice_delivery (
    id                 bigserial   PRIMARY KEY,
    issued_invoice_id  bigint      NOT NULL REFERENCES issued_invoice (id),
    channel            text        NOT NULL CHECK (channel IN ('email', 'sms')),
    address            text        NOT NULL,
    delivered_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX invoice_delivery_invoice ON invoice_delivery (issued_invoice_id);
