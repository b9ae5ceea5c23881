-- A counter of the versions written of the resources that decide consents (Consent, and
-- PractitionerRole for the organisations a practitioner acts for). Every governed request reads
-- it to know whether the consents it holds in memory are still those in force
-- (`interactions::access::consent_store`): one row, where counting those versions in
-- `resource_history` took a scan of them. Kept by the database itself, in the transaction of the
-- write, so every server on the database sees a change once it is committed.
CREATE TABLE consent_changes (n INTEGER NOT NULL);
INSERT INTO consent_changes
    SELECT count(*) FROM resource_history WHERE type IN ('Consent', 'PractitionerRole');
CREATE TRIGGER consent_changes_count AFTER INSERT ON resource_history
    WHEN NEW.type IN ('Consent', 'PractitionerRole')
BEGIN
    UPDATE consent_changes SET n = n + 1;
END;
