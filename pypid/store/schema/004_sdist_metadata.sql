-- pypid schema version 4: sdists advertise core metadata only where PEP 643 lets them
-- (Metadata-Version 2.2 or later, dependencies and Requires-Python not Dynamic); wheels
-- always. The rows recorded before are re-judged by a Python step
-- (pypid.store.schema.STEPS[4]): an sdist whose PKG-INFO does not qualify, or whose
-- metadata lives in the blob store (before version 3), loses its advertisement.
SELECT 1;
