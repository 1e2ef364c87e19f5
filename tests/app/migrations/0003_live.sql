-- What the live-query tests subscribe to: lists of items and their tags (read with a JOIN).
-- `forge generate` enables change notification for them in the next migration.
CREATE TABLE items (
    id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    list text   NOT NULL,
    name text   NOT NULL
);

CREATE TABLE tags (
    item_id bigint NOT NULL REFERENCES items (id),
    tag     text   NOT NULL,
    PRIMARY KEY (item_id, tag)
);
