//! `bletchley serve`: the platform over HTTPS. A JSON API for every
//! command-line capability and a server-rendered web console, behind
//! password sessions (secure cookies, CSRF tokens, throttled logins) or
//! scoped API tokens. Every data path goes through the same gated,
//! audited platform calls as the command line.

// The OpenAPI document is one `json!` literal whose paths outgrow the macro's default depth.
#![recursion_limit = "256"]

mod admin;
mod api;
mod api_detect;
mod api_playbooks;
mod api_transcription;
mod auth;
mod console;
mod console_admin;
mod console_oversight;
mod console_transcript;
mod error;
mod extract;
mod health;
mod html;
pub mod lookup;
mod map;
mod openapi;
mod oversight;
mod remarking;
mod sharing;
pub mod tls;
mod witness;
mod worker;
mod xref;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Request, header};
use axum::routing::{get, post};
use bletchley_store::Platform;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tower::ServiceExt;

pub use error::ApiError;
pub use witness::serve_witness;

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// Certificate or key trouble.
    #[error("TLS: {0}")]
    Tls(String),
    /// Files and sockets.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    /// Opening the index.
    #[error(transparent)]
    Index(#[from] bletchley_index::Error),
}

/// How to serve.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// A certificate and key (PEM) to use instead of the generated one.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// This node's site name when it replicates: notes written here say where
    /// (`alice@cyprus`), since they are read at other sites too.
    pub site: Option<String>,
}

/// What every handler shares.
pub(crate) struct Shared {
    /// The platform's home nation, for rendering markings.
    pub(crate) home: bletchley_policy::Nation,
    pub(crate) worker: worker::Worker,
    pub(crate) sessions: auth::Sessions,
    pub(crate) throttle: auth::Throttle,
    /// This node's site name, if it is one.
    pub(crate) site: Option<String>,
}

/// The client's address, for login throttling.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ClientAddr(pub(crate) SocketAddr);

fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route("/login", post(api::login))
        .route("/logout", post(api::logout))
        .route("/me", get(api::me))
        .route("/search", get(api::search))
        .route("/suggest", get(api::suggest))
        .route("/items", get(api::list).post(api::upload))
        .route("/items/{id}", get(api::item).delete(api::shred))
        .route("/items/{id}/content", get(api::content))
        .route("/items/{id}/similar", get(api::similar))
        .route(
            "/items/{id}/transcription",
            get(api_transcription::transcription),
        )
        .route(
            "/items/{id}/annotations",
            get(api::annotations).post(api::annotate),
        )
        .route("/graph/neighbours", get(api::neighbours))
        .route("/graph/path", get(api::path))
        .route("/graph/common", get(api::common))
        .route("/graph/communities", get(api::communities))
        .route("/graph/centrality", get(api::centrality))
        .route("/timeline", get(api::timeline))
        .route("/xref", get(xref::api))
        .route("/operations", get(api::operations))
        .route("/jobs", get(api::jobs))
        .route("/alerts", get(api::alerts))
        .route(
            "/detect/rules",
            get(api_detect::rules).post(api_detect::add_rules),
        )
        .route("/detect/run", post(api_detect::run))
        .route("/cases", get(api::cases).post(api::open_cases))
        .route("/cases/{id}", get(api::case).post(api::update_case))
        .route("/cases/{id}/playbook", post(api_playbooks::run_playbook))
        .route("/cases/{id}/approve", post(api_playbooks::approve))
        .route(
            "/playbooks",
            get(api_playbooks::playbooks).post(api_playbooks::add_playbook),
        )
        .route("/audit", get(api::audit))
        .route("/admin/principals", get(admin::principals))
        .route("/admin/overview", get(admin::overview))
        .route("/admin/principals/{name}/standing", post(admin::standing))
        .route("/admin/principals/{name}/review", post(admin::review))
        .route("/items/{id}/reclassify", post(remarking::api_reclassify))
        .route("/reclassify", get(remarking::api_requests))
        .route(
            "/reclassify/{request}/approve",
            post(remarking::api_approve),
        )
        .route("/reclassify/{request}/reject", post(remarking::api_reject))
        .route("/admin/retention", get(remarking::api_retention_queue))
        .route("/admin/operations", get(sharing::api_operations))
        .route(
            "/admin/operations/{name}/{change}",
            post(sharing::api_share),
        )
        .route("/admin/sites", get(sharing::api_sites))
        .route(
            "/admin/retention/{id}",
            post(remarking::api_decide_retention),
        )
        .route("/oversight/report", get(oversight::report_json))
        .route("/oversight/report.pdf", get(oversight::report_pdf))
        .route("/health", get(health::health))
        .route("/openapi.json", get(api::openapi))
        .fallback(api::not_found);
    Router::new()
        .nest("/api", api)
        .route("/metrics", get(health::metrics))
        .merge(console::routes())
        .layer(DefaultBodyLimit::max(api::MAX_UPLOAD))
        .with_state(shared)
}

