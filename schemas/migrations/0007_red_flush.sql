-- Red-flush (发票红冲): requests in batches, the red confirmation forms (红字确认单, 数电) and red
-- info sheets (红字信息表, tax-control special) with their state history, and the write-back
-- that reopens an application's lines once its invoice is fully red-flushed.

-- A blue pending invoice whose invoice was fully red-flushed no longer covers its application
-- lines: they are open again (pushed and invoiced anew).
ALTER TABLE pending_invoice ADD COLUMN released_at timestamptz;

CREATE TABLE red_flush_batch (
    id          bigserial   PRIMARY KEY,
    -- cli (--invoice, at most 10) or file (an imported red-flush list, worked 10 at a time)
    source      text        NOT NULL CHECK (source IN ('cli', 'file')),
    import_batch_id bigint  REFERENCES import_batch (id),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- One red-flush of one blue invoice. Refused requests are kept too, with the reason.
CREATE TABLE red_flush (
    id               bigserial     PRIMARY KEY,
    batch_id         bigint        NOT NULL REFERENCES red_flush_batch (id),
    -- The row of the imported list, when it came from one.
    request_id       bigint        REFERENCES red_flush_request (id),
    invoice_code     text          NOT NULL DEFAULT '',
    invoice_num      text          NOT NULL,
    blue_invoice_id  bigint        REFERENCES issued_invoice (id),
    -- Requested gross amount (价税合计), positive; the red invoice carries it negative.
    requested        numeric(18,2),
    red_reason       text          NOT NULL CHECK (red_reason IN ('01', '02', '03', '04')),
    track            text          CHECK (track IN ('direct', 'red_info_sheet', 'confirmation_form')),
    -- refused | waiting (for the form/sheet) | issuing | succeeded | failed | ended (form/sheet void)
    state            text          NOT NULL,
    code             text,
    message          text,
    pending_id       bigint        REFERENCES pending_invoice (id),
    document_id      text,
    created_at       timestamptz   NOT NULL DEFAULT now(),
    updated_at       timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX red_flush_blue ON red_flush (blue_invoice_id);
CREATE INDEX red_flush_state ON red_flush (state);

-- Red confirmation forms and red info sheets, as the channel reports them.
CREATE TABLE red_document (
    id               text          PRIMARY KEY,  -- form billUuid / sheet id
    kind             text          NOT NULL CHECK (kind IN ('form', 'sheet')),
    order_no         text,
    -- form: 01–10; sheet: submitted | approved | rejected | revoked
    state            text          NOT NULL,
    -- form: billNo; sheet: the bureau's redInfoBillNo once approved
    number           text,
    seller_tax_no    text          NOT NULL,
    buyer_tax_no     text,
    invoice_num      text          NOT NULL,
    red_reason       text          NOT NULL,
    amount           numeric(18,2) NOT NULL,
    tax              numeric(18,2) NOT NULL,
    entered_by       text          NOT NULL DEFAULT 'seller',
    red_flush_id     bigint        REFERENCES red_flush (id),
    updated_at       timestamptz   NOT NULL DEFAULT now()
);

CREATE TABLE red_document_event (
    id           bigserial   PRIMARY KEY,
    document_id  text        NOT NULL REFERENCES red_document (id),
    state        text        NOT NULL,
    at           timestamptz NOT NULL DEFAULT clock_timestamp()
);

ALTER TABLE red_flush_request ADD COLUMN red_flush_id bigint REFERENCES red_flush (id);
