//! The web console: server-rendered pages over the same gated calls as the
//! API. Every page carries the high-water mark of what it shows in its top
//! and bottom banners; a page about something denied says "not found or not
//! permitted" and nothing more.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, Multipart, Path, Query, State};
use axum::http::header::{CONTENT_TYPE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use bletchley_policy::Marking;
use serde::Deserialize;

use crate::api::{self, GraphQuery, SearchQuery, Upload};
use crate::auth::{self, Via};
use crate::error::ApiError;
use crate::html::{CSS, Viewer, esc, page, url};
use crate::{ClientAddr, Shared};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/", get(|| async { redirect("/search") }))
        .route("/login", get(login_form).post(login))
        .route("/logout", axum::routing::post(logout))
        .route("/search", get(search))
        .route("/items/{id}", get(item))
        .route("/items/{id}/media", get(media))
        .route("/items/{id}/similar", get(similar))
        .route(
            "/items/{id}/transcript",
            get(crate::console_transcript::fragment),
        )
        .route(
            "/items/{id}/subtitles",
            get(crate::console_transcript::subtitles),
        )
        .route("/items/{id}/notes", axum::routing::post(add_note))
        .route("/graph", get(graph))
        .route("/timeline", get(timeline))
        .route("/xref", get(crate::xref::console))
        .route("/operations", get(operations))
        .route("/alerts", get(alerts))
        .route("/cases", get(cases))
        .route("/cases/{id}", get(case).post(change_case))
        .route("/cases/{id}/playbook", post(run_playbook))
        .route("/cases/{id}/approve", post(approve_step))
        .route("/audit", get(audit))
        .route("/admin", get(crate::console_admin::admin_page))
        .route(
            "/admin/operations/{name}/{change}",
            post(crate::sharing::console_share),
        )
        .route(
            "/items/{id}/reclassify",
            post(crate::remarking::console_reclassify),
        )
        .route(
            "/admin/reclassify/{request}/approve",
            post(crate::remarking::console_approve),
        )
        .route(
            "/admin/reclassify/{request}/reject",
            post(crate::remarking::console_reject),
        )
        .route(
            "/admin/retention/{id}/{decision}",
            post(crate::remarking::console_decide),
        )
        .route("/oversight", get(crate::console_oversight::oversight_page))
        .route(
            "/oversight/report.pdf",
            get(crate::console_oversight::oversight_pdf),
        )
        .route(
            "/admin/principals/{name}",
            post(crate::console_admin::change_standing),
        )
        .route(
            "/admin/reviews/{name}",
            post(crate::console_admin::confirm_review),
        )
        .route("/upload", get(upload_form).post(upload))
        .route(
            "/static/console.css",
            get(|| async { ([(CONTENT_TYPE, "text/css; charset=utf-8")], CSS) }),
        )
        .route(
            "/static/graph.js",
            get(|| async {
                (
                    [(CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    include_str!("static/graph.js"),
                )
            }),
        )
        .route(
            "/static/xref.js",
            get(|| async {
                (
                    [(CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    include_str!("static/xref.js"),
                )
            }),
        )
        .route(
            "/static/transcript.js",
            get(|| async {
                (
                    [(CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    include_str!("static/transcript.js"),
                )
            }),
        )
        .fallback(|| async { not_found(None) })
}

fn redirect(to: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, to)]).into_response()
}

/// A logged-in browser: name and CSRF token.
pub(crate) struct Who {
    pub(crate) name: String,
    pub(crate) csrf: String,
    token: String,
}

impl Who {
    pub(crate) fn viewer(&self) -> Viewer<'_> {
        Viewer {
            name: &self.name,
            csrf: &self.csrf,
        }
    }
}

/// The session behind the request, or a redirect to the login page.
pub(crate) fn who(s: &Shared, headers: &HeaderMap) -> Result<Who, Box<Response>> {
    let token = auth::cookie_token(headers).ok_or_else(|| Box::new(redirect("/login")))?;
    let sess = s
        .sessions
        .get(&token)
        .ok_or_else(|| Box::new(redirect("/login")))?;
    Ok(Who {
        name: sess.principal,
        csrf: sess.csrf,
        token,
    })
}

/// Cross-site form posts are refused before anything else.
fn same_site(headers: &HeaderMap) -> Result<(), Box<Response>> {
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        None | Some("same-origin") | Some("none") => Ok(()),
        Some(_) => Err(Box::new(error_page(
            StatusCode::FORBIDDEN,
            None,
            "cross-site form submissions are refused",
        ))),
    }
}

fn not_found(viewer: Option<&Viewer<'_>>) -> Response {
    error_page(StatusCode::NOT_FOUND, viewer, "not found or not permitted")
}

fn error_page(status: StatusCode, viewer: Option<&Viewer<'_>>, msg: &str) -> Response {
    (
        status,
        Html(page(
            "Error",
            "OFFICIAL",
            viewer,
            &format!("<p class=\"error\" id=\"error\">{}</p>", esc(msg)),
        )),
    )
        .into_response()
}

pub(crate) fn api_error_page(e: ApiError, viewer: Option<&Viewer<'_>>) -> Response {
    if e.status == StatusCode::NOT_FOUND {
        return not_found(viewer);
    }
    error_page(e.status, viewer, &e.message)
}

fn login_page(msg: Option<&str>) -> String {
    let err = msg
        .map(|m| format!("<p class=\"error\" id=\"error\">{}</p>", esc(m)))
        .unwrap_or_default();
    page(
        "Log in",
        "OFFICIAL",
        None,
        &format!(
            "<h1>Log in</h1>{err}<form method=\"post\" action=\"/login\">\
<p><label>Name <input name=\"name\" id=\"name\" autocomplete=\"username\" required></label></p>\
<p><label>Password <input type=\"password\" name=\"password\" id=\"password\" autocomplete=\"current-password\" required></label></p>\
<p><label>One-time code <input name=\"code\" id=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" pattern=\"[0-9]{{6}}\" maxlength=\"6\" placeholder=\"if enrolled\"></label></p>\
<p><button type=\"submit\" id=\"login\">Log in</button></p></form>"
        ),
    )
}

async fn login_form() -> Html<String> {
    Html(login_page(None))
}

#[derive(Deserialize)]
struct LoginForm {
    name: String,
    password: String,
    #[serde(default)]
    code: Option<String>,
}

async fn login(
    State(s): State<Arc<Shared>>,
    axum::Extension(addr): axum::Extension<ClientAddr>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    if let Err(r) = same_site(&headers) {
        return *r;
    }
    match api::login_as(&s, &addr, &f.name, &f.password, f.code.as_deref()).await {
        Ok((token, _)) => {
            let mut r = redirect("/search");
            if let Ok(v) = HeaderValue::from_str(&auth::set_cookie(&token)) {
                r.headers_mut().insert(SET_COOKIE, v);
            }
            r
        }
        Err(e) => (e.status, Html(login_page(Some(&e.message)))).into_response(),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(r) = same_site(&headers) {
        return *r;
    }
    let w = match who(&s, &headers) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let caller = auth::Caller {
        principal: w.name.clone(),
        via: Via::Session {
            token: w.token.clone(),
            csrf: w.csrf.clone(),
        },
    };
    if let Err(e) = caller.check_csrf(Some(&f.csrf)) {
        return api_error_page(e, Some(&w.viewer()));
    }
    s.sessions.revoke(&w.token);
    let mut r = redirect("/login");
    if let Ok(v) = HeaderValue::from_str(&auth::clear_cookie()) {
        r.headers_mut().insert(SET_COOKIE, v);
    }
    r
}

#[derive(Deserialize, Default)]
struct SearchForm {
    #[serde(default)]
    q: String,
    #[serde(default)]
    offset: usize,
    #[serde(default)]
    justification: Option<String>,
    /// `lexical` (the default), `semantic` or `hybrid`.
    #[serde(default)]
    mode: Option<String>,
}

async fn search(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(f): Query<SearchForm>,
) -> Response {
    let w = match who(&s, &headers) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let just = f.justification.clone().filter(|j| !j.trim().is_empty());
    let mode = f.mode.as_deref().unwrap_or("lexical");
    let mut body = format!(
        "<form method=\"get\" action=\"/search\" class=\"searchbox\">\
<input name=\"q\" id=\"q\" size=\"50\" value=\"{}\" placeholder=\"harbour AND courier, \\\"exact phrase\\\", entity:+447911123456\" autofocus>\
<input name=\"justification\" id=\"justification\" size=\"24\" value=\"{}\" placeholder=\"justification (bulk collections)\">\
<select name=\"mode\" id=\"mode\" title=\"words, meaning, or both\">{}</select>\
<button type=\"submit\" id=\"go\">Search</button></form>",
        esc(&f.q),
        esc(just.as_deref().unwrap_or("")),
        ["lexical", "semantic", "hybrid"]
            .iter()
            .map(|m| format!(
                "<option value=\"{m}\"{}>{}</option>",
                if mode == *m { " selected" } else { "" },
                match *m {
                    "lexical" => "words",
                    "semantic" => "meaning",
                    _ => "words and meaning",
                }
            ))
            .collect::<String>()
    );
    if f.q.trim().is_empty() {
        return Html(page("Search", "OFFICIAL", Some(&w.viewer()), &body)).into_response();
    }
    let r = match api::run_search(
        &s,
        w.name.clone(),
        SearchQuery::new(f.q.clone(), f.offset, just.clone()).with_mode(f.mode.clone()),
    )
    .await
    {
        Ok(r) => r,
        Err(e) => {
            body.push_str(&format!(
                "<p class=\"error\" id=\"error\">{}</p>",
                esc(&e.message)
            ));
            return (
                e.status,
                Html(page("Search", "OFFICIAL", Some(&w.viewer()), &body)),
            )
                .into_response();
        }
    };
    let marking = r.page_marking.clone().unwrap_or_else(|| "OFFICIAL".into());
    body.push_str(&format!(
        "<p class=\"meta\" id=\"total\" data-total=\"{}\">{} matches</p><div class=\"layout\"><section id=\"hits\">",
        r.total, r.total
    ));
    for h in &r.hits {
        // A hit in a recording's transcript or translation also opens the recording at the
        // words it matched.
        let play = match &h.derived_from {
            Some(source)
                if h.title.ends_with(".transcript.json")
                    || h.title.ends_with(".translation.json") =>
            {
                format!(
                    " · <a class=\"play-at\" href=\"/items/{}?{}find={}#transcript\">play the recording at these words</a>",
                    url(source),
                    just.as_deref()
                        .map(|j| format!("justification={}&amp;", url(j)))
                        .unwrap_or_default(),
                    url(&f.q)
                )
            }
            _ => String::new(),
        };
        body.push_str(&format!(
            "<article class=\"hit\"><h3><a href=\"/items/{}{}\">{}</a></h3>\
<div class=\"meta\"><span class=\"mark\">{}</span> · {} · score {:.2}{play}</div><p>{}</p></article>",
            esc(&h.id),
            justification_query(just.as_deref()),
            esc(&h.title),
            esc(&h.marking),
            esc(&h.collection),
            h.score,
            // Highlights arrive HTML-escaped with <b> marks from tantivy.
            h.highlight
        ));
    }
    let base = format!(
        "/search?q={}{}&mode={}",
        url(&f.q),
        just.as_deref()
            .map(|j| format!("&justification={}", url(j)))
            .unwrap_or_default(),
        url(mode)
    );
    body.push_str("<p class=\"paging\">");
    if f.offset > 0 {
        body.push_str(&format!(
            "<a href=\"{}&offset={}\" id=\"prev\">← previous</a> ",
            esc(&base),
            f.offset.saturating_sub(20)
        ));
    }
    if f.offset + r.hits.len() < r.total {
        body.push_str(&format!(
            "<a href=\"{}&offset={}\" id=\"next\">next →</a>",
            esc(&base),
            f.offset + 20
        ));
    }
    body.push_str("</p></section><aside class=\"facets\" id=\"facets\">");
    for (name, values) in &r.facets {
        body.push_str(&format!("<h4>{}</h4><ul>", esc(name)));
        for (v, n) in values {
            body.push_str(&format!(
                "<li>{} <span class=\"meta\">({n})</span></li>",
                esc(v)
            ));
        }
        body.push_str("</ul>");
    }
    body.push_str("</aside></div>");
    Html(page("Search", &marking, Some(&w.viewer()), &body)).into_response()
}

/// A document and its translation in two columns, line beside line (the engine keeps the
/// line structure, so paragraphs and sentences on lines of their own stay aligned), blank
/// lines left out of both alike, at most 2,000 rows.
fn side_by_side(original: &str, english: &str) -> String {
    let (left, right): (Vec<&str>, Vec<&str>) =
        (original.lines().collect(), english.lines().collect());
    let (a, b): (Vec<&str>, Vec<&str>) = (0..left.len().max(right.len()))
        .map(|i| {
            (
                left.get(i).copied().unwrap_or(""),
                right.get(i).copied().unwrap_or(""),
            )
        })
        .filter(|(x, y)| !(x.trim().is_empty() && y.trim().is_empty()))
        .unzip();
    let rows = a.len().max(b.len()).min(2000);
    let mut out = String::from(
        "<h2>Translation</h2><table class=\"side-by-side\" id=\"side-by-side\"><tr><th>Original</th><th>English</th></tr>",
    );
    for i in 0..rows {
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td></tr>",
            esc(a.get(i).copied().unwrap_or("")),
            esc(b.get(i).copied().unwrap_or(""))
        ));
    }
    out.push_str("</table>");
    out
}

