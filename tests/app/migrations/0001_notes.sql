CREATE TABLE notes (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id   uuid        NOT NULL,
    text       text        NOT NULL,
    indexed    boolean     NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX notes_owner_idx ON notes (owner_id, id);


-- What the cluster tests observe: which process ran each cron tick, each job attempt and
-- the leader-elected daemon.
CREATE TABLE tick_runs (
    scheduled_time timestamptz NOT NULL,
    pid            integer     NOT NULL
);

CREATE TABLE job_attempts (
    marker   text        NOT NULL,
    pid      integer     NOT NULL,
    finished boolean     NOT NULL DEFAULT false,
    at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE singleton_runs (
    pid        integer     NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    stopped_at timestamptz
);
