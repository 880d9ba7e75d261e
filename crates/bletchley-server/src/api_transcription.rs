//! `GET /api/items/{id}/transcription`: a recording's transcript and English translation
//! as JSON, stored or still being made, with its job's state: what `transcript --follow`
//! and the console's refreshing section read, for programs that follow a long recording.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use bletchley_ai::follow::{Shown, transcription_view};
use serde_json::{Value, json};

use crate::Shared;
use crate::api::{ApiResult, Why, item_id, reader};
use crate::extract::Q;

fn shown(s: Option<Shown>) -> Value {
    match s {
        None => Value::Null,
        Some(s) => {
            let mut v = serde_json::to_value(&s.transcript).unwrap_or(Value::Null);
            if let Some(o) = v.as_object_mut() {
                o.insert("partial".into(), json!(s.item.is_none()));
                o.insert("item".into(), json!(s.item));
                o.insert("marking".into(), json!(s.marking));
            }
            v
        }
    }
}

/// The handler: read through the gate as the caller (the recording first, then each
/// stored text on its own marking), audited as those reads are.
pub async fn transcription(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Q(w): Q<Why>,
) -> ApiResult<Json<Value>> {
    let who = reader(&s, &headers).await?;
    item_id(&id)?;
    let view = s
        .worker
        .run(move |st| {
            Ok(transcription_view(
                &mut st.platform,
                &who,
                &id,
                w.justification.as_deref(),
            )?)
        })
        .await?;
    let running = view.running();
    let item = view.recording.as_ref().map(|m| m.id.clone());
    let job = view.job.as_ref().map(|j| {
        json!({ "id": j.id, "state": j.state.as_str(), "progress": j.progress,
                "attempts": j.attempts, "error": j.error })
    });
    Ok(Json(json!({
        "item": item,
        "running": running,
        "job": job,
        "transcript": shown(view.transcript),
        "translation": shown(view.translation),
    })))
}
