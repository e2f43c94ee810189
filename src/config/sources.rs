//! Per-source field mappings (`sources:`): how to read a publisher's own JSON shape.
//!
//! A call-center export or an email gateway won't publish leadguard's canonical shape. A source
//! mapping names, for each canonical field, a JSON Pointer into the publisher's message, a
//! constant, and optionally a table that translates the publisher's words (`OUT` → `outbound`).

use super::rules::{scalar_of, NameAt};
use super::yaml::{Node, Reader, Value};
use crate::event::{ContactKind, Direction, OwnershipAction};
use crate::time::Timestamp;

/// A canonical field a mapping can fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    EventId,
    Kind,
    Direction,
    OccurredAt,
    Source,
    RepId,
    RepTeam,
    RepRole,
    CustomerId,
    CustomerPhone,
    CustomerEmail,
    CustomerCompany,
    CustomerRegion,
    CustomerIndustry,
    CustomerTier,
    CustomerProductLine,
    FromRepId,
    AccountTeam,
}

impl Field {
    pub const ALL: [(&'static str, Field); 18] = [
        ("event_id", Field::EventId),
        ("kind", Field::Kind),
        ("direction", Field::Direction),
        ("occurred_at", Field::OccurredAt),
        ("source", Field::Source),
        ("rep.id", Field::RepId),
        ("rep.team", Field::RepTeam),
        ("rep.role", Field::RepRole),
        ("customer.id", Field::CustomerId),
        ("customer.phone", Field::CustomerPhone),
        ("customer.email", Field::CustomerEmail),
        ("customer.company", Field::CustomerCompany),
        ("customer.region", Field::CustomerRegion),
        ("customer.industry", Field::CustomerIndustry),
        ("customer.tier", Field::CustomerTier),
        ("customer.product_line", Field::CustomerProductLine),
        ("from_rep.id", Field::FromRepId),
        ("account_team", Field::AccountTeam),
    ];

    pub fn name(self) -> &'static str {
        Field::ALL
            .iter()
            .find(|(_, f)| *f == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }

    fn parse(s: &str) -> Option<Field> {
        Field::ALL.iter().find(|(n, _)| *n == s).map(|(_, f)| *f)
    }
}

/// How a source writes `occurred_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeFormat {
    /// RFC 3339 with offset (the canonical form).
    Rfc3339,
    /// Unix epoch milliseconds (number or numeric string).
    EpochMillis,
    /// Unix epoch seconds.
    EpochSeconds,
    /// A zone-less strftime pattern, read in `settings.time_zone`.
    Local(String),
}

/// One entry of `sources:`.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceMapping {
    pub name: String,
    /// Canonical field → JSON Pointer (RFC 6901) into the message.
    pub fields: Vec<(Field, String)>,
    /// Canonical field → fixed value.
    pub constants: Vec<(Field, String)>,
    /// Canonical field → (publisher's word → canonical word).
    pub values: Vec<(Field, Vec<(String, String)>)>,
    pub time_format: TimeFormat,
    pub defined_at: String,
}

impl SourceMapping {
    pub fn pointer(&self, f: Field) -> Option<&str> {
        self.fields
            .iter()
            .find(|(x, _)| *x == f)
            .map(|(_, p)| p.as_str())
    }
    pub fn constant(&self, f: Field) -> Option<&str> {
        self.constants
            .iter()
            .find(|(x, _)| *x == f)
            .map(|(_, p)| p.as_str())
    }
    /// Translates a publisher's word through `values:`, if a table exists for the field.
    pub fn translate<'a>(&'a self, f: Field, word: &'a str) -> Result<&'a str, String> {
        match self.values.iter().find(|(x, _)| *x == f) {
            None => Ok(word),
            Some((_, table)) => table
                .iter()
                .find(|(from, _)| from == word)
                .map(|(_, to)| to.as_str())
                .ok_or_else(|| {
                    format!(
                        "`{word}` is not in source `{}`'s value table for `{}`",
                        self.name,
                        f.name()
                    )
                }),
        }
    }
}

const FIELD_NAMES: &[&str] = &[
    "event_id",
    "kind",
    "direction",
    "occurred_at",
    "source",
    "rep.id",
    "rep.team",
    "rep.role",
    "customer.id",
    "customer.phone",
    "customer.email",
    "customer.company",
    "customer.region",
    "customer.industry",
    "customer.tier",
    "customer.product_line",
    "from_rep.id",
    "account_team",
];

