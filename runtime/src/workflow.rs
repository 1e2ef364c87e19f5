//! Durable workflows, the parts every build has: the handler's API on [`WorkflowContext`]
//! (steps, sleeps, event waits), starting runs and sending events in the caller's
//! transaction, and recording the registered versions at start. Claiming and executing
//! runs is the `workflows` feature's ([`crate::workflows`]), on the job worker.
//!
//! A run executes by replay: each time a node claims it, the handler runs again from the
//! top, and every step, sleep and wait it reaches first looks for its row in
//! `forge_workflow_steps`. A completed step returns its stored result without running (and
//! registers its compensation again, so compensating after a restart undoes it too); a
//! sleep whose wake time has not come, or a wait whose event has not arrived, halts the
//! handler: the executor drops its future and records the run as `sleeping` / `waiting`
//! until a node claims it again.

// Without the `workflows` feature nothing builds a run's state: the API compiles so that
// handlers do, and this node only starts runs and sends events.
#![cfg_attr(not(feature = "workflows"), allow(dead_code))]

use std::collections::HashMap;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use futures_util::FutureExt as _;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::watch;
use uuid::Uuid;

use crate::context::WorkflowContext;
use crate::dispatch::{Dispatcher, Outbox};
use crate::registry::{Registry, WorkflowDef};
use crate::{Error, Result};

/// The payload of `NOTIFY forge_jobs_available` that wakes workers for workflow runs (job
/// queues are the other payloads): a run was started, an event sent, a run retried.
pub(crate) const WAKE: &str = "forge:workflows";

/// The run a [`WorkflowContext`] belongs to, shared by the handler and its executor.
pub(crate) struct RunState {
    pub id: Uuid,
    /// The fence of every write: the run is still claimed by this node, this claim.
    pub node: Uuid,
    pub claims: i32,
    /// Only replay what is stored (to register compensations): the first step, sleep or
    /// wait that would do something new halts instead.
    pub replay_only: bool,
    /// Sleeps this short are slept in place rather than suspending the run: a suspended
    /// run is claimed again only at a poll tick.
    pub short_sleep: Duration,
    pub progress: watch::Sender<Progress>,
    pub compensations: Mutex<Vec<Compensation>>,
    /// Set when a fenced write found the run claimed elsewhere: nothing this execution
    /// does counts any more.
    pub lost: AtomicBool,
    sleeps: AtomicU32,
    waits: Mutex<HashMap<String, u32>>,
    /// How many dispatches of each (kind, name) the handler made, for their step keys.
    dispatches: Mutex<HashMap<String, u32>>,
}

/// What the executor watches: steps running now, and whether the handler asked to halt.
/// It drops the handler's future once a halt is asked and no step is mid-way, so parallel
/// steps that are running finish and are stored first.
#[derive(Default)]
pub(crate) struct Progress {
    pub in_flight: usize,
    pub halt: Option<Halt>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Halt {
    Sleep(DateTime<Utc>),
    Wait {
        key: String,
        deadline: Option<DateTime<Utc>>,
    },
    /// Replay-only mode reached something not stored.
    Replayed,
}

impl Halt {
    /// Two branches of a parallel group halted: sleeping wins over waiting (the earliest
    /// wake time), since a run woken early just halts again at the same wait.
    fn merge(self, other: Halt) -> Halt {
        match (self, other) {
            (Halt::Replayed, _) | (_, Halt::Replayed) => Halt::Replayed,
            (Halt::Sleep(a), Halt::Sleep(b)) => Halt::Sleep(a.min(b)),
            (Halt::Sleep(a), Halt::Wait { .. }) | (Halt::Wait { .. }, Halt::Sleep(a)) => {
                Halt::Sleep(a)
            }
            (wait @ Halt::Wait { .. }, Halt::Wait { .. }) => wait,
        }
    }
}

/// A completed step's compensation, with its place in the completion order.
pub(crate) struct Compensation {
    pub key: String,
    pub sequence: i64,
    pub run: Box<dyn FnOnce() -> BoxFuture<'static, Result<()>> + Send>,
}

type Compensate = Box<dyn FnOnce(Value) -> BoxFuture<'static, Result<()>> + Send>;

impl RunState {
    pub fn new(
        id: Uuid,
        node: Uuid,
        claims: i32,
        replay_only: bool,
        short_sleep: Duration,
    ) -> (Arc<RunState>, watch::Receiver<Progress>) {
        let (progress, receiver) = watch::channel(Progress::default());
        let state = RunState {
            id,
            node,
            claims,
            replay_only,
            short_sleep,
            progress,
            compensations: Mutex::new(Vec::new()),
            lost: AtomicBool::new(false),
            sleeps: AtomicU32::new(0),
            waits: Mutex::new(HashMap::new()),
            dispatches: Mutex::new(HashMap::new()),
        };
        (Arc::new(state), receiver)
    }

