//! `GET /_api/admin/jobs?status=…&name=…&queue=…&limit=…&before=…` (newest first, paged by
//! keyset: `before` is the last id of the previous page), `GET /_api/admin/jobs/{id}`,
//! `POST /_api/admin/jobs/{id}/retry` (a failed or dead job runs again now, with its full
//! retry budget) and `POST /_api/admin/jobs/{id}/cancel` (a pending or failed job is
//! `cancelled` and never runs). An action on a job whose status does not allow it is
//! `VALIDATION_ERROR` naming the status, and changes nothing.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use serde_json::Value;
use uuid::Uuid;

use super::admin::admin;
use super::Response;
use crate::shared::Shared;
use crate::{Error, Result};

/// Every status a job row can have (the CHECK constraint on `forge_jobs.status`).
const STATUSES: [&str; 6] = [
    "pending",
    "running",
    "completed",
    "failed",
    "dead",
    "cancelled",
];

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 1000;

/// Newest first (then by id), without inputs (they can be large; the detail view has
/// them). Per status the rows come from `forge_jobs_status_idx` (status, created_at DESC),
/// at most `limit` each, so listing every status is a merge of a few short index scans,
/// not a sort of the whole table. `$3` name, `$4` queue (NULL: any); `$5` the keyset
/// cursor's (created_at, id).
const LIST: &str = "\
SELECT coalesce(jsonb_agg(to_jsonb(j) - 'input' ORDER BY j.created_at DESC, j.id DESC), '[]') FROM ( \
    SELECT j.* FROM unnest($1::text[]) AS s(status) \
    CROSS JOIN LATERAL ( \
        SELECT * FROM forge_jobs WHERE status = s.status \
            AND ($3::text IS NULL OR name = $3) AND ($4::text IS NULL OR queue = $4) \
            AND ($5::timestamptz IS NULL OR (created_at, id) < ($5, $6::uuid)) \
        ORDER BY created_at DESC, id DESC LIMIT $2 \
    ) j \
    ORDER BY j.created_at DESC, j.id DESC LIMIT $2) j";

