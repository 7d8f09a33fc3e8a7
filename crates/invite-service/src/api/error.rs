//! Every error the API answers with, mapped to HTTP in this one place. Bodies are shaped as the
//! platform's FastAPI services shape them: `{"detail": "..."}`, and for validation
//! `{"detail": [{"loc": [...], "msg": "...", "type": "..."}]}`.

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use domain::validation::{FieldError, FieldErrors};
use serde_json::json;
use store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("validation failed: {0}")]
    Validation(FieldErrors),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A service this request depends on cannot be reached (503).
    #[error("{0}")]
    Unavailable(String),
    /// A service this request depends on answered wrongly (502).
    #[error("{0}")]
    BadGateway(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ApiError {
    pub fn task_not_found(id: i64) -> Self {
        Self::NotFound(format!("task {id} not found"))
    }
}

impl From<FieldErrors> for ApiError {
    fn from(e: FieldErrors) -> Self {
        Self::Validation(e)
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        Self::Validation(e.into())
    }
}

fn detail(status: StatusCode, text: String) -> Response {
    (status, Json(json!({ "detail": text }))).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Validation(errors) => {
                let items: Vec<_> = errors
                    .0
                    .into_iter()
                    .map(|e| json!({ "loc": e.loc, "msg": e.msg, "type": e.kind }))
                    .collect();
                (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({ "detail": items }))).into_response()
            }
            ApiError::Unauthorized(text) => {
                let mut response = detail(StatusCode::UNAUTHORIZED, text);
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                response
            }
            ApiError::NotFound(text) => detail(StatusCode::NOT_FOUND, text),
            ApiError::Conflict(text) => detail(StatusCode::CONFLICT, text),
            ApiError::PayloadTooLarge(text) => detail(StatusCode::PAYLOAD_TOO_LARGE, text),
            ApiError::UnsupportedMediaType(text) => detail(StatusCode::UNSUPPORTED_MEDIA_TYPE, text),
            ApiError::Unavailable(text) => detail(StatusCode::SERVICE_UNAVAILABLE, text),
            ApiError::BadGateway(text) => detail(StatusCode::BAD_GATEWAY, text),
            ApiError::Store(e) => {
                // The full error goes to the log with the request id; the client learns only the kind.
                tracing::error!(error = %e, "store error");
                match e {
                    StoreError::Duplicate(_) => detail(StatusCode::CONFLICT, "it exists already".into()),
                    StoreError::Unavailable(_) | StoreError::SchemaOutdated(_) => detail(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the database is unavailable; try again shortly".into(),
                    ),
                    _ => detail(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into()),
                }
            }
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
