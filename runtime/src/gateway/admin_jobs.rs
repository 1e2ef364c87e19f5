//! `GET /_api/admin/jobs?status=…&limit=…` and `GET /_api/admin/jobs/{id}`.

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

/// Newest first, without inputs (they can be large; the detail view has them). Per status
/// the rows come from `forge_jobs_status_idx` (status, created_at DESC), at most `limit`
/// each, so listing every status is a merge of a few short index scans, not a sort of the
/// whole table.
const LIST: &str = "\
SELECT coalesce(jsonb_agg(to_jsonb(j) - 'input' ORDER BY j.created_at DESC), '[]') FROM ( \
    SELECT j.* FROM unnest($1::text[]) AS s(status) \
    CROSS JOIN LATERAL ( \
        SELECT * FROM forge_jobs WHERE status = s.status ORDER BY created_at DESC LIMIT $2 \
    ) j \
    ORDER BY j.created_at DESC LIMIT $2) j";

pub(super) async fn list(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let view = async {
        let (statuses, limit) = list_params(query.as_deref().unwrap_or(""))?;
        let jobs: Value = sqlx::query_scalar(LIST)
            .bind(statuses)
            .bind(limit)
            .fetch_one(&shared.primary)
            .await?;
        Ok(jobs)
    };
    admin(&shared, &headers, view).await
}

pub(super) async fn get(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let view = async {
        let id = Uuid::parse_str(&id).map_err(|_| Error::InvalidField {
            field: "id".into(),
            message: format!("{id:?} is not a UUID"),
        })?;
        let job: Option<Value> =
            sqlx::query_scalar("SELECT to_jsonb(j) FROM forge_jobs j WHERE id = $1")
                .bind(id)
                .fetch_optional(&shared.primary)
                .await?;
        job.ok_or_else(|| Error::NotFound(format!("no job has the id {id}")))
    };
    admin(&shared, &headers, view).await
}

/// `status` (one of [`STATUSES`]; all when absent) and `limit` (1 to [`MAX_LIMIT`]).
/// Unknown parameters are refused, so a misspelt filter is not silently ignored.
fn list_params(query: &str) -> Result<(Vec<&'static str>, i64)> {
    let mut statuses = STATUSES.to_vec();
    let mut limit = DEFAULT_LIMIT;
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
                statuses = vec![*status];
            }
            "limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| Error::InvalidField {
                        field: "limit".into(),
                        message: format!("{value:?} is not a whole number from 1 to {MAX_LIMIT}"),
                    })?;
            }
            other => {
                return Err(Error::InvalidField {
                    field: other.to_owned(),
                    message: "unknown parameter; the job list takes `status` and `limit`".into(),
                })
            }
        }
    }
    Ok((statuses, limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_checked_and_named() {
        assert_eq!(list_params("").unwrap(), (STATUSES.to_vec(), DEFAULT_LIMIT));
        assert_eq!(
            list_params("status=dead&limit=5").unwrap(),
            (vec!["dead"], 5)
        );
        let field = |q: &str| list_params(q).unwrap_err().to_wire()["details"]["field"].clone();
        assert_eq!(field("status=zombie"), "status");
        assert_eq!(field("limit=0"), "limit");
        assert_eq!(field("limit=many"), "limit");
        assert_eq!(field("state=dead"), "state");
    }
}
