-- forge system schema, version 1.
--
-- Applied by the migration runner before the project's own migrations, in one transaction,
-- and recorded in forge_migrations with kind 'system'. Forward-only like user migrations:
-- never edit this file once released; later changes go in v002.sql and so on.
--
-- Conventions: every table and function is prefixed forge_ so users can find (and query)
-- everything forge keeps; times are timestamptz; status columns carry a CHECK with exactly
-- the values DESIGN.md ("System tables") lists, so a typo in the runtime fails loudly
-- instead of leaving a row no query ever picks up again; every foreign key has an index on
-- its referencing columns (deletes on the referenced table would otherwise scan).
--
-- Node ids (forge_nodes.id) appear in forge_jobs.locked_by, forge_workflow_runs.locked_by
-- and forge_cron_runs.node_id without a foreign key: work outlives the node that held it (it
-- is reclaimed when its lease expires), and cleaning up a dead node must not block on the
-- work it held. The one exception is deliberate: a cron tick is never run again, so removing
-- a node records the ticks it left `running` as `failed` (runtime/src/node.rs).
--
-- Functions run with the search_path they were created with (SET search_path FROM CURRENT),
-- so a trigger finds forge_change_log whatever the search_path of the session writing to a
-- user's table is.

-- Applied migrations: forge's own (kind 'system', versions of schema/vNNN.sql) and the
-- project's (kind 'user', the NNNN of migrations/NNNN_name.sql), numbered independently.
CREATE TABLE forge_migrations (
    kind        text        NOT NULL CHECK (kind IN ('system', 'user')),
    version     bigint      NOT NULL CHECK (version >= 0),
    name        text        NOT NULL,
    -- SHA-256 of the file, lowercase hex: the runner refuses to run when it changes.
    checksum    text        NOT NULL CHECK (checksum ~ '^[0-9a-f]{64}$'),
    applied_at  timestamptz NOT NULL DEFAULT now(),
    duration_ms bigint      NOT NULL CHECK (duration_ms >= 0),
    PRIMARY KEY (kind, version)
);

-- Processes running the app. Each registers at start and heartbeats last_seen_at.
CREATE TABLE forge_nodes (
    id           uuid        PRIMARY KEY,
    hostname     text        NOT NULL,
    pid          integer     NOT NULL,
    -- The app's version, so a rolling deploy shows which nodes run what.
    version      text        NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now()
);

-- Finding nodes that stopped heartbeating, and listing nodes newest first.
CREATE INDEX forge_nodes_last_seen_idx ON forge_nodes (last_seen_at);

-- The job queue.
CREATE TABLE forge_jobs (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name             text        NOT NULL,
    -- The queue name is the payload of NOTIFY forge_jobs_available (limit 8000 bytes), so it
    -- is kept short.
    queue            text        NOT NULL DEFAULT 'default'
                                 CHECK (octet_length(queue) BETWEEN 1 AND 255),
    priority         integer     NOT NULL DEFAULT 0,
    input            jsonb       NOT NULL,
    -- failed: the last attempt failed and the job will be retried at scheduled_at;
    -- dead: out of attempts (last_error kept).
    status           text        NOT NULL DEFAULT 'pending'
                                 CHECK (status IN ('pending', 'running', 'completed', 'failed',
                                                   'dead', 'cancelled')),
    attempts         integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts     integer     NOT NULL CHECK (max_attempts >= 1),
    last_error       text,
    progress_pct     smallint    CHECK (progress_pct BETWEEN 0 AND 100),
    progress_message text,
    scheduled_at     timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    -- A running job whose lease expired belongs to a dead worker and is claimed again.
    lease_expires_at timestamptz,
    locked_by        uuid,
    created_at       timestamptz NOT NULL DEFAULT now()
);

-- The claim query, per queue:
--   WHERE queue = $1 AND status IN ('pending', 'failed') AND scheduled_at <= now()
--   ORDER BY priority DESC, scheduled_at LIMIT $2 FOR UPDATE SKIP LOCKED
-- Partial, so finished jobs (the bulk of the table) are not in it; the predicate must stay
-- textually implied by the query's status filter for the planner to use it.
CREATE INDEX forge_jobs_claim_idx ON forge_jobs (queue, priority DESC, scheduled_at)
    WHERE status IN ('pending', 'failed');

-- Reclaiming running jobs whose worker died: WHERE status = 'running' AND lease_expires_at < now().
CREATE INDEX forge_jobs_lease_idx ON forge_jobs (lease_expires_at)
    WHERE status = 'running';

-- The admin listing: GET /_api/admin/jobs?status=… newest first.
CREATE INDEX forge_jobs_status_idx ON forge_jobs (status, created_at DESC);

