-- pypid schema version 5: groups (GitLab's namespaces, nested), their members, group deploy
-- tokens. Each namespace of the projects becomes a group, with the widest visibility of its
-- projects (so that no project is more visible than its group, GitLab's rule).
CREATE TABLE groups (
    id INTEGER PRIMARY KEY,
    parent_id INTEGER REFERENCES groups(id) ON DELETE CASCADE,
    path TEXT NOT NULL UNIQUE COLLATE NOCASE,   -- the full path: acme/platform
    name TEXT NOT NULL,                          -- its last part: platform
    visibility TEXT NOT NULL CHECK (visibility IN ('private', 'internal', 'public')),
    created_at TEXT NOT NULL
);
CREATE INDEX groups_by_parent ON groups (parent_id);

CREATE TABLE group_members (
    group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('reporter', 'developer', 'maintainer')),
    PRIMARY KEY (group_id, user_id)
);

INSERT INTO groups (path, name, visibility, created_at)
SELECT namespace, namespace,
       CASE MAX(CASE visibility WHEN 'public' THEN 2 WHEN 'internal' THEN 1 ELSE 0 END)
           WHEN 2 THEN 'public' WHEN 1 THEN 'internal' ELSE 'private' END,
       MIN(created_at)
FROM projects GROUP BY namespace COLLATE NOCASE;

ALTER TABLE projects ADD COLUMN group_id INTEGER REFERENCES groups(id);
UPDATE projects SET group_id = (SELECT g.id FROM groups g WHERE g.path = projects.namespace);
CREATE INDEX projects_by_group ON projects (group_id);

-- A deploy token belongs to a project or to a group (then it reaches every project below).
CREATE TABLE deploy_tokens_v5 (
    id INTEGER PRIMARY KEY,
    project_id INTEGER REFERENCES projects(id) ON DELETE CASCADE,
    group_id INTEGER REFERENCES groups(id) ON DELETE CASCADE,
    username TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    token_digest TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    expires_at TEXT,
    revoked INTEGER NOT NULL DEFAULT 0,
    last_used_at TEXT,
    created_at TEXT NOT NULL,
    CHECK ((project_id IS NULL) <> (group_id IS NULL))
);
INSERT INTO deploy_tokens_v5 (id, project_id, group_id, username, name, token_digest, scopes,
                              expires_at, revoked, last_used_at, created_at)
SELECT id, project_id, NULL, username, name, token_digest, scopes, expires_at, revoked,
       last_used_at, created_at FROM deploy_tokens;
DROP TABLE deploy_tokens;
ALTER TABLE deploy_tokens_v5 RENAME TO deploy_tokens;
