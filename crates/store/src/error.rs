use thiserror::Error;

/// What can go wrong in the store. Messages never carry connection strings or row contents.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database cannot be reached or refused the operation.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A stored row cannot be read back into the domain (a bug or a manual edit).
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// The schema is behind this build; `invite-service migrate` brings it up to date.
    #[error("the database schema is not up to date ({0} migration(s) pending); run `invite-service migrate`")]
    SchemaOutdated(usize),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("unsupported DATABASE_URL scheme {0:?}: use sqlite:, postgres: or postgresql:")]
    UnsupportedUrl(String),
    /// A row with this key exists already (a unique constraint).
    #[error("already exists: {0}")]
    Duplicate(String),
    /// The database refused a value (a constraint or a length): a bug in validation, not an outage.
    #[error("the database refused the change: {0}")]
    Refused(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) | sqlx::Error::ColumnNotFound(_) => {
                StoreError::Corrupt(e.to_string())
            }
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Duplicate(db.constraint().unwrap_or("unique key").to_string())
            }
            sqlx::Error::Database(db)
                if db.is_check_violation()
                    || db.is_foreign_key_violation()
                    || db.code().is_some_and(|c| c.starts_with("22")) =>
            {
                StoreError::Refused(db.message().to_string())
            }
            // The driver's own text: it names the failing operation, never the URL or its password.
            other => StoreError::Unavailable(other.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migration(e.to_string())
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
