//! The HTTP API (`--listen ADDR`): metrics, health, a customer's record and the pre-contact
//! check. Described in `docs/openapi.yaml`, which a test keeps in step with [`ROUTES`].
//!
//! Handlers never read engine state: they ask the engines through an [`EngineHandle`] and get
//! an answer computed between two events. What a caller may see is decided by the pure
//! functions of [`access`]; who the caller is comes from a bearer token ([`tokens`]).
//! Error bodies say what the caller must do and nothing about the data: the same 401 for a
//! missing and an unknown token, no customer or rep named in a 403.

pub mod access;
pub mod tokens;

use crate::engine::{CheckAnswer, CheckError, CustomerIdentifiers, CustomerView, Decision};
use crate::host::{EngineHandle, HostError};
use crate::telemetry::Metrics;
use access::{OwnerFacts, Principal, Visibility};
use axum::body::Bytes;
use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
pub use tokens::Tokens;

/// Every route the API serves, as (method, path template). The router is built from this list
/// and `docs/openapi.yaml` must describe exactly these.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/customers/{id}"),
    ("post", "/check"),
];

/// What every request handler shares.
#[derive(Clone)]
pub struct ApiState {
    pub engine: EngineHandle,
    pub tokens: Arc<Tokens>,
    pub metrics: Arc<Metrics>,
}

fn handler(method: &str, path: &str) -> MethodRouter<ApiState> {
    match (method, path) {
        ("get", "/healthz") => get(healthz),
        ("get", "/readyz") => get(readyz),
        ("get", "/metrics") => get(metrics),
        ("get", "/customers/{id}") => get(customer),
        ("post", "/check") => post(check),
        _ => unreachable!("every entry of ROUTES has a handler: {method} {path}"),
    }
}

/// The API's router.
pub fn router(state: ApiState) -> Router {
    let mut r = Router::new();
    for (method, path) in ROUTES {
        r = r.route(path, handler(method, path));
    }
    r.fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .with_state(state)
}

/// Serves the API until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Counts every request by route template (never the raw path, which holds customer ids) and
/// status.
async fn count_requests(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched".to_string(), |p| p.as_str().to_string());
    let method = req.method().clone();
    let response = next.run(req).await;
    let status = response.status();
    state
        .metrics
        .api_requests
        .with_label_values(&[route.as_str(), status.as_str()])
        .inc();
    tracing::debug!(%method, route, status = status.as_u16(), "api request");
    response
}

#[derive(Serialize)]
struct ErrorBody {
    error: &'static str,
    message: String,
}

fn error(status: StatusCode, error: &'static str, message: impl Into<String>) -> Response {
    let mut response = (
        status,
        Json(ErrorBody {
            error,
            message: message.into(),
        }),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

fn unauthorized() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "send a valid API token as `Authorization: Bearer TOKEN`",
    )
}

fn forbidden(message: &str) -> Response {
    error(StatusCode::FORBIDDEN, "forbidden", message)
}

fn unavailable(e: HostError) -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        format!("{e}; retry shortly"),
    )
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such route; see docs/openapi.yaml",
    )
}

/// The caller the request's bearer token stands for; `None` (a 401) when the token is
/// missing or unknown, which are not told apart.
fn authenticate(state: &ApiState, headers: &HeaderMap) -> Option<Principal> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })?;
    let entry = state.tokens.authenticate(token)?;
    tracing::debug!(
        token = entry.name,
        role = entry.principal.role(),
        "authenticated"
    );
    Some(entry.principal.clone())
}

#[derive(Serialize)]
struct Status {
    status: &'static str,
}

async fn healthz() -> Json<Status> {
    Json(Status { status: "ok" })
}

async fn readyz(State(state): State<ApiState>) -> Response {
    if state.engine.is_ready() {
        Json(Status { status: "ready" }).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Status { status: "starting" }),
        )
            .into_response()
    }
}

async fn metrics(State(state): State<ApiState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        state.metrics.render(),
    )
        .into_response()
}

