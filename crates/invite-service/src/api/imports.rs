//! Audience import: files, the Parsing Service, and the validation report.

use axum::{
    extract::{Multipart, State},
    http::StatusCode,
    Json,
};
use domain::{
    audience::{ImportReport, TargetSource},
    phone::Region,
    task::TaskStatus,
    validation::{FieldError, FieldErrors},
    UserId,
};
use serde_json::{json, Value};
use store::{ImportRequest, RequestMeta};

use crate::{
    api::{
        auth::{AuthUser, CallerToken},
        error::{ApiError, ApiResult},
        query::{self, Query},
        request::{JsonBody, Meta},
        AppState,
    },
    importer::{
        load::{import_parsing_task, load, DraftSource, LoadError, Loaded, ParsingImport, ParsingImportError},
        parsing::{parse_task_id, ParsingFilters},
        read::{self, ReadError, ReadOptions},
        DraftStream, StartError,
    },
    integrations::parsing_service::{Bearer, ParsingServiceClient, UpstreamError},
};

/// A multipart upload: the file and the text fields beside it.
pub struct Upload {
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
    pub fields: std::collections::HashMap<String, String>,
}

/// A `multipart/form-data` body; anything else is a 415 that says what to send.
pub struct Form(Multipart);

impl axum::extract::FromRequest<AppState> for Form {
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &AppState) -> Result<Self, ApiError> {
        Multipart::from_request(request, state).await.map(Form).map_err(|_| {
            ApiError::UnsupportedMediaType(
                "send multipart/form-data with the file in a field named file (e.g. curl -F file=@list.csv)".into(),
            )
        })
    }
}

/// Reads a multipart body, refusing a file above the configured size with 413.
pub async fn read_upload(Form(mut multipart): Form, max_bytes: usize) -> ApiResult<Upload> {
    let mut upload = Upload {
        file_name: None,
        content_type: None,
        bytes: Vec::new(),
        fields: Default::default(),
    };
    let mut has_file = false;
    let malformed = |e: axum::extract::multipart::MultipartError| -> ApiError {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large(max_bytes)
        } else {
            FieldError::new(
                &["body"],
                "value_error",
                format!("the multipart body could not be read: {}", e.body_text()),
            )
            .into()
        }
    };
    while let Some(mut field) = multipart.next_field().await.map_err(malformed)? {
        let name = field.name().unwrap_or_default().to_string();
        if name == "file" {
            has_file = true;
            upload.file_name = field.file_name().map(str::to_string);
            upload.content_type = field.content_type().map(str::to_string);
            while let Some(chunk) = field.chunk().await.map_err(malformed)? {
                if upload.bytes.len() + chunk.len() > max_bytes {
                    return Err(too_large(max_bytes));
                }
                upload.bytes.extend_from_slice(&chunk);
            }
        } else {
            let text = field.text().await.map_err(malformed)?;
            upload.fields.insert(name, text);
        }
    }
    if !has_file {
        return Err(FieldError::missing(&["body", "file"]).into());
    }
    Ok(upload)
}

fn too_large(max_bytes: usize) -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "the file is larger than the limit of {max_bytes} bytes ({:.1} MiB)",
        max_bytes as f64 / (1024.0 * 1024.0)
    ))
}

fn required_id(v: Option<&str>, loc: &[&str], errors: &mut FieldErrors) -> Option<i64> {
    let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) else {
        errors.push(FieldError::missing(loc));
        return None;
    };
    errors.take(query::positive_id(v, loc))
}

fn flag(v: Option<&Value>, loc: &[&str], errors: &mut FieldErrors) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "" | "false" | "0" | "no" | "off" => false,
            "true" | "1" | "yes" | "on" => true,
            _ => {
                errors.push(FieldError::new(
                    loc,
                    "bool_parsing",
                    format!("{} must be true or false", loc[loc.len() - 1]),
                ));
                false
            }
        },
        Some(_) => {
            errors.push(FieldError::new(
                loc,
                "bool_type",
                format!("{} must be true or false", loc[loc.len() - 1]),
            ));
            false
        }
    }
}

fn region_field(v: Option<&str>, default: Region, errors: &mut FieldErrors) -> Region {
    match v.map(str::trim).filter(|v| !v.is_empty()) {
        None => default,
        Some(code) => Region::parse(code).unwrap_or_else(|| {
            errors.push(FieldError::new(
                &["body", "phone_region"],
                "value_error",
                format!("phone_region must be an ISO country code such as RU, KZ or US (got {code:?})"),
            ));
            default
        }),
    }
}

/// Checks, before calling the Parsing Service, that the task exists and still takes targets (the store
/// checks again inside its transaction).
async fn editable_task(state: &AppState, user: UserId, task_id: i64) -> ApiResult<()> {
    let task = state
        .store
        .get_task(user, task_id)
        .await?
        .ok_or(ApiError::task_not_found(task_id))?;
    locked(task_id, task.status).map_or(Ok(()), Err)
}

