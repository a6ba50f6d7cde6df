-- A merchant's own number (out_trade_no) names one thing: a payment it
-- charged or an order it created, never one of each. The two tables each
-- keep their own unique index; this table is the one namespace across
-- both, claimed by a trigger on every insert that carries a number, in the
-- inserting transaction (so the claim and the row commit or vanish
-- together, and two inserts racing for one number meet on this primary
-- key). A taken number raises QG002, which the store names
-- duplicate_out_trade_no.
CREATE TABLE merchant_numbers (
    merchant_id  TEXT NOT NULL,
    out_trade_no TEXT NOT NULL,
    PRIMARY KEY (merchant_id, out_trade_no)
);

CREATE FUNCTION qrgate_claim_number() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.out_trade_no IS NOT NULL THEN
        INSERT INTO merchant_numbers (merchant_id, out_trade_no)
            VALUES (NEW.merchant_id, NEW.out_trade_no)
            ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'qrgate: out_trade_no_taken' USING ERRCODE = 'QG002';
        END IF;
    END IF;
    RETURN NEW;
END
$$;

-- Only rows that carry a number call the function (most payments carry
-- none, and pay no PL/pgSQL call).
CREATE TRIGGER payments_claim_number BEFORE INSERT ON payments
    FOR EACH ROW WHEN (NEW.out_trade_no IS NOT NULL) EXECUTE FUNCTION qrgate_claim_number();
CREATE TRIGGER orders_claim_number BEFORE INSERT ON orders
    FOR EACH ROW WHEN (NEW.out_trade_no IS NOT NULL) EXECUTE FUNCTION qrgate_claim_number();

-- The numbers already taken, after the triggers: CREATE TRIGGER holds a
-- lock that keeps inserts into the table waiting until this migration's
-- transaction commits (and then they run the trigger), so the statements
-- below see every row written before (a number on both an order and a
-- payment from before this migration is claimed once).
INSERT INTO merchant_numbers (merchant_id, out_trade_no)
    SELECT merchant_id, out_trade_no FROM payments WHERE out_trade_no IS NOT NULL
    ON CONFLICT DO NOTHING;
INSERT INTO merchant_numbers (merchant_id, out_trade_no)
    SELECT merchant_id, out_trade_no FROM orders WHERE out_trade_no IS NOT NULL
    ON CONFLICT DO NOTHING;
