//! The few statements forge runs on a server it manages: creating and dropping databases.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

use crate::DbError;

/// Connects as forge, so `pg_stat_activity` says who holds a connection.
pub(crate) async fn connect(url: &str) -> Result<PgConnection, DbError> {
    let options = PgConnectOptions::from_str(url)
        .map_err(DbError::sql("invalid database URL"))?
        .application_name("forge");
    options
        .connect()
        .await
        .map_err(DbError::sql(format!("cannot connect to {}", redacted(url))))
}

/// Creates `name` unless it exists; `server` is a URL of any database on the server.
pub(crate) async fn create_database(server: &str, name: &str) -> Result<(), DbError> {
    let mut conn = connect(server).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut conn)
            .await
            .map_err(DbError::sql("cannot list databases"))?;
    if !exists {
        let created = sqlx::query(&format!("CREATE DATABASE {}", quote_ident(name)))
            .execute(&mut conn)
            .await;
        match created {
            Ok(_) => tracing::info!(database = name, "created the database"),
            // Another process created it between our look and our CREATE.
            Err(sqlx::Error::Database(error))
                if matches!(error.code().as_deref(), Some("42P04" | "23505")) => {}
            Err(error) => {
                return Err(DbError::sql(format!("cannot create database {name}"))(
                    error,
                ));
            }
        }
    }
    // Best effort: the server ends the session when the socket closes anyway.
    let _ = conn.close().await;
    Ok(())
}

/// Drops `name`, ending its sessions (PostgreSQL 13 or later).
#[cfg(feature = "test-support")]
pub(crate) async fn drop_database(server: &str, name: &str) -> Result<(), DbError> {
    let mut conn = connect(server).await?;
    sqlx::query(&format!(
        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
        quote_ident(name)
    ))
    .execute(&mut conn)
    .await
    .map_err(DbError::sql(format!("cannot drop database {name}")))?;
    let _ = conn.close().await;
    Ok(())
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The URL without its password, for messages.
fn redacted(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    let Some(at) = url[start..end].rfind('@').map(|i| start + i) else {
        return url.to_owned();
    };
    match url[start..at].split_once(':') {
        Some((user, _)) => format!("{}{user}:***{}", &url[..start], &url[at..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            redacted("postgres://app:s3cr@t@db:5432/x"),
            "postgres://app:***@db:5432/x"
        );
        assert_eq!(
            redacted("postgres://postgres@127.0.0.1:5/x"),
            "postgres://postgres@127.0.0.1:5/x"
        );
        assert_eq!(redacted("postgres:///x"), "postgres:///x");
        assert_eq!(
            redacted("postgres://h/x?options=a:b@c"),
            "postgres://h/x?options=a:b@c"
        );
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("my\"db"), "\"my\"\"db\"");
    }
}
