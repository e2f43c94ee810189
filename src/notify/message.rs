//! From an alert to a platform's request body. Pure: no IO, and the signing time is a parameter.
//!
//! 1. [`Alert::parse`] reads the collision output's `data`.
//! 2. [`recipients`] picks the people to tell: every rep named in the alert, the owner, and the
//!    owner's manager (the intruder's manager when nobody owns the customer).
//! 3. [`alert_body`] / [`retraction_body`] write the platform's own message format, with the
//!    recipients' @-mentions; [`sign`] adds DingTalk's and Feishu's signatures.

use super::config::{Channel, Platform};
use crate::config::{Roster, RosterRep};
use crate::output::Output;
use base64::Engine as _;
use hmac::{KeyInit, Mac};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

/// A rep as the alert names them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AlertRep {
    pub id: String,
    #[serde(default)]
    pub team: Option<String>,
}

#[derive(Deserialize)]
struct AlertCustomer {
    id: String,
}

#[derive(Deserialize)]
struct AlertOwner {
    rep: AlertRep,
}

#[derive(Deserialize)]
struct AlertData {
    rule: String,
    severity: String,
    customer: AlertCustomer,
    #[serde(default)]
    owner: Option<AlertOwner>,
    reps: Vec<AlertRep>,
    #[serde(default)]
    intruder: Option<AlertRep>,
    #[serde(default)]
    evidence: Vec<serde::de::IgnoredAny>,
    reason: String,
}

/// What a collision alert says, as far as a message needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// The output id (also the id a withdrawal names).
    pub id: String,
    pub customer: String,
    pub rule: String,
    pub severity: crate::config::Severity,
    pub owner: Option<AlertRep>,
    pub intruder: Option<AlertRep>,
    pub reps: Vec<AlertRep>,
    pub reason: String,
    pub evidence: usize,
}

impl Alert {
    /// Reads a `leadguard.collision.detected` output. Other outputs, or data the engine would
    /// never write, give `None`.
    pub fn parse(output: &Output) -> Option<Alert> {
        if output.ty() != crate::output::OutputType::Collision {
            return None;
        }
        let d: AlertData = serde_json::from_str(output.data()).ok()?;
        let severity = crate::config::Severity::CHOICES
            .iter()
            .find(|(name, _)| *name == d.severity)
            .map(|(_, s)| *s)?;
        Some(Alert {
            id: output.id().to_string(),
            customer: d.customer.id,
            rule: d.rule,
            severity,
            owner: d.owner.map(|o| o.rep),
            intruder: d.intruder,
            reps: d.reps,
            reason: d.reason,
            evidence: d.evidence.len(),
        })
    }

    /// Whether `channel` takes this alert (severity, and teams when the channel lists some).
    pub fn is_for(&self, channel: &Channel) -> bool {
        if self.severity < channel.min_severity {
            return false;
        }
        let Some(teams) = &channel.teams else {
            return true;
        };
        self.reps
            .iter()
            .chain(self.owner.iter())
            .filter_map(|r| r.team.as_deref())
            .any(|t| teams.iter().any(|x| x == t))
    }
}

/// Why someone is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Owner,
    Intruder,
    /// Another rep named in the alert.
    Involved,
    Manager,
}

impl Role {
    fn label(self) -> &'static str {
        match self {
            Role::Owner => "负责人 owner",
            Role::Intruder => "撞单人 intruder",
            Role::Involved => "相关 involved",
            Role::Manager => "主管 manager",
        }
    }
}

/// A person to tell, with their handles from the roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub id: String,
    pub name: Option<String>,
    pub role: Role,
    pub contacts: crate::config::roster::Contacts,
}

impl Recipient {
    /// The handle on `platform`, if the roster has one.
    pub fn handle(&self, platform: Platform) -> Option<&str> {
        let c = &self.contacts;
        match platform {
            Platform::WeCom => c.wecom.as_deref(),
            Platform::DingTalk => c.dingtalk.as_deref(),
            Platform::Feishu => c.feishu.as_deref(),
            Platform::Slack => c.slack.as_deref(),
        }
        .filter(|h| !h.is_empty())
    }

    /// `杨霞 (r0001)`, or the id alone.
    fn display(&self) -> String {
        match &self.name {
            Some(n) => format!("{n} ({})", self.id),
            None => self.id.clone(),
        }
    }
}

/// The roster by rep id.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    reps: HashMap<String, RosterRep>,
}

impl Directory {
    pub fn new(roster: &Roster) -> Directory {
        Directory {
            reps: roster
                .reps
                .iter()
                .map(|r| (r.id.clone(), r.clone()))
                .collect(),
        }
    }

