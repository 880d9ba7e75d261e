//! The JSON API: every command-line capability over HTTPS, each call
//! authenticated, gated by the platform, and audited there.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bletchley_audit::Outcome;
use bletchley_index::access::GraphAsk;
use bletchley_index::{SearchRequest, SortBy};
use bletchley_policy::Marking;
use bletchley_store::{Actor, IngestOptions, NewItem, TokenScope};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{self, Caller, authenticate};
use crate::error::ApiError;
use crate::extract::{J, Q, Raw};
use crate::{ClientAddr, Shared};

pub(crate) type ApiResult<T> = Result<T, ApiError>;

/// Largest upload accepted, bytes.
pub const MAX_UPLOAD: usize = 64 * 1024 * 1024;

pub(crate) async fn caller(s: &Shared, headers: &HeaderMap) -> ApiResult<Caller> {
    authenticate(headers, &s.sessions, &s.worker).await
}

pub(crate) fn csrf_header(headers: &HeaderMap) -> Option<&str> {
    headers.get("x-csrf-token").and_then(|v| v.to_str().ok())
}

/// The principal behind a read: authenticated, with a token's read scope.
pub(crate) async fn reader(s: &Shared, headers: &HeaderMap) -> ApiResult<String> {
    let c = caller(s, headers).await?;
    c.require(TokenScope::Read)?;
    Ok(c.principal)
}

/// The principal behind a change: authenticated, with a token's write scope, or a
/// session's CSRF token.
pub(crate) async fn writer(s: &Shared, headers: &HeaderMap) -> ApiResult<String> {
    let c = caller(s, headers).await?;
    c.require(TokenScope::Write)?;
    c.check_csrf(csrf_header(headers))?;
    Ok(c.principal)
}

/// `POST /api/login` body.
#[derive(Deserialize)]
pub struct Login {
    name: String,
    password: String,
    /// The one-time code, for principals with a second factor.
    #[serde(default)]
    code: Option<String>,
}

/// The one answer to every failed login, whichever part was wrong, so a
/// guesser learns nothing (not even that a password was right).
const LOGIN_FAILED: &str = "wrong name, password or one-time code";

/// Checks a password with throttling by account and by client address;
/// audits success and failure. Returns the cookie value and CSRF token.
pub(crate) async fn login_as(
    s: &Shared,
    addr: &ClientAddr,
    name: &str,
    password: &str,
    code: Option<&str>,
) -> ApiResult<(String, String)> {
    if name.is_empty()
        || name.len() > 64
        || password.len() > 1024
        || code.is_some_and(|c| c.len() > 16)
    {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "login_failed",
            LOGIN_FAILED,
        ));
    }
    let (user_key, ip_key) = (format!("user:{name}"), format!("ip:{}", addr.0.ip()));
    for k in [&user_key, &ip_key] {
        if let Err(secs) = s.throttle.check(k) {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "throttled",
                format!("too many failed logins: try again in {secs} s"),
            ));
        }
    }
    let (n, pw, code) = (
        name.to_owned(),
        password.to_owned(),
        code.map(str::to_owned).filter(|c| !c.trim().is_empty()),
    );
    let ok = s
        .worker
        .run(move |st| {
            let mut refusal = None;
            if !st.platform.check_password(&n, &pw)? {
                refusal = Some("wrong name or password");
            } else if st.platform.totp_enrolled(&n)? {
                // The second factor, when enrolled, is checked (and the
                // code spent) only after the password.
                let now = u64::try_from(bletchley_store::now_ms() / 1000).unwrap_or(0);
                refusal = match code.as_deref() {
                    None => Some("one-time code missing"),
                    Some(c) => match st.platform.check_totp(&n, c, now)? {
                        bletchley_store::SecondFactor::Accepted => None,
                        _ => Some("wrong, expired or reused one-time code"),
                    },
                };
            }
            st.platform.record(
                Actor::Principal(n.clone()),
                "login",
                vec![n.clone()],
                None,
                if refusal.is_none() {
                    Outcome::Allowed
                } else {
                    Outcome::Refused
                },
                refusal.map(str::to_owned),
            )?;
            Ok(refusal.is_none())
        })
        .await?;
    if !ok {
        s.throttle.fail(&user_key);
        s.throttle.fail(&ip_key);
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "login_failed",
            LOGIN_FAILED,
        ));
    }
    s.throttle.clear(&user_key);
    Ok(s.sessions.create(name))
}

/// `POST /api/login`.
pub async fn login(
    State(s): State<Arc<Shared>>,
    axum::Extension(addr): axum::Extension<ClientAddr>,
    J(l): J<Login>,
) -> ApiResult<Response> {
    let (token, csrf) = login_as(&s, &addr, &l.name, &l.password, l.code.as_deref()).await?;
    let mut r = Json(json!({ "principal": l.name, "csrf": csrf })).into_response();
    r.headers_mut().insert(
        SET_COOKIE,
        HeaderValue::from_str(&auth::set_cookie(&token))
            .map_err(|_| ApiError::internal("cookie header"))?,
    );
    Ok(r)
}

