//! Rate limits that hold across every node of a cluster.
//!
//! What is limited: each query, mutation and MCP tool with `rate_limit = "N/unit"`, per
//! caller (the user, else the client IP); anonymous RPC calls per client IP across all
//! handlers (`FORGE_RATE_LIMIT`); webhook deliveries per source IP across all webhooks
//! (`FORGE_WEBHOOK_RATE_LIMIT`).
//!
//! How: fixed windows (multiples of the period since the epoch, on the database's clock) in
//! `forge_rate_limits`. A node does not go to the database per call: it takes a *lease* of
//! up to `count / 10` calls (1 to 1,000) in one statement that never lets `used` pass the
//! limit, and spends it locally. So the nodes together never admit more than the limit in
//! a window (no over-admission at all); the tolerance is the other way: calls leased to one
//! node are not available to another, so a caller spread over `n` nodes may be refused up
//! to `(n - 1) × (lease - 1)` calls early in a window. A key found exhausted is remembered
//! locally until its window ends, so refusals cost no database trip either. Like any fixed
//! window, a caller may spend one window's limit at its very end and the next one's at the
//! start of the next.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use uuid::Uuid;

use crate::auth::Auth;
use crate::registry::RateLimit;
use crate::shared::Shared;
use crate::{Error, Result};

/// Keys remembered locally before expired ones are swept; past it (after a sweep), new
/// keys go to the database every time rather than grow the map further.
const MAX_LOCAL_KEYS: usize = 100_000;

/// The largest lease a node takes at once.
const MAX_LEASE: u32 = 1_000;

/// Who a limit counts calls of.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Caller {
    User(Uuid),
    Ip(IpAddr),
}

/// This node's leases; the counts themselves are in the database given to each call.
#[derive(Default)]
pub(crate) struct RateLimiter {
    leases: Mutex<HashMap<String, Lease>>,
}

/// What this node holds of one key's current window.
struct Lease {
    /// The window, in milliseconds since the epoch: a grant for another window replaces it.
    window: i64,
    /// Calls still leased to this node; zero with `exhausted` means the window is spent.
    left: u32,
    exhausted: bool,
    until: Instant,
}

impl RateLimiter {
    /// One call of handler `name` (`scope` tells RPC from MCP) by `caller`, against `limit`.
    pub async fn handler(
        &self,
        pool: &PgPool,
        scope: &str,
        name: &str,
        caller: Caller,
        limit: RateLimit,
    ) -> Result<()> {
        let key = match caller {
            Caller::User(user) => format!("{scope}:{name}:user:{user}"),
            Caller::Ip(ip) => format!("{scope}:{name}:ip:{ip}"),
        };
        self.take(pool, key, limit, "this function's rate limit")
            .await
    }

    /// One anonymous RPC call from `ip` against `FORGE_RATE_LIMIT`.
    pub async fn anonymous(&self, pool: &PgPool, ip: IpAddr, limit: RateLimit) -> Result<()> {
        self.take(
            pool,
            format!("anonymous:ip:{ip}"),
            limit,
            "the anonymous rate limit of this address (FORGE_RATE_LIMIT)",
        )
        .await
    }

    /// One webhook delivery from `ip` against `FORGE_WEBHOOK_RATE_LIMIT`.
    pub async fn webhook(&self, pool: &PgPool, ip: IpAddr, limit: RateLimit) -> Result<()> {
        self.take(
            pool,
            format!("webhook:ip:{ip}"),
            limit,
            "the webhook rate limit of this address (FORGE_WEBHOOK_RATE_LIMIT)",
        )
        .await
    }

    async fn take(&self, pool: &PgPool, key: String, limit: RateLimit, what: &str) -> Result<()> {
        match self.take_local(&key) {
            Some(Ok(())) => return Ok(()),
            Some(Err(wait)) => return Err(throttled(what, limit, wait)),
            None => {}
        }
        let lease = lease_size(limit);
        let (window, granted, remaining_ms): (i64, i32, i64) = sqlx::query_as(TAKE_LEASE)
            .bind(&key)
            .bind(lease as i32)
            .bind(limit.per_ms as i64)
            .bind(limit.count as i32)
            .fetch_one(pool)
            .await?;
        let granted = u32::try_from(granted).unwrap_or(0);
        let remaining = Duration::from_millis(remaining_ms.max(1) as u64);
        self.store(key, window, granted, remaining);
        if granted == 0 {
            return Err(throttled(what, limit, remaining));
        }
        Ok(())
    }

    /// Spends a locally leased call: `None` when the database must be asked, `Err` with the
    /// wait when the window is known to be spent.
    fn take_local(&self, key: &str) -> Option<std::result::Result<(), Duration>> {
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        let lease = leases.get_mut(key)?;
        let now = Instant::now();
        if lease.until <= now {
            return None;
        }
        if lease.left > 0 {
            lease.left -= 1;
            return Some(Ok(()));
        }
        lease.exhausted.then(|| Err(lease.until - now))
    }