/// More like this: the items nearest one in meaning, each with the passage that matched.
async fn similar(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<ItemQuery>,
) -> Response {
    let w = match who(&s, &headers) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let just = q.justification.clone().filter(|j| !j.trim().is_empty());
    let r = match api::run_similar(
        &s,
        w.name.clone(),
        id.clone(),
        api::SimilarQuery::first_page(just.clone()),
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return api_error_page(e, Some(&w.viewer())),
    };
    let marking = r.page_marking.clone().unwrap_or_else(|| "OFFICIAL".into());
    let mut body = format!(
        "<h1>More like <a href=\"/items/{}{}\">this item</a></h1><section id=\"hits\">",
        url(&id),
        justification_query(just.as_deref())
    );
    if r.hits.is_empty() {
        body.push_str("<p class=\"meta\">nothing else you may see is near it</p>");
    }
    for h in &r.hits {
        body.push_str(&format!(
            "<article class=\"hit\"><h3><a href=\"/items/{}{}\">{}</a></h3>\
<div class=\"meta\"><span class=\"mark\">{}</span> · {} · similarity {:.2}</div><p>{}</p></article>",
            url(&h.id),
            justification_query(just.as_deref()),
            esc(&h.title),
            esc(&h.marking),
            esc(&h.collection),
            h.score,
            // The passage arrives HTML-escaped.
            h.highlight
        ));
    }
    body.push_str("</section>");
    Html(page("More like this", &marking, Some(&w.viewer()), &body)).into_response()
}

#[derive(Deserialize, Default)]
struct ItemQuery {
    #[serde(default)]
    justification: Option<String>,
    /// A recording opens at the first segment holding one of these words (a search's
    /// query, from a hit in its transcript).
    #[serde(default)]
    find: Option<String>,
}

async fn item(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<ItemQuery>,
) -> Response {
    let w = match who(&s, &headers) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let api::ItemRead {
        meta,
        content,
        derived,
    } = match api::read_item(&s, w.name.clone(), id, q.justification.clone(), true).await {
        Ok(x) => x,
        Err(e) => return api_error_page(e, Some(&w.viewer())),
    };
    let notes = {
        let (who, id, just) = (w.name.clone(), meta.id.clone(), q.justification.clone());
        match s
            .worker
            .run(move |st| Ok(st.platform.annotations(&who, &id, just.as_deref())?))
            .await
        {
            Ok(n) => n,
            Err(e) => return api_error_page(e, Some(&w.viewer())),
        }
    };
    let ex = bletchley_index::extract::extract_item(&meta.title, &content, meta.generation);
    let entities = bletchley_index::entities::extract(&ex.text);
    let mut terms: Vec<String> = entities.iter().map(|m| m.term()).collect();
    terms.sort();
    terms.dedup();
    let preview: String = ex.text.chars().take(100_000).collect();
    let mut body = format!(
        "<h1 id=\"title\">{}</h1><table class=\"meta\" id=\"provenance\">\
<tr><th>Marking</th><td id=\"marking\">{}</td></tr><tr><th>Collection</th><td>{}</td></tr>\
<tr><th>Legal authority</th><td>{}</td></tr><tr><th>Ingested by</th><td>{}</td></tr>\
<tr><th>Type</th><td>{}</td></tr><tr><th>Size</th><td>{} bytes</td></tr></table>",
        esc(&meta.title),
        esc(&meta.marking),
        esc(&meta.collection),
        esc(meta.authority.as_deref().unwrap_or("—")),
        esc(&meta.ingested_by),
        esc(ex.kind),
        meta.size
    );
    // "More like this" where semantic search is on.
    let semantic = s
        .worker
        .run(|st| Ok(st.platform.semantic_model()?.is_some()))
        .await
        .unwrap_or(false);
    if semantic {
        body.push_str(&format!(
            "<p><a id=\"similar\" href=\"/items/{}/similar{}\">More like this</a> (items nearest in meaning)</p>",
            url(&meta.id),
            justification_query(q.justification.as_deref()),
        ));
    }
    if let Some(source) = &meta.derived_from {
        body.push_str(&format!(
            "<p id=\"derived-from\">{} of <a href=\"/items/{}{}\">its source item</a></p>",
            esc(meta.derivation.as_deref().unwrap_or("derived")),
            url(source),
            justification_query(q.justification.as_deref()),
        ));
    }
    if let Some(flag) = &ex.flag {
        body.push_str(&format!("<p class=\"error\">{}</p>", esc(flag)));
    }
    if !derived.is_empty() {
        body.push_str("<h2>Derived items</h2><ul id=\"derived\">");
        for d in &derived {
            body.push_str(&format!(
                "<li><a href=\"/items/{}{}\">{}</a> <span class=\"kind\">{}</span> <span class=\"marking\">{}</span></li>",
                url(&d.id),
                justification_query(q.justification.as_deref()),
                esc(&d.title),
                esc(&d.derivation),
                esc(&d.marking)
            ));
        }
        body.push_str("</ul>");
    }
    if let Some(mime) = audio_type(&meta.title) {
        body.push_str(&format!(
            "<h2>Recording</h2><audio id=\"player\" controls preload=\"metadata\" src=\"/items/{}/media{}\" data-type=\"{mime}\"></audio>",
            url(&meta.id),
            justification_query(q.justification.as_deref()),
        ));
        let find = q
            .find
            .as_deref()
            .map(crate::console_transcript::find_terms)
            .unwrap_or_default();
        match crate::console_transcript::section(
            &s,
            w.name.clone(),
            meta.id.clone(),
            q.justification.clone(),
            find,
        )
        .await
        {
            Ok(section) => body.push_str(&section),
            Err(e) => return api_error_page(e, Some(&w.viewer())),
        }
        body.push_str("<script src=\"/static/transcript.js\" defer></script>");
    }
    // A recording's text is its transcript, above; other items show theirs.
    if !(preview.trim().is_empty() && audio_type(&meta.title).is_some()) {
        body.push_str(&format!(
            "<h2>Content</h2><pre class=\"text\" id=\"text\">{}</pre>",
            esc(&preview)
        ));
    }
    // A document translated at ingest: the original beside the English, paragraph by
    // paragraph (the translation is read through the gate like any item).
    if audio_type(&meta.title).is_none()
        && let Some(t) = derived.iter().find(|d| d.derivation == "translation")
    {
        match api::read_item(
            &s,
            w.name.clone(),
            t.id.clone(),
            q.justification.clone(),
            false,
        )
        .await
        {
            Ok(tr) => body.push_str(&side_by_side(
                &ex.text,
                &String::from_utf8_lossy(&tr.content),
            )),
            Err(e) => return api_error_page(e, Some(&w.viewer())),
        }
    }
    // Notes: every site's, merged, oldest first; a new one is an item at this item's marking.
    body.push_str("<h2 id=\"notes\">Notes</h2><ul id=\"note-list\">");
    for n in &notes {
        body.push_str(&format!(
            "<li><span class=\"meta\">{} · {}</span> {}</li>",
            esc(&n.author),
            esc(&time_label(n.created_ms)),
            esc(&n.text)
        ));
    }
    body.push_str(&format!(
        "</ul><form method=\"post\" action=\"/items/{}/notes\" id=\"add-note\">\
<input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"justification\" value=\"{}\">\
<textarea name=\"text\" required maxlength=\"{}\" placeholder=\"A note for everyone who may read this item, here and at the sites that hold it\"></textarea>\
<button type=\"submit\">Add note</button></form>\
<details id=\"remark\"><summary>Re-mark</summary><form method=\"post\" action=\"/items/{}/reclassify\" id=\"remark-form\">\
<input type=\"hidden\" name=\"csrf\" value=\"{}\">\
<input type=\"text\" name=\"marking\" required maxlength=\"256\" value=\"{}\" aria-label=\"new marking\">\
<input type=\"text\" name=\"authority\" required maxlength=\"1000\" placeholder=\"authority for the change\" aria-label=\"authority\">\
<button type=\"submit\">Re-mark</button></form><p class=\"meta\">A higher marking is applied at once, with what was derived from this item; a lower one or a wider releasability waits for an originator of the owning agency.</p></details>\
<h2>Entities</h2><ul id=\"entities\">",
        url(&meta.id),
        esc(&w.csrf),
        esc(q.justification.as_deref().unwrap_or("")),
        bletchley_store::MAX_ANNOTATION,
        url(&meta.id),
        esc(&w.csrf),
        esc(&meta.marking),
    ));
    for t in &terms {
        body.push_str(&format!(
            "<li><a href=\"/graph?selector={}\">{}</a></li>",
            url(t),
            esc(t)
        ));
    }
    body.push_str("</ul>");
    Html(page(&meta.title, &meta.marking, Some(&w.viewer()), &body)).into_response()
}

