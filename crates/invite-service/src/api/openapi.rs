//! The OpenAPI 3.1 document of the API, served at `/api/v1/invite/openapi.json`. A test checks that
//! every route the router serves is described here.

use serde_json::{json, Value};

fn error_responses(codes: &[&str]) -> Value {
    let mut out = serde_json::Map::new();
    for code in codes {
        let (description, schema) = match *code {
            "401" => ("Missing, malformed, expired or wrongly signed token", "HTTPError"),
            "404" => ("No such task among the caller's own", "HTTPError"),
            "409" => ("The task's status forbids this", "HTTPError"),
            "413" => ("Request body too large", "HTTPError"),
            "415" => ("Content-Type is not application/json", "HTTPError"),
            "422" => (
                "Validation error: each item names its field in `loc`",
                "HTTPValidationError",
            ),
            "503" => ("The database is unavailable", "HTTPError"),
            _ => ("Error", "HTTPError"),
        };
        out.insert(
            code.to_string(),
            json!({"description": description, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}}),
        );
    }
    Value::Object(out)
}

fn with_errors(mut ok: Value, codes: &[&str]) -> Value {
    if let (Some(map), Value::Object(errors)) = (ok.as_object_mut(), error_responses(codes)) {
        map.extend(errors);
    }
    ok
}

fn json_ok(code: &str, description: &str, schema: &str) -> Value {
    json!({ code: {"description": description, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}}})
}

fn query_param(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema})
}

fn task_id_param() -> Value {
    json!({"name": "task_id", "in": "path", "required": true, "description": "The task's id", "schema": {"type": "integer", "minimum": 1}})
}

fn account_id_param() -> Value {
    json!({"name": "account_id", "in": "path", "required": true, "description": "The account's id", "schema": {"type": "string"}})
}

fn page_params() -> Vec<Value> {
    vec![
        query_param(
            "page",
            "1-based page number",
            json!({"type": "integer", "minimum": 1, "default": 1}),
        ),
        query_param(
            "page_size",
            "Items per page",
            json!({"type": "integer", "minimum": 1, "maximum": 100, "default": 20}),
        ),
    ]
}

fn task_fields(required: bool) -> Value {
    let nullable = |t: &str| json!([t, "null"]);
    let mut props = json!({
        "name": {"type": "string", "minLength": 1, "maxLength": 255, "description": "Shown to the user; trimmed"},
        "description": {"type": nullable("string"), "maxLength": 1000},
        "platform": {"type": "string", "enum": ["telegram", "instagram", "whatsapp"], "default": "telegram",
                     "description": "Any case. instagram and whatsapp answer 422 \"platform not supported yet\""},
        "action_type": {"type": "string", "enum": ["invite_to_group", "send_message"],
                        "description": "Alias: settings.invite_type = group_invite | message"},
        "target_channel": {"type": nullable("string"),
                           "description": "Required for invites: @name, name, https://t.me/name, t.me/+hash or t.me/joinchat/hash invite links, t.me/c/<id>, or a numeric chat id (also as an integer). Alias: settings.group_id. Returned normalised."},
        "message_template": {"type": nullable("string"), "maxLength": 4096,
                             "description": "Required for messages. Placeholders {username}, {first_name}, {last_name}; {{ and }} write literal braces. Alias: invite_message"},
        "priority": {"type": "string", "enum": ["HIGH", "NORMAL", "LOW"], "default": "NORMAL",
                     "description": "Any case; MEDIUM = NORMAL, URGENT = HIGH"},
        "scheduled_start": {"type": nullable("string"), "format": "date-time",
                            "description": "Must be in the future (at most 365 days ahead); without an offset it is UTC"},
        "settings": {"type": "object", "description": "Free JSON object, at most 16 KiB. `parsing_task_id` (1–64 letters, digits, '-' or '_'; needs PARSING_SERVICE_URL, else 503) names a Parsing Service task whose results are imported as the audience when the task starts, once, with the service's own JWT", "additionalProperties": true}
    });
    if required {
        props["status"] =
            json!({"type": "string", "enum": ["PENDING"], "description": "Optional; a new task is always PENDING"});
    }
    props
}

