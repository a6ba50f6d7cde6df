-- A movement on PostgreSQL is written by one statement of data-modifying
-- CTEs (one round trip, committed on its own). Each guard (an insert that
-- must not conflict, a conditional update that must match its row) returns
-- a row; the statement's last expression calls this function when a guard
-- returned none, which aborts the whole statement so nothing of it is
-- written. The gateway then runs the movement again step by step in a
-- transaction to learn which rule refused it.
CREATE FUNCTION qrgate_refuse() RETURNS INTEGER LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RAISE EXCEPTION 'qrgate: a guard of the movement refused it' USING ERRCODE = 'QG001';
END
$$;
