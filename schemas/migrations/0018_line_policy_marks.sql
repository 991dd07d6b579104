-- 税收优惠政策标识 / 优惠政策内容 / 零税率标识 per invoice line (seed 000; a 0% line needs one):
-- imported with the application line, carried onto the pending invoice's line and its red lines,
-- sent in the issuing body.
ALTER TABLE application_line
    ADD COLUMN privilege_flag    boolean NOT NULL DEFAULT false,
    ADD COLUMN privilege_content text,
    ADD COLUMN zero_rate_mark    text CHECK (zero_rate_mark IN ('export', 'exempt', 'not_taxed', 'ordinary'));
ALTER TABLE pending_line
    ADD COLUMN privilege_flag    boolean NOT NULL DEFAULT false,
    ADD COLUMN privilege_content text,
    ADD COLUMN zero_rate_mark    text CHECK (zero_rate_mark IN ('export', 'exempt', 'not_taxed', 'ordinary'));
