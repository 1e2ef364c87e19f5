-- forge system schema v003: rate limits shared by every node of a cluster.
--
-- One row per limited key (handler and caller, anonymous client IP, webhook source IP) and
-- fixed window. Nodes do not write a row per call: each takes a lease of several calls at
-- once (`granted`, the size of the last lease taken, read back by the statement that took
-- it), so `used` counts calls leased out, never more than the limit. Windows are aligned
-- to multiples of their length on the database's clock, which every node shares.
CREATE TABLE forge_rate_limits (
    key          text        NOT NULL,
    window_start timestamptz NOT NULL,
    used         integer     NOT NULL CHECK (used >= 0),
    granted      integer     NOT NULL CHECK (granted >= 0),
    -- The window's end: past it the row is dead weight, trimmed by every node.
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (key, window_start)
);

-- Trimming expired windows.
CREATE INDEX forge_rate_limits_expires_at_idx ON forge_rate_limits (expires_at);