/// Whether `ingest` accepts `word` for field `f` once a mapping has produced it, and if not,
/// what it accepts. Only `kind` and `direction` are words from a fixed set; the parser trims
/// every field and reads a blank one as absent (a blank `direction` is the default, outbound).
/// A constant or a value-table target that fails here would refuse every event that uses it,
/// so `validate` says so rather than the dead letters.
fn check_word(f: Field, word: &str) -> Result<(), String> {
    let word = word.trim();
    match f {
        Field::Kind => {
            if ContactKind::parse(word).is_some() || OwnershipAction::parse(word).is_some() {
                return Ok(());
            }
            let names =
                |it: &mut dyn Iterator<Item = &'static str>| it.collect::<Vec<_>>().join(", ");
            Err(format!(
                "`{word}` is not an event kind; expected one of {} (activity) or {} (ownership)",
                names(&mut ContactKind::ALL.iter().map(|k| k.as_str())),
                names(&mut OwnershipAction::ALL.iter().map(|a| a.as_str())),
            ))
        }
        Field::Direction => {
            if word.is_empty() || Direction::ALL.iter().any(|d| d.as_str() == word) {
                return Ok(());
            }
            let names: Vec<&str> = Direction::ALL.iter().map(|d| d.as_str()).collect();
            Err(format!(
                "`{word}` is not a direction; expected {}",
                names.join(" or ")
            ))
        }
        _ => Ok(()),
    }
}

/// Checks a strftime pattern by using it as `ingest` will: a sample time is written with it
/// and read back with [`Timestamp::parse_local`]. That refuses specifiers chrono doesn't know
/// (`%Q`) and patterns that can't name a moment (no date, or no time of day), which would
/// otherwise refuse every event of the source.
fn check_time_pattern(pattern: &str) -> Result<(), String> {
    use chrono::format::{Item, StrftimeItems};
    use chrono::TimeZone;
    use std::fmt::Write;
    const HELP: &str =
        "see https://docs.rs/chrono/latest/chrono/format/strftime/ (e.g. \"%Y-%m-%d %H:%M:%S\")";
    if StrftimeItems::new(pattern).any(|i| matches!(i, Item::Error)) {
        // Name the first specifier chrono refuses on its own (each runs to the next % or
        // space), so the operator knows which to fix.
        let mut bad = None;
        let mut rest = pattern;
        while let Some(i) = rest.find('%') {
            rest = &rest[i..];
            if let Some(after) = rest.strip_prefix("%%") {
                rest = after;
                continue;
            }
            let end = rest[1..]
                .find(|c: char| c == '%' || c.is_whitespace())
                .map_or(rest.len(), |e| e + 1);
            let spec = &rest[..end];
            if StrftimeItems::new(spec).any(|i| matches!(i, Item::Error)) {
                bad = Some(spec);
                break;
            }
            rest = &rest[end..];
        }
        return Err(match bad {
            Some(spec) => format!(
                "`{pattern}` is not a time pattern chrono can use: `{spec}` is not a strftime specifier; {HELP}"
            ),
            None => format!("`{pattern}` is not a time pattern chrono can use; {HELP}"),
        });
    }
    let sample = chrono::FixedOffset::east_opt(0)
        .expect("a zero offset")
        .with_ymd_and_hms(2026, 11, 2, 9, 31, 2)
        .single()
        .expect("a plain date");
    let mut written = String::new();
    if write!(written, "{}", sample.format(pattern)).is_err() {
        return Err(format!(
            "`{pattern}` is not a time pattern chrono can use; {HELP}"
        ));
    }
    Timestamp::parse_local(&written, pattern, chrono_tz::UTC)
        .map(|_| ())
        .map_err(|e| {
            format!(
                "`{pattern}` can't be read back ({e}); a pattern needs a date and a time of day; {HELP}"
            )
        })
}

