-- Excel import: batches (a file lands once: unique content hash among imported batches), the
-- problems of each, invoice applications with their lines, and red-flush lists.

CREATE TABLE import_batch (
    id               bigserial   PRIMARY KEY,
    kind             text        NOT NULL CHECK (kind IN ('applications', 'pool', 'red-flush')),
    file_name        text        NOT NULL,
    content_hash     text        NOT NULL,
    rows_read        integer     NOT NULL,
    bills            integer     NOT NULL,
    accepted         integer     NOT NULL,
    rejected         integer     NOT NULL,
    unknown_columns  text[]      NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX import_batch_content ON import_batch (content_hash);

CREATE TABLE import_problem (
    batch_id     bigint  NOT NULL REFERENCES import_batch (id),
    row_no       integer NOT NULL,
    column_name  text    NOT NULL,
    code         text    NOT NULL,
    message      text    NOT NULL
);
CREATE INDEX import_problem_batch ON import_problem (batch_id, row_no);

-- 开票申请单 (applications) and their lines.
CREATE TABLE application (
    bill_no               text        PRIMARY KEY,
    bill_date             date        NOT NULL,
    seller_tax_no         text        NOT NULL REFERENCES enterprise (tax_no),
    buyer_name            text        NOT NULL,
    buyer_tax_no          text,
    buyer_address_phone   text,
    buyer_bank_account    text,
    invoice_kind          text        NOT NULL,
    remark                text,
    auto_issue            boolean     NOT NULL DEFAULT false,
    business_system_code  text,
    source                text        NOT NULL CHECK (source IN ('批量导入', '直接开票接口')),
    state                 text        NOT NULL DEFAULT 'received'
                          CHECK (state IN ('received', 'pushed', 'partially_issued', 'issued', 'withdrawn', 'returned')),
    batch_id              bigint      REFERENCES import_batch (id),
    created_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX application_seller ON application (seller_tax_no, state);

CREATE TABLE application_line (
    bill_no        text          NOT NULL REFERENCES application (bill_no),
    line_no        integer       NOT NULL,
    goods_name     text          NOT NULL,
    revenue_code   text          NOT NULL,
    specification  text,
    unit           text,
    quantity       numeric(24,8),
    price          numeric(24,8),
    amount         numeric(18,2) NOT NULL,
    tax_rate       numeric(6,4)  NOT NULL,
    tax            numeric(18,2) NOT NULL,
    total          numeric(18,2) NOT NULL,
    tax_included   boolean       NOT NULL DEFAULT false,
    line_property  text          NOT NULL DEFAULT 'normal' CHECK (line_property IN ('normal', 'discount', 'discounted')),
    source_row     integer,
    PRIMARY KEY (bill_no, line_no)
);

-- Red-flush lists waiting for the red-flush pipeline.
CREATE TABLE red_flush_request (
    id            bigserial     PRIMARY KEY,
    batch_id      bigint        NOT NULL REFERENCES import_batch (id),
    row_no        integer       NOT NULL,
    invoice_code  text          NOT NULL DEFAULT '',
    invoice_num   text          NOT NULL,
    red_amount    numeric(18,2),
    red_reason    text          NOT NULL CHECK (red_reason IN ('01', '02', '03', '04')),
    state         text          NOT NULL DEFAULT 'pending',
    created_at    timestamptz   NOT NULL DEFAULT now()
);