    /// Asks the executor to stop the handler here; never returns.
    async fn halt(&self, halt: Halt) -> ! {
        self.progress.send_modify(|p| {
            p.halt = Some(match p.halt.take() {
                Some(earlier) => earlier.merge(halt),
                None => halt,
            })
        });
        loop {
            std::future::pending::<()>().await;
        }
    }

    fn lost(&self) -> Error {
        self.lost.store(true, Ordering::Relaxed);
        Error::Internal(format!(
            "workflow run {} is no longer claimed by this node (its lease expired, or it was aborted)",
            self.id
        ))
    }

    async fn load(&self, pool: &sqlx::PgPool, key: &str) -> Result<Option<StepRow>> {
        Ok(sqlx::query_as(
            "SELECT status, result, error, sequence FROM forge_workflow_steps \
             WHERE run_id = $1 AND key = $2",
        )
        .bind(self.id)
        .bind(key)
        .fetch_optional(pool)
        .await?)
    }

    /// Runs one fenced statement (`$1` run, `$2` node, `$3` claims; `mine` is the run's row
    /// locked against a concurrent claim) and returns its rows; none means the run is lost.
    async fn fenced<'q>(
        &self,
        pool: &sqlx::PgPool,
        sql: &'q str,
        binds: impl FnOnce(
            sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
        )
            -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> Result<()> {
        let query = sqlx::query(sql)
            .bind(self.id)
            .bind(self.node)
            .bind(self.claims);
        let done = binds(query).execute(pool).await?;
        if done.rows_affected() == 0 {
            return Err(self.lost());
        }
        Ok(())
    }

    /// The next occurrence of `what` (1-based) in this execution of the handler.
    fn next(counts: &Mutex<HashMap<String, u32>>, what: &str) -> Result<u32> {
        let mut counts = counts
            .lock()
            .map_err(|_| Error::Internal("the workflow's state was poisoned".into()))?;
        let n = counts.entry(what.to_owned()).or_insert(0);
        *n += 1;
        Ok(*n)
    }

    fn register(&self, key: &str, sequence: Option<i64>, result: Value, g: Option<Compensate>) {
        if let (Some(g), Some(sequence)) = (g, sequence) {
            let compensation = Compensation {
                key: key.to_owned(),
                sequence,
                run: Box::new(move || g(result)),
            };
            if let Ok(mut all) = self.compensations.lock() {
                all.push(compensation);
            }
        }
    }
}

/// The run row locked against a concurrent claim: the fence of every write.
const MINE: &str = "mine AS (SELECT id FROM forge_workflow_runs \
                    WHERE id = $1 AND locked_by = $2 AND claims = $3 FOR SHARE)";

type StepRow = (String, Option<Value>, Option<String>, Option<i64>);

/// Counts a running step for [`Progress::in_flight`] until dropped.
struct InFlight<'a>(&'a watch::Sender<Progress>);

impl<'a> InFlight<'a> {
    fn new(progress: &'a watch::Sender<Progress>) -> InFlight<'a> {
        progress.send_modify(|p| p.in_flight += 1);
        InFlight(progress)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|p| p.in_flight -= 1);
    }
}

impl WorkflowContext {
    /// This run's id (`forge_workflow_runs.id`).
    pub fn run_id(&self) -> Uuid {
        self.run.id
    }