pub fn document() -> Value {
    let task_paths_errors = ["401", "404", "422", "503"];
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Invite Service API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Invite and direct-message campaigns over users' own messenger accounts.\n\nAuthenticate with `Authorization: Bearer <JWT>` (HS256). The user id comes from the token's user_id claim (or a numeric sub). Another user's task answers 404. Errors are {\"detail\": \"...\"}, validation errors {\"detail\": [{\"loc\", \"msg\", \"type\"}]}."
        },
        "tags": [
            {"name": "tasks", "description": "Campaign management"},
            {"name": "audience", "description": "Importing targets, the validation report, a task's targets"},
            {"name": "do-not-contact", "description": "People who must never be contacted"},
            {"name": "accounts", "description": "The caller's messenger accounts, their standing and limits"},
            {"name": "reports", "description": "A task's status and completion estimate, statistics, report and execution log"},
            {"name": "audit", "description": "The caller's own audit trail"},
            {"name": "service", "description": "Health and documentation"}
        ],
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "paths": {
            "/api/v1/invite/health": {
                "get": {
                    "tags": ["service"], "summary": "Health check", "security": [],
                    "description": "No authentication. 503 when the database does not answer within 2 s.",
                    "responses": with_errors(json_ok("200", "Service and database answer", "Health"), &["503"])
                }
            },
            "/api/v1/invite/tasks": {
                "post": {
                    "tags": ["tasks"], "summary": "Create a task",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TaskCreate"}}}},
                    "responses": with_errors(json_ok("201", "Created; Location names the new task", "Task"), &["401", "413", "415", "422", "503"])
                },
                "get": {
                    "tags": ["tasks"], "summary": "List the caller's tasks",
                    "parameters": page_params().into_iter().chain([
                        query_param("status", "One or more statuses, comma-separated, any case", json!({"type": "string", "example": "PENDING,PAUSED"})),
                        query_param("platform", "Platform", json!({"type": "string", "enum": ["telegram", "instagram", "whatsapp"]})),
                        query_param("priority", "Priority (MEDIUM = NORMAL)", json!({"type": "string", "enum": ["HIGH", "NORMAL", "LOW"]})),
                        query_param("name", "Case-insensitive substring of the name, any script", json!({"type": "string", "maxLength": 255})),
                        query_param("created_from", "Created at or after (ISO 8601)", json!({"type": "string", "format": "date-time"})),
                        query_param("created_to", "Created at or before (ISO 8601)", json!({"type": "string", "format": "date-time"})),
                        query_param("sort_by", "Sort field", json!({"type": "string", "enum": ["created_at", "updated_at", "name", "priority", "status"], "default": "created_at"})),
                        query_param("sort_order", "Sort direction", json!({"type": "string", "enum": ["asc", "desc"], "default": "desc"})),
                    ]).collect::<Vec<_>>(),
                    "responses": with_errors(json_ok("200", "One page of tasks", "TaskList"), &["401", "422", "503"])
                }
            },
            "/api/v1/invite/tasks/{task_id}": {
                "get": {
                    "tags": ["tasks"], "summary": "Get a task", "parameters": [task_id_param()],
                    "responses": with_errors(json_ok("200", "The task", "Task"), &task_paths_errors)
                },
                "put": {
                    "tags": ["tasks"], "summary": "Update a task",
                    "description": "Fields left out keep their values; null clears an optional field. PENDING: any field. PAUSED: only name, description and priority (409 naming the field). IN_PROGRESS or finished: 409 naming the status.",
                    "parameters": [task_id_param()],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TaskUpdate"}}}},
                    "responses": with_errors(json_ok("200", "The updated task", "Task"), &["401", "404", "409", "413", "415", "422", "503"])
                },
                "delete": {
                    "tags": ["tasks"], "summary": "Delete a task",
                    "description": "A running (IN_PROGRESS) task must be cancelled first (409).",
                    "parameters": [task_id_param()],
                    "responses": with_errors(json!({"204": {"description": "Deleted"}}), &["401", "404", "409", "422", "503"])
                }
            },
            "/api/v1/invite/tasks/{task_id}/start": {
                "post": {
                    "tags": ["tasks"], "summary": "Start a task",
                    "description": "PENDING → IN_PROGRESS. 409 (naming the reason) when the task has no targets, the user has no usable account on its platform, or already runs the most tasks allowed (INVITE_MAX_RUNNING_TASKS). With a `scheduled_start` in the future the task stays PENDING with reason \"scheduled for …\" and starts by itself then (not when more than INVITE_START_LATENESS_MINUTES late). A task with `settings.parsing_task_id` whose audience was not imported yet imports it from the Parsing Service as it starts (a scheduled one at its time; while the service cannot answer it stays PENDING with the reason and tries again every minute); 503/502 when the service cannot answer or answers wrongly, 409 when the parsing task does not exist. 409 names the current status when the move is not allowed from it.",
                    "parameters": [task_id_param()],
                    "responses": with_errors(json_ok("200", "The task after the move", "Task"), &["401", "404", "409", "422", "502", "503"])
                }
            },
            "/api/v1/invite/tasks/{task_id}/pause": {
                "post": {
                    "tags": ["tasks"], "summary": "Pause a running task",
                    "description": "IN_PROGRESS → PAUSED. New actions stop at once in every process; an action in flight finishes and is recorded. 409 names the current status when the move is not allowed from it.",
                    "parameters": [task_id_param()],
                    "responses": with_errors(json_ok("200", "The task after the move", "Task"), &["401", "404", "409", "422", "503"])
                }
            },
            "/api/v1/invite/tasks/{task_id}/resume": {
                "post": {
                    "tags": ["tasks"], "summary": "Resume a paused task",
                    "description": "PAUSED → IN_PROGRESS (also after a circuit breaker paused it). 409 names the current status when the move is not allowed from it.",
                    "parameters": [task_id_param()],
                    "responses": with_errors(json_ok("200", "The task after the move", "Task"), &["401", "404", "409", "422", "503"])
                }
            },
            "/api/v1/invite/tasks/{task_id}/cancel": {
                "post": {
                    "tags": ["tasks"], "summary": "Cancel a task",
                    "description": "PENDING, IN_PROGRESS or PAUSED → CANCELLED; targets not yet reached stay as they are. 409 names the current status when the move is not allowed from it.",
                    "parameters": [task_id_param()],
                    "responses": with_errors(json_ok("200", "The task after the move", "Task"), &["401", "404", "409", "422", "503"])
                }
            },
            "/api/v1/invite/import/file": {
                "post": {
                    "tags": ["audience"], "summary": "Import targets from a file",
                    "description": "CSV/TSV/TXT (delimiter and encoding detected: UTF-8 with or without BOM, UTF-16, Windows-1251), XLSX (first sheet or `sheet`; the header may sit below title rows), or JSON (an array of strings or objects, or an object holding one under users/items/data/results). Columns are detected by header names (English and Russian) or content; the report says which column became what and why, and `mapping` corrects it. Duplicates (in the file and in the task) and do-not-contact entries are left out. One transaction: on any error nothing is stored. 201 (200 for a dry run).",
                    "requestBody": {"required": true, "content": {"multipart/form-data": {"schema": {"$ref": "#/components/schemas/FileImport"}}}},
                    "responses": with_errors(json_ok("201", "Imported; the report", "ImportResult"), &["401", "404", "409", "413", "415", "422", "503"])
                }
            },
            "/api/v1/invite/import/parsing": {
                "post": {
                    "tags": ["audience"], "summary": "Import targets from a Parsing Service task",
                    "description": "Reads the parsing task's results page by page with the caller's token. Usernames and phones become identifiers; ids are kept as hints. 502/503 name the Parsing Service when it fails.",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ParsingImport"}}}},
                    "responses": with_errors(json_ok("201", "Imported; the report", "ImportResult"), &["401", "404", "409", "422", "502", "503"])
                }
            },
            "/api/v1/invite/import/validate": {
                "get": {
                    "tags": ["audience"], "summary": "The validation report of a task's newest (or a named) import",
                    "parameters": [
                        {"name": "task_id", "in": "query", "required": true, "schema": {"type": "integer", "minimum": 1}},
                        query_param("import_id", "A particular import", json!({"type": "integer", "minimum": 1}))
                    ],
                    "responses": with_errors(json_ok("200", "The import and its report", "ImportResult"), &["401", "404", "422", "503"])
                }
            },
            "/api/v1/invite/tasks/{task_id}/targets": {
                "get": {
                    "tags": ["audience"], "summary": "A task's targets",
                    "parameters": (target_list_params()),
                    "responses": with_errors(json_ok("200", "One page of targets", "TargetList"), &task_paths_errors)
                },
                "delete": {
                    "tags": ["audience"], "summary": "Remove targets from a task that has not started",
                    "parameters": [
                        task_id_param(),
                        query_param("ids", "Comma-separated target ids", json!({"type": "string", "example": "4,5,6"})),
                        query_param("all", "true to remove every target", json!({"type": "boolean"}))
                    ],
                    "responses": with_errors(json!({"200": {"description": "{\"deleted\": N}"}}), &["401", "404", "409", "422", "503"])
                }
            },
            "/api/v1/invite/tasks/{task_id}/targets/{target_id}": {
                "delete": {
                    "tags": ["audience"], "summary": "Remove one target from a task that has not started",
                    "parameters": [task_id_param(), {"name": "target_id", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 1}}],
                    "responses": with_errors(json!({"204": {"description": "Removed"}}), &["401", "404", "409", "422", "503"])
                }
            },
            "/api/v1/invite/do-not-contact": {
                "get": {
                    "tags": ["do-not-contact"], "summary": "The caller's do-not-contact list", "parameters": page_params(),
                    "responses": with_errors(json_ok("200", "One page of entries", "DoNotContactList"), &["401", "422", "503"])
                },
                "post": {
                    "tags": ["do-not-contact"], "summary": "Add people to the do-not-contact list",
                    "description": "Each entry is a username, phone or user id (kind detected unless given). Imports leave listed people out, and the list is checked again right before each send.",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/DoNotContactAdd"}}}},
                    "responses": with_errors(json!({"201": {"description": "{\"added\": N, \"already_listed\": M}"}}), &["401", "413", "415", "422", "503"])
                }
            },
            "/api/v1/invite/do-not-contact/import": {
                "post": {
                    "tags": ["do-not-contact"], "summary": "Add everyone in a file to the do-not-contact list",
                    "requestBody": {"required": true, "content": {"multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
                        "file": {"type": "string", "format": "binary"}, "mapping": {"type": "string"}, "reason": {"type": "string", "maxLength": 500}
                    }}}}},
                    "responses": with_errors(json!({"201": {"description": "Counts and rejected rows"}}), &["401", "413", "415", "422", "503"])
                }
            },
            "/api/v1/invite/do-not-contact/{entry_id}": {
                "delete": {
                    "tags": ["do-not-contact"], "summary": "Remove an entry",
                    "parameters": [{"name": "entry_id", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 1}}],
                    "responses": with_errors(json!({"204": {"description": "Removed"}}), &["401", "404", "422", "503"])
                }
            },
            "/api/v1/invite/accounts": {
                "get": {
                    "tags": ["accounts"], "summary": "The caller's accounts, with standing, 24-hour usage and next availability",
                    "parameters": [query_param("platform", "Platform", json!({"type": "string", "enum": ["telegram"]}))],
                    "responses": with_errors(json!({"200": {"description": "{items, total}"}}), &["401", "503"])
                },
                "post": {
                    "tags": ["accounts"], "summary": "Register a Telegram account or a sandbox account",
                    "description": "The session (a Telethon StringSession) is validated, sealed at rest with the data key, and never returned; the answer shows its public facts. api_id/api_hash default to the service-wide credentials.",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AccountRegister"}}}},
                    "responses": with_errors(json!({"201": {"description": "The account"}}), &["401", "409", "413", "415", "422", "503"])
                }
            },
            "/api/v1/invite/accounts/{account_id}": {
                "get": {
                    "tags": ["accounts"], "summary": "One account", "parameters": [account_id_param()],
                    "responses": with_errors(json!({"200": {"description": "The account"}}), &["401", "404", "503"])
                },
                "delete": {
                    "tags": ["accounts"], "summary": "Remove an account (what it spent stays in the ledger)", "parameters": [account_id_param()],
                    "responses": with_errors(json!({"204": {"description": "Removed"}}), &["401", "404", "503"])
                }
            },
            "/api/v1/invite/accounts/{account_id}/limits": {
                "get": {
                    "tags": ["accounts"], "summary": "Limits, current usage and restrictions (TelegramAccountLimitsResponse)", "parameters": [account_id_param()],
                    "responses": with_errors(json!({"200": {"description": "{account_id, limits, current_usage, restrictions, last_updated}"}}), &["401", "404", "503"])
                }
            },
            "/api/v1/invite/audit": {
                "get": {
                    "tags": ["audit"], "summary": "The caller's audit entries, newest first", "parameters": page_params(),
                    "responses": with_errors(json_ok("200", "One page of audit entries", "AuditList"), &["401", "422", "503"])
                }
            },
            "/api/v1/invite/openapi.json": {
                "get": {"tags": ["service"], "summary": "This document", "security": [], "responses": {"200": {"description": "OpenAPI 3.1 document"}}}
            },
            "/api/v1/invite/docs": {
                "get": {"tags": ["service"], "summary": "Interactive documentation (works offline)", "security": [], "responses": {"200": {"description": "HTML page"}}}
            }
        },
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": {
                "TaskCreate": {
                    "type": "object",
                    "required": ["name", "action_type"],
                    "properties": task_fields(true),
                    "example": {"name": "Launch invites", "action_type": "invite_to_group", "target_channel": "@my_group", "priority": "HIGH"}
                },
                "TaskUpdate": {"type": "object", "properties": task_fields(false), "example": {"name": "Renamed", "priority": "LOW"}},
                "Task": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer"}, "user_id": {"type": "integer"},
                        "name": {"type": "string"}, "description": {"type": ["string", "null"]},
                        "platform": {"type": "string"}, "action_type": {"type": "string", "enum": ["invite_to_group", "send_message"]},
                        "target_channel": {"type": ["string", "null"]}, "message_template": {"type": ["string", "null"]},
                        "priority": {"type": "string", "enum": ["HIGH", "NORMAL", "LOW"]},
                        "scheduled_start": {"type": ["string", "null"], "format": "date-time"},
                        "settings": {"type": "object"},
                        "status": {"type": "string", "enum": ["PENDING", "IN_PROGRESS", "PAUSED", "COMPLETED", "FAILED", "CANCELLED"]},
                        "status_reason": {"type": ["string", "null"]},
                        "target_count": {"type": "integer"}, "completed_count": {"type": "integer"},
                        "failed_count": {"type": "integer"}, "skipped_count": {"type": "integer"},
                        "progress_percentage": {"type": "number"},
                        "error_message": {"type": ["string", "null"]},
                        "created_at": {"type": "string", "format": "date-time"}, "updated_at": {"type": "string", "format": "date-time"},
                        "started_at": {"type": ["string", "null"], "format": "date-time"}, "finished_at": {"type": ["string", "null"], "format": "date-time"}
                    }
                },
                "TaskList": page_schema("Task"),
                "AuditEntry": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer"}, "user_id": {"type": "integer"},
                        "action": {"type": "string", "example": "task.update"},
                        "object_type": {"type": "string"}, "object_id": {"type": "string"},
                        "request_id": {"type": "string"}, "client_addr": {"type": ["string", "null"]},
                        "details": {"type": "object"}, "created_at": {"type": "string", "format": "date-time"}
                    }
                },
                "AuditList": page_schema("AuditEntry"),
                "AccountRegister": {
                    "type": "object", "required": ["platform", "name"],
                    "properties": {
                        "platform": {"type": "string", "enum": ["telegram"]},
                        "name": {"type": "string", "minLength": 1, "maxLength": 255},
                        "session": {"type": "string", "description": "A Telethon StringSession, or a grammers DcOption as JSON ({\"id\", \"ipv4\", \"ipv6\", \"auth_key\": hex}); required unless sandbox"},
                        "sandbox": {"type": "boolean", "default": false, "description": "An account of the simulated Telegram world"},
                        "api_id": {"type": "integer"},
                        "api_hash": {"type": "string", "description": "32 hex characters, with api_id"}
                    },
                    "example": {"platform": "telegram", "name": "Sandbox 1", "sandbox": true}
                },
                "FileImport": {
                    "type": "object", "required": ["file", "task_id"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "At most INVITE_MAX_UPLOAD_BYTES (10 MiB by default)"},
                        "task_id": {"type": "integer"},
                        "mapping": {"type": "string", "description": "JSON object: field → header name, 1-based column number, or null. Fields: username, user_id, phone, first_name, last_name, full_name", "example": "{\"username\": \"Ник\", \"phone\": 3}"},
                        "dry_run": {"type": "boolean", "default": false, "description": "Only validate: nothing is stored but the report"},
                        "sheet": {"type": "string", "description": "XLSX: the sheet to read (default: the first)"},
                        "phone_region": {"type": "string", "description": "ISO country code for phones written without one (default INVITE_PHONE_REGION)"}
                    }
                },
                "ParsingImport": {
                    "type": "object", "required": ["task_id", "parsing_task_id"],
                    "properties": {
                        "task_id": {"type": "integer"},
                        "parsing_task_id": {"type": "string", "maxLength": 64},
                        "skip_bots": {"type": "boolean", "default": true},
                        "dry_run": {"type": "boolean", "default": false},
                        "phone_region": {"type": "string"}
                    },
                    "example": {"task_id": 1, "parsing_task_id": "17"}
                },
                "ImportResult": {
                    "type": "object",
                    "properties": {
                        "import_id": {"type": "integer"}, "task_id": {"type": "integer"}, "dry_run": {"type": "boolean"},
                        "report": {
                            "type": "object",
                            "properties": {
                                "total_rows": {"type": "integer"}, "valid": {"type": "integer"}, "invalid": {"type": "integer"},
                                "duplicates": {"type": "integer"}, "excluded": {"type": "integer"}, "stored": {"type": "integer"},
                                "source": {"type": "object", "description": "format, encoding, delimiter, sheet, header_row, skipped_title_rows, columns: [{column, header, field, reason}]"},
                                "rejected": {"type": "array", "items": {"type": "object", "properties": {
                                    "row": {"type": "integer"}, "column": {"type": ["string", "null"]}, "value": {"type": "string"},
                                    "reason": {"type": "string", "enum": ["invalid", "duplicate_in_file", "duplicate_in_task", "do_not_contact", "filtered"]},
                                    "message": {"type": "string"}
                                }}},
                                "rejected_not_listed": {"type": "integer"},
                                "warnings": {"type": "array", "description": "Rows kept without an identifier that did not parse (a bad username beside a good phone)", "items": {"type": "object"}},
                                "preview": {"type": "array", "items": {"type": "object"}}
                            }
                        }
                    }
                },
                "Target": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer"}, "task_id": {"type": "integer"},
                        "username": {"type": ["string", "null"]}, "user_id": {"type": ["integer", "null"]},
                        "user_id_is_hint": {"type": "boolean"}, "phone": {"type": ["string", "null"]},
                        "first_name": {"type": ["string", "null"]}, "last_name": {"type": ["string", "null"]},
                        "extra": {"type": "object"}, "source": {"type": "string"},
                        "status": {"type": "string"}, "reason": {"type": ["string", "null"]}, "attempts": {"type": "integer"},
                        "source_row": {"type": ["integer", "null"]}, "processed_at": {"type": ["string", "null"]}, "created_at": {"type": "string"}
                    }
                },
                "TargetList": page_schema("Target"),
                "DoNotContactAdd": {
                    "type": "object", "required": ["entries"],
                    "properties": {"entries": {"type": "array", "maxItems": 10000, "items": {"type": "object", "required": ["value"], "properties": {
                        "value": {"type": "string", "description": "@username, +phone or numeric user id"},
                        "kind": {"type": "string", "enum": ["username", "user_id", "phone"]},
                        "reason": {"type": "string", "maxLength": 500}
                    }}}},
                    "example": {"entries": [{"value": "@anna_k", "reason": "asked not to be contacted"}]}
                },
                "DoNotContactEntry": {"type": "object", "properties": {
                    "id": {"type": "integer"}, "kind": {"type": "string"}, "value": {"type": "string"},
                    "reason": {"type": ["string", "null"]}, "created_at": {"type": "string"}
                }},
                "DoNotContactList": page_schema("DoNotContactEntry"),
                "Health": {
                    "type": "object",
                    "properties": {
                        "status": {"type": "string", "enum": ["ok", "unavailable"]},
                        "version": {"type": "string"},
                        "store": {"type": "object", "properties": {"backend": {"type": "string"}, "status": {"type": "string"}}}
                    }
                },
                "HTTPError": {"type": "object", "properties": {"detail": {"type": "string"}}},
                "ValidationError": {
                    "type": "object",
                    "properties": {
                        "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                        "msg": {"type": "string"}, "type": {"type": "string"}
                    }
                },
                "HTTPValidationError": {
                    "type": "object",
                    "properties": {"detail": {"type": "array", "items": {"$ref": "#/components/schemas/ValidationError"}}}
                }
            }
        }
    });
    if let (Some(paths), Value::Object(more)) = (doc["paths"].as_object_mut(), report_paths()) {
        paths.extend(more);
    }
    if let (Some(schemas), Value::Object(more)) = (doc["components"]["schemas"].as_object_mut(), report_schemas()) {
        schemas.extend(more);
    }
    doc
}

