-- Each index table's rid index also keys on the parameter. A search that tests a resource row by
-- row (`EXISTS (… WHERE i.rid = r.rid AND i.param = …)`, see `search::plan`) and a sort key
-- (the min or max of one parameter's rows of a resource) then reach that parameter's few rows
-- directly instead of reading every index row of the resource (dozens for `_content` words).
-- Deleting a resource's rows still uses the index by its rid prefix. The date index also holds
-- the range, so a date sort key (`_sort=-date`) is read from the index alone.
DROP INDEX search_string_rid;
CREATE INDEX search_string_rid ON search_string (rid, param);
DROP INDEX search_token_rid;
CREATE INDEX search_token_rid ON search_token (rid, param);
DROP INDEX search_date_rid;
CREATE INDEX search_date_rid ON search_date (rid, param, low, high);
DROP INDEX search_number_rid;
CREATE INDEX search_number_rid ON search_number (rid, param);
DROP INDEX search_quantity_rid;
CREATE INDEX search_quantity_rid ON search_quantity (rid, param);
DROP INDEX search_reference_rid;
CREATE INDEX search_reference_rid ON search_reference (rid, param);
DROP INDEX search_uri_rid;
CREATE INDEX search_uri_rid ON search_uri (rid, param);
