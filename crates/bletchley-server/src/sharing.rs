//! An agency admin's view of where its work goes: the joint operations its agency is a
//! member of, with every share (its own it may share and withdraw), and the field sites its
//! collections or operations are assigned to, with what is held back from them and why. The
//! JSON API and the Admin page's sections and forms call the same functions, which reach the
//! store only through its gated, audited calls.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Form, Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use bletchley_store::platform::OperationView;
use bletchley_sync::AgencySite;
use serde::{Deserialize, Serialize};

use crate::Shared;
use crate::api::{ApiResult, reader, writer};
use crate::console::{api_error_page, form_caller, time_text};
use crate::error::ApiError;
use crate::extract::{J, MAX_PARAM};
use crate::html::{esc, url};

/// The operations of the caller's agency.
#[derive(Serialize)]
pub struct AgencyOperations {
    /// Operations its agency is a member of, by name.
    pub operations: Vec<OperationView>,
}

/// The field sites the caller's agency has work at.
#[derive(Serialize)]
pub struct AgencySites {
    /// Whether this node is a replication site at all.
    pub replication: bool,
    /// The sites its collections or operations are assigned to.
    pub sites: Vec<AgencySite>,
}

/// A collection to share or withdraw.
#[derive(Deserialize)]
pub struct ShareChange {
    /// `agency/name`, of the caller's agency.
    pub collection: String,
}

pub(crate) async fn operations(s: &Shared, who: String) -> ApiResult<Vec<OperationView>> {
    s.worker
        .run(move |st| Ok(st.platform.agency_operations(&who)?))
        .await
}

pub(crate) async fn sites(s: &Shared, who: String) -> ApiResult<Option<Vec<AgencySite>>> {
    s.worker
        .run(move |st| Ok(bletchley_sync::agency_sites(&mut st.platform, &who)?))
        .await
}

async fn change_share(
    s: &Shared,
    who: String,
    operation: String,
    collection: String,
    withdraw: bool,
) -> ApiResult<()> {
    if operation.is_empty()
        || operation.len() > MAX_PARAM
        || collection.is_empty()
        || collection.len() > MAX_PARAM
    {
        return Err(ApiError::bad_request(
            "operation and collection: 1 to 256 characters",
        ));
    }
    s.worker
        .run(move |st| {
            Ok(st
                .platform
                .share_as(&who, &operation, &collection, withdraw)?)
        })
        .await
}

/// `GET /api/admin/operations`.
pub async fn api_operations(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
) -> ApiResult<Json<AgencyOperations>> {
    let who = reader(&s, &headers).await?;
    Ok(Json(AgencyOperations {
        operations: operations(&s, who).await?,
    }))
}

/// `GET /api/admin/sites`.
pub async fn api_sites(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
) -> ApiResult<Json<AgencySites>> {
    let who = reader(&s, &headers).await?;
    let found = sites(&s, who).await?;
    Ok(Json(AgencySites {
        replication: found.is_some(),
        sites: found.unwrap_or_default(),
    }))
}

/// `POST /api/admin/operations/{name}/share` and `/withdraw`.
pub async fn api_share(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path((operation, change)): Path<(String, String)>,
    J(body): J<ShareChange>,
) -> ApiResult<Json<serde_json::Value>> {
    let withdraw = match change.as_str() {
        "share" => false,
        "withdraw" => true,
        _ => return Err(ApiError::not_found()),
    };
    let who = writer(&s, &headers).await?;
    change_share(
        &s,
        who,
        operation.clone(),
        body.collection.clone(),
        withdraw,
    )
    .await?;
    Ok(Json(serde_json::json!({
        "operation": operation,
        "collection": body.collection,
        "shared": !withdraw,
    })))
}

#[derive(Deserialize)]
pub(crate) struct ShareForm {
    csrf: String,
    collection: String,
}

/// `POST /admin/operations/{name}/share` and `/withdraw` (the Admin page's forms).
pub(crate) async fn console_share(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path((operation, change)): Path<(String, String)>,
    Form(f): Form<ShareForm>,
) -> Response {
    let w = match form_caller(&s, &headers, &f.csrf) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let withdraw = change == "withdraw";
    if !withdraw && change != "share" {
        return api_error_page(ApiError::not_found(), Some(&w.viewer()));
    }
    match change_share(&s, w.name.clone(), operation, f.collection, withdraw).await {
        Ok(()) => crate::console_admin::admin_page(State(s), headers).await,
        Err(e) => api_error_page(e, Some(&w.viewer())),
    }
}