/// A time for people: `2026-11-29 18:05 UTC`.
fn time_label(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .map(|t| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02} UTC",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute()
            )
        })
        .unwrap_or_else(|_| ms.to_string())
}

/// The note form on an item's page.
#[derive(Deserialize)]
struct NoteForm {
    csrf: String,
    text: String,
    #[serde(default)]
    justification: Option<String>,
}

async fn add_note(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<NoteForm>,
) -> Response {
    if let Err(r) = same_site(&headers) {
        return *r;
    }
    let w = match who(&s, &headers) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let caller = auth::Caller {
        principal: w.name.clone(),
        via: Via::Session {
            token: w.token.clone(),
            csrf: w.csrf.clone(),
        },
    };
    if let Err(e) = caller.check_csrf(Some(&f.csrf)) {
        return api_error_page(e, Some(&w.viewer()));
    }
    if api::item_id(&id).is_err() {
        return not_found(Some(&w.viewer()));
    }
    let author = match &s.site {
        Some(site) => format!("{}@{site}", w.name),
        None => w.name.clone(),
    };
    let (who, item, text) = (w.name.clone(), id.clone(), f.text);
    match s
        .worker
        .run(move |st| Ok(st.platform.annotate(&who, &item, &author, &text, None)?))
        .await
    {
        Ok(_) => {
            let to = format!(
                "/items/{}{}#notes",
                url(&id),
                justification_query(f.justification.as_deref())
            );
            match HeaderValue::from_str(&to) {
                Ok(v) => (StatusCode::SEE_OTHER, [(LOCATION, v)]).into_response(),
                Err(_) => redirect("/search"),
            }
        }
        Err(e) => api_error_page(e, Some(&w.viewer())),
    }
}

#[derive(Deserialize, Default)]
struct GraphForm {
    #[serde(default)]
    selector: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    hops: Option<usize>,
    #[serde(default)]
    justification: Option<String>,
    /// Selectors expanded in the drawing, `|`-separated.
    #[serde(default)]
    expand: Option<String>,
}

/// Most selectors one drawing expands.
const MAX_EXPANDED: usize = 20;

async fn graph(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(f): Query<GraphForm>,
) -> Response {
    let w = match who(&s, &headers) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let sel = f.selector.clone().unwrap_or_default();
    let to = f.to.clone().unwrap_or_default();
    let mut body = format!(
        "<h1>Link graph</h1><form method=\"get\" action=\"/graph\">\
<input name=\"selector\" id=\"selector\" size=\"36\" value=\"{}\" placeholder=\"selector, e.g. +447911123456\">\
<input name=\"to\" id=\"to\" size=\"30\" value=\"{}\" placeholder=\"path to (optional)\">\
<select name=\"hops\" id=\"hops\"><option>1</option><option{}>2</option><option{}>3</option></select>\
<input name=\"justification\" id=\"justification\" size=\"24\" value=\"{}\" placeholder=\"justification (bulk collections)\">\
<button type=\"submit\" id=\"explore\">Explore</button></form>",
        esc(&sel),
        esc(&to),
        if f.hops == Some(2) { " selected" } else { "" },
        if f.hops == Some(3) { " selected" } else { "" },
        esc(f.justification.as_deref().unwrap_or_default()),
    );
    if sel.trim().is_empty() {
        return Html(page("Graph", "OFFICIAL", Some(&w.viewer()), &body)).into_response();
    }
    let (kind, q) = if to.trim().is_empty() {
        (
            "neighbours",
            GraphQuery::neighbours(sel, f.hops, f.justification.clone()),
        )
    } else {
        ("path", GraphQuery::path(sel, to, f.justification.clone()))
    };
    let mut banner = "OFFICIAL".to_owned();
    // Links keep the justification given, so following one does not drop
    // the bulk collections it opened.
    let carry = justification_query(f.justification.as_deref()).replacen('?', "&amp;", 1);
    // Selectors expanded in the drawing (neighbours only), answered from the
    // same visible graph as the main query.
    let expand: Vec<String> = if kind == "neighbours" {
        f.expand
            .as_deref()
            .unwrap_or_default()
            .split('|')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .take(MAX_EXPANDED)
            .map(str::to_owned)
            .collect()
    } else {
        Vec::new()
    };
    match api::run_graph_expanding(&s, w.name.clone(), kind, q, expand).await {
        Ok((v, expansions)) => {
            if let Some(m) = v["marking"].as_str() {
                banner = m.to_owned();
            }
            // The drawing: the answer shown, plus each selector expanded in
            // it, one hop each; every answer gated and audited like this one,
            // and the banner raised to cover them all.
            let mut drawing = Drawing::default();
            let mut banners: Vec<String> = vec![banner.clone()];
            if kind == "neighbours" {
                let root = v["selector"].as_str().unwrap_or_default().to_owned();
                drawing.root = root.clone();
                drawing.add_answer(&root, &v, f.hops.unwrap_or(1) == 1);
                for x in &expansions {
                    let at = x["selector"].as_str().unwrap_or_default().to_owned();
                    drawing.add_answer(&at, x, true);
                    drawing.expanded.push(at);
                    if let Some(m) = x["marking"].as_str() {
                        banners.push(m.to_owned());
                    }
                }
            } else if let Some(steps) = v["path"].as_array() {
                drawing.add_path(steps);
            }
            banner = high_water(&banners, s.home).unwrap_or(banner);
            drawing.hops = f.hops.unwrap_or(1).clamp(1, 3);
            drawing.justification = f.justification.clone().unwrap_or_default();
            body.push_str(&drawing.html());
            if kind == "neighbours" {
                body.push_str("<table id=\"neighbours\"><tr><th>Hops</th><th>Selector</th><th>Supported by</th></tr>");
                for n in v["neighbours"].as_array().into_iter().flatten() {
                    let e = n["entity"].as_str().unwrap_or_default();
                    let items: Vec<String> = n["via_items"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|i| i.as_str())
                        .map(|i| {
                            format!(
                                "<a href=\"/items/{}{}\">item</a>",
                                esc(i),
                                justification_query(f.justification.as_deref())
                            )
                        })
                        .collect();
                    body.push_str(&format!(
                        "<tr><td>{}</td><td><a href=\"/graph?selector={}{}\">{}</a></td><td>{}</td></tr>",
                        n["hops"],
                        url(e),
                        carry,
                        esc(e),
                        items.join(" ")
                    ));
                }
                body.push_str("</table>");
            } else {
                match v["path"].as_array() {
                    Some(steps) => {
                        body.push_str("<ol id=\"path\">");
                        for st in steps {
                            let e = st["entity"].as_str().unwrap_or_default();
                            body.push_str(&format!(
                                "<li><a href=\"/graph?selector={}{}\">{}</a></li>",
                                url(e),
                                carry,
                                esc(e)
                            ));
                        }
                        body.push_str("</ol>");
                    }
                    None => body
                        .push_str("<p id=\"path\">No path between them in what you may see.</p>"),
                }
            }
        }
        Err(e) => body.push_str(&format!(
            "<p class=\"error\" id=\"error\">{}</p>",
            esc(&e.message)
        )),
    }
    // Links are derived from the items that support them: the banner is
    // their high-water mark (the platform floor when nothing is shown).
    Html(page("Graph", &banner, Some(&w.viewer()), &body)).into_response()
}

