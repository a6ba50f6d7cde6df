-- Signed-in sessions of the web pages. The cookie holds a random token;
-- only its SHA-256 is kept, with the API key it was signed in with (a
-- revoked key ends its sessions at once), the session's CSRF token, and
-- its end (expiry, or sign-out).
CREATE TABLE web_sessions (
    token_hash TEXT   NOT NULL PRIMARY KEY,
    key_id     TEXT   NOT NULL REFERENCES api_keys (id),
    csrf       TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    ended_at   BIGINT
);
CREATE INDEX web_sessions_expiry ON web_sessions (expires_at);
