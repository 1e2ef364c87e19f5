//! How an app runs: the environment, then forge.toml's `[server]`, then defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{Error, Result};

/// Everything [`crate::App`] reads at start. [`Config::from_env`] fills it from the
/// environment; tests and embedders may build or adjust one directly.
#[derive(Debug, Clone)]
pub struct Config {
    /// `FORGE_ADDR`, else `[server] addr` in forge.toml, else `127.0.0.1:9081`.
    pub addr: SocketAddr,
    /// The project root: the nearest directory upwards from the working directory with a
    /// forge.toml, else the working directory. The embedded development database and the
    /// migrations live there.
    pub project_root: PathBuf,
    /// `DATABASE_URL`; without it the project's embedded development database is used.
    pub database_url: Option<String>,
    /// `DATABASE_REPLICA_URLS`, comma-separated: read replicas for queries.
    pub replica_urls: Vec<String>,
    /// `FORGE_JWT_SECRET`. Without it every non-public handler answers 401.
    pub jwt_secret: Option<String>,
    /// `FORGE_JWKS_URL`: an identity provider's JSON Web Key Set; tokens signed with RS256,
    /// ES256 or EdDSA by one of its keys are accepted.
    pub jwks_url: Option<String>,
    /// `FORGE_JWT_ISSUER`: when set, every token's `iss` must be exactly this (and issued
    /// tokens carry it).
    pub jwt_issuer: Option<String>,
    /// `FORGE_JWT_AUDIENCE`: when set, every token's `aud` must contain this (and issued
    /// tokens carry it).
    pub jwt_audience: Option<String>,
    /// `FORGE_JWT_LEEWAY`: clock skew allowed on `exp` and `nbf` (default 5s).
    pub jwt_leeway: Duration,
    /// `FORGE_ACCESS_TOKEN_TTL`: how long issued access tokens live (default 15m).
    pub access_token_ttl: Duration,
    /// `FORGE_REFRESH_TOKEN_TTL`: how long an issued refresh token may wait to be used
    /// (default 30d; each rotation starts a new period).
    pub refresh_token_ttl: Duration,
    /// `FORGE_MIGRATE` (`false` turns it off): apply pending migrations at start.
    pub migrate: bool,
    /// `FORGE_MIGRATIONS_DIR`, else `<project root>/migrations`.
    pub migrations_dir: PathBuf,
    /// `FORGE_APP_VERSION`: shown in `forge_nodes` so a rolling deploy shows who runs what.
    pub app_version: String,
    /// `FORGE_MAX_CONNECTIONS`: the primary pool's size (default 10).
    pub max_connections: u32,
    /// `FORGE_BODY_LIMIT` in bytes (default 2 MiB).
    pub body_limit: usize,
    /// `FORGE_JOB_CONCURRENCY`: jobs run at once on this node (default 8; 0 runs no jobs).
    pub job_concurrency: usize,
    /// `FORGE_SHUTDOWN_GRACE`: how long in-flight requests and jobs may finish (default 30s).
    pub shutdown_grace: Duration,
    /// `FORGE_JOB_LEASE`: a running job belongs to its worker this long without a renewal
    /// (default 30s); a job whose worker died is claimed again after it.
    pub job_lease: Duration,
    /// `FORGE_POLL_INTERVAL`: how often idle workers look for jobs without a notification
    /// (default 1s).
    pub poll_interval: Duration,
    /// `FORGE_LEADER_LEASE`: how long leadership lasts without a renewal (default 15s).
    pub leader_lease: Duration,
    /// `FORGE_HEARTBEAT`: how often a node says it is alive (default 5s).
    pub heartbeat: Duration,
    /// `FORGE_LIVE_MAX_SESSIONS_PER_USER`: live-query sessions (`/_api/events` streams) one
    /// user may hold open on one node (default 16).
    pub live_max_sessions_per_user: usize,
    /// `FORGE_LIVE_MAX_SUBSCRIPTIONS_PER_USER`: live subscriptions one user may hold on one
    /// node, and one session of an anonymous caller (default 256).
    pub live_max_subscriptions_per_user: usize,
    /// `FORGE_LIVE_MAX_SESSIONS_PER_IP`: live-query sessions one client address may hold open
    /// on one node, signed in or not (default 64).
    pub live_max_sessions_per_ip: usize,
    /// `FORGE_LIVE_MAX_SESSIONS`: live-query sessions open on one node in all (default 4096).
    pub live_max_sessions: usize,
    /// `FORGE_LIVE_MAX_QUEUED_BYTES`: bytes of events one session may have waiting for its
    /// client (default 4 MiB); a session that falls further behind is disconnected (its
    /// client reconnects and subscribes again).
    pub live_max_queued_bytes: usize,
    /// `FORGE_HTTP_MAX_CONNECTIONS`: HTTP connections open at once (default 8192; keep it
    /// below the process's `ulimit -n`). Past it a connection is answered 503 and closed.
    pub http_max_connections: usize,
    /// `FORGE_HTTP_HEADER_TIMEOUT`: how long a client may take to send a request's headers,
    /// and how long a connection may stay open without a request (default 10s).
    pub http_header_timeout: Duration,
    /// `FORGE_HTTP_BODY_TIMEOUT`: how long a client may take to send a request's body
    /// (default 30s); past it the request is answered 408.
    pub http_body_timeout: Duration,
    /// `FORGE_READY_INTERVAL`: how often the node re-checks what `/_api/ready` answers
    /// (default 2s); the endpoint itself answers from memory.
    pub ready_interval: Duration,
    /// `FORGE_MCP_MAX_BATCH`: messages in one MCP JSON-RPC batch (default 32).
    pub mcp_max_batch: usize,
    /// `FORGE_RETENTION`: how long forge keeps webhook idempotency keys, finished cron
    /// runs, finished jobs and finished workflow runs before the leader trims them (default
    /// 7d).
    pub retention: Duration,
    /// `FORGE_RETENTION_JOBS`: overrides [`Config::retention`] for completed, dead and
    /// cancelled jobs.
    pub retention_jobs: Duration,
    /// `FORGE_RETENTION_WORKFLOWS`: overrides [`Config::retention`] for completed,
    /// compensated, cancelled and failed workflow runs (with their steps and events).
    pub retention_workflows: Duration,
    /// `FORGE_QUERY_CACHE_ENTRIES`: results of `#[forge::query(cache = …)]` one node keeps
    /// at most (default 10000; 0 turns the cache off).
    pub query_cache_entries: usize,
    /// `FORGE_QUERY_CACHE_BYTES`: bytes of cached result JSON one node keeps at most
    /// (default 64 MiB).
    pub query_cache_bytes: usize,
    /// `FORGE_TRUSTED_PROXIES`: peers whose `X-Forwarded-For` names the client (CIDRs or
    /// addresses, comma-separated); empty: the socket peer is the client.
    #[cfg(feature = "gateway")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `FORGE_CORS_ORIGINS`: origins (`https://app.example.com`, comma-separated) whose
    /// browsers may call RPC and the live-query endpoints; empty: no CORS headers at all.
    #[cfg(feature = "gateway")]
    pub cors_origins: Vec<axum::http::HeaderValue>,
    /// `FORGE_RATE_LIMIT` (`300/m`): RPC calls without a user, per client IP across all
    /// handlers; unset: no such limit.
    pub rate_limit: Option<forge_attrs::RateLimit>,
    /// `FORGE_WEBHOOK_RATE_LIMIT` (`600/m`): webhook deliveries per source IP across all
    /// webhooks; unset: no such limit.
    pub webhook_rate_limit: Option<forge_attrs::RateLimit>,
    /// `FORGE_HTTP_ALLOW`: host names and CIDRs `ctx.http()` may reach although they are not
    /// public internet addresses (comma-separated); empty: public addresses only.
    pub http_allow: crate::http::Allow,
}

