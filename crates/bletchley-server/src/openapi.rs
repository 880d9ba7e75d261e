//! The OpenAPI 3.1 description of the JSON API, served at
//! `/api/openapi.json`. Kept beside the routes it describes.

use serde_json::{Value, json};

fn q(name: &str, required: bool, schema: Value, description: &str) -> Value {
    json!({ "name": name, "in": "query", "required": required, "schema": schema, "description": description })
}

fn err(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

fn ok_json(description: &str) -> Value {
    ok_schema(description, json!({ "type": "object" }))
}

fn ok_schema(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

fn read_op(summary: &str, params: Vec<Value>) -> Value {
    read_op_returning(summary, params, json!({ "type": "object" }))
}

fn read_op_returning(summary: &str, params: Vec<Value>, schema: Value) -> Value {
    json!({
        "summary": summary,
        "security": [{ "session": [] }, { "token": [] }],
        "parameters": params,
        "responses": {
            "200": ok_schema("result over what the caller may see", schema),
            "400": err("malformed request"),
            "401": err("not authenticated"),
            "403": err("authenticated but not allowed (scope, justification)"),
            "404": err("not found or not permitted"),
        }
    })
}

/// `GET /api/items/{id}/transcription`'s answer (apart, for the `json!` macro's depth).
fn transcription_answer() -> Value {
    json!({
                                   "type": "object", "required": ["item", "running", "job", "transcript", "translation"],
                                   "properties": {
                                       "item": { "type": ["string", "null"] },
                                       "running": { "type": "boolean", "description": "more is still to come" },
                                       "job": { "type": ["object", "null"], "properties": {
                                           "id": { "type": "integer" }, "state": { "type": "string", "enum": ["queued", "running", "done", "failed"] },
                                           "progress": { "type": "number" }, "attempts": { "type": "integer" },
                                           "error": { "type": ["string", "null"] } } },
                                       "transcript": { "$ref": "#/components/schemas/Transcription" },
                                       "translation": { "$ref": "#/components/schemas/Transcription" } } })
}

/// A transcript or translation as the API gives it.
fn transcription_schema() -> Value {
    json!(                { "type": ["object", "null"],
                    "description": "a transcript or translation: `partial` while its job is still making it (then `item` is null)",
                    "required": ["language", "task", "duration", "segments", "partial", "item", "marking"],
                    "properties": {
                        "language": { "type": "string" }, "language_probability": { "type": "number" },
                        "task": { "type": "string" }, "duration": { "type": "number" },
                        "partial": { "type": "boolean" }, "item": { "type": ["string", "null"] },
                        "marking": { "type": ["string", "null"] },
                        "segments": { "type": "array", "items": { "type": "object",
                            "required": ["start", "end", "text"],
                            "properties": { "start": { "type": "number" }, "end": { "type": "number" },
                                            "text": { "type": "string" },
                                            "words": { "type": "array", "items": { "type": "object",
                                                "properties": { "start": { "type": "number" }, "end": { "type": "number" },
                                                                "word": { "type": "string" } } } } } } } } })
}

/// The document.
pub fn document() -> Value {
    let just = || {
        q(
            "justification",
            false,
            json!({ "type": "string", "maxLength": crate::extract::MAX_JUSTIFICATION }),
            "why (required to include bulk collections)",
        )
    };
    let s = || json!({ "type": "string", "minLength": 1, "maxLength": crate::extract::MAX_PARAM });
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": { "title": "Bletchley API", "version": env!("CARGO_PKG_VERSION"),
                  "description": "Every answer is computed over what the caller may see; denied and absent items read alike." },
        "components": {
            "securitySchemes": {
                "session": { "type": "apiKey", "in": "cookie", "name": "__Host-bletchley" },
                "token": { "type": "http", "scheme": "bearer" }
            },
            "schemas": {
                "Error": { "type": "object", "required": ["error"], "properties": { "error": {
                    "type": "object", "required": ["code", "message"],
                    "properties": { "code": { "type": "string" }, "message": { "type": "string" } } } } },
                "Transcription": transcription_schema()
            }
        },
        "paths": {
            "/api/health": { "get": {
                "summary": "Whether this node works: the platform thread, the catalog and every object-store location answering (no authentication; names nothing)",
                "security": [],
                "responses": { "200": ok_json("{\"status\":\"ok\"}"),
                               "503": ok_json("{\"status\":\"failing\",\"failing\":[kinds of part]}") } } },
            "/api/login": { "post": {
                "summary": "Start a browser session",
                "requestBody": { "required": true, "content": { "application/json": { "schema": {
                    "type": "object", "required": ["name", "password"],
                    "properties": { "name": { "type": "string" }, "password": { "type": "string" },
                                       "code": { "type": "string", "description": "one-time code (TOTP), for principals with a second factor" } } } } } },
                "responses": { "200": ok_json("session started; cookie set; CSRF token returned"),
                               "400": err("malformed request"), "401": err("wrong name, password or one-time code"),
                               "415": err("not JSON"), "422": err("missing fields"), "429": err("throttled") } } },
            "/api/logout": { "post": { "summary": "End the session (needs X-CSRF-Token)",
                "security": [{ "session": [] }],
                "responses": { "204": { "description": "ended" }, "400": err("not a browser session"), "401": err("not authenticated"), "403": err("CSRF token missing or wrong") } } },
            "/api/me": { "get": read_op("Who the caller is", vec![]) },
            "/api/audit": { "get": read_op("The audit trail for auditors: integrity and entries, newest first", vec![
                q("principal", false, s(), "only entries by this principal"),
                q("action", false, s(), "only actions starting with this"),
                q("limit", false, json!({ "type": "integer", "minimum": 1, "maximum": 1000 }), "entries at most"),
            ]) },
            "/api/operations": { "get": read_op("The caller's joint operations: members, dates, shared collections", vec![]) },
            "/api/alerts": { "get": read_op("Alerts from detection over the event logs the caller may see, most severe first, with counts by level and by rule", vec![
                q("level", false, json!({ "type": "string", "enum": ["informational", "low", "medium", "high", "critical"] }), "only alerts at this level or above"),
                just() ]) },
            "/api/cases": {
              "get": read_op("Triage cases over the alerts the caller may see, newest first, each with its state (status, assignee, priority) and history", vec![
                q("status", false, json!({ "type": "string", "enum": ["new", "in-progress", "closed-true-positive", "closed-false-positive"] }), "only cases with this status"),
                just() ]),
              "post": {
                "summary": "Open cases: one over the given alerts with a title, or the caller's alerts of a collection that no case holds yet, grouped by rule and host within a window (needs X-CSRF-Token with a session, or a write-scoped token)",
                "security": [{ "session": [] }, { "token": [] }],
                "parameters": [ { "name": "X-CSRF-Token", "in": "header", "required": false, "schema": { "type": "string" } } ],
                "requestBody": { "required": true, "content": { "application/json": { "schema": {
                    "type": "object", "additionalProperties": false,
                    "properties": {
                        "alerts": { "type": "array", "items": { "type": "string" } },
                        "title": { "type": ["string", "null"], "minLength": 1, "maxLength": 200 },
                        "collection": { "type": ["string", "null"], "minLength": 1, "maxLength": crate::extract::MAX_PARAM },
                        "by_rule": { "type": ["boolean", "null"] }, "by_host": { "type": ["boolean", "null"] },
                        "window_s": { "type": ["integer", "null"], "minimum": 1, "maximum": crate::api::MAX_WINDOW_S },
                        "level": { "type": ["string", "null"], "enum": ["informational", "low", "medium", "high", "critical", null] },
                        "justification": { "type": ["string", "null"], "maxLength": crate::extract::MAX_JUSTIFICATION } } } } } },
                "responses": { "201": ok_json("opened; the new cases' ids"), "400": err("neither alerts nor collection, an alert the caller may not see, or malformed"),
                               "401": err("not authenticated"), "403": err("token lacks write, CSRF token missing, justification required, or not allowed to store in the collection"),
                               "404": err("not found or not permitted"), "415": err("not JSON") } } },
            "/api/cases/{id}": {
              "get": {
                "summary": "One case: its state and history, and the alerts it holds that the caller may see",
                "security": [{ "session": [] }, { "token": [] }],
                "parameters": [ { "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }, just() ],
                "responses": { "200": ok_json("the case"), "400": err("malformed request"), "401": err("not authenticated"),
                               "403": err("justification required"), "404": err("not found or not permitted") } },
              "post": {
                "summary": "Change a case: exactly one of assignee (a principal who may see it), status, priority or note; recorded as a note on the case (needs X-CSRF-Token with a session, or a write-scoped token)",
                "security": [{ "session": [] }, { "token": [] }],
                "parameters": [ { "name": "id", "in": "path", "required": true, "schema": { "type": "string" } },
                                { "name": "X-CSRF-Token", "in": "header", "required": false, "schema": { "type": "string" } } ],
                "requestBody": { "required": true, "content": { "application/json": { "schema": {
                    "type": "object", "additionalProperties": false,
                    "properties": {
                        "assignee": { "type": ["string", "null"], "minLength": 1, "maxLength": 64 },
                        "status": { "type": ["string", "null"], "enum": ["new", "in-progress", "closed-true-positive", "closed-false-positive", null] },
                        "priority": { "type": ["string", "null"], "enum": ["informational", "low", "medium", "high", "critical", null] },
                        "note": { "type": ["string", "null"], "minLength": 1, "maxLength": bletchley_store::MAX_ANNOTATION },
                        "justification": { "type": ["string", "null"], "maxLength": crate::extract::MAX_JUSTIFICATION } } } } } },
                "responses": { "204": { "description": "recorded" }, "400": err("not exactly one change, an assignee who may not see the case, or malformed"),
                               "401": err("not authenticated"), "403": err("token lacks write, CSRF token missing, or justification required"),
                               "404": err("not found or not permitted"), "415": err("not JSON") } } },
            "/api/jobs": { "get": read_op("The caller's jobs (transcription and translation of recordings they ingested): state, progress, attempts, results", vec![]) },
            "/api/search": { "get": read_op("Full-text search", vec![
                q("q", true, s(), "query: terms, \"phrases\", AND/OR/NOT, type:, lang:, collection:, from:, to:, entity:, term~"),
                q("limit", false, json!({ "type": "integer", "minimum": 1, "maximum": 1000 }), "hits per page"),
                q("offset", false, json!({ "type": "integer", "minimum": 0, "maximum": 100000 }), "hits to skip"),
                q("sort", false, json!({ "type": "string", "enum": ["relevance", "time"] }), "order"),
                q("facets", false, json!({ "type": "boolean" }), "count facets"),
                q("mode", false, json!({ "type": "string", "enum": ["lexical", "semantic", "hybrid"] }),
                  "lexical (the words, the default), semantic (nearest sentence vectors: what the text is about) or hybrid (reciprocal-rank fusion of both); 400 while the operator has semantic search off"),
                just() ]) },
            "/api/suggest": { "get": read_op_returning("Complete a word or selector", vec![
                q("prefix", true, json!({ "type": "string", "minLength": 2, "maxLength": 100 }), "start of a word or selector"),
                q("limit", false, json!({ "type": "integer", "minimum": 1, "maximum": 100 }), "how many"),
                just() ], json!({ "type": "array", "items": { "type": "object",
                    "required": ["text", "items"],
                    "properties": { "text": { "type": "string" }, "items": { "type": "integer" } } } })) },
            "/api/items": {
                "get": read_op("Items the caller may see", vec![just()]),
                "post": {
                    "summary": "Upload one file (needs X-CSRF-Token with a session, or a write-scoped token)",
                    "security": [{ "session": [] }, { "token": [] }],
                    "parameters": [
                        q("collection", true, s(), "agency/name"),
                        q("marking", true, s(), "banner, e.g. SECRET//UK EYES ONLY"),
                        q("title", true, json!({ "type": "string", "minLength": 1, "maxLength": 255 }), "file name"),
                        q("authority", false, s(), "legal authority"),
                        just() ],
                    "requestBody": { "required": true, "content": { "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } } },
                    "responses": { "201": ok_json("stored; id returned"), "400": err("bad marking, title or collection"),
                                   "404": err("collection not found or not permitted"),
                                   "401": err("not authenticated"), "403": err("not allowed"), "413": err("too large"),
                                   "415": err("wrong content type") } } },
            "/api/items/{id}": { "get": {
                "summary": "An item: metadata, text, entities",
                "security": [{ "session": [] }, { "token": [] }],
                "parameters": [ { "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }, just() ],
                "responses": { "200": ok_json("the item"), "400": err("malformed request"), "401": err("not authenticated"), "403": err("justification required"), "404": err("not found or not permitted") } },
              "delete": {
                "summary": "Crypto-shred an item and everything derived from it (admins of the owning agency)",
                "security": [{ "session": [] }, { "token": [] }],
                "parameters": [ { "name": "id", "in": "path", "required": true, "schema": { "type": "string" } },
                                { "name": "X-CSRF-Token", "in": "header", "required": false, "schema": { "type": "string" } } ],
                "responses": { "204": { "description": "shredded" }, "400": err("malformed request"), "401": err("not authenticated"),
                               "403": err("not an admin of the owning agency, token lacks write, CSRF token missing, or the mass-destruction brake holds the caller"), "404": err("not found or not permitted"),
                               "409": err("the item's collection is under legal hold") } } },
            "/api/items/{id}/content": { "get": {
                "summary": "An item's original bytes",
                "security": [{ "session": [] }, { "token": [] }],
                "parameters": [ { "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }, just() ],
                "responses": { "200": { "description": "the bytes", "content": { "application/octet-stream": {} } },
                               "400": err("malformed request"), "401": err("not authenticated"), "403": err("justification required"), "404": err("not found or not permitted") } } },
            "/api/items/{id}/similar": { "get": {
                "summary": "More like this: the items nearest this one in meaning that the caller may see (semantic search must be on)",
                "security": [{ "session": [] }, { "token": [] }],
                "parameters": [ { "name": "id", "in": "path", "required": true, "schema": { "type": "string" } },
                                q("limit", false, json!({ "type": "integer", "minimum": 1, "maximum": 1000 }), "hits per page"),
                                q("offset", false, json!({ "type": "integer", "minimum": 0, "maximum": 10000 }), "hits to skip"),
                                just() ],
                "responses": { "200": ok_json("the nearest items, best first, with the passage that matched"),
                               "400": err("malformed request, semantic search off, or the item has no vectors yet"),
                               "401": err("not authenticated"), "403": err("justification required"),
                               "404": err("not found or not permitted") } } },
            "/api/xref": { "get": {
                "summary": "Cross-referencing: the names and identifiers of a collection found in the other collections the caller may see, names matched across scripts; one step of at most two seconds of comparing names, to be asked again while names_left is not 0",
                "security": [{ "session": [] }, { "token": [] }],
                "parameters": [ q("collection", true, json!({ "type": "string" }), "the collection, agency/name"),
                                q("against", false, json!({ "type": "string" }), "collections to look in, agency/name, comma-separated (every other visible one when left out)"),
                                just() ],
                "responses": { "200": ok_json("the matches found so far, best first, with the items on each side, and the names left to compare"),
                               "400": err("malformed request, or a collection the caller may not see or that does not exist"),
                               "401": err("not authenticated"), "403": err("justification required") } } },
            "/api/items/{id}/transcription": { "get": {
                "summary": "A recording's transcript and English translation, stored or (while its job runs) as far as the job has come, with the job's state",
                "security": [{ "session": [] }, { "token": [] }],
                "parameters": [ { "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }, just() ],
                "responses": { "200": ok_schema("what the caller may read of the recording's transcription", transcription_answer()),
                               "400": err("malformed request"), "401": err("not authenticated"), "403": err("justification required"),
                               "404": err("not found or not permitted") } } },
            "/api/items/{id}/annotations": {
              "get": {
                "summary": "The notes on an item, merged from every site, oldest first",
                "security": [{ "session": [] }, { "token": [] }],
                "parameters": [ { "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }, just() ],
                "responses": { "200": ok_schema("the notes the caller may read", json!({ "type": "array", "items": { "type": "object",
                                   "required": ["id", "author", "created_ms", "marking", "text"],
                                   "properties": { "id": { "type": "string" }, "author": { "type": "string" },
                                                   "created_ms": { "type": "integer" }, "marking": { "type": "string" },
                                                   "text": { "type": "string" } } } })),
                               "400": err("malformed request"), "401": err("not authenticated"), "403": err("justification required"),
                               "404": err("not found or not permitted") } },
              "post": {
                "summary": "Note something on an item the caller may read (needs X-CSRF-Token with a session, or a write-scoped token); the note is an item at the item's marking, replicated to every site that holds it",
                "security": [{ "session": [] }, { "token": [] }],
                "parameters": [ { "name": "id", "in": "path", "required": true, "schema": { "type": "string" } },
                                { "name": "X-CSRF-Token", "in": "header", "required": false, "schema": { "type": "string" } } ],
                "requestBody": { "required": true, "content": { "application/json": { "schema": {
                    "type": "object", "required": ["text"],
                    "properties": { "text": { "type": "string", "minLength": 1, "maxLength": bletchley_store::MAX_ANNOTATION },
                                    "justification": { "type": "string", "description": "why (required for items of bulk collections)" } } } } } },
                "responses": { "201": ok_json("stored; the note's id returned"), "400": err("empty or too long, or malformed"),
                               "401": err("not authenticated"), "403": err("token lacks write, CSRF token missing, justification required, or residency forbids"),
                               "404": err("not found or not permitted"), "415": err("not JSON") } } },
            "/api/graph/neighbours": { "get": read_op("Selectors near one", vec![
                q("selector", true, s(), "a selector"), q("hops", false, json!({ "type": "integer", "minimum": 1, "maximum": 4 }), "links out"), just() ]) },
            "/api/graph/path": { "get": read_op("Shortest chain between two selectors", vec![
                q("from", true, s(), "a selector"), q("to", true, s(), "a selector"), just() ]) },
            "/api/graph/common": { "get": read_op("Contacts common to two selectors", vec![
                q("from", true, s(), "a selector"), q("to", true, s(), "a selector"), just() ]) },
            "/api/graph/communities": { "get": read_op("Communities", vec![just()]) },
            "/api/graph/centrality": { "get": read_op("Most central selectors", vec![just()]) },
            "/api/timeline": { "get": read_op("Events between selectors", vec![
                q("selectors", true, s(), "comma-separated selectors"), just() ]) },
            "/api/openapi.json": { "get": { "summary": "This document", "responses": { "200": ok_json("OpenAPI 3.1") } } }
        }
    });
    if let Some(paths) = doc["paths"].as_object_mut() {
        for extra in [playbook_paths(), admin_paths(), oversight_paths()] {
            if let Value::Object(more) = extra {
                paths.extend(more);
            }
        }
    }
    doc
}

/// A state-changing operation taking a JSON body (CSRF header with a session, or a
/// write-scoped token).
fn write_op(summary: &str, path_param: Option<&str>, body: Value, ok: &str) -> Value {
    let mut params = vec![
        json!({ "name": "X-CSRF-Token", "in": "header", "required": false, "schema": { "type": "string" } }),
    ];
    if let Some(p) = path_param {
        params.insert(
            0,
            json!({ "name": p, "in": "path", "required": true, "schema": { "type": "string" } }),
        );
    }
    json!({
        "summary": format!("{summary} (needs X-CSRF-Token with a session, or a write-scoped token)"),
        "security": [{ "session": [] }, { "token": [] }],
        "parameters": params,
        "requestBody": { "required": true, "content": { "application/json": { "schema": body } } },
        "responses": { "200": ok_json(ok), "400": err("malformed"),
                       "401": err("not authenticated, or the caller is disabled or suspended"),
                       "403": err("not an admin of the principal's agency, itself, token lacks write, or CSRF token missing"),
                       "404": err("not found or not permitted"), "415": err("not JSON") }
    })
}

/// `op` answering 409 too (the thing is so already).
fn with_conflict(mut op: Value) -> Value {
    op["responses"]["409"] = err("already so");
    op
}

/// Agency administration for admins.
fn admin_paths() -> Value {
    let text = |max: usize| json!({ "type": ["string", "null"], "maxLength": max });
    let share_body = json!({ "type": "object", "additionalProperties": false, "required": ["collection"],
        "properties": { "collection": { "type": "string", "minLength": 1, "maxLength": crate::extract::MAX_PARAM } } });
    json!({
        "/api/admin/principals": {
            "get": read_op("The principals of the caller's agency with their standing, and its access-review queue (admins only)", vec![]) },
        "/api/admin/overview": {
            "get": read_op("The caller's agency's collections (items, legal hold, retention, review before destruction) and its principals' jobs by state, with the recent failures (admins only; audited)", vec![]) },
        "/api/admin/principals/{name}/standing": {
            "post": write_op(
                "Disable, suspend until a date, or enable a principal of the caller's agency other than the caller; audited; in force at its next request (disabling revokes its tokens and certificates)",
                Some("name"),
                json!({ "type": "object", "additionalProperties": false, "required": ["state"],
                        "properties": {
                            "state": { "type": "string", "enum": ["active", "disabled", "suspended"] },
                            "reason": text(1000),
                            "until": text(40) } }),
                "changed") },
        "/api/items/{id}/reclassify": {
            "post": write_op(
                "Re-mark an item (a principal of its owning agency who sees it now and would at the new marking; not an item derived from another): an upgrade is applied at once with what was derived from it; a downgrade or widening becomes a request for an originator; audited",
                Some("id"),
                json!({ "type": "object", "additionalProperties": false, "required": ["marking", "authority"],
                        "properties": {
                            "marking": { "type": "string", "minLength": 1, "maxLength": crate::extract::MAX_PARAM },
                            "authority": { "type": "string", "minLength": 1, "maxLength": 1000 } } }),
                "applied (the report) or pending (the request)") },
        "/api/reclassify": {
            "get": read_op("Re-marking requests of the caller's agency waiting for an originator", vec![]) },
        "/api/reclassify/{request}/approve": {
            "post": write_op(
                "Approve a waiting downgrade or widening (an originator of the owning agency, not the one who asked); audited with both principals",
                Some("request"),
                json!({ "type": "object" }),
                "the re-marking done") },
        "/api/reclassify/{request}/reject": {
            "post": write_op(
                "Reject a waiting request (an originator of the owning agency, or its author); audited",
                Some("request"),
                json!({ "type": "object", "additionalProperties": false,
                        "properties": { "reason": text(1000) } }),
                "rejected") },
        "/api/admin/retention": {
            "get": read_op("Items of the caller's agency past their date in collections that require a review before destruction (admins; audited)", vec![]) },
        "/api/admin/retention/{id}": {
            "post": write_op(
                "Destroy a waiting item now (the destruction certificate is returned and audited) or keep it until a later date with a reason (admins of its agency)",
                Some("id"),
                json!({ "type": "object", "additionalProperties": false, "required": ["decision"],
                        "properties": {
                            "decision": { "type": "string", "enum": ["destroy", "keep"] },
                            "until": text(40),
                            "reason": text(1000) } }),
                "the retention run's certificate") },
        "/api/admin/operations": {
            "get": read_op("The joint operations the caller's agency is a member of, with their members, dates and every share, current and withdrawn (admins only; audited)", vec![]) },
        "/api/admin/operations/{name}/share": {
            "post": with_conflict(write_op(
                "Share a collection of the caller's agency into an operation its agency is a member of, from now on (admins only; another agency's collection reads as not found); audited",
                Some("name"),
                share_body.clone(),
                "shared")) },
        "/api/admin/operations/{name}/withdraw": {
            "post": write_op(
                "Withdraw a collection of the caller's agency from an operation, at once (admins only); audited",
                Some("name"),
                share_body,
                "withdrawn") },
        "/api/admin/sites": {
            "get": read_op("The field sites the caller's agency's collections or operations are assigned to: where they are, their ceiling and staff, how far they have acknowledged, and how many of the agency's items are held back from each and why (admins only; audited)", vec![]) },
        "/api/admin/principals/{name}/review": {
            "post": write_op(
                "Confirm a principal's access in its agency's periodic review (an admin of its agency other than itself); audited",
                Some("name"),
                json!({ "type": "object", "additionalProperties": false,
                        "properties": { "note": text(1000) } }),
                "confirmed") },
    })
}

/// The overseer's report.
fn oversight_paths() -> Value {
    let day = json!({ "type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$" });
    let period = || {
        vec![
            q(
                "from",
                false,
                day.clone(),
                "first day (UTC), default 90 days before to",
            ),
            q("to", false, day.clone(), "last day (UTC), default today"),
        ]
    };
    json!({
        "/api/oversight/report": {
            "get": read_op("The oversight report of a period (overseers only; audited): accesses by agency, principal, collection, classification and week, a principal x collection heat map, justified queries, denials, exports, destructions, re-markings and changes of principals, each with its source entries and a sample's inclusion proofs", period()) },
        "/api/oversight/report.pdf": {
            "get": {
                "summary": "The same report as a PDF",
                "security": [{ "session": [] }, { "token": [] }],
                "parameters": period(),
                "responses": {
                    "200": { "description": "the report", "content": { "application/pdf": { "schema": { "type": "string", "format": "binary" } } } },
                    "400": err("malformed request"),
                    "401": err("not authenticated"),
                    "403": err("not an overseer"),
                    "404": err("not found or not permitted"),
                } } },
    })
}

/// The detection and playbook endpoints (apart, so that no one `json!` nests past the
/// macro's depth).
fn playbook_paths() -> Value {
    json!({
            "/api/detect/rules": {
              "get": read_op("The Sigma rule files of the caller's agency (items of AGENCY/sigma-rules) that the caller may see", vec![]),
              "post": {
                "summary": "Store a Sigma rule file in the caller's agency's rules collection once it parses (the error names the file and line; nothing is stored); logs ingested from then on are hunted with it (needs X-CSRF-Token with a session, or a write-scoped token)",
                "security": [{ "session": [] }, { "token": [] }],
                "parameters": [ { "name": "X-CSRF-Token", "in": "header", "required": false, "schema": { "type": "string" } } ],
                "requestBody": { "required": true, "content": { "application/json": { "schema": {
                    "type": "object", "additionalProperties": false, "required": ["file_name", "yaml"],
                    "properties": {
                        "file_name": { "type": "string", "minLength": 1, "maxLength": 200 },
                        "yaml": { "type": "string", "maxLength": bletchley_detect::manage::MAX_RULE_FILE },
                        "marking": { "type": ["string", "null"] } } } } } },
                "responses": { "201": ok_json("stored; the item ids and the number of rules"), "400": err("the file does not parse, no rules collection, or malformed"),
                               "401": err("not authenticated"), "403": err("token lacks write, CSRF token missing, or not allowed to store in the collection"),
                               "404": err("not found or not permitted"), "415": err("not JSON") } } },
            "/api/detect/run": {
              "post": {
                "summary": "Queue the stored event logs of a collection for detection again with the rules as they are now; only alerts a log lacks are stored (needs X-CSRF-Token with a session, or a write-scoped token)",
                "security": [{ "session": [] }, { "token": [] }],
                "parameters": [ { "name": "X-CSRF-Token", "in": "header", "required": false, "schema": { "type": "string" } } ],
                "requestBody": { "required": true, "content": { "application/json": { "schema": {
                    "type": "object", "additionalProperties": false, "required": ["collection"],
                    "properties": {
                        "collection": { "type": "string", "minLength": 1, "maxLength": crate::extract::MAX_PARAM },
                        "justification": { "type": ["string", "null"], "maxLength": crate::extract::MAX_JUSTIFICATION } } } } } },
                "responses": { "202": ok_json("queued; how many logs and the jobs"), "400": err("malformed"),
                               "401": err("not authenticated"), "403": err("token lacks write, CSRF token missing, or justification required"),
                               "404": err("not found or not permitted"), "415": err("not JSON") } } },
            "/api/cases/{id}/playbook": {
              "post": {
                "summary": "Run a playbook on a case as the caller (or, with dry_run, say what each step would do and write nothing); the run stops at a step that needs a second responder's approval. Every step is recorded on the case (needs X-CSRF-Token with a session, or a write-scoped token)",
                "security": [{ "session": [] }, { "token": [] }],
                "parameters": [ { "name": "id", "in": "path", "required": true, "schema": { "type": "string" } },
                                { "name": "X-CSRF-Token", "in": "header", "required": false, "schema": { "type": "string" } } ],
                "requestBody": { "required": true, "content": { "application/json": { "schema": {
                    "type": "object", "additionalProperties": false, "required": ["playbook"],
                    "properties": {
                        "playbook": { "type": "string", "minLength": 1, "maxLength": 64 },
                        "version": { "type": ["integer", "null"], "minimum": 0, "maximum": 4_294_967_295u64 },
                        "dry_run": { "type": ["boolean", "null"] },
                        "justification": { "type": ["string", "null"], "maxLength": crate::extract::MAX_JUSTIFICATION } } } } } },
                "responses": { "200": ok_json("the run's report: each step's state and what it did"), "400": err("no such playbook, a step that cannot be done (an assignee who may not see the case), or malformed"),
                               "401": err("not authenticated"), "403": err("token lacks write, CSRF token missing, or justification required"),
                               "404": err("not found or not permitted"), "415": err("not JSON") } } },
            "/api/cases/{id}/approve": {
              "post": {
                "summary": "Approve the step a playbook run waits at, as a responder of the starter's agency other than the starter, and go on with the run (needs X-CSRF-Token with a session, or a write-scoped token)",
                "security": [{ "session": [] }, { "token": [] }],
                "parameters": [ { "name": "id", "in": "path", "required": true, "schema": { "type": "string" } },
                                { "name": "X-CSRF-Token", "in": "header", "required": false, "schema": { "type": "string" } } ],
                "requestBody": { "required": true, "content": { "application/json": { "schema": {
                    "type": "object", "additionalProperties": false, "required": ["run"],
                    "properties": {
                        "run": { "type": "string", "minLength": 1, "maxLength": 64 },
                        "justification": { "type": ["string", "null"], "maxLength": crate::extract::MAX_JUSTIFICATION } } } } } },
                "responses": { "200": ok_json("the rest of the run's report"), "400": err("nothing of that run waits, or malformed"),
                               "401": err("not authenticated"), "403": err("not a second responder of the starter's agency, token lacks write, CSRF token missing, or justification required"),
                               "404": err("not found or not permitted"), "415": err("not JSON") } } },
            "/api/playbooks": {
              "get": read_op("The response playbooks of the caller's agency that the caller may see: the latest version of each, or every version", vec![
                q("all", false, json!({ "type": "boolean" }), "every version") ]),
              "post": {
                "summary": "Store a playbook (YAML, checked first) as the next version of its name in AGENCY/playbooks (needs X-CSRF-Token with a session, or a write-scoped token)",
                "security": [{ "session": [] }, { "token": [] }],
                "parameters": [ { "name": "X-CSRF-Token", "in": "header", "required": false, "schema": { "type": "string" } } ],
                "requestBody": { "required": true, "content": { "application/json": { "schema": {
                    "type": "object", "additionalProperties": false, "required": ["file_name", "yaml"],
                    "properties": {
                        "file_name": { "type": "string", "minLength": 1, "maxLength": 200 },
                        "yaml": { "type": "string", "maxLength": crate::api_playbooks::MAX_PLAYBOOK_BYTES },
                        "marking": { "type": ["string", "null"] } } } } } },
                "responses": { "201": ok_json("stored; the playbook with its version"), "400": err("the file does not parse (the message names the line or step), no playbooks collection, or malformed"),
                               "401": err("not authenticated"), "403": err("token lacks write, CSRF token missing, or not allowed to store in the collection"),
                               "415": err("not JSON") } } }
    })
}