async fn upload_form(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let w = match who(&s, &headers) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let who_name = w.name.clone();
    let choices = s
        .worker
        .run(move |st| {
            let gate = st.platform.gate(&who_name)?;
            let agency = gate.principal().agency.clone();
            let clearance = gate.principal().clearance.as_str().to_owned();
            let cols: Vec<String> = st
                .platform
                .collections()?
                .into_iter()
                .filter(|c| c.agency == agency)
                .map(|c| format!("{}/{}", c.agency, c.name))
                .collect();
            // Banners the uploader may use: every level up to the clearance,
            // alone or with one codeword held, home-only or releasable to
            // the Five Eyes; each parsed and put to the gate.
            let mut banners: Vec<String> = Vec::new();
            let held: Vec<String> = gate.principal().compartments.iter().cloned().collect();
            for level in ["OFFICIAL", "OFFICIAL-SENSITIVE", "SECRET", "TOP SECRET"] {
                for comp in std::iter::once(None).chain(held.iter().map(Some)) {
                    for rel in ["", "//REL TO FVEY"] {
                        let text = match comp {
                            Some(c) => format!("{level}//{c}{rel}"),
                            None => format!("{level}{rel}"),
                        };
                        if let Ok(m) = Marking::parse(&text)
                            && gate.check_marking(&m).is_ok()
                        {
                            let r = m.render();
                            if !banners.contains(&r) {
                                banners.push(r);
                            }
                        }
                    }
                }
            }
            Ok((cols, clearance, banners))
        })
        .await;
    let (cols, clearance, banners) = match choices {
        Ok(x) => x,
        Err(e) => return api_error_page(e, Some(&w.viewer())),
    };
    let options: String = cols
        .iter()
        .map(|c| format!("<option>{}</option>", esc(c)))
        .collect();
    let body = format!(
        "<h1>Upload</h1><form method=\"post\" action=\"/upload\" enctype=\"multipart/form-data\">\
<input type=\"hidden\" name=\"csrf\" value=\"{}\">\
<p><label>Collection <select name=\"collection\" id=\"collection\">{options}</select></label></p>\
<p><label>Marking <input name=\"marking\" id=\"marking\" size=\"40\" value=\"OFFICIAL\" list=\"markings\" required></label> \
<span class=\"meta\">up to {}; any banner you could read yourself</span></p><datalist id=\"markings\">{}</datalist>\
<p><label>Legal authority <input name=\"authority\" id=\"authority\" size=\"30\"></label></p>\
<p><input type=\"file\" name=\"file\" id=\"file\" required></p>\
<p><button type=\"submit\" id=\"send\">Upload</button></p></form>",
        esc(&w.csrf),
        esc(&clearance),
        banners
            .iter()
            .map(|b| format!("<option value=\"{}\">", esc(b)))
            .collect::<String>()
    );
    Html(page("Upload", "OFFICIAL", Some(&w.viewer()), &body)).into_response()
}

async fn upload(State(s): State<Arc<Shared>>, headers: HeaderMap, mut form: Multipart) -> Response {
    if let Err(r) = same_site(&headers) {
        return *r;
    }
    let w = match who(&s, &headers) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let (mut csrf, mut collection, mut marking, mut authority, mut file) =
        (None, None, None, None, None);
    loop {
        match form.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or_default().to_owned();
                let fname = field.file_name().map(str::to_owned);
                let Ok(bytes) = field.bytes().await else {
                    return error_page(
                        StatusCode::BAD_REQUEST,
                        Some(&w.viewer()),
                        "upload interrupted or too large",
                    );
                };
                let text = || String::from_utf8_lossy(&bytes).into_owned();
                match name.as_str() {
                    "csrf" => csrf = Some(text()),
                    "collection" => collection = Some(text()),
                    "marking" => marking = Some(text()),
                    "authority" => authority = Some(text()).filter(|a| !a.trim().is_empty()),
                    "file" => file = Some((fname.unwrap_or_default(), bytes.to_vec())),
                    _ => {}
                }
            }
            Ok(None) => break,
            Err(_) => {
                return error_page(
                    StatusCode::BAD_REQUEST,
                    Some(&w.viewer()),
                    "malformed upload form",
                );
            }
        }
    }
    let caller = auth::Caller {
        principal: w.name.clone(),
        via: Via::Session {
            token: w.token.clone(),
            csrf: w.csrf.clone(),
        },
    };
    if let Err(e) = caller.check_csrf(csrf.as_deref()) {
        return api_error_page(e, Some(&w.viewer()));
    }
    let (Some(collection), Some(marking), Some((title, bytes))) = (collection, marking, file)
    else {
        return error_page(
            StatusCode::BAD_REQUEST,
            Some(&w.viewer()),
            "collection, marking and file are required",
        );
    };
    if let Err(e) = Marking::parse(&marking) {
        return error_page(
            StatusCode::BAD_REQUEST,
            Some(&w.viewer()),
            &format!("marking: {e}"),
        );
    }
    match api::ingest(
        &s,
        w.name.clone(),
        Upload::new(collection, marking.clone(), title, authority),
        bytes,
    )
    .await
    {
        Ok(id) => Html(page(
            "Uploaded",
            &marking,
            Some(&w.viewer()),
            &format!(
                "<p id=\"uploaded\">Stored as <a href=\"/items/{}\">{}</a>.</p>",
                esc(&id),
                esc(&id)
            ),
        ))
        .into_response(),
        Err(e) => api_error_page(e, Some(&w.viewer())),
    }
}

#[derive(Deserialize, Default)]
struct TimelineForm {
    #[serde(default)]
    selectors: String,
    #[serde(default)]
    justification: Option<String>,
}

/// Events between chosen selectors, oldest first: calls and messages at
/// their own times, other items at ingest. The banner is the high-water
/// mark of the items listed.
async fn timeline(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(f): Query<TimelineForm>,
) -> Response {
    let w = match who(&s, &headers) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let mut body = format!(
        "<h1>Timeline</h1><form method=\"get\" action=\"/timeline\">\
<input name=\"selectors\" id=\"selectors\" size=\"60\" value=\"{}\" placeholder=\"selectors, comma-separated\">\
<input name=\"justification\" id=\"justification\" size=\"24\" value=\"{}\" placeholder=\"justification (bulk collections)\">\
<button type=\"submit\" id=\"show\">Show</button></form>",
        esc(&f.selectors),
        esc(f.justification.as_deref().unwrap_or_default())
    );
    if f.selectors.trim().is_empty() {
        return Html(page("Timeline", "OFFICIAL", Some(&w.viewer()), &body)).into_response();
    }
    let (events, hwm) =
        match api::run_timeline(&s, w.name.clone(), &f.selectors, f.justification.clone()).await {
            Ok(e) => e,
            Err(e) => {
                body.push_str(&format!(
                    "<p class=\"error\" id=\"error\">{}</p>",
                    esc(&e.message)
                ));
                return (
                    e.status,
                    Html(page("Timeline", "OFFICIAL", Some(&w.viewer()), &body)),
                )
                    .into_response();
            }
        };
    let banner = hwm.unwrap_or_else(|| "OFFICIAL".into());
    body.push_str(&timeline_chart(&events));
    // Calls placed by latitude and longitude go on the map.
    let located: Vec<crate::map::Located> = events
        .iter()
        .filter_map(|e| {
            let c = e.call.as_ref()?;
            let (lat, lon) = crate::map::parse_place(c.place.as_deref()?)?;
            Some(crate::map::Located {
                lat,
                lon,
                label: format!(
                    "{}: {} → {} ({})",
                    time_text(e.time_ms.div_euclid(1000)),
                    c.from,
                    c.to,
                    e.title
                ),
            })
        })
        .collect();
    if !located.is_empty() {
        body.push_str(&crate::map::svg(&located));
    }
    body.push_str("<table id=\"events\"><tr><th>When (UTC)</th><th>What</th><th>Between</th><th>Item</th><th>Marking</th></tr>");
    for e in &events {
        let secs = e.time_ms.div_euclid(1000);
        let when = time_text(secs);
        let what = match &e.call {
            Some(c) => format!(
                "{} → {}{}{}",
                esc(&c.from),
                esc(&c.to),
                if c.duration_s > 0 {
                    format!(", {} s", c.duration_s)
                } else {
                    String::new()
                },
                c.place
                    .as_deref()
                    .map(|p| format!(", at {}", esc(p)))
                    .unwrap_or_default()
            ),
            None => "mentioned together".into(),
        };
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><a href=\"/items/{}\">{}</a></td><td>{}</td></tr>",
            esc(&when),
            what,
            esc(&e.entities.join(", ")),
            esc(&e.id),
            esc(&e.title),
            esc(&e.marking)
        ));
    }
    body.push_str("</table>");
    Html(page("Timeline", &banner, Some(&w.viewer()), &body)).into_response()
}

