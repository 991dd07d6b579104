-- 审批状态 in the documents' words (seeds 000, 002): 暂存、已提交、已审核、无需审批 (was 暂存、待审批、
-- 审批通过、无需审批). Rows keep their meaning.
ALTER TABLE pending_invoice DROP CONSTRAINT pending_invoice_approval_state_check;
UPDATE pending_invoice
   SET approval_state = CASE approval_state WHEN '待审批' THEN '已提交' ELSE '已审核' END
 WHERE approval_state IN ('待审批', '审批通过');
ALTER TABLE pending_invoice ADD CONSTRAINT pending_invoice_approval_state_check
    CHECK (approval_state IN ('暂存', '已提交', '已审核', '无需审批'));