pub(super) fn read_source(
    r: &mut Reader<'_>,
    node: &Node,
    names: &mut Vec<NameAt>,
) -> Option<SourceMapping> {
    let m = r.map(
        node,
        "a source",
        &[
            "name",
            "description",
            "time_format",
            "fields",
            "constants",
            "values",
        ],
    )?;
    let name_node = m.require(r, "name");
    let name = name_node.and_then(|n| r.name(n, "`name`"));
    if let (Some(n), Some(name)) = (name_node, &name) {
        names.push(NameAt::new(r, n, name));
    }
    let source = format!("source `{}`", name.as_deref().unwrap_or("?"));
    if let Some(n) = m.get("description") {
        r.string(n, "`description`");
    }
    let time_format = match m
        .get("time_format")
        .and_then(|n| r.string(n, "`time_format`"))
    {
        None => TimeFormat::Rfc3339,
        Some(s) => match s.as_str() {
            "rfc3339" => TimeFormat::Rfc3339,
            "epoch_ms" => TimeFormat::EpochMillis,
            "epoch_s" => TimeFormat::EpochSeconds,
            pattern if pattern.contains('%') => {
                if let Err(e) = check_time_pattern(pattern) {
                    r.error(
                        m.get("time_format").unwrap_or(node),
                        format!("{source}: `time_format`: {e}"),
                    );
                }
                TimeFormat::Local(pattern.to_string())
            }
            _ => {
                r.error(
                    m.get("time_format").unwrap_or(node),
                    format!("`time_format`: `{s}` is not rfc3339, epoch_ms, epoch_s or a strftime pattern like \"%Y-%m-%d %H:%M:%S\""),
                );
                TimeFormat::Rfc3339
            }
        },
    };
    let mut fields = Vec::new();
    if let Some(n) = m.get("fields") {
        if let Some(fm) = r.map(n, "`fields`", FIELD_NAMES) {
            for &fname in FIELD_NAMES {
                if let Some(v) = fm.get(fname) {
                    if let Some(p) = r.string(v, &format!("`fields.{fname}`")) {
                        if !(p.is_empty() || p.starts_with('/')) {
                            r.error(v, format!("`fields.{fname}`: `{p}` is not a JSON Pointer; pointers start with / (e.g. /caller/number)"));
                        } else {
                            fields.push((Field::parse(fname).expect("listed"), p));
                        }
                    }
                }
            }
            fm.finish(r);
        }
    }
    let mut constants = Vec::new();
    // Where each constant is written, to check it once the value tables are read.
    let mut constant_nodes: Vec<(Field, &Node)> = Vec::new();
    if let Some(n) = m.get("constants") {
        if let Some(cm) = r.map(n, "`constants`", FIELD_NAMES) {
            for &fname in FIELD_NAMES {
                if let Some(v) = cm.get(fname) {
                    if let Some(c) = r.string(v, &format!("`constants.{fname}`")) {
                        let f = Field::parse(fname).expect("listed");
                        if fields.iter().any(|(x, _)| *x == f) {
                            r.error(v, format!("`{fname}` has both a pointer in `fields` and a constant; keep one"));
                        }
                        constants.push((f, c));
                        constant_nodes.push((f, v));
                    }
                }
            }
            cm.finish(r);
        }
    }
    let mut values = Vec::new();
    if let Some(n) = m.get("values") {
        if let Some(vm) = r.map(n, "`values`", FIELD_NAMES) {
            for &fname in FIELD_NAMES {
                let Some(v) = vm.get(fname) else { continue };
                let Value::Map(entries) = &v.value else {
                    r.error(v, format!("`values.{fname}` must map the source's words to canonical ones, e.g. {{OUT: outbound}}"));
                    continue;
                };
                let field = Field::parse(fname).expect("listed");
                let mut table = Vec::new();
                for (k, val) in entries {
                    match (scalar_of(k), scalar_of(val)) {
                        (Some(k), Some(to)) => {
                            if let Err(e) = check_word(field, to) {
                                r.error(val, format!("{source}: `values.{fname}.{k}`: {e}"));
                            }
                            table.push((k.to_string(), to.to_string()));
                        }
                        _ => r.error(
                            k,
                            format!("`values.{fname}`: each entry maps one word to one word"),
                        ),
                    }
                }
                values.push((field, table));
            }
            vm.finish(r);
        }
    }
    // A constant passes through its field's value table, as `SourceMapping::translate` does
    // for every word; the table's targets were checked above.
    for ((f, c), (_, at)) in constants.iter().zip(&constant_nodes) {
        let result = match values.iter().find(|(x, _)| x == f) {
            Some((_, table)) if !table.iter().any(|(from, _)| from == c) => Err(format!(
                "`{c}` is not in `values.{}`, so every event would be refused; add it there or remove the table",
                f.name()
            )),
            Some(_) => Ok(()),
            None => check_word(*f, c),
        };
        if let Err(e) = result {
            r.error(at, format!("{source}: `constants.{}`: {e}", f.name()));
        }
    }
    for required in [Field::EventId, Field::Kind, Field::OccurredAt, Field::RepId] {
        if !fields.iter().any(|(f, _)| *f == required)
            && !constants.iter().any(|(f, _)| *f == required)
        {
            r.error(
                node,
                format!(
                    "source `{}` does not say where `{}` comes from (add it under `fields` or `constants`)",
                    name.as_deref().unwrap_or("?"),
                    required.name()
                ),
            );
        }
    }
    let has_customer = [
        Field::CustomerId,
        Field::CustomerPhone,
        Field::CustomerEmail,
        Field::CustomerCompany,
    ]
    .iter()
    .any(|c| fields.iter().any(|(f, _)| f == c));
    if !has_customer {
        r.error(
            node,
            format!(
                "source `{}` maps no customer identifier (customer.id, .phone, .email or .company)",
                name.as_deref().unwrap_or("?")
            ),
        );
    }
    m.finish(r);
    Some(SourceMapping {
        name: name?,
        fields,
        constants,
        values,
        time_format,
        defined_at: format!("{}:{}", r.file.display(), node.line),
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Rules;
    use std::path::Path;

    const BASE: &str = "sources:\n  - name: cc\n    fields: {event_id: /id, occurred_at: /t, rep.id: /a, customer.phone: /p, direction: /d}\n";

    /// The problems of a source: `BASE` followed by `extra` (indented under the source).
    fn problems(extra: &str) -> Vec<String> {
        match Rules::from_texts([(Path::new("s.yaml"), format!("{BASE}{extra}").as_str())]) {
            Ok(_) => Vec::new(),
            Err(errs) => errs.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn a_time_format_chrono_cannot_use_is_refused() {
        let p = problems("    time_format: \"%Q garbage\"\n    constants: {kind: call}\n");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("s.yaml:4:18: source `cc`: `time_format`: `%Q garbage` is not a time pattern chrono can use: `%Q` is not a strftime specifier"),
            "{p:?}"
        );
        // Known specifiers, but no date: every time would be refused as well.
        let p = problems("    time_format: \"%H:%M:%S\"\n    constants: {kind: call}\n");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("`%H:%M:%S` can't be read back"), "{p:?}");
        for ok in [
            "%Y-%m-%d %H:%M:%S",
            "%d/%m/%Y %H:%M",
            "%Y%m%d%H%M%S%.3f",
            "%Y-%m-%dT%H:%M:%S%:z",
            "%s",
            "100%% %Y-%m-%d %H:%M",
        ] {
            let p = problems(&format!(
                "    time_format: \"{ok}\"\n    constants: {{kind: call}}\n"
            ));
            assert!(p.is_empty(), "{ok}: {p:?}");
        }
    }

    #[test]
    fn constants_and_value_tables_must_give_words_the_parser_accepts() {
        let p = problems(
            "    constants: {kind: fax}\n    values:\n      direction: {OUT: sideways, IN: inbound}\n",
        );
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p[0].starts_with("s.yaml:4:23: source `cc`: `constants.kind`: `fax` is not an event kind; expected one of call, email, visit, meeting, message, complaint (activity) or assign, release, transfer, lock, unlock, won, claim (ownership)"),
            "{p:?}"
        );
        assert!(
            p[1].starts_with("s.yaml:6:24: source `cc`: `values.direction.OUT`: `sideways` is not a direction; expected outbound or inbound"),
            "{p:?}"
        );
        // A constant goes through its field's table, as every word does when parsing.
        let p = problems("    constants: {kind: CALL}\n    values:\n      kind: {PHONE: call}\n");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("`CALL` is not in `values.kind`"), "{p:?}");
        assert!(problems(
            "    constants: {kind: CALL}\n    values:\n      kind: {CALL: call, WON: won}\n"
        )
        .is_empty());
        assert!(problems("    constants: {kind: claim}\n").is_empty());
    }
}
