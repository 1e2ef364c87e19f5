//! The job worker (feature `jobs`): each node's worker ([`worker::work`]) claims jobs from
//! `forge_jobs` with `FOR UPDATE SKIP LOCKED` and runs them ([`run`]). Queueing a job
//! (`dispatch_job`, [`crate::dispatch`]) is not part of this: every build can do it.
//!
//! The life of a row: `pending` → `running` (claimed: `attempts` + 1, `locked_by` = the node,
//! a lease) → `completed`, or `failed` (retried at `scheduled_at`) → … → `dead` after the
//! last attempt. A `running` row whose lease expired belongs to a node that died; the sweep
//! puts it back to `pending` (or `dead` when that was its last attempt), so every job runs
//! at least once. A node that shuts down gracefully hands its unfinished jobs back itself,
//! without charging the attempt.

mod run;
mod worker;

pub(crate) use worker::{work, CHANNEL};
