//! `TestDatabase`: one server for the process, a fresh database per test.

use forge_db::testing::TestDatabase;
use sqlx::{Connection, PgConnection};

#[tokio::test]
async fn test_databases_are_isolated_and_dropped() {
    let a = TestDatabase::new().await;
    let b = TestDatabase::new().await;
    assert_ne!(a.name(), b.name());

    sqlx::query("CREATE TABLE only_in_a (id int)")
        .execute(a.pool())
        .await
        .expect("create table");
    let seen_from_b: Option<String> = sqlx::query_scalar("SELECT to_regclass('only_in_a')::text")
        .fetch_one(b.pool())
        .await
        .expect("query");
    assert_eq!(seen_from_b, None);

    let name = a.name().to_owned();
    drop(a);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_one(b.pool())
        .await
        .expect("query");
    assert_eq!(left, 0, "{name} is dropped with its TestDatabase");
}

#[tokio::test]
async fn the_url_names_the_same_database() {
    let db = TestDatabase::new().await;
    let mut conn = PgConnection::connect(db.url()).await.expect("connects");
    let name: String = sqlx::query_scalar("SELECT current_database()::text")
        .fetch_one(&mut conn)
        .await
        .expect("query");
    assert_eq!(name, db.name());
}
