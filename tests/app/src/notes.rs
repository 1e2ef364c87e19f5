use forge::prelude::*;
use serde::{Deserialize, Serialize};

/// A note, as clients see it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Note {
    pub id: i64,
    pub text: String,
    pub indexed: bool,
    pub created_at: DateTime<Utc>,
}

/// What `ping` answers.
#[derive(Debug, Serialize)]
pub struct Pong {
    pub message: String,
    pub caller: Option<Uuid>,
}

/// Answers anyone.
#[forge::query(public)]
pub async fn ping(ctx: &QueryContext, message: String) -> Result<Pong> {
    Ok(Pong {
        message,
        caller: ctx.user_id().ok(),
    })
}

/// The caller's notes, oldest first.
#[forge::query]
pub async fn my_notes(ctx: &QueryContext) -> Result<Vec<Note>> {
    let rows: Vec<(i64, String, bool, DateTime<Utc>)> = sqlx::query_as(
        "SELECT id, text, indexed, created_at FROM notes WHERE owner_id = $1 ORDER BY id",
    )
    .bind(ctx.user_id()?)
    .fetch_all(ctx.db())
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, text, indexed, created_at)| Note {
            id,
            text,
            indexed,
            created_at,
        })
        .collect())
}

/// Adds a note for the caller and has it indexed in the background.
#[forge::mutation]
pub async fn add_note(ctx: &MutationContext, text: String) -> Result<i64> {
    if text.trim().is_empty() {
        return Err(Error::InvalidField {
            field: "text".into(),
            message: "is empty".into(),
        });
    }
    let id: i64 =
        sqlx::query_scalar("INSERT INTO notes (owner_id, text) VALUES ($1, $2) RETURNING id")
            .bind(ctx.user_id()?)
            .bind(&text)
            .fetch_one(ctx.tx())
            .await?;
    ctx.dispatch_job("index_note", IndexNote { note_id: id })
        .await?;
    Ok(id)
}

/// Input of `index_note`.
#[derive(Debug, Serialize, Deserialize)]
pub struct IndexNote {
    pub note_id: i64,
}

/// Marks a note indexed.
#[forge::job(retry(max_attempts = 3, backoff = "fixed", base = "1s"))]
pub async fn index_note(ctx: &JobContext, input: IndexNote) -> Result<()> {
    sqlx::query("UPDATE notes SET indexed = true WHERE id = $1")
        .bind(input.note_id)
        .execute(ctx.db())
        .await?;
    Ok(())
}

/// What the notes webhook receives.
#[derive(Debug, Deserialize)]
pub struct NoteHook {
    pub owner_id: Uuid,
    pub text: String,
}

/// Adds a note sent by another service, which signs it with `NOTES_WEBHOOK_SECRET`; a
/// delivery repeated with the same `Idempotency-Key` adds nothing.
#[forge::webhook(
    path = "/hooks/notes",
    signature = hmac_sha256("X-Signature", "NOTES_WEBHOOK_SECRET"),
    idempotency = "header:Idempotency-Key"
)]
pub async fn note_hook(ctx: &WebhookContext, input: NoteHook) -> Result<i64> {
    let id: i64 =
        sqlx::query_scalar("INSERT INTO notes (owner_id, text) VALUES ($1, $2) RETURNING id")
            .bind(input.owner_id)
            .bind(&input.text)
            .fetch_one(ctx.tx())
            .await?;
    ctx.dispatch_job("index_note", IndexNote { note_id: id })
        .await?;
    Ok(id)
}