/// A task's status, statistics, report and log.
fn report_paths() -> Value {
    let errors = ["401", "404", "422", "503"];
    json!({
        "/api/v1/invite/tasks/{task_id}/status": {
            "get": {
                "tags": ["reports"], "summary": "Where a running task stands, and when it should be done",
                "description": "Targets by state and progress (final ÷ total, one decimal); each account serving the task: working, resting (a pause, a full window or a flood wait) or restricted until a time, blocked, excluded for the task, or unavailable in its channel; when anything may next happen; and `estimated_completion_at`: each usable account played forward under the Account Manager's policy and ledger (`estimate` explains how and per account). null with `estimate.reason` when the task is not running or no account can ever finish its targets.",
                "parameters": [task_id_param()],
                "responses": with_errors(json_ok("200", "The task's status", "TaskStatusReport"), &errors)
            }
        },
        "/api/v1/invite/tasks/{task_id}/stats": {
            "get": {
                "tags": ["reports"], "summary": "Outcomes by reason, account and hour",
                "description": "`by_reason`: final targets by status and reason; `by_outcome`: log rows by action, status and outcome; `by_account`: each account's attempts (main actions), successes, failures, outcomes and the final targets its calls decided (null account: decided without a call, e.g. do-not-contact); `by_hour`: log rows per UTC hour.",
                "parameters": [task_id_param()],
                "responses": with_errors(json!({"200": {"description": "{task_id, by_reason, by_outcome, by_account, by_hour}"}}), &errors)
            }
        },
        "/api/v1/invite/tasks/{task_id}/report": {
            "get": {
                "tags": ["reports"], "summary": "The final summary, or one CSV row per target",
                "description": "JSON (default): the task, start and finish times, duration, counts, by reason and by account. `format=csv`: one row per target (identifiers, status, reason, detail, account, attempts, times) as `text/csv; charset=utf-8` with a UTF-8 byte order mark and a Content-Disposition file name; a cell starting with =, +, -, @, a tab or a carriage return is written with a leading ' so spreadsheets show it as text. Any other format: 422.",
                "parameters": [task_id_param(), query_param("format", "json or csv, any case", json!({"type": "string", "enum": ["json", "csv"], "default": "json"}))],
                "responses": with_errors(json!({"200": {"description": "The report", "content": {
                    "application/json": {"schema": {"type": "object"}},
                    "text/csv": {"schema": {"type": "string"}}
                }}}), &errors)
            }
        },
        "/api/v1/invite/tasks/{task_id}/logs": {
            "get": {
                "tags": ["reports"], "summary": "The task's execution log, newest first",
                "description": "`level` is derived from each row's status: SUCCESS (and PENDING) info, SKIPPED warning, FAILED error.",
                "parameters": (log_params()),
                "responses": with_errors(json_ok("200", "One page of log rows", "LogList"), &errors)
            }
        }
    })
}

