-- pypid schema version 2: PEP 592 yanking of files, with a reason.
ALTER TABLE package_files ADD COLUMN yanked INTEGER NOT NULL DEFAULT 0;
ALTER TABLE package_files ADD COLUMN yanked_reason TEXT;