fn locked(task_id: i64, status: TaskStatus) -> Option<ApiError> {
    (status == TaskStatus::InProgress || status.is_finished())
        .then(|| ApiError::Conflict(LoadError::Locked { task_id, status }.to_string()))
}

pub fn read_error(e: ReadError) -> ApiError {
    match e {
        ReadError::UnknownFormat => ApiError::UnsupportedMediaType(e.to_string()),
        ReadError::TooLargeUnpacked { .. } => ApiError::PayloadTooLarge(e.to_string()),
        ReadError::NoSuchSheet { .. } => FieldError::new(&["body", "sheet"], "value_error", e.to_string()).into(),
        ReadError::Malformed(_) | ReadError::Empty => {
            FieldError::new(&["body", "file"], "value_error", e.to_string()).into()
        }
    }
}

/// Starts turning an uploaded file into drafts: the format read, the layout found (a row stream
/// borrows the upload, so nothing holds the whole list).
pub fn start_drafts<'a>(
    upload: &'a Upload,
    sheet: Option<String>,
    max_unpacked: u64,
    mapping: Option<&Value>,
    region: Region,
) -> ApiResult<DraftStream<'a>> {
    let options = ReadOptions {
        sheet,
        max_uncompressed_bytes: max_unpacked,
    };
    let stream = read::read_stream(
        upload.file_name.as_deref(),
        upload.content_type.as_deref(),
        &upload.bytes,
        &options,
    )
    .map_err(read_error)?;
    DraftStream::start(stream, mapping, region).map_err(|e| match e {
        StartError::Read(e) => read_error(e),
        StartError::Layout(e) => e.into(),
    })
}

/// Runs an import in one store transaction and shapes the answer.
async fn store_import(
    state: &AppState,
    user: UserId,
    meta: &RequestMeta,
    request: ImportRequest,
    source: DraftSource<'_>,
    limit_loc: &[&str],
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (task_id, dry_run) = (request.task_id, request.dry_run);
    let loaded = load(&state.store, user, request, source, state.clock.now(), meta)
        .await
        .map_err(|e| load_error(e, limit_loc))?;
    Ok(imported(task_id, dry_run, loaded))
}

fn imported(task_id: i64, dry_run: bool, loaded: Loaded) -> (StatusCode, Json<Value>) {
    let status = if dry_run { StatusCode::OK } else { StatusCode::CREATED };
    (
        status,
        Json(import_json(loaded.import_id, task_id, dry_run, &loaded.report)),
    )
}

/// An import the store refused; going over the task's limit is reported at `limit_loc`.
fn load_error(e: LoadError, limit_loc: &[&str]) -> ApiError {
    match e {
        LoadError::NotFound(task_id) => ApiError::task_not_found(task_id),
        LoadError::Locked { .. } => ApiError::Conflict(e.to_string()),
        LoadError::TooManyTargets { .. } => FieldError::new(limit_loc, "value_error", e.to_string()).into(),
        LoadError::Read(e) => read_error(e),
        LoadError::Store(e) => e.into(),
    }
}

fn import_json(import_id: i64, task_id: i64, dry_run: bool, report: &ImportReport) -> Value {
    json!({"import_id": import_id, "task_id": task_id, "dry_run": dry_run, "report": report})
}

/// `POST /import/file` (multipart: `file`, `task_id`, optional `mapping`, `dry_run`, `sheet`, `phone_region`).
pub async fn file(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Meta(meta): Meta,
    form: Form,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let upload = read_upload(form, state.import.max_upload_bytes).await?;
    let mut errors = FieldErrors::default();
    let task_id = required_id(
        upload.fields.get("task_id").map(String::as_str),
        &["body", "task_id"],
        &mut errors,
    );
    let dry_run = flag(
        upload.fields.get("dry_run").map(|v| Value::String(v.clone())).as_ref(),
        &["body", "dry_run"],
        &mut errors,
    );
    let region = region_field(
        upload.fields.get("phone_region").map(String::as_str),
        state.import.phone_region,
        &mut errors,
    );
    let mapping = match upload.fields.get("mapping").map(|m| m.trim()).filter(|m| !m.is_empty()) {
        None => None,
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(v) => Some(v),
            Err(e) => {
                errors.push(FieldError::new(
                    &["body", "mapping"],
                    "json_invalid",
                    format!("mapping is not valid JSON: {e}"),
                ));
                None
            }
        },
    };
    let sheet = upload
        .fields
        .get("sheet")
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let task_id = errors.into_result(|| task_id)?.expect("no errors means a task id");
    // As stored (the column holds 255 characters).
    let file_name = upload
        .file_name
        .as_ref()
        .map(|n| n.chars().take(255).collect::<String>());
    let drafts = start_drafts(
        &upload,
        sheet,
        state.import.xlsx_max_unpacked_bytes,
        mapping.as_ref(),
        region,
    )?;
    let request = ImportRequest {
        task_id,
        source: TargetSource::FileUpload,
        file_name,
        dry_run,
        max_targets: state.import.max_targets_per_task,
    };
    store_import(
        &state,
        user,
        &meta,
        request,
        DraftSource::File(drafts),
        &["body", "file"],
    )
    .await
}

