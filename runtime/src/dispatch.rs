//! Dispatching work from a handler: `dispatch_job` (a `pending` row of `forge_jobs`),
//! `start_workflow` (a `pending` run) and `send_event` (a row of `forge_workflow_events`).
//!
//! Always compiled, whatever the features: it needs only the registry's definitions, so a
//! node built without the `jobs` worker (an API node) queues jobs that worker nodes run.
//! The worker itself is [`crate::jobs`].
//!
//! # When a dispatch commits, per context
//!
//! The dispatch methods are written once ([`dispatch_methods!`]) over a [`Dispatcher`]
//! each context hands out; what differs is where the rows are written:
//!
//! - **Mutations, webhooks and MCP tools** write them in the handler's own transaction:
//!   they commit with the handler's writes when it returns `Ok` and vanish when it fails. A
//!   mutation with `transactional = false` writes them at once, each on its own (FG201).
//! - **Jobs and crons** hold them in an [`Outbox`] and write them in the transaction that
//!   records the handler's outcome as completed: a job that fails (and is retried) or a cron
//!   tick that fails dispatches nothing, and a job whose lease expired while it ran (its
//!   outcome discarded) dispatches nothing either. Ids are made when the call is made, so
//!   the handler gets them at once; the rows appear only at completion.
//! - **Daemons** have no outcome (they run until shutdown): each dispatch commits at once,
//!   on its own.
//! - **Workflows** dispatch as a step (`WorkflowContext::dispatch_job` and friends in
//!   [`crate::workflow`]): the row and the step's completion commit in one transaction, so
//!   a replay returns the stored id and never dispatches twice.

use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::Value;
use sqlx::{Executor, Postgres};
use uuid::Uuid;

use crate::registry::{JobDef, WorkflowDef};
use crate::shared::Shared;
use crate::tx::Tx;
use crate::workflow::WAKE;
use crate::{Error, Result};

/// Where a context's dispatches go.
pub(crate) enum Dispatcher<'a> {
    /// Written now, on the handler's transaction (or on the pool).
    Now(Tx<'a>),
    /// Held until the handler's outcome is recorded (jobs, crons).
    Deferred(&'a Outbox),
}

/// Dispatches held back until the handler that made them completes; written by
/// [`Outbox::write`] in the transaction recording that.
#[derive(Default)]
pub(crate) struct Outbox(Mutex<Vec<Row>>);

enum Row {
    Job(Uuid, JobDef, Value),
    Run(Uuid, WorkflowDef, Value),
    Event(Uuid, String, Value),
}

impl Outbox {
    fn push(&self, row: Row) -> Result<()> {
        self.0
            .lock()
            .map_err(|_| Error::Internal("the dispatch outbox was poisoned".into()))?
            .push(row);
        Ok(())
    }

    /// How many dispatches are held.
    #[cfg(feature = "jobs")]
    pub(crate) fn len(&self) -> usize {
        self.0.lock().map(|rows| rows.len()).unwrap_or(0)
    }

    /// Writes every held dispatch on `tx` (the transaction recording the completion).
    pub(crate) async fn write(&self, tx: &mut sqlx::PgConnection) -> Result<()> {
        let rows = match self.0.lock() {
            Ok(rows) => rows
                .iter()
                .map(|row| match row {
                    Row::Job(id, def, input) => Row::Job(*id, *def, input.clone()),
                    Row::Run(id, def, input) => Row::Run(*id, *def, input.clone()),
                    Row::Event(run, key, payload) => Row::Event(*run, key.clone(), payload.clone()),
                })
                .collect::<Vec<_>>(),
            Err(_) => return Err(Error::Internal("the dispatch outbox was poisoned".into())),
        };
        for row in rows {
            match row {
                Row::Job(id, def, input) => insert_job(&mut *tx, id, &def, input).await?,
                Row::Run(id, def, input) => insert_run(&mut *tx, id, &def, input).await?,
                Row::Event(run, key, payload) => {
                    insert_event(&mut *tx, run, &key, payload).await?;
                }
            }
        }
        Ok(())
    }
}

impl Dispatcher<'_> {
    pub(crate) async fn job(
        self,
        shared: &Arc<Shared>,
        name: &str,
        input: &impl Serialize,
    ) -> Result<Uuid> {
        let def = job_def(shared, name)?;
        let input = serde_json::to_value(input)?;
        let id = Uuid::new_v4();
        match self {
            Dispatcher::Now(tx) => insert_job(tx, id, &def, input).await?,
            Dispatcher::Deferred(outbox) => outbox.push(Row::Job(id, def, input))?,
        }
        Ok(id)
    }

    pub(crate) async fn workflow(
        self,
        shared: &Arc<Shared>,
        name: &str,
        input: &impl Serialize,
    ) -> Result<Uuid> {
        let def = workflow_def(shared, name)?;
        let input = serde_json::to_value(input)?;
        let id = Uuid::new_v4();
        match self {
            Dispatcher::Now(tx) => insert_run(tx, id, &def, input).await?,
            Dispatcher::Deferred(outbox) => outbox.push(Row::Run(id, def, input))?,
        }
        Ok(id)
    }

    pub(crate) async fn event(
        self,
        shared: &Arc<Shared>,
        run_id: Uuid,
        key: &str,
        payload: &impl Serialize,
    ) -> Result<()> {
        let payload = serde_json::to_value(payload)?;
        match self {
            Dispatcher::Now(tx) => insert_event(tx, run_id, key, payload).await,
            Dispatcher::Deferred(outbox) => {
                // The run must exist now, so the handler sees a wrong id at once; the event
                // itself is written at completion.
                let exists: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM forge_workflow_runs WHERE id = $1)",
                )
                .bind(run_id)
                .fetch_one(&shared.primary)
                .await?;
                if !exists {
                    return Err(no_run(run_id));
                }
                outbox.push(Row::Event(run_id, key.to_owned(), payload))
            }
        }
    }
}

