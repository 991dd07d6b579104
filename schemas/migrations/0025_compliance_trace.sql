-- 合规性校验 (seed 004 收票管理 → 基础设置 → 合规性校验配置; "可确认匹配的合规性规则是哪一个"):
-- each configured rule's outcome for an invoice, where it was applied — on entering the pool by
-- import (the rules that passed; a refused row is the import's problem with the rule's code, and
-- it never enters nor is charged) and each time a document uses it (passed or refused).
CREATE TABLE compliance_trace (
    id            bigserial   PRIMARY KEY,
    tax_no        text        NOT NULL,
    invoice_code  text        NOT NULL,
    invoice_num   text        NOT NULL,
    stage         text        NOT NULL CHECK (stage IN ('import', 'use')),
    rule          text        NOT NULL,
    passed        boolean     NOT NULL,
    detail        text        NOT NULL,
    at            timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX compliance_trace_invoice ON compliance_trace (tax_no, invoice_code, invoice_num, id);

-- The 数电 transport tickets (航空运输电子客票行程单 digital_air_ticket, 铁路电子客票
-- digital_rail_ticket) are deductible passenger transport on their own, like the Rust rule.
CREATE OR REPLACE FUNCTION deductibility_without_lines(
    kind text, property smallint, blockchain boolean, status text, invoice_date date, special_business text
) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN kind IN ('taxctl_ordinary', 'taxctl_roll') THEN 'NOT_DEDUCTIBLE_PAPER_ORDINARY'
        WHEN property <> 0 THEN 'NOT_DEDUCTIBLE_NOT_BLUE'
        WHEN blockchain THEN 'NOT_DEDUCTIBLE_BLOCKCHAIN'
        WHEN status NOT IN ('normal', 'partially_red_flushed') THEN 'NOT_DEDUCTIBLE_STATUS'
        WHEN kind IN ('digital_special', 'taxctl_special', 'taxctl_e_special') THEN NULL
        WHEN invoice_date < DATE '2019-04-01' THEN 'NOT_DEDUCTIBLE_BEFORE_2019_04_01'
        WHEN kind IN ('digital_air_ticket', 'digital_rail_ticket') THEN NULL
        WHEN special_business IN ('农产品收购', '资产农产品销售') THEN NULL
        ELSE 'NOT_DEDUCTIBLE_NO_TRANSPORT_LINE'
    END
$$;
