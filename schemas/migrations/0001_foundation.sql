-- Foundation: parameters, enterprises, sync schemes, the job-run ledger.
-- Forward-only: never edit a migration that has landed; add a new one.
-- Enumerations are text with CHECK constraints so that rows read plainly in psql.

-- 参数配置单据 (SPEC.md "Parameters"); defaults live in code, rows hold what was set.
CREATE TABLE sys_param (
    type        text        NOT NULL CHECK (type <> ''),
    key         text        NOT NULL CHECK (key <> ''),
    value       text        NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (type, key)
);

-- Every change to a parameter, for operations to answer "who turned the sync off, when".
CREATE TABLE sys_param_history (
    id          bigserial   PRIMARY KEY,
    type        text        NOT NULL,
    key         text        NOT NULL,
    old_value   text,
    new_value   text,       -- NULL: unset (back to the default)
    changed_at  timestamptz NOT NULL DEFAULT now(),
    changed_by  text        NOT NULL DEFAULT current_user
);

-- The tenant's enterprises (企业信息).
CREATE TABLE enterprise (
    tax_no         text        PRIMARY KEY,
    name           text        NOT NULL CHECK (name <> ''),
    taxpayer_kind  text        NOT NULL CHECK (taxpayer_kind IN ('general', 'small_scale')),
    etax_account   text        NOT NULL CHECK (etax_account <> ''),
    channel        text        NOT NULL CHECK (channel IN ('leqi', 'etax')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
-- Downloads are serialized per e-tax account (seed 004: 请核对用户信息或重新调用登录接口).
CREATE INDEX enterprise_etax_account ON enterprise (etax_account);

-- 全量发票数据同步设置: what apply-cache works from.
CREATE TABLE sync_scheme (
    code        text        PRIMARY KEY CHECK (code <> ''),
    tax_no      text        NOT NULL REFERENCES enterprise (tax_no),
    start_date  date        NOT NULL,
    active      boolean     NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sync_scheme_tax_no ON sync_scheme (tax_no);

-- The run ledger: one row per due tick (job, scheduled time), or per manual run.
CREATE TABLE job_run (
    id             bigserial   PRIMARY KEY,
    job            text        NOT NULL,
    scheduled_for  timestamptz NOT NULL,
    trigger        text        NOT NULL CHECK (trigger IN ('schedule', 'manual')),
    state          text        NOT NULL DEFAULT 'due'
                   CHECK (state IN ('due', 'running', 'succeeded', 'failed', 'skipped', 'missed')),
    reason         text,
    started_at     timestamptz,
    finished_at    timestamptz,
    rows_read      bigint      NOT NULL DEFAULT 0,
    rows_written   bigint      NOT NULL DEFAULT 0,
    rows_rejected  bigint      NOT NULL DEFAULT 0,
    error          text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (job, scheduled_for)
);
CREATE INDEX job_run_state ON job_run (state, scheduled_for);