/// Headers every answer carries: no caching of intelligence, no framing,
/// no sniffing, a strict content policy, HTTPS only.
fn harden(h: &mut axum::http::HeaderMap) {
    for (k, v) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
        (header::STRICT_TRANSPORT_SECURITY, "max-age=31536000"),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
}

/// Serves until the process is stopped. Prints the URL once listening.
pub fn serve(platform: Platform, opts: &ServeOptions) -> Result<(), ServeError> {
    let listener = std::net::TcpListener::bind(opts.listen)
        .map_err(|e| ServeError::Io(opts.listen.to_string(), e))?;
    serve_on(platform, listener, opts.tls.clone(), opts.site.clone())
}

/// Serves on a listener already bound (benchmarks and embedding pick the
/// port first). Prints the URL once listening.
pub fn serve_on(
    platform: Platform,
    listener: std::net::TcpListener,
    tls_files: Option<(PathBuf, PathBuf)>,
    site: Option<String>,
) -> Result<(), ServeError> {
    let tls = tls::server_config(
        &platform,
        tls_files.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
    )?;
    let mut platform = platform;
    let index = bletchley_index::access::open_synced(&mut platform)?;
    // The server answers many queries from one searcher: pay for the
    // per-class term statistics once, not per query.
    index.warm()?;
    let shared = Arc::new(Shared {
        home: platform.home(),
        worker: worker::Worker::start(worker::State::new(platform, index)),
        sessions: auth::Sessions::default(),
        throttle: auth::Throttle::default(),
        site,
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| ServeError::Io("tokio runtime".into(), e))?;
    rt.block_on(async move {
        listener
            .set_nonblocking(true)
            .map_err(|e| ServeError::Io("listener".into(), e))?;
        let listener = tokio::net::TcpListener::from_std(listener)
            .map_err(|e| ServeError::Io("listener".into(), e))?;
        let local = listener
            .local_addr()
            .map_err(|e| ServeError::Io("listener".into(), e))?;
        println!("listening on https://{local}/");
        let app = router(shared);
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    eprintln!("bletchley serve: accept: {e}");
                    continue;
                }
            };
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                // A handshake that stalls is dropped rather than held open.
                let tls = match tokio::time::timeout(
                    std::time::Duration::from_secs(10),
                    acceptor.accept(tcp),
                )
                .await
                {
                    Ok(Ok(s)) => s,
                    _ => return,
                };
                // A client certificate, if one was presented, has been
                // verified against the platform's client CA by now.
                let identity = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .and_then(|c| tls::client_identity(c.as_ref()))
                    .and_then(|(cn, serial)| HeaderValue::from_str(&format!("{cn} {serial}")).ok());
                let svc =
                    hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
                        req.extensions_mut().insert(ClientAddr(peer));
                        // The client-certificate header is the TLS layer's
                        // alone: whatever a client sent under that name is
                        // dropped before the verified identity is added.
                        req.headers_mut().remove(auth::CLIENT_CERT_HEADER);
                        if let Some(id) = &identity {
                            req.headers_mut()
                                .insert(auth::CLIENT_CERT_HEADER, id.clone());
                        }
                        let app = app.clone();
                        async move {
                            let mut resp = app.oneshot(req.map(axum::body::Body::new)).await?;
                            harden(resp.headers_mut());
                            // A refused oversized upload leaves its body unread, so the
                            // connection cannot carry another request: say so, or a
                            // client that reuses it sees its next request cut off.
                            if resp.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                                resp.headers_mut()
                                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                            }
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    })
}