const DEFAULT_ADDR: &str = "127.0.0.1:9081";

impl Config {
    /// Reads the environment and the project's forge.toml.
    pub fn from_env() -> Result<Config> {
        let cwd = std::env::current_dir()
            .map_err(|e| Error::Internal(format!("cannot read the working directory: {e}")))?;
        let project_root = find_project_root(&cwd).unwrap_or(cwd);
        Config::from_lookup(&project_root, |key| {
            std::env::var(key).ok().filter(|v| !v.is_empty())
        })
    }

    /// [`Config::from_env`] with the variables from `lookup`.
    pub fn from_lookup(
        project_root: &Path,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Config> {
        let addr_text = match lookup("FORGE_ADDR") {
            Some(addr) => addr,
            None => server_addr(project_root)?.unwrap_or_else(|| DEFAULT_ADDR.to_owned()),
        };
        let addr = addr_text.parse().map_err(|_| {
            config_error(
                "FORGE_ADDR",
                &addr_text,
                "a socket address such as 127.0.0.1:9081",
            )
        })?;
        let number = |key: &str, default: u64| -> Result<u64> {
            match lookup(key) {
                None => Ok(default),
                Some(text) => text
                    .parse()
                    .map_err(|_| config_error(key, &text, "a whole number")),
            }
        };
        let duration = |key: &str, default: Duration| -> Result<Duration> {
            match lookup(key) {
                None => Ok(default),
                Some(text) => forge_attrs::parse_duration_ms(&text)
                    .map(Duration::from_millis)
                    .map_err(|_| config_error(key, &text, "a duration such as 500ms, 30s or 5m")),
            }
        };
        let rate_limit = |key: &str| -> Result<Option<forge_attrs::RateLimit>> {
            lookup(key)
                .map(|text| {
                    forge_attrs::RateLimit::parse(&text).map_err(|_| {
                        config_error(key, &text, "a rate such as 300/m (units s, m, h)")
                    })
                })
                .transpose()
        };
        let migrate = match lookup("FORGE_MIGRATE").as_deref() {
            None | Some("true") | Some("1") => true,
            Some("false") | Some("0") => false,
            Some(other) => return Err(config_error("FORGE_MIGRATE", other, "`true` or `false`")),
        };
        let retention = duration("FORGE_RETENTION", Duration::from_secs(7 * 24 * 3600))?;
        Ok(Config {
            addr,
            project_root: project_root.to_path_buf(),
            database_url: lookup("DATABASE_URL"),
            replica_urls: lookup("DATABASE_REPLICA_URLS")
                .map(|urls| {
                    urls.split(',')
                        .map(str::trim)
                        .filter(|u| !u.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            jwt_secret: lookup("FORGE_JWT_SECRET"),
            jwks_url: lookup("FORGE_JWKS_URL"),
            jwt_issuer: lookup("FORGE_JWT_ISSUER"),
            jwt_audience: lookup("FORGE_JWT_AUDIENCE"),
            jwt_leeway: duration("FORGE_JWT_LEEWAY", Duration::from_secs(5))?,
            access_token_ttl: duration("FORGE_ACCESS_TOKEN_TTL", Duration::from_secs(15 * 60))?,
            refresh_token_ttl: duration(
                "FORGE_REFRESH_TOKEN_TTL",
                Duration::from_secs(30 * 24 * 3600),
            )?,
            migrate,
            migrations_dir: lookup("FORGE_MIGRATIONS_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| project_root.join("migrations")),
            app_version: lookup("FORGE_APP_VERSION").unwrap_or_else(|| "unversioned".to_owned()),
            max_connections: number("FORGE_MAX_CONNECTIONS", 10)?.clamp(2, 10_000) as u32,
            body_limit: number("FORGE_BODY_LIMIT", 2 * 1024 * 1024)? as usize,
            job_concurrency: number("FORGE_JOB_CONCURRENCY", 8)? as usize,
            shutdown_grace: duration("FORGE_SHUTDOWN_GRACE", Duration::from_secs(30))?,
            job_lease: duration("FORGE_JOB_LEASE", Duration::from_secs(30))?,
            poll_interval: duration("FORGE_POLL_INTERVAL", Duration::from_secs(1))?,
            leader_lease: duration("FORGE_LEADER_LEASE", Duration::from_secs(15))?,
            heartbeat: duration("FORGE_HEARTBEAT", Duration::from_secs(5))?,
            live_max_sessions_per_user: number("FORGE_LIVE_MAX_SESSIONS_PER_USER", 16)? as usize,
            live_max_subscriptions_per_user: number("FORGE_LIVE_MAX_SUBSCRIPTIONS_PER_USER", 256)?
                as usize,
            live_max_sessions_per_ip: number("FORGE_LIVE_MAX_SESSIONS_PER_IP", 64)? as usize,
            live_max_sessions: number("FORGE_LIVE_MAX_SESSIONS", 4096)? as usize,
            live_max_queued_bytes: number("FORGE_LIVE_MAX_QUEUED_BYTES", 4 * 1024 * 1024)? as usize,
            http_max_connections: number("FORGE_HTTP_MAX_CONNECTIONS", 8192)? as usize,
            http_header_timeout: duration("FORGE_HTTP_HEADER_TIMEOUT", Duration::from_secs(10))?,
            http_body_timeout: duration("FORGE_HTTP_BODY_TIMEOUT", Duration::from_secs(30))?,
            ready_interval: duration("FORGE_READY_INTERVAL", Duration::from_secs(2))?,
            mcp_max_batch: number("FORGE_MCP_MAX_BATCH", 32)? as usize,
            rate_limit: rate_limit("FORGE_RATE_LIMIT")?,
            webhook_rate_limit: rate_limit("FORGE_WEBHOOK_RATE_LIMIT")?,
            http_allow: match lookup("FORGE_HTTP_ALLOW") {
                None => Default::default(),
                Some(text) => crate::http::Allow::parse(&text).map_err(|entry| {
                    config_error(
                        "FORGE_HTTP_ALLOW",
                        &entry,
                        "a host name such as billing.internal, an IP address or a CIDR such as 10.0.0.0/8",
                    )
                })?,
            },
            query_cache_entries: number("FORGE_QUERY_CACHE_ENTRIES", 10_000)? as usize,
            query_cache_bytes: number("FORGE_QUERY_CACHE_BYTES", 64 * 1024 * 1024)? as usize,
            retention,
            retention_jobs: duration("FORGE_RETENTION_JOBS", retention)?,
            retention_workflows: duration("FORGE_RETENTION_WORKFLOWS", retention)?,
            #[cfg(feature = "gateway")]
            trusted_proxies: match lookup("FORGE_TRUSTED_PROXIES") {
                None => Vec::new(),
                Some(text) => {
                    crate::gateway::client::parse_trusted_proxies(&text).map_err(|entry| {
                        config_error(
                            "FORGE_TRUSTED_PROXIES",
                            &entry,
                            "a CIDR such as 10.0.0.0/8 or an IP address",
                        )
                    })?
                }
            },
            #[cfg(feature = "gateway")]
            cors_origins: match lookup("FORGE_CORS_ORIGINS") {
                None => Vec::new(),
                Some(text) => crate::gateway::browser::parse_origins(&text).map_err(|entry| {
                    config_error(
                        "FORGE_CORS_ORIGINS",
                        &entry,
                        "an origin such as https://app.example.com (scheme, host and port only)",
                    )
                })?,
            },
        })
    }
}

fn config_error(key: &str, value: &str, expected: &str) -> Error {
    Error::Internal(format!("{key}={value:?} is not {expected}"))
}

fn find_project_root(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|dir| dir.join("forge.toml").is_file())
        .map(Path::to_path_buf)
}

/// `[server] addr` from forge.toml.
fn server_addr(project_root: &Path) -> Result<Option<String>> {
    let path = project_root.join("forge.toml");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let table: toml::Table = text
        .parse()
        .map_err(|e| Error::Internal(format!("{}: {e}", path.display())))?;
    Ok(table
        .get("server")
        .and_then(|server| server.get("addr"))
        .and_then(|addr| addr.as_str())
        .map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)], toml: Option<&str>) -> Result<Config> {
        let dir = std::env::temp_dir().join(format!("forge-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        if let Some(toml) = toml {
            std::fs::write(dir.join("forge.toml"), toml).unwrap();
        }
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let result = Config::from_lookup(&dir, |key| vars.get(key).cloned());
        std::fs::remove_dir_all(&dir).unwrap();
        result
    }

    #[test]
    fn the_environment_beats_forge_toml_which_beats_the_default() {
        let toml = Some("[server]\naddr = \"0.0.0.0:8000\"\n");
        assert_eq!(config(&[], None).unwrap().addr.to_string(), DEFAULT_ADDR);
        assert_eq!(config(&[], toml).unwrap().addr.to_string(), "0.0.0.0:8000");
        let env = [("FORGE_ADDR", "127.0.0.1:7000")];
        assert_eq!(
            config(&env, toml).unwrap().addr.to_string(),
            "127.0.0.1:7000"
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        let error = config(&[("FORGE_JOB_LEASE", "soon")], None).unwrap_err();
        assert!(
            error.to_string().contains("FORGE_JOB_LEASE=\"soon\""),
            "{error}"
        );
        let error = config(&[("FORGE_MIGRATE", "maybe")], None).unwrap_err();
        assert!(error.to_string().contains("FORGE_MIGRATE"), "{error}");
        let error = config(&[("FORGE_RATE_LIMIT", "300/min")], None).unwrap_err();
        assert!(
            error.to_string().contains("FORGE_RATE_LIMIT=\"300/min\""),
            "{error}"
        );
        let error = config(&[("FORGE_CORS_ORIGINS", "https://a.test/app")], None).unwrap_err();
        assert!(error.to_string().contains("FORGE_CORS_ORIGINS"), "{error}");
    }

    #[test]
    fn reads_replicas_and_switches() {
        let c = config(
            &[
                ("DATABASE_REPLICA_URLS", "postgres://a/x, postgres://b/x,"),
                ("FORGE_MIGRATE", "false"),
            ],
            None,
        )
        .unwrap();
        assert_eq!(c.replica_urls, ["postgres://a/x", "postgres://b/x"]);
        assert!(!c.migrate);
    }
}
