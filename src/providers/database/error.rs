//! Failures of the database provider and how they map onto the gateway's error table.

use rusqlite::ErrorCode;

/// Error messages quote SQLite, which may quote the caller's SQL; keep them short.
const MAX_MESSAGE_CHARS: usize = 200;

/// A failed call. Messages are meant for the caller and never carry more than a short excerpt
/// of the SQL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DbError {
    /// Bad SQL (syntax, unknown table or column, more than one statement, constraint failure)
    /// or bad parameters.
    #[error("invalid query: {0}")]
    Invalid(String),
    /// The statement compiled but is not permitted in this mode.
    #[error("query refused: {0}")]
    Refused(String),
    /// `get_schema` on a table or view that does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The deadline passed (long query, or the writer stayed busy).
    #[error("query exceeded the time limit")]
    Timeout,
    /// The database itself failed (I/O, corruption, cannot open).
    #[error("database error: {0}")]
    Internal(String),
}

/// The gateway error-table row a [`DbError`] maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbErrorKind {
    /// 422 `VALIDATION_ERROR`.
    Validation,
    /// 403 `FORBIDDEN`.
    Forbidden,
    /// 404 `NOT_FOUND`.
    NotFound,
    /// 504 `PROVIDER_TIMEOUT`.
    ProviderTimeout,
    /// 502 `PROVIDER_ERROR`.
    Provider,
}

impl DbErrorKind {
    /// The HTTP status.
    pub fn status(self) -> u16 {
        match self {
            Self::Validation => 422,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::ProviderTimeout => 504,
            Self::Provider => 502,
        }
    }

    /// The DESIGN error code string.
    pub fn code(self) -> &'static str {
        match self {
            Self::Validation => "VALIDATION_ERROR",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::ProviderTimeout => "PROVIDER_TIMEOUT",
            Self::Provider => "PROVIDER_ERROR",
        }
    }
}

impl DbError {
    /// Which gateway error this becomes.
    pub fn kind(&self) -> DbErrorKind {
        match self {
            Self::Invalid(_) => DbErrorKind::Validation,
            Self::Refused(_) => DbErrorKind::Forbidden,
            Self::NotFound(_) => DbErrorKind::NotFound,
            Self::Timeout => DbErrorKind::ProviderTimeout,
            Self::Internal(_) => DbErrorKind::Provider,
        }
    }
}

/// Maps a SQLite failure onto the gateway's error table. `denied` is the authorizer's wording
/// of a refusal logged since the failing call began: a denial always makes compilation fail,
/// so it explains the failure whatever code SQLite reports (a denied function comes back as
/// a plain SQLITE_ERROR).
pub(super) fn classify(err: rusqlite::Error, denied: Option<String>) -> DbError {
    use rusqlite::Error as E;
    if let Some(reason) = denied {
        return DbError::Refused(clip(&reason));
    }
    match err {
        E::SqliteFailure(e, msg) => by_code(e.code, msg.unwrap_or_else(|| e.to_string())),
        // Its Display would repeat the whole SQL; the offset is enough to find the spot.
        E::SqlInputError { error, msg, offset, .. } => by_code(error.code, format!("{msg} (at byte {offset})")),
        E::MultipleStatement => DbError::Invalid("exactly one SQL statement is allowed per call".into()),
        E::NulError(_) => DbError::Invalid("the SQL contains a NUL character".into()),
        e @ (E::InvalidParameterCount(..) | E::InvalidParameterName(_) | E::ToSqlConversionFailure(_)) => {
            DbError::Invalid(clip(&e.to_string()))
        }
        e => DbError::Internal(clip(&e.to_string())),
    }
}

fn by_code(code: ErrorCode, msg: String) -> DbError {
    match code {
        ErrorCode::AuthorizationForStatementDenied => DbError::Refused(clip(&msg)),
        ErrorCode::ReadOnly => DbError::Refused("the database is read-only in this mode".into()),
        ErrorCode::OperationInterrupted | ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => DbError::Timeout,
        // SQLITE_ERROR is SQLite's "bad SQL" (syntax, no such table/column, bad function use).
        ErrorCode::Unknown
        | ErrorCode::ConstraintViolation
        | ErrorCode::TooBig
        | ErrorCode::TypeMismatch
        | ErrorCode::ParameterOutOfRange => DbError::Invalid(clip(&msg)),
        _ => DbError::Internal(clip(&msg)),
    }
}

/// An error mapper for setup steps, which are never the caller's fault.
pub(super) fn startup(step: &'static str) -> impl Fn(rusqlite::Error) -> DbError {
    move |e| DbError::Internal(clip(&format!("could not {step}: {e}")))
}

/// Shortens `s` to [`MAX_MESSAGE_CHARS`] characters.
pub(super) fn clip(s: &str) -> String {
    match s.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_owned(),
    }
}