pub(super) async fn list(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let view = async {
        let params = list_params(query.as_deref().unwrap_or(""))?;
        let cursor: Option<(chrono::DateTime<chrono::Utc>, Uuid)> = match params.before {
            None => None,
            Some(id) => Some(
                sqlx::query_as("SELECT created_at, id FROM forge_jobs WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&shared.primary)
                    .await?
                    .ok_or_else(|| Error::InvalidField {
                        field: "before".into(),
                        message: format!("no job has the id {id} (it may have been trimmed)"),
                    })?,
            ),
        };
        let (after, after_id) = cursor.unzip();
        let jobs: Value = sqlx::query_scalar(LIST)
            .bind(params.statuses)
            .bind(params.limit)
            .bind(params.name)
            .bind(params.queue)
            .bind(after)
            .bind(after_id)
            .fetch_one(&shared.primary)
            .await?;
        Ok(jobs)
    };
    admin(&shared, &headers, view).await
}

/// A failed job runs again now; a dead one too, with its full number of attempts again.
/// Running, pending, completed and cancelled jobs are refused.
pub(super) async fn retry(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let view = async {
        let id = job_id(&id)?;
        act(
            &shared,
            id,
            "UPDATE forge_jobs SET status = 'pending', scheduled_at = now(), finished_at = NULL, \
                 attempts = CASE WHEN status = 'dead' THEN 0 ELSE attempts END \
             WHERE id = $1 AND status IN ('failed', 'dead') RETURNING status",
            "only failed and dead jobs can be retried",
        )
        .await
    };
    admin(&shared, &headers, view).await
}

/// A pending job, or a failed one waiting for its retry, is `cancelled`: no worker claims
/// it. A running job cannot be cancelled (its handler is not told); finished ones are done.
pub(super) async fn cancel(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let view = async {
        let id = job_id(&id)?;
        act(
            &shared,
            id,
            "UPDATE forge_jobs SET status = 'cancelled', finished_at = now() \
             WHERE id = $1 AND status IN ('pending', 'failed') RETURNING status",
            "only pending and failed jobs can be cancelled",
        )
        .await
    };
    admin(&shared, &headers, view).await
}

/// Runs one statement that changes the job and answers `{id, status}`; when no row
/// changed, says why from the job's current status (and nothing changed).
async fn act(shared: &Shared, id: Uuid, sql: &str, refused: &str) -> Result<Value> {
    let status: Option<String> = sqlx::query_scalar(sql)
        .bind(id)
        .fetch_optional(&shared.primary)
        .await?;
    if let Some(status) = status {
        return Ok(serde_json::json!({ "id": id, "status": status }));
    }
    let current: Option<String> = sqlx::query_scalar("SELECT status FROM forge_jobs WHERE id = $1")
        .bind(id)
        .fetch_optional(&shared.primary)
        .await?;
    Err(match current {
        None => Error::NotFound(format!("no job has the id {id}")),
        Some(current) => Error::Validation(format!("the job is {current}: {refused}")),
    })
}

fn job_id(id: &str) -> Result<Uuid> {
    Uuid::parse_str(id).map_err(|_| Error::InvalidField {
        field: "id".into(),
        message: format!("{id:?} is not a UUID"),
    })
}

pub(super) async fn get(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let view = async {
        let id = job_id(&id)?;
        let job: Option<Value> =
            sqlx::query_scalar("SELECT to_jsonb(j) FROM forge_jobs j WHERE id = $1")
                .bind(id)
                .fetch_optional(&shared.primary)
                .await?;
        job.ok_or_else(|| Error::NotFound(format!("no job has the id {id}")))
    };
    admin(&shared, &headers, view).await
}

/// The list's filters and page.
#[derive(Debug, PartialEq)]
struct ListParams {
    statuses: Vec<&'static str>,
    name: Option<String>,
    queue: Option<String>,
    limit: i64,
    before: Option<Uuid>,
}

/// `status` (one of [`STATUSES`]; all when absent), `name`, `queue`, `limit` (1 to
/// [`MAX_LIMIT`]) and `before` (a job id: the page after it). Unknown parameters are
/// refused, so a misspelt filter is not silently ignored.
fn list_params(query: &str) -> Result<ListParams> {
    let mut params = ListParams {
        statuses: STATUSES.to_vec(),
        name: None,
        queue: None,
        limit: DEFAULT_LIMIT,
        before: None,
    };
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match &*key {
            "status" => {
                let status =
                    STATUSES
                        .iter()
                        .find(|s| **s == value)
                        .ok_or_else(|| Error::InvalidField {
                            field: "status".into(),
                            message: format!("{value:?} is not one of {}", STATUSES.join(", ")),
                        })?;
                params.statuses = vec![*status];
            }
            "name" => params.name = Some(value.into_owned()),
            "queue" => params.queue = Some(value.into_owned()),
            "limit" => {
                params.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| Error::InvalidField {
                        field: "limit".into(),
                        message: format!("{value:?} is not a whole number from 1 to {MAX_LIMIT}"),
                    })?;
            }
            "before" => {
                params.before = Some(Uuid::parse_str(&value).map_err(|_| Error::InvalidField {
                    field: "before".into(),
                    message: format!("{value:?} is not a job id"),
                })?);
            }
            other => {
                return Err(Error::InvalidField {
                    field: other.to_owned(),
                    message: "unknown parameter; the job list takes `status`, `name`, `queue`, \
                              `limit` and `before`"
                        .into(),
                })
            }
        }
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_checked_and_named() {
        let all = list_params("").unwrap();
        assert_eq!(
            (all.statuses, all.limit),
            (STATUSES.to_vec(), DEFAULT_LIMIT)
        );
        let some = list_params("status=dead&limit=5&name=mail&queue=q").unwrap();
        assert_eq!(
            some,
            ListParams {
                statuses: vec!["dead"],
                name: Some("mail".into()),
                queue: Some("q".into()),
                limit: 5,
                before: None,
            }
        );
        let field = |q: &str| list_params(q).unwrap_err().to_wire()["details"]["field"].clone();
        assert_eq!(field("status=zombie"), "status");
        assert_eq!(field("limit=0"), "limit");
        assert_eq!(field("limit=many"), "limit");
        assert_eq!(field("state=dead"), "state");
        assert_eq!(field("before=7"), "before");
    }
}
