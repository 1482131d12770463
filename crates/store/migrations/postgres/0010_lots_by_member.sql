-- On SQLite this version stores point lots clustered by member and drops
-- the per-member lot indexes. PostgreSQL keeps its heap table and those
-- indexes: without them a member's lots would be fetched row by row from
-- the heap. Nothing changes here.
SELECT 1;
