-- Resource types and ids compare byte by byte (collation "C"), as the index tables' reference
-- columns already do. A chain or an include joins `search_reference.target_type/target_id` to
-- `resource.type/id`; with two different collations PostgreSQL cannot use the `(type, id)` index
-- for that join, and reached each target by scanning every resource of its type instead. Ids are
-- ASCII ([A-Za-z0-9\-\.]), so no order a client sees changes.
ALTER TABLE resource
    ALTER COLUMN type TYPE TEXT COLLATE "C",
    ALTER COLUMN id TYPE TEXT COLLATE "C";
ALTER TABLE resource_history
    ALTER COLUMN type TYPE TEXT COLLATE "C",
    ALTER COLUMN id TYPE TEXT COLLATE "C";
-- Changing a column's type drops its statistics; gather them again now rather than leave the
-- planner guessing until autovacuum comes by.
ANALYZE resource;
ANALYZE resource_history;
