//! `ctx.tx()`: a sqlx executor bound to the mutation's transaction.
//!
//! Handlers get `&MutationContext`, and sqlx executes on `&mut PgConnection`; the
//! transaction therefore lives behind an async mutex, and [`Tx`] takes the lock for the
//! length of one statement (including the rows it streams). Two statements of one mutation
//! run one after the other on the same transaction, as Postgres requires anyway.

use std::fmt;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{FutureExt as _, StreamExt as _, TryStreamExt as _};
use sqlx::postgres::{PgQueryResult, PgRow, PgStatement, PgTypeInfo};
use sqlx::{Describe, Either, Execute, Executor, PgPool, Postgres, Transaction};
use tokio::sync::Mutex;

/// The open transaction of a transactional mutation; `None` once finished.
pub(crate) type TxCell = Arc<Mutex<Option<Transaction<'static, Postgres>>>>;

/// Where a mutation's statements go: its transaction, or the pool when the mutation is
/// declared `transactional = false`.
#[derive(Clone, Copy)]
pub struct Tx<'a>(pub(crate) Target<'a>);

#[derive(Clone, Copy)]
pub(crate) enum Target<'a> {
    Transaction(&'a TxCell),
    Pool(&'a PgPool),
}

impl fmt::Debug for Tx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Target::Transaction(_) => f.write_str("Tx(transaction)"),
            Target::Pool(_) => f.write_str("Tx(pool)"),
        }
    }
}

fn finished() -> sqlx::Error {
    sqlx::Error::Protocol("the mutation's transaction has already finished".into())
}

impl<'c> Executor<'c> for Tx<'c> {
    type Database = Postgres;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<PgQueryResult, PgRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        match self.0 {
            Target::Pool(pool) => pool.fetch_many(query),
            Target::Transaction(cell) => async_stream::try_stream! {
                let mut guard = cell.lock().await;
                let tx = guard.as_mut().ok_or_else(finished)?;
                let mut stream = (&mut **tx).fetch_many(query);
                while let Some(step) = stream.try_next().await? {
                    yield step;
                }
            }
            .boxed(),
        }
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<PgRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        match self.0 {
            Target::Pool(pool) => pool.fetch_optional(query),
            Target::Transaction(cell) => async move {
                let mut guard = cell.lock().await;
                let tx = guard.as_mut().ok_or_else(finished)?;
                (&mut **tx).fetch_optional(query).await
            }
            .boxed(),
        }
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [PgTypeInfo],
    ) -> BoxFuture<'e, Result<PgStatement<'q>, sqlx::Error>>
    where
        'c: 'e,
    {
        match self.0 {
            Target::Pool(pool) => pool.prepare_with(sql, parameters),
            Target::Transaction(cell) => async move {
                let mut guard = cell.lock().await;
                let tx = guard.as_mut().ok_or_else(finished)?;
                (&mut **tx).prepare_with(sql, parameters).await
            }
            .boxed(),
        }
    }

    fn describe<'e, 'q: 'e>(
        self,
        sql: &'q str,
    ) -> BoxFuture<'e, Result<Describe<Postgres>, sqlx::Error>>
    where
        'c: 'e,
    {
        match self.0 {
            Target::Pool(pool) => pool.describe(sql),
            Target::Transaction(cell) => async move {
                let mut guard = cell.lock().await;
                let tx = guard.as_mut().ok_or_else(finished)?;
                (&mut **tx).describe(sql).await
            }
            .boxed(),
        }
    }
}
