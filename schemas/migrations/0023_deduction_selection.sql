-- 抵扣类勾选 (deduction selection, seed 004). A pool invoice is selected for a tax period
-- (税款所属期) through a batch the bureau works on: synchronously (rim_config/rpa_select_syn = 1)
-- or as an asynchronous batch that deduct-poll follows. The batch and its invoices are stored
-- before the call (its number is ours), so a lost answer is settled by asking about the batch.

ALTER TABLE invoice_pool
    ADD COLUMN select_state  text NOT NULL DEFAULT 'unselected'
        CHECK (select_state IN ('unselected', 'selecting', 'selected', 'unselecting')),
    ADD COLUMN select_period text CHECK (select_period ~ '^[0-9]{6}$');
CREATE INDEX invoice_pool_selected ON invoice_pool (tax_no, select_period) WHERE select_state <> 'unselected';

CREATE TABLE select_batch (
    id          bigserial   PRIMARY KEY,
    batch_no    text        NOT NULL UNIQUE,
    tax_no      text        NOT NULL REFERENCES enterprise,
    period      text        NOT NULL CHECK (period ~ '^[0-9]{6}$'),
    action      text        NOT NULL CHECK (action IN ('select', 'unselect')),
    sync        boolean     NOT NULL,
    state       text        NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'processing', 'done', 'failed', 'stopped')),
    message     text        NOT NULL DEFAULT '',
    -- Whether the channel has acknowledged it (a lost answer leaves it false until a poll finds it).
    acknowledged boolean    NOT NULL DEFAULT false,
    actor       text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX select_batch_open ON select_batch (id) WHERE state IN ('pending', 'processing');

CREATE TABLE select_batch_item (
    batch_id     bigint NOT NULL REFERENCES select_batch ON DELETE CASCADE,
    tax_no       text   NOT NULL,
    invoice_code text   NOT NULL,
    invoice_num  text   NOT NULL,
    outcome      text   NOT NULL DEFAULT 'pending' CHECK (outcome IN ('pending', 'succeeded', 'failed', 'stopped')),
    message      text   NOT NULL DEFAULT '',
    PRIMARY KEY (batch_id, tax_no, invoice_code, invoice_num),
    FOREIGN KEY (tax_no, invoice_code, invoice_num) REFERENCES invoice_pool ON DELETE CASCADE
);
CREATE INDEX select_batch_item_invoice ON select_batch_item (tax_no, invoice_code, invoice_num);

-- 勾选日志 (rim_select_log): every selection operation on every invoice — submitted, its result,
-- a stop — with who did it.
CREATE TABLE select_log (
    id           bigserial   PRIMARY KEY,
    tax_no       text        NOT NULL,
    invoice_code text        NOT NULL,
    invoice_num  text        NOT NULL,
    batch_no     text        NOT NULL,
    action       text        NOT NULL CHECK (action IN ('select', 'unselect')),
    period       text        NOT NULL,
    outcome      text        NOT NULL CHECK (outcome IN ('pending', 'succeeded', 'failed', 'stopped')),
    message      text        NOT NULL DEFAULT '',
    actor        text        NOT NULL,
    at           timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX select_log_invoice ON select_log (tax_no, invoice_code, invoice_num, id);

ALTER TABLE invoice_pool_log DROP CONSTRAINT invoice_pool_log_event_check;
ALTER TABLE invoice_pool_log ADD CONSTRAINT invoice_pool_log_event_check
    CHECK (event IN ('status_changed', 'used', 'released', 'selected', 'unselected'));
