-- Payments through the processor's hosted page, and partial refunds.
--
-- checkout_id is the processor's id of the hosted page a patient pays on
-- (opened before its payment exists there; processor_id is that payment,
-- named by the processor's notice). refunded is how much of a payment has
-- been given back so far; each refund, whole or partial, is a row of
-- payment_refunds, which the administrator's ledger lists. Like a
-- payment's amount and references, none of it is PHI.
ALTER TABLE payments ADD COLUMN checkout_id TEXT;
ALTER TABLE payments ADD COLUMN refunded BIGINT NOT NULL DEFAULT 0;

CREATE TABLE payment_refunds (
    id          TEXT PRIMARY KEY,
    payment_id  TEXT NOT NULL REFERENCES payments(id),
    practice_id TEXT NOT NULL REFERENCES practices(id),
    ref         TEXT NOT NULL UNIQUE,
    amount      BIGINT NOT NULL,
    created_at  {{timestamp}} NOT NULL,
    created_by  TEXT NOT NULL
);
CREATE INDEX payment_refunds_payment ON payment_refunds (payment_id, created_at);
