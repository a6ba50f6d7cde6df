-- The same table as on PostgreSQL, where movements queue their audit entries
-- here to be chained shortly after. SQLite's single writer chains each entry
-- in the movement's own transaction, so on SQLite it stays empty.
CREATE TABLE audit_queue (
    id      INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    action  TEXT    NOT NULL,
    subject TEXT    NOT NULL,
    details TEXT    NOT NULL
);
