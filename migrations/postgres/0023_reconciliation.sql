-- Reconciliation reads a day's postings of every merchant that touch a
-- card processor's clearing account, in time order: one index range.
CREATE INDEX postings_created ON postings (created_at, id);
