//! The HTTP API against a real engine hosted the way `run` hosts it: one task owns the engine,
//! processes events and answers queries between them.
//!
//! - the access matrix: (rep, manager, admin) × (own, other team's, unknown customer) ×
//!   (missing, bad, good token), for `GET /customers/{id}` and `POST /check`, plus acting on
//!   behalf of someone out of scope;
//! - answers follow the live state while events keep arriving;
//! - `docs/openapi.yaml` describes exactly the routes the router serves.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use leadguard::api::{self, ApiState, Tokens};
use leadguard::config::{Roster, Rules};
use leadguard::host::{self, EngineHandle};
use leadguard::pipeline::{Origin, Pipeline};
use leadguard::telemetry::Metrics;
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tower::ServiceExt;

const REP_TOKEN: &str = "rep-li-token-0123456789";
const MANAGER_TOKEN: &str = "manager-east-token-0123456789";
const ADMIN_TOKEN: &str = "admin-token-0123456789";

const ROSTER: &str = "reps:
  - {id: r-li, team: east-1, role: sales}
  - {id: r-zhao, team: east-1, role: sales}
  - {id: r-wang, team: west-1, role: sales}
";

const TOKENS: &str = "tokens:
  - {name: li, env: REP_TOKEN, rep: r-li}
  - {name: east, env: MANAGER_TOKEN, manager: east-1}
  - {name: ops, env: ADMIN_TOKEN, admin: true}
";

const HISTORY: &[&str] = &[
    r#"{"event_id":"a1","kind":"assign","occurred_at":"2026-11-02T09:00:00+08:00","customer":{"id":"C-EAST"},"rep":{"id":"r-li"},"source":"crm"}"#,
    r#"{"event_id":"a2","kind":"assign","occurred_at":"2026-11-02T09:00:00+08:00","customer":{"id":"C-WEST"},"rep":{"id":"r-wang"},"source":"crm"}"#,
    r#"{"event_id":"c1","kind":"call","occurred_at":"2026-11-02T09:30:00+08:00","rep":{"id":"r-li"},"customer":{"id":"C-EAST","phone":"138 0013 8000"},"source":"cc"}"#,
    r#"{"event_id":"c2","kind":"email","occurred_at":"2026-11-02T10:00:00+08:00","rep":{"id":"r-wang"},"customer":{"id":"C-WEST","email":"Wang.Buyer@Example.com"},"source":"mail"}"#,
];

/// An event for the host to process, acknowledged once processed.
type Feed = (String, oneshot::Sender<()>);

/// Hosts the engine like `run` does: events and queries in one task, queries answered
/// between events, `now` = the engine's event-time clock.
fn start_host(handle: &EngineHandle) -> mpsc::Sender<Feed> {
    let rules = Arc::new(
        Rules::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("rules")).expect("rules"),
    );
    let roster = Roster::parse(ROSTER, Path::new("roster.yaml")).expect("roster");
    let mut p = Pipeline::new(rules, &roster, None, Vec::new(), Vec::new()).expect("pipeline");
    // The host answers between events: each is placed as it comes.
    p.wait_for_agreed_start(false);
    let mut queries = handle.register("test");
    handle.set_ready(true);
    let (tx, mut events) = mpsc::channel::<Feed>(16);
    tokio::spawn(async move {
        let mut line = 0;
        loop {
            tokio::select! {
                Some(q) = queries.recv() => {
                    let now = p.engine.clock().expect("events came first");
                    host::answer(&p.engine, q, now);
                }
                Some((event, done)) = events.recv() => {
                    line += 1;
                    p.handle_message(event.as_bytes(), false, Origin { input: "test", line }, None)
                        .expect("processed");
                    let _ = done.send(());
                }
                else => break,
            }
        }
    });
    tx
}

async fn feed(tx: &mpsc::Sender<Feed>, event: &str) {
    let (done, processed) = oneshot::channel();
    tx.send((event.to_string(), done))
        .await
        .expect("host running");
    processed.await.expect("processed");
}

struct Api {
    router: axum::Router,
    events: mpsc::Sender<Feed>,
}

