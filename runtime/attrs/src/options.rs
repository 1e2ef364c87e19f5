//! The typed value of each attribute. Durations are milliseconds.

use serde::{Deserialize, Serialize};

use crate::Kind;

/// The options of one `#[forge::…]` attribute, by kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Options {
    Query(QueryOptions),
    Mutation(MutationOptions),
    Job(JobOptions),
    Cron(CronOptions),
    Workflow(WorkflowOptions),
    Daemon(DaemonOptions),
    Webhook(WebhookOptions),
    McpTool(McpToolOptions),
    Model(ModelOptions),
}

impl Options {
    pub fn kind(&self) -> Kind {
        match self {
            Options::Query(_) => Kind::Query,
            Options::Mutation(_) => Kind::Mutation,
            Options::Job(_) => Kind::Job,
            Options::Cron(_) => Kind::Cron,
            Options::Workflow(_) => Kind::Workflow,
            Options::Daemon(_) => Kind::Daemon,
            Options::Webhook(_) => Kind::Webhook,
            Options::McpTool(_) => Kind::McpTool,
            Options::Model(_) => Kind::Model,
        }
    }

    /// The per-caller rate limit queries, mutations and MCP tools may set.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        match self {
            Options::Query(o) => o.rate_limit,
            Options::Mutation(o) => o.rate_limit,
            Options::McpTool(o) => o.rate_limit,
            _ => None,
        }
    }

    /// The per-call timeout every handler kind except models and daemons may set.
    pub fn timeout_ms(&self) -> Option<u64> {
        match self {
            Options::Query(o) => o.timeout_ms,
            Options::Mutation(o) => o.timeout_ms,
            Options::Job(o) => o.timeout_ms,
            Options::Cron(o) => o.timeout_ms,
            Options::Workflow(o) => o.timeout_ms,
            Options::Daemon(_) | Options::Webhook(_) | Options::McpTool(_) | Options::Model(_) => {
                None
            }
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryOptions {
    pub public: bool,
    /// Opted out of the scope rule (`unscoped` or `scope = "global"`).
    pub unscoped: bool,
    pub cache_ms: Option<u64>,
    /// Tables read, declared where the SQL is not a literal.
    pub tables: Vec<String>,
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
}

/// `rate_limit = "20/m"`: at most `count` calls per `per_ms` milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    pub count: u32,
    pub per_ms: u64,
}

impl RateLimit {
    /// Parses `<count>/<unit>` with unit `s`, `m` or `h` (`"20/m"`, `"300/h"`). The error is
    /// a sentence that can be shown to the user as is.
    pub fn parse(text: &str) -> Result<RateLimit, String> {
        let usage = "expected a number of calls per second, minute or hour such as \"20/m\" (units s, m, h)";
        let Some((count, unit)) = text.trim().split_once('/') else {
            return Err(format!("invalid rate limit `{text}`: {usage}"));
        };
        let per_ms = match unit.trim() {
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            other => {
                return Err(format!(
                    "invalid rate limit `{text}`: unknown unit `{other}`; {usage}"
                ))
            }
        };
        let count = count.trim();
        if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("invalid rate limit `{text}`: {usage}"));
        }
        match count.parse::<u32>() {
            Ok(0) => Err(format!(
                "invalid rate limit `{text}`: the number of calls must be at least 1"
            )),
            Ok(count) if count <= 1_000_000 => Ok(RateLimit { count, per_ms }),
            _ => Err(format!(
                "invalid rate limit `{text}`: at most 1000000 calls per period"
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MutationOptions {
    pub transactional: bool,
    pub public: bool,
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
}

impl Default for MutationOptions {
    fn default() -> Self {
        MutationOptions {
            transactional: true,
            public: false,
            timeout_ms: None,
            rate_limit: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobOptions {
    pub retry: RetryOptions,
    pub timeout_ms: Option<u64>,
    pub queue: String,
    pub priority: i32,
}

impl Default for JobOptions {
    fn default() -> Self {
        JobOptions {
            retry: RetryOptions::default(),
            timeout_ms: None,
            queue: "default".to_owned(),
            priority: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryOptions {
    pub max_attempts: u32,
    pub backoff: Backoff,
    pub base_ms: u64,
    pub max_ms: u64,
}

impl Default for RetryOptions {
    fn default() -> Self {
        RetryOptions {
            max_attempts: 3,
            backoff: Backoff::Exponential,
            base_ms: 1_000,
            max_ms: 300_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backoff {
    Exponential,
    Linear,
    Fixed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CronOptions {
    pub schedule: Schedule,
    /// IANA time zone name; UTC when absent.
    pub timezone: Option<String>,
    /// How many missed ticks to run after downtime (0: none).
    pub catch_up: u32,
    pub timeout_ms: Option<u64>,
}

/// When a cron fires. The grammar checks the shape; `forge check` (FG301) checks the content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// A 5-field (or 6-field, with seconds) cron expression.
    Cron(String),
    /// A fixed interval in milliseconds.
    EveryMs(u64),
    /// `HH:MM` in the cron's time zone.
    DailyAt(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowOptions {
    /// The workflow's name; the function's name when absent.
    pub name: Option<String>,
    pub version: String,
    pub active: bool,
    pub timeout_ms: Option<u64>,
}

/// The version a workflow has when its attribute names none.
pub const DEFAULT_WORKFLOW_VERSION: &str = "1";

impl Default for WorkflowOptions {
    fn default() -> Self {
        WorkflowOptions {
            name: None,
            version: DEFAULT_WORKFLOW_VERSION.to_owned(),
            active: false,
            timeout_ms: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonOptions {
    pub mode: DaemonMode,
    pub restart_ms: u64,
}

impl Default for DaemonOptions {
    fn default() -> Self {
        DaemonOptions {
            mode: DaemonMode::LeaderElected,
            restart_ms: 5_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DaemonMode {
    LeaderElected,
    Replicated,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookOptions {
    pub path: String,
    pub signature: Option<WebhookSignature>,
    pub idempotency: Option<Idempotency>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scheme", rename_all = "snake_case")]
pub enum WebhookSignature {
    /// The header carries the hex HMAC-SHA256 of the raw body under the secret held in the
    /// environment variable `secret_env`.
    HmacSha256 { header: String, secret_env: String },
    /// Stripe's scheme: `Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
    /// "<t>.<body>">`, refused when `t` is further than `tolerance_ms` from now.
    Stripe {
        secret_env: String,
        tolerance_ms: u64,
    },
    /// GitHub's scheme: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>` (GitHub
    /// signs no timestamp: key idempotency on `X-GitHub-Delivery` against replays).
    Github { secret_env: String },
    /// Standard Webhooks (as Svix sends): `webhook-id`, `webhook-timestamp` and
    /// `webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, with the
    /// secret `whsec_<base64 key>`; refused outside `tolerance_ms`.
    StandardWebhooks {
        secret_env: String,
        tolerance_ms: u64,
    },
}

/// How far a signed timestamp may be from now unless `tolerance` says otherwise (5 min,
/// what Stripe and Standard Webhooks recommend).
pub const DEFAULT_WEBHOOK_TOLERANCE_MS: u64 = 300_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum Idempotency {
    /// The key is the value of this request header.
    Header { name: String },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct McpToolOptions {
    /// The tool's name; the function's name when absent.
    pub name: Option<String>,
    pub title: Option<String>,
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelOptions {
    pub table: Option<String>,
}
