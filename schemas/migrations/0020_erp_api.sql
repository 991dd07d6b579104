-- The inbound ERP API (issue 17, seed 001 开票申请单异构对接): business systems (业务系统) with
-- their credentials, the tokens they were given, the bills they pushed (the idempotency key),
-- and the request log.

-- 系统管理 → 业务系统列表: who may call, for which sellers, and where its callbacks go.
CREATE TABLE business_system (
    code           text        PRIMARY KEY,
    name           text        NOT NULL,
    app_id         text        NOT NULL UNIQUE,
    -- Argon2id PHC string of the appSecret; the secret itself is shown once and never stored.
    secret_hash    text        NOT NULL,
    -- The password of AES-GCM `data` (symmetric, so it must be kept as is); NULL: plain Base64.
    data_password  text,
    -- Replaces callbacks.url for this system's bills; NULL: the template.
    callback_url   text,
    -- The sellers this system may act for (1130 otherwise).
    tax_nos        text[]      NOT NULL DEFAULT '{}',
    disabled       boolean     NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- app tokens (getAppToken.do) and access tokens (login.do), by their SHA-256 only.
CREATE TABLE api_token (
    token_hash   text        PRIMARY KEY,
    system_code  text        NOT NULL REFERENCES business_system (code),
    kind         text        NOT NULL CHECK (kind IN ('app', 'access')),
    expires_at   timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_token_system ON api_token (system_code);

-- Bills accepted through BILL.PUSH: the same number from the same system again is answered from
-- here. The primary key is the idempotency key: two concurrent pushes of one bill meet on it
-- (the second waits for the first to commit, then finds its row), never check-then-insert.
CREATE TABLE erp_bill (
    system_code  text        NOT NULL REFERENCES business_system (code),
    bill_no      text        NOT NULL,
    -- SHA-256 of the bill as sent (canonical JSON): a changed body under the same number is refused.
    body_hash    text        NOT NULL,
    answer       jsonb       NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (system_code, bill_no)
);

-- Every call of the API: never the token, the secret or the body.
CREATE TABLE api_request_log (
    id              bigserial   PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT now(),
    system_code     text,
    interface_code  text        NOT NULL,
    request_id      text,
    bills           integer     NOT NULL DEFAULT 0,
    accepted        integer     NOT NULL DEFAULT 0,
    refused         integer     NOT NULL DEFAULT 0,
    -- errorCode of the answer ("0": success).
    outcome         text        NOT NULL,
    message         text        NOT NULL DEFAULT '',
    duration_ms     integer     NOT NULL,
    remote          text
);
CREATE INDEX api_request_log_at ON api_request_log (at DESC);