async fn api() -> Api {
    let handle = EngineHandle::new();
    let events = start_host(&handle);
    for e in HISTORY {
        feed(&events, e).await;
    }
    let env = |var: &str| match var {
        "REP_TOKEN" => Some(REP_TOKEN.to_string()),
        "MANAGER_TOKEN" => Some(MANAGER_TOKEN.to_string()),
        "ADMIN_TOKEN" => Some(ADMIN_TOKEN.to_string()),
        _ => None,
    };
    let tokens = Tokens::parse(TOKENS, Path::new("tokens.yaml"), env).expect("tokens");
    let router = api::router(ApiState {
        engine: handle,
        tokens: Arc::new(tokens),
        metrics: Metrics::new(),
    });
    Api { router, events }
}

#[derive(Clone, Copy, Debug)]
enum Token {
    Missing,
    Bad,
    Good(&'static str),
}

async fn call(
    router: &axum::Router,
    method: &str,
    path: &str,
    token: Token,
    body: Option<Value>,
) -> (StatusCode, Value, bool) {
    let mut req = Request::builder().method(method).uri(path);
    match token {
        Token::Missing => {}
        Token::Bad => req = req.header("authorization", "Bearer not-a-real-token-at-all"),
        Token::Good(t) => req = req.header("authorization", format!("Bearer {t}")),
    }
    let req = match body {
        Some(b) => req
            .header("content-type", "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .expect("request");
    let res = router.clone().oneshot(req).await.expect("response");
    let status = res.status();
    let challenge = res.headers().contains_key("www-authenticate");
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .expect("body");
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, value, challenge)
}

/// What a good token of `caller` should get for `customer`.
#[derive(Debug, PartialEq)]
enum Expect {
    Full,
    Limited,
    NotFound,
}

/// Bodies that are not a full view must not name any customer's owner, or any customer other
/// than the one asked about.
fn assert_leaks_nothing(body: &Value, asked: &str, context: &str) {
    let text = body.to_string();
    for secret in ["r-li", "r-wang", "r-zhao", "+8613800138000", "wang.buyer"] {
        assert!(
            !text.contains(secret),
            "{context}: `{secret}` leaked in {text}"
        );
    }
    for other in ["C-EAST", "C-WEST"] {
        if other != asked {
            assert!(
                !text.contains(other),
                "{context}: `{other}` leaked in {text}"
            );
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn customer_access_matrix() {
    let api = api().await;
    let callers = [
        ("rep", REP_TOKEN),
        ("manager", MANAGER_TOKEN),
        ("admin", ADMIN_TOKEN),
    ];
    // own = C-EAST (r-li's, team east-1); other team's = C-WEST (r-wang's, west-1).
    let customers = [
        ("own", "C-EAST"),
        ("other team's", "C-WEST"),
        ("unknown", "C-NONE"),
    ];
    for (caller, good) in callers {
        for (which, id) in customers {
            for token in [Token::Missing, Token::Bad, Token::Good(good)] {
                let context = format!("{caller} / {which} customer / {token:?}");
                let (status, body, challenge) =
                    call(&api.router, "GET", &format!("/customers/{id}"), token, None).await;
                let expect = match (token, caller, which) {
                    (Token::Missing | Token::Bad, ..) => {
                        assert_eq!(status, StatusCode::UNAUTHORIZED, "{context}");
                        assert!(challenge, "{context}: WWW-Authenticate");
                        assert_eq!(body["error"], "unauthorized", "{context}");
                        assert_leaks_nothing(&body, "", &context);
                        continue;
                    }
                    (_, _, "unknown") => Expect::NotFound,
                    (_, "admin", _) | (_, _, "own") => Expect::Full,
                    _ => Expect::Limited,
                };
                match expect {
                    Expect::NotFound => {
                        assert_eq!(status, StatusCode::NOT_FOUND, "{context}");
                        assert_leaks_nothing(&body, id, &context);
                    }
                    Expect::Full => {
                        assert_eq!(status, StatusCode::OK, "{context}");
                        assert_eq!(body["visibility"], "full", "{context}");
                        assert_eq!(body["id"], id, "{context}");
                        assert!(body["owner"]["rep"]["id"].is_string(), "{context}");
                        assert!(!body["recent_contacts"].as_array().unwrap().is_empty());
                    }
                    Expect::Limited => {
                        assert_eq!(status, StatusCode::OK, "{context}");
                        assert_eq!(
                            body,
                            serde_json::json!({"id": id, "taken": true, "visibility": "limited"}),
                            "{context}"
                        );
                    }
                }
            }
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn check_access_matrix() {
    let api = api().await;
    // (caller, token, rep the caller checks for): a rep for themselves, a manager and an admin
    // for a rep of team east-1 who doesn't own C-EAST.
    let callers = [
        ("rep", REP_TOKEN, None),
        ("manager", MANAGER_TOKEN, Some("r-zhao")),
        ("admin", ADMIN_TOKEN, Some("r-zhao")),
    ];
    let customers = [
        ("own", serde_json::json!({"id": "C-EAST"})),
        // Found by its email in another spelling: normalized like ingestion.
        (
            "other team's",
            serde_json::json!({"email": "wang.buyer+crm@EXAMPLE.com"}),
        ),
        ("unknown", serde_json::json!({"phone": "139 0000 0000"})),
    ];
    for (caller, good, rep) in callers {
        for (which, customer) in &customers {
            for token in [Token::Missing, Token::Bad, Token::Good(good)] {
                let context = format!("{caller} / {which} customer / {token:?}");
                let mut req = serde_json::json!({ "customer": customer });
                if let Some(rep) = rep {
                    req["rep"] = rep.into();
                }
                let (status, body, _) = call(&api.router, "POST", "/check", token, Some(req)).await;
                if !matches!(token, Token::Good(_)) {
                    assert_eq!(status, StatusCode::UNAUTHORIZED, "{context}");
                    assert_leaks_nothing(&body, "", &context);
                    continue;
                }
                assert_eq!(status, StatusCode::OK, "{context}: {body}");
                let (decision, full) = match (caller, *which) {
                    ("rep", "own") => ("allowed", true),
                    ("rep", "other team's") => ("protected", false),
                    ("rep", _) => ("allowed", false),
                    // r-zhao and C-EAST's owner r-li are both in the manager's team.
                    ("manager", "own") => ("protected", true),
                    ("manager", "other team's") => ("protected", false),
                    ("manager", _) => ("allowed", false),
                    ("admin", "unknown") => ("allowed", true),
                    ("admin", _) => ("protected", true),
                    _ => unreachable!(),
                };
                assert_eq!(body["decision"], decision, "{context}: {body}");
                if full {
                    assert_eq!(body["visibility"], "full", "{context}");
                    assert!(body["reason"].as_str().unwrap().len() > 10);
                } else {
                    assert_eq!(body["visibility"], "limited", "{context}");
                    assert_leaks_nothing(&body, "", &context);
                }
            }
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn acting_for_someone_out_of_scope_is_forbidden_and_says_nothing() {
    let api = api().await;
    let c = serde_json::json!({"id": "C-WEST"});
    for (token, rep, want) in [
        (REP_TOKEN, "r-wang", StatusCode::FORBIDDEN),
        (REP_TOKEN, "r-zhao", StatusCode::FORBIDDEN),
        (MANAGER_TOKEN, "r-wang", StatusCode::FORBIDDEN),
        (MANAGER_TOKEN, "r-ghost", StatusCode::FORBIDDEN),
        (ADMIN_TOKEN, "r-wang", StatusCode::OK),
        (ADMIN_TOKEN, "r-ghost", StatusCode::OK),
    ] {
        let (status, body, _) = call(
            &api.router,
            "POST",
            "/check",
            Token::Good(token),
            Some(serde_json::json!({"rep": rep, "customer": c})),
        )
        .await;
        assert_eq!(status, want, "{token} for {rep}: {body}");
        if want == StatusCode::FORBIDDEN {
            assert_eq!(body["error"], "forbidden");
            assert_leaks_nothing(&body, "", rep);
            assert!(!body.to_string().contains(rep));
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn bad_requests_say_what_to_fix() {
    let api = api().await;
    let admin = Token::Good(ADMIN_TOKEN);
    for (body, needle) in [
        (
            serde_json::json!({"customer": {"id": "C-EAST"}}),
            "name the rep",
        ),
        (
            serde_json::json!({"rep": "r-li", "customer": {}}),
            "at least one of",
        ),
        (
            serde_json::json!({"rep": "r-li", "customer": {"phone": "12"}}),
            "phone",
        ),
        (
            serde_json::json!({"rep": "r-li", "customer": {"fax": "1"}}),
            "unknown field",
        ),
    ] {
        let (status, res, _) = call(&api.router, "POST", "/check", admin, Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{res}");
        assert!(res["message"].as_str().unwrap().contains(needle), "{res}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn answers_follow_events_as_they_arrive() {
    let api = api().await;
    let manager = Token::Good(MANAGER_TOKEN);
    let (_, before, _) = call(&api.router, "GET", "/customers/C-WEST", manager, None).await;
    assert_eq!(before["visibility"], "limited");
    // The CRM moves C-WEST to r-zhao (east-1): the east-1 manager now sees it in full.
    feed(
        &api.events,
        r#"{"event_id":"t1","kind":"transfer","occurred_at":"2026-11-02T11:00:00+08:00","customer":{"id":"C-WEST"},"rep":{"id":"r-zhao"},"from_rep":{"id":"r-wang"},"source":"crm"}"#,
    )
    .await;
    let (_, after, _) = call(&api.router, "GET", "/customers/C-WEST", manager, None).await;
    assert_eq!(after["visibility"], "full", "{after}");
    assert_eq!(after["owner"]["rep"]["id"], "r-zhao");
    assert_eq!(after["as_of"], "2026-11-02T11:00:00+08:00");
    // And r-li's check now names the new owner's protection.
    let (_, check, _) = call(
        &api.router,
        "POST",
        "/check",
        Token::Good(REP_TOKEN),
        Some(serde_json::json!({"customer": {"id": "C-WEST"}})),
    )
    .await;
    assert_eq!(check["decision"], "protected");
}

#[tokio::test(flavor = "current_thread")]
async fn health_readiness_and_metrics_need_no_token() {
    let api = api().await;
    let (s, b, _) = call(&api.router, "GET", "/healthz", Token::Missing, None).await;
    assert_eq!((s, b["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (s, b, _) = call(&api.router, "GET", "/readyz", Token::Missing, None).await;
    assert_eq!((s, b["status"].as_str()), (StatusCode::OK, Some("ready")));
    let (s, _, _) = call(&api.router, "GET", "/nowhere", Token::Missing, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let res = api
        .router
        .clone()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let text = String::from_utf8(
        axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    // The requests above were counted by route template and status.
    assert!(
        text.contains("leadguard_api_requests_total{route=\"/healthz\",status=\"200\"} 1"),
        "{text}"
    );
    assert!(text.contains("leadguard_api_requests_total{route=\"unmatched\",status=\"404\"} 1"));
}

#[tokio::test(flavor = "current_thread")]
async fn readiness_waits_for_the_host() {
    let handle = EngineHandle::new();
    let router = api::router(ApiState {
        engine: handle.clone(),
        tokens: Arc::new(Tokens::none()),
        metrics: Metrics::new(),
    });
    let (s, b, _) = call(&router, "GET", "/readyz", Token::Missing, None).await;
    assert_eq!(
        (s, b["status"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("starting"))
    );
    // Without --api-tokens nobody gets into the customer routes.
    let (s, _, _) = call(
        &router,
        "GET",
        "/customers/C1",
        Token::Good(ADMIN_TOKEN),
        None,
    )
    .await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "no tokens configured: nobody gets in"
    );
}

/// (method, path) pairs `docs/openapi.yaml` documents.
fn documented_routes() -> Vec<(String, String)> {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.yaml"))
            .expect("docs/openapi.yaml");
    let docs = yaml_rust2::YamlLoader::load_from_str(&text).expect("valid YAML");
    let paths = docs[0]["paths"].as_hash().expect("paths");
    let mut routes = Vec::new();
    for (path, ops) in paths {
        for (method, _) in ops.as_hash().expect("operations") {
            let method = method.as_str().expect("method");
            if ["get", "put", "post", "delete", "patch", "head", "options"].contains(&method) {
                routes.push((method.to_string(), path.as_str().expect("path").to_string()));
            }
        }
    }
    routes.sort();
    routes
}

#[tokio::test(flavor = "current_thread")]
async fn the_openapi_document_matches_the_router() {
    let mut served: Vec<(String, String)> = api::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    served.sort();
    assert_eq!(
        documented_routes(),
        served,
        "docs/openapi.yaml vs api::ROUTES"
    );
    // And the router really serves each of them (ROUTES is what the router is built from;
    // this catches a route the router would not match).
    let api = api().await;
    for (method, path) in &served {
        let uri = path.replace("{id}", "C-EAST");
        let body = (method == "post").then(|| serde_json::json!({"customer": {"id": "C-EAST"}}));
        let (status, res, _) = call(
            &api.router,
            &method.to_uppercase(),
            &uri,
            Token::Good(ADMIN_TOKEN),
            body,
        )
        .await;
        assert!(
            status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {status} {res}"
        );
    }
}
