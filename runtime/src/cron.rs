//! Cron: on the leader, each `#[forge::cron]` ticks on its schedule.
//!
//! Exactly once per (cron, scheduled time): before running a tick the leader inserts its
//! row into `forge_cron_runs` with `ON CONFLICT DO NOTHING`, and only the inserter runs it.
//! A second leader during a failover, or a node whose clock is a little off, cannot run a
//! tick twice.
//!
//! - Schedules: cron expressions (5 fields, or 6 with leading seconds) in the dialect of
//!   `forge_attrs::cron::cron_parser`, the one `forge check` validates; `daily_at` is the
//!   expression `forge_attrs::cron::daily_at_expression` makes of it; both read in the
//!   cron's `timezone` (UTC without one). `every` ticks at the multiples of the interval
//!   since the Unix epoch, so every node computes the same instants whatever the time zone.
//! - Daylight saving time (croner's rules): a fixed time of day that does not exist (spring
//!   forward) runs at the first instant after the gap; one that exists twice (fall back)
//!   runs once, at the earlier instant; interval patterns (`*/15 * * * *`) follow real time.
//! - Catch-up: on gaining leadership, the latest `catch_up` ticks missed since the cron's
//!   last recorded run are run, oldest first, with `is_late() == true`; a cron that never
//!   ran starts from now. The same applies to ticks missed while the process stalled.
//! - Ticks run on tasks of their own: crons run concurrently with each other, and a tick
//!   that overruns its interval overlaps the next one rather than delaying or dropping it
//!   (set `timeout` to bound it).
//! - A tick still running when this node stops leading finishes here (its row is claimed);
//!   at shutdown it gets the grace period like everything else. A tick cut off then, or by
//!   the process dying, is recorded `failed` when its node is removed (at the end of that
//!   shutdown, or by the leader once the dead node is stale: `node.rs`); it is not run again.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound as _, TimeZone as _, Utc};
use chrono_tz::Tz;
use croner::Cron;
use futures_util::FutureExt as _;
use tokio::task::JoinSet;

use crate::context::{Base, CronContext};
use crate::dispatch::Outbox;
use crate::error::panic_message;
use crate::leader::{self, Leadership, Term};
use crate::registry::{CronDef, Schedule};
use crate::shared::Shared;

/// A cron's schedule, ready to compute ticks.
#[derive(Debug, Clone)]
pub(crate) enum Plan {
    /// Boxed: a parsed pattern is a few hundred bytes, and plans are built once per term.
    Cron {
        cron: Box<Cron>,
        tz: Tz,
    },
    Every {
        ms: i64,
    },
}

impl Plan {
    /// Fails with a message when the definition is invalid (which `forge check` reports as
    /// FG301 long before the app runs).
    pub fn new(def: &CronDef) -> std::result::Result<Plan, String> {
        let tz = match def.timezone {
            None => Tz::UTC,
            Some(name) => name
                .parse::<Tz>()
                .map_err(|_| format!("unknown time zone {name:?}"))?,
        };
        let expression = match def.schedule {
            Schedule::EveryMs(0) => return Err("`every` must be longer than 0".into()),
            Schedule::EveryMs(ms) => {
                let ms = i64::try_from(ms).map_err(|_| format!("`every` of {ms} ms"))?;
                return Ok(Plan::Every { ms });
            }
            Schedule::Cron(expression) => expression.to_owned(),
            Schedule::DailyAt(time) => forge_attrs::cron::daily_at_expression(time)
                .ok_or_else(|| format!("daily_at {time:?} is not HH:MM"))?,
        };
        let cron = forge_attrs::cron::cron_parser()
            .parse(&expression)
            .map_err(|e| format!("cron expression {expression:?}: {e}"))?;
        Ok(Plan::Cron {
            cron: Box::new(cron),
            tz,
        })
    }