/// `POST /api/logout`.
pub async fn logout(State(s): State<Arc<Shared>>, headers: HeaderMap) -> ApiResult<Response> {
    let c = caller(&s, &headers).await?;
    c.check_csrf(csrf_header(&headers))?;
    match &c.via {
        auth::Via::Session { token, .. } => s.sessions.revoke(token),
        auth::Via::Token { .. } => {
            return Err(ApiError::bad_request(
                "logout ends a browser session; revoke a token with `bletchley principal token revoke`",
            ));
        }
        auth::Via::Certificate { .. } => {
            return Err(ApiError::bad_request(
                "logout ends a browser session; revoke a certificate with `bletchley principal cert revoke`",
            ));
        }
    }
    let who = c.principal.clone();
    s.worker
        .run(move |st| {
            Ok(st.platform.record(
                Actor::Principal(who),
                "logout",
                vec![],
                None,
                Outcome::Allowed,
                None,
            )?)
        })
        .await?;
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().insert(
        SET_COOKIE,
        HeaderValue::from_str(&auth::clear_cookie())
            .map_err(|_| ApiError::internal("cookie header"))?,
    );
    Ok(r)
}

/// `GET /api/me`.
pub async fn me(State(s): State<Arc<Shared>>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let c = caller(&s, &headers).await?;
    let who = c.principal.clone();
    let p = s
        .worker
        .run(move |st| Ok(st.platform.principal(&who)?))
        .await?;
    let csrf = match &c.via {
        auth::Via::Session { csrf, .. } => Some(csrf.clone()),
        auth::Via::Token { .. } => None,
        auth::Via::Certificate { .. } => Some("certificate".to_owned()),
    };
    let (via, certificate) = match &c.via {
        auth::Via::Session { .. } => ("session", None),
        auth::Via::Token { .. } => ("token", None),
        auth::Via::Certificate { serial } => ("certificate", Some(serial.clone())),
    };
    Ok(Json(json!({
        "via": via,
        "certificate": certificate,
        "name": p.name,
        "agency": p.agency,
        "clearance": p.clearance.as_str(),
        "compartments": p.compartments,
        "nationality": p.nationality.alpha3(),
        "roles": p.roles,
        "csrf": csrf,
    })))
}

/// `GET /api/search` query.
#[derive(Deserialize)]
pub struct SearchQuery {
    q: String,
    #[serde(default = "default_limit")]
    limit: usize,
    #[serde(default)]
    offset: usize,
    #[serde(default)]
    sort: Option<String>,
    #[serde(default)]
    facets: bool,
    #[serde(default)]
    justification: Option<String>,
    #[serde(default)]
    mode: Option<String>,
}

fn default_limit() -> usize {
    20
}

/// Runs a search for a caller (shared by the API and the console).
pub(crate) async fn run_search(
    s: &Shared,
    who: String,
    q: SearchQuery,
) -> ApiResult<bletchley_index::SearchResults> {
    let sort = match q.sort.as_deref() {
        None | Some("relevance") => SortBy::Relevance,
        Some("time") => SortBy::Time,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "sort {other:?}: expected relevance or time"
            )));
        }
    };
    if q.offset > 100_000 {
        return Err(ApiError::bad_request("offset must be at most 100000"));
    }
    use bletchley_index::semantic::{Mode, SemanticQuery};
    let mode = match q.mode.as_deref() {
        None => Mode::Lexical,
        Some(m) => Mode::parse(m).ok_or_else(|| {
            ApiError::bad_request(format!("mode {m:?}: expected lexical, semantic or hybrid"))
        })?,
    };
    if mode != Mode::Lexical && sort != SortBy::Relevance {
        return Err(ApiError::bad_request(
            "sort time is for lexical search; semantic and hybrid rank by relevance",
        ));
    }
    s.worker
        .run(move |st| {
            st.sync()?;
            let req = SearchRequest {
                query: q.q,
                limit: q.limit,
                offset: q.offset,
                sort,
                facets: q.facets,
            };
            if mode == Mode::Lexical {
                let (r, _) = bletchley_index::access::search(
                    &mut st.platform,
                    &st.index,
                    &who,
                    &req,
                    q.justification.as_deref(),
                )?;
                return Ok(r);
            }
            let (platform, index, sem) = st.semantic_parts()?;
            let vector = sem
                .model
                .embed(&[req.query.as_str()])
                .map_err(|e| ApiError::internal(&format!("embedding the query: {e}")))?
                .pop()
                .ok_or_else(|| ApiError::internal("no vector for the query"))?;
            let (r, _) = bletchley_index::semantic::search(
                platform,
                index,
                &mut sem.index,
                &who,
                &SemanticQuery {
                    request: &req,
                    mode,
                    vector: &vector,
                    justification: q.justification.as_deref(),
                },
            )?;
            Ok(r.into())
        })
        .await
}

impl SearchQuery {
    /// The same search in `mode` (`lexical`, `semantic`, `hybrid`; `None` for lexical).
    pub(crate) fn with_mode(mut self, mode: Option<String>) -> SearchQuery {
        self.mode = mode;
        self
    }

    /// A console search.
    pub(crate) fn new(q: String, offset: usize, justification: Option<String>) -> SearchQuery {
        SearchQuery {
            q,
            limit: default_limit(),
            offset,
            sort: None,
            facets: true,
            justification,
            mode: None,
        }
    }
}

