//! The playbook endpoints: list and store an agency's playbooks, run one on a case (or say
//! what it would do), approve a waiting step. The console's case page posts through the
//! same functions, so the two cannot disagree.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bletchley_detect::playbook::{self, Playbook, RunReport};
use bletchley_policy::Marking;
use serde::Deserialize;
use serde_json::json;

use crate::Shared;
use crate::api::{ApiResult, item_id, reader, writer};
use crate::error::ApiError;
use crate::extract::{J, MAX_JUSTIFICATION, Q};
use crate::lookup::IndexLookup;

/// The largest playbook file accepted, in bytes.
pub const MAX_PLAYBOOK_BYTES: usize = 64 * 1024;

/// `GET /api/playbooks` query.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PlaybooksQuery {
    /// Every version, not only the latest of each name.
    #[serde(default)]
    all: Option<bool>,
}

/// The playbooks a caller may see: the latest version of each, or every version.
pub(crate) async fn playbooks_of(s: &Shared, who: String, all: bool) -> ApiResult<Vec<Playbook>> {
    s.worker
        .run(move |st| {
            Ok(if all {
                playbook::list(&mut st.platform, &who, None)?.0
            } else {
                playbook::latest(&mut st.platform, &who, None)?
            })
        })
        .await
}

/// `GET /api/playbooks`: the caller's agency's playbooks.
pub async fn playbooks(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Q(q): Q<PlaybooksQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let who = reader(&s, &headers).await?;
    let books = playbooks_of(&s, who, q.all.unwrap_or(false)).await?;
    Ok(Json(json!({ "playbooks": books })))
}

/// `POST /api/playbooks` body: a playbook file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPlaybook {
    /// The file's name, for messages.
    file_name: String,
    /// Its YAML.
    yaml: String,
    /// Its marking (OFFICIAL when absent).
    #[serde(default)]
    marking: Option<String>,
}

/// `POST /api/playbooks`: stores a playbook as the next version of its name.
pub async fn add_playbook(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    J(n): J<NewPlaybook>,
) -> ApiResult<Response> {
    let who = writer(&s, &headers).await?;
    if n.file_name.is_empty() || n.file_name.len() > 200 || n.yaml.len() > MAX_PLAYBOOK_BYTES {
        return Err(ApiError::bad_request(
            "file_name (1 to 200 bytes) or yaml (at most 64 KiB) out of bounds",
        ));
    }
    let marking = Marking::parse(n.marking.as_deref().unwrap_or("OFFICIAL"))
        .map_err(|e| ApiError::bad_request(format!("marking: {e}")))?;
    let pb = s
        .worker
        .run(move |st| {
            Ok(playbook::add(
                &mut st.platform,
                &who,
                &n.file_name,
                &n.yaml,
                marking,
            )?)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "playbook": pb }))).into_response())
}

/// `POST /api/cases/{id}/playbook` body: which playbook, and whether only to say what it
/// would do.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunPlaybook {
    /// The playbook's name.
    pub(crate) playbook: String,
    /// A version other than the latest.
    #[serde(default)]
    pub(crate) version: Option<u32>,
    /// Only say what would happen.
    #[serde(default)]
    pub(crate) dry_run: Option<bool>,
    /// Why (bulk collections).
    #[serde(default)]
    pub(crate) justification: Option<String>,
}

/// An item that is not a case reads as no case, as on every case endpoint.
fn no_case(e: bletchley_store::Error) -> bletchley_store::Error {
    match e {
        bletchley_store::Error::Invalid(m) if m.ends_with("is not a case") => {
            bletchley_store::Error::NotFoundOrNotPermitted { reason: None }
        }
        other => other,
    }
}

fn check_justification(j: Option<&str>) -> ApiResult<()> {
    if j.is_some_and(|j| j.chars().count() > MAX_JUSTIFICATION) {
        return Err(ApiError::bad_request("justification longer than 1000"));
    }
    Ok(())
}

/// Runs (or dry-runs) a playbook on a case for a caller.
pub(crate) async fn run_on_case(
    s: &Shared,
    who: String,
    case: String,
    r: RunPlaybook,
) -> ApiResult<RunReport> {
    item_id(&case)?;
    check_justification(r.justification.as_deref())?;
    if r.playbook.is_empty() || r.playbook.len() > 64 {
        return Err(ApiError::bad_request(
            "playbook: a name of 1 to 64 characters",
        ));
    }
    s.worker
        .run(move |st| {
            st.sync()?;
            let just = r.justification.as_deref();
            let pb = playbook::find(&mut st.platform, &who, &r.playbook, r.version, just)?;
            let mut lookup = IndexLookup { index: &st.index };
            Ok(playbook::run(
                &mut st.platform,
                &who,
                &mut lookup,
                &pb,
                &case,
                r.dry_run.unwrap_or(false),
                just,
            )
            .map_err(no_case)?)
        })
        .await
}

/// `POST /api/cases/{id}/playbook`: runs a playbook on a case; the report says what each
/// step did (or, dry, would do) and where it waits.
pub async fn run_playbook(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    J(r): J<RunPlaybook>,
) -> ApiResult<Json<RunReport>> {
    let who = writer(&s, &headers).await?;
    Ok(Json(run_on_case(&s, who, id, r).await?))
}

/// `POST /api/cases/{id}/approve` body: the run whose waiting step is approved.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approve {
    /// The run.
    pub(crate) run: String,
    /// Why (bulk collections).
    #[serde(default)]
    pub(crate) justification: Option<String>,
}

/// Approves a run's waiting step for a caller, and goes on with the run.
pub(crate) async fn approve_on_case(
    s: &Shared,
    who: String,
    case: String,
    a: Approve,
) -> ApiResult<RunReport> {
    item_id(&case)?;
    check_justification(a.justification.as_deref())?;
    if a.run.is_empty() || a.run.len() > 64 {
        return Err(ApiError::bad_request("run: an id of 1 to 64 characters"));
    }
    s.worker
        .run(move |st| {
            st.sync()?;
            let mut lookup = IndexLookup { index: &st.index };
            Ok(playbook::approve(
                &mut st.platform,
                &who,
                &mut lookup,
                &case,
                &a.run,
                a.justification.as_deref(),
            )
            .map_err(no_case)?)
        })
        .await
}

/// `POST /api/cases/{id}/approve`: a second responder approves the step a run waits at.
pub async fn approve(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    J(a): J<Approve>,
) -> ApiResult<Json<RunReport>> {
    let who = writer(&s, &headers).await?;
    Ok(Json(approve_on_case(&s, who, id, a).await?))
}