/// `YYYY-MM-DD HH:MM` in UTC from Unix seconds (civil-from-days).
pub(crate) fn time_text(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// `?justification=…` to carry a justification along a link, or nothing.
fn justification_query(j: Option<&str>) -> String {
    j.filter(|j| !j.trim().is_empty())
        .map(|j| format!("?justification={}", url(j)))
        .unwrap_or_default()
}

/// The high-water mark of several banners (rule 4), or `None` when none
/// parses.
fn high_water(banners: &[String], home: bletchley_policy::Nation) -> Option<String> {
    let ms: Vec<bletchley_policy::Marking> = banners
        .iter()
        .filter_map(|b| bletchley_policy::Marking::parse(b).ok())
        .collect();
    bletchley_policy::Marking::high_water_mark(&ms, home).map(|m| m.render())
}

/// What the graph page draws: selectors and the links between them, as
/// data for `/static/graph.js`.
#[derive(Default, serde::Serialize)]
struct Drawing {
    root: String,
    hops: usize,
    justification: String,
    expanded: Vec<String>,
    nodes: Vec<DrawnNode>,
    edges: Vec<DrawnEdge>,
}

#[derive(serde::Serialize)]
struct DrawnNode {
    id: String,
    expanded: bool,
}

#[derive(serde::Serialize)]
struct DrawnEdge {
    a: String,
    b: String,
    items: usize,
}

impl Drawing {
    fn node(&mut self, id: &str, expanded: bool) {
        match self.nodes.iter_mut().find(|n| n.id == id) {
            Some(n) => n.expanded |= expanded,
            None => self.nodes.push(DrawnNode {
                id: id.to_owned(),
                expanded,
            }),
        }
    }

    fn edge(&mut self, a: &str, b: &str, items: usize) {
        if a == b
            || self
                .edges
                .iter()
                .any(|e| (e.a == a && e.b == b) || (e.a == b && e.b == a))
        {
            return;
        }
        self.edges.push(DrawnEdge {
            a: a.to_owned(),
            b: b.to_owned(),
            items,
        });
    }

    /// A neighbours answer around `at`; links drawn for one-hop answers
    /// only (a farther neighbour's path is not in the answer).
    fn add_answer(&mut self, at: &str, v: &serde_json::Value, one_hop: bool) {
        self.node(at, true);
        for n in v["neighbours"].as_array().into_iter().flatten() {
            let (Some(e), Some(h)) = (n["entity"].as_str(), n["hops"].as_u64()) else {
                continue;
            };
            self.node(e, false);
            if one_hop && h == 1 {
                let items = n["via_items"].as_array().map_or(1, Vec::len);
                self.edge(at, e, items);
            }
        }
    }

    fn add_path(&mut self, steps: &[serde_json::Value]) {
        let ids: Vec<(String, usize)> = steps
            .iter()
            .filter_map(|s| {
                Some((
                    s["entity"].as_str()?.to_owned(),
                    s["via_items"].as_array().map_or(1, Vec::len),
                ))
            })
            .collect();
        if let Some((first, _)) = ids.first() {
            self.root = first.clone();
        }
        for (id, _) in &ids {
            self.node(id, false);
        }
        for w in ids.windows(2) {
            self.edge(&w[0].0, &w[1].0, w[1].1.max(1));
        }
    }

    /// The canvas, the data (a JSON block: never executed, `<` escaped so
    /// it cannot close the element) and the script that draws it.
    fn html(&self) -> String {
        if self.nodes.is_empty() {
            return String::new();
        }
        let json = serde_json::to_string(self)
            .unwrap_or_else(|_| "{}".to_owned())
            .replace('<', "\\u003c");
        format!(
            "<figure class=\"graph\"><svg id=\"graph-canvas\" role=\"img\" aria-label=\"link graph\"></svg>\
<figcaption>Click a selector to expand it here; shift-click to centre on it.</figcaption></figure>\
<script type=\"application/json\" id=\"graph-data\">{json}</script><script src=\"/static/graph.js\" defer></script>"
        )
    }
}

/// The timeline as a chart: one lane per selector, time across, a mark for
/// each event in the lanes of the selectors it involves (calls as circles
/// sized by duration, outgoing filled; messages and mentions as squares),
/// each with its details on hover. Drawn on the server as SVG: no script.
fn timeline_chart(events: &[bletchley_index::graph::Event]) -> String {
    const W: f64 = 900.0;
    const LEFT: f64 = 230.0;
    const RIGHT: f64 = 20.0;
    const LANE: f64 = 34.0;
    if events.is_empty() {
        return String::new();
    }
    let mut lanes: Vec<&str> = Vec::new();
    for e in events {
        for s in &e.entities {
            if !lanes.contains(&s.as_str()) {
                lanes.push(s);
            }
        }
    }
    let (t0, t1) = events.iter().fold((i64::MAX, i64::MIN), |(a, b), e| {
        (a.min(e.time_ms), b.max(e.time_ms))
    });
    // One moment alone sits in the middle of a two-hour window.
    let (t0, t1) = if t1 == t0 {
        (t0 - 3_600_000, t1 + 3_600_000)
    } else {
        (t0, t1)
    };
    let span = (t1 - t0) as f64;
    let x = |t: i64| LEFT + (t - t0) as f64 / span * (W - LEFT - RIGHT);
    let h = 40.0 + LANE * lanes.len() as f64;
    let mut svg = format!(
        "<figure class=\"timeline\"><svg id=\"timeline-chart\" viewBox=\"0 0 {W} {h}\" role=\"img\" aria-label=\"timeline of {} events\">",
        events.len()
    );
    for (i, lane) in lanes.iter().enumerate() {
        let y = 20.0 + LANE * i as f64 + LANE / 2.0;
        svg.push_str(&format!(
            "<line class=\"lane\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\"/><text class=\"lane-label\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            LEFT - 8.0,
            y + 4.0,
            esc(lane)
        ));
    }
    // Ticks: start, end and three between.
    for k in 0..=4 {
        let t = t0 + ((t1 - t0) as f64 * f64::from(k) / 4.0) as i64;
        let tx = x(t);
        svg.push_str(&format!(
            "<line class=\"tick\" x1=\"{tx}\" x2=\"{tx}\" y1=\"14\" y2=\"{}\"/><text class=\"tick-label\" x=\"{tx}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            h - 16.0,
            h - 4.0,
            esc(&time_text(t.div_euclid(1000)))
        ));
    }
    for e in events {
        let ex = x(e.time_ms);
        let when = time_text(e.time_ms.div_euclid(1000));
        for s in &e.entities {
            let Some(i) = lanes.iter().position(|l| l == s) else {
                continue;
            };
            let y = 20.0 + LANE * i as f64 + LANE / 2.0;
            let tip = match &e.call {
                Some(c) => format!(
                    "{when}: {} → {}{}{} ({})",
                    c.from,
                    c.to,
                    if c.duration_s > 0 {
                        format!(", {} s", c.duration_s)
                    } else {
                        String::new()
                    },
                    c.place
                        .as_deref()
                        .map(|p| format!(", at {p}"))
                        .unwrap_or_default(),
                    e.title
                ),
                None => format!("{when}: mentioned in {}", e.title),
            };
            let mark = match &e.call {
                Some(c) if c.duration_s > 0 => {
                    let r = (3.0 + (f64::from(c.duration_s) / 60.0).sqrt() * 2.0).min(12.0);
                    let class = if c.from == *s { "call out" } else { "call in" };
                    format!("<circle class=\"{class}\" cx=\"{ex:.1}\" cy=\"{y}\" r=\"{r:.1}\">")
                }
                _ => format!(
                    "<rect class=\"mention\" x=\"{:.1}\" y=\"{}\" width=\"8\" height=\"8\">",
                    ex - 4.0,
                    y - 4.0
                ),
            };
            let close = if mark.starts_with("<circle") {
                "</circle>"
            } else {
                "</rect>"
            };
            svg.push_str(&format!("{mark}<title>{}</title>{close}", esc(&tip)));
        }
    }
    svg.push_str("</svg><figcaption>Calls as circles (size: duration; filled: outgoing from that lane), messages and mentions as squares. Hover for details.</figcaption></figure>");
    svg
}

/// The joint operations the viewer is a member of: who is in them, when
/// they run, and which collections are shared into them (and withdrawn).
/// Names and dates only, no item data: the banner is the platform floor.
async fn operations(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let w = match who(&s, &headers) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let ops = match api::operations_of(&s, w.name.clone()).await {
        Ok(o) => o,
        Err(e) => return api_error_page(e, Some(&w.viewer())),
    };
    let mut body = String::from("<h1>Operations</h1>");
    if ops.is_empty() {
        body.push_str("<p id=\"none\">You are not a member of any joint operation.</p>");
    }
    let date = |secs: i64| time_text(secs).chars().take(10).collect::<String>();
    for o in &ops {
        let op = &o.operation;
        body.push_str(&format!(
            "<section class=\"operation\" id=\"op-{}\"><h2>{} <span class=\"status\">{}</span></h2>\
<table class=\"meta\"><tr><th>Runs</th><td>{} to {}</td></tr><tr><th>Agencies</th><td>{}</td></tr><tr><th>Members</th><td>{}</td></tr></table>",
            esc(&op.name),
            esc(&op.name),
            if o.active { "active" } else { "not running" },
            esc(&date(op.start)),
            op.end.map(|e| esc(&date(e))).unwrap_or_else(|| "open end".into()),
            esc(&op.agencies.iter().cloned().collect::<Vec<_>>().join(", ")),
            if op.members.is_empty() {
                "everyone in the member agencies".to_owned()
            } else {
                esc(&op.members.iter().cloned().collect::<Vec<_>>().join(", "))
            },
        ));
        body.push_str("<h3>Shared collections</h3><table class=\"shares\"><tr><th>Collection</th><th>Shared</th><th>Withdrawn</th></tr>");
        for sh in &o.shares {
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&sh.collection),
                esc(&date(sh.since)),
                sh.withdrawn
                    .map(|x| esc(&date(x)))
                    .unwrap_or_else(|| "—".into())
            ));
        }
        body.push_str("</table></section>");
    }
    Html(page("Operations", "OFFICIAL", Some(&w.viewer()), &body)).into_response()
}