/// `GET /api/search`.
pub async fn search(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Q(q): Q<SearchQuery>,
) -> ApiResult<Json<bletchley_index::SearchResults>> {
    let who = reader(&s, &headers).await?;
    Ok(Json(run_search(&s, who, q).await?))
}

/// `GET /api/items/{id}/similar` query.
#[derive(Deserialize)]
pub struct SimilarQuery {
    #[serde(default = "default_limit")]
    limit: usize,
    #[serde(default)]
    offset: usize,
    #[serde(default)]
    justification: Option<String>,
}

/// More like this, for a caller (shared by the API and the console): the items nearest `id`
/// in meaning that the caller may see.
pub(crate) async fn run_similar(
    s: &Shared,
    who: String,
    id: String,
    q: SimilarQuery,
) -> ApiResult<bletchley_index::SearchResults> {
    if q.offset > 10_000 {
        return Err(ApiError::bad_request("offset must be at most 10000"));
    }
    s.worker
        .run(move |st| {
            st.sync()?;
            let (platform, index, sem) = st.semantic_parts()?;
            let req = SearchRequest {
                query: String::new(),
                limit: q.limit,
                offset: q.offset,
                sort: SortBy::Relevance,
                facets: false,
            };
            let (r, _) = bletchley_index::semantic::more_like(
                platform,
                index,
                &mut sem.index,
                &who,
                &id,
                &req,
                q.justification.as_deref(),
            )?;
            Ok(r.into())
        })
        .await
}

impl SimilarQuery {
    /// The console's first page.
    pub(crate) fn first_page(justification: Option<String>) -> SimilarQuery {
        SimilarQuery {
            limit: 10,
            offset: 0,
            justification,
        }
    }
}

/// `GET /api/items/{id}/similar`.
pub async fn similar(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Q(q): Q<SimilarQuery>,
) -> ApiResult<Json<bletchley_index::SearchResults>> {
    let who = reader(&s, &headers).await?;
    Ok(Json(run_similar(&s, who, id, q).await?))
}

/// `GET /api/suggest` query.
#[derive(Deserialize)]
pub struct SuggestQuery {
    prefix: String,
    #[serde(default = "default_limit")]
    limit: usize,
    #[serde(default)]
    justification: Option<String>,
}

/// `GET /api/suggest`.
pub async fn suggest(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Q(q): Q<SuggestQuery>,
) -> ApiResult<Json<Vec<bletchley_index::Suggestion>>> {
    let who = reader(&s, &headers).await?;
    let out = s
        .worker
        .run(move |st| {
            st.sync()?;
            Ok(bletchley_index::access::suggest(
                &mut st.platform,
                &st.index,
                &who,
                &q.prefix,
                q.limit,
                q.justification.as_deref(),
            )?)
        })
        .await?;
    Ok(Json(out))
}

/// Query with only a justification.
#[derive(Deserialize, Default)]
pub struct Why {
    /// Why (required for bulk collections).
    #[serde(default)]
    pub justification: Option<String>,
}

/// `GET /api/items`: what the caller may list.
pub async fn list(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Q(w): Q<Why>,
) -> ApiResult<Json<Value>> {
    let who = reader(&s, &headers).await?;
    let l = s
        .worker
        .run(move |st| Ok(st.platform.list(&who, None, w.justification.as_deref())?))
        .await?;
    Ok(Json(
        json!({ "items": l.items, "skipped_bulk": l.skipped_bulk }),
    ))
}

/// `GET /api/audit` query.
#[derive(Deserialize, Default)]
pub struct AuditFilter {
    #[serde(default)]
    principal: Option<String>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default = "default_audit_limit")]
    limit: usize,
}

fn default_audit_limit() -> usize {
    200
}

/// The audit trail for an auditor (others are refused).
pub(crate) async fn audit_review(
    s: &Shared,
    who: String,
    principal: Option<String>,
    action: Option<String>,
    limit: usize,
) -> ApiResult<bletchley_store::AuditReview> {
    let blank = |v: Option<String>| v.filter(|x| !x.trim().is_empty());
    let q = bletchley_store::AuditQuery {
        principal: blank(principal),
        action: blank(action),
        limit,
    };
    if q.principal
        .as_deref()
        .is_some_and(|p| p.len() > crate::extract::MAX_PARAM)
        || q.action
            .as_deref()
            .is_some_and(|a| a.len() > crate::extract::MAX_PARAM)
    {
        return Err(ApiError::bad_request("filter too long"));
    }
    s.worker
        .run(move |st| Ok(st.platform.audit_review(&who, &q)?))
        .await
}

/// `GET /api/audit`: integrity and entries of the audit trail, for
/// auditors.
pub async fn audit(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Q(f): Q<AuditFilter>,
) -> ApiResult<Json<Value>> {
    let who = reader(&s, &headers).await?;
    let r = audit_review(&s, who, f.principal, f.action, f.limit).await?;
    let (verified, integrity) = match &r.integrity {
        Ok(rep) => (true, json!(rep)),
        Err(e) => (false, json!(e)),
    };
    let entries: Vec<Value> = r
        .entries
        .iter()
        .map(|(seq, e)| {
            let mut v = json!(e);
            v["seq"] = json!(seq);
            v
        })
        .collect();
    Ok(Json(json!({
        "verified": verified,
        "integrity": integrity,
        "matched": r.matched,
        "entries": entries,
        "unreadable": r.unreadable,
    })))
}

