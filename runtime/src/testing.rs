//! Helpers for testing an application against a real database (feature `test-support`):
//! start nodes on a fresh database and mint tokens.
//!
//! ```ignore
//! let db = forge::testing::TestDatabase::new().await;
//! let node = forge::App::new(forge::testing::config(db.url()))
//!     .register(forge_generated::register)
//!     .start()
//!     .await?;
//! let token = forge::testing::token(user_id, None, &[]);
//! ```

use std::time::Duration;

use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;
use uuid::Uuid;

use crate::Config;

pub use forge_db::testing::TestDatabase;

/// The secret [`config`] sets and [`token`] signs with.
pub const JWT_SECRET: &str = "forge-test-secret";

/// A configuration for a test node on `database_url`: a free port, [`JWT_SECRET`], no
/// migrations directory of the project's own, and timings short enough for tests.
pub fn config(database_url: &str) -> Config {
    let root = std::env::temp_dir();
    let lookup = |_: &str| None;
    let mut config = Config::from_lookup(&root, lookup).expect("the defaults are valid");
    config.addr = ([127, 0, 0, 1], 0).into();
    config.database_url = Some(database_url.to_owned());
    config.jwt_secret = Some(JWT_SECRET.to_owned());
    config.migrations_dir = root.join("forge-test-no-migrations");
    config.max_connections = 5;
    config.shutdown_grace = Duration::from_secs(5);
    config.job_lease = Duration::from_secs(2);
    config.poll_interval = Duration::from_millis(200);
    config.leader_lease = Duration::from_secs(2);
    config.heartbeat = Duration::from_millis(500);
    config.ready_interval = Duration::from_millis(100);
    config
}

/// A bearer token for `user_id`, valid for an hour, signed with [`JWT_SECRET`].
pub fn token(user_id: Uuid, tenant_id: Option<Uuid>, roles: &[&str]) -> String {
    let exp = chrono::Utc::now().timestamp() + 3600;
    let mut claims = json!({"sub": user_id, "exp": exp, "roles": roles});
    if let Some(tenant) = tenant_id {
        claims["tenant_id"] = json!(tenant);
    }
    jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .expect("HS256 signing cannot fail")
}

/// Calls a running node's RPC endpoint as a client would.
#[derive(Clone)]
pub struct TestClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

/// A call that failed: the envelope's error and the HTTP status.
#[derive(Debug, Clone, PartialEq)]
pub struct CallError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub details: serde_json::Value,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl std::error::Error for CallError {}

impl TestClient {
    pub fn new(node: &crate::Running) -> TestClient {
        TestClient {
            base: format!("http://{}", node.addr()),
            token: None,
            http: reqwest::Client::new(),
        }
    }

    /// Sends `token` as the bearer token of every call.
    pub fn token(mut self, token: impl Into<String>) -> TestClient {
        self.token = Some(token.into());
        self
    }