    /// The first tick strictly after `t`; `None` when there is none (croner searches a
    /// bounded range of years).
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Plan::Every { ms } => {
                let next = t.timestamp_millis().div_euclid(*ms).checked_add(1)?;
                Utc.timestamp_millis_opt(next.checked_mul(*ms)?).single()
            }
            // croner works in whole seconds: strictly after the second `t` falls in.
            Plan::Cron { cron, tz } => cron
                .find_next_occurrence(&t.trunc_subsecs(0).with_timezone(tz), false)
                .ok()
                .map(|t| t.with_timezone(&Utc)),
        }
    }

    /// The latest tick at or before `t`.
    fn at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Plan::Every { ms } => {
                let tick = t.timestamp_millis().div_euclid(*ms).checked_mul(*ms)?;
                Utc.timestamp_millis_opt(tick).single()
            }
            Plan::Cron { cron, tz } => cron
                .find_previous_occurrence(&t.trunc_subsecs(0).with_timezone(tz), true)
                .ok()
                .map(|t| t.with_timezone(&Utc)),
        }
    }

    /// The latest tick strictly before the tick `t`.
    fn before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Plan::Every { ms } => Utc
                .timestamp_millis_opt(t.timestamp_millis().checked_sub(*ms)?)
                .single(),
            Plan::Cron { cron, tz } => cron
                .find_previous_occurrence(&t.with_timezone(tz), false)
                .ok()
                .map(|t| t.with_timezone(&Utc)),
        }
    }

    /// The latest `limit` ticks in (`after`, `until`], oldest first. Walks backwards from
    /// `until`, so a long outage costs `limit` steps, not one per missed tick.
    pub fn ticks_between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut ticks = Vec::new();
        let mut cursor = self.at_or_before(until);
        while let Some(tick) = cursor {
            if tick <= after || ticks.len() == limit {
                break;
            }
            ticks.push(tick);
            cursor = self.before(tick);
        }
        ticks.reverse();
        ticks
    }
}

/// Starts the scheduler on `tasks` when the app has crons.
pub(crate) fn spawn(shared: &Arc<Shared>, leadership: Leadership, tasks: &mut JoinSet<()>) {
    if shared.registry.crons.is_empty() {
        return;
    }
    let shared = shared.clone();
    tasks.spawn(async move { run(shared, leadership).await });
}

/// For each term of leadership, one scheduler per cron.
async fn run(shared: Arc<Shared>, mut leadership: Leadership) {
    let mut schedulers = JoinSet::new();
    while let Some(term) = leadership.acquired().await {
        for &name in shared.registry.crons.keys() {
            schedulers.spawn(schedule(shared.clone(), name, term.clone()));
        }
        loop {
            tokio::select! {
                () = term.stop.cancelled() => break,
                Some(_) = schedulers.join_next(), if !schedulers.is_empty() => {}
            }
        }
    }
    // The node is stopping: schedulers return once their ticks in flight have finished
    // (Running::shutdown bounds this by the grace period).
    while schedulers.join_next().await.is_some() {}
}

/// Schedules one cron until the term ends, then waits for its ticks in flight.
async fn schedule(shared: Arc<Shared>, name: &'static str, term: Term) {
    let hold = term.hold();
    let Some(def) = shared.registry.crons.get(name).map(|c| c.def) else {
        return;
    };
    let plan = match Plan::new(&def) {
        Ok(plan) => plan,
        Err(error) => {
            tracing::error!(cron = name, %error, "cron disabled: invalid schedule");
            return;
        }
    };
    let catch_up = def.catch_up as usize;
    let mut runs = JoinSet::new();

    let Some(last) = last_run(&shared, name, &term).await else {
        return;
    };
    let now = Utc::now();
    if let Some(last) = last {
        for tick in plan.ticks_between(last, now, catch_up) {
            start(&shared, name, tick, true, &mut runs).await;
        }
    }

    let mut after = now;
    loop {
        let Some(next) = plan.next_after(after) else {
            tracing::info!(cron = name, "the schedule has no further ticks");
            break;
        };
        tokio::select! {
            () = term.stop.cancelled() => break,
            () = sleep_until(next) => {}
            Some(_) = runs.join_next(), if !runs.is_empty() => continue,
        }
        // Normally exactly `next` is due; more when the process stalled past several ticks.
        // The latest is on time, the missed ones before it are catch-up.
        let due = plan.ticks_between(after, Utc::now(), catch_up + 1);
        let Some((&latest, missed)) = due.split_last() else {
            continue;
        };
        for &tick in missed {
            start(&shared, name, tick, true, &mut runs).await;
        }
        start(&shared, name, latest, false, &mut runs).await;
        after = latest.max(next);
    }
    drop(hold);
    while runs.join_next().await.is_some() {}
}

