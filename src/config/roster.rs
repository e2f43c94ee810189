//! The roster of reps: team, role, manager, region and whether they are active.
//!
//! Events may carry a rep's team and role; the roster is the authority when it knows the rep
//! (an event's own team is used only for reps the roster doesn't list). `contacts` holds each
//! rep's handle on the chat platforms that alerts are sent to (see `notify`).

use super::yaml::{self, Diagnostic, Reader};
use super::SourceFile;
use std::path::Path;
use std::sync::Arc;

/// One rep as the roster describes them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RosterRep {
    pub id: String,
    pub name: Option<String>,
    pub team: Option<String>,
    pub role: Option<String>,
    pub manager: Option<String>,
    pub region: Option<String>,
    pub active: bool,
    /// Periods away (leave), as local dates, both ends included: no assignments then.
    pub away: Vec<(chrono::NaiveDate, chrono::NaiveDate)>,
    /// How many customers this rep can carry (workload-balanced assignment); default: the
    /// ownership cap, else 100.
    pub capacity: Option<u32>,
    /// Industries, customer tiers and product lines this rep is assigned first.
    pub industries: Vec<String>,
    pub tiers: Vec<String>,
    pub product_lines: Vec<String>,
    /// How to mention the rep on each chat platform.
    pub contacts: Contacts,
}

/// A rep's handles on the chat platforms, for @-mentions in alert messages. Each is optional:
/// a rep without a handle on a platform is named in the text but not mentioned.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Contacts {
    /// WeCom (企业微信) userid.
    pub wecom: Option<String>,
    /// DingTalk (钉钉) userId, or the mobile number the rep registered with DingTalk.
    pub dingtalk: Option<String>,
    /// Feishu (飞书) open_id (`ou_…`).
    pub feishu: Option<String>,
    /// Slack member id (`U…`).
    pub slack: Option<String>,
}

/// All reps the roster lists.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Roster {
    pub reps: Vec<RosterRep>,
    /// The file this roster was read from ([`Roster::parse`]); `None` for no roster (no reps)
    /// or one built in code.
    pub file: Option<Arc<SourceFile>>,
}

impl Roster {
    pub fn load(path: &Path) -> Result<Roster, Vec<Diagnostic>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![Diagnostic {
                file: path.to_path_buf(),
                line: 0,
                col: 0,
                message: format!("cannot read the roster: {e}"),
            }]
        })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Roster, Vec<Diagnostic>> {
        let tree = yaml::parse(text, path)?;
        let mut errors = Vec::new();
        let mut roster = Roster {
            reps: Vec::new(),
            file: Some(Arc::new(SourceFile {
                name: path.display().to_string(),
                text: text.to_string(),
            })),
        };
        {
            let mut r = Reader {
                file: path,
                errors: &mut errors,
            };
            if let Some(top) = r.map(&tree, "a roster file", &["reps"]) {
                let items = top
                    .require(&mut r, "reps")
                    .and_then(|n| r.list(n, "`reps`"))
                    .unwrap_or(&[]);
                for item in items {
                    let Some(m) = r.map(
                        item,
                        "a rep",
                        &[
                            "id",
                            "name",
                            "team",
                            "role",
                            "manager",
                            "region",
                            "active",
                            "away",
                            "capacity",
                            "industries",
                            "tiers",
                            "product_lines",
                            "contacts",
                        ],
                    ) else {
                        continue;
                    };
                    let id = m.require(&mut r, "id").and_then(|n| r.string(n, "`id`"));
                    let mut list = |key: &str| {
                        m.get(key)
                            .and_then(|n| r.strings(n, &format!("`{key}`")))
                            .unwrap_or_default()
                    };
                    let (industries, tiers, product_lines) =
                        (list("industries"), list("tiers"), list("product_lines"));
                    let capacity = m
                        .get("capacity")
                        .and_then(|n| r.uint(n, "`capacity`", 1, 1_000_000))
                        .map(|v| v as u32);
                    let away = m
                        .get("away")
                        .map(|n| read_away(&mut r, n))
                        .unwrap_or_default();
                    let mut opt = |key: &str| m.get(key).and_then(|n| r.string(n, key));
                    let rep = RosterRep {
                        id: id.unwrap_or_default(),
                        name: opt("name"),
                        team: opt("team"),
                        role: opt("role"),
                        manager: opt("manager"),
                        region: opt("region"),
                        active: m
                            .get("active")
                            .and_then(|n| r.bool(n, "`active`"))
                            .unwrap_or(true),
                        away,
                        capacity,
                        industries,
                        tiers,
                        product_lines,
                        contacts: m
                            .get("contacts")
                            .map(|n| read_contacts(&mut r, n))
                            .unwrap_or_default(),
                    };
                    if !rep.id.is_empty() {
                        if roster.reps.iter().any(|x| x.id == rep.id) {
                            r.error(item, format!("rep `{}` is listed twice", rep.id));
                        }
                        roster.reps.push(rep);
                    }
                    m.finish(&mut r);
                }
                top.finish(&mut r);
            }
        }
        if errors.is_empty() {
            Ok(roster)
        } else {
            Err(errors)
        }
    }
}