    /// Calls the query or mutation `name` with `args` (an object of its parameters by
    /// name) and returns the envelope's `data`, or its error.
    pub async fn call(
        &self,
        name: &str,
        args: serde_json::Value,
    ) -> Result<serde_json::Value, CallError> {
        let mut request = self
            .http
            .post(format!("{}/_api/rpc/{name}", self.base))
            .json(&json!({ "args": args }));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let transport = |e: reqwest::Error| CallError {
            status: 0,
            code: "NETWORK_ERROR".into(),
            message: e.to_string(),
            details: serde_json::Value::Null,
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let mut body: serde_json::Value = response.json().await.map_err(transport)?;
        if body["success"] == true {
            return Ok(body["data"].take());
        }
        let error = &mut body["error"];
        Err(CallError {
            status,
            code: error["code"].as_str().unwrap_or_default().to_owned(),
            message: error["message"].as_str().unwrap_or_default().to_owned(),
            details: error["details"].take(),
        })
    }
}

/// Background work of a test node, driven from the test: run the job worker until the
/// queue is idle, fire workflow timers without waiting for the clock, deliver events, and
/// read what a call dispatched. Everything goes through the node's real database and its
/// real worker; nothing is simulated.
///
/// ```ignore
/// let work = forge::testing::Work::new(&node);
/// let mark = work.mark().await;
/// client.call("sign_up", json!({"email": "a@b.c"})).await?;
/// assert_eq!(work.jobs_since(&mark).await[0].name, "send_welcome");
/// work.drain(Duration::from_secs(5)).await?;          // the job ran
/// work.fire_timers(Utc::now() + chrono::Duration::days(2)).await?;   // sleeps are over
/// work.drain(Duration::from_secs(5)).await?;          // and the runs went on
/// ```
pub struct Work {
    shared: std::sync::Arc<crate::shared::Shared>,
}

/// A point in time to read dispatches from ([`Work::mark`]).
#[derive(Debug, Clone, Copy)]
pub struct Mark(chrono::DateTime<chrono::Utc>);

/// A job as dispatched.
#[derive(Debug, Clone, PartialEq)]
pub struct DispatchedJob {
    pub id: Uuid,
    pub name: String,
    pub queue: String,
    pub input: serde_json::Value,
    pub status: String,
}

/// A workflow run as started.
#[derive(Debug, Clone, PartialEq)]
pub struct StartedRun {
    pub id: Uuid,
    pub name: String,
    pub input: serde_json::Value,
    pub status: String,
}

/// [`Work::drain`] gave up: what was still not done.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the work is not idle after {waited:?}: {jobs} jobs and {runs} workflow runs are still due or running")]
pub struct NotIdle {
    pub waited: Duration,
    pub jobs: i64,
    pub runs: i64,
}

/// Jobs due or running, and workflow runs that a worker would claim now or is executing.
const BUSY: &str = "SELECT \
    (SELECT count(*) FROM forge_jobs WHERE status = 'running' \
        OR (status IN ('pending', 'failed') AND scheduled_at <= now())), \
    (SELECT count(*) FROM forge_workflow_runs WHERE status IN ('pending', 'running', 'compensating') \
        OR (status = 'sleeping' AND wake_at <= now()) \
        OR (status = 'waiting' AND event_deadline <= now()) \
        OR (status = 'waiting' AND EXISTS (SELECT 1 FROM forge_workflow_events e \
            WHERE e.run_id = forge_workflow_runs.id AND e.key = awaited_event AND e.consumed_at IS NULL)))";

impl Work {
    /// The work of `node` (which must run the job worker: `job_concurrency` above 0).
    pub fn new(node: &crate::Running) -> Work {
        Work {
            shared: node.shared.clone(),
        }
    }

    fn pool(&self) -> &sqlx::PgPool {
        &self.shared.primary
    }

