-- Invoicing: pending invoices (待开发票) cut from applications, every issuing attempt with the
-- serial number it used (stored before the call), issued invoices, and per-bill callbacks.

-- Serial numbers start with this installation's id, so two databases talking to one channel
-- never collide.
CREATE TABLE installation (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    id         text    NOT NULL DEFAULT substr(replace(gen_random_uuid()::text, '-', ''), 1, 10)
);
INSERT INTO installation DEFAULT VALUES;

ALTER TABLE application ADD COLUMN state_changed_at timestamptz NOT NULL DEFAULT now();

CREATE TABLE pending_invoice (
    id                     bigserial     PRIMARY KEY,
    seller_tax_no          text          NOT NULL REFERENCES enterprise (tax_no),
    seller_address_phone   text,
    seller_bank_account    text,
    buyer_name             text          NOT NULL,
    buyer_tax_no           text,
    buyer_address_phone    text,
    buyer_bank_account     text,
    invoice_kind           text          NOT NULL,
    -- 0 blue, 1 red.
    invoice_property       smallint      NOT NULL DEFAULT 0 CHECK (invoice_property IN (0, 1)),
    remark                 text,
    business_system_code   text,
    data_source            text          NOT NULL CHECK (data_source IN
                           ('单张开票', '批量导入', '直接开票接口', '单据拆合', '作废重开', '扫码开票', '手工新增红字信息表编号', '小票码开票')),
    approval_state         text          NOT NULL DEFAULT '无需审批' CHECK (approval_state IN ('暂存', '待审批', '审批通过', '无需审批')),
    status                 text          NOT NULL DEFAULT 'not_issued'
                           CHECK (status IN ('not_issued', 'submitted', 'issuing', 'failed', 'succeeded')),
    -- The serial of the current attempt; stored (with its attempt row) before the call is made.
    serial_no              text          UNIQUE,
    amount                 numeric(18,2) NOT NULL,
    tax                    numeric(18,2) NOT NULL,
    total                  numeric(18,2) NOT NULL,
    auto_issue             boolean       NOT NULL DEFAULT false,
    error_message          text,
    -- From a "请<time>后再试" in the error: not reissued before this.
    retry_not_before       timestamptz,
    reissue_count          integer       NOT NULL DEFAULT 0,
    -- For red invoices: the blue invoice, the form or sheet, the reason (filled by red-flush).
    blue_invoice_id        bigint,
    red_reason             text,
    red_document_no        text,
    deleted_at             timestamptz,
    created_at             timestamptz   NOT NULL DEFAULT now(),
    updated_at             timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX pending_invoice_status ON pending_invoice (status) WHERE deleted_at IS NULL;

-- The lines of a pending invoice, each pointing at the application line it came from (a cut
-- line appears on several pending invoices with its share).
CREATE TABLE pending_line (
    pending_id     bigint        NOT NULL REFERENCES pending_invoice (id),
    seq            integer       NOT NULL,
    bill_no        text,
    bill_line_no   integer,
    line_property  text          NOT NULL CHECK (line_property IN ('normal', 'discount', 'discounted')),
    goods_name     text          NOT NULL,
    revenue_code   text          NOT NULL,
    specification  text,
    unit           text,
    quantity       numeric(24,8),
    price          numeric(24,8),
    amount         numeric(18,2) NOT NULL,
    tax_rate       numeric(6,4)  NOT NULL,
    tax            numeric(18,2) NOT NULL,
    PRIMARY KEY (pending_id, seq),
    FOREIGN KEY (bill_no, bill_line_no) REFERENCES application_line (bill_no, line_no)
);
CREATE INDEX pending_line_bill ON pending_line (bill_no, bill_line_no);

-- Which bills a pending invoice serves (several when merged).
CREATE TABLE pending_bill (
    pending_id  bigint NOT NULL REFERENCES pending_invoice (id),
    bill_no     text   NOT NULL REFERENCES application (bill_no),
    PRIMARY KEY (pending_id, bill_no)
);
CREATE INDEX pending_bill_bill ON pending_bill (bill_no);

-- Every attempt at issuing: one serial each, written before the call.
CREATE TABLE issue_attempt (
    serial_no    text        PRIMARY KEY,
    pending_id   bigint      NOT NULL REFERENCES pending_invoice (id),
    attempt      integer     NOT NULL,
    -- sending → accepted | lost (answer lost: settle by query) | refused | succeeded | failed | never_accepted
    outcome      text        NOT NULL DEFAULT 'sending',
    message      text,
    started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    settled_at   timestamptz,
    UNIQUE (pending_id, attempt)
);

-- What happened to a pending invoice, in order (status changes, returns, edits, deletions).
CREATE TABLE pending_event (
    id          bigserial   PRIMARY KEY,
    pending_id  bigint      NOT NULL REFERENCES pending_invoice (id),
    event       text        NOT NULL,
    detail      text,
    at          timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX pending_event_pending ON pending_event (pending_id, id);

-- 已开发票: one row per succeeded pending invoice, with its red-flushable remainder.
CREATE TABLE issued_invoice (
    id                bigserial     PRIMARY KEY,
    pending_id        bigint        NOT NULL UNIQUE REFERENCES pending_invoice (id),
    serial_no         text          NOT NULL UNIQUE,
    invoice_kind      text          NOT NULL,
    invoice_property  smallint      NOT NULL,
    invoice_code      text          NOT NULL DEFAULT '',
    invoice_num       text          NOT NULL,
    invoice_date      date          NOT NULL,
    seller_tax_no     text          NOT NULL,
    buyer_name        text          NOT NULL,
    buyer_tax_no      text,
    amount            numeric(18,2) NOT NULL,
    tax               numeric(18,2) NOT NULL,
    total             numeric(18,2) NOT NULL,
    invoice_file_url  text,
    ofd_file_url      text,
    xml_file_url      text,
    -- Red-flush (blue invoices): none | partial (部分红冲) | full (全额红冲).
    red_flush_state   text          NOT NULL DEFAULT 'none' CHECK (red_flush_state IN ('none', 'partial', 'full')),
    -- |total| − |red issued|; kept by the red-flush pipeline.
    remaining         numeric(18,2) NOT NULL,
    -- For red invoices: the blue one.
    blue_invoice_id   bigint        REFERENCES issued_invoice (id),
    status            text          NOT NULL DEFAULT '正常',
    issued_at         timestamptz   NOT NULL DEFAULT now(),
    UNIQUE (invoice_code, invoice_num)
);
CREATE INDEX issued_invoice_seller_day ON issued_invoice (seller_tax_no, invoice_date);
ALTER TABLE pending_invoice ADD FOREIGN KEY (blue_invoice_id) REFERENCES issued_invoice (id);

-- 按单回调: one row per result to tell a bill's ERP; `fingerprint` (the bill's invoice states)
-- makes the same result enqueue once.
CREATE TABLE callback (
    id              bigserial   PRIMARY KEY,
    bill_no         text        NOT NULL REFERENCES application (bill_no),
    interface_code  text        NOT NULL,
    fingerprint     text        NOT NULL,
    -- The bill's 业务系统编码 (NULL: channel.business_system_code); the URL comes from the
    -- configuration at delivery, so a corrected URL applies to callbacks already queued.
    business_system text,
    body            jsonb       NOT NULL,
    state           text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'succeeded', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (bill_no, fingerprint)
);
CREATE INDEX callback_due ON callback (next_attempt_at) WHERE state = 'pending';

-- 发票回调日志: every attempt.
CREATE TABLE callback_log (
    id            bigserial   PRIMARY KEY,
    callback_id   bigint      NOT NULL REFERENCES callback (id),
    attempt       integer     NOT NULL,
    url           text        NOT NULL,
    http_status   integer,
    response      text,
    ok            boolean     NOT NULL,
    at            timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX callback_log_callback ON callback_log (callback_id, attempt);