/// The alert queue: what detection found in the event logs the viewer may see, filtered by
/// level, with counts by level and by rule; each alert links to its item and its log. The
/// banner is the high-water mark of the alerts shown.
async fn alerts(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(f): Query<api::AlertsQuery>,
) -> Response {
    let w = match who(&s, &headers) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let level = f.level.clone().unwrap_or_default();
    let justification = f.justification.clone().unwrap_or_default();
    let (alerts, counts) = match api::alerts_of(&s, w.name.clone(), f).await {
        Ok(r) => r,
        Err(e) => return api_error_page(e, Some(&w.viewer())),
    };
    let mut body = String::from(
        "<h1>Alerts</h1><form method=\"get\" action=\"/alerts\"><select name=\"level\" id=\"level\">",
    );
    for l in ["", "informational", "low", "medium", "high", "critical"] {
        body.push_str(&format!(
            "<option value=\"{l}\"{}>{}</option>",
            if l == level { " selected" } else { "" },
            if l.is_empty() { "any level" } else { l }
        ));
    }
    body.push_str(&format!(
        "</select> <input name=\"justification\" id=\"justification\" size=\"30\" value=\"{}\" placeholder=\"justification (bulk collections)\"> <button type=\"submit\" id=\"filter\">Filter</button></form>",
        esc(&justification)
    ));
    body.push_str(&format!(
        "<p id=\"total\">{} alerts</p><table id=\"by-level\"><tr><th>Level</th><th>Alerts</th></tr>",
        alerts.len()
    ));
    for l in ["critical", "high", "medium", "low", "informational"] {
        if let Some(n) = counts.by_level.get(l) {
            body.push_str(&format!(
                "<tr class=\"level-{l}\"><td>{l}</td><td>{n}</td></tr>"
            ));
        }
    }
    body.push_str("</table><table id=\"by-rule\"><tr><th>Rule</th><th>Alerts</th></tr>");
    for r in &counts.by_rule {
        body.push_str(&format!(
            "<tr><td title=\"{}\">{}</td><td>{}</td></tr>",
            esc(&r.id),
            esc(&r.title),
            r.count
        ));
    }
    body.push_str("</table><table id=\"alerts\"><tr><th>Level</th><th>Time</th><th>Rule</th><th>Host</th><th>Record</th><th>Log</th><th>Marking</th></tr>");
    let mut banners = vec!["OFFICIAL".to_owned()];
    for a in &alerts {
        banners.push(a.marking.clone());
        let log = a
            .log
            .as_deref()
            .map(|l| format!("<a href=\"/items/{}\">log</a>", url(l)))
            .unwrap_or_default();
        body.push_str(&format!(
            "<tr class=\"alert level-{}\" data-id=\"{}\"><td>{}</td><td>{}</td><td><a href=\"/items/{}\">{}</a></td><td>{}</td><td>{}</td><td>{log}</td><td>{}</td></tr>",
            a.level,
            esc(&a.id),
            a.level,
            esc(a.time.as_str().unwrap_or("")),
            url(&a.id),
            esc(a.rule["title"].as_str().unwrap_or("")),
            esc(a.computer.as_str().unwrap_or("")),
            esc(&a.record.to_string()),
            esc(&a.marking),
        ));
    }
    body.push_str("</table>");
    let banner = high_water(&banners, s.home).unwrap_or_else(|| "OFFICIAL".into());
    Html(page("Alerts", &banner, Some(&w.viewer()), &body)).into_response()
}

/// The case queue: every case the viewer may see, newest first, with its status, priority,
/// assignee and alert count; filtered by status.
async fn cases(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(f): Query<api::CasesQuery>,
) -> Response {
    let w = match who(&s, &headers) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let status = f.status.clone().unwrap_or_default();
    let cases = match api::cases_of(&s, w.name.clone(), f).await {
        Ok(c) => c,
        Err(e) => return api_error_page(e, Some(&w.viewer())),
    };
    let mut body = String::from(
        "<h1>Cases</h1><form method=\"get\" action=\"/cases\"><select name=\"status\" id=\"status\">",
    );
    for st in [
        "",
        "new",
        "in-progress",
        "closed-true-positive",
        "closed-false-positive",
    ] {
        body.push_str(&format!(
            "<option value=\"{st}\"{}>{}</option>",
            if st == status { " selected" } else { "" },
            if st.is_empty() { "any status" } else { st }
        ));
    }
    body.push_str(&format!(
        "</select> <button type=\"submit\" id=\"filter\">Filter</button></form><p id=\"total\">{} cases</p>\
<table id=\"cases\"><tr><th>Case</th><th>Status</th><th>Priority</th><th>Assignee</th><th>Alerts</th><th>Opened</th><th>Marking</th></tr>",
        cases.len()
    ));
    let mut banners = vec!["OFFICIAL".to_owned()];
    for c in &cases {
        banners.push(c.marking.clone());
        body.push_str(&format!(
            "<tr class=\"case\" data-id=\"{}\"><td><a href=\"/cases/{}\">{}</a></td><td class=\"status\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&c.id),
            url(&c.id),
            esc(&c.title),
            c.status.as_str(),
            esc(&c.priority),
            esc(c.assignee.as_deref().unwrap_or("—")),
            c.alerts.len(),
            esc(&time_label(c.opened_ms)),
            esc(&c.marking),
        ));
    }
    body.push_str("</table>");
    let banner = high_water(&banners, s.home).unwrap_or_else(|| "OFFICIAL".into());
    Html(page("Cases", &banner, Some(&w.viewer()), &body)).into_response()
}

