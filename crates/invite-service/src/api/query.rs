//! Query-string parameters, read so that each bad one is reported with its name.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, RawQuery};
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use domain::{
    task_input::parse_datetime,
    validation::{FieldError, FieldErrors},
};
use serde_json::Value;
use store::{Page, PageRequest};

use crate::api::{error::ApiError, AppState};

pub const DEFAULT_PAGE_SIZE: u32 = 20;
pub const MAX_PAGE_SIZE: u32 = 100;

pub struct Query(HashMap<String, String>);

impl FromRequestParts<AppState> for Query {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let RawQuery(raw) = RawQuery::from_request_parts(parts, state)
            .await
            .unwrap_or(RawQuery(None));
        let raw = raw.unwrap_or_default();
        Ok(Query(
            url::form_urlencoded::parse(raw.as_bytes()).into_owned().collect(),
        ))
    }
}

impl Query {
    /// A parameter's value; an empty value counts as absent, as browsers send empty form fields.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    pub fn integer(&self, name: &'static str, default: u32, min: u32, max: u32, errors: &mut FieldErrors) -> u32 {
        let Some(v) = self.get(name) else { return default };
        match v.parse::<u32>() {
            Ok(n) if (min..=max).contains(&n) => n,
            _ => {
                errors.push(FieldError::new(
                    &["query", name],
                    "int_parsing",
                    format!("{name} must be a whole number from {min} to {max} (got {v:?})"),
                ));
                default
            }
        }
    }

    pub fn page(&self, errors: &mut FieldErrors) -> PageRequest {
        PageRequest {
            page: self.integer("page", 1, 1, 1_000_000, errors),
            page_size: self.integer("page_size", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE, errors),
        }
    }

    /// One of a closed set of words; `parse` accepts any case and the documented aliases.
    pub fn word<T>(
        &self,
        name: &'static str,
        parse: impl Fn(&str) -> Option<T>,
        names: &[&str],
        errors: &mut FieldErrors,
    ) -> Option<T> {
        let v = self.get(name)?;
        let parsed = parse(v);
        if parsed.is_none() {
            errors.push(FieldError::new(
                &["query", name],
                "enum",
                format!("{name} must be one of {} (got {v:?})", names.join(", ")),
            ));
        }
        parsed
    }

    pub fn datetime(&self, name: &'static str, errors: &mut FieldErrors) -> Option<DateTime<Utc>> {
        let v = self.get(name)?;
        errors.take(parse_datetime(&Value::String(v.to_string()), &["query", name]))
    }
}

/// An id in a path, query or form field: a positive integer, or a 422 naming the field.
pub fn positive_id(raw: &str, loc: &[&str]) -> Result<i64, FieldError> {
    let raw = raw.trim();
    raw.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(|| {
        let name = loc.last().copied().unwrap_or("id");
        FieldError::new(
            loc,
            "int_parsing",
            format!("{name} must be a positive integer (got {raw:?})"),
        )
    })
}

/// The list envelope of DESIGN §7.
pub fn page_json<T>(page: &Page<T>, item: impl Fn(&T) -> Value) -> Value {
    let size = i64::from(page.request.page_size);
    let total_pages = (page.total + size - 1) / size;
    let current = i64::from(page.request.page);
    serde_json::json!({
        "items": page.items.iter().map(item).collect::<Vec<_>>(),
        "total": page.total,
        "page": current,
        "page_size": size,
        "total_pages": total_pages,
        "has_next": current < total_pages,
        "has_prev": current > 1,
    })
}
