//! The console's Oversight page, for the overseer: the oversight report of a period as
//! tables, a bar chart per week (inline SVG, no script) and a heat map, each figure with
//! its source entries, the sample proofs, and the same report as PDF or JSON.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use bletchley_oversight::report::{date, ranges};
use bletchley_oversight::{Body, Figure, Report, Row};

use crate::Shared;
use crate::console::{api_error_page, who};
use crate::html::{esc, page};
use crate::oversight::{self, PeriodQuery};

/// The report of the period asked for, for the session's principal; or the page that
/// says why not.
async fn compiled(
    s: &Shared,
    headers: &HeaderMap,
    q: &PeriodQuery,
) -> Result<(crate::console::Who, Report), Response> {
    let w = who(s, headers).map_err(|r| *r)?;
    let r = match q.period() {
        Ok(period) => oversight::report(s, w.name.clone(), period).await,
        Err(e) => Err(e),
    };
    match r {
        Ok(r) => Ok((w, r)),
        Err(e) => Err(api_error_page(e, Some(&w.viewer()))),
    }
}

/// `GET /oversight?from&to`.
pub(crate) async fn oversight_page(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<PeriodQuery>,
) -> Response {
    match compiled(&s, &headers, &q).await {
        Ok((w, r)) => Html(page(
            "Oversight",
            "OFFICIAL-SENSITIVE",
            Some(&w.viewer()),
            &body(&r),
        ))
        .into_response(),
        Err(page) => page,
    }
}

/// `GET /oversight/report.pdf?from&to`.
pub(crate) async fn oversight_pdf(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<PeriodQuery>,
) -> Response {
    match compiled(&s, &headers, &q).await {
        Ok((_, r)) => oversight::pdf_response(&r),
        Err(page) => page,
    }
}

fn body(r: &Report) -> String {
    let from = date(r.period.from_ms);
    let to = date(r.period.to_ms - 1);
    let q = format!("from={from}&amp;to={to}");
    let mut b = format!(
        "<h1>Oversight report</h1><form method=\"get\" action=\"/oversight\">\
<label>From <input type=\"date\" name=\"from\" id=\"from\" value=\"{from}\"></label> \
<label>to <input type=\"date\" name=\"to\" id=\"to\" value=\"{to}\"></label> \
<button type=\"submit\" id=\"compile\">Compile</button></form>\
<p class=\"meta\" id=\"summary\">{} to {} inclusive (UTC): {} of the log's {} entries fall in the period. \
Each figure names the entries it was counted from; a sample of each is proved against the witnessed log below. \
<a id=\"pdf\" href=\"/oversight/report.pdf?{q}\">PDF</a> · <a id=\"json\" href=\"/api/oversight/report?{q}\">JSON</a></p>",
        esc(&from),
        esc(&to),
        r.period_entries,
        r.log_entries
    );
    if let Some(why) = &r.proofs_missing {
        b.push_str(&format!(
            "<p class=\"error\" id=\"no-proofs\">No proofs: {}</p>",
            esc(why)
        ));
    }
    for (n, f) in r.figures.iter().enumerate() {
        figure(&mut b, n + 1, f);
    }
    proofs(&mut b, r);
    b
}

fn figure(b: &mut String, n: usize, f: &Figure) {
    b.push_str(&format!(
        "<section class=\"figure\" id=\"fig-{}\" data-total=\"{}\"><h2>Figure {n}. {}</h2><p class=\"meta\">Counts {}.</p>",
        f.id,
        f.body.total(),
        esc(f.title),
        esc(f.counts)
    ));
    match &f.body {
        Body::Table { headers, rows } => table(b, headers, rows),
        Body::Weekly { weeks } => bars(b, weeks),
        Body::Heat {
            rows,
            columns,
            cells,
        } => heat(b, rows, columns, cells),
    }
    if f.seqs.is_empty() {
        b.push_str("<p class=\"meta\">No source entries in the period.</p>");
    } else {
        b.push_str(&format!(
            "<details class=\"sources\"><summary>Source entries ({}); proved: {}</summary><p class=\"seqs\">{}</p></details>",
            f.seqs.len(),
            f.sample
                .iter()
                .map(|s| format!("<a href=\"#proof-{s}\">#{s}</a>"))
                .collect::<Vec<_>>()
                .join(", "),
            esc(&ranges(&f.seqs))
        ));
    }
    b.push_str("</section>");
}

fn table(b: &mut String, headers: &[&str], rows: &[Row]) {
    if rows.is_empty() {
        b.push_str("<p class=\"none\">None in the period.</p>");
        return;
    }
    b.push_str("<table><tr>");
    for h in headers {
        b.push_str(&format!("<th>{}</th>", esc(h)));
    }
    b.push_str("</tr>");
    for r in rows {
        b.push_str("<tr>");
        for c in &r.cells {
            b.push_str(&format!("<td>{}</td>", esc(c)));
        }
        b.push_str(&format!(
            "<td class=\"num\" title=\"entries {}\">{}</td></tr>",
            esc(&ranges(&r.seqs)),
            r.count
        ));
    }
    b.push_str("</table>");
}