    fn recipient(&self, id: &str, role: Role) -> Recipient {
        let rep = self.reps.get(id);
        Recipient {
            id: id.to_string(),
            name: rep.and_then(|r| r.name.clone()),
            role,
            contacts: rep.map(|r| r.contacts.clone()).unwrap_or_default(),
        }
    }

    fn manager_of(&self, id: &str) -> Option<&str> {
        self.reps
            .get(id)?
            .manager
            .as_deref()
            .filter(|m| !m.is_empty())
    }
}

/// Everyone to tell about `alert`, each once, in role order (owner, intruder, others, manager).
pub fn recipients(alert: &Alert, dir: &Directory) -> Vec<Recipient> {
    let mut out: Vec<Recipient> = Vec::new();
    let mut add = |id: &str, role: Role| {
        match out.iter_mut().find(|r| r.id == id) {
            // A rep who is both named and the owner is told once, as the owner.
            Some(existing) => existing.role = existing.role.min(role),
            None => out.push(dir.recipient(id, role)),
        }
    };
    if let Some(o) = &alert.owner {
        add(&o.id, Role::Owner);
    }
    if let Some(i) = &alert.intruder {
        add(&i.id, Role::Intruder);
    }
    for r in &alert.reps {
        add(&r.id, Role::Involved);
    }
    let boss_of = alert
        .owner
        .as_ref()
        .or(alert.intruder.as_ref())
        .and_then(|r| dir.manager_of(&r.id));
    if let Some(m) = boss_of {
        add(m, Role::Manager);
    }
    out.sort_by_key(|r| r.role);
    out
}

fn severity_zh(s: crate::config::Severity) -> &'static str {
    match s {
        crate::config::Severity::Low => "低",
        crate::config::Severity::Medium => "中",
        crate::config::Severity::High => "高",
        crate::config::Severity::Critical => "紧急",
    }
}

fn rep_line(r: Option<&AlertRep>, people: &[Recipient]) -> String {
    match r {
        None => "—".to_string(),
        Some(r) => {
            let who = people
                .iter()
                .find(|p| p.id == r.id)
                .map_or_else(|| r.id.clone(), Recipient::display);
            match &r.team {
                Some(t) => format!("{who} · {t}"),
                None => who,
            }
        }
    }
}

/// The facts of an alert as `label: value` lines, the same on every platform.
fn facts(alert: &Alert, people: &[Recipient]) -> Vec<(&'static str, String)> {
    vec![
        ("客户 Customer", alert.customer.clone()),
        ("负责人 Owner", rep_line(alert.owner.as_ref(), people)),
        ("撞单人 Intruder", rep_line(alert.intruder.as_ref(), people)),
        (
            "规则 Rule",
            format!(
                "{} · {} {}",
                alert.rule,
                severity_zh(alert.severity),
                alert.severity.as_str()
            ),
        ),
        ("原因 Reason", alert.reason.clone()),
        ("证据 Evidence", format!("{} 条事件 events", alert.evidence)),
    ]
}

fn title(alert: &Alert) -> String {
    format!(
        "撞单提醒 Collision alert: {} ({})",
        alert.customer,
        alert.severity.as_str()
    )
}

