-- pypid schema version 1: users, projects, members, tokens, packages and their files.
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE COLLATE NOCASE,
    is_admin INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);

CREATE TABLE projects (
    id INTEGER PRIMARY KEY,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    path TEXT NOT NULL UNIQUE COLLATE NOCASE,
    visibility TEXT NOT NULL CHECK (visibility IN ('private', 'internal', 'public')),
    duplicates TEXT NOT NULL DEFAULT 'allow' CHECK (duplicates IN ('allow', 'deny')),
    created_at TEXT NOT NULL
);

CREATE TABLE members (
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('reporter', 'developer', 'maintainer')),
    PRIMARY KEY (project_id, user_id)
);

CREATE TABLE personal_access_tokens (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_digest TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    expires_at TEXT,
    revoked INTEGER NOT NULL DEFAULT 0,
    last_used_at TEXT,
    created_at TEXT NOT NULL
);

CREATE TABLE deploy_tokens (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    username TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    token_digest TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    expires_at TEXT,
    revoked INTEGER NOT NULL DEFAULT 0,
    last_used_at TEXT,
    created_at TEXT NOT NULL
);

CREATE TABLE packages (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name TEXT NOT NULL,            -- PEP 503 normalized
    display_name TEXT NOT NULL,    -- as first uploaded
    version TEXT NOT NULL,         -- as first uploaded
    version_key TEXT NOT NULL,     -- canonical form: '1.0' and '1.0.0' are one version
    created_at TEXT NOT NULL,
    UNIQUE (project_id, name, version_key)
);
CREATE INDEX packages_by_project_name ON packages (project_id, name);

CREATE TABLE package_files (
    id INTEGER PRIMARY KEY,
    package_id INTEGER NOT NULL REFERENCES packages(id) ON DELETE CASCADE,
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    filename TEXT NOT NULL,
    packagetype TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    md5 TEXT NOT NULL,
    blake2_256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    requires_python TEXT,
    metadata_sha256 TEXT,          -- the PEP 658 core metadata blob, when extracted
    upload_time TEXT NOT NULL,
    uploader TEXT NOT NULL,
    blob_key TEXT NOT NULL
);
CREATE INDEX package_files_by_package ON package_files (package_id);
CREATE INDEX package_files_by_project_sha256 ON package_files (project_id, sha256);
CREATE INDEX package_files_by_blob ON package_files (blob_key);
CREATE INDEX package_files_by_metadata ON package_files (metadata_sha256);
CREATE INDEX package_files_by_project_filename ON package_files (project_id, filename);