/// One case: its state, the forms that move it on, its alerts in time order (the case's
/// timeline, each linked to its event and its log) and its history.
async fn case(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<api::Why>,
) -> Response {
    let w = match who(&s, &headers) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let (c, mut alerts) = match api::case_of(&s, w.name.clone(), id, q.justification.clone()).await
    {
        Ok(r) => r,
        Err(e) => return api_error_page(e, Some(&w.viewer())),
    };
    alerts.sort_by(|a, b| {
        (a.time.as_str().unwrap_or(""), &a.id).cmp(&(b.time.as_str().unwrap_or(""), &b.id))
    });
    let books = match crate::api_playbooks::playbooks_of(&s, w.name.clone(), false).await {
        Ok(b) => b,
        Err(e) => return api_error_page(e, Some(&w.viewer())),
    };
    let select = |name: &str, options: &[&str], current: &str| {
        let mut out = format!("<select name=\"{name}\" id=\"{name}\">");
        for o in options {
            out.push_str(&format!(
                "<option value=\"{o}\"{}>{o}</option>",
                if *o == current { " selected" } else { "" }
            ));
        }
        out.push_str("</select>");
        out
    };
    let form = |inner: String, button: &str, fid: &str| {
        format!(
            "<form method=\"post\" action=\"/cases/{}\" id=\"{fid}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"justification\" value=\"{}\">{inner} <button type=\"submit\">{button}</button></form>",
            url(&c.id),
            esc(&w.csrf),
            esc(q.justification.as_deref().unwrap_or("")),
        )
    };
    let mut body = format!(
        "<h1 id=\"title\">{}</h1><table class=\"meta\"><tr><th>Status</th><td id=\"case-status\">{}</td></tr><tr><th>Priority</th><td id=\"case-priority\">{}</td></tr>\
<tr><th>Assignee</th><td id=\"case-assignee\">{}</td></tr><tr><th>Collection</th><td>{}</td></tr><tr><th>Marking</th><td id=\"marking\">{}</td></tr>\
<tr><th>Opened</th><td>{} by {}</td></tr></table>",
        esc(&c.title),
        c.status.as_str(),
        esc(&c.priority),
        esc(c.assignee.as_deref().unwrap_or("nobody")),
        esc(&c.collection),
        esc(&c.marking),
        esc(&time_label(c.opened_ms)),
        esc(&c.opened_by),
    );
    body.push_str(&form(
        select(
            "status",
            &[
                "new",
                "in-progress",
                "closed-true-positive",
                "closed-false-positive",
            ],
            c.status.as_str(),
        ),
        "Set status",
        "set-status",
    ));
    body.push_str(&form(
        select(
            "priority",
            &["informational", "low", "medium", "high", "critical"],
            &c.priority,
        ),
        "Set priority",
        "set-priority",
    ));
    body.push_str(&form(
        "<input name=\"assignee\" size=\"20\" required maxlength=\"64\" placeholder=\"principal\">"
            .into(),
        "Assign",
        "assign",
    ));
    body.push_str(&form(
        format!(
            "<textarea name=\"note\" required maxlength=\"{}\" placeholder=\"A note on this case\"></textarea>",
            bletchley_store::MAX_ANNOTATION
        ),
        "Add note",
        "add-note",
    ));
    body.push_str(&playbook_forms(
        &c,
        &books,
        &w.csrf,
        q.justification.as_deref(),
    ));
    body.push_str("<h2>Timeline</h2><table id=\"case-alerts\"><tr><th>Time</th><th>Level</th><th>Rule</th><th>Host</th><th>Record</th><th>Log</th></tr>");
    for a in &alerts {
        let log = a
            .log
            .as_deref()
            .map(|l| format!("<a href=\"/items/{}\">log</a>", url(l)))
            .unwrap_or_default();
        body.push_str(&format!(
            "<tr class=\"alert level-{}\"><td>{}</td><td>{}</td><td><a href=\"/items/{}\">{}</a></td><td>{}</td><td>{}</td><td>{log}</td></tr>",
            a.level,
            esc(a.time.as_str().unwrap_or("")),
            a.level,
            url(&a.id),
            esc(a.rule["title"].as_str().unwrap_or("")),
            esc(a.computer.as_str().unwrap_or("")),
            esc(&a.record.to_string()),
        ));
    }
    body.push_str("</table>");
    body.push_str(&case_graph(&alerts, q.justification.as_deref()));
    body.push_str("<h2>History</h2><ul id=\"history\">");
    for (author, ms, text) in &c.history {
        body.push_str(&format!(
            "<li><span class=\"meta\">{} · {}</span> {}</li>",
            esc(author),
            esc(&time_label(*ms)),
            esc(text)
        ));
    }
    body.push_str("</ul>");
    Html(page("Case", &c.marking, Some(&w.viewer()), &body)).into_response()
}

/// The most selectors a case's graph draws.
const MAX_CASE_NODES: usize = 60;

/// A case's graph: the selectors its alerts name (hosts, accounts, hashes, addresses,
/// command lines), each alert linking its host to the others it names; drawn like the link
/// graph, whose page a click opens.
fn case_graph(
    alerts: &[bletchley_detect::alerts::AlertView],
    justification: Option<&str>,
) -> String {
    let mut links: std::collections::BTreeMap<(String, String), usize> = Default::default();
    let mut nodes: Vec<String> = Vec::new();
    for a in alerts {
        let hub = a
            .selectors
            .iter()
            .find(|s| s.starts_with("host:"))
            .or(a.selectors.first());
        let Some(hub) = hub else { continue };
        for s in &a.selectors {
            if !nodes.contains(s) {
                if nodes.len() >= MAX_CASE_NODES {
                    continue;
                }
                nodes.push(s.clone());
            }
            if s != hub {
                *links.entry((hub.clone(), s.clone())).or_default() += 1;
            }
        }
    }
    if nodes.is_empty() {
        return String::new();
    }
    let mut d = Drawing {
        root: nodes[0].clone(),
        hops: 1,
        justification: justification.unwrap_or("").to_owned(),
        ..Drawing::default()
    };
    for n in &nodes {
        d.node(n, false);
    }
    for ((a, b), items) in &links {
        if nodes.contains(a) && nodes.contains(b) {
            d.edge(a, b, *items);
        }
    }
    let mut out = String::from("<h2>Graph</h2>");
    out.push_str(&d.html());
    out.push_str("<ul id=\"case-selectors\">");
    for n in &nodes {
        out.push_str(&format!(
            "<li><a href=\"/graph?selector={}{}\">{}</a></li>",
            url(n),
            esc(&justification
                .map(|j| format!("&justification={}", url(j)))
                .unwrap_or_default()),
            esc(n)
        ));
    }
    out.push_str("</ul>");
    out
}

/// The case page's playbook section: the steps waiting for a second responder (each with
/// its approval form), and a form that runs or dry-runs one of the agency's playbooks.
fn playbook_forms(
    c: &bletchley_detect::cases::Case,
    books: &[bletchley_detect::playbook::Playbook],
    csrf: &str,
    justification: Option<&str>,
) -> String {
    let hidden = format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"justification\" value=\"{}\">",
        esc(csrf),
        esc(justification.unwrap_or(""))
    );
    let mut out = String::from("<h2>Playbooks</h2>");
    if !c.tags.is_empty() {
        out.push_str(&format!(
            "<p id=\"case-tags\">Tags: {}</p>",
            esc(&c.tags.join(", "))
        ));
    }
    if !c.pending.is_empty() {
        out.push_str("<ul id=\"pending\">");
        for p in &c.pending {
            out.push_str(&format!(
                "<li class=\"pending\">{} v{}, run {}: step {} ({}) waits for a second responder (started by {}) \
<form method=\"post\" action=\"/cases/{}/approve\" class=\"approve\">{hidden}<input type=\"hidden\" name=\"run\" value=\"{}\"><button type=\"submit\">Approve</button></form></li>",
                esc(&p.playbook),
                p.version,
                esc(&p.run),
                p.step,
                esc(&p.action),
                esc(&p.started_by),
                url(&c.id),
                esc(&p.run),
            ));
        }
        out.push_str("</ul>");
    }
    if books.is_empty() {
        out.push_str("<p>Your agency has no playbooks (bletchley playbook add).</p>");
        return out;
    }
    out.push_str(&format!(
        "<form method=\"post\" action=\"/cases/{}/playbook\" id=\"run-playbook\">{hidden}<select name=\"playbook\" id=\"playbook\">",
        url(&c.id)
    ));
    for b in books {
        out.push_str(&format!(
            "<option value=\"{}\">{} v{} — {}</option>",
            esc(&b.name),
            esc(&b.name),
            b.version,
            esc(&b.description)
        ));
    }
    out.push_str(
        "</select> <button type=\"submit\" name=\"mode\" value=\"dry-run\" id=\"dry-run\">Dry run</button> \
<button type=\"submit\" name=\"mode\" value=\"run\" id=\"run\">Run</button></form>",
    );
    out
}

#[derive(Deserialize)]
struct CaseForm {
    csrf: String,
    #[serde(default)]
    justification: Option<String>,
    #[serde(default)]
    assignee: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    priority: Option<String>,
    #[serde(default)]
    note: Option<String>,
}

/// A change posted from the case page.
async fn change_case(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<CaseForm>,
) -> Response {
    let w = match form_caller(&s, &headers, &f.csrf) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    // The API's own checks, so a change reads the same from either.
    let asked = api::CaseChange {
        assignee: f.assignee.map(|a| a.trim().to_owned()),
        status: f.status,
        priority: f.priority,
        note: f.note,
        justification: f.justification.filter(|j| !j.is_empty()),
    };
    let (change, just) = match asked.into_change() {
        Ok(c) => c,
        Err(e) => return api_error_page(e, Some(&w.viewer())),
    };
    match api::change_case(&s, w.name.clone(), id.clone(), change, just.clone()).await {
        Ok(()) => back_to_case(&id, just.as_deref()),
        Err(e) => api_error_page(e, Some(&w.viewer())),
    }
}

/// Back to a case's page after a change.
fn back_to_case(id: &str, justification: Option<&str>) -> Response {
    let to = format!("/cases/{}{}", url(id), justification_query(justification));
    match HeaderValue::from_str(&to) {
        Ok(v) => (StatusCode::SEE_OTHER, [(LOCATION, v)]).into_response(),
        Err(_) => redirect("/cases"),
    }
}

#[derive(Deserialize)]
struct PlaybookForm {
    csrf: String,
    #[serde(default)]
    justification: Option<String>,
    playbook: String,
    /// `dry-run` or `run`.
    mode: String,
}

/// A playbook run (or dry run) posted from the case page: its report.
async fn run_playbook(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<PlaybookForm>,
) -> Response {
    let w = match form_caller(&s, &headers, &f.csrf) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let just = f.justification.filter(|j| !j.is_empty());
    let asked = crate::api_playbooks::RunPlaybook {
        playbook: f.playbook,
        version: None,
        dry_run: Some(f.mode != "run"),
        justification: just.clone(),
    };
    match crate::api_playbooks::run_on_case(&s, w.name.clone(), id.clone(), asked).await {
        Ok(r) => run_report_page(&w, &id, just.as_deref(), &r),
        Err(e) => api_error_page(e, Some(&w.viewer())),
    }
}

#[derive(Deserialize)]
struct ApproveForm {
    csrf: String,
    #[serde(default)]
    justification: Option<String>,
    run: String,
}

/// A second responder's approval posted from the case page: the rest of the run's report.
async fn approve_step(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<ApproveForm>,
) -> Response {
    let w = match form_caller(&s, &headers, &f.csrf) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let just = f.justification.filter(|j| !j.is_empty());
    let asked = crate::api_playbooks::Approve {
        run: f.run,
        justification: just.clone(),
    };
    match crate::api_playbooks::approve_on_case(&s, w.name.clone(), id.clone(), asked).await {
        Ok(r) => run_report_page(&w, &id, just.as_deref(), &r),
        Err(e) => api_error_page(e, Some(&w.viewer())),
    }
}

