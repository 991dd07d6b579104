-- Dynamic receipt codes (动态小票码开票, seed 003; issue 20).

-- A consumer's invoice lands as an application of its own source.
ALTER TABLE application DROP CONSTRAINT application_source_check;
ALTER TABLE application ADD CONSTRAINT application_source_check
    CHECK (source IN ('批量导入', '直接开票接口', '小票码开票'));

-- 小票码配置: one row per enterprise.
CREATE TABLE receipt_settings (
    tax_no            text        PRIMARY KEY REFERENCES enterprise (tax_no),
    -- selectable invoice kinds (InvoiceKind::as_str), the default among them
    kinds             text[]      NOT NULL CHECK (cardinality(kinds) >= 1),
    default_kind      text        NOT NULL,
    validity_minutes  integer     NOT NULL CHECK (validity_minutes > 0),
    -- the consumer pages' address as printed in links (…/r?…)
    base_url          text        NOT NULL,
    delivery          text        NOT NULL CHECK (delivery IN ('email', 'sms', 'both')),
    mode1             boolean     NOT NULL DEFAULT true,
    mode2             boolean     NOT NULL DEFAULT true,
    -- the merchant's GET.ORDER (3.1.02) for mode-1 links
    order_query_url   text,
    -- the documented Kingdee MD5 link format: forgeable, off unless turned on
    kingdee_compat    boolean     NOT NULL DEFAULT false,
    kingdee_key       text        UNIQUE,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (default_kind = ANY (kinds))
);

-- HMAC keys per enterprise: the newest unretired key signs; every unretired key verifies.
CREATE TABLE receipt_key (
    tax_no      text        NOT NULL REFERENCES enterprise (tax_no),
    key_id      text        NOT NULL CHECK (key_id ~ '^[A-Za-z0-9_-]{1,32}$'),
    secret      bytea       NOT NULL CHECK (length(secret) >= 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    retired_at  timestamptz,
    PRIMARY KEY (tax_no, key_id)
);

-- 开票项: the goods catalogue receipt-code lines pick from.
CREATE TABLE goods_item (
    id             bigserial     PRIMARY KEY,
    tax_no         text          NOT NULL REFERENCES enterprise (tax_no),
    name           text          NOT NULL CHECK (name <> ''),
    revenue_code   text          NOT NULL CHECK (revenue_code ~ '^[0-9]{19}$'),
    tax_rate       numeric(6,4)  NOT NULL,
    specification  text,
    unit           text,
    price          numeric(24,8),
    disabled       boolean       NOT NULL DEFAULT false,
    created_at     timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX goods_item_seller ON goods_item (tax_no, disabled);

-- 小票码: a receipt (stored by the console/CLI, or uploaded by an ERP in mode 2) and its lines.
CREATE TABLE receipt_code (
    id             bigserial     PRIMARY KEY,
    tax_no         text          NOT NULL REFERENCES enterprise (tax_no),
    serial_no      text          NOT NULL CHECK (serial_no ~ '^[A-Za-z0-9_-]{1,50}$'),
    origin         text          NOT NULL CHECK (origin IN ('manual', 'api')),
    device_no      text,
    etax_account   text,
    kinds          text[]        NOT NULL CHECK (cardinality(kinds) >= 1),
    default_kind   text          NOT NULL,
    valid_until    timestamptz   NOT NULL,
    bottom_remark  text,
    drawer         text          NOT NULL CHECK (drawer <> ''),
    payee          text,
    reviewer       text,
    remark         text,
    amount         numeric(18,2) NOT NULL,
    tax            numeric(18,2) NOT NULL,
    total          numeric(18,2) NOT NULL CHECK (total > 0),
    disabled_at    timestamptz,
    created_by     text          NOT NULL,
    created_at     timestamptz   NOT NULL DEFAULT now(),
    UNIQUE (tax_no, serial_no),
    CHECK (default_kind = ANY (kinds))
);

CREATE TABLE receipt_code_line (
    receipt_id     bigint        NOT NULL REFERENCES receipt_code (id),
    line_no        integer       NOT NULL,
    goods_id       bigint        REFERENCES goods_item (id),
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
    line_property  text          NOT NULL CHECK (line_property IN ('normal', 'discount', 'discounted')),
    PRIMARY KEY (receipt_id, line_no)
);

-- One invoice per receipt: the key is taken in the transaction that lands the consumer's bill;
-- a second submit (also a concurrent one) finds it and shows the first invoice.
CREATE TABLE receipt_claim (
    tax_no      text          NOT NULL REFERENCES enterprise (tax_no),
    order_no    text          NOT NULL,
    bill_no     text          NOT NULL,
    mode        text          NOT NULL CHECK (mode IN ('stored', 'order_query', 'kingdee')),
    total       numeric(18,2) NOT NULL,
    created_at  timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (tax_no, order_no)
);

-- Every valid link opened (statistics: 扫码).
CREATE TABLE receipt_scan (
    tax_no      text        NOT NULL,
    order_no    text        NOT NULL,
    scanned_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX receipt_scan_day ON receipt_scan (tax_no, scanned_at);
