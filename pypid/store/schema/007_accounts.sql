-- pypid schema version 7: what GitLab's REST API keeps of users and projects.
-- users.state: 'active' or 'blocked' (a blocked user's tokens stop working, nothing is
-- deleted). projects.packages_enabled: GitLab's "Packages" switch (on for new projects;
-- off hides the project's package registry without deleting anything).
ALTER TABLE users ADD COLUMN state TEXT NOT NULL DEFAULT 'active'
    CHECK (state IN ('active', 'blocked'));
ALTER TABLE users ADD COLUMN name TEXT;
ALTER TABLE users ADD COLUMN email TEXT;
ALTER TABLE projects ADD COLUMN packages_enabled INTEGER NOT NULL DEFAULT 1;
ALTER TABLE projects ADD COLUMN description TEXT;

-- GitLab's five roles (access levels 10 guest ... 50 owner): members and group members
-- are rebuilt with the wider CHECK (SQLite cannot change a CHECK in place).
CREATE TABLE members_v7 (
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('guest', 'reporter', 'developer', 'maintainer', 'owner')),
    PRIMARY KEY (project_id, user_id)
);
INSERT INTO members_v7 (project_id, user_id, role) SELECT project_id, user_id, role FROM members;
DROP TABLE members;
ALTER TABLE members_v7 RENAME TO members;

CREATE TABLE group_members_v7 (
    group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('guest', 'reporter', 'developer', 'maintainer', 'owner')),
    PRIMARY KEY (group_id, user_id)
);
INSERT INTO group_members_v7 (group_id, user_id, role)
SELECT group_id, user_id, role FROM group_members;
DROP TABLE group_members;
ALTER TABLE group_members_v7 RENAME TO group_members;

-- The PyPI metadata GitLab keeps per package (its pypi_metadata): from the upload form,
-- else from the file's core metadata; the latest upload of the version sets it.
CREATE TABLE pypi_metadata (
    package_id INTEGER PRIMARY KEY REFERENCES packages(id) ON DELETE CASCADE,
    summary TEXT,
    keywords TEXT,
    author_email TEXT,
    description TEXT,
    description_content_type TEXT,
    metadata_version TEXT,
    required_python TEXT
);

-- GitLab's package protection rules: who may push or delete packages whose name matches.
CREATE TABLE package_protection_rules (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    package_name_pattern TEXT NOT NULL,
    package_type TEXT NOT NULL DEFAULT 'pypi' CHECK (package_type = 'pypi'),
    minimum_access_level_for_push TEXT
        CHECK (minimum_access_level_for_push IN ('maintainer', 'owner', 'admin')),
    minimum_access_level_for_delete TEXT
        CHECK (minimum_access_level_for_delete IN ('maintainer', 'owner', 'admin')),
    UNIQUE (project_id, package_name_pattern)
);
