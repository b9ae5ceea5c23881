-- Search indexes (PostgreSQL): one table per search-parameter type. Each row is one indexed value of one
-- parameter of one resource's current version, keyed by the resource's `rid` and the parameter's id
-- (`search::registry::param_id`, a hash of `Type.code`). A write replaces a resource's rows in the
-- same transaction as the version it indexes; a delete removes them. Value indexes lead with
-- `param` and end with `rid`, so a search reads the index alone and yields rids in order.
-- Text columns use the "C" collation: byte order, so a starts-with search is an index range scan
-- (`>= prefix AND < successor`) whatever the database's locale.

-- string: `normalized` is lower case without accents (default and :contains), `exact` as written.
CREATE TABLE search_string (
    rid        BIGINT  NOT NULL,
    param      BIGINT  NOT NULL,
    normalized TEXT COLLATE "C" NOT NULL,
    exact      TEXT COLLATE "C" NOT NULL
);
CREATE INDEX search_string_value ON search_string (param, normalized, rid);
CREATE INDEX search_string_rid ON search_string (rid);

-- token: Coding, CodeableConcept, Identifier, ContactPoint, code, boolean, id. `text` (normalised)
-- is a display or CodeableConcept.text, for :text.
CREATE TABLE search_token (
    rid    BIGINT  NOT NULL,
    param  BIGINT  NOT NULL,
    system TEXT COLLATE "C",
    code   TEXT COLLATE "C",
    text   TEXT COLLATE "C"
);
CREATE INDEX search_token_code ON search_token (param, code, system, rid);
CREATE INDEX search_token_rid ON search_token (rid);

-- date: the half-open range [low, high) in microseconds since the epoch that the value covers by
-- its precision; open period ends are the smallest and largest 64-bit integers.
CREATE TABLE search_date (
    rid   BIGINT  NOT NULL,
    param BIGINT  NOT NULL,
    low   BIGINT  NOT NULL,
    high  BIGINT  NOT NULL
);
CREATE INDEX search_date_low ON search_date (param, low, high, rid);
CREATE INDEX search_date_high ON search_date (param, high, low, rid);
CREATE INDEX search_date_rid ON search_date (rid);

CREATE TABLE search_number (
    rid   BIGINT  NOT NULL,
    param BIGINT  NOT NULL,
    value DOUBLE PRECISION NOT NULL
);
CREATE INDEX search_number_value ON search_number (param, value, rid);
CREATE INDEX search_number_rid ON search_number (rid);

-- quantity: Quantity and its kin, and Money (system urn:iso:std:iso:4217, code the currency).
CREATE TABLE search_quantity (
    rid    BIGINT  NOT NULL,
    param  BIGINT  NOT NULL,
    value  DOUBLE PRECISION NOT NULL,
    system TEXT COLLATE "C",
    code   TEXT COLLATE "C",
    unit   TEXT COLLATE "C"
);
CREATE INDEX search_quantity_value ON search_quantity (param, value, rid);
CREATE INDEX search_quantity_rid ON search_quantity (rid);

-- reference: `url` as written; `target_type`/`target_id` when it names a resource (relative or
-- absolute `Type/id`), which is what searches, chains, _has and _include join on.
CREATE TABLE search_reference (
    rid         BIGINT  NOT NULL,
    param       BIGINT  NOT NULL,
    target_type TEXT COLLATE "C",
    target_id   TEXT COLLATE "C",
    url         TEXT COLLATE "C" NOT NULL
);
CREATE INDEX search_reference_target ON search_reference (param, target_id, target_type, rid);
CREATE INDEX search_reference_url ON search_reference (param, url, rid);
CREATE INDEX search_reference_rid ON search_reference (rid);

CREATE TABLE search_uri (
    rid   BIGINT  NOT NULL,
    param BIGINT  NOT NULL,
    uri   TEXT COLLATE "C" NOT NULL
);
CREATE INDEX search_uri_value ON search_uri (param, uri, rid);
CREATE INDEX search_uri_rid ON search_uri (rid);

-- A type's resources in rid order (searches without a selective clause, default sort), and by time.
CREATE INDEX resource_type_rid ON resource (type, rid);
CREATE INDEX resource_type_last_updated ON resource (type, last_updated);
