//! What the generated glue (`src/forge_generated.rs`) fills: every handler with its
//! options, behind one type-erased calling convention per kind.
//!
//! The glue's side of this contract is documented in forge-codegen's `emit/rust.rs`; the
//! two must change together.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::FutureExt as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::context::{
    CronContext, DaemonContext, JobContext, McpToolContext, MutationContext, QueryContext,
    WebhookContext, WorkflowContext,
};
use crate::{Error, Result};

/// `rate_limit = "20/m"` on a query, mutation or MCP tool: at most `count` calls per
/// `per_ms` milliseconds for each caller (the user, else the client IP).
pub use forge_attrs::RateLimit;

#[derive(Debug, Clone, Copy)]
pub struct QueryDef {
    pub name: &'static str,
    pub module: &'static str,
    pub public: bool,
    pub unscoped: bool,
    pub cache_ms: Option<u64>,
    pub timeout_ms: Option<u64>,
    pub tables_read: &'static [&'static str],
    pub rate_limit: Option<RateLimit>,
}

#[derive(Debug, Clone, Copy)]
pub struct MutationDef {
    pub name: &'static str,
    pub module: &'static str,
    pub transactional: bool,
    pub public: bool,
    pub timeout_ms: Option<u64>,
    pub tables_written: &'static [&'static str],
    pub rate_limit: Option<RateLimit>,
}

#[derive(Debug, Clone, Copy)]
pub struct McpToolDef {
    pub name: &'static str,
    pub module: &'static str,
    pub title: Option<&'static str>,
    pub description: Option<&'static str>,
    pub read_only: bool,
    /// The JSON text of the JSON Schema (draft 2020-12) of the tool's `args` object,
    /// self-contained: what `tools/list` sends as `inputSchema`.
    pub input_schema: &'static str,
    pub rate_limit: Option<RateLimit>,
}

