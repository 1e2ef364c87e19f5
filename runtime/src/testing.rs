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
