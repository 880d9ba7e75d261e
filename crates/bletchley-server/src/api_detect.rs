//! The detection endpoints: an agency's Sigma rule files (listed, and stored only once they
//! parse) and hunting a collection's stored logs again. Removing a rule file is shredding its
//! item (`DELETE /api/items/{id}`, an admin's act).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bletchley_detect::manage;
use bletchley_policy::Marking;
use serde::Deserialize;
use serde_json::json;

use crate::Shared;
use crate::api::{ApiResult, reader, writer};
use crate::error::ApiError;
use crate::extract::{J, MAX_JUSTIFICATION, MAX_PARAM};

/// `GET /api/detect/rules`: the rule files of the caller's agency that the caller may see.
pub async fn rules(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    let who = reader(&s, &headers).await?;
    let items = s
        .worker
        .run(move |st| Ok(manage::rule_files(&mut st.platform, &who)?))
        .await?;
    Ok(Json(json!({ "rules": items })))
}

/// `POST /api/detect/rules` body: one rule file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRuleFile {
    file_name: String,
    yaml: String,
    #[serde(default)]
    marking: Option<String>,
}

/// `POST /api/detect/rules`: stores a rule file once it parses (the error names the line).
pub async fn add_rules(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    J(n): J<NewRuleFile>,
) -> ApiResult<Response> {
    let who = writer(&s, &headers).await?;
    if n.file_name.is_empty() || n.file_name.len() > 200 || n.yaml.len() > manage::MAX_RULE_FILE {
        return Err(ApiError::bad_request(
            "file_name (1 to 200 bytes) or yaml (at most 1 MiB) out of bounds",
        ));
    }
    let marking = Marking::parse(n.marking.as_deref().unwrap_or("OFFICIAL"))
        .map_err(|e| ApiError::bad_request(format!("marking: {e}")))?;
    let (ids, count) = s
        .worker
        .run(move |st| {
            Ok(manage::add_rule_files(
                &mut st.platform,
                &who,
                vec![(n.file_name, n.yaml.into_bytes())],
                marking,
            )?)
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "ids": ids, "rules": count })),
    )
        .into_response())
}

/// `POST /api/detect/run` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectAgain {
    collection: String,
    #[serde(default)]
    justification: Option<String>,
}

/// `POST /api/detect/run`: queues the collection's stored logs for detection again.
pub async fn run(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    J(d): J<DetectAgain>,
) -> ApiResult<Response> {
    let who = writer(&s, &headers).await?;
    if d.collection.is_empty()
        || d.collection.chars().count() > MAX_PARAM
        || d.justification
            .as_deref()
            .is_some_and(|j| j.chars().count() > MAX_JUSTIFICATION)
    {
        return Err(ApiError::bad_request(
            "collection (1 to 500 characters) or justification (at most 1000) out of bounds",
        ));
    }
    let (logs, jobs) = s
        .worker
        .run(move |st| {
            Ok(manage::detect_again(
                &mut st.platform,
                &who,
                &d.collection,
                d.justification.as_deref(),
            )?)
        })
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "logs": logs, "jobs": jobs })),
    )
        .into_response())
}