/// `away: [{from: 2026-03-01, to: 2026-03-10}, …]`.
fn read_away(r: &mut Reader<'_>, node: &yaml::Node) -> Vec<(chrono::NaiveDate, chrono::NaiveDate)> {
    let mut out = Vec::new();
    for item in r.list(node, "`away`").unwrap_or(&[]) {
        let Some(m) = r.map(item, "an `away` period", &["from", "to"]) else {
            continue;
        };
        let mut date = |key: &str| {
            let n = m.require(r, key)?;
            let text = r.string(n, &format!("`away.{key}`"))?;
            match chrono::NaiveDate::parse_from_str(&text, "%Y-%m-%d") {
                Ok(d) => Some(d),
                Err(_) => {
                    r.error(n, format!("`away.{key}`: dates are written 2026-03-01"));
                    None
                }
            }
        };
        let (from, to) = (date("from"), date("to"));
        if let (Some(f), Some(t)) = (from, to) {
            if t < f {
                r.error(item, "an `away` period ends before it starts");
            } else {
                out.push((f, t));
            }
        }
        m.finish(r);
    }
    out
}

fn read_contacts(r: &mut Reader<'_>, node: &yaml::Node) -> Contacts {
    let Some(m) = r.map(
        node,
        "a rep's `contacts`",
        &["wecom", "dingtalk", "feishu", "slack"],
    ) else {
        return Contacts::default();
    };
    let mut handle = |key: &str| {
        m.get(key)
            .and_then(|n| r.string(n, &format!("`contacts.{key}`")))
    };
    let contacts = Contacts {
        wecom: handle("wecom"),
        dingtalk: handle("dingtalk"),
        feishu: handle("feishu"),
        slack: handle("slack"),
    };
    m.finish(r);
    contacts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_reps_and_reports_mistakes() {
        let ok = Roster::parse(
            "reps:\n  - {id: r1, team: east-1, role: sales}\n  - {id: r2, active: false}\n",
            Path::new("roster.yaml"),
        )
        .unwrap();
        assert_eq!(ok.reps.len(), 2);
        assert!(!ok.reps[1].active);
        let bad = Roster::parse(
            "reps:\n  - {id: r1, teem: x}\n  - {id: r1}\n",
            Path::new("roster.yaml"),
        )
        .unwrap_err();
        assert_eq!(bad.len(), 2);
    }

    #[test]
    fn contacts_are_read_and_unknown_platforms_are_errors() {
        let ok = Roster::parse(
            "reps:\n  - id: r1\n    contacts: {wecom: li.wei, dingtalk: \"13800138000\", feishu: ou_1, slack: U1}\n  - {id: r2}\n",
            Path::new("roster.yaml"),
        )
        .unwrap();
        let c = &ok.reps[0].contacts;
        assert_eq!(c.wecom.as_deref(), Some("li.wei"));
        assert_eq!(c.dingtalk.as_deref(), Some("13800138000"));
        assert_eq!(c.feishu.as_deref(), Some("ou_1"));
        assert_eq!(c.slack.as_deref(), Some("U1"));
        assert_eq!(ok.reps[1].contacts, Contacts::default());
        let bad = Roster::parse(
            "reps:\n  - id: r1\n    contacts: {wecomm: x}\n",
            Path::new("roster.yaml"),
        )
        .unwrap_err();
        assert_eq!(bad.len(), 1);
        assert!(
            bad[0].to_string().starts_with("roster.yaml:3:16:"),
            "{}",
            bad[0]
        );
        assert!(
            bad[0].message.contains("did you mean `wecom`"),
            "{}",
            bad[0]
        );
    }
}
