//! The console's Admin page: an agency admin's principals with their standing
//! and review state, and forms to disable, suspend, enable and confirm them.
//! Posts go through the same functions as the JSON API, behind the session's
//! CSRF token and the same-site check.

use std::sync::Arc;

use axum::extract::{Form, Path, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use bletchley_policy::Standing;
use serde::Deserialize;

use crate::Shared;
use crate::admin::{self, StandingChange};
use crate::console::{api_error_page, form_caller, time_text, who};
use crate::html::{esc, page};

fn standing_text(s: &Standing, now: i64) -> String {
    match s {
        Standing::Active => "active".into(),
        Standing::Disabled { since_s } => format!("disabled since {}", time_text(*since_s)),
        Standing::Suspended { until_s } if *until_s > now => {
            format!("suspended until {}", time_text(*until_s))
        }
        Standing::Suspended { .. } => "active (suspension ended)".into(),
    }
}

/// What the Admin page shows a principal: each section only to those it is for.
struct AdminView {
    /// Its principals and their reviews (admins).
    agency: Option<admin::AgencyAdmin>,
    /// Re-marking requests of the agency (admins and originators).
    requests: Option<Vec<bletchley_store::platform::RemarkRequest>>,
    /// Whether the viewer may approve them.
    originator: bool,
    /// The retention review queue (admins).
    queue: Option<Vec<bletchley_store::platform::Awaiting>>,
    /// Its collections and jobs (admins).
    overview: Option<bletchley_store::platform::AgencyOverview>,
    /// Its operations and their shares (admins).
    operations: Option<Vec<bletchley_store::platform::OperationView>>,
    /// The field sites it has work at; the inner `None` when this is no replication site
    /// (admins).
    sites: Option<Option<Vec<bletchley_sync::AgencySite>>>,
}

async fn admin_view(s: &Shared, who: String) -> Result<AdminView, crate::error::ApiError> {
    use bletchley_policy::Role;
    s.worker
        .run(move |st| {
            let me = st.platform.acting(&who)?;
            let is_admin = me.has_role(Role::Admin);
            let originator = me.has_role(Role::Originator);
            if !is_admin && !originator {
                return Err(bletchley_store::Error::RoleRequired {
                    principal: who.clone(),
                    role: "admin or originator",
                    act: "use the Admin page",
                }
                .into());
            }
            let agency = if is_admin {
                Some(admin::AgencyAdmin {
                    principals: st.platform.agency_principals(&who)?,
                    reviews: st.platform.reviews(&who)?,
                })
            } else {
                None
            };
            let (queue, overview, operations, sites) = if is_admin {
                (
                    Some(st.platform.retention_queue(Some(&who))?),
                    Some(st.platform.agency_overview(&who)?),
                    Some(st.platform.agency_operations(&who)?),
                    Some(bletchley_sync::agency_sites(&mut st.platform, &who)?),
                )
            } else {
                (None, None, None, None)
            };
            Ok(AdminView {
                agency,
                requests: Some(st.platform.remark_requests(Some(&who))?),
                originator,
                queue,
                overview,
                operations,
                sites,
            })
        })
        .await
}

/// `GET /admin`.
pub(crate) async fn admin_page(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let w = match who(&s, &headers) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let view = match admin_view(&s, w.name.clone()).await {
        Ok(v) => v,
        Err(e) => return api_error_page(e, Some(&w.viewer())),
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let csrf = esc(&w.csrf);
    let mut body = String::from("<h1>Administration</h1>");
    if let Some(agency) = &view.agency {
        principals_section(&mut body, agency, &w.name, &csrf, now);
    }
    if let Some(requests) = &view.requests {
        requests_section(&mut body, requests, view.originator, &w.name, &csrf);
    }
    if let Some(queue) = &view.queue {
        queue_section(&mut body, queue, &csrf);
    }
    if let Some(o) = &view.overview {
        overview_sections(&mut body, o);
        if let Some(ops) = &view.operations {
            let own: Vec<String> = o.collections.iter().map(|c| c.name.clone()).collect();
            crate::sharing::operations_section(&mut body, ops, &o.agency, &own, &csrf);
        }
    }
    if let Some(sites) = &view.sites {
        crate::sharing::sites_section(&mut body, sites.as_deref());
    }
    Html(page("Administration", "OFFICIAL", Some(&w.viewer()), &body)).into_response()
}

fn principals_section(
    body: &mut String,
    view: &admin::AgencyAdmin,
    me: &str,
    csrf: &str,
    now: i64,
) {
    body.push_str(
        "<h2>Principals</h2><table id=\"principals\"><tr><th>Name</th><th>Clearance</th><th>Codewords</th><th>Roles</th><th>Standing</th><th>Change</th></tr>",
    );
    for p in &view.principals {
        let name = esc(&p.name);
        let change = if p.name == me {
            "—".to_owned()
        } else {
            format!(
                "<form method=\"post\" action=\"/admin/principals/{name}\" class=\"inline standing\">\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<select name=\"state\" aria-label=\"new standing\"><option value=\"disabled\">disable</option><option value=\"suspended\">suspend until</option><option value=\"active\">enable</option></select>\
<input type=\"date\" name=\"until\" aria-label=\"suspended until\">\
<input type=\"text\" name=\"reason\" placeholder=\"why\" maxlength=\"1000\" aria-label=\"reason\">\
<button type=\"submit\">Apply</button></form>"
            )
        };
        body.push_str(&format!(
            "<tr id=\"p-{name}\"><td>{name}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"standing-state\">{}</td><td>{change}</td></tr>",
            esc(p.clearance.as_str()),
            esc(&p.compartments.iter().cloned().collect::<Vec<_>>().join(", ")),
            esc(&p.roles.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(", ")),
            esc(&standing_text(&p.standing, now)),
        ));
    }
    body.push_str("</table><h2>Access reviews</h2>");
    if view.reviews.is_empty() {
        body.push_str("<p id=\"no-reviews\">No access reviews are scheduled for your agency.</p>");
    } else {
        body.push_str("<table id=\"reviews\"><tr><th>Name</th><th>Holds</th><th>Last confirmed</th><th>Due</th><th></th></tr>");
        for r in &view.reviews {
            let name = esc(&r.principal);
            let confirm = if r.principal == me {
                "another admin confirms you".to_owned()
            } else {
                format!(
                    "<form method=\"post\" action=\"/admin/reviews/{name}\" class=\"inline\">\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<input type=\"text\" name=\"note\" placeholder=\"note\" maxlength=\"1000\" aria-label=\"note\">\
<button type=\"submit\">Confirm</button></form>"
                )
            };
            body.push_str(&format!(
                "<tr id=\"r-{name}\" class=\"{}\"><td>{name}</td><td>{}</td><td>{}</td><td>{}{}</td><td>{confirm}</td></tr>",
                if r.overdue { "overdue" } else { "due" },
                esc(&r.holds),
                r.last_s.map(|t| esc(&time_text(t))).unwrap_or_else(|| "never".into()),
                if r.overdue { "OVERDUE since " } else { "" },
                esc(&time_text(r.due_s)),
            ));
        }
        body.push_str("</table>");
    }
}

fn requests_section(
    body: &mut String,
    requests: &[bletchley_store::platform::RemarkRequest],
    originator: bool,
    me: &str,
    csrf: &str,
) {
    body.push_str("<h2>Re-marking requests</h2>");
    if requests.is_empty() {
        body.push_str(
            "<p id=\"no-remarks\">No downgrade or widening of your agency's items is waiting.</p>",
        );
        return;
    }
    body.push_str("<table id=\"remarks\"><tr><th>Request</th><th>Item</th><th>Change</th><th>Asked by</th><th>Authority</th><th></th></tr>");
    for r in requests {
        let id = esc(&r.id);
        let reject = format!(
            "<form method=\"post\" action=\"/admin/reclassify/{id}/reject\" class=\"inline\">\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<input type=\"text\" name=\"reason\" placeholder=\"why\" maxlength=\"1000\" aria-label=\"reason\">\
<button type=\"submit\">Reject</button></form>"
        );
        let decide = if originator && r.by != me {
            format!(
                "<form method=\"post\" action=\"/admin/reclassify/{id}/approve\" class=\"inline approve\">\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><button type=\"submit\">Approve</button></form>{reject}"
            )
        } else if r.by == me {
            format!("an originator approves{reject}")
        } else {
            "an originator approves".to_owned()
        };
        body.push_str(&format!(
            "<tr id=\"q-{id}\"><td>{id}</td><td><a href=\"/items/{}\">{}</a></td><td>{} → {}</td><td>{}</td><td>{}</td><td>{decide}</td></tr>",
            crate::html::url(&r.item),
            esc(&r.item),
            esc(&r.from),
            esc(&r.to),
            esc(&r.by),
            esc(&r.authority),
        ));
    }
    body.push_str("</table>");
}

fn queue_section(body: &mut String, queue: &[bletchley_store::platform::Awaiting], csrf: &str) {
    body.push_str("<h2>Retention review</h2>");
    if queue.is_empty() {
        body.push_str("<p id=\"no-retention\">Nothing of your agency's is waiting for a retention review.</p>");
        return;
    }
    body.push_str("<table id=\"retention\"><tr><th>Item</th><th>Collection</th><th>Marking</th><th>Ingested</th><th>Due under</th><th></th></tr>");
    for a in queue {
        let id = esc(&a.id);
        body.push_str(&format!(
            "<tr id=\"t-{id}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>\
<form method=\"post\" action=\"/admin/retention/{id}/destroy\" class=\"inline destroy\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><button type=\"submit\">Destroy</button></form>\
<form method=\"post\" action=\"/admin/retention/{id}/keep\" class=\"inline keep\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<input type=\"date\" name=\"until\" required aria-label=\"keep until\"><input type=\"text\" name=\"reason\" required placeholder=\"why\" maxlength=\"1000\" aria-label=\"reason\">\
<button type=\"submit\">Keep</button></form></td></tr>",
            esc(&a.title),
            esc(&a.collection),
            esc(&a.marking),
            esc(&time_text(a.created_ms / 1000)),
            esc(&a.under),
        ));
    }
    body.push_str("</table>");
}

#[derive(Deserialize)]
pub(crate) struct StandingForm {
    csrf: String,
    state: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    until: Option<String>,
}

/// `POST /admin/principals/{name}`.
pub(crate) async fn change_standing(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(f): Form<StandingForm>,
) -> Response {
    let w = match form_caller(&s, &headers, &f.csrf) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let change = StandingChange {
        until: if f.state == "suspended" {
            f.until.filter(|u| !u.is_empty())
        } else {
            None
        },
        state: f.state,
        reason: f.reason,
    };
    match admin::change_standing(&s, w.name.clone(), name, change).await {
        Ok(()) => admin_page(State(s), headers).await,
        Err(e) => api_error_page(e, Some(&w.viewer())),
    }
}

#[derive(Deserialize)]
pub(crate) struct ConfirmForm {
    csrf: String,
    #[serde(default)]
    note: Option<String>,
}

/// `POST /admin/reviews/{name}`.
pub(crate) async fn confirm_review(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(f): Form<ConfirmForm>,
) -> Response {
    let w = match form_caller(&s, &headers, &f.csrf) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    match admin::confirm_review(&s, w.name.clone(), name, f.note.unwrap_or_default()).await {
        Ok(()) => admin_page(State(s), headers).await,
        Err(e) => api_error_page(e, Some(&w.viewer())),
    }
}

fn keep_text(keep_s: i64) -> String {
    const DAY: i64 = 86_400;
    if keep_s % (365 * DAY) == 0 {
        format!("{} years", keep_s / (365 * DAY))
    } else if keep_s % DAY == 0 {
        format!("{} days", keep_s / DAY)
    } else {
        format!("{keep_s} s")
    }
}

fn overview_sections(body: &mut String, o: &bletchley_store::platform::AgencyOverview) {
    body.push_str(&format!(
        "<h2>Collections</h2><table id=\"collections\"><tr><th>Collection</th><th>Items</th><th>Bulk</th><th>Legal hold</th><th>Retention</th><th>Review before destruction</th></tr>{}</table>\
<p class=\"meta\">Joint operations and their shares are on the <a href=\"/operations\">Operations</a> page.</p>",
        o.collections
            .iter()
            .map(|c| format!(
                "<tr id=\"c-{}\"><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&c.name.replace('/', "-")),
                esc(&c.name),
                c.items,
                if c.bulk { "bulk" } else { "" },
                esc(c.hold.as_deref().unwrap_or("")),
                c.keep_s.map(keep_text).unwrap_or_else(|| "by classification, if any".into()),
                if c.review { "yes" } else { "no" },
            ))
            .collect::<String>()
    ));
    body.push_str("<h2>Jobs</h2><p id=\"jobs-summary\">");
    if o.jobs.by_state.is_empty() {
        body.push_str("No jobs for your agency's principals.");
    } else {
        body.push_str(
            &o.jobs
                .by_state
                .iter()
                .map(|(state, n)| format!("{n} {}", esc(state)))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    body.push_str("</p>");
    if !o.jobs.failed.is_empty() {
        body.push_str("<table id=\"failed-jobs\"><tr><th>Job</th><th>Kind</th><th>Item</th><th>For</th><th>Attempts</th><th>Error</th></tr>");
        for j in &o.jobs.failed {
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}/{}</td><td>{}</td></tr>",
                j.id,
                esc(&j.kind),
                esc(&j.item),
                esc(&j.principal),
                j.attempts,
                j.max_attempts,
                esc(j.error.as_deref().unwrap_or("")),
            ));
        }
        body.push_str("</table>");
    }
}