/// The Admin page's *Operations* section: each operation with its members, dates and shares;
/// the agency's own current shares can be withdrawn, and its collections not shared yet can
/// be shared.
pub(crate) fn operations_section(
    body: &mut String,
    ops: &[OperationView],
    agency: &str,
    own: &[String],
    csrf: &str,
) {
    body.push_str("<h2>Operations</h2>");
    if ops.is_empty() {
        body.push_str(
            "<p id=\"no-operations\">Your agency is not a member of any joint operation.</p>",
        );
        return;
    }
    let mine = format!("{agency}/");
    body.push_str("<table id=\"operations\"><tr><th>Operation</th><th>Members</th><th>Runs</th><th>Shared collections</th><th>Share</th></tr>");
    for o in ops {
        let op = &o.operation;
        let name = esc(&op.name);
        let action = |what: &str| format!("/admin/operations/{}/{what}", url(&op.name));
        let members = if op.members.is_empty() {
            op.agencies.iter().cloned().collect::<Vec<_>>().join(", ")
        } else {
            format!(
                "{} (only {})",
                op.agencies.iter().cloned().collect::<Vec<_>>().join(", "),
                op.members.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        };
        let runs = format!(
            "{} to {}{}",
            time_text(op.start),
            op.end.map_or("open end".to_owned(), time_text),
            if o.active { "" } else { " (not running)" }
        );
        let mut shares = String::from("<ul>");
        let mut current = Vec::new();
        for sh in &o.shares {
            let withdrawn = sh.withdrawn.is_some();
            if !withdrawn {
                current.push(sh.collection.clone());
            }
            let form = if !withdrawn && sh.collection.starts_with(&mine) {
                format!(
                    "<form method=\"post\" action=\"{}\" class=\"inline withdraw\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<input type=\"hidden\" name=\"collection\" value=\"{}\"><button type=\"submit\">Withdraw</button></form>",
                    esc(&action("withdraw")),
                    esc(&sh.collection)
                )
            } else {
                String::new()
            };
            shares.push_str(&format!(
                "<li>{} since {}{}{form}</li>",
                esc(&sh.collection),
                esc(&time_text(sh.since)),
                sh.withdrawn
                    .map(|w| format!(", withdrawn {}", esc(&time_text(w))))
                    .unwrap_or_default()
            ));
        }
        shares.push_str("</ul>");
        let choices: String = own
            .iter()
            .filter(|c| !current.contains(c))
            .map(|c| format!("<option value=\"{0}\">{0}</option>", esc(c)))
            .collect();
        let share = if choices.is_empty() {
            String::new()
        } else {
            format!(
                "<form method=\"post\" action=\"{}\" class=\"inline share\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<select name=\"collection\" aria-label=\"collection to share into {name}\">{choices}</select><button type=\"submit\">Share</button></form>",
                esc(&action("share"))
            )
        };
        body.push_str(&format!(
            "<tr id=\"op-{name}\"><td>{name}</td><td>{}</td><td>{}</td><td>{shares}</td><td>{share}</td></tr>",
            esc(&members),
            esc(&runs),
        ));
    }
    body.push_str("</table>");
}

/// The Admin page's *Field sites* section.
pub(crate) fn sites_section(body: &mut String, sites: Option<&[AgencySite]>) {
    body.push_str("<h2>Field sites</h2>");
    let Some(sites) = sites else {
        body.push_str("<p id=\"no-sites\">This platform is not a replication site: nothing of your agency's goes to field sites.</p>");
        return;
    };
    if sites.is_empty() {
        body.push_str("<p id=\"no-sites\">None of your agency's collections or operations is assigned to a field site.</p>");
        return;
    }
    body.push_str("<table id=\"sites\"><tr><th>Site</th><th>Where</th><th>Ceiling</th><th>Staff</th><th>Your collections and operations</th><th>State</th><th>Held back</th></tr>");
    for s in sites {
        let state = if s.revoked {
            "revoked".to_owned()
        } else {
            format!(
                "{}; acknowledged {} of the {} operations logged for it so far",
                s.enrolment, s.acknowledged, s.logged
            )
        };
        let held = if s.held_back.is_empty() {
            "nothing".to_owned()
        } else {
            s.held_back.describe()
        };
        let assigned: Vec<String> = s
            .collections
            .iter()
            .cloned()
            .chain(s.operations.iter().map(|o| format!("operation {o}")))
            .collect();
        body.push_str(&format!(
            "<tr id=\"site-{0}\"><td>{0}</td><td>{1}</td><td>{2}</td><td>{3}</td><td>{4}</td><td>{5}</td><td>{6}</td></tr>",
            esc(&s.name),
            esc(&s.jurisdiction),
            esc(&s.ceiling),
            esc(&s.nationalities.join(", ")),
            esc(&assigned.join(", ")),
            esc(&state),
            esc(&held),
        ));
    }
    body.push_str("</table>");
}
