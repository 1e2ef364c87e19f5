-- What the live-query tests subscribe to: lists of items, their tags (read with a JOIN), and
-- the notes of 0001. Change notification is enabled here by hand until `forge generate`
-- writes these migrations itself.
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

SELECT forge_enable_reactivity('items');
SELECT forge_enable_reactivity('tags');
SELECT forge_enable_reactivity('notes');
