//! Errors as clients see them: a status, a stable code and a message that
//! never carries internal detail. Denials of items read exactly like
//! absence.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human-readable message, safe to show.
    pub message: String,
}

impl ApiError {
    /// A new error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 401: who you are is not established.
    pub fn unauthenticated() -> ApiError {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "log in or present a valid API token",
        )
    }

    /// 403: who you are is known, and this is not allowed.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404, for absent and for denied alike.
    pub fn not_found() -> ApiError {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "not found or not permitted",
        )
    }

    /// 500; the detail goes to the server log only.
    pub fn internal(detail: &str) -> ApiError {
        eprintln!("bletchley serve: internal error: {detail}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the operator's log has the detail",
        )
    }
}

impl From<bletchley_store::Error> for ApiError {
    fn from(e: bletchley_store::Error) -> ApiError {
        use bletchley_store::Error as E;
        match e {
            // A locked agency key reads as absence too (the audit entry names the key).
            E::NotFoundOrNotPermitted { .. } | E::KeyUnavailable { .. } => ApiError::not_found(),
            E::Invalid(m) => ApiError::bad_request(m),
            // Whether a collection or principal of another agency exists is
            // not the caller's to learn either.
            E::Unknown { .. } => ApiError::not_found(),
            E::Inactive { .. } => {
                ApiError::new(StatusCode::UNAUTHORIZED, "inactive", e.to_string())
            }
            E::JustificationRequired { .. } | E::RoleRequired { .. } | E::Residency { .. } => {
                ApiError::forbidden(e.to_string())
            }
            E::Exists { .. } => ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string()),
            E::Held { .. } => ApiError::new(StatusCode::CONFLICT, "legal_hold", e.to_string()),
            E::Braked { .. } => ApiError::new(StatusCode::FORBIDDEN, "brake", e.to_string()),
            other => ApiError::internal(&other.to_string()),
        }
    }
}

impl From<bletchley_index::Error> for ApiError {
    fn from(e: bletchley_index::Error) -> ApiError {
        match e {
            bletchley_index::Error::Query(m) => ApiError::bad_request(m),
            bletchley_index::Error::Store(s) => s.into(),
            other => ApiError::internal(&other.to_string()),
        }
    }
}

impl From<bletchley_sync::Error> for ApiError {
    fn from(e: bletchley_sync::Error) -> ApiError {
        match e {
            bletchley_sync::Error::Store(s) => s.into(),
            other => ApiError::internal(&other.to_string()),
        }
    }
}

impl From<bletchley_policy::MarkingError> for ApiError {
    fn from(e: bletchley_policy::MarkingError) -> ApiError {
        ApiError::bad_request(format!("marking: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": { "code": self.code, "message": self.message } });
        (self.status, Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_agency_key_reads_like_absence() {
        let locked: ApiError = bletchley_store::Error::KeyUnavailable {
            agency: "mi6".into(),
            reason: "wrong passphrase".into(),
        }
        .into();
        let absent = ApiError::not_found();
        assert_eq!(
            (locked.status, locked.code, locked.message),
            (absent.status, absent.code, absent.message)
        );
    }
}
