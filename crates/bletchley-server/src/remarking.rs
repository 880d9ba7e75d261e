//! Re-marking and the retention review queue over HTTP: the JSON API and the console's
//! forms (an item page's *Re-mark*, the Admin page's requests and queue) call the same
//! functions, which reach the store only through its gated, audited calls.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Form, Path, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use bletchley_store::platform::{
    Awaiting, RemarkReport, RemarkRequest, Remarked, Retained, ReviewDecision,
};
use serde::Deserialize;

use crate::Shared;
use crate::api::{ApiResult, reader, writer};
use crate::console::{api_error_page, form_caller};
use crate::error::ApiError;
use crate::extract::{J, MAX_PARAM};
use crate::html::{esc, page, url};

/// A re-marking asked for.
#[derive(Deserialize)]
pub struct RemarkAsk {
    /// The new marking.
    pub marking: String,
    /// The authority for it.
    pub authority: String,
}

/// A rejection.
#[derive(Deserialize)]
pub struct Reject {
    /// Why.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A retention review's decision on one item.
#[derive(Deserialize)]
pub struct RetentionDecision {
    /// `destroy` or `keep`.
    pub decision: String,
    /// For `keep`: until when, `YYYY-MM-DD`.
    #[serde(default)]
    pub until: Option<String>,
    /// For `keep`: why.
    #[serde(default)]
    pub reason: Option<String>,
}

fn bounded(what: &str, s: &str, max: usize) -> ApiResult<()> {
    if s.len() > max {
        return Err(ApiError::bad_request(format!(
            "{what}: at most {max} characters"
        )));
    }
    Ok(())
}

pub(crate) async fn reclassify(
    s: &Shared,
    who: String,
    id: String,
    ask: RemarkAsk,
) -> ApiResult<Remarked> {
    bounded("id", &id, MAX_PARAM)?;
    bounded("marking", &ask.marking, MAX_PARAM)?;
    bounded("authority", &ask.authority, 1000)?;
    s.worker
        .run(move |st| {
            Ok(st
                .platform
                .reclassify(&who, &id, &ask.marking, &ask.authority)?)
        })
        .await
}

pub(crate) async fn approve(s: &Shared, who: String, request: String) -> ApiResult<RemarkReport> {
    bounded("request", &request, MAX_PARAM)?;
    s.worker
        .run(move |st| Ok(st.platform.approve_remark(&who, &request)?))
        .await
}

pub(crate) async fn reject(
    s: &Shared,
    who: String,
    request: String,
    reason: String,
) -> ApiResult<()> {
    bounded("request", &request, MAX_PARAM)?;
    bounded("reason", &reason, 1000)?;
    s.worker
        .run(move |st| Ok(st.platform.reject_remark(&who, &request, &reason)?))
        .await
}

pub(crate) async fn requests(s: &Shared, who: String) -> ApiResult<Vec<RemarkRequest>> {
    s.worker
        .run(move |st| Ok(st.platform.remark_requests(Some(&who))?))
        .await
}

pub(crate) async fn retention_queue(s: &Shared, who: String) -> ApiResult<Vec<Awaiting>> {
    s.worker
        .run(move |st| Ok(st.platform.retention_queue(Some(&who))?))
        .await
}

pub(crate) async fn decide_retention(
    s: &Shared,
    who: String,
    id: String,
    d: RetentionDecision,
) -> ApiResult<Retained> {
    bounded("id", &id, MAX_PARAM)?;
    let decision = match (d.decision.as_str(), d.until.as_deref()) {
        ("destroy", _) => ReviewDecision::Destroy,
        ("keep", Some(until)) => {
            let fmt = time::macros::format_description!("[year]-[month]-[day]");
            let day = time::Date::parse(until, &fmt)
                .map_err(|_| ApiError::bad_request("until: expected YYYY-MM-DD"))?;
            let reason = d.reason.unwrap_or_default();
            bounded("reason", &reason, 1000)?;
            ReviewDecision::KeepUntil(day.midnight().assume_utc().unix_timestamp() * 1000, reason)
        }
        ("keep", None) => return Err(ApiError::bad_request("keep needs until")),
        _ => return Err(ApiError::bad_request("decision: expected destroy or keep")),
    };
    s.worker
        .run(move |st| Ok(st.platform.decide_retention(Some(&who), &[id], &decision)?))
        .await
}

/// `POST /api/items/{id}/reclassify`.
pub async fn api_reclassify(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    J(body): J<RemarkAsk>,
) -> ApiResult<Json<Remarked>> {
    let who = writer(&s, &headers).await?;
    Ok(Json(reclassify(&s, who, id, body).await?))
}

/// `GET /api/reclassify`: the requests of the caller's agency.
pub async fn api_requests(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    let who = reader(&s, &headers).await?;
    Ok(Json(
        serde_json::json!({ "requests": requests(&s, who).await? }),
    ))
}

/// `POST /api/reclassify/{request}/approve`.
pub async fn api_approve(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(request): Path<String>,
    J(_): J<serde::de::IgnoredAny>,
) -> ApiResult<Json<RemarkReport>> {
    let who = writer(&s, &headers).await?;
    Ok(Json(approve(&s, who, request).await?))
}

/// `POST /api/reclassify/{request}/reject`.
pub async fn api_reject(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(request): Path<String>,
    J(body): J<Reject>,
) -> ApiResult<Json<serde_json::Value>> {
    let who = writer(&s, &headers).await?;
    reject(&s, who, request.clone(), body.reason.unwrap_or_default()).await?;
    Ok(Json(
        serde_json::json!({ "request": request, "rejected": true }),
    ))
}

/// `GET /api/admin/retention`: the caller's agency's review queue (admins).
pub async fn api_retention_queue(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    let who = reader(&s, &headers).await?;
    Ok(Json(
        serde_json::json!({ "items": retention_queue(&s, who).await? }),
    ))
}

/// `POST /api/admin/retention/{id}`: destroy or keep a waiting item.
pub async fn api_decide_retention(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    J(body): J<RetentionDecision>,
) -> ApiResult<Json<Retained>> {
    let who = writer(&s, &headers).await?;
    Ok(Json(decide_retention(&s, who, id, body).await?))
}

#[derive(Deserialize)]
pub(crate) struct RemarkForm {
    csrf: String,
    marking: String,
    authority: String,
}

/// `POST /items/{id}/reclassify` (the item page's form).
pub(crate) async fn console_reclassify(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<RemarkForm>,
) -> Response {
    let w = match form_caller(&s, &headers, &f.csrf) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let ask = RemarkAsk {
        marking: f.marking,
        authority: f.authority,
    };
    let body = match reclassify(&s, w.name.clone(), id.clone(), ask).await {
        Ok(Remarked::Applied(r)) => format!(
            "<h1>Re-marked</h1><p id=\"remark-result\" class=\"ok\">{} is now {} (was {}), with the {} item(s) derived from it.</p><p><a href=\"/items/{}\">Back to the item</a></p>",
            esc(&r.item),
            esc(&r.to),
            esc(&r.from),
            r.items.len().saturating_sub(1),
            url(&r.item)
        ),
        Ok(Remarked::Pending(r)) => format!(
            "<h1>Re-marking requested</h1><p id=\"remark-result\" class=\"meta\" data-request=\"{}\">{} → {} is a downgrade or a widening: request {} waits for an originator of the owning agency (Admin page).</p><p><a href=\"/items/{}\">Back to the item</a></p>",
            esc(&r.id),
            esc(&r.from),
            esc(&r.to),
            esc(&r.id),
            url(&r.item)
        ),
        Err(e) => return api_error_page(e, Some(&w.viewer())),
    };
    Html(page("Re-marking", "OFFICIAL", Some(&w.viewer()), &body)).into_response()
}

#[derive(Deserialize)]
pub(crate) struct DecisionForm {
    csrf: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    until: Option<String>,
}

/// `POST /admin/reclassify/{request}/approve`.
pub(crate) async fn console_approve(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(request): Path<String>,
    Form(f): Form<DecisionForm>,
) -> Response {
    let w = match form_caller(&s, &headers, &f.csrf) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    match approve(&s, w.name.clone(), request).await {
        Ok(_) => crate::console_admin::admin_page(State(s), headers).await,
        Err(e) => api_error_page(e, Some(&w.viewer())),
    }
}

/// `POST /admin/reclassify/{request}/reject`.
pub(crate) async fn console_reject(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(request): Path<String>,
    Form(f): Form<DecisionForm>,
) -> Response {
    let w = match form_caller(&s, &headers, &f.csrf) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    match reject(&s, w.name.clone(), request, f.reason.unwrap_or_default()).await {
        Ok(()) => crate::console_admin::admin_page(State(s), headers).await,
        Err(e) => api_error_page(e, Some(&w.viewer())),
    }
}

/// `POST /admin/retention/{id}/destroy` and `/keep`.
pub(crate) async fn console_decide(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path((id, decision)): Path<(String, String)>,
    Form(f): Form<DecisionForm>,
) -> Response {
    let w = match form_caller(&s, &headers, &f.csrf) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let d = RetentionDecision {
        decision,
        until: f.until.filter(|u| !u.is_empty()),
        reason: f.reason,
    };
    match decide_retention(&s, w.name.clone(), id, d).await {
        Ok(_) => crate::console_admin::admin_page(State(s), headers).await,
        Err(e) => api_error_page(e, Some(&w.viewer())),
    }
}
