-- The patients each version belonged to. With every version it writes, the server records one
-- row per Patient whose compartment the version is in (R4 CompartmentDefinition/patient), in the
-- same transaction; a delete belongs to the patients of the version it deletes. (A Patient is in
-- its own compartment too; its type and id say so, so that goes unrecorded.) Index rows describe
-- current versions only, so this is what answers "the history of patient X's resources": each
-- version under the patient it belonged to then.
CREATE TABLE history_owner (
    patient TEXT    NOT NULL,  -- the Patient's id
    seq     INTEGER NOT NULL,  -- resource_history.seq of the version
    PRIMARY KEY (patient, seq)
) WITHOUT ROWID;
-- The patients of one version (copied to its delete).
CREATE INDEX history_owner_seq ON history_owner (seq);

-- Versions written before this table existed have no owner rows until `$reindex` records them:
-- those with `seq` up to `up_to`, of which those up to `done` are recorded. The row is removed
-- once all are; a new database has none.
CREATE TABLE history_owner_backfill (up_to INTEGER NOT NULL, done INTEGER NOT NULL);
INSERT INTO history_owner_backfill SELECT max(seq), 0 FROM resource_history HAVING count(*) > 0;
