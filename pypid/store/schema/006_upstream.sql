-- pypid schema version 6: the upstream (a caching proxy of another simple index).
-- Settings per project and per group; NULL inherits (project < group < parent group <
-- the daemon's --upstream). upstream: a URL, or 'off'. upstream_allow: a JSON list of
-- name patterns. Files fetched from an upstream are recorded in upstream_files, by content
-- and name, once their sha256 was checked against the upstream's page.
ALTER TABLE projects ADD COLUMN upstream TEXT;
ALTER TABLE projects ADD COLUMN upstream_allow TEXT;
ALTER TABLE projects ADD COLUMN upstream_min_age REAL;
ALTER TABLE projects ADD COLUMN upstream_ttl INTEGER;
ALTER TABLE groups ADD COLUMN upstream TEXT;
ALTER TABLE groups ADD COLUMN upstream_allow TEXT;
ALTER TABLE groups ADD COLUMN upstream_min_age REAL;
ALTER TABLE groups ADD COLUMN upstream_ttl INTEGER;

CREATE TABLE upstream_files (
    id INTEGER PRIMARY KEY,
    sha256 TEXT NOT NULL,
    filename TEXT NOT NULL,
    name TEXT NOT NULL,             -- PEP 503 normalized project name
    size INTEGER NOT NULL,
    source_url TEXT NOT NULL,       -- where it was fetched from (credentials removed)
    fetched_at TEXT NOT NULL,
    last_used_at TEXT NOT NULL,
    UNIQUE (sha256, filename)
);
CREATE INDEX upstream_files_by_last_use ON upstream_files (last_used_at);

-- PEP 658 metadata of upstream files, fetched (and checked) on its own: pip asks for it
-- before it decides to fetch the file.
CREATE TABLE upstream_metadata (
    sha256 TEXT PRIMARY KEY,
    content BLOB NOT NULL,
    last_used_at TEXT NOT NULL
);
CREATE INDEX upstream_metadata_by_last_use ON upstream_metadata (last_used_at);

-- "Is this name local anywhere in the namespace?" (never taken from upstream then).
CREATE INDEX packages_by_name ON packages (name);
