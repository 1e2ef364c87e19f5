-- What the workflow crash tests observe: every start of a step and every side effect, with
-- the process that did it.
CREATE TABLE workflow_step_starts (
    run_id uuid        NOT NULL,
    step   text        NOT NULL,
    pid    integer     NOT NULL,
    at     timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE workflow_effects (
    run_id uuid        NOT NULL,
    step   text        NOT NULL,
    pid    integer     NOT NULL,
    at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