/// A bar per week as inline SVG (presentation attributes only: the content policy
/// allows no inline styles).
fn bars(b: &mut String, weeks: &[Row]) {
    const W: f64 = 720.0;
    const H: f64 = 160.0;
    let max = weeks.iter().map(|w| w.count).max().unwrap_or(0).max(1);
    let slot = (W - 40.0) / weeks.len().max(1) as f64;
    let every = (70.0 / slot).ceil().max(1.0) as usize;
    b.push_str(&format!(
        "<svg class=\"chart\" id=\"weekly\" viewBox=\"0 0 {W} {}\" width=\"{W}\" height=\"{}\" role=\"img\" aria-label=\"accesses per week\">\
<line x1=\"40\" y1=\"{H}\" x2=\"{W}\" y2=\"{H}\" stroke=\"#889\"/>\
<text x=\"0\" y=\"12\" font-size=\"10\">{max}</text><text x=\"0\" y=\"{H}\" font-size=\"10\">0</text>",
        H + 20.0,
        H + 20.0
    ));
    for (i, w) in weeks.iter().enumerate() {
        let h = H * w.count as f64 / max as f64;
        let x = 40.0 + slot * i as f64;
        let label = w.cells.first().map_or("", String::as_str);
        if w.count > 0 {
            b.push_str(&format!(
                "<rect class=\"bar\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#2a5a9e\"><title>week of {}: {} accesses</title></rect>",
                x + slot * 0.15,
                H - h,
                slot * 0.7,
                h,
                esc(label),
                w.count
            ));
        }
        if i % every == 0 {
            b.push_str(&format!(
                "<text x=\"{:.1}\" y=\"{}\" font-size=\"9\">{}</text>",
                x,
                H + 14.0,
                esc(label)
            ));
        }
    }
    b.push_str("</svg>");
}

/// The heat map as a table whose cells are shaded by class (`h0` none to `h5` most).
fn heat(b: &mut String, rows: &[String], columns: &[String], cells: &[Vec<u64>]) {
    if rows.is_empty() {
        b.push_str("<p class=\"none\">None in the period.</p>");
        return;
    }
    let max = cells.iter().flatten().copied().max().unwrap_or(0).max(1);
    b.push_str("<table class=\"heat\" id=\"heat\"><tr><th>principal</th>");
    for c in columns {
        b.push_str(&format!("<th>{}</th>", esc(c)));
    }
    b.push_str("</tr>");
    for (r, name) in rows.iter().enumerate() {
        b.push_str(&format!("<tr><th>{}</th>", esc(name)));
        for (c, &v) in cells[r].iter().enumerate() {
            let shade = if v == 0 {
                0
            } else {
                1 + (4 * v).div_ceil(max).min(4)
            };
            b.push_str(&format!(
                "<td class=\"num h{shade}\" title=\"{} in {}\">{}</td>",
                esc(name),
                esc(&columns[c]),
                if v == 0 { String::new() } else { v.to_string() }
            ));
        }
        b.push_str("</tr>");
    }
    b.push_str("</table>");
}

fn proofs(b: &mut String, r: &Report) {
    if r.proofs.is_empty() {
        return;
    }
    b.push_str(
        "<section id=\"proofs\"><h2>Inclusion proofs of the samples</h2><p class=\"meta\">Each leads from the stored entry's leaf hash (SHA-256 of 0x00 and the leaf) up its RFC 9162 audit path to the root of the checkpoint shown, the newest the witnesses cosigned that covers it (or, for entries newer than the last cosigning, the newest the platform signed).</p>",
    );
    let mut shown: Option<&str> = None;
    for p in &r.proofs {
        if shown != Some(p.checkpoint.as_str()) {
            b.push_str(&format!(
                "<h3>Checkpoint of {} entries</h3><pre class=\"checkpoint\">{}</pre>",
                p.tree_size,
                esc(&p.checkpoint)
            ));
            shown = Some(p.checkpoint.as_str());
        }
        b.push_str(&format!(
            "<details class=\"proof\" id=\"proof-{}\"><summary>Entry #{} in the tree of {}</summary><pre>leaf hash {}\n{}</pre></details>",
            p.index,
            p.index,
            p.tree_size,
            esc(&p.leaf_hash),
            p.proof
                .iter()
                .enumerate()
                .map(|(i, h)| format!("path {i:>2}  {}", esc(h)))
                .collect::<Vec<_>>()
                .join("\n")
        ));
    }
    b.push_str("</section>");
}
