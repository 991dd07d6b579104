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
