-- The web console: users with a role and an optional tenant scope, sessions, login throttling,
-- the audit log; why a job is paused; the run ledger's keyset order for /runs.

CREATE TABLE app_user (
    id             bigserial   PRIMARY KEY,
    name           text        NOT NULL UNIQUE,
    role           text        NOT NULL CHECK (role IN ('admin', 'ops', 'finance', 'auditor')),
    -- The enterprises this user sees and acts on; empty: all of them.
    tax_nos        text[]      NOT NULL DEFAULT '{}',
    -- Argon2id in PHC string form.
    password_hash  text        NOT NULL,
    disabled       boolean     NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- A session is known by the SHA-256 of its cookie value only (a leaked table gives no cookies).
CREATE TABLE web_session (
    id_hash     text        PRIMARY KEY,
    user_id     bigint      NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    source      text
);
CREATE INDEX web_session_user ON web_session (user_id);
CREATE INDEX web_session_expires ON web_session (expires_at);

-- Failed logins per name (known or not): from the 6th on, the next attempt must wait.
CREATE TABLE login_failure (
    name          text        PRIMARY KEY,
    failures      integer     NOT NULL,
    last_failure  timestamptz NOT NULL
);

-- Every action that changes something: who, when, from where, what, target, outcome.
CREATE TABLE audit_log (
    id       bigserial   PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    actor    text        NOT NULL,
    source   text        NOT NULL,
    action   text        NOT NULL,
    target   text        NOT NULL DEFAULT '',
    outcome  text        NOT NULL CHECK (outcome IN ('ok', 'refused', 'failed')),
    detail   text        NOT NULL DEFAULT '',
    -- The enterprises the row is about; empty: none in particular (a user scoped to some
    -- enterprises sees the rows whose tax numbers are all in the scope).
    tax_nos  text[]      NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log (at DESC, id DESC);

ALTER TABLE job_control
    ADD COLUMN reason     text,
    ADD COLUMN paused_by  text;

-- /runs pages newest first by (scheduled_for, id).
CREATE INDEX job_run_keyset ON job_run (scheduled_for DESC, id DESC);
-- The dashboard's failures of the last 24 h per job (without it: every run of the job read).
CREATE INDEX job_run_failed ON job_run (job, finished_at) WHERE state = 'failed';
