//! The overseer's report over HTTP: `GET /api/oversight/report` (JSON) and
//! `GET /api/oversight/report.pdf`, for a principal with the overseer role; the console's
//! Oversight page draws the same report. Each goes through the store's gated, audited
//! `oversight_report`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use bletchley_oversight::{Period, Report};
use serde::Deserialize;

use crate::Shared;
use crate::api::{ApiResult, reader};
use crate::error::ApiError;
use crate::extract::Q;

const DAY_MS: i64 = 86_400_000;

/// The period asked for: whole UTC days, both ends included.
#[derive(Deserialize, Default, Clone)]
pub struct PeriodQuery {
    /// First day, `YYYY-MM-DD` (default: 90 days before `to`).
    pub from: Option<String>,
    /// Last day, `YYYY-MM-DD` (default: today).
    pub to: Option<String>,
}

fn day_ms(s: &str, what: &str) -> ApiResult<i64> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &fmt)
        .map(|d| d.midnight().assume_utc().unix_timestamp() * 1000)
        .map_err(|_| ApiError::bad_request(format!("{what}: expected YYYY-MM-DD")))
}

impl PeriodQuery {
    /// The half-open period in milliseconds, refusing one that ends before it begins.
    pub fn period(&self) -> ApiResult<Period> {
        let to_ms = match self.to.as_deref().filter(|t| !t.is_empty()) {
            Some(t) => day_ms(t, "to")? + DAY_MS,
            None => {
                let now = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
                now - now.rem_euclid(DAY_MS) + DAY_MS
            }
        };
        let from_ms = match self.from.as_deref().filter(|f| !f.is_empty()) {
            Some(f) => day_ms(f, "from")?,
            None => to_ms - 91 * DAY_MS,
        };
        if from_ms >= to_ms {
            return Err(ApiError::bad_request("from must not be after to"));
        }
        Ok(Period { from_ms, to_ms })
    }
}

pub(crate) async fn report(s: &Shared, who: String, period: Period) -> ApiResult<Report> {
    s.worker
        .run(move |st| Ok(st.platform.oversight_report(&who, period)?))
        .await
}

/// The PDF's running title.
pub(crate) fn title(p: &Period) -> String {
    format!(
        "Oversight report {} to {}",
        bletchley_oversight::report::date(p.from_ms),
        bletchley_oversight::report::date(p.to_ms - 1)
    )
}

/// The report as a PDF download.
pub(crate) fn pdf_response(r: &Report) -> Response {
    let t = title(&r.period);
    let name = format!(
        "oversight-{}-{}.pdf",
        bletchley_oversight::report::date(r.period.from_ms),
        bletchley_oversight::report::date(r.period.to_ms - 1)
    );
    (
        [
            (CONTENT_TYPE, "application/pdf".to_owned()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        bletchley_oversight::pdf::render(r, &t),
    )
        .into_response()
}

/// `GET /api/oversight/report?from&to`: the report as JSON (overseers only).
pub async fn report_json(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Q(q): Q<PeriodQuery>,
) -> ApiResult<Json<Report>> {
    let who = reader(&s, &headers).await?;
    let period = q.period()?;
    Ok(Json(report(&s, who, period).await?))
}

/// `GET /api/oversight/report.pdf?from&to`: the report as PDF (overseers only).
pub async fn report_pdf(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Q(q): Q<PeriodQuery>,
) -> ApiResult<Response> {
    let who = reader(&s, &headers).await?;
    let period = q.period()?;
    Ok(pdf_response(&report(&s, who, period).await?))
}
