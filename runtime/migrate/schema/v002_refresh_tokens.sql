-- forge system schema, version 2: refresh tokens of issued sessions
-- (`ctx.issue_session`, `POST /_api/auth/refresh`, `POST /_api/auth/logout`).
--
-- A token is never stored, only its SHA-256: a leak of this table signs nobody in. Every
-- rotation inserts the successor in the same family and marks the used token `used_at`; a
-- used token presented again is a replay (the token was stolen, or the client is confused),
-- so the whole family is revoked. Rotation locks the presented row (FOR UPDATE), so two
-- concurrent uses of one token are one rotation and one detected reuse.

CREATE TABLE forge_refresh_tokens (
    id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    -- SHA-256 of the token the client holds.
    token_hash     bytea       NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    -- The session: the first token's id, shared by every rotation of it.
    family_id      uuid        NOT NULL,
    user_id        uuid        NOT NULL,
    -- What every access token of the session says: tenant, roles, the app's claims, and how
    -- long each lives.
    tenant_id      uuid,
    roles          text[]      NOT NULL DEFAULT '{}',
    claims         jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(claims) = 'object'),
    access_ttl_ms  bigint      NOT NULL CHECK (access_ttl_ms > 0),
    issued_at      timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    -- Set when the token was exchanged for its successor.
    used_at        timestamptz,
    revoked_at     timestamptz,
    revoked_reason text        CHECK (revoked_reason IN ('logout', 'reuse')),
    CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL))
);

-- Revoking a family (logout, reuse).
CREATE INDEX forge_refresh_tokens_family_idx ON forge_refresh_tokens (family_id);

-- Signing a user out everywhere, and finding a user's sessions.
CREATE INDEX forge_refresh_tokens_user_idx ON forge_refresh_tokens (user_id);

-- Trimming expired tokens.
CREATE INDEX forge_refresh_tokens_expires_at_idx ON forge_refresh_tokens (expires_at);
