//! Cross-referencing over HTTPS (`GET /api/xref`) and in the console (`/xref`).
//!
//! A request compares names for at most [`STEP`] and answers with what is found so far and how
//! much is left, so that the owner thread never holds other requests up for a whole
//! collection: the console's page asks again (`static/xref.js`) until nothing is left, showing
//! its progress, and an API client does the same. Each step takes up the sealed state the last
//! one saved, and is audited as `xref` with the items it shows.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use bletchley_index::xref::{XrefReport, XrefRequest};
use serde::Deserialize;

use crate::Shared;
use crate::api::{ApiResult, reader};
use crate::console::{api_error_page, who};
use crate::error::ApiError;
use crate::extract::Q;
use crate::html::{esc, page, url};

/// Longest a request compares names before it answers.
pub const STEP: Duration = Duration::from_secs(2);

/// Matches the console shows (best first); the API returns all.
const SHOWN: usize = 200;

/// `GET /api/xref` and `/xref` query.
#[derive(Deserialize, Default)]
pub struct XrefQuery {
    /// `agency/name` of the collection whose selectors are looked for.
    #[serde(default)]
    collection: Option<String>,
    /// Collections to look in, comma-separated; every other visible one when empty.
    #[serde(default)]
    against: Option<String>,
    /// Why (required to include bulk collections).
    #[serde(default)]
    justification: Option<String>,
}

impl XrefQuery {
    fn against(&self) -> Vec<String> {
        self.against
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect()
    }

    fn justification(&self) -> Option<String> {
        self.justification.clone().filter(|j| !j.trim().is_empty())
    }
}

/// One step of a cross-reference for `who`, and the platform's home nation (for banners).
async fn step(
    s: &Shared,
    who: String,
    collection: String,
    q: &XrefQuery,
) -> ApiResult<(XrefReport, bletchley_policy::Nation)> {
    let req = XrefRequest {
        collection,
        against: q.against(),
        time_limit: Some(STEP),
    };
    let justification = q.justification();
    s.worker
        .run(move |st| {
            st.sync()?;
            let report = bletchley_index::xref::run(
                &mut st.platform,
                &st.index,
                &who,
                &req,
                justification.as_deref(),
                &mut |_, _| {},
            )?;
            Ok((report, st.platform.home()))
        })
        .await
}

/// `GET /api/xref?collection=A[&against=B,C]`: one step; `names_left` says whether to ask
/// again.
pub async fn api(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Q(q): Q<XrefQuery>,
) -> ApiResult<Json<XrefReport>> {
    let who = reader(&s, &headers).await?;
    let collection = q
        .collection
        .clone()
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("collection is required (agency/name)"))?;
    Ok(Json(step(&s, who, collection, &q).await?.0))
}

/// The collections `who` may see, for the form.
async fn choices(s: &Shared, who: String, justification: Option<String>) -> ApiResult<Vec<String>> {
    s.worker
        .run(move |st| {
            let gate = st.platform.gate(&who)?;
            let admitted =
                bletchley_index::access::visible(&st.platform, &gate, justification.as_deref())?;
            Ok(admitted.names().keys().cloned().collect())
        })
        .await
}

