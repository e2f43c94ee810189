//! Alert notifications against a local HTTP server standing in for WeCom, DingTalk, Feishu and
//! Slack: what each platform receives, field by field (mentions, signatures recomputed here),
//! retries, giving up, `Retry-After`, the per-recipient limit, the queue that never blocks, and
//! retractions.
//!
//! Nothing here waits on the clock to decide an outcome: requests are awaited on the recorded
//! channel (with a generous limit only so that a bug cannot hang the suite), and counters are read
//! after the notifier has drained.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hmac::{KeyInit, Mac};
use leadguard::config::Roster;
use leadguard::notify::{Notifier, NotifierHandle, NotifyConfig, Platform, Submitted};
use leadguard::output::{Output, OutputType};
use leadguard::time::Timestamp;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

// ------------------------------------------------------------------ the stand-in platforms

/// One request the server received.
#[derive(Debug, Clone)]
struct Recorded {
    path: String,
    /// The raw query string (percent-encoded as sent).
    raw_query: String,
    query: BTreeMap<String, String>,
    content_type: String,
    body: Value,
}

/// A scripted answer.
#[derive(Debug, Clone)]
struct Reply {
    status: u16,
    retry_after: Option<&'static str>,
    body: String,
}

impl Reply {
    fn new(status: u16, body: &str) -> Reply {
        Reply {
            status,
            retry_after: None,
            body: body.to_string(),
        }
    }
}

