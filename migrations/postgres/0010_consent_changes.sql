-- A counter of the versions written of the resources that decide consents (Consent, and
-- PractitionerRole for the organisations a practitioner acts for). Every governed request reads
-- it to know whether the consents it holds in memory are still those in force
-- (`interactions::access::consent_store`): one row, where counting those versions in
-- `resource_history` took a scan of them (0.3 to 0.6 ms a request). Kept by the database itself,
-- in the transaction of the write, so every server on the database sees a change once it is
-- committed. (Writers of these two types wait for each other on the row; they are rare.)
CREATE TABLE consent_changes (n BIGINT NOT NULL);
INSERT INTO consent_changes
    SELECT count(*) FROM resource_history WHERE type IN ('Consent', 'PractitionerRole');
CREATE FUNCTION consent_changes_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE consent_changes SET n = n + 1;
    RETURN NULL;
END;
$$;
CREATE TRIGGER consent_changes_count AFTER INSERT ON resource_history
    FOR EACH ROW WHEN (NEW.type IN ('Consent', 'PractitionerRole'))
    EXECUTE FUNCTION consent_changes_count();
