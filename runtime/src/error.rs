//! The error every handler returns, and how it crosses the wire.

use serde_json::{json, Value};

/// `Result<T, forge::Error>`, what every handler returns.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A handler's failure. The variants a handler writes itself carry a message the caller
/// sees; errors that arrive through `?` from the database, serde or `anyhow` are internal:
/// the caller sees `INTERNAL_ERROR` and a request id, the log gets the cause.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The caller sent something wrong (400).
    #[error("{0}")]
    Validation(String),
    /// One argument or field is wrong (400, with `details.field`).
    #[error("{field}: {message}")]
    InvalidField { field: String, message: String },
    /// No valid credentials (401).
    #[error("{0}")]
    Unauthorized(String),
    /// Credentials that do not allow this (403).
    #[error("{0}")]
    Forbidden(String),
    /// The thing asked for does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// Too many requests (429).
    #[error("{0}")]
    RateLimited(String),
    /// Over a rate limit (429), with how long until a call may pass again: the response
    /// carries `Retry-After` and `details.retry_after_ms`.
    #[error("{message}")]
    Throttled {
        message: String,
        retry_after_ms: u64,
    },
    /// The handler ran out of time (504).
    #[error("{0}")]
    Timeout(String),
    /// The client took too long to send its request (408, code `TIMEOUT`).
    #[error("{0}")]
    RequestTimeout(String),
    /// Something went wrong that the caller cannot fix (500); the message is logged, not sent.
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl Error {
    /// The wire code (`"error": {"code": …}`).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Validation(_) | Error::InvalidField { .. } => "VALIDATION_ERROR",
            _ if self.rejected_data().is_some() => "VALIDATION_ERROR",
            Error::Unauthorized(_) => "UNAUTHORIZED",
            Error::Forbidden(_) => "FORBIDDEN",
            Error::NotFound(_) | Error::Database(sqlx::Error::RowNotFound) => "NOT_FOUND",
            Error::RateLimited(_) | Error::Throttled { .. } => "RATE_LIMITED",
            Error::Timeout(_) | Error::RequestTimeout(_) => "TIMEOUT",
            Error::Internal(_) | Error::Database(_) | Error::Json(_) | Error::Other(_) => {
                "INTERNAL_ERROR"
            }
        }
    }

    /// The HTTP status that goes with [`Error::code`].
    pub fn status(&self) -> u16 {
        if let Error::RequestTimeout(_) = self {
            return 408;
        }
        match self.code() {
            "VALIDATION_ERROR" => 400,
            "UNAUTHORIZED" => 401,
            "FORBIDDEN" => 403,
            "NOT_FOUND" => 404,
            "RATE_LIMITED" => 429,
            "TIMEOUT" => 504,
            _ => 500,
        }
    }

    /// The database's refusal of the data a request carried: SQLSTATE class 22 (a data
    /// exception, such as a NUL byte in text) or 23 (a constraint violation). The client
    /// can fix these, so they are `VALIDATION_ERROR`, not internal.
    fn rejected_data(&self) -> Option<&dyn sqlx::error::DatabaseError> {
        match self {
            Error::Database(sqlx::Error::Database(error))
                if error
                    .code()
                    .is_some_and(|code| code.starts_with("22") || code.starts_with("23")) =>
            {
                Some(&**error)
            }
            _ => None,
        }
    }

    /// Whether the caller may see this error's message. Internal causes can name tables,
    /// hosts or secrets, so they stay in the log.
    pub fn is_internal(&self) -> bool {
        self.code() == "INTERNAL_ERROR"
    }

    /// For [`Error::Throttled`], the `Retry-After` header's value: whole seconds, rounded up.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Error::Throttled { retry_after_ms, .. } => Some(retry_after_ms.div_ceil(1000)),
            _ => None,
        }
    }

    /// The `error` object of the wire envelope.
    pub fn to_wire(&self) -> Value {
        let message = match self {
            _ if self.is_internal() => "internal error".to_owned(),
            Error::Database(sqlx::Error::RowNotFound) => "not found".to_owned(),
            _ => match self.rejected_data() {
                Some(error) => error.message().to_owned(),
                None => self.to_string(),
            },
        };
        let details = match (self, self.rejected_data()) {
            (Error::InvalidField { field, .. }, _) => json!({ "field": field }),
            (Error::Throttled { retry_after_ms, .. }, _) => {
                json!({ "retry_after_ms": retry_after_ms })
            }
            (_, Some(error)) => match error.constraint() {
                Some(constraint) => json!({ "constraint": constraint }),
                None => Value::Null,
            },
            _ => Value::Null,
        };
        json!({ "code": self.code(), "message": message, "details": details })
    }
}

/// The message of a caught panic: `panic!` carries a `&str` or a `String`; anything else
/// has none to show.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_causes_are_not_sent() {
        let error = Error::Database(sqlx::Error::Protocol("password for bob".into()));
        assert_eq!(error.status(), 500);
        assert_eq!(error.to_wire()["message"], "internal error");
    }

    #[test]
    fn a_missing_row_is_not_found() {
        let error = Error::from(sqlx::Error::RowNotFound);
        assert_eq!((error.code(), error.status()), ("NOT_FOUND", 404));
    }

    #[test]
    fn throttled_calls_say_when_to_retry() {
        let error = Error::Throttled {
            message: "too many calls".into(),
            retry_after_ms: 1_200,
        };
        assert_eq!((error.code(), error.status()), ("RATE_LIMITED", 429));
        assert_eq!(error.retry_after_secs(), Some(2));
        assert_eq!(error.to_wire()["details"], json!({"retry_after_ms": 1_200}));
        assert_eq!(Error::RateLimited("x".into()).retry_after_secs(), None);
    }

    #[test]
    fn invalid_fields_name_the_field() {
        let error = Error::InvalidField {
            field: "limit".into(),
            message: "expected i32".into(),
        };
        assert_eq!(
            error.to_wire(),
            json!({"code": "VALIDATION_ERROR", "message": "limit: expected i32", "details": {"field": "limit"}})
        );
    }
}
