//! The roster of reps: team, role, manager, region and whether they are active.
//!
//! Events may carry a rep's team and role; the roster is the authority when it knows the rep
//! (an event's own team is used only for reps the roster doesn't list).

use super::yaml::{self, Diagnostic, Reader};
use std::path::Path;

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
}

/// All reps the roster lists.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Roster {
    pub reps: Vec<RosterRep>,
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
        let tree = yaml::parse(text, path).map_err(|d| vec![d])?;
        let mut errors = Vec::new();
        let mut roster = Roster::default();
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
}
