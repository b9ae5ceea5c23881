-- The walk over one type's resources in rid order (a broad clause tested row by row, see
-- `search::plan`) reads id, version and deleted flag of every resource it passes, not only of
-- those it keeps. From the heap that was a page per resource, since a type's rows lie scattered
-- among the others' (and carry their content); held in the index, the walk reads index pages
-- alone (1.8 → 0.8 ms for a page of 20 Conditions with one code among a million resources).
DROP INDEX resource_type_rid;
CREATE INDEX resource_type_rid ON resource (type, rid) INCLUDE (id, version_id, deleted);
