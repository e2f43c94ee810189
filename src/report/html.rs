//! The report as one self-contained HTML page: the figures embedded as JSON, charts drawn as SVG
//! by a small inline script (`chart.js`), and every figure also in plain tables, so the page
//! reads the same with scripts off. Nothing is loaded from anywhere else (no scripts, fonts or
//! images), so it can be mailed or put on a file share as it is.

use super::tally::{Count, Report};
use serde::Serialize;
use std::fmt::Write;

const SCRIPT: &str = include_str!("chart.js");
const STYLE: &str = include_str!("report.css");

/// One bar of a chart as the script receives it.
#[derive(Serialize)]
struct Bar {
    label: String,
    value: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

/// One chart: `id` becomes the SVG's `data-chart`; `kind` is `bars` (horizontal) or `columns`.
#[derive(Serialize)]
struct Chart {
    id: &'static str,
    title: String,
    kind: &'static str,
    bars: Vec<Bar>,
}

#[derive(Serialize)]
struct Embedded<'a> {
    report: &'a Report,
    charts: &'a [Chart],
}

fn bars(counts: &[Count]) -> Vec<Bar> {
    counts
        .iter()
        .map(|c| Bar {
            label: c.label.clone(),
            value: c.value,
            note: None,
        })
        .collect()
}

fn chart(id: &'static str, title: &str, bars: Vec<Bar>) -> Chart {
    Chart {
        id,
        title: title.to_string(),
        kind: "bars",
        bars,
    }
}

/// The charts of a report, in page order. Labels are what the tables show: a rep pair is
/// `a + b` (ids in order), a rule is `rule (severity)`.
fn charts(r: &Report) -> Vec<Chart> {
    let l = &r.lifecycle;
    vec![
        chart("per-team", "Collisions per team", bars(&r.per_team)),
        chart(
            "per-pair",
            "Collisions per rep pair",
            r.per_pair
                .shown
                .iter()
                .map(|p| Bar {
                    label: p.label(),
                    value: p.collisions,
                    note: None,
                })
                .collect(),
        ),
        chart(
            "repeat-offenders",
            "Repeat offenders",
            r.repeat_offenders
                .shown
                .iter()
                .map(|o| Bar {
                    label: o.rep.clone(),
                    value: o.collisions,
                    note: Some(o.team.clone()),
                })
                .collect(),
        ),
        chart(
            "customers-most-reps",
            "Customers touched by the most reps",
            r.customers
                .shown
                .iter()
                .map(|c| Bar {
                    label: c.customer.clone(),
                    value: c.reps.len() as u64,
                    note: Some(format!("{} collisions", c.collisions)),
                })
                .collect(),
        ),
        chart(
            "by-rule",
            "Collisions by rule",
            r.by_rule
                .iter()
                .map(|c| Bar {
                    label: format!("{} ({})", c.rule, c.severity),
                    value: c.collisions,
                    note: None,
                })
                .collect(),
        ),
        chart(
            "by-severity",
            "Collisions by severity",
            bars(&r.by_severity),
        ),
        Chart {
            id: "per-day",
            title: "Collisions per day".to_string(),
            kind: "columns",
            bars: bars(&r.per_day),
        },
        chart(
            "reclaims-by-reason",
            "Reclaims by reason",
            bars(&l.reclaims_by_reason),
        ),
        chart(
            "reclaims-per-team",
            "Reclaims per team",
            bars(&l.reclaims_per_team),
        ),
        chart(
            "assignments-by-strategy",
            "Assignments by strategy",
            bars(&l.assignments_by_strategy),
        ),
        chart(
            "reassignments-by-resolution",
            "Reassignments by resolution",
            bars(&l.reassignments_by_resolution),
        ),
        chart(
            "recommendations-by-resolution",
            "Recommended reassignments by resolution",
            bars(&l.recommendations_by_resolution),
        ),
    ]
}