/// The cron's latest recorded tick; `None` (outer) when the term ended while the database
/// was unreachable.
async fn last_run(shared: &Shared, name: &str, term: &Term) -> Option<Option<DateTime<Utc>>> {
    loop {
        let last =
            sqlx::query_scalar("SELECT max(scheduled_time) FROM forge_cron_runs WHERE name = $1")
                .bind(name)
                .fetch_one(&shared.primary)
                .await;
        match last {
            Ok(last) => return Some(last),
            Err(error) => {
                tracing::warn!(cron = name, %error, "cannot read the last run; retrying");
            }
        }
        tokio::select! {
            () = term.stop.cancelled() => return None,
            () = tokio::time::sleep(leader::retry_interval(shared.config.leader_lease)) => {}
        }
    }
}

/// Sleeps until the wall clock reads `at`. Timers run on the monotonic clock, which may
/// drift from the wall clock the schedule is in, so it checks again on waking.
async fn sleep_until(at: DateTime<Utc>) {
    loop {
        let Ok(left) = (at - Utc::now()).to_std() else {
            return;
        };
        if left.is_zero() {
            return;
        }
        tokio::time::sleep(left).await;
    }
}

/// Claims the tick and, when this node got it, runs it on a task of its own.
async fn start(
    shared: &Arc<Shared>,
    name: &'static str,
    tick: DateTime<Utc>,
    late: bool,
    runs: &mut JoinSet<()>,
) {
    let claimed = sqlx::query_scalar::<_, bool>(
        "INSERT INTO forge_cron_runs (name, scheduled_time, node_id) VALUES ($1, $2, $3) \
         ON CONFLICT DO NOTHING RETURNING true",
    )
    .bind(name)
    .bind(tick)
    .bind(shared.node_id)
    .fetch_optional(&shared.primary)
    .await;
    match claimed {
        Ok(Some(_)) => {
            runs.spawn(run_tick(shared.clone(), name, tick, late));
        }
        Ok(None) => tracing::debug!(cron = name, %tick, "tick already claimed"),
        Err(error) => {
            tracing::error!(cron = name, %tick, %error, "cannot claim the tick; it is skipped")
        }
    }
}

async fn run_tick(shared: Arc<Shared>, name: &'static str, tick: DateTime<Utc>, late: bool) {
    let Some(cron) = shared.registry.crons.get(name) else {
        return;
    };
    let outbox = Arc::new(Outbox::default());
    let ctx = CronContext {
        base: Base::new(&shared, None),
        outbox: outbox.clone(),
        scheduled_time: tick,
        late,
    };
    let call = AssertUnwindSafe((cron.call)(ctx)).catch_unwind();
    let outcome = match cron.def.timeout_ms {
        None => call.await,
        Some(ms) => match tokio::time::timeout(Duration::from_millis(ms), call).await {
            Ok(outcome) => outcome,
            Err(_) => Ok(Err(crate::Error::Timeout(format!(
                "did not finish within {ms} ms"
            )))),
        },
    };
    let error = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(error)) => Some(error.to_string()),
        Err(panic) => Some(format!("panicked: {}", panic_message(&*panic))),
    };
    match &error {
        None => tracing::debug!(cron = name, %tick, late, "cron tick completed"),
        Some(error) => tracing::warn!(cron = name, %tick, late, %error, "cron tick failed"),
    }
    let recorded = match record(&shared, name, tick, error.as_deref(), &outbox).await {
        // The tick completed but its dispatches could not be written: it failed after all.
        Err(write) if error.is_none() => {
            let error = format!("writing its dispatches failed: {write}");
            tracing::warn!(cron = name, %tick, %error, "cron tick failed");
            record(&shared, name, tick, Some(&error), &outbox).await
        }
        recorded => recorded,
    };
    if let Err(error) = recorded {
        tracing::error!(cron = name, %tick, %error, "cannot record the tick's outcome");
    }
}