/// `POST /import/parsing` (`task_id`, `parsing_task_id`, optional `skip_bots` (default true), `dry_run`).
pub async fn parsing(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    CallerToken(token): CallerToken,
    Meta(meta): Meta,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut errors = FieldErrors::default();
    let task_id = match body.get("task_id") {
        Some(Value::Number(n)) => required_id(Some(&n.to_string()), &["body", "task_id"], &mut errors),
        Some(Value::String(s)) => required_id(Some(s), &["body", "task_id"], &mut errors),
        _ => required_id(None, &["body", "task_id"], &mut errors),
    };
    let parsing_task_id = match body.get("parsing_task_id").filter(|v| !v.is_null()) {
        None => {
            errors.push(FieldError::missing(&["body", "parsing_task_id"]));
            None
        }
        Some(v) => parse_task_id(v, "parsing_task_id")
            .map_err(|msg| errors.push(FieldError::new(&["body", "parsing_task_id"], "value_error", msg)))
            .ok(),
    };
    let skip_bots = body.get("skip_bots").is_none_or(Value::is_null)
        || flag(body.get("skip_bots"), &["body", "skip_bots"], &mut errors);
    let dry_run = flag(body.get("dry_run"), &["body", "dry_run"], &mut errors);
    let region = region_field(
        body.get("phone_region").and_then(Value::as_str),
        state.import.phone_region,
        &mut errors,
    );
    let (task_id, parsing_task_id) = errors.into_result(|| (task_id, parsing_task_id))?;
    let (task_id, parsing_task_id) = (task_id.expect("validated"), parsing_task_id.expect("validated"));
    editable_task(&state, user, task_id).await?;
    let client = parsing_client(&state)?;
    let job = ParsingImport {
        user,
        task_id,
        parsing_task_id: &parsing_task_id,
        filters: ParsingFilters { skip_bots },
        region,
        dry_run,
        max_targets: state.import.max_targets_per_task,
    };
    let loaded = import_parsing_task(&state.store, &state.clock, client, Bearer::Caller(&token), job, &meta)
        .await
        .map_err(|e| match e {
            ParsingImportError::Upstream(e) => {
                tracing::warn!(error = %e, parsing_task_id, "Parsing Service import failed");
                match e {
                    UpstreamError::NotFound(_) => ApiError::NotFound(e.to_string()),
                    UpstreamError::Unavailable(_) => ApiError::Unavailable(e.to_string()),
                    UpstreamError::TooMany(_) => {
                        FieldError::new(&["body", "parsing_task_id"], "value_error", e.to_string()).into()
                    }
                    UpstreamError::Refused(_) | UpstreamError::BadResponse(_) => ApiError::BadGateway(e.to_string()),
                }
            }
            ParsingImportError::Load(e) => load_error(e, &["body", "parsing_task_id"]),
        })?;
    Ok(imported(task_id, dry_run, loaded))
}

/// The Parsing Service's client; 503 naming the variable when it is not configured.
fn parsing_client(state: &AppState) -> ApiResult<&ParsingServiceClient> {
    state.parsing.as_deref().ok_or_else(|| {
        ApiError::Unavailable("the Parsing Service is not configured (PARSING_SERVICE_URL is unset)".into())
    })
}

/// `GET /import/validate?task_id=…[&import_id=…]`: the report of the task's newest (or the named) import.
pub async fn validate(State(state): State<AppState>, AuthUser(user): AuthUser, q: Query) -> ApiResult<Json<Value>> {
    let mut errors = FieldErrors::default();
    let task_id = required_id(q.get("task_id"), &["query", "task_id"], &mut errors);
    let import_id = q
        .get("import_id")
        .and_then(|v| required_id(Some(v), &["query", "import_id"], &mut errors));
    let task_id = errors.into_result(|| task_id)?.expect("validated");
    state
        .store
        .get_task(user, task_id)
        .await?
        .ok_or(ApiError::task_not_found(task_id))?;
    let record = state.store.get_import(user, task_id, import_id).await?.ok_or_else(|| {
        ApiError::NotFound(match import_id {
            Some(id) => format!("task {task_id} has no import {id}"),
            None => format!("task {task_id} has no import yet; upload a file with POST /import/file (dry_run=true to only check it)"),
        })
    })?;
    Ok(Json(json!({
        "import_id": record.id,
        "task_id": record.task_id,
        "source": record.source,
        "file_name": record.file_name,
        "dry_run": record.dry_run,
        "request_id": record.request_id,
        "created_at": record.created_at,
        "report": record.report,
    })))
}