-- Wakes idle workers when a job becomes pending; the payload is the queue, so a worker only
-- looks at queues it serves. Postgres folds identical notifications of one transaction into
-- one, so a mutation dispatching a thousand jobs to a queue wakes workers once.
CREATE FUNCTION forge_jobs_notify_available() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM pg_notify('forge_jobs_available', NEW.queue);
    RETURN NULL;
END
$$;

-- Two triggers because a WHEN clause that reads OLD cannot cover INSERT.
CREATE TRIGGER forge_jobs_available_insert
    AFTER INSERT ON forge_jobs
    FOR EACH ROW WHEN (NEW.status = 'pending')
    EXECUTE FUNCTION forge_jobs_notify_available();

CREATE TRIGGER forge_jobs_available_update
    AFTER UPDATE OF status ON forge_jobs
    FOR EACH ROW WHEN (NEW.status = 'pending' AND OLD.status IS DISTINCT FROM 'pending')
    EXECUTE FUNCTION forge_jobs_notify_available();

-- One row per cron name and scheduled tick: inserting it is how exactly one node gets to run
-- the tick (the primary key rejects the others). The key also serves "latest runs of a cron"
-- for GET /_api/admin/cron.
CREATE TABLE forge_cron_runs (
    name           text        NOT NULL,
    scheduled_time timestamptz NOT NULL,
    status         text        NOT NULL DEFAULT 'running'
                               CHECK (status IN ('running', 'completed', 'failed')),
    started_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz,
    error          text,
    -- The node that claimed the tick (null for rows written by hand). When that node is
    -- removed (clean shutdown or stale), a tick it left `running` is recorded `failed`.
    node_id        uuid,
    PRIMARY KEY (name, scheduled_time)
);

CREATE INDEX forge_cron_runs_running_idx ON forge_cron_runs (node_id)
    WHERE status = 'running';

-- Registered workflow versions. Several versions of one workflow may be registered at once;
-- new runs pin to the active one.
CREATE TABLE forge_workflow_definitions (
    name          text        NOT NULL,
    version       text        NOT NULL,
    -- The contract signature codegen computes: 128 bits of blake3 as lowercase hex.
    signature     char(32)    NOT NULL CHECK (signature ~ '^[0-9a-f]{32}$'),
    active        boolean     NOT NULL DEFAULT false,
    registered_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version)
);

-- At most one active version per workflow name.
CREATE UNIQUE INDEX forge_workflow_definitions_one_active_idx
    ON forge_workflow_definitions (name) WHERE active;

