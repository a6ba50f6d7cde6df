-- A merchant's own number (out_trade_no) names one thing: a payment it
-- charged or an order it created, never one of each. The two tables each
-- keep their own unique index; this table is the one namespace across
-- both, claimed by a trigger on every insert that carries a number, inside
-- the inserting transaction (one writer: the check and the claim cannot
-- be raced). A taken number aborts the insert with a message the store
-- names duplicate_out_trade_no.
CREATE TABLE merchant_numbers (
    merchant_id  TEXT NOT NULL,
    out_trade_no TEXT NOT NULL,
    PRIMARY KEY (merchant_id, out_trade_no)
);

CREATE TRIGGER payments_claim_number BEFORE INSERT ON payments
    WHEN NEW.out_trade_no IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'qrgate: out_trade_no_taken')
        WHERE EXISTS (SELECT 1 FROM merchant_numbers
                      WHERE merchant_id = NEW.merchant_id AND out_trade_no = NEW.out_trade_no);
    INSERT INTO merchant_numbers (merchant_id, out_trade_no) VALUES (NEW.merchant_id, NEW.out_trade_no);
END;

CREATE TRIGGER orders_claim_number BEFORE INSERT ON orders
    WHEN NEW.out_trade_no IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'qrgate: out_trade_no_taken')
        WHERE EXISTS (SELECT 1 FROM merchant_numbers
                      WHERE merchant_id = NEW.merchant_id AND out_trade_no = NEW.out_trade_no);
    INSERT INTO merchant_numbers (merchant_id, out_trade_no) VALUES (NEW.merchant_id, NEW.out_trade_no);
END;

-- The numbers already taken, after the triggers: a row an older node
-- writes meanwhile is claimed by its trigger, and one it wrote before is
-- claimed here (a number on both an order and a payment from before this
-- migration is claimed once).
INSERT OR IGNORE INTO merchant_numbers (merchant_id, out_trade_no)
    SELECT merchant_id, out_trade_no FROM payments WHERE out_trade_no IS NOT NULL;
INSERT OR IGNORE INTO merchant_numbers (merchant_id, out_trade_no)
    SELECT merchant_id, out_trade_no FROM orders WHERE out_trade_no IS NOT NULL;
