//! The notifications file: where alerts go (channels) and how hard to try (delivery).
//!
//! Read like the rules: every problem is reported at once with file, line and column, and
//! unknown keys are errors. Webhook URLs and signing secrets are credentials, so each may come
//! from an environment variable (`url_env`, `secret_env`) instead of the file; the lookup is a
//! parameter so that parsing stays free of IO.

use crate::config::yaml::{self, Diagnostic, Node, Reader};
use crate::config::Severity;
use std::path::Path;
use std::time::Duration;

/// The chat platforms alerts can be sent to, each through its group-robot webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Platform {
    /// 企业微信 group robot.
    WeCom,
    /// 钉钉 custom robot.
    DingTalk,
    /// 飞书 custom bot.
    Feishu,
    /// Slack incoming webhook.
    Slack,
}

impl Platform {
    pub const ALL: [Platform; 4] = [
        Platform::WeCom,
        Platform::DingTalk,
        Platform::Feishu,
        Platform::Slack,
    ];
    const CHOICES: [(&'static str, Platform); 4] = [
        ("wecom", Platform::WeCom),
        ("dingtalk", Platform::DingTalk),
        ("feishu", Platform::Feishu),
        ("slack", Platform::Slack),
    ];

    /// The name used in the configuration and as the `platform` metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::WeCom => "wecom",
            Platform::DingTalk => "dingtalk",
            Platform::Feishu => "feishu",
            Platform::Slack => "slack",
        }
    }

    /// Whether the platform signs requests with a shared secret.
    fn signs(self) -> bool {
        matches!(self, Platform::DingTalk | Platform::Feishu)
    }
}

/// One webhook that receives alerts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub name: String,
    pub platform: Platform,
    /// The webhook URL (resolved from `url_env` when given that way).
    pub url: String,
    /// The signing secret (DingTalk `SEC…`, Feishu), when the robot has signing on.
    pub secret: Option<String>,
    /// Only alerts naming a rep of one of these teams; `None` for every alert.
    pub teams: Option<Vec<String>>,
    /// Only alerts at least this severe.
    pub min_severity: Severity,
}

/// At most `messages` mentions of one person per `per`, in each channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub messages: u32,
    pub per: Duration,
}

/// How deliveries are tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Attempts per message, the first included.
    pub max_attempts: u32,
    /// Wait before the second attempt; doubled for each further one.
    pub initial_backoff: Duration,
    /// The longest wait between attempts (a `Retry-After` may ask for longer, up to
    /// [`MAX_RETRY_AFTER`]).
    pub max_backoff: Duration,
    pub per_recipient_limit: Option<RateLimit>,
    /// Alerts waiting for delivery; when full, new alerts are dropped (and counted) so that the
    /// engine never waits for a chat platform.
    pub queue: usize,
    /// Messages being delivered at once.
    pub concurrency: usize,
    /// One HTTP request, connection included.
    pub timeout: Duration,
    /// How many sent alerts are remembered: so that their withdrawal can be announced, and so that
    /// an alert produced again is not sent twice.
    pub remember: usize,
}

/// The longest `Retry-After` honoured; a platform asking for more gets this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            max_attempts: 5,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            per_recipient_limit: None,
            queue: 1024,
            concurrency: 8,
            timeout: Duration::from_secs(10),
            remember: 10_000,
        }
    }
}

/// The whole notifications file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyConfig {
    pub channels: Vec<Channel>,
    pub delivery: Delivery,
}

fn duration(span: crate::time::Span) -> Duration {
    Duration::from_millis(span.as_millis().max(0) as u64)
}

impl NotifyConfig {
    /// Reads a notifications file, taking `url_env`/`secret_env` from the process environment.
    pub fn load(path: &Path) -> Result<NotifyConfig, Vec<Diagnostic>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![Diagnostic {
                file: path.to_path_buf(),
                line: 0,
                col: 0,
                message: format!("cannot read the notifications file: {e}"),
            }]
        })?;
        Self::parse(&text, path, &|name| std::env::var(name).ok())
    }

    /// Parses a notifications file; `env` looks up environment variables.
    pub fn parse(
        text: &str,
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<NotifyConfig, Vec<Diagnostic>> {
        let tree = yaml::parse(text, path)?;
        let mut errors = Vec::new();
        let mut config = NotifyConfig {
            channels: Vec::new(),
            delivery: Delivery::default(),
        };
        {
            let mut r = Reader {
                file: path,
                errors: &mut errors,
            };
            if let Some(top) = r.map(&tree, "a notifications file", &["channels", "delivery"]) {
                let items = top
                    .require(&mut r, "channels")
                    .and_then(|n| r.list(n, "`channels`"))
                    .unwrap_or(&[]);
                if items.is_empty() && top.get("channels").is_some() {
                    r.error(top.node, "`channels` is empty: list at least one webhook");
                }
                for item in items {
                    if let Some(ch) = read_channel(&mut r, item, env) {
                        if config.channels.iter().any(|c| c.name == ch.name) {
                            r.error(item, format!("channel `{}` is listed twice", ch.name));
                        }
                        config.channels.push(ch);
                    }
                }
                if let Some(n) = top.get("delivery") {
                    config.delivery = read_delivery(&mut r, n);
                }
                top.finish(&mut r);
            }
        }
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(errors)
        }
    }
}

