//! `GET /_api/admin/cron`: every registered cron with its schedule, next tick and latest runs.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::admin::admin;
use super::Response;
use crate::registry::{CronDef, Schedule};
use crate::shared::Shared;
use crate::Result;

pub(super) async fn list(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    admin(&shared, &headers, view(&shared)).await
}

/// The cron's next tick after `now`, from the scheduler's own schedule maths.
#[cfg(feature = "cron")]
fn next_tick(def: &CronDef, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    crate::cron::Plan::new(def)
        .ok()
        .and_then(|plan| plan.next_after(now))
}

/// A node built without the `cron` feature has no schedule maths (croner, chrono-tz): it
/// still lists the crons and their runs, with `next_scheduled_time: null`.
#[cfg(not(feature = "cron"))]
fn next_tick(_: &CronDef, _: DateTime<Utc>) -> Option<DateTime<Utc>> {
    None
}

/// How many runs of each cron `GET /_api/admin/cron` shows.
const ADMIN_RUNS: i64 = 10;

/// Every registered cron with its schedule, time zone, next tick and latest runs.
async fn view(shared: &Shared) -> Result<Value> {
    let names: Vec<&str> = shared.registry.crons.keys().copied().collect();
    let runs: Vec<(String, Value)> = sqlx::query_as(
        "SELECT name, jsonb_agg(jsonb_build_object( \
                  'scheduled_time', scheduled_time, 'status', status, 'started_at', started_at, \
                  'finished_at', finished_at, 'error', error) ORDER BY scheduled_time DESC) \
         FROM (SELECT r.*, row_number() OVER (PARTITION BY name ORDER BY scheduled_time DESC) AS n \
               FROM forge_cron_runs r WHERE name = ANY($1)) r \
         WHERE n <= $2 GROUP BY name",
    )
    .bind(&names)
    .bind(ADMIN_RUNS)
    .fetch_all(&shared.primary)
    .await?;
    let mut runs: std::collections::HashMap<String, Value> = runs.into_iter().collect();
    let now = Utc::now();
    let crons = shared
        .registry
        .crons
        .values()
        .map(|cron| {
            let def = &cron.def;
            let schedule = match def.schedule {
                Schedule::Cron(expression) => json!({"kind": "cron", "expression": expression}),
                Schedule::EveryMs(ms) => json!({"kind": "every", "every_ms": ms}),
                Schedule::DailyAt(time) => json!({
                    "kind": "daily_at",
                    "time": time,
                    "expression": forge_attrs::cron::daily_at_expression(time),
                }),
            };
            let next = next_tick(def, now);
            json!({
                "name": def.name,
                "module": def.module,
                "schedule": schedule,
                "timezone": def.timezone.unwrap_or("UTC"),
                "catch_up": def.catch_up,
                "timeout_ms": def.timeout_ms,
                "next_scheduled_time": next,
                "runs": runs.remove(def.name).unwrap_or_else(|| json!([])),
            })
        })
        .collect();
    Ok(Value::Array(crons))
}
