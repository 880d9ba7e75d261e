//! `bletchley witness serve`: the C2SP `tlog-witness` HTTP interface over a
//! [`bletchley_audit::Witness`]. Requests need no authentication (the protocol's
//! trust is in the checkpoint's signature and the consistency proof); HTTPS is
//! used when a certificate is given, plain HTTP otherwise (behind a bastion or
//! TLS terminator, as the protocol allows).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bletchley_audit::Witness;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tower::ServiceExt;

use crate::ServeError;

/// A request is an old size, at most 63 hashes and one checkpoint: far below this.
const MAX_REQUEST: usize = 64 * 1024;

fn router(w: Arc<Witness>) -> Router {
    Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .route("/", get(key))
        .layer(DefaultBodyLimit::max(MAX_REQUEST))
        .with_state(w)
}

/// The witness's public key, so an operator can check what it answers with.
async fn key(State(w): State<Arc<Witness>>) -> String {
    format!("{}\n", w.public().render())
}

async fn add_checkpoint(State(w): State<Arc<Witness>>, body: String) -> Response {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Persisting the state fsyncs: off the async threads.
    let answer = tokio::task::spawn_blocking(move || w.add_checkpoint(&body, now)).await;
    match answer {
        Ok(Ok(lines)) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            lines,
        )
            .into_response(),
        Ok(Err(r)) => {
            let status =
                StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            match r.size {
                Some(size) => (
                    status,
                    [(header::CONTENT_TYPE, "text/x.tlog.size")],
                    format!("{size}\n"),
                )
                    .into_response(),
                None => (
                    status,
                    [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                    format!("{}\n", r.message),
                )
                    .into_response(),
            }
        }
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "witness task failed\n").into_response(),
    }
}

fn tls_config(cert: &PathBuf, key: &PathBuf) -> Result<Arc<rustls::ServerConfig>, ServeError> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| ServeError::Tls(format!("{}: {e}", cert.display())))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| ServeError::Tls(format!("{}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServeError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ServeError::Tls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Serves the witness on `listener` until the process stops; HTTPS with the
/// PEM certificate and key if given. Prints the URL once listening.
pub fn serve_witness(
    witness: Witness,
    listener: std::net::TcpListener,
    tls: Option<(PathBuf, PathBuf)>,
) -> Result<(), ServeError> {
    let tls = tls.map(|(c, k)| tls_config(&c, &k)).transpose()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| ServeError::Io("tokio runtime".into(), e))?;
    let app = router(Arc::new(witness));
    rt.block_on(async move {
        let io = |e| ServeError::Io("listener".into(), e);
        listener.set_nonblocking(true).map_err(io)?;
        let listener = tokio::net::TcpListener::from_std(listener).map_err(io)?;
        let local = listener.local_addr().map_err(io)?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        println!("witness listening on {scheme}://{local}/");
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: axum::http::Request<_>| {
                    let app = app.clone();
                    async move { app.oneshot(req.map(axum::body::Body::new)).await }
                });
                let http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                match acceptor {
                    Some(a) => {
                        let Ok(Ok(s)) =
                            tokio::time::timeout(std::time::Duration::from_secs(10), a.accept(tcp))
                                .await
                        else {
                            return;
                        };
                        let _ = http.serve_connection(TokioIo::new(s), svc).await;
                    }
                    None => {
                        let _ = http.serve_connection(TokioIo::new(tcp), svc).await;
                    }
                }
            });
        }
    })
}