/// The operations the caller is a member of.
pub(crate) async fn operations_of(
    s: &Shared,
    who: String,
) -> ApiResult<Vec<bletchley_store::OperationView>> {
    s.worker
        .run(move |st| Ok(st.platform.operations_of(&who)?))
        .await
}

/// `GET /api/operations`: the caller's joint operations, their members,
/// dates and shared collections.
pub async fn operations(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let who = reader(&s, &headers).await?;
    let ops = operations_of(&s, who).await?;
    Ok(Json(json!({ "operations": ops })))
}

/// `GET /api/alerts` query.
#[derive(Deserialize, Default)]
pub struct AlertsQuery {
    /// Only alerts at this level or above.
    #[serde(default)]
    pub level: Option<String>,
    /// Why (required to include bulk collections).
    #[serde(default)]
    pub justification: Option<String>,
}

/// The alerts a caller may see (each read gated and audited), at `level` or above, most
/// severe first, with counts by level and rule over exactly those.
pub(crate) async fn alerts_of(
    s: &Shared,
    who: String,
    q: AlertsQuery,
) -> ApiResult<(
    Vec<bletchley_detect::alerts::AlertView>,
    bletchley_detect::alerts::AlertCounts,
)> {
    let min = match q.level.as_deref() {
        None | Some("") => None,
        Some(l) => Some(bletchley_detect::rule::Level::parse(l).ok_or_else(|| {
            ApiError::bad_request("level: expected informational, low, medium, high or critical")
        })?),
    };
    s.worker
        .run(move |st| {
            let alerts = bletchley_detect::alerts::visible_alerts(
                &mut st.platform,
                &who,
                min,
                q.justification.as_deref(),
            )?;
            let counts = bletchley_detect::alerts::counts(&alerts);
            Ok((alerts, counts))
        })
        .await
}

/// `GET /api/alerts`: detections over the event logs the caller may see.
pub async fn alerts(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Q(q): Q<AlertsQuery>,
) -> ApiResult<Json<Value>> {
    let who = reader(&s, &headers).await?;
    let (alerts, counts) = alerts_of(&s, who, q).await?;
    Ok(Json(json!({ "alerts": alerts, "counts": counts })))
}

/// `GET /api/cases` query.
#[derive(Deserialize, Default)]
pub struct CasesQuery {
    /// Only cases with this status.
    #[serde(default)]
    pub status: Option<String>,
    /// Why (required to include bulk collections).
    #[serde(default)]
    pub justification: Option<String>,
}

fn case_status(s: &str) -> ApiResult<bletchley_detect::cases::Status> {
    bletchley_detect::cases::Status::parse(s).ok_or_else(|| {
        ApiError::bad_request(
            "status: expected new, in-progress, closed-true-positive or closed-false-positive",
        )
    })
}

fn alert_level(s: &str) -> ApiResult<bletchley_detect::rule::Level> {
    bletchley_detect::rule::Level::parse(s).ok_or_else(|| {
        ApiError::bad_request("level: expected informational, low, medium, high or critical")
    })
}

/// The cases a caller may see, newest first.
pub(crate) async fn cases_of(
    s: &Shared,
    who: String,
    q: CasesQuery,
) -> ApiResult<Vec<bletchley_detect::cases::Case>> {
    let want = q.status.as_deref().map(case_status).transpose()?;
    s.worker
        .run(move |st| {
            Ok(bletchley_detect::cases::list_cases(
                &mut st.platform,
                &who,
                q.justification.as_deref(),
            )?
            .into_iter()
            .filter(|c| want.is_none_or(|w| c.status == w))
            .collect())
        })
        .await
}

/// One case with the alerts it holds that the caller may see.
pub(crate) async fn case_of(
    s: &Shared,
    who: String,
    id: String,
    justification: Option<String>,
) -> ApiResult<(
    bletchley_detect::cases::Case,
    Vec<bletchley_detect::alerts::AlertView>,
)> {
    item_id(&id)?;
    s.worker
        .run(move |st| {
            let just = justification.as_deref();
            let c = match bletchley_detect::cases::case(&mut st.platform, &who, &id, just) {
                // An item that is not a case reads as no case.
                Err(bletchley_store::Error::Invalid(_)) => {
                    return Err(
                        bletchley_store::Error::NotFoundOrNotPermitted { reason: None }.into(),
                    );
                }
                other => other?,
            };
            let alerts =
                bletchley_detect::alerts::visible_alerts(&mut st.platform, &who, None, just)?
                    .into_iter()
                    .filter(|a| c.alerts.contains(&a.id))
                    .collect();
            Ok((c, alerts))
        })
        .await
}