    /// A step named `key`, unique within the workflow: `ctx.step("charge").run(|| async
    /// { … }).compensate(|charge| async move { … }).await?`. A step that completed is never
    /// run again: on replay its stored result is returned.
    ///
    /// Steps are futures, so several run concurrently with `futures::try_join!` (or
    /// `tokio::try_join!`, `try_join_all`); each is stored and replayed on its own, and a
    /// sleep or wait in one branch lets the others' running steps finish before the run
    /// suspends.
    pub fn step<'a>(&'a self, key: &'a str) -> Step<'a> {
        Step { ctx: self, key }
    }

    /// Sleeps for `duration`, durably: the wake time is stored, and a node that restarts
    /// meanwhile resumes the run when it comes (the run does not hold a worker while it
    /// sleeps).
    pub async fn sleep(&self, duration: Duration) -> Result<()> {
        let state = &self.run;
        let pool = &self.base.shared.primary;
        let n = state.sleeps.fetch_add(1, Ordering::Relaxed) + 1;
        let key = format!("~sleep/{n}");
        let wake_at = match state.load(pool, &key).await? {
            Some((_, Some(result), _, _)) => serde_json::from_value(result["wake_at"].clone())?,
            _ => {
                if state.replay_only {
                    state.halt(Halt::Replayed).await
                }
                let wake_at = Utc::now()
                    + chrono::Duration::from_std(duration)
                        .map_err(|_| Error::Validation(format!("cannot sleep {duration:?}")))?;
                let sql = format!(
                    "WITH {MINE} INSERT INTO forge_workflow_steps \
                         (run_id, key, status, result, completed_at) \
                     SELECT id, $4, 'completed', $5, now() FROM mine \
                     ON CONFLICT (run_id, key) DO NOTHING"
                );
                state
                    .fenced(pool, &sql, |q| {
                        q.bind(&key).bind(json!({ "wake_at": wake_at }))
                    })
                    .await?;
                wake_at
            }
        };
        let left = (wake_at - Utc::now()).to_std().unwrap_or_default();
        if left.is_zero() {
            return Ok(());
        }
        if state.replay_only {
            state.halt(Halt::Replayed).await
        }
        if left <= state.short_sleep {
            tokio::time::sleep(left).await;
            return Ok(());
        }
        state.halt(Halt::Sleep(wake_at)).await
    }