    /// Records a grant of `granted` calls (one of them spent by the caller) for `window`.
    fn store(&self, key: String, window: i64, granted: u32, remaining: Duration) {
        let until = Instant::now() + remaining;
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(lease) = leases.get_mut(&key) {
            if lease.window == window {
                lease.left += granted.saturating_sub(1);
                lease.exhausted = granted == 0;
                return;
            }
        }
        if leases.len() >= MAX_LOCAL_KEYS && !leases.contains_key(&key) {
            let now = Instant::now();
            leases.retain(|_, lease| lease.until > now);
            if leases.len() >= MAX_LOCAL_KEYS {
                return;
            }
        }
        leases.insert(
            key,
            Lease {
                window,
                left: granted.saturating_sub(1),
                exhausted: granted == 0,
                until,
            },
        );
    }
}

/// The limits one call of handler `name` is under: `FORGE_RATE_LIMIT` when the caller is
/// anonymous, then the handler's own `rate_limit` per user (else per client IP).
pub(crate) async fn check_call(
    shared: &Shared,
    scope: &str,
    name: &str,
    limit: Option<RateLimit>,
    auth: Option<&Auth>,
    ip: IpAddr,
) -> Result<()> {
    let limiter = &shared.gateway.rate_limits;
    if let (None, Some(anonymous)) = (auth, shared.config.rate_limit) {
        limiter.anonymous(&shared.primary, ip, anonymous).await?;
    }
    if let Some(limit) = limit {
        let caller = auth.map_or(Caller::Ip(ip), |auth| Caller::User(auth.user_id));
        limiter
            .handler(&shared.primary, scope, name, caller, limit)
            .await?;
    }
    Ok(())
}

/// Deletes windows that have ended, once a minute until `stop` (every node does; it is
/// cheap and idempotent, and the leader exists only with `cron` or `daemons`).
pub(crate) async fn trim_until(pool: PgPool, stop: tokio_util::sync::CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
        if let Err(error) = trim(&pool).await {
            tracing::warn!(%error, "cannot trim forge_rate_limits");
        }
    }
}

/// Deletes up to 5,000 windows that have ended.
async fn trim(pool: &PgPool) -> Result<u64> {
    let deleted = sqlx::query(
        "DELETE FROM forge_rate_limits WHERE ctid IN \
         (SELECT ctid FROM forge_rate_limits WHERE expires_at < now() LIMIT 5000)",
    )
    .execute(pool)
    .await?
    .rows_affected();
    Ok(deleted)
}

/// Takes up to `$2` calls of key `$1`'s current window (`$3` ms long, limit `$4`) in one
/// statement: the row lock of the upsert serialises nodes, and `used` never passes the
/// limit. Returns the window (ms since the epoch), the calls granted (0: spent) and the
/// milliseconds left in the window.
const TAKE_LEASE: &str = "
WITH w AS (
    SELECT to_timestamp((floor(extract(epoch FROM now()) * 1000 / $3::int8) * $3::int8 / 1000)::float8) AS start
), taken AS (
    INSERT INTO forge_rate_limits AS r (key, window_start, used, granted, expires_at)
    SELECT $1, w.start, LEAST($2::int4, $4::int4), LEAST($2::int4, $4::int4),
           w.start + $3::int8 * interval '1 millisecond'
    FROM w
    ON CONFLICT (key, window_start) DO UPDATE
        SET granted = LEAST(EXCLUDED.granted, $4::int4 - r.used),
            used = r.used + LEAST(EXCLUDED.granted, $4::int4 - r.used)
        WHERE r.used < $4::int4
    RETURNING r.granted
)
SELECT (extract(epoch FROM w.start) * 1000)::int8,
       COALESCE((SELECT granted FROM taken), 0)::int4,
       ceil(extract(epoch FROM (w.start - now())) * 1000 + $3::int8)::int8
FROM w";

/// A tenth of the limit, 1 to [`MAX_LEASE`]: few database trips for large limits, exact
/// counting for small ones.
fn lease_size(limit: RateLimit) -> u32 {
    (limit.count / 10).clamp(1, MAX_LEASE)
}

fn throttled(what: &str, limit: RateLimit, wait: Duration) -> Error {
    let retry_after_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
    Error::Throttled {
        message: format!(
            "too many calls: over {what} of {} per {}; retry in {} ms",
            limit.count,
            period(limit.per_ms),
            retry_after_ms
        ),
        retry_after_ms,
    }
}

fn period(per_ms: u64) -> &'static str {
    match per_ms {
        1_000 => "second",
        60_000 => "minute",
        _ => "hour",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_a_tenth_of_the_limit_within_bounds() {
        let limit = |count| RateLimit {
            count,
            per_ms: 60_000,
        };
        assert_eq!(lease_size(limit(5)), 1);
        assert_eq!(lease_size(limit(20)), 2);
        assert_eq!(lease_size(limit(300)), 30);
        assert_eq!(lease_size(limit(1_000_000)), MAX_LEASE);
    }
}
