-- 作废 (seed 002, 发票状态 正常、作废、作废中): the status in the documents' words, what voided it
-- and when. 作废中 is stored before the channel is asked, like a serial number before issuing.
ALTER TABLE issued_invoice
    ADD CONSTRAINT issued_invoice_status CHECK (status IN ('正常', '作废中', '作废')),
    ADD COLUMN void_reason text,
    ADD COLUMN voided_at   timestamptz;
