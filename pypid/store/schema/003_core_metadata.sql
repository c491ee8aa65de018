-- pypid schema version 3: core metadata (PEP 658) kept in the database, beside its row.
-- A few kilobytes each: one transaction makes it durable with the file's row, where a blob
-- of its own cost a file, two fsyncs and a rename per upload. Files recorded before this
-- version keep their metadata in the blob store, where pypid still finds it.
CREATE TABLE core_metadata (
    sha256 TEXT PRIMARY KEY,
    content BLOB NOT NULL
);