/// `GET /api/cases`: triage cases over the alerts the caller may see.
pub async fn cases(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Q(q): Q<CasesQuery>,
) -> ApiResult<Json<Value>> {
    let who = reader(&s, &headers).await?;
    let cases = cases_of(&s, who, q).await?;
    Ok(Json(json!({ "cases": cases })))
}

/// `GET /api/cases/{id}`: one case, its state and history, and its alerts.
pub async fn case(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Q(w): Q<Why>,
) -> ApiResult<Json<Value>> {
    let who = reader(&s, &headers).await?;
    let (case, alerts) = case_of(&s, who, id, w.justification).await?;
    Ok(Json(json!({ "case": case, "alerts": alerts })))
}

/// The longest grouping window accepted, in seconds (a year).
pub const MAX_WINDOW_S: u32 = 366 * 86_400;

/// `POST /api/cases` body: a case by hand over `alerts` with a `title`, or the alerts of
/// `collection` grouped.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenCases {
    #[serde(default)]
    alerts: Vec<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    collection: Option<String>,
    #[serde(default)]
    by_rule: Option<bool>,
    #[serde(default)]
    by_host: Option<bool>,
    #[serde(default)]
    window_s: Option<u32>,
    #[serde(default)]
    level: Option<String>,
    #[serde(default)]
    justification: Option<String>,
}

/// `POST /api/cases`: opens cases; returns their ids.
pub async fn open_cases(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    J(o): J<OpenCases>,
) -> ApiResult<Response> {
    let who = writer(&s, &headers).await?;
    let min = o.level.as_deref().map(alert_level).transpose()?;
    if o.collection
        .as_deref()
        .is_some_and(|x| x.is_empty() || x.chars().count() > crate::extract::MAX_PARAM)
        || o.window_s.is_some_and(|w| w == 0 || w > MAX_WINDOW_S)
        || o.title
            .as_deref()
            .is_some_and(|t| t.is_empty() || t.chars().count() > 200)
        || o.justification
            .as_deref()
            .is_some_and(|j| j.chars().count() > crate::extract::MAX_JUSTIFICATION)
    {
        return Err(ApiError::bad_request(
            "collection (1 to 500 characters), window_s (1 s to a year), title (1 to 200 characters) or justification (at most 1000) out of bounds",
        ));
    }
    let ids = s
        .worker
        .run(move |st| {
            let just = o.justification.as_deref();
            let ids = match (&o.collection, o.alerts.is_empty()) {
                (Some(coll), true) => {
                    let g = bletchley_detect::cases::Grouping {
                        by_rule: o.by_rule.unwrap_or(true),
                        by_host: o.by_host.unwrap_or(true),
                        window_ms: i64::from(o.window_s.unwrap_or(3600).max(1)) * 1000,
                        min_level: min,
                    };
                    bletchley_detect::cases::open_cases(&mut st.platform, &who, coll, &g, just)?
                }
                (None, false) => {
                    let title = o.title.as_deref().ok_or_else(|| {
                        bletchley_store::Error::Invalid(
                            "a case opened by hand needs a title".into(),
                        )
                    })?;
                    vec![bletchley_detect::cases::open_case(
                        &mut st.platform,
                        &who,
                        title,
                        &o.alerts,
                        just,
                    )?]
                }
                _ => {
                    return Err(bletchley_store::Error::Invalid(
                        "give collection (to group its alerts) or alerts and a title".into(),
                    )
                    .into());
                }
            };
            // The playbooks whose trigger the new cases match run now, as the caller.
            st.sync()?;
            let mut lookup = crate::lookup::IndexLookup { index: &st.index };
            let runs = bletchley_detect::playbook::run_triggered(
                &mut st.platform,
                &who,
                &mut lookup,
                &ids,
                just,
            )?;
            Ok((ids, runs))
        })
        .await?;
    let (ids, runs) = ids;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({ "cases": ids, "playbook_runs": runs.runs, "playbooks_not_run": runs.not_run }),
        ),
    )
        .into_response())
}

/// `POST /api/cases/{id}` body: exactly one change.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseChange {
    #[serde(default)]
    pub(crate) assignee: Option<String>,
    #[serde(default)]
    pub(crate) status: Option<String>,
    #[serde(default)]
    pub(crate) priority: Option<String>,
    #[serde(default)]
    pub(crate) note: Option<String>,
    #[serde(default)]
    pub(crate) justification: Option<String>,
}

impl CaseChange {
    pub(crate) fn into_change(
        self,
    ) -> ApiResult<(bletchley_detect::cases::Change, Option<String>)> {
        use bletchley_detect::cases::Change;
        if self
            .justification
            .as_deref()
            .is_some_and(|j| j.chars().count() > crate::extract::MAX_JUSTIFICATION)
            || self
                .assignee
                .as_deref()
                .is_some_and(|a| a.is_empty() || a.len() > 64)
            || self.note.as_deref().is_some_and(str::is_empty)
        {
            return Err(ApiError::bad_request(
                "assignee (1 to 64 characters), note (not empty) or justification (at most 1000) out of bounds",
            ));
        }
        let change = match (self.assignee, self.status, self.priority, self.note) {
            (Some(a), None, None, None) => Change::Assign(a),
            (None, Some(s), None, None) => Change::Status(case_status(&s)?),
            (None, None, Some(p), None) => Change::Priority(alert_level(&p)?),
            (None, None, None, Some(n)) => Change::Note(n),
            _ => {
                return Err(ApiError::bad_request(
                    "give exactly one of assignee, status, priority or note",
                ));
            }
        };
        Ok((change, self.justification))
    }
}