/// Slack's mrkdwn treats `&`, `<` and `>` as control characters.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The people line: each recipient with their role, @-mentioned where the roster has a handle.
fn people_line(people: &[Recipient], platform: Platform) -> String {
    people
        .iter()
        .map(|p| {
            let name = match platform {
                Platform::Slack => slack_escape(&p.display()),
                _ => p.display(),
            };
            let mention = p.handle(platform).map(|h| match platform {
                Platform::WeCom => format!("<@{h}>"),
                Platform::DingTalk => format!("@{h}"),
                Platform::Feishu => format!("<at id={h}></at>"),
                Platform::Slack => format!("<@{h}>"),
            });
            match mention {
                Some(m) => format!("{m} {name} · {}", p.role.label()),
                None => format!("{name} · {}", p.role.label()),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A DingTalk handle that is a mobile number goes in `atMobiles`, anything else is a userId.
fn is_mobile(handle: &str) -> bool {
    let digits = handle.strip_prefix('+').unwrap_or(handle);
    digits.len() >= 7 && digits.bytes().all(|b| b.is_ascii_digit() || b == b'-')
}

/// The request body announcing `alert` to `people` on `platform`.
pub fn alert_body(platform: Platform, alert: &Alert, people: &[Recipient]) -> Value {
    let facts = facts(alert, people);
    let people_text = people_line(people, platform);
    match platform {
        Platform::WeCom => {
            let color = if alert.severity >= crate::config::Severity::High {
                "warning"
            } else {
                "comment"
            };
            let mut content = format!("## <font color=\"{color}\">{}</font>\n", title(alert));
            for (label, value) in &facts {
                content.push_str(&format!("> **{label}**: {value}\n"));
            }
            content.push_str(&format!("\n**相关人员 People**: {people_text}"));
            json!({"msgtype": "markdown", "markdown": {"content": truncate_bytes(&content, 4000)}})
        }
        Platform::DingTalk => {
            let mut text = format!("### {}\n\n", title(alert));
            for (label, value) in &facts {
                text.push_str(&format!("- **{label}**: {value}\n"));
            }
            text.push_str(&format!("\n**相关人员 People**: {people_text}"));
            let (mobiles, ids): (Vec<&str>, Vec<&str>) = people
                .iter()
                .filter_map(|p| p.handle(Platform::DingTalk))
                .partition(|h| is_mobile(h));
            json!({
                "msgtype": "markdown",
                "markdown": {"title": title(alert), "text": text},
                "at": {"atUserIds": ids, "atMobiles": mobiles, "isAtAll": false},
            })
        }
        Platform::Feishu => {
            let template = match alert.severity {
                crate::config::Severity::Critical => "red",
                crate::config::Severity::High => "orange",
                crate::config::Severity::Medium => "yellow",
                crate::config::Severity::Low => "grey",
            };
            let body: String = facts
                .iter()
                .map(|(label, value)| format!("**{label}**: {value}"))
                .collect::<Vec<_>>()
                .join("\n");
            json!({
                "msg_type": "interactive",
                "card": {
                    "config": {"wide_screen_mode": true},
                    "header": {"template": template, "title": {"tag": "plain_text", "content": title(alert)}},
                    "elements": [
                        {"tag": "div", "text": {"tag": "lark_md", "content": body}},
                        {"tag": "div", "text": {"tag": "lark_md", "content": format!("**相关人员 People**: {people_text}")}},
                    ],
                },
            })
        }
        Platform::Slack => {
            let body: String = facts
                .iter()
                .map(|(label, value)| format!("*{label}*: {}", slack_escape(value)))
                .collect::<Vec<_>>()
                .join("\n");
            let mentions: Vec<String> = people
                .iter()
                .filter_map(|p| p.handle(Platform::Slack))
                .map(|h| format!("<@{h}>"))
                .collect();
            // `text` is what notifications and screen readers show; it carries the mentions too
            // so that people are notified whatever their client renders.
            let fallback = format!(
                "{} — {}: {} {}",
                title(alert),
                alert.rule,
                slack_escape(&alert.reason),
                mentions.join(" ")
            );
            json!({
                "text": fallback.trim_end(),
                "blocks": [
                    {"type": "header", "text": {"type": "plain_text", "text": title(alert)}},
                    {"type": "section", "text": {"type": "mrkdwn", "text": body}},
                    {"type": "section", "text": {"type": "mrkdwn", "text": format!("*相关人员 People*: {people_text}")}},
                    {"type": "context", "elements": [{"type": "mrkdwn", "text": format!("leadguard alert `{}`", alert.id)}]},
                ],
            })
        }
    }
}

/// What a retraction says about the alert it withdraws.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retraction {
    /// The withdrawn alert's id.
    pub alert_id: String,
    pub customer: String,
    pub rule: String,
    /// Why the engine withdrew it.
    pub reason: String,
}

/// A short message saying an alert no longer holds. It mentions nobody: a correction should not
/// ping people a second time.
pub fn retraction_body(platform: Platform, r: &Retraction) -> Value {
    let head = format!("撤回 Withdrawn: 撞单提醒 {} ({})", r.customer, r.rule);
    let line = format!("该提醒不再成立 This alert no longer holds: {}", r.reason);
    match platform {
        Platform::WeCom => {
            json!({"msgtype": "markdown", "markdown": {"content": format!("**{head}**\n> {line}\n> <font color=\"comment\">{}</font>", r.alert_id)}})
        }
        Platform::DingTalk => json!({
            "msgtype": "markdown",
            "markdown": {"title": head, "text": format!("### {head}\n\n{line}\n\n`{}`", r.alert_id)},
        }),
        Platform::Feishu => json!({
            "msg_type": "interactive",
            "card": {
                "config": {"wide_screen_mode": true},
                "header": {"template": "grey", "title": {"tag": "plain_text", "content": head}},
                "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": format!("{line}\n{}", r.alert_id)}}],
            },
        }),
        Platform::Slack => json!({
            "text": format!("{head} — {}", slack_escape(&line)),
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": format!("*{}*\n{}", slack_escape(&head), slack_escape(&line))}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": format!("leadguard alert `{}`", r.alert_id)}]},
            ],
        }),
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary (WeCom refuses markdown over 4096).
fn truncate_bytes(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max - '…'.len_utf8();
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn hmac_sha256_base64(key: &[u8], message: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(message);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// A request ready to send: where, and what.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub url: String,
    pub body: Value,
}

/// Adds the channel's signature, if it has a secret. `now_ms` is the wall clock in Unix
/// milliseconds (both platforms refuse a timestamp more than an hour off).
///
/// - DingTalk: `timestamp` (ms) and `sign` = URL-encoded Base64 of HMAC-SHA256 with the secret
///   as key over `timestamp + "\n" + secret`, appended to the URL's query.
/// - Feishu: `timestamp` (s) and `sign` = Base64 of HMAC-SHA256 with `timestamp + "\n" + secret`
///   as key over an empty message, in the body.
pub fn sign(channel: &Channel, body: Value, now_ms: i64) -> Request {
    let Some(secret) = &channel.secret else {
        return Request {
            url: channel.url.clone(),
            body,
        };
    };
    match channel.platform {
        Platform::DingTalk => {
            let timestamp = now_ms.to_string();
            let sign = hmac_sha256_base64(
                secret.as_bytes(),
                format!("{timestamp}\n{secret}").as_bytes(),
            );
            let url = match reqwest::Url::parse(&channel.url) {
                Ok(mut u) => {
                    u.query_pairs_mut()
                        .append_pair("timestamp", &timestamp)
                        .append_pair("sign", &sign);
                    u.to_string()
                }
                // The configuration checked the URL; keep it as given if that ever changes.
                Err(_) => channel.url.clone(),
            };
            Request { url, body }
        }
        Platform::Feishu => {
            let timestamp = (now_ms / 1000).to_string();
            let sign = hmac_sha256_base64(format!("{timestamp}\n{secret}").as_bytes(), b"");
            let mut body = body;
            if let Value::Object(map) = &mut body {
                map.insert("timestamp".into(), Value::String(timestamp));
                map.insert("sign".into(), Value::String(sign));
            }
            Request {
                url: channel.url.clone(),
                body,
            }
        }
        Platform::WeCom | Platform::Slack => Request {
            url: channel.url.clone(),
            body,
        },
    }
}

/// What the platform's answer means. Every platform answers HTTP 200 for some failures, with an
/// error code in the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// Worth another attempt (server errors, throttling, platform error codes).
    Retry(String),
    /// Another attempt cannot help (the webhook is gone, the request is refused as malformed).
    Fail(String),
}