/// Writes the tick's outcome and, when it completed, its dispatches in the same transaction.
async fn record(
    shared: &Shared,
    name: &str,
    tick: DateTime<Utc>,
    error: Option<&str>,
    outbox: &Outbox,
) -> crate::Result<()> {
    let mut tx = shared.primary.begin().await?;
    sqlx::query(
        "UPDATE forge_cron_runs SET status = $3, finished_at = now(), error = $4 \
         WHERE name = $1 AND scheduled_time = $2",
    )
    .bind(name)
    .bind(tick)
    .bind(if error.is_none() {
        "completed"
    } else {
        "failed"
    })
    .bind(error)
    .execute(&mut *tx)
    .await?;
    if error.is_none() {
        outbox.write(&mut tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(schedule: Schedule, timezone: Option<&'static str>) -> CronDef {
        CronDef {
            name: "t",
            module: "",
            schedule,
            timezone,
            catch_up: 0,
            timeout_ms: None,
        }
    }

    fn plan(schedule: Schedule, timezone: Option<&'static str>) -> Plan {
        Plan::new(&def(schedule, timezone)).unwrap()
    }

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    /// The next `n` ticks after `from`.
    fn ticks(plan: &Plan, from: &str, n: usize) -> Vec<String> {
        let mut at = utc(from);
        (0..n)
            .map(|_| {
                at = plan.next_after(at).unwrap();
                at.to_rfc3339()
            })
            .collect()
    }

    #[test]
    fn every_is_aligned_to_the_epoch() {
        let p = plan(Schedule::EveryMs(15 * 60 * 1000), Some("Asia/Kolkata"));
        assert_eq!(
            ticks(&p, "2025-01-01T10:07:30.250Z", 2),
            ["2025-01-01T10:15:00+00:00", "2025-01-01T10:30:00+00:00"]
        );
        // A tick exactly at `t` is not after it.
        assert_eq!(
            ticks(&p, "2025-01-01T10:15:00Z", 1),
            ["2025-01-01T10:30:00+00:00"]
        );
    }

    #[test]
    fn second_level_expressions_tick_every_second() {
        let p = plan(Schedule::Cron("*/1 * * * * *"), None);
        assert_eq!(
            ticks(&p, "2025-01-01T00:00:00.500Z", 3),
            [
                "2025-01-01T00:00:01+00:00",
                "2025-01-01T00:00:02+00:00",
                "2025-01-01T00:00:03+00:00"
            ]
        );
    }

    #[test]
    fn time_zones_move_with_daylight_saving_time() {
        let p = plan(Schedule::DailyAt("09:00"), Some("Europe/Berlin"));
        // CET (UTC+1) in winter, CEST (UTC+2) in summer.
        assert_eq!(
            ticks(&p, "2025-01-15T12:00:00Z", 1),
            ["2025-01-16T08:00:00+00:00"]
        );
        assert_eq!(
            ticks(&p, "2025-07-15T12:00:00Z", 1),
            ["2025-07-16T07:00:00+00:00"]
        );
    }

    #[test]
    fn spring_forward_runs_a_skipped_time_once_after_the_gap() {
        // Berlin, 2025-03-30: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist.
        let p = plan(Schedule::DailyAt("02:30"), Some("Europe/Berlin"));
        assert_eq!(
            ticks(&p, "2025-03-29T12:00:00Z", 3),
            [
                "2025-03-30T01:00:00+00:00", // 03:00 CEST, the first instant after the gap
                "2025-03-31T00:30:00+00:00", // 02:30 CEST
                "2025-04-01T00:30:00+00:00",
            ]
        );
        // Hourly: the hour that does not exist is not made up.
        let p = plan(Schedule::Cron("0 * * * *"), Some("Europe/Berlin"));
        assert_eq!(
            ticks(&p, "2025-03-29T23:30:00Z", 3),
            [
                "2025-03-30T00:00:00+00:00", // 01:00 CET
                "2025-03-30T01:00:00+00:00", // 03:00 CEST
                "2025-03-30T02:00:00+00:00", // 04:00 CEST
            ]
        );
    }

    #[test]
    fn fall_back_runs_a_repeated_time_once_and_intervals_in_real_time() {
        // Berlin, 2025-10-26: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice.
        let p = plan(Schedule::DailyAt("02:30"), Some("Europe/Berlin"));
        assert_eq!(
            ticks(&p, "2025-10-25T12:00:00Z", 2),
            [
                "2025-10-26T00:30:00+00:00", // 02:30 CEST, the earlier one only
                "2025-10-27T01:30:00+00:00", // 02:30 CET
            ]
        );
        // Every 30 minutes keeps a 30-minute rhythm through the repeated hour.
        let p = plan(Schedule::Cron("*/30 * * * *"), Some("Europe/Berlin"));
        assert_eq!(
            ticks(&p, "2025-10-25T23:45:00Z", 5),
            [
                "2025-10-26T00:00:00+00:00", // 02:00 CEST
                "2025-10-26T00:30:00+00:00", // 02:30 CEST
                "2025-10-26T01:00:00+00:00", // 02:00 CET
                "2025-10-26T01:30:00+00:00", // 02:30 CET
                "2025-10-26T02:00:00+00:00", // 03:00 CET
            ]
        );
        // Catch-up walks the same instants backwards.
        let back = p.ticks_between(utc("2025-10-25T23:45:00Z"), utc("2025-10-26T02:00:00Z"), 10);
        assert_eq!(back.len(), 5);
        assert_eq!(back[2].to_rfc3339(), "2025-10-26T01:00:00+00:00");
    }

    #[test]
    fn catch_up_takes_the_latest_missed_ticks_oldest_first() {
        let p = plan(Schedule::Cron("*/1 * * * * *"), None);
        let got = p.ticks_between(
            utc("2025-01-01T00:00:00Z"),
            utc("2025-01-01T01:00:00.700Z"),
            3,
        );
        let got: Vec<_> = got.iter().map(|t| t.to_rfc3339()).collect();
        assert_eq!(
            got,
            [
                "2025-01-01T00:59:58+00:00",
                "2025-01-01T00:59:59+00:00",
                "2025-01-01T01:00:00+00:00"
            ]
        );
        // `after` itself is excluded; nothing missed gives nothing.
        let p = plan(Schedule::EveryMs(1000), None);
        assert_eq!(
            p.ticks_between(utc("2025-01-01T00:00:00Z"), utc("2025-01-01T00:00:02Z"), 10)
                .len(),
            2
        );
        assert!(p
            .ticks_between(
                utc("2025-01-01T00:00:00Z"),
                utc("2025-01-01T00:00:00.9Z"),
                10
            )
            .is_empty());
        assert!(p
            .ticks_between(utc("2025-01-01T00:00:00Z"), utc("2025-01-01T00:01:00Z"), 0)
            .is_empty());
    }

    #[test]
    fn invalid_definitions_are_refused_with_a_reason() {
        let error = Plan::new(&def(Schedule::Cron("61 * * * *"), None)).unwrap_err();
        assert!(error.contains("61 * * * *"), "{error}");
        let error = Plan::new(&def(Schedule::DailyAt("9:00"), None)).unwrap_err();
        assert!(error.contains("HH:MM"), "{error}");
        let error = Plan::new(&def(Schedule::EveryMs(0), None)).unwrap_err();
        assert!(error.contains("every"), "{error}");
        let error = Plan::new(&def(Schedule::EveryMs(1000), Some("Mars/Olympus"))).unwrap_err();
        assert!(error.contains("Mars/Olympus"), "{error}");
    }
}
