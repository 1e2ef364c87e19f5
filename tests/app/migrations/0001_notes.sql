CREATE TABLE notes (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id   uuid        NOT NULL,
    text       text        NOT NULL,
    indexed    boolean     NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX notes_owner_idx ON notes (owner_id, id);

CREATE TABLE ticks (
    scheduled_time timestamptz PRIMARY KEY,
    late           boolean     NOT NULL
);
