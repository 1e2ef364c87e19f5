//! What the live-query tests subscribe to and write: public lists of items, their tags
//! (read with a JOIN), and the private notes of `notes.rs`.

use forge::prelude::*;
use serde::Serialize;

/// An item of a list.
#[derive(Debug, Serialize)]
pub struct Item {
    pub id: i64,
    pub name: String,
}

/// An item with one of its tags.
#[derive(Debug, Serialize)]
pub struct TaggedItem {
    pub name: String,
    pub tag: String,
}

/// The items of a list, oldest first.
#[forge::query(public)]
pub async fn list_items(ctx: &QueryContext, list: String) -> Result<Vec<Item>> {
    let rows: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, name FROM items WHERE list = $1 ORDER BY id")
            .bind(&list)
            .fetch_all(ctx.db())
            .await?;
    Ok(rows
        .into_iter()
        .map(|(id, name)| Item { id, name })
        .collect())
}

/// Every tag of every item of a list.
#[forge::query(public)]
pub async fn tagged_items(ctx: &QueryContext, list: String) -> Result<Vec<TaggedItem>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT i.name, t.tag FROM items i JOIN tags t ON t.item_id = i.id \
         WHERE i.list = $1 ORDER BY i.id, t.tag",
    )
    .bind(&list)
    .fetch_all(ctx.db())
    .await?;
    Ok(rows
        .into_iter()
        .map(|(name, tag)| TaggedItem { name, tag })
        .collect())
}

/// Adds an item to a list.
#[forge::mutation(public)]
pub async fn add_item(ctx: &MutationContext, list: String, name: String) -> Result<i64> {
    let id: i64 = sqlx::query_scalar("INSERT INTO items (list, name) VALUES ($1, $2) RETURNING id")
        .bind(&list)
        .bind(&name)
        .fetch_one(ctx.tx())
        .await?;
    Ok(id)
}

/// Renames an item.
#[forge::mutation(public)]
pub async fn rename_item(ctx: &MutationContext, id: i64, name: String) -> Result<()> {
    sqlx::query("UPDATE items SET name = $2 WHERE id = $1")
        .bind(id)
        .bind(&name)
        .execute(ctx.tx())
        .await?;
    Ok(())
}

/// Tags an item.
#[forge::mutation(public)]
pub async fn tag_item(ctx: &MutationContext, id: i64, tag: String) -> Result<()> {
    sqlx::query("INSERT INTO tags (item_id, tag) VALUES ($1, $2)")
        .bind(id)
        .bind(&tag)
        .execute(ctx.tx())
        .await?;
    Ok(())
}
