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
