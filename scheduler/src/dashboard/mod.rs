//! The scheduler's live dashboard and metrics, on an HTTP port of their own (`--dashboard ADDR`,
//! default 127.0.0.1:8787; `--no-dashboard`). An axum router serves:
//!
//! - `/`: the page (`page.html` and `app.js`, compiled in with `include_str!`: no build step, nothing
//!   fetched at run time) — workers, jobs with progress per layer, the task stream of the last
//!   minute, throughput — served with the current snapshot in it, so it is whole before the first
//!   event;
//! - `/events`: server-sent events, one JSON [`Snapshot`](snapshot::Snapshot) a second (the first one
//!   whole, then only the task-stream records that are new), which the page applies without
//!   reloading; `/api/snapshot`: the same JSON once;
//! - `/metrics`: Prometheus' text format ([`metrics`]); `/health`: `ok` while the actor answers.
//!
//! Authentication follows the gRPC side: with a cluster secret, every route but `/health` needs the
//! token `hex(HMAC-SHA256(secret, "tessera-dashboard"))` ([`token`]), given as `?token=` (which also
//! sets an HttpOnly cookie and redirects to the same path without it, so the token leaves the address
//! bar), as that cookie, or as `Authorization: Bearer`. Anything else gets 401 with one line. The
//! secret is never served or logged; `tessera-scheduler dashboard-url` prints the URL with the token.
//! With `--insecure` there is no token.
//!
//! The data comes from the actor ([`ActorHandle::dashboard`]); one broadcaster task asks it for a
//! snapshot a second while anybody watches, so viewers cost the actor nothing more.

pub mod metrics;
pub mod record;
pub mod snapshot;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use futures_util::stream::{self, Stream};
use tessera_proto::auth::{Secret, constant_time_eq};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tracing::{info, warn};

use crate::server::actor::ActorHandle;

/// What the token is derived for ([`Secret::derive_token`]).
pub const TOKEN_PURPOSE: &str = "tessera-dashboard";
/// The cookie `?token=` sets.
const COOKIE: &str = "tessera_dashboard";
/// How often the page is updated.
const INTERVAL: Duration = Duration::from_secs(1);

const PAGE: &str = include_str!("page.html");
const SCRIPT: &str = include_str!("app.js");

/// The dashboard token for a cluster secret.
pub fn token(secret: &Secret) -> String {
    secret.derive_token(TOKEN_PURPOSE)
}

/// The dashboard's URL for a user to open: with the token when the cluster has a secret. An
/// unspecified address (0.0.0.0) is shown as loopback, where a browser on this machine reaches it.
pub fn url(address: SocketAddr, secret: Option<&Secret>) -> String {
    let mut address = address;
    if address.ip().is_unspecified() {
        address.set_ip(if address.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    match secret {
        Some(s) => format!("http://{address}/?token={}", token(s)),
        None => format!("http://{address}/"),
    }
}

/// Binds the dashboard's port. A port already taken (another scheduler on this machine has the
/// default) is not fatal: one line says so and the scheduler runs without a dashboard.
pub async fn bind(address: SocketAddr) -> Option<TcpListener> {
    match TcpListener::bind(address).await {
        Ok(l) => Some(l),
        Err(e) => {
            warn!(
                "dashboard disabled: cannot listen on {address}: {e} (choose another with --dashboard ADDR, or --no-dashboard)"
            );
            None
        }
    }
}

#[derive(Clone)]
struct Shared {
    actor: ActorHandle,
    /// The expected token; `None` with `--insecure`.
    token: Option<Arc<str>>,
    updates: broadcast::Sender<Arc<str>>,
    streams: Arc<AtomicUsize>,
    max_streams: usize,
}

/// Serves the dashboard on `listener` until the returned task is aborted (the scheduler does that
/// when it stops: event streams never end by themselves, so a graceful shutdown would wait for ever).
pub fn spawn(
    listener: TcpListener,
    actor: ActorHandle,
    secret: Option<&Secret>,
    max_streams: usize,
) -> tokio::task::JoinHandle<()> {
    let address = listener.local_addr().ok();
    let (updates, _) = broadcast::channel(4);
    let shared = Shared {
        actor,
        token: secret.map(|s| Arc::from(token(s))),
        updates,
        streams: Arc::new(AtomicUsize::new(0)),
        max_streams,
    };
    tokio::spawn(broadcast_loop(shared.clone()));
    let app = router(shared.clone());
    if let Some(a) = address {
        // The address only: the token is never logged (`tessera-scheduler dashboard-url` prints it).
        info!(address = %a, authenticated = shared.token.is_some(), "dashboard listening on http://{a}/");
    }
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            warn!("the dashboard stopped: {e}");
        }
    })
}

fn router(shared: Shared) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/app.js", get(script))
        .route("/api/snapshot", get(snapshot_json))
        .route("/events", get(events))
        .route("/metrics", get(metrics_text))
        .route_layer(middleware::from_fn_with_state(shared.clone(), authenticate))
        .route("/health", get(health))
        .with_state(shared)
}