/// A value given either directly (`key`) or through an environment variable (`key_env`).
fn direct_or_env(
    r: &mut Reader<'_>,
    m: &yaml::MapReader<'_>,
    key: &'static str,
    env_key: &'static str,
    env: &dyn Fn(&str) -> Option<String>,
    channel: &str,
) -> Option<String> {
    match (m.get(key), m.get(env_key)) {
        (Some(n), Some(_)) => {
            r.error(
                n,
                format!("channel `{channel}`: give `{key}` or `{env_key}`, not both"),
            );
            None
        }
        (Some(n), None) => r.string(n, &format!("`{key}`")),
        (None, Some(n)) => {
            let var = r.string(n, &format!("`{env_key}`"))?;
            match env(&var).filter(|v| !v.trim().is_empty()) {
                Some(v) => Some(v.trim().to_string()),
                None => {
                    r.error(
                        n,
                        format!(
                            "channel `{channel}`: the environment variable `{var}` named by `{env_key}` is not set; \
                             set it where leadguard runs"
                        ),
                    );
                    None
                }
            }
        }
        (None, None) => None,
    }
}

fn read_channel(
    r: &mut Reader<'_>,
    node: &Node,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<Channel> {
    let m = r.map(
        node,
        "a channel",
        &[
            "name",
            "platform",
            "url",
            "url_env",
            "secret",
            "secret_env",
            "teams",
            "min_severity",
        ],
    )?;
    let name = m
        .require(r, "name")
        .and_then(|n| r.string(n, "`name`"))
        .unwrap_or_default();
    let platform = m
        .require(r, "platform")
        .and_then(|n| r.choice(n, "`platform`", &Platform::CHOICES));
    let url = direct_or_env(r, &m, "url", "url_env", env, &name);
    if url.is_none() && m.get("url").is_none() && m.get("url_env").is_none() {
        r.error(
            node,
            format!("channel `{name}` needs the robot's webhook address: `url` or `url_env`"),
        );
    }
    let url_node = m.get("url").or(m.get("url_env")).unwrap_or(node);
    if let Some(u) = &url {
        match reqwest::Url::parse(u) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {}
            _ => r.error(
                url_node,
                format!("channel `{name}`: the webhook address is not an http(s) URL"),
            ),
        }
    }
    let secret = direct_or_env(r, &m, "secret", "secret_env", env, &name);
    if let (Some(p), Some(_)) = (platform, &secret) {
        if !p.signs() {
            let at = m.get("secret").or(m.get("secret_env")).unwrap_or(node);
            r.error(
                at,
                format!(
                    "channel `{name}`: {} webhooks are not signed; remove `secret`",
                    p.as_str()
                ),
            );
        }
    }
    let teams = m.get("teams").and_then(|n| {
        let teams = r.strings(n, "`teams`")?;
        if teams.is_empty() {
            r.error(
                n,
                format!("channel `{name}`: `teams` is empty, so nothing would be sent; leave it out for every team"),
            );
        }
        Some(teams)
    });
    let min_severity = m
        .get("min_severity")
        .and_then(|n| r.choice(n, "`min_severity`", &Severity::CHOICES))
        .unwrap_or(Severity::Low);
    m.finish(r);
    Some(Channel {
        name,
        platform: platform?,
        url: url?,
        secret,
        teams,
        min_severity,
    })
}