/// Judges an HTTP answer from `platform`.
pub fn judge(platform: Platform, status: u16, body: &str) -> Verdict {
    let short: String = body.chars().take(200).collect();
    if status == 429 || status == 408 || status >= 500 {
        return Verdict::Retry(format!("HTTP {status}: {short}"));
    }
    if !(200..300).contains(&status) {
        return Verdict::Fail(format!("HTTP {status}: {short}"));
    }
    match platform {
        Platform::Slack => {
            if body.trim() == "ok" {
                Verdict::Delivered
            } else {
                Verdict::Retry(format!("Slack answered `{short}` instead of `ok`"))
            }
        }
        Platform::WeCom | Platform::DingTalk | Platform::Feishu => {
            let field = if platform == Platform::Feishu {
                "code"
            } else {
                "errcode"
            };
            match serde_json::from_str::<Value>(body)
                .ok()
                .and_then(|v| v.get(field).and_then(Value::as_i64))
            {
                Some(0) => Verdict::Delivered,
                Some(code) => Verdict::Retry(format!(
                    "{} error {field} {code}: {short}",
                    platform.as_str()
                )),
                None => Verdict::Retry(format!(
                    "{} answered without `{field}`: {short}",
                    platform.as_str()
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::roster::Contacts;

    fn alert() -> Alert {
        Alert {
            id: "a1".into(),
            customer: "C1".into(),
            rule: "protected-contact".into(),
            severity: crate::config::Severity::High,
            owner: Some(AlertRep {
                id: "r-li".into(),
                team: Some("east-1".into()),
            }),
            intruder: Some(AlertRep {
                id: "r-wang".into(),
                team: Some("east-2".into()),
            }),
            reps: vec![
                AlertRep {
                    id: "r-li".into(),
                    team: Some("east-1".into()),
                },
                AlertRep {
                    id: "r-wang".into(),
                    team: Some("east-2".into()),
                },
            ],
            reason: "r-wang called C1 <owned> & protected".into(),
            evidence: 2,
        }
    }

    fn roster() -> Roster {
        Roster::parse(
            "reps:\n\
             \x20 - {id: r-li, name: 李伟, manager: m-east, contacts: {wecom: liwei, slack: U1}}\n\
             \x20 - {id: r-wang, manager: m-wang, contacts: {dingtalk: \"13800138000\"}}\n\
             \x20 - {id: m-east, name: 赵敏, contacts: {dingtalk: ding-zhao}}\n",
            std::path::Path::new("roster.yaml"),
        )
        .unwrap()
    }

    #[test]
    fn the_owners_manager_is_told_or_else_the_intruders() {
        let dir = Directory::new(&roster());
        let people = recipients(&alert(), &dir);
        let ids: Vec<(&str, Role)> = people.iter().map(|p| (p.id.as_str(), p.role)).collect();
        assert_eq!(
            ids,
            [
                ("r-li", Role::Owner),
                ("r-wang", Role::Intruder),
                ("m-east", Role::Manager)
            ]
        );
        let mut unowned = alert();
        unowned.owner = None;
        let people = recipients(&unowned, &dir);
        assert_eq!(people.last().unwrap().id, "m-wang");
        assert_eq!(people.last().unwrap().contacts, Contacts::default());
    }

    #[test]
    fn channels_filter_by_severity_and_team() {
        let ch = |teams: Option<Vec<&str>>, min| Channel {
            name: "c".into(),
            platform: Platform::WeCom,
            url: "https://x".into(),
            secret: None,
            teams: teams.map(|t| t.into_iter().map(String::from).collect()),
            min_severity: min,
        };
        use crate::config::Severity::*;
        assert!(alert().is_for(&ch(None, High)));
        assert!(!alert().is_for(&ch(None, Critical)));
        assert!(alert().is_for(&ch(Some(vec!["east-2"]), Low)));
        assert!(!alert().is_for(&ch(Some(vec!["north-1"]), Low)));
    }

    #[test]
    fn dingtalk_mentions_split_mobiles_from_user_ids() {
        let dir = Directory::new(&roster());
        let body = alert_body(Platform::DingTalk, &alert(), &recipients(&alert(), &dir));
        assert_eq!(body["at"]["atMobiles"], json!(["13800138000"]));
        assert_eq!(body["at"]["atUserIds"], json!(["ding-zhao"]));
        let text = body["markdown"]["text"].as_str().unwrap();
        assert!(
            text.contains("@13800138000") && text.contains("@ding-zhao"),
            "{text}"
        );
    }

    #[test]
    fn slack_text_is_escaped_but_mentions_are_not() {
        let dir = Directory::new(&roster());
        let body = alert_body(Platform::Slack, &alert(), &recipients(&alert(), &dir));
        let text = body["text"].as_str().unwrap();
        assert!(text.contains("&lt;owned&gt; &amp; protected"), "{text}");
        assert!(text.contains("<@U1>"), "{text}");
    }

    #[test]
    fn answers_are_judged_per_platform() {
        assert_eq!(
            judge(Platform::WeCom, 200, r#"{"errcode":0,"errmsg":"ok"}"#),
            Verdict::Delivered
        );
        assert!(matches!(
            judge(
                Platform::WeCom,
                200,
                r#"{"errcode":45009,"errmsg":"api freq out of limit"}"#
            ),
            Verdict::Retry(_)
        ));
        assert!(matches!(
            judge(
                Platform::Feishu,
                200,
                r#"{"code":9499,"msg":"Bad Request"}"#
            ),
            Verdict::Retry(_)
        ));
        assert_eq!(
            judge(
                Platform::Feishu,
                200,
                r#"{"code":0,"msg":"success","data":{}}"#
            ),
            Verdict::Delivered
        );
        assert_eq!(judge(Platform::Slack, 200, "ok"), Verdict::Delivered);
        assert!(matches!(
            judge(Platform::Slack, 404, "channel_not_found"),
            Verdict::Fail(_)
        ));
        assert!(matches!(judge(Platform::Slack, 429, ""), Verdict::Retry(_)));
        assert!(matches!(
            judge(Platform::DingTalk, 503, ""),
            Verdict::Retry(_)
        ));
    }

    #[test]
    fn long_markdown_is_cut_on_a_character_boundary() {
        let s = "撞".repeat(2000);
        let t = truncate_bytes(&s, 4000);
        assert!(t.len() <= 4000 && t.ends_with('…'));
    }
}
