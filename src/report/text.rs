//! The report as plain-text tables for a terminal (no colour: it goes to files and pagers too).

use super::tally::{Count, Report};
use std::fmt::Write;

/// Columns a character takes in a terminal: East Asian wide characters (team names and company
/// keys are often Chinese) take two, so that columns line up.
fn char_width(c: char) -> usize {
    let c = c as u32;
    let wide = matches!(c,
        0x1100..=0x115F
        | 0x2E80..=0x303E
        | 0x3041..=0x33FF
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6
        | 0x20000..=0x3FFFD);
    if wide {
        2
    } else {
        1
    }
}

pub(crate) fn width(s: &str) -> usize {
    s.chars().map(char_width).sum()
}

/// A table with a title; numeric columns are right-aligned.
struct Table<'a> {
    title: &'a str,
    headers: Vec<&'a str>,
    numeric: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table<'_> {
    fn render(&self, out: &mut String) {
        let _ = writeln!(out, "\n{}", self.title);
        if self.rows.is_empty() {
            out.push_str("  (none)\n");
            return;
        }
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(cell));
            }
        }
        let line = |cells: &[String], out: &mut String| {
            out.push(' ');
            for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
                let pad = " ".repeat(w - width(cell));
                out.push(' ');
                if self.numeric[i] {
                    out.push_str(&pad);
                    out.push_str(cell);
                } else {
                    out.push_str(cell);
                    if i + 1 < cells.len() {
                        out.push_str(&pad);
                    }
                }
                if i + 1 < cells.len() {
                    out.push(' ');
                }
            }
            out.push('\n');
        };
        let headers: Vec<String> = self.headers.iter().map(|h| h.to_string()).collect();
        line(&headers, out);
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        line(&rule, out);
        for row in &self.rows {
            line(row, out);
        }
    }
}

fn counts<'a>(title: &'a str, what: &'a str, counts: &[Count]) -> Table<'a> {
    Table {
        title,
        headers: vec![what, "count"],
        numeric: vec![false, true],
        rows: counts
            .iter()
            .map(|c| vec![c.label.clone(), c.value.to_string()])
            .collect(),
    }
}

fn cut(shown: usize, total: usize) -> String {
    if shown < total {
        format!(" (top {shown} of {total})")
    } else {
        String::new()
    }
}