/// `/xref`: the form, and the matches of the collection chosen, step by step.
pub async fn console(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<XrefQuery>,
) -> Response {
    let w = match who(&s, &headers) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let cols = match choices(&s, w.name.clone(), q.justification()).await {
        Ok(c) => c,
        Err(e) => return api_error_page(e, Some(&w.viewer())),
    };
    let chosen = q.collection.clone().filter(|c| !c.trim().is_empty());
    let against = q.against();
    let option = |c: &str, selected: bool| {
        format!(
            "<option value=\"{}\"{}>{}</option>",
            esc(c),
            if selected { " selected" } else { "" },
            esc(c)
        )
    };
    let mut body = String::from(
        "<h1>Cross-reference</h1><p class=\"meta\">The people, organisations and identifiers \
         (phones, e-mails, accounts, wallets, handsets) of one collection that appear in others \
         you may see; names match across scripts and spellings.</p>\
         <form method=\"get\" action=\"/xref\" id=\"xref-form\"><label>Collection <select name=\"collection\">",
    );
    for c in &cols {
        body.push_str(&option(c, chosen.as_deref() == Some(c.as_str())));
    }
    body.push_str("</select></label> <label>against <select name=\"against\">");
    body.push_str("<option value=\"\">every other collection</option>");
    for c in &cols {
        body.push_str(&option(c, against.len() == 1 && against[0] == *c));
    }
    body.push_str(&format!(
        "</select></label> <input name=\"justification\" placeholder=\"justification (bulk collections)\" value=\"{}\"> \
         <button type=\"submit\" id=\"xref-run\">Cross-reference</button></form>",
        esc(q.justification.as_deref().unwrap_or_default())
    ));
    let Some(collection) = chosen else {
        return Html(page(
            "Cross-reference",
            "OFFICIAL",
            Some(&w.viewer()),
            &body,
        ))
        .into_response();
    };
    let (report, home) = match step(&s, w.name.clone(), collection, &q).await {
        Ok(r) => r,
        Err(e) => return api_error_page(e, Some(&w.viewer())),
    };
    let shown = &report.matches[..report.matches.len().min(SHOWN)];
    if report.names_left > 0 {
        let done = report.names_total - report.names_left;
        let again = format!(
            "/xref?collection={}&against={}&justification={}",
            url(&report.collection),
            url(&q.against.clone().unwrap_or_default()),
            url(q.justification.as_deref().unwrap_or_default())
        );
        body.push_str(&format!(
            "<p id=\"xref-progress\" data-left=\"{}\">Comparing names: {done} of {} \
             <progress max=\"{}\" value=\"{done}\"></progress> — the matches so far are below; \
             <a href=\"{}\" id=\"xref-next\">go on</a></p><script src=\"/static/xref.js\" defer></script>",
            report.names_left,
            report.names_total,
            report.names_total,
            esc(&again)
        ));
    } else {
        body.push_str(&format!(
            "<p id=\"xref-progress\" data-left=\"0\" class=\"meta\">Every name compared ({} in all{}).</p>",
            report.names_total,
            if report.resumed {
                "; earlier comparisons reused"
            } else {
                ""
            }
        ));
    }
    body.push_str(&format!(
        "<h2>{} matches of {} in {}</h2>",
        report.matches.len(),
        esc(&report.collection),
        esc(&report.against.join(", "))
    ));
    let just = q
        .justification()
        .map(|j| format!("?justification={}", url(&j)))
        .unwrap_or_default();
    let items = |list: &[bletchley_index::xref::XrefItem], total: usize| {
        let mut out = String::from("<ul>");
        for i in list {
            out.push_str(&format!(
                "<li><a href=\"/items/{}{just}\">{}</a> <span class=\"mark\">{}</span></li>",
                url(&i.id),
                esc(&i.title),
                esc(&i.marking)
            ));
        }
        if total > list.len() {
            out.push_str(&format!(
                "<li class=\"meta\">and {} more</li>",
                total - list.len()
            ));
        }
        out.push_str("</ul>");
        out
    };
    body.push_str(
        "<table id=\"xref-matches\" class=\"side-by-side\"><tr><th>score</th><th>here</th><th>there</th></tr>",
    );
    let mut markings = Vec::new();
    for m in shown {
        for i in m.here.iter().chain(&m.there) {
            markings.push(i.marking.clone());
        }
        let there_name = if m.matched == m.entity {
            String::new()
        } else {
            format!("<b>{}</b><br>", esc(&m.matched))
        };
        body.push_str(&format!(
            "<tr class=\"xref-match\"><td>{:.2}</td><td><b>{}</b>{}</td><td>{there_name}<span class=\"meta\">{}</span>{}</td></tr>",
            m.score,
            esc(&m.entity),
            items(&m.here, m.here_total),
            esc(&m.collection),
            items(&m.there, m.there_total)
        ));
    }
    body.push_str("</table>");
    if report.matches.len() > shown.len() {
        body.push_str(&format!(
            "<p class=\"meta\">The best {} of {} are shown; the API (<code>/api/xref</code>) returns all.</p>",
            shown.len(),
            report.matches.len()
        ));
    }
    let parsed: Vec<bletchley_policy::Marking> =
        markings.iter().filter_map(|m| m.parse().ok()).collect();
    let banner = bletchley_policy::Marking::high_water_mark(&parsed, home)
        .map_or_else(|| "OFFICIAL".to_owned(), |m| m.render());
    Html(page("Cross-reference", &banner, Some(&w.viewer()), &body)).into_response()
}
