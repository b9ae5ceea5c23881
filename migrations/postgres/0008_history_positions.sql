-- History in an order no later commit can change (see "History positions" in `store::postgres`).
-- A sequence hands out numbers in one order, and transactions may commit in another: a client
-- paging through history could pass a version that commits later with a smaller number and never
-- see it. So a version's `seq` becomes its position: the id of the transaction that wrote it
-- (xid8) times 2^20, plus its place within that transaction, set by the server. Versions written
-- before keep their numbers, which are below every position (no transaction writes 2^20 versions).
ALTER TABLE resource_history ALTER COLUMN seq DROP DEFAULT;

-- The transaction that wrote each resource's current version. A new version must come from a
-- later transaction, so that its position follows the position of the version it replaces.
ALTER TABLE resource ADD COLUMN txid BIGINT NOT NULL DEFAULT 0;