/// The whole report as text.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let rd = &r.reading;
    let _ = writeln!(out, "leadguard report: {}", rd.input);
    let malformed = if rd.malformed == 0 {
        String::new()
    } else {
        let lines: Vec<String> = rd
            .malformed_listed
            .iter()
            .map(|m| m.line.to_string())
            .collect();
        let more = if (rd.malformed_listed.len() as u64) < rd.malformed {
            ", ..."
        } else {
            ""
        };
        format!(" (lines {}{more}; see the end)", lines.join(", "))
    };
    let _ = writeln!(
        out,
        "  read: {} lines, {} distinct outputs, {} redeliveries ignored, {} malformed{malformed}",
        rd.messages, rd.outputs, rd.duplicates, rd.malformed
    );
    let _ = writeln!(
        out,
        "  withdrawals: {}; {} outputs of this input retracted and not counted, {} naming outputs not in this input",
        rd.withdrawals, rd.withdrawn, rd.withdrawn_elsewhere
    );
    if let (Some(first), Some(last)) = (&rd.first_time, &rd.last_time) {
        let _ = writeln!(out, "  standing outputs from {first} to {last}");
    }

    counts("Standing outputs by type", "type", &rd.standing_by_type).render(&mut out);
    let _ = writeln!(out, "\nCollisions: {}", r.collisions);
    counts(
        "Collisions per team (once per team among the reps)",
        "team",
        &r.per_team,
    )
    .render(&mut out);
    Table {
        title: &format!(
            "Collisions per rep pair{}",
            cut(r.per_pair.shown.len(), r.per_pair.total)
        ),
        headers: vec!["rep", "rep", "collisions"],
        numeric: vec![false, false, true],
        rows: r
            .per_pair
            .shown
            .iter()
            .map(|p| vec![p.a.clone(), p.b.clone(), p.collisions.to_string()])
            .collect(),
    }
    .render(&mut out);
    Table {
        title: &format!(
            "Repeat offenders: intruders with 2 or more collisions{}",
            cut(r.repeat_offenders.shown.len(), r.repeat_offenders.total)
        ),
        headers: vec!["rep", "team", "collisions"],
        numeric: vec![false, false, true],
        rows: r
            .repeat_offenders
            .shown
            .iter()
            .map(|o| vec![o.rep.clone(), o.team.clone(), o.collisions.to_string()])
            .collect(),
    }
    .render(&mut out);
    Table {
        title: &format!(
            "Customers touched by the most reps{}",
            cut(r.customers.shown.len(), r.customers.total)
        ),
        headers: vec!["customer", "reps", "collisions", "who"],
        numeric: vec![false, true, true, false],
        rows: r
            .customers
            .shown
            .iter()
            .map(|c| {
                vec![
                    c.customer.clone(),
                    c.reps.len().to_string(),
                    c.collisions.to_string(),
                    c.reps.join(", "),
                ]
            })
            .collect(),
    }
    .render(&mut out);
    Table {
        title: "Collisions by rule",
        headers: vec!["rule", "severity", "collisions"],
        numeric: vec![false, false, true],
        rows: r
            .by_rule
            .iter()
            .map(|c| vec![c.rule.clone(), c.severity.clone(), c.collisions.to_string()])
            .collect(),
    }
    .render(&mut out);
    counts("Collisions by severity", "severity", &r.by_severity).render(&mut out);
    counts("Collisions per day", "day", &r.per_day).render(&mut out);

    let l = &r.lifecycle;
    let _ = writeln!(
        out,
        "\nOwnership: claims {}, reclaims {}, assignments {} ({} of a customer with a previous owner), reassignments {}, recommended reassignments {}",
        l.claims, l.reclaims, l.assignments, l.assignments_from_previous_owner, l.reassignments, l.recommendations
    );
    counts("Reclaims by reason", "reason_code", &l.reclaims_by_reason).render(&mut out);
    counts(
        "Reclaims per team (of the previous owner)",
        "team",
        &l.reclaims_per_team,
    )
    .render(&mut out);
    counts(
        "Assignments by strategy",
        "strategy",
        &l.assignments_by_strategy,
    )
    .render(&mut out);
    counts(
        "Reassignments by resolution",
        "resolution",
        &l.reassignments_by_resolution,
    )
    .render(&mut out);
    counts(
        "Recommended reassignments by resolution",
        "resolution",
        &l.recommendations_by_resolution,
    )
    .render(&mut out);
    if !rd.malformed_listed.is_empty() {
        Table {
            title: "Malformed lines (not counted)",
            headers: vec!["line", "problem"],
            numeric: vec![true, false],
            rows: rd
                .malformed_listed
                .iter()
                .map(|m| vec![m.line.to_string(), m.reason.clone()])
                .collect(),
        }
        .render(&mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_characters_take_two_columns() {
        assert_eq!(width("east-1"), 6);
        assert_eq!(width("华东一组"), 8);
        assert_eq!(width("company:上海星辰"), 8 + 8);
    }

    #[test]
    fn columns_line_up_with_chinese_labels() {
        let t = Table {
            title: "t",
            headers: vec!["team", "count"],
            numeric: vec![false, true],
            rows: vec![
                vec!["华东一组".into(), "7".into()],
                vec!["east-1".into(), "12".into()],
            ],
        };
        let mut out = String::new();
        t.render(&mut out);
        let rows: Vec<&str> = out.lines().skip(2).collect();
        let ends: Vec<usize> = rows.iter().map(|l| width(l)).collect();
        assert!(ends.windows(2).all(|w| w[0] == w[1]), "{out}");
    }
}