#[derive(Debug, Clone, Copy)]
pub struct JobDef {
    pub name: &'static str,
    pub module: &'static str,
    pub retry: Retry,
    pub timeout_ms: Option<u64>,
    pub queue: &'static str,
    pub priority: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub max_attempts: u32,
    pub backoff: Backoff,
    pub base_ms: u64,
    pub max_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backoff {
    Exponential,
    Linear,
    Fixed,
}

impl Retry {
    /// How long to wait before attempt `attempt + 1`, after attempt `attempt` (1-based) failed.
    pub fn delay_ms(&self, attempt: u32) -> u64 {
        let steps = u64::from(attempt.max(1) - 1);
        let delay = match self.backoff {
            Backoff::Fixed => self.base_ms,
            Backoff::Linear => self.base_ms.saturating_mul(steps + 1),
            Backoff::Exponential => self
                .base_ms
                .saturating_mul(2u64.saturating_pow(steps.min(63) as u32)),
        };
        delay.min(self.max_ms.max(self.base_ms))
    }
}

#[derive(Debug, Clone, Copy)]
pub struct CronDef {
    pub name: &'static str,
    pub module: &'static str,
    pub schedule: Schedule,
    pub timezone: Option<&'static str>,
    pub catch_up: u32,
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    Cron(&'static str),
    EveryMs(u64),
    DailyAt(&'static str),
}

#[derive(Debug, Clone, Copy)]
pub struct WorkflowDef {
    pub name: &'static str,
    pub module: &'static str,
    pub version: &'static str,
    pub active: bool,
    pub timeout_ms: Option<u64>,
    pub signature: &'static str,
    pub steps: &'static [&'static str],
    pub waits: &'static [&'static str],
}

#[derive(Debug, Clone, Copy)]
pub struct DaemonDef {
    pub name: &'static str,
    pub module: &'static str,
    pub mode: DaemonMode,
    pub restart_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaemonMode {
    LeaderElected,
    Replicated,
}

#[derive(Debug, Clone, Copy)]
pub struct WebhookDef {
    pub name: &'static str,
    pub module: &'static str,
    pub path: &'static str,
    pub signature: Option<WebhookSignature>,
    pub idempotency_header: Option<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookSignature {
    HmacSha256 {
        header: &'static str,
        secret_env: &'static str,
    },
    /// `Stripe-Signature: t=…,v1=…` over `"<t>.<body>"`, `t` within `tolerance_ms` of now.
    Stripe {
        secret_env: &'static str,
        tolerance_ms: u64,
    },
    /// `X-Hub-Signature-256: sha256=…` over the body.
    Github { secret_env: &'static str },
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,…` over
    /// `"<id>.<timestamp>.<body>"` with a `whsec_` secret, within `tolerance_ms` of now.
    StandardWebhooks {
        secret_env: &'static str,
        tolerance_ms: u64,
    },
}

/// What handlers without arguments decode: `{}` is the only valid `args`.
#[derive(Debug, Deserialize)]
#[serde(crate = "crate::serde", deny_unknown_fields)]
pub struct NoArgs {}

/// Decodes an RPC or MCP call's `args` object into the glue's argument struct; a wrong or
/// missing argument is a `VALIDATION_ERROR` naming it.
pub fn decode_args<T: DeserializeOwned>(args: Value) -> Result<T> {
    decode(args, "args")
}

/// Decodes a job's, workflow's or webhook's single input.
pub fn decode_input<T: DeserializeOwned>(input: Value) -> Result<T> {
    decode(input, "input")
}

tokio::task_local! {
    /// Set by the MCP gateway around a tool call: raised when the call's `args` do not
    /// decode, which makes the failure a JSON-RPC `invalid params` error rather than a
    /// tool error (the glue decodes inside the handler's future).
    pub(crate) static ARGS_REJECTED: Arc<std::sync::atomic::AtomicBool>;
}

fn decode<T: DeserializeOwned>(value: Value, root: &str) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        if root == "args" {
            let _ = ARGS_REJECTED
                .try_with(|rejected| rejected.store(true, std::sync::atomic::Ordering::Relaxed));
        }
        let path = error.path().to_string();
        let field = if path == "." { root.to_owned() } else { path };
        Error::InvalidField {
            field,
            message: error.into_inner().to_string(),
        }
    })
}

type Call<C> = Arc<dyn Fn(C, Value) -> BoxFuture<'static, Result<Value>> + Send + Sync>;
type Run<C> = Arc<dyn Fn(C) -> BoxFuture<'static, Result<()>> + Send + Sync>;

pub(crate) struct Handler<D, C> {
    pub def: D,
    pub call: C,
}

/// Every handler of an application, filled by the generated `register` function.
#[derive(Default)]
pub struct Registry {
    pub(crate) queries: BTreeMap<&'static str, Handler<QueryDef, Call<QueryContext>>>,
    pub(crate) mutations: BTreeMap<&'static str, Handler<MutationDef, Call<MutationContext>>>,
    pub(crate) mcp_tools: BTreeMap<&'static str, Handler<McpToolDef, Call<McpToolContext>>>,
    pub(crate) jobs: BTreeMap<&'static str, Handler<JobDef, Call<JobContext>>>,
    pub(crate) workflows: Vec<Handler<WorkflowDef, Call<WorkflowContext>>>,
    pub(crate) webhooks: BTreeMap<&'static str, Handler<WebhookDef, Call<WebhookContext>>>,
    pub(crate) crons: BTreeMap<&'static str, Handler<CronDef, Run<CronContext>>>,
    pub(crate) daemons: BTreeMap<&'static str, Handler<DaemonDef, Run<DaemonContext>>>,
    /// Names registered twice; `App` refuses to start with any (FG502 reports them first).
    pub(crate) duplicates: Vec<String>,
}

fn call<C, F, Fut, T>(handler: F) -> Call<C>
where
    F: Fn(C, Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T>> + Send + 'static,
    T: Serialize + 'static,
{
    Arc::new(move |ctx, value| {
        let future = handler(ctx, value);
        async move { Ok(serde_json::to_value(future.await?)?) }.boxed()
    })
}

fn run<C, F, Fut, T>(handler: F) -> Run<C>
where
    F: Fn(C) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T>> + Send + 'static,
    T: Serialize + 'static,
{
    Arc::new(move |ctx| {
        let future = handler(ctx);
        async move { future.await.map(drop) }.boxed()
    })
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    fn insert<D, C>(
        map: &mut BTreeMap<&'static str, Handler<D, C>>,
        duplicates: &mut Vec<String>,
        kind: &str,
        name: &'static str,
        handler: Handler<D, C>,
    ) {
        if map.insert(name, handler).is_some() {
            duplicates.push(format!("{kind} `{name}`"));
        }
    }

    /// Queries and mutations share the RPC namespace (`/_api/rpc/{name}`).
    fn check_rpc_name(&mut self, name: &'static str) {
        if self.queries.contains_key(name) || self.mutations.contains_key(name) {
            self.duplicates.push(format!("RPC function `{name}`"));
        }
    }

    pub fn query<F, Fut, T>(&mut self, def: QueryDef, handler: F)
    where
        F: Fn(QueryContext, Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T>> + Send + 'static,
        T: Serialize + 'static,
    {
        self.check_rpc_name(def.name);
        let handler = Handler {
            def,
            call: call(handler),
        };
        Self::insert(
            &mut self.queries,
            &mut self.duplicates,
            "query",
            def.name,
            handler,
        );
    }

    pub fn mutation<F, Fut, T>(&mut self, def: MutationDef, handler: F)
    where
        F: Fn(MutationContext, Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T>> + Send + 'static,
        T: Serialize + 'static,
    {
        self.check_rpc_name(def.name);
        let handler = Handler {
            def,
            call: call(handler),
        };
        Self::insert(
            &mut self.mutations,
            &mut self.duplicates,
            "mutation",
            def.name,
            handler,
        );
    }

    pub fn mcp_tool<F, Fut, T>(&mut self, def: McpToolDef, handler: F)
    where
        F: Fn(McpToolContext, Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T>> + Send + 'static,
        T: Serialize + 'static,
    {
        let handler = Handler {
            def,
            call: call(handler),
        };
        Self::insert(
            &mut self.mcp_tools,
            &mut self.duplicates,
            "MCP tool",
            def.name,
            handler,
        );
    }

    pub fn job<F, Fut, T>(&mut self, def: JobDef, handler: F)
    where
        F: Fn(JobContext, Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T>> + Send + 'static,
        T: Serialize + 'static,
    {
        let handler = Handler {
            def,
            call: call(handler),
        };
        Self::insert(
            &mut self.jobs,
            &mut self.duplicates,
            "job",
            def.name,
            handler,
        );
    }

    /// Several versions of one workflow may be registered; (name, version) is the key.
    pub fn workflow<F, Fut, T>(&mut self, def: WorkflowDef, handler: F)
    where
        F: Fn(WorkflowContext, Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T>> + Send + 'static,
        T: Serialize + 'static,
    {
        let taken = self
            .workflows
            .iter()
            .any(|w| (w.def.name, w.def.version) == (def.name, def.version));
        if taken {
            self.duplicates
                .push(format!("workflow `{}` version `{}`", def.name, def.version));
        }
        self.workflows.push(Handler {
            def,
            call: call(handler),
        });
    }

    pub fn webhook<F, Fut, T>(&mut self, def: WebhookDef, handler: F)
    where
        F: Fn(WebhookContext, Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T>> + Send + 'static,
        T: Serialize + 'static,
    {
        let handler = Handler {
            def,
            call: call(handler),
        };
        Self::insert(
            &mut self.webhooks,
            &mut self.duplicates,
            "webhook",
            def.name,
            handler,
        );
    }

    pub fn cron<F, Fut, T>(&mut self, def: CronDef, handler: F)
    where
        F: Fn(CronContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T>> + Send + 'static,
        T: Serialize + 'static,
    {
        let handler = Handler {
            def,
            call: run(handler),
        };
        Self::insert(
            &mut self.crons,
            &mut self.duplicates,
            "cron",
            def.name,
            handler,
        );
    }

    pub fn daemon<F, Fut, T>(&mut self, def: DaemonDef, handler: F)
    where
        F: Fn(DaemonContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T>> + Send + 'static,
        T: Serialize + 'static,
    {
        let handler = Handler {
            def,
            call: run(handler),
        };
        Self::insert(
            &mut self.daemons,
            &mut self.duplicates,
            "daemon",
            def.name,
            handler,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[serde(crate = "crate::serde")]
    #[allow(dead_code)]
    struct Args {
        limit: i32,
        cursor: Option<String>,
    }

    #[test]
    fn a_wrong_argument_is_named() {
        let error = decode_args::<Args>(json!({"limit": "ten"})).unwrap_err();
        assert_eq!(error.to_wire()["details"]["field"], "limit");
        let error = decode_args::<Args>(json!({})).unwrap_err();
        assert_eq!(error.code(), "VALIDATION_ERROR");
        assert!(error.to_string().contains("limit"), "{error}");
        let error = decode_args::<Args>(json!([])).unwrap_err();
        assert_eq!(error.to_wire()["details"]["field"], "args");
    }

    #[test]
    fn no_args_accepts_only_an_empty_object() {
        assert!(decode_args::<NoArgs>(json!({})).is_ok());
        assert!(decode_args::<NoArgs>(json!({"x": 1})).is_err());
    }

    #[test]
    fn backoff_grows_as_configured_and_is_capped() {
        let retry = |backoff| Retry {
            max_attempts: 10,
            backoff,
            base_ms: 1000,
            max_ms: 5000,
        };
        let delays = |r: Retry| (1..=5).map(|a| r.delay_ms(a)).collect::<Vec<_>>();
        assert_eq!(delays(retry(Backoff::Fixed)), [1000; 5]);
        assert_eq!(
            delays(retry(Backoff::Linear)),
            [1000, 2000, 3000, 4000, 5000]
        );
        assert_eq!(
            delays(retry(Backoff::Exponential)),
            [1000, 2000, 4000, 5000, 5000]
        );
        assert_eq!(retry(Backoff::Exponential).delay_ms(u32::MAX), 5000);
    }
}
