//! Per-source field mappings (`sources:`): how to read a publisher's own JSON shape.
//!
//! A call-center export or an email gateway won't publish leadguard's canonical shape. A source
//! mapping names, for each canonical field, a JSON Pointer into the publisher's message, a
//! constant, and optionally a table that translates the publisher's words (`OUT` → `outbound`).

use super::rules::scalar_of;
use super::yaml::{Node, Reader, Value};

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

pub(super) fn read_source(r: &mut Reader<'_>, node: &Node) -> Option<SourceMapping> {
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
    let name = m.require(r, "name").and_then(|n| r.string(n, "`name`"));
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
            pattern if pattern.contains('%') => TimeFormat::Local(pattern.to_string()),
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
                let mut table = Vec::new();
                for (k, val) in entries {
                    match (scalar_of(k), scalar_of(val)) {
                        (Some(k), Some(val)) => table.push((k.to_string(), val.to_string())),
                        _ => r.error(
                            k,
                            format!("`values.{fname}`: each entry maps one word to one word"),
                        ),
                    }
                }
                values.push((Field::parse(fname).expect("listed"), table));
            }
            vm.finish(r);
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