/// The methods every context that may dispatch has, written once: each context provides
/// `fn dispatcher(&self) -> Dispatcher<'_>` and says in its own docs when its dispatches
/// commit.
macro_rules! dispatch_methods {
    ($($context:ident),* $(,)?) => {$(
        impl $context {
            /// Queues the job `name` with `input` and returns its id. When it commits
            /// depends on the context (see its documentation): with the handler's
            /// transaction or outcome wherever it has one.
            pub async fn dispatch_job(
                &self,
                name: &str,
                input: impl ::serde::Serialize,
            ) -> $crate::Result<::uuid::Uuid> {
                self.dispatcher().job(&self.base.shared, name, &input).await
            }

            /// Starts a run of workflow `name` (its active version) with `input` and returns
            /// the run's id; it commits like [`Self::dispatch_job`].
            pub async fn start_workflow(
                &self,
                name: &str,
                input: impl ::serde::Serialize,
            ) -> $crate::Result<::uuid::Uuid> {
                self.dispatcher().workflow(&self.base.shared, name, &input).await
            }

            /// Sends the event `key` with `payload` to workflow run `run_id` (`NOT_FOUND`
            /// when there is no such run); it commits like [`Self::dispatch_job`], and a run
            /// waiting for it resumes then.
            pub async fn send_event(
                &self,
                run_id: ::uuid::Uuid,
                key: &str,
                payload: impl ::serde::Serialize,
            ) -> $crate::Result<()> {
                self.dispatcher()
                    .event(&self.base.shared, run_id, key, &payload)
                    .await
            }
        }
    )*};
}
pub(crate) use dispatch_methods;

fn job_def(shared: &Shared, name: &str) -> Result<JobDef> {
    shared
        .registry
        .jobs
        .get(name)
        .map(|job| job.def)
        .ok_or_else(|| {
            Error::Internal(format!(
                "dispatch_job(\"{name}\"): no job of that name is registered"
            ))
        })
}

pub(crate) fn workflow_def(shared: &Shared, name: &str) -> Result<WorkflowDef> {
    shared
        .registry
        .active_workflow(name)
        .copied()
        .ok_or_else(|| {
            Error::Internal(format!(
                "start_workflow(\"{name}\"): no workflow of that name is registered"
            ))
        })
}

fn no_run(run_id: Uuid) -> Error {
    Error::NotFound(format!("no workflow run has the id {run_id}"))
}

/// Inserts a pending job; the insert NOTIFYs `forge_jobs_available` at commit (a trigger).
pub(crate) async fn insert_job<'e>(
    executor: impl Executor<'e, Database = Postgres>,
    id: Uuid,
    def: &JobDef,
    input: Value,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO forge_jobs (id, name, queue, priority, input, max_attempts) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(def.name)
    .bind(def.queue)
    .bind(def.priority)
    .bind(input)
    .bind(def.retry.max_attempts.max(1) as i32)
    .execute(executor)
    .await?;
    Ok(())
}

/// Inserts a pending run of `def` and wakes the workers at commit.
pub(crate) async fn insert_run<'e>(
    executor: impl Executor<'e, Database = Postgres>,
    id: Uuid,
    def: &WorkflowDef,
    input: Value,
) -> Result<()> {
    let timeout_ms = def
        .timeout_ms
        .map(|ms| i64::try_from(ms).unwrap_or(i64::MAX));
    sqlx::query(
        "WITH run AS (INSERT INTO forge_workflow_runs (id, name, version, signature, input, timeout_at) \
                      VALUES ($1, $2, $3, $4, $5, now() + $6 * interval '1 millisecond') RETURNING id) \
         SELECT id FROM run, pg_notify('forge_jobs_available', $7)",
    )
    .bind(id)
    .bind(def.name)
    .bind(def.version)
    .bind(def.signature)
    .bind(input)
    .bind(timeout_ms)
    .bind(WAKE)
    .execute(executor)
    .await?;
    Ok(())
}

/// Inserts an event for run `run_id` and wakes the workers at commit; `NOT_FOUND` when
/// there is no such run.
pub(crate) async fn insert_event<'e>(
    executor: impl Executor<'e, Database = Postgres>,
    run_id: Uuid,
    key: &str,
    payload: Value,
) -> Result<()> {
    let sent: Option<i64> = sqlx::query_scalar(
        "WITH event AS (INSERT INTO forge_workflow_events (run_id, key, payload) \
                        SELECT id, $2, $3 FROM forge_workflow_runs WHERE id = $1 RETURNING id) \
         SELECT id FROM event, pg_notify('forge_jobs_available', $4)",
    )
    .bind(run_id)
    .bind(key)
    .bind(payload)
    .bind(WAKE)
    .fetch_optional(executor)
    .await?;
    match sent {
        Some(_) => Ok(()),
        None => Err(no_run(run_id)),
    }
}