/// What each platform answers when it accepts a message.
fn accepted(path: &str) -> Reply {
    if path.contains("/slack") {
        Reply::new(200, "ok")
    } else if path.contains("/feishu") {
        Reply::new(200, r#"{"code":0,"msg":"success","data":{}}"#)
    } else {
        Reply::new(200, r#"{"errcode":0,"errmsg":"ok"}"#)
    }
}

struct Server {
    /// Path → answers to give first, in order; afterwards the platform accepts.
    script: Mutex<HashMap<String, VecDeque<Reply>>>,
    /// Path → the answer given every time (a platform that is down for good).
    always: Mutex<HashMap<String, Reply>>,
    /// Requests to paths starting with `/stuck` wait until this turns true.
    gate: watch::Receiver<bool>,
    log: mpsc::UnboundedSender<Recorded>,
}

async fn handle(
    State(s): State<Arc<Server>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let raw_query = uri.query().unwrap_or("").to_string();
    let parsed = reqwest::Url::parse(&format!("http://x{uri}")).expect("uri");
    let query = parsed.query_pairs().into_owned().collect();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let _ = s.log.send(Recorded {
        path: path.clone(),
        raw_query,
        query,
        content_type,
        body,
    });
    if path.starts_with("/stuck") {
        let mut gate = s.gate.clone();
        let _ = gate.wait_for(|open| *open).await;
    }
    let reply = s
        .always
        .lock()
        .unwrap()
        .get(&path)
        .cloned()
        .or_else(|| {
            s.script
                .lock()
                .unwrap()
                .get_mut(&path)
                .and_then(VecDeque::pop_front)
        })
        .unwrap_or_else(|| accepted(&path));
    let mut resp = (StatusCode::from_u16(reply.status).unwrap(), reply.body).into_response();
    if let Some(after) = reply.retry_after {
        resp.headers_mut()
            .insert("retry-after", after.parse().unwrap());
    }
    resp
}

struct Platforms {
    base: String,
    server: Arc<Server>,
    requests: mpsc::UnboundedReceiver<Recorded>,
    open_gate: watch::Sender<bool>,
}

impl Platforms {
    async fn start() -> Platforms {
        let (log, requests) = mpsc::unbounded_channel();
        let (open_gate, gate) = watch::channel(false);
        let server = Arc::new(Server {
            script: Mutex::new(HashMap::new()),
            always: Mutex::new(HashMap::new()),
            gate,
            log,
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(server.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("test server");
        });
        Platforms {
            base,
            server,
            requests,
            open_gate,
        }
    }

    fn script(&self, path: &str, replies: Vec<Reply>) {
        self.server
            .script
            .lock()
            .unwrap()
            .insert(path.to_string(), replies.into());
    }

    fn always(&self, path: &str, reply: Reply) {
        self.server
            .always
            .lock()
            .unwrap()
            .insert(path.to_string(), reply);
    }

    /// The next request; the limit only keeps a broken notifier from hanging the suite.
    async fn next(&mut self) -> Recorded {
        tokio::time::timeout(Duration::from_secs(60), self.requests.recv())
            .await
            .expect("a request within 60 s")
            .expect("server running")
    }

    /// Requests received and not yet taken.
    fn rest(&mut self) -> Vec<Recorded> {
        let mut v = Vec::new();
        while let Ok(r) = self.requests.try_recv() {
            v.push(r);
        }
        v
    }
}

// ------------------------------------------------------------------ inputs

const ROSTER: &str = "reps:
  - {id: r-li, name: 李伟, team: east-1, manager: m-east, contacts: {wecom: liwei, dingtalk: ding-li, feishu: ou_li, slack: U0LI}}
  - {id: r-wang, name: 王芳, team: east-2, manager: m-wang, contacts: {wecom: wangfang, dingtalk: '13800138000', feishu: ou_wang, slack: U0WANG}}
  - {id: m-east, name: 赵敏, team: east-1, contacts: {wecom: zhaomin, dingtalk: ding-zhao, feishu: ou_zhao, slack: U0ZHAO}}
  - {id: r-zhao, team: north-1, manager: m-north, contacts: {wecom: zhaolei}}
  - {id: m-north, contacts: {wecom: mnorth}}
";

fn roster() -> Roster {
    Roster::parse(ROSTER, Path::new("roster.yaml")).expect("test roster")
}

fn config(yaml: &str) -> NotifyConfig {
    NotifyConfig::parse(yaml, Path::new("notifications.yaml"), &|_| None).unwrap_or_else(|e| {
        panic!(
            "{}",
            e.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

fn rep(id: &str, team: &str) -> Value {
    json!({"id": id, "team": team, "role": "sales"})
}

/// A collision alert as the engine writes it.
fn alert(
    id: &str,
    customer: &str,
    owner: Option<Value>,
    intruder: Value,
    others: &[Value],
) -> Output {
    let mut reps: Vec<Value> = others.to_vec();
    reps.push(intruder.clone());
    if let Some(o) = &owner {
        reps.push(o.clone());
    }
    reps.sort_by_key(|r| r["id"].as_str().unwrap().to_string());
    reps.dedup();
    let mut data = json!({
        "rule": "protected-contact", "rule_type": "protected_contact", "severity": "high",
        "customer": {"id": customer, "provisional": false},
        "reps": reps, "intruder": intruder,
        "evidence": [
            {"event_id": "cc-1", "source": "callcenter", "kind": "call", "direction": "outbound", "rep": "r-wang", "occurred_at": "2026-11-02T10:00:00+08:00"},
            {"event_id": "crm-1", "source": "crm", "kind": "meeting", "direction": "outbound", "rep": "r-li", "occurred_at": "2026-11-02T09:00:00+08:00"}
        ],
        "window": {"from": "2026-11-02T09:00:00+08:00", "to": "2026-11-02T10:00:00+08:00"},
        "reason": format!("r-wang (east-2) called customer {customer}, owned by r-li (east-1)"),
    });
    if let Some(o) = owner {
        data["owner"] = json!({"rep": o, "since": "2026-11-02T09:00:00+08:00", "protected_until": "2026-11-12T09:00:00+08:00", "via": "crm", "origin_event": "crm-1"});
    }
    Output::from_parts(
        id.to_string(),
        OutputType::Collision,
        Arc::from(customer),
        Timestamp::parse_rfc3339("2026-11-02T10:00:00+08:00").unwrap(),
        data.to_string(),
        Some((Arc::from("protected-contact"), "high")),
    )
}

fn standard_alert(id: &str) -> Output {
    alert(
        id,
        "C1",
        Some(rep("r-li", "east-1")),
        rep("r-wang", "east-2"),
        &[],
    )
}

fn withdrawal(of: &str) -> Output {
    Output::from_parts(
        format!("w-{of}"),
        OutputType::Withdrawn,
        Arc::from("C1"),
        Timestamp::parse_rfc3339("2026-11-02T10:05:00+08:00").unwrap(),
        json!({"withdrawn_id": of, "withdrawn_type": "leadguard.collision.detected", "reason": "a late event changed the facts"}).to_string(),
        None,
    )
}

fn hmac_b64(key: &[u8], msg: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(msg);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Stops the notifier and waits for its deliveries to finish.
async fn drain(handle: NotifierHandle, task: tokio::task::JoinHandle<()>) {
    drop(handle);
    tokio::time::timeout(Duration::from_secs(120), task)
        .await
        .expect("the notifier drains")
        .expect("the delivery task did not panic");
}

// ------------------------------------------------------------------ the tests

#[tokio::test]
async fn every_platform_gets_its_own_format_with_mentions_and_signatures() {
    let mut p = Platforms::start().await;
    let cfg = config(&format!(
        "channels:
  - {{name: wecom-east, platform: wecom, url: '{b}/wecom?key=k1'}}
  - {{name: ding-east, platform: dingtalk, url: '{b}/dingtalk?access_token=t1', secret: SECding}}
  - {{name: feishu-east, platform: feishu, url: '{b}/feishu/hook', secret: fs-secret}}
  - {{name: slack-east, platform: slack, url: '{b}/slack/T/B/X'}}
",
        b = p.base
    ));
    let (handle, task) = Notifier::start(cfg, &roster());
    let stats = handle.stats();
    let before = now_ms();
    assert_eq!(handle.submit(&standard_alert("a1")), Submitted::Queued);
    let mut got: HashMap<String, Recorded> = HashMap::new();
    for _ in 0..4 {
        let r = p.next().await;
        got.insert(r.path.clone(), r);
    }
    drain(handle, task).await;
    let after = now_ms();
    assert!(p.rest().is_empty(), "one message per channel");

    // WeCom: markdown with <@userid> mentions of owner, intruder and the owner's manager.
    let w = &got["/wecom"];
    assert_eq!(w.query["key"], "k1");
    assert_eq!(w.content_type, "application/json");
    assert_eq!(w.body["msgtype"], "markdown");
    let content = w.body["markdown"]["content"].as_str().unwrap();
    for expected in [
        "<@liwei> 李伟 (r-li)",
        "<@wangfang> 王芳 (r-wang)",
        "<@zhaomin> 赵敏 (m-east)",
        "客户 Customer**: C1",
        "protected-contact",
        "high",
        "r-wang (east-2) called customer C1, owned by r-li (east-1)",
        "2 条事件 events",
    ] {
        assert!(
            content.contains(expected),
            "WeCom lacks {expected:?}:\n{content}"
        );
    }
    assert_eq!(content.matches("<@").count(), 3, "{content}");

    // DingTalk: signed URL; markdown + at lists; mobiles apart from user ids.
    let d = &got["/dingtalk"];
    assert_eq!(d.query["access_token"], "t1");
    let ts: i64 = d.query["timestamp"].parse().expect("timestamp in ms");
    assert!(before <= ts && ts <= after, "signed at send time");
    let expected_sign = hmac_b64(b"SECding", format!("{ts}\nSECding").as_bytes());
    assert_eq!(d.query["sign"], expected_sign);
    let encoded =
        reqwest::Url::parse_with_params("http://x/", &[("sign", &expected_sign)]).unwrap();
    assert!(
        d.raw_query.contains(encoded.query().unwrap()),
        "sign is URL-encoded: {}",
        d.raw_query
    );
    assert_eq!(d.body["msgtype"], "markdown");
    assert!(d.body["markdown"]["title"].as_str().unwrap().contains("C1"));
    assert_eq!(d.body["at"]["atUserIds"], json!(["ding-li", "ding-zhao"]));
    assert_eq!(d.body["at"]["atMobiles"], json!(["13800138000"]));
    assert_eq!(d.body["at"]["isAtAll"], false);
    let text = d.body["markdown"]["text"].as_str().unwrap();
    for expected in [
        "@ding-li",
        "@13800138000",
        "@ding-zhao",
        "protected-contact",
    ] {
        assert!(
            text.contains(expected),
            "DingTalk lacks {expected:?}:\n{text}"
        );
    }

    // Feishu: interactive card, signature in the body.
    let f = &got["/feishu/hook"];
    let ts = f.body["timestamp"].as_str().expect("timestamp string");
    let secs: i64 = ts.parse().unwrap();
    assert!(before / 1000 <= secs && secs <= after / 1000 + 1);
    assert_eq!(
        f.body["sign"].as_str().unwrap(),
        hmac_b64(format!("{ts}\nfs-secret").as_bytes(), b"")
    );
    assert_eq!(f.body["msg_type"], "interactive");
    assert_eq!(f.body["card"]["header"]["template"], "orange");
    assert!(f.body["card"]["header"]["title"]["content"]
        .as_str()
        .unwrap()
        .contains("C1"));
    let card = f.body["card"]["elements"].to_string();
    for expected in [
        "<at id=ou_li></at>",
        "<at id=ou_wang></at>",
        "<at id=ou_zhao></at>",
    ] {
        assert!(card.contains(expected), "Feishu lacks {expected:?}: {card}");
    }

    // Slack: text + blocks, <@U…> mentions.
    let s = &got["/slack/T/B/X"];
    let text = s.body["text"].as_str().unwrap();
    for expected in ["<@U0LI>", "<@U0WANG>", "<@U0ZHAO>", "C1"] {
        assert!(
            text.contains(expected),
            "Slack text lacks {expected:?}: {text}"
        );
    }
    let blocks = s.body["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert!(blocks.iter().any(|b| b["type"] == "section"
        && b["text"]["type"] == "mrkdwn"
        && b["text"]["text"].as_str().unwrap().contains("<@U0WANG>")));

    let snap = stats.snapshot();
    for platform in Platform::ALL {
        let s = snap.get(platform);
        assert_eq!(
            (s.delivered, s.failed, s.retried),
            (1, 0, 0),
            "{platform:?}"
        );
    }
}

#[tokio::test]
async fn failures_are_retried_until_the_platform_accepts() {
    let mut p = Platforms::start().await;
    p.script(
        "/wecom",
        vec![
            Reply::new(500, "upstream error"),
            Reply::new(200, r#"{"errcode":45009,"errmsg":"api freq out of limit"}"#),
        ],
    );
    let cfg = config(&format!(
        "channels:
  - {{name: w, platform: wecom, url: '{}/wecom'}}
delivery: {{max_attempts: 4, initial_backoff: 10ms, max_backoff: 40ms}}
",
        p.base
    ));
    let (handle, task) = Notifier::start(cfg, &roster());
    let stats = handle.stats();
    handle.submit(&standard_alert("a1"));
    let first = p.next().await;
    let second = p.next().await;
    let third = p.next().await;
    drain(handle, task).await;
    assert!(p.rest().is_empty());
    assert_eq!(first.body, second.body);
    assert_eq!(second.body, third.body);
    let s = stats.snapshot().get(Platform::WeCom);
    assert_eq!((s.delivered, s.retried, s.failed), (1, 2, 0));
}

#[tokio::test]
async fn delivery_gives_up_after_max_attempts_and_never_retries_a_refusal() {
    let mut p = Platforms::start().await;
    p.always(
        "/feishu/down",
        Reply::new(200, r#"{"code":19021,"msg":"sign match fail or timestamp is not within one hour from current time"}"#),
    );
    p.always("/slack/gone", Reply::new(404, "no_service"));
    let cfg = config(&format!(
        "channels:
  - {{name: f, platform: feishu, url: '{b}/feishu/down'}}
  - {{name: s, platform: slack, url: '{b}/slack/gone'}}
delivery: {{max_attempts: 3, initial_backoff: 10ms, max_backoff: 20ms}}
",
        b = p.base
    ));
    let (handle, task) = Notifier::start(cfg, &roster());
    let stats = handle.stats();
    handle.submit(&standard_alert("a1"));
    drain(handle, task).await;
    let paths: Vec<String> = p.rest().into_iter().map(|r| r.path).collect();
    assert_eq!(paths.iter().filter(|p| *p == "/feishu/down").count(), 3);
    assert_eq!(paths.iter().filter(|p| *p == "/slack/gone").count(), 1);
    let snap = stats.snapshot();
    let f = snap.get(Platform::Feishu);
    assert_eq!((f.delivered, f.retried, f.failed), (0, 2, 1));
    let s = snap.get(Platform::Slack);
    assert_eq!((s.delivered, s.retried, s.failed), (0, 0, 1));
}

#[tokio::test]
async fn a_429_is_retried_after_the_platforms_retry_after() {
    let mut p = Platforms::start().await;
    p.script(
        "/dingtalk",
        vec![Reply {
            status: 429,
            retry_after: Some("1"),
            body: r#"{"errcode":130101,"errmsg":"send too fast"}"#.into(),
        }],
    );
    let cfg = config(&format!(
        "channels:
  - {{name: d, platform: dingtalk, url: '{}/dingtalk?access_token=t', secret: SECx}}
delivery: {{max_attempts: 3, initial_backoff: 10ms, max_backoff: 20ms}}
",
        p.base
    ));
    let (handle, task) = Notifier::start(cfg, &roster());
    let stats = handle.stats();
    handle.submit(&standard_alert("a1"));
    let first = p.next().await;
    let second = p.next().await;
    drain(handle, task).await;
    // Each attempt is signed afresh.
    let t1: i64 = first.query["timestamp"].parse().unwrap();
    let t2: i64 = second.query["timestamp"].parse().unwrap();
    assert!(t2 > t1, "re-signed: {t1} then {t2}");
    assert_eq!(
        second.query["sign"],
        hmac_b64(b"SECx", format!("{t2}\nSECx").as_bytes())
    );
    let s = stats.snapshot().get(Platform::DingTalk);
    // `throttled` counts the retries that waited for Retry-After (1 s here, not the 10 ms
    // backoff), which is how this test knows the header was honoured without timing it.
    assert_eq!(
        (s.delivered, s.retried, s.throttled, s.failed),
        (1, 1, 1, 0)
    );
}

#[tokio::test]
async fn each_person_is_mentioned_at_most_the_limit_and_an_empty_message_is_not_sent() {
    let mut p = Platforms::start().await;
    let cfg = config(&format!(
        "channels:
  - {{name: w, platform: wecom, url: '{}/wecom'}}
delivery: {{concurrency: 1, per_recipient_limit: {{messages: 1, per: 1h}}}}
",
        p.base
    ));
    let (handle, task) = Notifier::start(cfg, &roster());
    let stats = handle.stats();
    // A: r-li (owner), r-wang (intruder), m-east (r-li's manager): all told.
    handle.submit(&standard_alert("a1"));
    // B: the same three again: all over the limit, so nothing is sent.
    handle.submit(&alert(
        "a2",
        "C2",
        Some(rep("r-li", "east-1")),
        rep("r-wang", "east-2"),
        &[],
    ));
    // C: unowned; r-zhao intrudes with r-li involved: r-li is left out, r-zhao and his manager
    // m-north are told.
    handle.submit(&alert(
        "a3",
        "C3",
        None,
        rep("r-zhao", "north-1"),
        &[rep("r-li", "east-1")],
    ));
    let a = p.next().await;
    let c = p.next().await;
    drain(handle, task).await;
    assert!(p.rest().is_empty(), "B is not sent");
    let content = |r: &Recorded| r.body["markdown"]["content"].as_str().unwrap().to_string();
    assert!(content(&a).contains("C1"));
    let c_text = content(&c);
    assert!(c_text.contains("C3"), "{c_text}");
    assert!(
        c_text.contains("<@zhaolei>") && c_text.contains("<@mnorth>"),
        "{c_text}"
    );
    assert!(
        !c_text.contains("<@liwei>"),
        "r-li is over the limit: {c_text}"
    );
    let s = stats.snapshot().get(Platform::WeCom);
    assert_eq!((s.delivered, s.rate_limited), (2, 4));
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_without_waiting() {
    let mut p = Platforms::start().await;
    let cfg = config(&format!(
        "channels:
  - {{name: w, platform: wecom, url: '{b}/stuck/wecom'}}
  - {{name: s, platform: slack, url: '{b}/stuck/slack'}}
delivery: {{queue: 2, concurrency: 1}}
",
        b = p.base
    ));
    let (handle, task) = Notifier::start(cfg, &roster());
    let stats = handle.stats();
    // The first delivery blocks at the platform until the gate opens; submit must keep
    // returning regardless (it is synchronous: if it waited, this loop would never end).
    let mut outcomes = Vec::new();
    for i in 0..50 {
        outcomes.push(handle.submit(&standard_alert(&format!("a{i}"))));
    }
    let queued = outcomes.iter().filter(|o| **o == Submitted::Queued).count() as u64;
    let dropped = outcomes
        .iter()
        .filter(|o| **o == Submitted::Dropped)
        .count() as u64;
    assert_eq!(queued + dropped, 50, "{outcomes:?}");
    assert!(
        (2..=4).contains(&queued),
        "a queue of 2 (+ what the task took): {queued}"
    );
    let snap = stats.snapshot();
    assert_eq!(snap.get(Platform::WeCom).dropped_queue_full, dropped);
    assert_eq!(snap.get(Platform::Slack).dropped_queue_full, dropped);
    // The first request reached the platform and hangs there; let everything through.
    p.next().await;
    p.open_gate.send(true).unwrap();
    drain(handle, task).await;
    let snap = stats.snapshot();
    assert_eq!(snap.get(Platform::WeCom).delivered, queued);
    assert_eq!(snap.get(Platform::Slack).delivered, queued);
    assert_eq!(p.rest().len() as u64, 2 * queued - 1);
}

#[tokio::test]
async fn a_withdrawn_alert_is_retracted_where_it_was_sent_and_only_there() {
    let mut p = Platforms::start().await;
    let cfg = config(&format!(
        "channels:
  - {{name: east, platform: wecom, url: '{b}/wecom', teams: [east-1, east-2]}}
  - {{name: north, platform: slack, url: '{b}/slack', teams: [north-1]}}
  - {{name: critical-only, platform: feishu, url: '{b}/feishu', min_severity: critical}}
",
        b = p.base
    ));
    let (handle, task) = Notifier::start(cfg, &roster());
    let stats = handle.stats();
    assert_eq!(handle.submit(&standard_alert("a1")), Submitted::Queued);
    let sent = p.next().await;
    assert_eq!(sent.path, "/wecom");
    // The delivery may not have taken the platform's answer in yet (`Stopped`: it announces the
    // retraction itself when it does) or may have (`Queued`); either way one retraction goes out.
    let outcome = handle.submit(&withdrawal("a1"));
    assert!(
        matches!(outcome, Submitted::Queued | Submitted::Stopped),
        "{outcome:?}"
    );
    let retraction = p.next().await;
    assert_eq!(retraction.path, "/wecom");
    let content = retraction.body["markdown"]["content"].as_str().unwrap();
    assert!(
        content.contains("撤回 Withdrawn") && content.contains("C1"),
        "{content}"
    );
    assert!(
        content.contains("a late event changed the facts"),
        "{content}"
    );
    assert!(
        !content.contains("<@"),
        "a retraction pings nobody: {content}"
    );
    assert!(content.contains("a1"));

    // Not notified: other output types, withdrawals of alerts never sent, redelivered withdrawals.
    let alert = standard_alert("c1");
    let claim = Output::from_parts(
        alert.id().to_string(),
        OutputType::OwnershipClaimed,
        alert.subject().clone(),
        alert.time(),
        alert.data().to_string(),
        None,
    );
    assert_eq!(handle.submit(&claim), Submitted::Ignored);
    assert_eq!(handle.submit(&withdrawal("never-sent")), Submitted::Ignored);
    assert_eq!(handle.submit(&withdrawal("a1")), Submitted::Ignored);
    drain(handle, task).await;
    assert!(
        p.rest().is_empty(),
        "nothing to slack (team) or feishu (severity)"
    );
    let snap = stats.snapshot();
    assert_eq!(snap.get(Platform::WeCom).delivered, 2);
    assert_eq!(snap.get(Platform::Slack).delivered, 0);
    assert_eq!(snap.get(Platform::Feishu).delivered, 0);
}

#[tokio::test]
async fn an_alert_withdrawn_while_retrying_is_not_sent_again() {
    let mut p = Platforms::start().await;
    p.always("/wecom", Reply::new(503, "busy"));
    let cfg = config(&format!(
        "channels:
  - {{name: w, platform: wecom, url: '{}/wecom'}}
delivery: {{max_attempts: 100, initial_backoff: 20ms, max_backoff: 20ms}}
",
        p.base
    ));
    let (handle, task) = Notifier::start(cfg, &roster());
    let stats = handle.stats();
    handle.submit(&standard_alert("a1"));
    p.next().await;
    // Never delivered, so there is nothing to retract; the retries stop.
    assert_eq!(handle.submit(&withdrawal("a1")), Submitted::Stopped);
    drain(handle, task).await;
    let s = stats.snapshot().get(Platform::WeCom);
    // Given up by exhausting the attempts it would count as failed; it stopped instead.
    assert_eq!((s.delivered, s.failed, s.withdrawn_before_send), (0, 0, 1));
}

#[tokio::test]
async fn an_alert_produced_again_is_not_sent_twice_unless_it_was_withdrawn() {
    let mut p = Platforms::start().await;
    let cfg = config(&format!(
        "channels:\n  - {{name: w, platform: wecom, url: '{}/wecom'}}\n",
        p.base
    ));
    let (handle, task) = Notifier::start(cfg, &roster());
    let stats = handle.stats();
    assert_eq!(handle.submit(&standard_alert("a1")), Submitted::Queued);
    // The same alert (the same id) handed over again.
    assert_eq!(handle.submit(&standard_alert("a1")), Submitted::Repeated);
    assert_eq!(p.next().await.path, "/wecom");
    let outcome = handle.submit(&withdrawal("a1"));
    assert!(
        matches!(outcome, Submitted::Queued | Submitted::Stopped),
        "{outcome:?}"
    );
    let retraction = p.next().await;
    let content = retraction.body["markdown"]["content"].as_str().unwrap();
    assert!(content.contains("撤回 Withdrawn"), "{content}");
    // Produced again after its withdrawal, the alert stands again: it is sent again.
    assert_eq!(handle.submit(&standard_alert("a1")), Submitted::Queued);
    assert_eq!(p.next().await.path, "/wecom");
    drain(handle, task).await;
    assert!(p.rest().is_empty());
    let s = stats.snapshot().get(Platform::WeCom);
    assert_eq!((s.delivered, s.repeated), (3, 1));
}