fn read_delivery(r: &mut Reader<'_>, node: &Node) -> Delivery {
    let mut d = Delivery::default();
    let Some(m) = r.map(
        node,
        "`delivery`",
        &[
            "max_attempts",
            "initial_backoff",
            "max_backoff",
            "per_recipient_limit",
            "queue",
            "concurrency",
            "timeout",
            "remember",
        ],
    ) else {
        return d;
    };
    if let Some(n) = m.get("max_attempts") {
        d.max_attempts = r
            .uint(n, "`max_attempts`", 1, 100)
            .unwrap_or(d.max_attempts as u64) as u32;
    }
    let mut span = |key: &str, default: Duration| {
        m.get(key)
            .and_then(|n| r.span(n, &format!("`{key}`")))
            .map_or(default, duration)
    };
    d.initial_backoff = span("initial_backoff", d.initial_backoff);
    d.max_backoff = span("max_backoff", d.max_backoff);
    d.timeout = span("timeout", d.timeout);
    if d.max_backoff < d.initial_backoff {
        let at = m.get("max_backoff").unwrap_or(node);
        r.error(at, "`max_backoff` is shorter than `initial_backoff`");
    }
    if d.timeout.is_zero() {
        let at = m.get("timeout").unwrap_or(node);
        r.error(at, "`timeout` must be longer than 0s");
    }
    if let Some(n) = m.get("queue") {
        d.queue = r.uint(n, "`queue`", 1, 1_000_000).unwrap_or(d.queue as u64) as usize;
    }
    if let Some(n) = m.get("concurrency") {
        d.concurrency = r
            .uint(n, "`concurrency`", 1, 1024)
            .unwrap_or(d.concurrency as u64) as usize;
    }
    if let Some(n) = m.get("remember") {
        d.remember = r
            .uint(n, "`remember`", 0, 10_000_000)
            .unwrap_or(d.remember as u64) as usize;
    }
    if let Some(n) = m.get("per_recipient_limit") {
        if let Some(l) = r.map(n, "`per_recipient_limit`", &["messages", "per"]) {
            let messages = l
                .require(r, "messages")
                .and_then(|v| r.uint(v, "`messages`", 1, 1_000_000));
            let per = l
                .require(r, "per")
                .and_then(|v| r.span(v, "`per`"))
                .map(duration);
            if per.is_some_and(|p| p.is_zero()) {
                r.error(n, "`per_recipient_limit.per` must be longer than 0s");
            }
            if let (Some(messages), Some(per)) = (messages, per) {
                d.per_recipient_limit = Some(RateLimit {
                    messages: messages as u32,
                    per,
                });
            }
            l.finish(r);
        }
    }
    m.finish(r);
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "WECOM_EAST" => Some("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k1".into()),
            "DING_SECRET" => Some("SECabc".into()),
            _ => None,
        }
    }

    fn parse(text: &str) -> Result<NotifyConfig, Vec<Diagnostic>> {
        NotifyConfig::parse(text, Path::new("notify.yaml"), &env)
    }

    #[test]
    fn a_full_file_is_read() {
        let c = parse(
            "channels:\n\
             \x20 - {name: east, platform: wecom, url_env: WECOM_EAST, teams: [east-1], min_severity: high}\n\
             \x20 - {name: ding, platform: dingtalk, url: \"https://oapi.dingtalk.com/robot/send?access_token=t\", secret_env: DING_SECRET}\n\
             delivery:\n\
             \x20 max_attempts: 3\n\
             \x20 initial_backoff: 2s\n\
             \x20 max_backoff: 1m\n\
             \x20 per_recipient_limit: {messages: 5, per: 1h}\n",
        )
        .unwrap();
        assert_eq!(c.channels.len(), 2);
        assert_eq!(c.channels[0].platform, Platform::WeCom);
        assert_eq!(
            c.channels[0].url,
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k1"
        );
        assert_eq!(
            c.channels[0].teams.as_deref(),
            Some(&["east-1".to_string()][..])
        );
        assert_eq!(c.channels[0].min_severity, Severity::High);
        assert_eq!(c.channels[1].secret.as_deref(), Some("SECabc"));
        assert_eq!(c.channels[1].min_severity, Severity::Low);
        assert_eq!(c.delivery.max_attempts, 3);
        assert_eq!(c.delivery.initial_backoff, Duration::from_secs(2));
        assert_eq!(
            c.delivery.per_recipient_limit,
            Some(RateLimit {
                messages: 5,
                per: Duration::from_secs(3600)
            })
        );
        assert_eq!(c.delivery.queue, Delivery::default().queue);
    }

    #[test]
    fn every_mistake_is_reported_with_its_place() {
        let errs = parse(
            "channels:\n\
             \x20 - {name: a, platform: wechat, url: x}\n\
             \x20 - {name: b, platform: slack, url_env: MISSING}\n\
             \x20 - {name: c, platform: wecom, url: \"https://x\", secret: s}\n\
             \x20 - {name: d, platform: feishu, url: \"https://x\", url_env: WECOM_EAST, min_severty: high}\n\
             \x20 - {name: e, platform: slack}\n\
             delivery: {max_attempts: 0, initial_backoff: 10, per_recipient_limit: {messages: 5}}\n",
        )
        .unwrap_err();
        let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        let all = text.join("\n");
        for expected in [
            "notify.yaml:2:25: `platform`: `wechat` is not one of wecom, dingtalk, feishu, slack",
            "notify.yaml:2:38: channel `a`: the webhook address is not an http(s) URL",
            "notify.yaml:3:41: channel `b`: the environment variable `MISSING` named by `url_env` is not set",
            "notify.yaml:4:58: channel `c`: wecom webhooks are not signed; remove `secret`",
            "notify.yaml:5:38: channel `d`: give `url` or `url_env`, not both",
            "unknown key `min_severty` (did you mean `min_severity`?)",
            "notify.yaml:6:5: channel `e` needs the robot's webhook address: `url` or `url_env`",
            "`max_attempts` must be a whole number from 1 to 100",
            "`initial_backoff`: ",
            "`per_recipient_limit` is missing the required key `per`",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
    }
}
