//! How the node stands, for load balancers and monitoring. `GET /api/health` answers
//! anyone, and says only whether the node works (200) or not (503, naming the kind of part
//! that does not answer); `GET /metrics` gives the figures in Prometheus text format to a
//! principal with the `admin` or `overseer` role (a scraper uses a read-scoped token).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bletchley_store::platform::NodeHealth;

use crate::Shared;
use crate::api::{ApiResult, reader};

/// How long the platform thread has to take the health check before the node counts as
/// stuck.
const THREAD_LIMIT: Duration = Duration::from_secs(10);

/// `GET /api/health`: `{"status":"ok"}`, or 503 with the kinds of part that do not answer
/// (`platform thread`, `catalog`, `object store`), never their names or errors.
pub async fn health(State(s): State<Arc<Shared>>) -> Response {
    let probe = s.worker.run(|st| Ok(st.platform.node_health(None)?));
    let failing: Vec<&str> = match tokio::time::timeout(THREAD_LIMIT, probe).await {
        Err(_) | Ok(Err(_)) => vec!["platform thread"],
        Ok(Ok(h)) => {
            let mut f = Vec::new();
            if !h.catalog.ok {
                f.push("catalog");
            }
            if h.locations.iter().any(|l| !l.probe.ok) {
                f.push("object store");
            }
            f
        }
    };
    if failing.is_empty() {
        Json(serde_json::json!({ "status": "ok" })).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "failing", "failing": failing })),
        )
            .into_response()
    }
}

/// `GET /metrics`.
pub async fn metrics(State(s): State<Arc<Shared>>, headers: HeaderMap) -> ApiResult<Response> {
    let who = reader(&s, &headers).await?;
    let h = s
        .worker
        .run(move |st| Ok(st.platform.node_health(Some(&who))?))
        .await?;
    let body = exposition(&h, s.worker.waiting(), s.worker.finished());
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response())
}

/// A label value as the exposition format wants it.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The figures in Prometheus text format.
fn exposition(h: &NodeHealth, waiting: u64, finished: u64) -> String {
    let mut o = String::new();
    let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, String)]| {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(o, "{name}{labels} {value}");
        }
    };
    let up = |ok: bool| if ok { "1" } else { "0" }.to_owned();
    family(
        "bletchley_catalog_up",
        "gauge",
        "Whether the catalog answered a query.",
        &[(String::new(), up(h.catalog.ok))],
    );
    family(
        "bletchley_catalog_probe_seconds",
        "gauge",
        "How long the catalog's query took.",
        &[(String::new(), format!("{}", h.catalog.ms / 1e3))],
    );
    let locations: Vec<(String, String)> = h
        .locations
        .iter()
        .map(|l| {
            (
                format!(
                    "{{location=\"{}\",retired=\"{}\"}}",
                    label(&l.name),
                    l.retired
                ),
                up(l.probe.ok),
            )
        })
        .collect();
    family(
        "bletchley_location_up",
        "gauge",
        "Whether each object-store location answered within 3 s.",
        &locations,
    );
    family(
        "bletchley_audit_entries",
        "gauge",
        "Entries in the audit log.",
        &[(String::new(), h.audit_entries.to_string())],
    );
    family(
        "bletchley_items",
        "gauge",
        "Items held, derived items included.",
        &[(String::new(), h.items.to_string())],
    );
    let jobs: Vec<(String, String)> = h
        .jobs
        .iter()
        .map(|(state, n)| (format!("{{state=\"{}\"}}", label(state)), n.to_string()))
        .collect();
    family("bletchley_jobs", "gauge", "Jobs by state.", &jobs);
    family(
        "bletchley_platform_waiting",
        "gauge",
        "Requests' work waiting for or running on the platform thread.",
        &[(String::new(), waiting.to_string())],
    );
    family(
        "bletchley_platform_finished_total",
        "counter",
        "Requests' work the platform thread has finished since the server started.",
        &[(String::new(), finished.to_string())],
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use bletchley_store::platform::{LocationHealth, Probe};

    #[test]
    fn the_exposition_is_prometheus_text_with_escaped_labels() {
        let probe = |ok| Probe {
            ok,
            error: None,
            ms: 2.0,
        };
        let h = NodeHealth {
            catalog: probe(true),
            locations: vec![LocationHealth {
                name: "eu \"west\"".into(),
                retired: false,
                probe: probe(false),
            }],
            audit_entries: 7,
            items: 3,
            jobs: [("queued".to_owned(), 2)].into_iter().collect(),
        };
        let text = exposition(&h, 1, 40);
        for line in [
            "# TYPE bletchley_catalog_up gauge",
            "bletchley_catalog_up 1",
            "bletchley_catalog_probe_seconds 0.002",
            "bletchley_location_up{location=\"eu \\\"west\\\"\",retired=\"false\"} 0",
            "bletchley_audit_entries 7",
            "bletchley_items 3",
            "bletchley_jobs{state=\"queued\"} 2",
            "bletchley_platform_waiting 1",
            "# TYPE bletchley_platform_finished_total counter",
            "bletchley_platform_finished_total 40",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