fn log_params() -> Vec<Value> {
    [task_id_param()]
        .into_iter()
        .chain(page_params())
        .chain([
            query_param(
                "level",
                "One or more of info, warning (or warn), error, comma-separated, any case",
                json!({"type": "string", "example": "warning,error"}),
            ),
            query_param(
                "account_id",
                "Rows of this account",
                json!({"type": "string", "maxLength": 255}),
            ),
            query_param(
                "target_id",
                "Rows about this target",
                json!({"type": "integer", "minimum": 1}),
            ),
            query_param(
                "since",
                "At or after (RFC 3339)",
                json!({"type": "string", "format": "date-time"}),
            ),
            query_param(
                "until",
                "Before (RFC 3339)",
                json!({"type": "string", "format": "date-time"}),
            ),
        ])
        .collect()
}

fn report_schemas() -> Value {
    let time = json!({"type": ["string", "null"], "format": "date-time"});
    json!({
        "TaskStatusReport": {
            "type": "object",
            "properties": {
                "task_id": {"type": "integer"}, "status": {"type": "string"}, "status_reason": {"type": ["string", "null"]},
                "counts": {"type": "object", "description": "pending, in_progress, succeeded, already_done, failed, skipped, unknown"},
                "total": {"type": "integer"}, "open": {"type": "integer"}, "progress_percent": {"type": "number"},
                "accounts": {"type": "array", "items": {"type": "object", "properties": {
                    "account_id": {"type": "string"}, "name": {"type": "string"},
                    "state": {"type": "string", "enum": ["working", "resting", "restricted", "blocked", "excluded", "unavailable"]},
                    "reason": {"type": ["string", "null"]}, "until": time, "next_available_at": time
                }}},
                "account_states": {"type": "object", "description": "How many accounts are in each state"},
                "next_action_at": time, "next_retry_at": time,
                "estimated_completion_at": time,
                "estimate": {"type": "object", "description": "method, assumptions, open_targets, reason (when there is no estimate), accounts: [{account_id, targets, first_at, last_at, per_day, limited_by, lifetime_left, unusable}]"},
                "as_of": {"type": "string", "format": "date-time"}
            }
        },
        "LogEntry": {
            "type": "object",
            "properties": {
                "id": {"type": "integer"}, "task_id": {"type": "integer"}, "target_id": {"type": ["integer", "null"]},
                "account_id": {"type": "string"}, "action": {"type": "string"},
                "status": {"type": "string", "enum": ["SUCCESS", "FAILED", "SKIPPED", "PENDING"]},
                "level": {"type": "string", "enum": ["info", "warning", "error"]},
                "outcome": {"type": ["string", "null"]}, "detail": {"type": ["string", "null"]},
                "created_at": {"type": "string", "format": "date-time"}
            }
        },
        "LogList": page_schema("LogEntry")
    })
}

fn target_list_params() -> Vec<Value> {
    let status = json!({"type": "string", "enum": ["pending", "in_progress", "succeeded", "already_done", "failed", "skipped", "unknown"]});
    [task_id_param()]
        .into_iter()
        .chain(page_params())
        .chain([query_param("status", "Target status", status)])
        .collect()
}

fn page_schema(item: &str) -> Value {
    json!({
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"$ref": format!("#/components/schemas/{item}")}},
            "total": {"type": "integer"}, "page": {"type": "integer"}, "page_size": {"type": "integer"},
            "total_pages": {"type": "integer"}, "has_next": {"type": "boolean"}, "has_prev": {"type": "boolean"}
        }
    })
}
