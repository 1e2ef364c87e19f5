//! Refresh tokens (`forge_refresh_tokens`, system schema v2): 256 random bits, given to the
//! client as 64 hex digits and stored only as their SHA-256. Each is single use:
//! [`rotate`] exchanges it for a new pair in the same family, and a token presented again
//! after its exchange revokes the family (the token leaked, or two clients share it; either
//! way the session is no longer the user's alone). [`revoke`] is logout.

use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use sqlx::{Executor, PgPool, Postgres};
use uuid::Uuid;

use super::issue::{sign, Grant, Session};
use crate::shared::Shared;
use crate::{Error, Result};

/// Why a refresh token was refused. The client sees only "invalid refresh token" for all
/// but reuse (which tells a legitimate client why it was signed out); the log gets which.
fn refused() -> Error {
    Error::Unauthorized("invalid refresh token".into())
}

fn fresh_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::Internal("the system's random source failed".into()))?;
    Ok(hex::encode(bytes))
}

/// The stored form of a token; `None` for text that is not a token forge issued.
fn token_hash(token: &str) -> Option<[u8; 32]> {
    let well_formed = token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit());
    well_formed.then(|| Sha256::digest(token.as_bytes()).into())
}

/// Stores a new refresh token for `grant` (in `family`, or a new one) on `executor` and
/// returns the token.
pub(crate) async fn create<'e>(
    executor: impl Executor<'e, Database = Postgres>,
    grant: &Grant,
    lifetime: Duration,
    family: Option<Uuid>,
) -> Result<String> {
    let token = fresh_token()?;
    let hash =
        token_hash(&token).ok_or_else(|| Error::Internal("malformed refresh token".into()))?;
    let id = Uuid::new_v4();
    let lifetime_ms = i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX);
    let access_ttl_ms = i64::try_from(grant.ttl.as_millis()).unwrap_or(i64::MAX);
    sqlx::query(
        "INSERT INTO forge_refresh_tokens \
             (id, token_hash, family_id, user_id, tenant_id, roles, claims, access_ttl_ms, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now() + $9 * interval '1 millisecond')",
    )
    .bind(id)
    .bind(&hash[..])
    .bind(family.unwrap_or(id))
    .bind(grant.user_id)
    .bind(grant.tenant_id)
    .bind(&grant.roles)
    .bind(Value::Object(grant.claims.clone()))
    .bind(access_ttl_ms)
    .bind(lifetime_ms)
    .execute(executor)
    .await?;
    Ok(token)
}

/// A stored token's row: id, family, user, tenant, roles, claims, access ttl (ms), and
/// whether it is expired, used, revoked.
type Stored = (
    Uuid,
    Uuid,
    Uuid,
    Option<Uuid>,
    Vec<String>,
    Value,
    i64,
    bool,
    bool,
    bool,
);

/// Exchanges `token` for a new session pair, in one transaction that locks the token's row:
/// of two concurrent uses, one rotates and the other finds the token used and revokes the
/// family.
pub(crate) async fn rotate(shared: &Shared, token: &str) -> Result<Session> {
    let hash = token_hash(token).ok_or_else(refused)?;
    let mut tx = shared.primary.begin().await?;
    let stored: Option<Stored> = sqlx::query_as(
        "SELECT id, family_id, user_id, tenant_id, roles, claims, access_ttl_ms, \
                expires_at <= now() AS expired, used_at IS NOT NULL AS used, \
                revoked_at IS NOT NULL AS revoked \
         FROM forge_refresh_tokens WHERE token_hash = $1 FOR UPDATE",
    )
    .bind(&hash[..])
    .fetch_optional(&mut *tx)
    .await?;
    let Some((
        id,
        family_id,
        user_id,
        tenant_id,
        roles,
        claims,
        access_ttl_ms,
        expired,
        used,
        revoked,
    )) = stored
    else {
        tracing::debug!("refresh: unknown token");
        return Err(refused());
    };
    if revoked || expired {
        tracing::debug!(family = %family_id, revoked = revoked, "refresh: token no longer valid");
        return Err(refused());
    }
    if used {
        let revoked = revoke_family(&mut *tx, family_id, "reuse").await?;
        tx.commit().await?;
        tracing::warn!(family = %family_id, user = %user_id, revoked,
            "a refresh token was used twice: its session is revoked");
        return Err(Error::Unauthorized(
            "this refresh token was already used, so the session is revoked: sign in again".into(),
        ));
    }
    let claims = match claims {
        Value::Object(claims) => claims,
        _ => Map::new(),
    };
    let grant = Grant {
        user_id,
        tenant_id,
        roles,
        claims,
        ttl: Duration::from_millis(u64::try_from(access_ttl_ms).unwrap_or(1000)),
    };
    sqlx::query("UPDATE forge_refresh_tokens SET used_at = now() WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let refresh_token = create(
        &mut *tx,
        &grant,
        shared.config.refresh_token_ttl,
        Some(family_id),
    )
    .await?;
    let access_token = sign(shared, &grant)?;
    tx.commit().await?;
    Ok(Session {
        access_token,
        refresh_token,
        expires_in: grant.ttl.as_secs(),
    })
}

/// Logout: revokes the session `token` belongs to. Unknown, expired or already revoked
/// tokens are fine (the session is over either way), so logout is idempotent.
pub(crate) async fn revoke(pool: &PgPool, token: &str) -> Result<()> {
    let hash = token_hash(token).ok_or_else(refused)?;
    let family: Option<Uuid> =
        sqlx::query_scalar("SELECT family_id FROM forge_refresh_tokens WHERE token_hash = $1")
            .bind(&hash[..])
            .fetch_optional(pool)
            .await?;
    if let Some(family) = family {
        revoke_family(pool, family, "logout").await?;
    }
    Ok(())
}

async fn revoke_family<'e>(
    executor: impl Executor<'e, Database = Postgres>,
    family: Uuid,
    reason: &str,
) -> Result<u64> {
    let revoked = sqlx::query(
        "UPDATE forge_refresh_tokens SET revoked_at = now(), revoked_reason = $2 \
         WHERE family_id = $1 AND revoked_at IS NULL",
    )
    .bind(family)
    .bind(reason)
    .execute(executor)
    .await?;
    Ok(revoked.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_tokens_have_a_hash() {
        let token = fresh_token().unwrap();
        assert_eq!(token.len(), 64);
        assert_ne!(token, fresh_token().unwrap());
        assert!(token_hash(&token).is_some());
        assert!(token_hash("short").is_none());
        assert!(token_hash(&"z".repeat(64)).is_none());
    }
}