-- Workflow runs. No foreign key to forge_workflow_definitions: a deploy may drop a version
-- while runs of it exist, and those runs must stay (as blocked_missing_version, until the
-- version is registered again) rather than block the deploy or be deleted with it.
CREATE TABLE forge_workflow_runs (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name             text        NOT NULL,
    version          text        NOT NULL,
    -- The signature the run started under; resuming needs the same one.
    signature        char(32)    NOT NULL CHECK (signature ~ '^[0-9a-f]{32}$'),
    status           text        NOT NULL DEFAULT 'pending'
                                 CHECK (status IN ('pending', 'running', 'sleeping', 'waiting',
                                                   'completed', 'failed', 'compensating',
                                                   'compensated', 'cancelled',
                                                   'blocked_signature_mismatch',
                                                   'blocked_missing_version')),
    input            jsonb       NOT NULL,
    output           jsonb,
    error            text,
    current_step     text,
    -- Set while sleeping: when the run becomes runnable again.
    wake_at          timestamptz,
    -- Set while waiting: the event key awaited and when the wait times out (NULL: never).
    awaited_event    text,
    event_deadline   timestamptz,
    -- Why a blocked run is blocked, readable by a person.
    blocking_reason  text,
    -- The run-level timeout.
    timeout_at       timestamptz,
    -- Runs execute on the job workers and are claimed like jobs: the node running one holds
    -- a lease, and a run whose lease expired is claimed again.
    locked_by        uuid,
    lease_expires_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- Claiming new runs, oldest first: WHERE status = 'pending' ORDER BY created_at.
CREATE INDEX forge_workflow_runs_pending_idx ON forge_workflow_runs (created_at)
    WHERE status = 'pending';

-- Reclaiming runs whose node died mid-step or mid-compensation.
CREATE INDEX forge_workflow_runs_lease_idx ON forge_workflow_runs (lease_expires_at)
    WHERE status IN ('running', 'compensating');

-- Due sleepers: WHERE status = 'sleeping' AND wake_at <= now().
CREATE INDEX forge_workflow_runs_wake_idx ON forge_workflow_runs (wake_at)
    WHERE status = 'sleeping';

-- Event waits that timed out: WHERE status = 'waiting' AND event_deadline <= now().
CREATE INDEX forge_workflow_runs_event_deadline_idx ON forge_workflow_runs (event_deadline)
    WHERE status = 'waiting';

-- Run-level timeouts of unfinished runs.
CREATE INDEX forge_workflow_runs_timeout_idx ON forge_workflow_runs (timeout_at)
    WHERE status IN ('pending', 'running', 'sleeping', 'waiting');

-- GET /_api/ready answers 503 while any run is blocked: an EXISTS over this stays cheap.
CREATE INDEX forge_workflow_runs_blocked_idx ON forge_workflow_runs (created_at)
    WHERE status IN ('blocked_signature_mismatch', 'blocked_missing_version');

-- Completion order of steps, across all runs: compensations run in descending order of it.
-- A sequence rather than max()+1 because parallel steps of one run complete concurrently.
CREATE SEQUENCE forge_workflow_steps_sequence_seq AS bigint;

-- One row per run and step key; a completed step's result is replayed instead of running
-- the step again.
CREATE TABLE forge_workflow_steps (
    run_id       uuid        NOT NULL REFERENCES forge_workflow_runs (id) ON DELETE CASCADE,
    key          text        NOT NULL,
    status       text        NOT NULL DEFAULT 'running'
                             CHECK (status IN ('running', 'completed', 'failed',
                                               'compensating', 'compensated')),
    result       jsonb,
    error        text,
    -- nextval('forge_workflow_steps_sequence_seq') when the step completes.
    sequence     bigint,
    started_at   timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    -- Also the index of the foreign key (run_id leads).
    PRIMARY KEY (run_id, key)
);

-- Events sent to runs. An event may arrive before the run waits for it; it is kept until a
-- wait consumes it.
CREATE TABLE forge_workflow_events (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id      uuid        NOT NULL REFERENCES forge_workflow_runs (id) ON DELETE CASCADE,
    key         text        NOT NULL,
    payload     jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    consumed_at timestamptz
);

-- The oldest unconsumed event of a run and key; also the index of the foreign key.
CREATE INDEX forge_workflow_events_run_key_idx ON forge_workflow_events (run_id, key, id);

-- Who leads each role (cron scheduling, leader-elected daemons). Leadership itself is an
-- advisory lock on a dedicated connection; this row makes it visible and records the lease
-- the leader renews. The row goes with its node.
CREATE TABLE forge_leaders (
    role             text        PRIMARY KEY,
    node_id          uuid        NOT NULL REFERENCES forge_nodes (id) ON DELETE CASCADE,
    acquired_at      timestamptz NOT NULL DEFAULT now(),
    lease_expires_at timestamptz NOT NULL
);

CREATE INDEX forge_leaders_node_idx ON forge_leaders (node_id);

-- Daemons and the node each runs on (one row per node for replicated daemons).
CREATE TABLE forge_daemons (
    name       text        NOT NULL,
    node_id    uuid        NOT NULL REFERENCES forge_nodes (id) ON DELETE CASCADE,
    status     text        NOT NULL DEFAULT 'running'
                           CHECK (status IN ('running', 'restarting', 'stopped')),
    started_at timestamptz NOT NULL DEFAULT now(),
    last_error text,
    PRIMARY KEY (name, node_id)
);

CREATE INDEX forge_daemons_node_idx ON forge_daemons (node_id);

-- Row changes of tables with reactivity enabled, for live queries: a node that missed
-- notifications (its LISTEN connection dropped) replays the rows after the last id it saw.
-- Ids are assigned at insert, not at commit, so a replaying reader must allow for a lower id
-- committing after a higher one (re-read a margin, or wait out in-flight transactions).
CREATE TABLE forge_change_log (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    table_schema text        NOT NULL,
    table_name   text        NOT NULL,
    -- I insert, U update, D delete, T truncate (row_id NULL: every row may have changed).
    op           char(1)     NOT NULL CHECK (op IN ('I', 'U', 'D', 'T')),
    -- The primary key of the changed row as text: the value for a one-column key, a JSON
    -- array of the values for a composite key, NULL for a table without one.
    row_id       text,
    changed_at   timestamptz NOT NULL DEFAULT now()
);

-- Trimming old rows: DELETE WHERE changed_at < now() - interval '…'. The table is
-- append-only, so changed_at follows the physical order and a BRIN index is a few pages
-- instead of a B-tree as large as the table that every change would have to update.
CREATE INDEX forge_change_log_changed_at_idx ON forge_change_log USING brin (changed_at);

-- Webhook deliveries seen, for idempotency: a repeated (webhook, key) is acknowledged
-- without running the handler again.
CREATE TABLE forge_webhook_events (
    name            text        NOT NULL,
    idempotency_key text        NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    status          text        NOT NULL DEFAULT 'processing'
                                CHECK (status IN ('processing', 'completed', 'failed')),
    PRIMARY KEY (name, idempotency_key)
);

-- Trimming old deliveries.
CREATE INDEX forge_webhook_events_received_at_idx ON forge_webhook_events (received_at);

-- The row trigger forge_enable_reactivity installs. Arguments: the table's primary key
-- columns, in key order (none for a table without a primary key).
--
-- The notification never carries the row, only where to find the change:
--   {"s":"<schema>","t":"<table>","op":"I|U|D|T","id":<forge_change_log id>}
-- Its size is bounded far below NOTIFY's 8000-byte limit: schema and table are identifiers
-- of at most 63 bytes (NAMEDATALEN - 1); JSON escaping turns a byte into at most 6 (\u001f),
-- so each string is at most 2 + 6 * 63 = 380 bytes; the id is at most 19 digits; the rest is
-- 26 bytes of keys, punctuation and the op letter. 2 * 380 + 19 + 26 = 805 bytes.
CREATE FUNCTION forge_reactivity_notify() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    changed  jsonb;
    key_cols jsonb := '[]';
    row_key  text;
    log_id   bigint;
BEGIN
    IF TG_LEVEL = 'ROW' AND TG_NARGS > 0 THEN
        IF TG_OP = 'DELETE' THEN
            changed := to_jsonb(OLD);
        ELSE
            changed := to_jsonb(NEW);
        END IF;
        IF TG_NARGS = 1 THEN
            row_key := changed ->> TG_ARGV[0];
        ELSE
            FOR i IN 0 .. TG_NARGS - 1 LOOP
                key_cols := key_cols || jsonb_build_array(changed -> TG_ARGV[i]);
            END LOOP;
            row_key := key_cols::text;
        END IF;
    END IF;

    INSERT INTO forge_change_log (table_schema, table_name, op, row_id)
    VALUES (TG_TABLE_SCHEMA, TG_TABLE_NAME, left(TG_OP, 1), row_key)
    RETURNING id INTO log_id;

    PERFORM pg_notify('forge_changes',
        '{"s":' || to_json(TG_TABLE_SCHEMA::text)::text
        || ',"t":' || to_json(TG_TABLE_NAME::text)::text
        || ',"op":"' || left(TG_OP, 1)
        || '","id":' || log_id || '}');
    RETURN NULL;
END
$$;

-- Installs the change triggers on a table (idempotent: enabling again replaces them, which
-- also picks up a changed primary key). The trigger names are fixed, not derived from the
-- table: trigger names are per table already, and a derived name would overflow 63 bytes
-- for long table names.
CREATE FUNCTION forge_enable_reactivity(tbl regclass) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    key_args text;
BEGIN
    -- Row triggers on a partitioned table fire with the partition's name, which no query
    -- reads; views have no row triggers; the change log would notify about itself forever.
    IF (SELECT relkind FROM pg_class WHERE oid = tbl) <> 'r' THEN
        RAISE EXCEPTION 'forge_enable_reactivity: % is not an ordinary table', tbl;
    END IF;
    IF tbl = 'forge_change_log'::regclass THEN
        RAISE EXCEPTION 'forge_enable_reactivity: forge_change_log cannot report its own changes';
    END IF;

    SELECT string_agg(quote_literal(a.attname), ', ' ORDER BY k.ord)
    INTO key_args
    FROM pg_index i
    CROSS JOIN unnest(i.indkey) WITH ORDINALITY AS k (attnum, ord)
    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
    WHERE i.indrelid = tbl AND i.indisprimary;

    PERFORM forge_disable_reactivity(tbl);
    EXECUTE format(
        'CREATE TRIGGER forge_reactivity AFTER INSERT OR UPDATE OR DELETE ON %s'
        ' FOR EACH ROW EXECUTE FUNCTION forge_reactivity_notify(%s)',
        tbl, coalesce(key_args, ''));
    EXECUTE format(
        'CREATE TRIGGER forge_reactivity_truncate AFTER TRUNCATE ON %s'
        ' FOR EACH STATEMENT EXECUTE FUNCTION forge_reactivity_notify()',
        tbl);
END
$$;

-- Removes what forge_enable_reactivity installed; does nothing when it is not installed.
CREATE FUNCTION forge_disable_reactivity(tbl regclass) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    EXECUTE format('DROP TRIGGER IF EXISTS forge_reactivity ON %s', tbl);
    EXECUTE format('DROP TRIGGER IF EXISTS forge_reactivity_truncate ON %s', tbl);
END
$$;
