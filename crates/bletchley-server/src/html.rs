//! HTML for the console: escaping, the page frame and the classification
//! banners at the top and bottom of every page.

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

/// Percent-encodes a query value.
pub fn url(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            o.push(char::from(b));
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

/// The CSS class of a banner: its classification's colour.
fn banner_class(marking: &str) -> &'static str {
    if marking.starts_with("TOP SECRET") {
        "b-ts"
    } else if marking.starts_with("SECRET") {
        "b-s"
    } else {
        "b-o"
    }
}

/// Who is looking, for the header.
pub struct Viewer<'a> {
    /// Principal name.
    pub name: &'a str,
    /// CSRF token for the logout form.
    pub csrf: &'a str,
}

/// A whole page: banner, navigation, body, banner. `marking` is the
/// high-water mark of everything on the page.
pub fn page(title: &str, marking: &str, viewer: Option<&Viewer<'_>>, body: &str) -> String {
    let banner = format!(
        "<div class=\"banner {}\" role=\"note\" aria-label=\"classification\">{}</div>",
        banner_class(marking),
        esc(marking)
    );
    let nav = match viewer {
        Some(v) => format!(
            "<nav><a href=\"/search\">Search</a> <a href=\"/graph\">Graph</a> <a href=\"/timeline\">Timeline</a> <a href=\"/xref\">Cross-reference</a> <a href=\"/operations\">Operations</a> <a href=\"/alerts\">Alerts</a> <a href=\"/cases\">Cases</a> <a href=\"/upload\">Upload</a> <a href=\"/audit\">Audit</a> <a href=\"/admin\">Admin</a> <a href=\"/oversight\">Oversight</a>\
<span class=\"who\">{}</span><form method=\"post\" action=\"/logout\" class=\"inline\">\
<input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\" id=\"logout\">Log out</button></form></nav>",
            esc(v.name),
            esc(v.csrf)
        ),
        None => String::new(),
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{} · Bletchley</title><link rel=\"stylesheet\" href=\"/static/console.css\"></head>\
<body>{banner}<header><a class=\"brand\" href=\"/search\">Bletchley</a>{nav}</header><main>{body}</main>{banner}</body></html>",
        esc(title)
    )
}

/// The stylesheet (served from `/static/console.css`; the content policy
/// forbids inline styles and scripts).
pub const CSS: &str = r#"
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2733;background:#f5f7fa}
.banner{text-align:center;font-weight:700;letter-spacing:.06em;padding:.3em;color:#fff}
.b-o{background:#2f6f3e}.b-s{background:#c0392b}.b-ts{background:#e67e22;color:#111}
header{display:flex;align-items:center;gap:1.5em;padding:.6em 1.2em;background:#1d2733;color:#fff}
header a{color:#fff;text-decoration:none;margin-right:1em}.brand{font-weight:700;font-size:1.2em}
nav{display:flex;align-items:center;gap:.4em;flex:1}.who{margin-left:auto;margin-right:1em;opacity:.8}
.inline{display:inline}button,input,select{font:inherit;padding:.35em .6em}
main{max-width:70em;margin:1.5em auto;padding:0 1.2em}
.hit{background:#fff;border:1px solid #dde3ea;border-radius:6px;padding:.8em 1em;margin:.6em 0}
.hit h3{margin:0 0 .3em 0;font-size:1.05em}.meta{color:#5b6b7c;font-size:.85em}
.mark{display:inline-block;font-size:.75em;font-weight:700;padding:.1em .4em;border-radius:3px;color:#fff}
.layout{display:grid;grid-template-columns:1fr 16em;gap:1.5em}
.facets h4{margin:.8em 0 .2em 0;text-transform:capitalize}.facets ul{list-style:none;padding:0;margin:0}
table.side-by-side{width:100%;table-layout:fixed}table.side-by-side td{vertical-align:top;white-space:pre-wrap;padding:.4em .6em;border-top:1px solid #dde3ea}
pre.text{white-space:pre-wrap;background:#fff;border:1px solid #dde3ea;padding:1em;border-radius:6px;max-height:40em;overflow:auto}
.error{background:#fdecea;border:1px solid #e0b4b4;padding:.8em 1em;border-radius:6px}
table.transcript{width:100%;table-layout:fixed}table.transcript td:first-child,table.transcript th:first-child{width:4.5em}
table.transcript td{vertical-align:top;line-height:1.5}table.transcript .w{cursor:pointer;border-radius:3px;padding:0 1px}
table.transcript .w.now{background:#f6d365;color:#111}table.transcript tr.playing td{background:#eef5ff}table.transcript tr.hit td{outline:2px solid #e67e22}
button.seek{font:inherit;font-size:.85em;padding:.1em .4em;cursor:pointer}
table{border-collapse:collapse;background:#fff}td,th{border:1px solid #dde3ea;padding:.3em .6em;text-align:left}
b{background:#fff2a8}
figure.graph{margin:1em 0;background:#fff;border:1px solid #dde3ea;border-radius:6px}
#graph-canvas{width:100%;height:32em;display:block}
#graph-canvas .edge{stroke:#9aa8b6}
#graph-canvas .node{cursor:pointer}#graph-canvas .node circle{fill:#2b6cb0;stroke:#fff;stroke-width:2}
#graph-canvas .node.expanded circle{fill:#1d2733}#graph-canvas .kind-email circle{fill:#8e44ad}
#graph-canvas .kind-ip circle,#graph-canvas .kind-domain circle,#graph-canvas .kind-url circle{fill:#16a085}
#graph-canvas .kind-person circle,#graph-canvas .kind-org circle{fill:#d35400}#graph-canvas .kind-place circle{fill:#27ae60}
#graph-canvas text{font-size:11px;fill:#1d2733;pointer-events:none}
figcaption{color:#5b6b7c;font-size:.85em;padding:.3em .8em}
figure.timeline{margin:1em 0;background:#fff;border:1px solid #dde3ea;border-radius:6px}
#timeline-chart{width:100%;display:block}#timeline-chart .lane{stroke:#dde3ea}#timeline-chart .tick{stroke:#eef1f4}
#timeline-chart text{font-size:11px;fill:#1d2733}#timeline-chart .tick-label{fill:#5b6b7c;font-size:10px}
#timeline-chart .call{stroke:#2b6cb0;stroke-width:2}#timeline-chart .call.out{fill:#2b6cb0}#timeline-chart .call.in{fill:#fff}
#timeline-chart .mention{fill:#d35400}
figure.map{margin:1em 0;background:#fff;border:1px solid #dde3ea;border-radius:6px}
#event-map{width:100%;display:block;max-height:30em}#event-map .sea{fill:#dfeaf3}
#event-map .land{fill:#f4f1e8;stroke:#b9b3a3;stroke-width:.3}#event-map .graticule{stroke:#c9d6e2;stroke-width:.2}
#event-map .event{fill:#c0392b;fill-opacity:.75;stroke:#fff;stroke-width:.15}
.figure{margin:1.2em 0 1.8em}.num{text-align:right;font-variant-numeric:tabular-nums}
.heat td{min-width:2.5em}.h0{background:#f7f8fa}.h1{background:#dce8f5}.h2{background:#b5cde9}.h3{background:#7fa6d6;color:#fff}.h4{background:#4a7fc0;color:#fff}.h5{background:#1f4f93;color:#fff}
.chart{background:#fff;border:1px solid #dde3ea;max-width:100%;height:auto}.seqs,.checkpoint{font-family:ui-monospace,monospace;font-size:.8em;word-break:break-all;white-space:pre-wrap}
"#;