/// One line, as every refusal on the gRPC side.
fn unauthorized(why: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("401 unauthorized: {why}\n"),
    )
        .into_response()
}

fn query_token(uri: &Uri) -> Option<&str> {
    uri.query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
}

fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

async fn authenticate(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    let Some(expected) = shared.token.clone() else {
        return next.run(request).await;
    };
    let ok = |t: &str| constant_time_eq(t.as_bytes(), expected.as_bytes());
    if let Some(t) = query_token(request.uri()) {
        if !ok(t) {
            return unauthorized(
                "wrong dashboard token (get the URL from `tessera-scheduler dashboard-url`)",
            );
        }
        // Keep the token in an HttpOnly cookie and take it out of the address bar (and history).
        let path = request.uri().path().to_string();
        let mut response = Redirect::to(&path).into_response();
        if let Ok(cookie) = HeaderValue::from_str(&format!(
            "{COOKIE}={expected}; Path=/; HttpOnly; SameSite=Strict"
        )) {
            response.headers_mut().insert(header::SET_COOKIE, cookie);
        }
        return response;
    }
    let given = cookie_token(request.headers()).or_else(|| bearer_token(request.headers()));
    match given {
        Some(t) if ok(t) => next.run(request).await,
        Some(_) => unauthorized(
            "wrong dashboard token (get the URL from `tessera-scheduler dashboard-url`)",
        ),
        None => unauthorized(
            "a dashboard token is required: open the URL `tessera-scheduler dashboard-url` prints, or send `Authorization: Bearer TOKEN`",
        ),
    }
}

/// The page with the current snapshot in it (the script applies it at once, then follows the event
/// stream).
async fn page(State(shared): State<Shared>) -> Response {
    let Some(s) = shared.actor.dashboard(0).await else {
        return actor_gone();
    };
    // In a <script> element only `</script` could end the JSON early: escaping every `<` (valid
    // JSON either way) rules that out.
    let json = s.to_json().to_string().replace('<', "\\u003c");
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        PAGE.replacen("/*SNAPSHOT*/", &json, 1),
    )
        .into_response()
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}

fn actor_gone() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "503 the scheduler is stopping\n",
    )
        .into_response()
}

async fn health(State(shared): State<Shared>) -> Response {
    match shared.actor.dashboard(u64::MAX).await {
        Some(_) => (StatusCode::OK, "ok\n").into_response(),
        None => actor_gone(),
    }
}

async fn snapshot_json(State(shared): State<Shared>) -> Response {
    match shared.actor.dashboard(0).await {
        Some(s) => (
            [(header::CONTENT_TYPE, "application/json")],
            s.to_json().to_string(),
        )
            .into_response(),
        None => actor_gone(),
    }
}

async fn metrics_text(State(shared): State<Shared>) -> Response {
    match shared.actor.dashboard(u64::MAX).await {
        Some(s) => (
            [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
            metrics::render(&s),
        )
            .into_response(),
        None => actor_gone(),
    }
}

/// Asks the actor for what is new once a second while anybody listens, and sends it to every
/// event stream.
async fn broadcast_loop(shared: Shared) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut cursor = 0;
    loop {
        tick.tick().await;
        if shared.updates.receiver_count() == 0 {
            // Nobody watches: the next viewer starts from a whole snapshot of its own.
            cursor = u64::MAX;
            continue;
        }
        let since = if cursor == u64::MAX { 0 } else { cursor };
        let Some(s) = shared.actor.dashboard(since).await else {
            return;
        };
        cursor = s.cursor;
        let _ = shared.updates.send(Arc::from(s.to_json().to_string()));
    }
}

/// Counts an event stream while it lives.
struct StreamSlot(Arc<AtomicUsize>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn events(State(shared): State<Shared>) -> Response {
    let open = shared.streams.fetch_add(1, Ordering::Relaxed);
    let slot = StreamSlot(shared.streams.clone());
    if open >= shared.max_streams {
        drop(slot);
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "503 already {open} dashboard event streams open; the limit is {} (--dashboard-max-streams)\n",
                shared.max_streams
            ),
        )
            .into_response();
    }
    // Subscribe before the first snapshot so nothing between the two is missed (the page drops
    // task records it already has).
    let rx = shared.updates.subscribe();
    let Some(first) = shared.actor.dashboard(0).await else {
        return actor_gone();
    };
    let first: Arc<str> = Arc::from(first.to_json().to_string());
    Sse::new(updates(slot, Some(first), rx))
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn updates(
    slot: StreamSlot,
    first: Option<Arc<str>>,
    rx: broadcast::Receiver<Arc<str>>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold((slot, first, rx), |(slot, first, mut rx)| async move {
        if let Some(data) = first {
            return Some((Ok(Event::default().data(&*data)), (slot, None, rx)));
        }
        loop {
            match rx.recv().await {
                Ok(data) => return Some((Ok(Event::default().data(&*data)), (slot, None, rx))),
                // A slow reader missed updates: it catches up with the next (its task stream
                // has a gap).
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}