    /// Wakes the workers now rather than at their next poll.
    async fn wake(&self) -> crate::Result<()> {
        sqlx::query(
            "SELECT pg_notify('forge_jobs_available', q) \
             FROM (SELECT DISTINCT queue AS q FROM forge_jobs WHERE status IN ('pending', 'failed') \
                   UNION SELECT $1) queues",
        )
        .bind(crate::workflow::WAKE)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Waits until no job is due or running and no workflow run can go on (each sleeping
    /// until a time not yet come, waiting for an event not yet sent, or finished), for at
    /// most `within`. Failed jobs whose retry is due count as due: a job that keeps failing
    /// keeps the work busy until it is dead.
    pub async fn drain(&self, within: Duration) -> Result<(), NotIdle> {
        let start = std::time::Instant::now();
        loop {
            let _ = self.wake().await;
            let busy: Result<(i64, i64), sqlx::Error> =
                sqlx::query_as(BUSY).fetch_one(self.pool()).await;
            let (jobs, runs) = busy.unwrap_or((-1, -1));
            if (jobs, runs) == (0, 0) {
                return Ok(());
            }
            if start.elapsed() >= within {
                return Err(NotIdle {
                    waited: start.elapsed(),
                    jobs,
                    runs,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Fires every workflow timer due by `until` as if that time had come: durable sleeps
    /// waking by then, and event waits timing out by then, become due now. Returns how many
    /// runs it woke; [`Work::drain`] then lets them go on.
    pub async fn fire_timers(&self, until: chrono::DateTime<chrono::Utc>) -> crate::Result<u64> {
        let mut tx = self.pool().begin().await?;
        // The stored sleep steps hold the wake time a replay reads, so they move too.
        sqlx::query(
            "UPDATE forge_workflow_steps s SET result = jsonb_build_object('wake_at', now()) \
             FROM forge_workflow_runs r \
             WHERE s.run_id = r.id AND r.status = 'sleeping' AND s.key LIKE '~sleep/%' \
               AND (s.result->>'wake_at')::timestamptz BETWEEN now() AND $1",
        )
        .bind(until)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE forge_workflow_steps s SET result = jsonb_build_object('deadline', now()) \
             FROM forge_workflow_runs r \
             WHERE s.run_id = r.id AND r.status = 'waiting' AND s.status = 'running' \
               AND s.key LIKE '~event/%' \
               AND (s.result->>'deadline')::timestamptz BETWEEN now() AND $1",
        )
        .bind(until)
        .execute(&mut *tx)
        .await?;
        let woken = sqlx::query(
            "UPDATE forge_workflow_runs SET \
                 wake_at = CASE WHEN status = 'sleeping' THEN now() ELSE wake_at END, \
                 event_deadline = CASE WHEN status = 'waiting' THEN now() ELSE event_deadline END \
             WHERE (status = 'sleeping' AND wake_at BETWEEN now() AND $1) \
                OR (status = 'waiting' AND event_deadline BETWEEN now() AND $1)",
        )
        .bind(until)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        self.wake().await?;
        Ok(woken)
    }

    /// Sends the event `key` with `payload` to workflow run `run_id`, as
    /// `ctx.send_event` does (`NOT_FOUND` when there is no such run).
    pub async fn send_event(
        &self,
        run_id: Uuid,
        key: &str,
        payload: impl serde::Serialize,
    ) -> crate::Result<()> {
        let payload = serde_json::to_value(payload)?;
        crate::dispatch::insert_event(self.pool(), run_id, key, payload).await
    }

    /// Now, by the database's clock: what was dispatched after it is read with
    /// [`Work::jobs_since`] and [`Work::runs_since`].
    pub async fn mark(&self) -> crate::Result<Mark> {
        Ok(Mark(
            sqlx::query_scalar("SELECT clock_timestamp()")
                .fetch_one(self.pool())
                .await?,
        ))
    }

    /// The jobs dispatched since `mark` (by transactions that began after it), oldest first.
    pub async fn jobs_since(&self, mark: &Mark) -> crate::Result<Vec<DispatchedJob>> {
        let rows: Vec<(Uuid, String, String, serde_json::Value, String)> = sqlx::query_as(
            "SELECT id, name, queue, input, status FROM forge_jobs WHERE created_at >= $1 \
             ORDER BY created_at, id",
        )
        .bind(mark.0)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, name, queue, input, status)| DispatchedJob {
                id,
                name,
                queue,
                input,
                status,
            })
            .collect())
    }

    /// The workflow runs started since `mark`, oldest first.
    pub async fn runs_since(&self, mark: &Mark) -> crate::Result<Vec<StartedRun>> {
        let rows: Vec<(Uuid, String, serde_json::Value, String)> = sqlx::query_as(
            "SELECT id, name, input, status FROM forge_workflow_runs WHERE created_at >= $1 \
             ORDER BY created_at, id",
        )
        .bind(mark.0)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, name, input, status)| StartedRun {
                id,
                name,
                input,
                status,
            })
            .collect())
    }
}