/// Records a change on a case for a caller.
pub(crate) async fn change_case(
    s: &Shared,
    who: String,
    id: String,
    change: bletchley_detect::cases::Change,
    justification: Option<String>,
) -> ApiResult<()> {
    item_id(&id)?;
    if let bletchley_detect::cases::Change::Note(n) | bletchley_detect::cases::Change::Assign(n) =
        &change
        && n.len() > bletchley_store::MAX_ANNOTATION
    {
        return Err(ApiError::bad_request("too long"));
    }
    s.worker
        .run(move |st| {
            match bletchley_detect::cases::change_case(
                &mut st.platform,
                &who,
                &id,
                &change,
                justification.as_deref(),
            ) {
                Err(bletchley_store::Error::Invalid(m)) if m.ends_with("is not a case") => {
                    Err(bletchley_store::Error::NotFoundOrNotPermitted { reason: None }.into())
                }
                other => Ok(other?),
            }
        })
        .await
}

/// `POST /api/cases/{id}`: assign, move on, reprioritise or note a case.
pub async fn update_case(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    J(ch): J<CaseChange>,
) -> ApiResult<Response> {
    let who = writer(&s, &headers).await?;
    let (change, just) = ch.into_change()?;
    change_case(&s, who, id, change, just).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/jobs`: the caller's jobs (transcription of what they ingested) with state,
/// progress, attempts and the items produced.
pub async fn jobs(State(s): State<Arc<Shared>>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let who = reader(&s, &headers).await?;
    let jobs = s
        .worker
        .run(move |st| Ok(st.platform.jobs_of(&who)?))
        .await?;
    Ok(Json(json!({ "jobs": jobs })))
}

/// Reads an item for a caller: metadata and content, gated and audited.
pub(crate) async fn read_item(
    s: &Shared,
    who: String,
    id: String,
    justification: Option<String>,
    with_derived: bool,
) -> ApiResult<ItemRead> {
    item_id(&id)?;
    s.worker
        .run(move |st| {
            let (meta, content) = st.platform.get(&who, &id, justification.as_deref())?;
            let derived = if with_derived {
                st.sync()?;
                bletchley_index::access::derived(
                    &st.platform,
                    &st.index,
                    &who,
                    &id,
                    justification.as_deref(),
                )?
            } else {
                Vec::new()
            };
            Ok(ItemRead {
                meta,
                content,
                derived,
            })
        })
        .await
}

/// An item read through the gate, with what was derived from it that the
/// reader may see.
pub(crate) struct ItemRead {
    pub(crate) meta: bletchley_store::ItemMeta,
    pub(crate) content: Vec<u8>,
    pub(crate) derived: Vec<bletchley_index::search::DerivedItem>,
}

/// `GET /api/items/{id}`: metadata, extracted text and entities.
pub async fn item(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Q(w): Q<Why>,
) -> ApiResult<Json<Value>> {
    let who = reader(&s, &headers).await?;
    let ItemRead {
        meta,
        content,
        derived,
    } = read_item(&s, who, id, w.justification, true).await?;
    let ex = bletchley_index::extract::extract_item(&meta.title, &content, meta.generation);
    let entities = bletchley_index::entities::extract(&ex.text);
    Ok(Json(json!({
        "item": meta,
        "type": ex.kind,
        "flag": ex.flag,
        "text": ex.text,
        "entities": entities,
        "derived": derived,
    })))
}

/// `DELETE /api/items/{id}`: crypto-shreds the item and what was derived
/// from it, for an admin of the owning agency (as `bletchley shred`).
pub async fn shred(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let who = writer(&s, &headers).await?;
    item_id(&id)?;
    s.worker
        .run(move |st| Ok(st.platform.shred(&who, &id)?))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The text of a note to add.
#[derive(Deserialize)]
pub struct NewNote {
    text: String,
    /// Why, for an item of a bulk collection (as for reading it).
    #[serde(default)]
    justification: Option<String>,
}

/// An item id as this platform makes them; anything else reads as a miss.
pub(crate) fn item_id(id: &str) -> ApiResult<()> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return Err(ApiError::not_found());
    }
    Ok(())
}

/// `GET /api/items/{id}/annotations`: the notes on an item, merged from every
/// site, oldest first (the item and each note read through the gate).
pub async fn annotations(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Q(w): Q<Why>,
) -> ApiResult<Json<Value>> {
    let who = reader(&s, &headers).await?;
    item_id(&id)?;
    let notes = s
        .worker
        .run(move |st| {
            Ok(st
                .platform
                .annotations(&who, &id, w.justification.as_deref())?)
        })
        .await?;
    Ok(Json(json!(notes)))
}

/// `POST /api/items/{id}/annotations`: notes something on an item the caller
/// may read; the note is an item of its own at the item's marking.
pub async fn annotate(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    J(n): J<NewNote>,
) -> ApiResult<Response> {
    let who = writer(&s, &headers).await?;
    item_id(&id)?;
    let author = match &s.site {
        Some(site) => format!("{}@{site}", who),
        None => who.clone(),
    };
    let note = s
        .worker
        .run(move |st| {
            let just = n.justification.as_deref();
            Ok(st.platform.annotate(&who, &id, &author, &n.text, just)?)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": note }))).into_response())
}

/// A title as a download's file name: ASCII letters, digits, `.`, `-` and `_` kept, every
/// other character `_`, so nothing a title holds can break the header it goes in.
pub(crate) fn safe_filename(title: &str) -> String {
    title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `GET /api/items/{id}/content`: the original bytes, as a download.
pub async fn content(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Q(w): Q<Why>,
) -> ApiResult<Response> {
    let c = caller(&s, &headers).await?;
    c.require(TokenScope::Read)?;
    let ItemRead { meta, content, .. } =
        read_item(&s, c.principal, id, w.justification, false).await?;
    let mut r = content.into_response();
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    // Only safe characters reach the header; the title is in the metadata.
    let safe = safe_filename(&meta.title);
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{safe}\"")) {
        h.insert(CONTENT_DISPOSITION, v);
    }
    h.insert(
        "x-marking",
        HeaderValue::from_str(&meta.marking).map_err(|_| ApiError::internal("marking header"))?,
    );
    Ok(r)
}

/// `POST /api/items` query (the body is the file's bytes).
#[derive(Deserialize)]
pub struct Upload {
    collection: String,
    marking: String,
    title: String,
    #[serde(default)]
    authority: Option<String>,
    #[serde(default)]
    justification: Option<String>,
}

/// Checks an upload's title: a plain file name, no path.
pub(crate) fn valid_title(t: &str) -> ApiResult<()> {
    if t.is_empty()
        || t.len() > 255
        || t.contains(['/', '\\', '\0'])
        || t.chars().any(char::is_control)
        || t == "."
        || t == ".."
    {
        return Err(ApiError::bad_request(
            "title: a file name of 1 to 255 characters without path separators or control characters",
        ));
    }
    Ok(())
}

/// Ingests one uploaded file for a caller.
pub(crate) async fn ingest(s: &Shared, who: String, u: Upload, body: Vec<u8>) -> ApiResult<String> {
    valid_title(&u.title)?;
    if body.is_empty() {
        return Err(ApiError::bad_request("empty upload"));
    }
    let marking = Marking::parse(&u.marking)?;
    let ids = s
        .worker
        .run(move |st| {
            let opts = IngestOptions {
                collection: u.collection,
                marking,
                authority: u.authority,
                retain_until_ms: None,
                justification: u.justification,
                priority: Default::default(),
            };
            let items = vec![NewItem {
                title: u.title,
                content: body,
            }];
            bletchley_detect::manage::check_ingest(&opts.collection, &items)?;
            Ok(bletchley_index::ingest::ingest(&mut st.platform, &who, &opts, items)?.ids)
        })
        .await?;
    ids.into_iter()
        .next()
        .ok_or_else(|| ApiError::internal("ingest returned no id"))
}

impl Upload {
    /// A console upload.
    pub(crate) fn new(
        collection: String,
        marking: String,
        title: String,
        authority: Option<String>,
    ) -> Upload {
        Upload {
            collection,
            marking,
            title,
            authority,
            justification: None,
        }
    }
}

/// `POST /api/items`.
pub async fn upload(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Q(u): Q<Upload>,
    Raw(body): Raw,
) -> ApiResult<Response> {
    let who = writer(&s, &headers).await?;
    let ct = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct != "application/octet-stream" {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the file's bytes as application/octet-stream",
        ));
    }
    let id = ingest(&s, who, u, body.to_vec()).await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))).into_response())
}

/// Graph queries.
#[derive(Deserialize)]
pub struct GraphQuery {
    #[serde(default)]
    selector: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    hops: Option<usize>,
    #[serde(default)]
    justification: Option<String>,
}

impl GraphQuery {
    /// Neighbours of a selector (console).
    pub(crate) fn neighbours(
        selector: String,
        hops: Option<usize>,
        justification: Option<String>,
    ) -> GraphQuery {
        GraphQuery {
            selector: Some(selector),
            from: None,
            to: None,
            hops,
            justification,
        }
    }

    /// A path between two selectors (console).
    pub(crate) fn path(from: String, to: String, justification: Option<String>) -> GraphQuery {
        GraphQuery {
            selector: None,
            from: Some(from),
            to: Some(to),
            hops: None,
            justification,
        }
    }
}

fn selector(s: Option<&str>, what: &str) -> ApiResult<String> {
    let s = s.ok_or_else(|| ApiError::bad_request(format!("{what} is required")))?;
    bletchley_index::entities::normalise(s)
        .ok_or_else(|| ApiError::bad_request(format!("{what}: {s:?} is not a recognised selector")))
}

/// Runs a graph query for a caller.
pub(crate) async fn run_graph(
    s: &Shared,
    who: String,
    kind: &'static str,
    q: GraphQuery,
) -> ApiResult<Value> {
    Ok(run_graph_expanding(s, who, kind, q, Vec::new()).await?.0)
}

/// A graph query, plus the one-hop neighbours of each selector in `expand`
/// answered from the same visible graph (built once); each answer is
/// audited. Selectors in `expand` that are not valid are left out.
pub(crate) async fn run_graph_expanding(
    s: &Shared,
    who: String,
    kind: &'static str,
    q: GraphQuery,
    expand: Vec<String>,
) -> ApiResult<(Value, Vec<Value>)> {
    let expand: Vec<String> = expand
        .iter()
        .filter_map(|e| selector(Some(e), "expand").ok())
        .collect();
    let (a, b) = match kind {
        "neighbours" => (Some(selector(q.selector.as_deref(), "selector")?), None),
        "path" | "common" => (
            Some(selector(q.from.as_deref(), "from")?),
            Some(selector(q.to.as_deref(), "to")?),
        ),
        _ => (None, None),
    };
    let hops = q.hops.unwrap_or(1).clamp(1, 4);
    s.worker
        .run(move |st| {
            st.sync()?;
            let g = bletchley_index::access::visible_graph(
                &st.platform,
                &st.index,
                &who,
                q.justification.as_deref(),
            )?;
            let ask = match (kind, a, b) {
                ("neighbours", Some(selector), _) => GraphAsk::Neighbours { selector, hops },
                ("path", Some(from), Some(to)) => GraphAsk::Path { from, to },
                ("common", Some(a), Some(b)) => GraphAsk::Common { a, b },
                ("centrality", _, _) => GraphAsk::Centrality { top: 50 },
                _ => GraphAsk::Communities,
            };
            let asks = std::iter::once(ask).chain(
                expand
                    .into_iter()
                    .map(|selector| GraphAsk::Neighbours { selector, hops: 1 }),
            );
            let mut out = Vec::new();
            for ask in asks {
                let ans = bletchley_index::access::answer(&g, &ask, st.platform.home());
                st.platform.record(
                    Actor::Principal(who.clone()),
                    ans.action,
                    ans.targets,
                    q.justification.as_deref(),
                    Outcome::Allowed,
                    None,
                )?;
                out.push(ans.json);
            }
            let first = out.remove(0);
            Ok((first, out))
        })
        .await
}

macro_rules! graph_endpoint {
    ($name:ident, $kind:literal, $doc:literal) => {
        #[doc = $doc]
        pub async fn $name(
            State(s): State<Arc<Shared>>,
            headers: HeaderMap,
            Q(q): Q<GraphQuery>,
        ) -> ApiResult<Json<Value>> {
            let c = caller(&s, &headers).await?;
            c.require(TokenScope::Read)?;
            Ok(Json(run_graph(&s, c.principal, $kind, q).await?))
        }
    };
}

graph_endpoint!(neighbours, "neighbours", "`GET /api/graph/neighbours`.");
graph_endpoint!(path, "path", "`GET /api/graph/path`.");
graph_endpoint!(common, "common", "`GET /api/graph/common`.");
graph_endpoint!(communities, "communities", "`GET /api/graph/communities`.");
graph_endpoint!(centrality, "centrality", "`GET /api/graph/centrality`.");

/// `GET /api/timeline` query.
#[derive(Deserialize)]
pub struct TimelineQuery {
    /// Comma-separated selectors.
    selectors: String,
    #[serde(default)]
    justification: Option<String>,
}

/// The timeline between comma-separated selectors, for a caller; gated
/// and audited.
pub(crate) async fn run_timeline(
    s: &Shared,
    who: String,
    selectors: &str,
    justification: Option<String>,
) -> ApiResult<(Vec<bletchley_index::graph::Event>, Option<String>)> {
    let chosen: Vec<String> = selectors
        .split(',')
        .filter(|x| !x.trim().is_empty())
        .map(|x| selector(Some(x.trim()), "selectors"))
        .collect::<ApiResult<_>>()?;
    if chosen.is_empty() || chosen.len() > 20 {
        return Err(ApiError::bad_request("selectors: 1 to 20, comma-separated"));
    }
    s.worker
        .run(move |st| {
            st.sync()?;
            let events = bletchley_index::access::timeline(
                &mut st.platform,
                &st.index,
                &who,
                &chosen,
                justification.as_deref(),
            )?;
            // The page's banner: the high-water mark of the items listed.
            let markings: Vec<Marking> = events
                .iter()
                .filter_map(|e| Marking::parse(&e.marking).ok())
                .collect();
            let hwm = Marking::high_water_mark(&markings, st.platform.home()).map(|m| m.render());
            Ok((events, hwm))
        })
        .await
}

/// `GET /api/timeline`.
pub async fn timeline(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Q(q): Q<TimelineQuery>,
) -> ApiResult<Json<Value>> {
    let who = reader(&s, &headers).await?;
    let (events, _) = run_timeline(&s, who, &q.selectors, q.justification).await?;
    Ok(Json(json!({ "events": events })))
}

/// `GET /api/openapi.json`: the API described, public.
pub async fn openapi() -> Json<Value> {
    Json(crate::openapi::document())
}

/// Any other `/api/…` path.
pub async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_such_endpoint",
        "no such endpoint",
    )
}