/// Escapes text for HTML element content and double-quoted attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON made safe inside a `<script>` element: no `<`, `>` or `&` can end it or open a comment.
fn script_json(value: &impl Serialize) -> String {
    serde_json::to_string(value)
        .expect("report figures serialize")
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

fn table(out: &mut String, id: &str, headers: &[&str], numeric: &[bool], rows: &[Vec<String>]) {
    if rows.is_empty() {
        let _ = writeln!(out, "<p class=\"none\" data-table=\"{id}\">None.</p>");
        return;
    }
    let _ = write!(out, "<table data-table=\"{id}\"><thead><tr>");
    for (h, n) in headers.iter().zip(numeric) {
        let _ = write!(
            out,
            "<th{}>{}</th>",
            if *n { " class=\"n\"" } else { "" },
            esc(h)
        );
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for (cell, n) in row.iter().zip(numeric) {
            let _ = write!(
                out,
                "<td{}>{}</td>",
                if *n { " class=\"n\"" } else { "" },
                esc(cell)
            );
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>\n");
}

fn count_rows(counts: &[Count]) -> Vec<Vec<String>> {
    counts
        .iter()
        .map(|c| vec![c.label.clone(), c.value.to_string()])
        .collect()
}

/// A section: heading, the chart's place, then the table.
fn section(out: &mut String, title: &str, chart_id: &str, note: &str) {
    let _ = writeln!(
        out,
        "<section><h2>{}</h2>{}<div class=\"body\"><figure class=\"chart\" data-chart-for=\"{chart_id}\"></figure>",
        esc(title),
        if note.is_empty() {
            String::new()
        } else {
            format!("<p class=\"note\">{}</p>", esc(note))
        }
    );
}

fn cut(shown: usize, total: usize) -> String {
    if shown < total {
        format!("Top {shown} of {total}.")
    } else {
        String::new()
    }
}

/// The whole page.
pub fn render(r: &Report) -> String {
    let charts = charts(r);
    let rd = &r.reading;
    let l = &r.lifecycle;
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>leadguard report: {}</title><style>{STYLE}</style></head><body>\n",
        esc(&rd.input)
    );
    let span = match (&rd.first_time, &rd.last_time) {
        (Some(a), Some(b)) => format!(" · {} to {}", esc(a), esc(b)),
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "<header><h1>leadguard report</h1><p>{}{span}</p></header>",
        esc(&rd.input)
    );
    out.push_str(
        "<noscript><p class=\"warn\">Scripts are off, so the charts are not drawn. \
         Every figure is in the tables below.</p></noscript>\n",
    );

    let cards = [
        ("collisions", r.collisions),
        ("claims", l.claims),
        ("reclaims", l.reclaims),
        ("assignments", l.assignments),
        ("reassignments", l.reassignments),
        ("recommended", l.recommendations),
        ("withdrawn", rd.withdrawn),
        ("duplicates", rd.duplicates),
        ("malformed lines", rd.malformed),
    ];
    out.push_str("<section class=\"cards\">");
    for (name, value) in cards {
        let _ = write!(
            out,
            "<div class=\"card\" data-figure=\"{}\"><b>{value}</b><span>{}</span></div>",
            esc(name),
            esc(name)
        );
    }
    out.push_str("</section>\n");
    let _ = writeln!(
        out,
        "<p class=\"note\">{} lines read; {} distinct outputs. Counted: outputs that stand — each id \
         once (redeliveries ignored), nothing a withdrawal retracted ({} withdrawals; {} named outputs \
         not in this input).</p>",
        rd.messages, rd.outputs, rd.withdrawals, rd.withdrawn_elsewhere
    );

    section(
        &mut out,
        "Collisions per team",
        "per-team",
        "A collision counts once for each distinct team among its reps.",
    );
    table(
        &mut out,
        "per-team",
        &["team", "collisions"],
        &[false, true],
        &count_rows(&r.per_team),
    );
    out.push_str("</div></section>\n");

    section(
        &mut out,
        "Collisions per rep pair",
        "per-pair",
        &format!(
            "Every pair of reps named together in a collision. {}",
            cut(r.per_pair.shown.len(), r.per_pair.total)
        ),
    );
    let rows: Vec<Vec<String>> = r
        .per_pair
        .shown
        .iter()
        .map(|p| vec![p.a.clone(), p.b.clone(), p.collisions.to_string()])
        .collect();
    table(
        &mut out,
        "per-pair",
        &["rep", "rep", "collisions"],
        &[false, false, true],
        &rows,
    );
    out.push_str("</div></section>\n");

    section(
        &mut out,
        "Repeat offenders",
        "repeat-offenders",
        &format!(
            "Reps whose own contact triggered two or more collisions. {}",
            cut(r.repeat_offenders.shown.len(), r.repeat_offenders.total)
        ),
    );
    let rows: Vec<Vec<String>> = r
        .repeat_offenders
        .shown
        .iter()
        .map(|o| vec![o.rep.clone(), o.team.clone(), o.collisions.to_string()])
        .collect();
    table(
        &mut out,
        "repeat-offenders",
        &["rep", "team", "collisions"],
        &[false, false, true],
        &rows,
    );
    out.push_str("</div></section>\n");

    section(
        &mut out,
        "Customers touched by the most reps",
        "customers-most-reps",
        &format!(
            "Distinct reps over all of the customer's collisions. {}",
            cut(r.customers.shown.len(), r.customers.total)
        ),
    );
    let rows: Vec<Vec<String>> = r
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
        .collect();
    table(
        &mut out,
        "customers-most-reps",
        &["customer", "reps", "collisions", "who"],
        &[false, true, true, false],
        &rows,
    );
    out.push_str("</div></section>\n");

    section(&mut out, "Collisions by rule", "by-rule", "");
    let rows: Vec<Vec<String>> = r
        .by_rule
        .iter()
        .map(|c| vec![c.rule.clone(), c.severity.clone(), c.collisions.to_string()])
        .collect();
    table(
        &mut out,
        "by-rule",
        &["rule", "severity", "collisions"],
        &[false, false, true],
        &rows,
    );
    out.push_str("</div></section>\n");

    section(&mut out, "Collisions by severity", "by-severity", "");
    table(
        &mut out,
        "by-severity",
        &["severity", "collisions"],
        &[false, true],
        &count_rows(&r.by_severity),
    );
    out.push_str("</div></section>\n");

    section(
        &mut out,
        "Collisions per day",
        "per-day",
        "Days as written in the outputs' own timestamps (the engine's configured time zone).",
    );
    table(
        &mut out,
        "per-day",
        &["day", "collisions"],
        &[false, true],
        &count_rows(&r.per_day),
    );
    out.push_str("</div></section>\n");

    let _ = writeln!(
        out,
        "<h2 class=\"part\">Ownership</h2><p class=\"note\">claims {} · reclaims {} · assignments {} \
         ({} of a customer with a previous owner) · reassignments {} · recommended reassignments {}</p>",
        l.claims,
        l.reclaims,
        l.assignments,
        l.assignments_from_previous_owner,
        l.reassignments,
        l.recommendations
    );
    for (title, id, what, counts) in [
        (
            "Reclaims by reason",
            "reclaims-by-reason",
            "reason_code",
            &l.reclaims_by_reason,
        ),
        (
            "Reclaims per team of the previous owner",
            "reclaims-per-team",
            "team",
            &l.reclaims_per_team,
        ),
        (
            "Assignments by strategy",
            "assignments-by-strategy",
            "strategy",
            &l.assignments_by_strategy,
        ),
        (
            "Reassignments by resolution",
            "reassignments-by-resolution",
            "resolution",
            &l.reassignments_by_resolution,
        ),
        (
            "Recommended reassignments by resolution",
            "recommendations-by-resolution",
            "resolution",
            &l.recommendations_by_resolution,
        ),
    ] {
        section(&mut out, title, id, "");
        table(
            &mut out,
            id,
            &[what, "count"],
            &[false, true],
            &count_rows(counts),
        );
        out.push_str("</div></section>\n");
    }

    out.push_str("<section><h2>Outputs by type</h2>");
    table(
        &mut out,
        "standing-by-type",
        &["type", "standing"],
        &[false, true],
        &count_rows(&rd.standing_by_type),
    );
    out.push_str("</section>\n");
    if rd.malformed > 0 {
        let _ = write!(
            out,
            "<section><h2>Malformed lines</h2><p class=\"note\">{} line(s) could not be read as \
             leadguard outputs and are not counted{}.</p>",
            rd.malformed,
            if (rd.malformed_listed.len() as u64) < rd.malformed {
                format!("; the first {} are listed", rd.malformed_listed.len())
            } else {
                String::new()
            }
        );
        let rows: Vec<Vec<String>> = rd
            .malformed_listed
            .iter()
            .map(|m| vec![m.line.to_string(), m.reason.clone()])
            .collect();
        table(
            &mut out,
            "malformed",
            &["line", "problem"],
            &[true, false],
            &rows,
        );
        out.push_str("</section>\n");
    }

    let _ = write!(
        out,
        "<script type=\"application/json\" id=\"report-data\">{}</script>\n<script>{SCRIPT}</script>\n</body></html>\n",
        script_json(&Embedded {
            report: r,
            charts: &charts
        })
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_json_cannot_close_its_script_element() {
        let s =
            script_json(&serde_json::json!({"label": "</script><script>alert(1)</script> & <!--"}));
        assert!(
            !s.contains('<') && !s.contains('>') && !s.contains('&'),
            "{s}"
        );
        let back: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back["label"], "</script><script>alert(1)</script> & <!--");
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(esc("<b a=\"1\">&'"), "&lt;b a=&quot;1&quot;&gt;&amp;&#39;");
    }
}
