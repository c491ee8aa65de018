-- pypid schema version 8: web sessions. A sign-in with a personal access token makes one;
-- the cookie carries a random secret, the database only its sha256. A session lasts while
-- its token does (revoked, expired or its user blocked: the session ends with it).
CREATE TABLE web_sessions (
    id INTEGER PRIMARY KEY,
    digest TEXT NOT NULL UNIQUE,
    token_id INTEGER NOT NULL REFERENCES personal_access_tokens(id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