    /// Waits for the event `key` sent to this run (`ctx.send_event` in a mutation, or the
    /// admin API), and returns its payload. An event sent before the wait is kept for it.
    /// With a timeout, no event in time is `Error::Timeout`, which the workflow may handle.
    pub async fn wait_for_event<T: DeserializeOwned>(
        &self,
        key: &str,
        timeout: Option<Duration>,
    ) -> Result<T> {
        let state = &self.run;
        let pool = &self.base.shared.primary;
        let n = RunState::next(&state.waits, key)?;
        let step = format!("~event/{key}/{n}");
        let timed_out = || Error::Timeout(format!("no event `{key}` arrived within {timeout:?}"));
        let row = state.load(pool, &step).await?;
        let deadline: Option<DateTime<Utc>> = match &row {
            Some((status, Some(result), _, _)) if status == "completed" => {
                return Ok(serde_json::from_value(result.clone())?)
            }
            Some((status, _, _, _)) if status == "failed" => return Err(timed_out()),
            Some((_, Some(result), _, _)) => serde_json::from_value(result["deadline"].clone())?,
            _ => timeout
                .map(|t| chrono::Duration::from_std(t).map(|t| Utc::now() + t))
                .transpose()
                .map_err(|_| Error::Validation(format!("cannot wait {timeout:?}")))?,
        };
        if state.replay_only {
            state.halt(Halt::Replayed).await
        }
        // The oldest event not yet consumed, consumed and stored as the wait's result in one
        // statement: an event is delivered to exactly one wait.
        let consumed: Option<Value> = sqlx::query_scalar(&format!(
            "WITH {MINE}, \
                  event AS (SELECT e.id, e.payload FROM forge_workflow_events e JOIN mine ON e.run_id = mine.id \
                            WHERE e.key = $4 AND e.consumed_at IS NULL ORDER BY e.id LIMIT 1 FOR UPDATE OF e), \
                  used AS (UPDATE forge_workflow_events e SET consumed_at = now() FROM event \
                           WHERE e.id = event.id RETURNING event.payload) \
             INSERT INTO forge_workflow_steps (run_id, key, status, result, completed_at) \
             SELECT $1, $5, 'completed', payload, now() FROM used \
             ON CONFLICT (run_id, key) DO UPDATE SET status = 'completed', \
                 result = excluded.result, completed_at = now() \
             RETURNING result"
        ))
        .bind(state.id)
        .bind(state.node)
        .bind(state.claims)
        .bind(key)
        .bind(&step)
        .fetch_optional(pool)
        .await?;
        if let Some(payload) = consumed {
            return Ok(serde_json::from_value(payload)?);
        }
        if deadline.is_some_and(|d| d <= Utc::now()) {
            let sql = format!(
                "WITH {MINE} INSERT INTO forge_workflow_steps (run_id, key, status, error) \
                 SELECT id, $4, 'failed', $5 FROM mine \
                 ON CONFLICT (run_id, key) DO UPDATE SET status = 'failed', error = excluded.error"
            );
            state
                .fenced(pool, &sql, |q| q.bind(&step).bind("timed out"))
                .await?;
            return Err(timed_out());
        }
        if row.is_none() {
            let sql = format!(
                "WITH {MINE} INSERT INTO forge_workflow_steps (run_id, key, status, result) \
                 SELECT id, $4, 'running', $5 FROM mine ON CONFLICT (run_id, key) DO NOTHING"
            );
            state
                .fenced(pool, &sql, |q| {
                    q.bind(&step).bind(json!({ "deadline": deadline }))
                })
                .await?;
        }
        state
            .halt(Halt::Wait {
                key: key.to_owned(),
                deadline,
            })
            .await
    }
}

/// Dispatching from a workflow is a step: the job, run or event and the step's completion
/// commit in one transaction, fenced like every write of the run, so a replay returns the
/// stored id and never dispatches twice. Each is keyed by what it dispatches and its
/// occurrence in the handler (`~job/<name>/<n>`, `~workflow/<name>/<n>`,
/// `~send/<run>/<key>/<n>`): like waits, a replay must make them in the same order.
impl WorkflowContext {
    /// Queues the job `name` with `input`, once per run (a replay returns the stored id).
    pub async fn dispatch_job(&self, name: &str, input: impl Serialize) -> Result<Uuid> {
        let key = format!("~job/{name}");
        self.dispatch_step(key, |outbox| async move {
            Dispatcher::Deferred(&outbox)
                .job(&self.base.shared, name, &input)
                .await
        })
        .await
    }

    /// Starts a run of workflow `name` with `input`, once per run (a replay returns the
    /// stored id).
    pub async fn start_workflow(&self, name: &str, input: impl Serialize) -> Result<Uuid> {
        let key = format!("~workflow/{name}");
        self.dispatch_step(key, |outbox| async move {
            Dispatcher::Deferred(&outbox)
                .workflow(&self.base.shared, name, &input)
                .await
        })
        .await
    }

    /// Sends the event `key` with `payload` to workflow run `run_id`, once per run.
    pub async fn send_event(&self, run_id: Uuid, key: &str, payload: impl Serialize) -> Result<()> {
        let step = format!("~send/{run_id}/{key}");
        self.dispatch_step(step, |outbox| async move {
            Dispatcher::Deferred(&outbox)
                .event(&self.base.shared, run_id, key, &payload)
                .await
        })
        .await
    }