/// The viewer of a form posted from the console, once its origin and CSRF token check out.
pub(crate) fn form_caller(
    s: &Shared,
    headers: &HeaderMap,
    csrf: &str,
) -> Result<Who, Box<Response>> {
    same_site(headers)?;
    let w = who(s, headers)?;
    let caller = auth::Caller {
        principal: w.name.clone(),
        via: Via::Session {
            token: w.token.clone(),
            csrf: w.csrf.clone(),
        },
    };
    caller
        .check_csrf(Some(csrf))
        .map_err(|e| Box::new(api_error_page(e, Some(&w.viewer()))))?;
    Ok(w)
}

/// A run's report: each step, its state and what it did.
fn run_report_page(
    w: &Who,
    case: &str,
    justification: Option<&str>,
    r: &bletchley_detect::playbook::RunReport,
) -> Response {
    use bletchley_detect::playbook::StepState;
    let mut body = format!(
        "<h1>{} {} v{}</h1><p id=\"run-summary\">{}</p><table id=\"run-report\"><tr><th>Step</th><th>Action</th><th>State</th><th>What</th></tr>",
        if r.dry_run { "Dry run of" } else { "Run of" },
        esc(&r.playbook),
        r.version,
        if r.dry_run {
            "Nothing was written: this is what the playbook would do.".to_owned()
        } else {
            format!("Run {} — every step is recorded on the case.", esc(&r.run))
        }
    );
    for st in &r.steps {
        let state = match st.state {
            StepState::Done => "done",
            StepState::WouldDo => "would do",
            StepState::AwaitingApproval => "awaits a second responder",
            StepState::NotReached => "not reached",
        };
        body.push_str(&format!(
            "<tr class=\"step\"><td>{}</td><td>{}</td><td class=\"state\">{state}</td><td>{}</td></tr>",
            st.step,
            st.action,
            esc(&st.detail)
        ));
    }
    body.push_str(&format!(
        "</table><p><a id=\"back\" href=\"/cases/{}{}\">Back to the case</a></p>",
        url(case),
        esc(&justification_query(justification))
    ));
    Html(page("Playbook", "", Some(&w.viewer()), &body)).into_response()
}

#[derive(Deserialize, Default)]
struct AuditForm {
    #[serde(default)]
    principal: Option<String>,
    #[serde(default)]
    action: Option<String>,
}

/// The audit trail for auditors: whether the log verifies (chain,
/// checkpoint signature), then the entries, newest first, filtered by
/// principal or action. Entries name what was touched and why; the banner
/// is the platform's highest level, as the trail can name anything.
async fn audit(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(f): Query<AuditForm>,
) -> Response {
    let w = match who(&s, &headers) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let r = match api::audit_review(
        &s,
        w.name.clone(),
        f.principal.clone(),
        f.action.clone(),
        500,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return api_error_page(e, Some(&w.viewer())),
    };
    let mut body = format!(
        "<h1>Audit trail</h1><form method=\"get\" action=\"/audit\">\
<input name=\"principal\" id=\"principal\" size=\"20\" value=\"{}\" placeholder=\"principal\">\
<input name=\"action\" id=\"action\" size=\"20\" value=\"{}\" placeholder=\"action, e.g. item. or search\">\
<button type=\"submit\" id=\"filter\">Filter</button></form>",
        esc(f.principal.as_deref().unwrap_or_default()),
        esc(f.action.as_deref().unwrap_or_default()),
    );
    match &r.integrity {
        Ok(rep) => body.push_str(&format!(
            "<p class=\"ok\" id=\"integrity\" data-verified=\"true\">Verified: {} entries, the signed checkpoint covers {}, root {}, {} earlier checkpoints consistent.</p>",
            rep.entries, rep.checkpoint_size, esc(&rep.root), rep.checkpoints_checked
        )),
        Err(e) => body.push_str(&format!(
            "<p class=\"error\" id=\"integrity\" data-verified=\"false\">Verification FAILED: {}</p>",
            esc(e)
        )),
    }
    if let Some(why) = &r.unreadable {
        body.push_str(&format!(
            "<p class=\"error\" id=\"unreadable\">{}</p>",
            esc(why)
        ));
    }
    body.push_str(&format!(
        "<p class=\"meta\">{} matching entries{}</p><table id=\"audit-entries\"><tr><th>#</th><th>When (UTC)</th><th>Principal</th><th>Action</th><th>Outcome</th><th>Targets</th><th>Justification</th><th>Reason</th></tr>",
        r.matched,
        if r.matched > r.entries.len() { format!(", newest {} shown", r.entries.len()) } else { String::new() }
    ));
    for (seq, e) in &r.entries {
        body.push_str(&format!(
            "<tr class=\"outcome-{:?}\"><td>{seq}</td><td>{}</td><td>{}</td><td>{}</td><td>{:?}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            e.outcome,
            esc(&time_text(e.time_ms.div_euclid(1000))),
            esc(&e.principal),
            esc(&e.action),
            e.outcome,
            esc(&e.targets.join(", ")),
            esc(e.justification.as_deref().unwrap_or_default()),
            esc(e.reason.as_deref().unwrap_or_default()),
        ));
    }
    body.push_str("</table>");
    Html(page("Audit trail", "TOP SECRET", Some(&w.viewer()), &body)).into_response()
}

/// The media type of a recording the browser can play, by file name.
fn audio_type(title: &str) -> Option<&'static str> {
    let ext = title.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "wav" => "audio/wav",
        "mp3" => "audio/mpeg",
        "ogg" | "oga" => "audio/ogg",
        "opus" => "audio/ogg; codecs=opus",
        "flac" => "audio/flac",
        "m4a" | "aac" => "audio/mp4",
        _ => return None,
    })
}

/// The one byte range `bytes=FROM-[TO]` or `bytes=-LAST` of a `total`-byte body, inclusive;
/// `None` when it is malformed, asks for several ranges, or lies outside the body.
fn byte_range(header: &str, total: usize) -> Option<(usize, usize)> {
    let spec = header.trim().strip_prefix("bytes=")?;
    if spec.contains(',') || total == 0 {
        return None;
    }
    let (from, to) = spec.split_once('-')?;
    let (from, to) = match (from.trim(), to.trim()) {
        ("", last) => {
            let last: usize = last.parse().ok()?;
            if last == 0 {
                return None;
            }
            (total.saturating_sub(last), total - 1)
        }
        (from, "") => (from.parse().ok()?, total - 1),
        (from, to) => (from.parse().ok()?, to.parse::<usize>().ok()?.min(total - 1)),
    };
    (from <= to && from < total).then_some((from, to))
}

/// A recording's bytes for the page's audio player: read through the gate
/// and audited like any read, served inline only as audio (anything else is
/// "not found or not permitted"), never sniffed.
async fn media(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<ItemQuery>,
) -> Response {
    let w = match who(&s, &headers) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let api::ItemRead { meta, content, .. } =
        match api::read_item(&s, w.name.clone(), id, q.justification.clone(), false).await {
            Ok(x) => x,
            Err(e) => return api_error_page(e, Some(&w.viewer())),
        };
    let Some(mime) = audio_type(&meta.title) else {
        return not_found(Some(&w.viewer()));
    };
    // Players seek by asking for a range of bytes: the content is read (and the read
    // audited) whole, and the range asked for is what goes back.
    let total = content.len();
    let range = headers
        .get(axum::http::header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|v| byte_range(v, total));
    let mut r = match range {
        None => content.into_response(),
        Some(Some((from, to))) => {
            let mut r = content[from..=to].to_vec().into_response();
            *r.status_mut() = StatusCode::PARTIAL_CONTENT;
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {from}-{to}/{total}")) {
                r.headers_mut().insert(axum::http::header::CONTENT_RANGE, v);
            }
            r
        }
        Some(None) => {
            let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{total}")) {
                r.headers_mut().insert(axum::http::header::CONTENT_RANGE, v);
            }
            return r;
        }
    };
    let h = r.headers_mut();
    h.insert(
        axum::http::header::ACCEPT_RANGES,
        HeaderValue::from_static("bytes"),
    );
    h.insert(CONTENT_TYPE, HeaderValue::from_static(mime));
    h.insert(
        axum::http::header::CONTENT_DISPOSITION,
        HeaderValue::from_static("inline"),
    );
    if let Ok(v) = HeaderValue::from_str(&meta.marking) {
        h.insert("x-marking", v);
    }
    r
}

#[cfg(test)]
mod range_tests {
    use super::byte_range;

    #[test]
    fn one_range_of_bytes_is_understood_and_anything_else_refused() {
        assert_eq!(byte_range("bytes=0-", 100), Some((0, 99)));
        assert_eq!(byte_range("bytes=10-19", 100), Some((10, 19)));
        assert_eq!(byte_range("bytes=90-500", 100), Some((90, 99)));
        assert_eq!(byte_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(byte_range("bytes=-500", 100), Some((0, 99)));
        for bad in [
            "bytes=100-",
            "bytes=20-10",
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=-0",
            "bytes=x-",
        ] {
            assert_eq!(byte_range(bad, 100), None, "{bad}");
        }
        assert_eq!(byte_range("bytes=0-", 0), None);
    }
}
