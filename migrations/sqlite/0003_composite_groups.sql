-- Composite search parameters (e.g. Observation `code-value-quantity`) match when all their
-- components match within one element (one `Observation.component`, say). Each component value is
-- an index row of its own type under the id of `Type.code$k` (`search::registry::component_param_id`),
-- and `grp` numbers the element it came from within the resource, so a search joins components on
-- (rid, grp). Other rows leave `grp` NULL.
ALTER TABLE search_string ADD COLUMN grp INTEGER;
ALTER TABLE search_token ADD COLUMN grp INTEGER;
ALTER TABLE search_date ADD COLUMN grp INTEGER;
ALTER TABLE search_number ADD COLUMN grp INTEGER;
ALTER TABLE search_quantity ADD COLUMN grp INTEGER;
ALTER TABLE search_reference ADD COLUMN grp INTEGER;
ALTER TABLE search_uri ADD COLUMN grp INTEGER;
