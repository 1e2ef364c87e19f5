//! Read replicas (`DATABASE_REPLICA_URLS`): queries go to the healthy ones in turn.
//!
//! Each replica is probed in the background; one that fails a probe is skipped until a
//! later probe succeeds. With no healthy replica, queries use the primary, so a replica
//! outage degrades capacity, never availability.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// How often replicas are probed, and how long a probe may take.
const PROBE_INTERVAL: Duration = Duration::from_secs(2);
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

struct Replica {
    /// Printable without credentials, for logs.
    name: String,
    pool: PgPool,
    healthy: AtomicBool,
}

#[derive(Clone, Default)]
pub(crate) struct Replicas {
    replicas: Arc<Vec<Replica>>,
    next: Arc<AtomicUsize>,
}

impl Replicas {
    /// Lazy pools: a replica that is down at start must not stop the node from starting.
    pub fn connect(urls: &[String], max_connections: u32) -> Result<Replicas, sqlx::Error> {
        let replicas = urls
            .iter()
            .map(|url| {
                let pool = PgPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(PROBE_TIMEOUT)
                    .connect_lazy(url)?;
                Ok(Replica {
                    name: redact(url),
                    pool,
                    healthy: AtomicBool::new(false),
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(Replicas {
            replicas: Arc::new(replicas),
            next: Arc::default(),
        })
    }

    /// The next healthy replica's pool, round-robin; `None` when none is healthy.
    pub fn pick(&self) -> Option<PgPool> {
        let count = self.replicas.len();
        if count == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..count)
            .map(|offset| &self.replicas[(start + offset) % count])
            .find(|replica| replica.healthy.load(Ordering::Relaxed))
            .map(|replica| replica.pool.clone())
    }

    /// Probes every replica until `stop`; the first round runs before this returns its
    /// future's first poll completes, so a node starts with the replicas' real state.
    pub async fn probe_once(&self) {
        let probes = self.replicas.iter().map(|replica| async move {
            let ok = tokio::time::timeout(PROBE_TIMEOUT, sqlx::query("SELECT 1").execute(&replica.pool))
                .await
                .is_ok_and(|result| result.is_ok());
            let was = replica.healthy.swap(ok, Ordering::Relaxed);
            if was != ok {
                if ok {
                    tracing::info!(replica = %replica.name, "read replica is healthy");
                } else {
                    tracing::warn!(replica = %replica.name, "read replica is unreachable; queries skip it");
                }
            }
        });
        futures_util::future::join_all(probes).await;
    }

    pub async fn probe_until(&self, stop: CancellationToken) {
        if self.replicas.is_empty() {
            return;
        }
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(PROBE_INTERVAL) => self.probe_once().await,
            }
        }
        for replica in self.replicas.iter() {
            replica.pool.close().await;
        }
    }
}

/// The URL without its password.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}
