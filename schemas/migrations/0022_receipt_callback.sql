-- Seed 001 (5.1.03 按单回调): "当开票接收到开票请求（或开票完成后）触发开票申请单回调" — a business
-- system may also be told when its pushed bill was received, not only when it is invoiced.
ALTER TABLE business_system ADD COLUMN callback_on_receipt boolean NOT NULL DEFAULT false;
