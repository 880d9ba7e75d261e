//! Agency administration for an agency's admins: its principals with their
//! standing, disabling, suspending and enabling them, and the access-review
//! queue. The JSON API and the console's Admin page call the same functions,
//! which reach the store only through its gated, audited calls (an admin acts
//! on its own agency's principals, never on itself).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use bletchley_policy::{Principal, Standing};
use bletchley_store::platform::ReviewStatus;
use serde::{Deserialize, Serialize};

use crate::Shared;
use crate::api::{ApiResult, reader, writer};
use crate::error::ApiError;
use crate::extract::{J, MAX_PARAM};

/// What an admin sees of its agency.
#[derive(Serialize)]
pub struct AgencyAdmin {
    /// Its principals, by name.
    pub principals: Vec<Principal>,
    /// The access-review queue (empty when no schedule is set).
    pub reviews: Vec<ReviewStatus>,
}

/// A change of standing.
#[derive(Deserialize)]
pub struct StandingChange {
    /// `disabled`, `suspended` or `active`.
    pub state: String,
    /// Why (required to disable or suspend; kept in the audit log).
    pub reason: Option<String>,
    /// For `suspended`: until when, `YYYY-MM-DD` (UTC midnight) or RFC 3339.
    pub until: Option<String>,
}

/// A review confirmation.
#[derive(Deserialize)]
pub struct Confirm {
    /// A note kept in the audit log.
    pub note: Option<String>,
}

pub(crate) async fn agency_admin(s: &Shared, who: String) -> ApiResult<AgencyAdmin> {
    s.worker
        .run(move |st| {
            let principals = st.platform.agency_principals(&who)?;
            let reviews = st.platform.reviews(&who)?;
            Ok(AgencyAdmin {
                principals,
                reviews,
            })
        })
        .await
}

fn parse_until(s: &str) -> ApiResult<i64> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t.unix_timestamp());
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &fmt)
        .map(|d| d.midnight().assume_utc().unix_timestamp())
        .map_err(|_| ApiError::bad_request("until: expected YYYY-MM-DD or RFC 3339"))
}

pub(crate) async fn change_standing(
    s: &Shared,
    who: String,
    name: String,
    c: StandingChange,
) -> ApiResult<()> {
    let reason = c.reason.unwrap_or_default();
    if name.is_empty() || name.len() > MAX_PARAM || reason.len() > 1000 {
        return Err(ApiError::bad_request(
            "name: 1 to 256 characters; reason: at most 1000",
        ));
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let standing = match (c.state.as_str(), c.until.as_deref()) {
        ("active", None) => Standing::Active,
        ("disabled", None) => Standing::Disabled { since_s: now },
        ("suspended", Some(u)) => Standing::Suspended {
            until_s: parse_until(u)?,
        },
        ("suspended", None) => {
            return Err(ApiError::bad_request("a suspension needs until"));
        }
        ("active" | "disabled", Some(_)) => {
            return Err(ApiError::bad_request("until goes only with suspended"));
        }
        _ => {
            return Err(ApiError::bad_request(
                "state: expected active, disabled or suspended",
            ));
        }
    };
    s.worker
        .run(move |st| {
            Ok(st
                .platform
                .set_standing(Some(&who), &name, standing, &reason)?)
        })
        .await
}

pub(crate) async fn confirm_review(
    s: &Shared,
    who: String,
    name: String,
    note: String,
) -> ApiResult<()> {
    if name.is_empty() || name.len() > MAX_PARAM || note.len() > 1000 {
        return Err(ApiError::bad_request(
            "name: 1 to 256 characters; note: at most 1000",
        ));
    }
    s.worker
        .run(move |st| Ok(st.platform.confirm_review(Some(&who), &name, &note)?))
        .await
}

/// `GET /api/admin/principals`: the caller's agency, for its admins.
pub async fn principals(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
) -> ApiResult<Json<AgencyAdmin>> {
    let who = reader(&s, &headers).await?;
    Ok(Json(agency_admin(&s, who).await?))
}

/// `POST /api/admin/principals/{name}/standing`.
pub async fn standing(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    J(body): J<StandingChange>,
) -> ApiResult<Json<serde_json::Value>> {
    let who = writer(&s, &headers).await?;
    change_standing(&s, who, name.clone(), body).await?;
    Ok(Json(
        serde_json::json!({ "principal": name, "changed": true }),
    ))
}

/// `POST /api/admin/principals/{name}/review`.
pub async fn review(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    J(body): J<Confirm>,
) -> ApiResult<Json<serde_json::Value>> {
    let who = writer(&s, &headers).await?;
    confirm_review(&s, who, name.clone(), body.note.unwrap_or_default()).await?;
    Ok(Json(
        serde_json::json!({ "principal": name, "confirmed": true }),
    ))
}

/// `GET /api/admin/overview`: the caller's agency's collections and jobs (admins).
pub async fn overview(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
) -> ApiResult<Json<bletchley_store::platform::AgencyOverview>> {
    let who = reader(&s, &headers).await?;
    Ok(Json(
        s.worker
            .run(move |st| Ok(st.platform.agency_overview(&who)?))
            .await?,
    ))
}