fn owner_facts(owner: Option<&crate::engine::OwnerView>) -> Option<OwnerFacts<'_>> {
    owner.map(|o| OwnerFacts {
        rep: &o.rep.id,
        team: o.rep.team.as_deref(),
    })
}

/// What a caller who may not see the record learns about a customer.
#[derive(Serialize)]
struct LimitedCustomer<'a> {
    id: &'a str,
    taken: bool,
    visibility: &'static str,
}

#[derive(Serialize)]
struct FullCustomer<'a> {
    #[serde(flatten)]
    view: &'a CustomerView,
    visibility: &'static str,
}

async fn customer(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(who) = authenticate(&state, &headers) else {
        return unauthorized();
    };
    let view = match state.engine.customer(&id).await {
        Ok(Some(v)) => v,
        Ok(None) => {
            return error(
                StatusCode::NOT_FOUND,
                "not_found",
                "no customer with this id is on record",
            )
        }
        Err(e) => return unavailable(e),
    };
    match access::customer_visibility(&who, owner_facts(view.owner.as_ref())) {
        Visibility::Full => Json(FullCustomer {
            view: &view,
            visibility: "full",
        })
        .into_response(),
        Visibility::Limited => Json(LimitedCustomer {
            id: &view.id,
            taken: view.owner.is_some(),
            visibility: "limited",
        })
        .into_response(),
    }
}

/// `POST /check` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckRequest {
    /// The rep who wants to make contact (a rep's own token may leave it out).
    rep: Option<String>,
    customer: CustomerIdentifiers,
}

#[derive(Serialize)]
struct FullCheck<'a> {
    #[serde(flatten)]
    answer: &'a CheckAnswer,
    visibility: &'static str,
}

#[derive(Serialize)]
struct LimitedCheck<'a> {
    decision: Decision,
    reason: &'static str,
    notes: &'a [String],
    as_of: &'a str,
    visibility: &'static str,
}

/// The reason given to a caller who may not see the owner.
fn limited_reason(decision: Decision) -> &'static str {
    match decision {
        Decision::Allowed => "no other rep owns this customer",
        Decision::OutOfTerritory => "this customer is outside your territory",
        Decision::OwnedByOther => "another rep owns this customer; its protection has ended, but contacts by several reps still raise multi-rep alerts",
        Decision::Protected => "another rep owns this customer and it is protected: contacting it would raise a collision alert",
    }
}

async fn check(State(state): State<ApiState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(who) = authenticate(&state, &headers) else {
        return unauthorized();
    };
    let req: CheckRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("the body must be JSON like {{\"rep\":\"r0001\",\"customer\":{{\"phone\":\"138 0013 8000\"}}}}: {e}"),
            )
        }
    };
    let rep = match (&who, req.rep) {
        (_, Some(rep)) => rep,
        (Principal::Rep { id }, None) => id.clone(),
        (_, None) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "name the rep who wants to make contact: {\"rep\": \"ID\", ...}",
            )
        }
    };
    // A rep acts only for themselves: refused before anything is looked up.
    if matches!(&who, Principal::Rep { id } if *id != rep) {
        return forbidden("this token may check only for its own rep");
    }
    let answer = match state.engine.check(&rep, &req.customer).await {
        Ok(Ok(a)) => a,
        Ok(Err(e @ (CheckError::NoIdentifier | CheckError::Invalid(_)))) => {
            return error(StatusCode::BAD_REQUEST, "bad_request", e.to_string())
        }
        Err(e) => return unavailable(e),
    };
    if !access::may_act_for(&who, &rep, answer.rep.team.as_deref()) {
        return forbidden("this token may not check on behalf of that rep");
    }
    match access::customer_visibility(&who, owner_facts(answer.owner.as_ref())) {
        Visibility::Full => Json(FullCheck {
            answer: &answer,
            visibility: "full",
        })
        .into_response(),
        Visibility::Limited => Json(LimitedCheck {
            decision: answer.decision,
            reason: limited_reason(answer.decision),
            notes: &answer.notes,
            as_of: &answer.as_of,
            visibility: "limited",
        })
        .into_response(),
    }
}
