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
//!
//! # Decisions
//!
//! `worker.rs` is one worker per node, spawned by `App::start` (none when `job_concurrency` is 0 or no job is registered);
//! `run.rs` runs one claimed job. Decisions:
//! - **Claim** per queue the node serves (rotating which goes first), filtered to the job names
//!   it registered, as `UPDATE … WHERE id IN (SELECT … ORDER BY priority DESC, scheduled_at
//!   LIMIT n FOR UPDATE SKIP LOCKED)`, which reads `forge_jobs_claim_idx` in order. The claim
//!   counts the attempt and sets `locked_by` and `lease_expires_at`. A busy worker reaps every
//!   finished task before claiming again, so it claims in batches.
//! - **Wake-ups**: `forge_jobs_available` on the node's shared listener (`listener.rs`, see
//!   "Live queries"), a finished job (a free slot), and `poll_interval` (missed notifications,
//!   retries coming due). After the listener (re)connects it wakes the worker, in case it
//!   missed something.
//! - **Ownership**: every write about a running job is guarded by `locked_by = node AND
//!   attempts = attempt AND status = 'running'`, so a worker whose lease expired cannot
//!   overwrite the job's next attempt; its outcome is discarded with a warning.
//!   `locked_by` is set exactly while a row is `running`.
//! - **Leases** are renewed every third of `job_lease` by a per-job task that also writes
//!   progress (at most every 100 ms; the last value is written with the outcome). At every
//!   poll tick each node sweeps running rows whose lease expired back to `pending` (or `dead`
//!   when that was the last attempt; the attempt is used either way): a dead worker's job is
//!   claimed again within `job_lease + poll_interval`.
//! - **Outcomes**: an `Err`, a panic (caught around the handler, which runs on the job's task)
//!   and the attribute's `timeout` are failed attempts: `failed` with `scheduled_at = now() +
//!   Retry::delay_ms(attempt)`, or `dead` with `finished_at` after `max_attempts` (the row's,
//!   fixed at dispatch). `last_error` keeps the latest error, also after a later success.
//! - **Shutdown**: stop claiming; jobs may finish within `shutdown_grace` minus a reserve
//!   (a fifth, at most 2 s) in which the rest are aborted and handed back to `pending` with
//!   `attempts - 1`, before `Running::shutdown`'s own deadline aborts the subsystems.

mod run;
mod worker;

pub(crate) use worker::{work, CHANNEL};