    async fn dispatch_step<T, F, Fut>(&self, what: String, make: F) -> Result<T>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce(Arc<Outbox>) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let state = &self.run;
        let pool = &self.base.shared.primary;
        let n = RunState::next(&state.dispatches, &what)?;
        let key = format!("{what}/{n}");
        if let Some((_, Some(result), _, _)) = state.load(pool, &key).await? {
            return Ok(serde_json::from_value(result)?);
        }
        if state.replay_only {
            state.halt(Halt::Replayed).await
        }
        let outbox = Arc::new(Outbox::default());
        let value = make(outbox.clone()).await?;
        let result = serde_json::to_value(&value)?;
        let mut tx = pool.begin().await?;
        let mine: Option<Uuid> = sqlx::query_scalar(
            "SELECT id FROM forge_workflow_runs WHERE id = $1 AND locked_by = $2 AND claims = $3 \
             FOR SHARE",
        )
        .bind(state.id)
        .bind(state.node)
        .bind(state.claims)
        .fetch_optional(&mut *tx)
        .await?;
        if mine.is_none() {
            return Err(state.lost());
        }
        outbox.write(&mut tx).await?;
        sqlx::query(
            "INSERT INTO forge_workflow_steps (run_id, key, status, result, completed_at) \
             VALUES ($1, $2, 'completed', $3, now())",
        )
        .bind(state.id)
        .bind(&key)
        .bind(&result)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(value)
    }
}

/// `ctx.step("key")`: give it the work with [`Step::run`].
pub struct Step<'a> {
    ctx: &'a WorkflowContext,
    key: &'a str,
}

impl<'a> Step<'a> {
    /// The step's work: an async closure returning `Result<T>`; `T` is stored as JSON.
    pub fn run<F, Fut, T>(self, f: F) -> StepRun<'a, F, T>
    where
        F: FnOnce() -> Fut + Send + 'a,
        Fut: Future<Output = Result<T>> + Send + 'a,
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        StepRun {
            ctx: self.ctx,
            key: self.key,
            f,
            compensate: None,
            result: PhantomData,
        }
    }
}

/// A step ready to run: await it, after [`StepRun::compensate`] if it has a compensation.
pub struct StepRun<'a, F, T> {
    ctx: &'a WorkflowContext,
    key: &'a str,
    f: F,
    compensate: Option<Compensate>,
    result: PhantomData<fn() -> T>,
}

impl<'a, F, T> StepRun<'a, F, T>
where
    T: Serialize + DeserializeOwned + Send + 'static,
{
    /// What undoes the step once it completed, given its result: run when a later step
    /// fails (or the run is cancelled or times out), in reverse order of completion.
    pub fn compensate<G, GFut>(mut self, g: G) -> Self
    where
        G: FnOnce(T) -> GFut + Send + 'static,
        GFut: Future<Output = Result<()>> + Send + 'static,
    {
        self.compensate = Some(Box::new(move |value: Value| {
            match serde_json::from_value::<T>(value) {
                Ok(result) => g(result).boxed(),
                Err(error) => async move { Err(Error::from(error)) }.boxed(),
            }
        }));
        self
    }
}

impl<'a, F, Fut, T> IntoFuture for StepRun<'a, F, T>
where
    F: FnOnce() -> Fut + Send + 'a,
    Fut: Future<Output = Result<T>> + Send + 'a,
    T: Serialize + DeserializeOwned + Send + 'static,
{
    type Output = Result<T>;
    type IntoFuture = BoxFuture<'a, Result<T>>;

    fn into_future(self) -> Self::IntoFuture {
        run_step(self.ctx, self.key, self.f, self.compensate).boxed()
    }
}

