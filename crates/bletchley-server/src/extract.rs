//! Request extractors whose rejections are JSON errors with stable codes,
//! like every other API error, instead of axum's plain-text bodies.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Json, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Longest justification accepted.
pub const MAX_JUSTIFICATION: usize = 1000;
/// Longest other query parameter accepted.
pub const MAX_PARAM: usize = 500;

/// Query parameters.
pub struct Q<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        // Bounds that hold for every endpoint: a justification is a
        // sentence for the audit log, not a payload.
        if let Ok(Query(all)) =
            Query::<Vec<(String, String)>>::from_request_parts(parts, state).await
        {
            for (k, v) in &all {
                let max = if k == "justification" {
                    MAX_JUSTIFICATION
                } else {
                    MAX_PARAM
                };
                if v.chars().count() > max {
                    return Err(ApiError::bad_request(format!(
                        "{k} is longer than {max} characters"
                    )));
                }
            }
        }
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(t)| Q(t))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

/// A JSON body.
pub struct J<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for J<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Json::<T>::from_request(req, state)
            .await
            .map(|Json(t)| J(t))
            .map_err(|e| match e.status() {
                StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
                    e.status(),
                    "unsupported_media_type",
                    "send application/json",
                ),
                _ => ApiError::bad_request(e.body_text()),
            })
    }
}

/// A raw body within the size limit.
pub struct Raw(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for Raw {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(req, state)
            .await
            .map(Raw)
            .map_err(|e| match e.status() {
                StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!("uploads are at most {} MiB", crate::api::MAX_UPLOAD >> 20),
                ),
                s => ApiError::new(s, "bad_body", e.body_text()),
            })
    }
}
