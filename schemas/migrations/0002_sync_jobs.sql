-- The sync jobs: run-ledger leases, job controls, download applications and log, the staging
-- table of downloaded headers, and the invoice pool.

-- Leases: a running run beats `heartbeat_at`; a stale one is rescued. `attempt` fences results:
-- a worker may only finish the attempt it claimed.
ALTER TABLE job_run
    ADD COLUMN worker        text,
    ADD COLUMN attempt       integer NOT NULL DEFAULT 1,
    ADD COLUMN heartbeat_at  timestamptz,
    -- The business date a manual run works for (`jobs run NAME --date D`); NULL: the tick's date.
    ADD COLUMN business_date date;
-- Never two runs of one job at once, enforced by the database.
CREATE UNIQUE INDEX job_run_one_running ON job_run (job) WHERE state = 'running';

-- Operator controls, seen by every process.
CREATE TABLE job_control (
    job         text        PRIMARY KEY,
    paused      boolean     NOT NULL DEFAULT false,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Backfill after `sync reset-start` (updateDownInit): the next day apply-cache still has to cover.
ALTER TABLE sync_scheme ADD COLUMN backfill_next date;

-- One application per enterprise and invoice date (apply-cache never duplicates an open one).
CREATE TABLE download_application (
    id            bigserial   PRIMARY KEY,
    tax_no        text        NOT NULL REFERENCES enterprise (tax_no),
    invoice_date  date        NOT NULL,
    state         text        NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'applied', 'done', 'failed')),
    attempts      integer     NOT NULL DEFAULT 0,
    last_error    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tax_no, invoice_date)
);
CREATE INDEX download_application_open ON download_application (state, tax_no);

-- rim_down_log: one row per download application sent to the channel.
CREATE TABLE download_log (
    id              bigserial   PRIMARY KEY,
    application_id  bigint      NOT NULL REFERENCES download_application (id),
    tax_no          text        NOT NULL,
    etax_account    text        NOT NULL,
    invoice_date    date        NOT NULL,
    task_id         text        NOT NULL UNIQUE,
    state           text        NOT NULL DEFAULT 'processing' CHECK (state IN ('processing', 'ready', 'fetched', 'failed')),
    total           bigint,
    pages_fetched   integer     NOT NULL DEFAULT 0,
    error           text,
    sent_at         timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
CREATE INDEX download_log_open ON download_log (state) WHERE state IN ('processing', 'ready');

-- t_rim_down_input: downloaded headers waiting for deal-task.
-- state: pending (已下载表头待查验), done_unverified (处理完成（未自动查验）), done_verified, failed.
CREATE TABLE download_staging (
    id                bigserial   PRIMARY KEY,
    tax_no            text        NOT NULL,
    download_log_id   bigint      REFERENCES download_log (id),
    invoice_kind      text        NOT NULL,
    invoice_code      text        NOT NULL DEFAULT '',
    invoice_num       text        NOT NULL,
    invoice_date      date        NOT NULL,
    seller_name       text        NOT NULL,
    seller_tax_no     text        NOT NULL,
    buyer_name        text        NOT NULL,
    amount            numeric(18,2) NOT NULL,
    tax               numeric(18,2) NOT NULL,
    total             numeric(18,2) NOT NULL,
    check_code        text        NOT NULL DEFAULT '',
    status            text        NOT NULL,
    invoice_property  smallint    NOT NULL,
    blockchain        boolean     NOT NULL DEFAULT false,
    special_business  text        NOT NULL DEFAULT '',
    state             text        NOT NULL DEFAULT 'pending'
                      CHECK (state IN ('pending', 'done_unverified', 'done_verified', 'failed')),
    handle_num        integer     NOT NULL DEFAULT 0,
    reason            text,
    claimed_by        text,
    claimed_until     timestamptz,
    handled_by        text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    -- Re-fetching a page lands nothing twice.
    UNIQUE (download_log_id, invoice_code, invoice_num)
);
CREATE INDEX download_staging_pending ON download_staging (id) WHERE state = 'pending';

-- 全票池: every input invoice an enterprise holds, once per identity (leading key: tax number).
CREATE TABLE invoice_pool (
    tax_no             text        NOT NULL,
    invoice_code       text        NOT NULL DEFAULT '',
    invoice_num        text        NOT NULL,
    invoice_kind       text        NOT NULL,
    invoice_date       date        NOT NULL,
    seller_name        text        NOT NULL,
    seller_tax_no      text        NOT NULL,
    buyer_name         text        NOT NULL,
    amount             numeric(18,2) NOT NULL,
    tax                numeric(18,2) NOT NULL,
    total              numeric(18,2) NOT NULL,
    check_code         text        NOT NULL DEFAULT '',
    status             text        NOT NULL,
    invoice_property   smallint    NOT NULL,
    blockchain         boolean     NOT NULL DEFAULT false,
    special_business   text        NOT NULL DEFAULT '',
    source             text        NOT NULL CHECK (source IN ('tax_bureau', 'import')),
    verified           boolean     NOT NULL DEFAULT false,
    deductible         boolean     NOT NULL,
    deductible_reason  text,
    signed             boolean     NOT NULL DEFAULT false,
    signed_at          timestamptz,
    staging_id         bigint,
    created_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tax_no, invoice_code, invoice_num)
);

-- Lines of verified invoices (what deductibility reads).
CREATE TABLE invoice_pool_line (
    tax_no         text        NOT NULL,
    invoice_code   text        NOT NULL,
    invoice_num    text        NOT NULL,
    seq            integer     NOT NULL,
    goods_name     text        NOT NULL,
    tax_rate       numeric(6,4) NOT NULL,
    amount         numeric(18,2) NOT NULL,
    tax            numeric(18,2) NOT NULL,
    business_type  text        NOT NULL DEFAULT '',
    PRIMARY KEY (tax_no, invoice_code, invoice_num, seq),
    FOREIGN KEY (tax_no, invoice_code, invoice_num) REFERENCES invoice_pool ON DELETE CASCADE
);

-- Deductibility from the header alone (no lines: key_element_check = 0), for set-based
-- deal-task. It mirrors `fapiao_schemas::deductibility::assess` with no lines; a test holds the
-- two to the same answers. Returns the reason code, or NULL when deductible.
CREATE FUNCTION deductibility_without_lines(
    kind text, property smallint, blockchain boolean, status text, invoice_date date, special_business text
) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN kind IN ('taxctl_ordinary', 'taxctl_roll') THEN 'NOT_DEDUCTIBLE_PAPER_ORDINARY'
        WHEN property <> 0 THEN 'NOT_DEDUCTIBLE_NOT_BLUE'
        WHEN blockchain THEN 'NOT_DEDUCTIBLE_BLOCKCHAIN'
        WHEN status NOT IN ('normal', 'partially_red_flushed') THEN 'NOT_DEDUCTIBLE_STATUS'
        WHEN kind IN ('digital_special', 'taxctl_special', 'taxctl_e_special') THEN NULL
        WHEN invoice_date < DATE '2019-04-01' THEN 'NOT_DEDUCTIBLE_BEFORE_2019_04_01'
        WHEN special_business IN ('农产品收购', '资产农产品销售') THEN NULL
        ELSE 'NOT_DEDUCTIBLE_NO_TRANSPORT_LINE'
    END
$$;