async fn run_step<F, Fut, T>(
    ctx: &WorkflowContext,
    key: &str,
    f: F,
    compensate: Option<Compensate>,
) -> Result<T>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T>>,
    T: Serialize + DeserializeOwned,
{
    let state = &ctx.run;
    let pool = &ctx.base.shared.primary;
    match state.load(pool, key).await? {
        Some((status, Some(result), _, sequence)) if status == "completed" => {
            let value = serde_json::from_value(result.clone())?;
            state.register(key, sequence, result, compensate);
            return Ok(value);
        }
        // Undone already (compensating after a restart): nothing left to compensate.
        Some((status, Some(result), _, _)) if status == "compensated" => {
            return Ok(serde_json::from_value(result)?);
        }
        // The handler sees the same failure it saw when the step ran.
        Some((status, _, error, _)) if status == "failed" => {
            return Err(Error::Internal(error.unwrap_or_default()));
        }
        // Never ran, or ran when its node died: it runs (again).
        _ => {}
    }
    if state.replay_only {
        state.halt(Halt::Replayed).await
    }
    let _running = InFlight::new(&state.progress);
    let begin =
        "WITH mine AS (UPDATE forge_workflow_runs SET current_step = $4, updated_at = now() \
                       WHERE id = $1 AND locked_by = $2 AND claims = $3 RETURNING id) \
         INSERT INTO forge_workflow_steps (run_id, key, status) SELECT id, $4, 'running' FROM mine \
         ON CONFLICT (run_id, key) DO UPDATE SET status = 'running', started_at = now(), \
             error = NULL, result = NULL";
    state.fenced(pool, begin, |q| q.bind(key)).await?;
    match f().await {
        Ok(value) => {
            let result = serde_json::to_value(&value)?;
            let sequence: Option<i64> = sqlx::query_scalar(&format!(
                "WITH {MINE} UPDATE forge_workflow_steps s SET status = 'completed', result = $5, \
                     sequence = nextval('forge_workflow_steps_sequence_seq'), completed_at = now() \
                 FROM mine WHERE s.run_id = mine.id AND s.key = $4 RETURNING s.sequence"
            ))
            .bind(state.id)
            .bind(state.node)
            .bind(state.claims)
            .bind(key)
            .bind(&result)
            .fetch_optional(pool)
            .await?;
            let Some(sequence) = sequence else {
                return Err(state.lost());
            };
            state.register(key, Some(sequence), result, compensate);
            Ok(value)
        }
        Err(error) => {
            let sql = format!(
                "WITH {MINE} UPDATE forge_workflow_steps s SET status = 'failed', error = $5, \
                     completed_at = now() \
                 FROM mine WHERE s.run_id = mine.id AND s.key = $4"
            );
            let message = error.to_string();
            state
                .fenced(pool, &sql, |q| q.bind(key).bind(message))
                .await?;
            Err(error)
        }
    }
}

impl Registry {
    /// The version of workflow `name` new runs pin to: the one marked `active`, else the
    /// only one, else the greatest version string (versions are usually dates).
    pub(crate) fn active_workflow(&self, name: &str) -> Option<&WorkflowDef> {
        let versions = self
            .workflows
            .iter()
            .map(|w| &w.def)
            .filter(|d| d.name == name);
        let active = versions
            .clone()
            .filter(|d| d.active)
            .max_by_key(|d| d.version);
        active.or_else(|| versions.max_by_key(|d| d.version))
    }
}

/// Records this node's workflow versions in `forge_workflow_definitions` and marks the
/// active one of each name: what the admin API and operators read.
pub(crate) async fn register_definitions(pool: &sqlx::PgPool, registry: &Registry) -> Result<()> {
    if registry.workflows.is_empty() {
        return Ok(());
    }
    let mut tx = pool.begin().await?;
    for workflow in &registry.workflows {
        let def = &workflow.def;
        sqlx::query(
            "INSERT INTO forge_workflow_definitions (name, version, signature) VALUES ($1, $2, $3) \
             ON CONFLICT (name, version) DO UPDATE SET signature = excluded.signature, \
                 registered_at = now()",
        )
        .bind(def.name)
        .bind(def.version)
        .bind(def.signature)
        .execute(&mut *tx)
        .await?;
    }
    let mut names: Vec<&str> = registry.workflows.iter().map(|w| w.def.name).collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let Some(active) = registry.active_workflow(name) else {
            continue;
        };
        // Two statements: the unique index on the active version is checked row by row.
        sqlx::query("UPDATE forge_workflow_definitions SET active = false WHERE name = $1 AND version <> $2 AND active")
            .bind(name)
            .bind(active.version)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE forge_workflow_definitions SET active = true WHERE name = $1 AND version = $2",
        )
        .bind(name)
        .bind(active.version)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
