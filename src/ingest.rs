//! Bytes in, canonical events out: parsing, field mapping, validation and identifier
//! normalization, with a clear reason for everything refused.
//!
//! This is a pure function of its input and the rules (no IO, no clock). Every refusal is a
//! [`Rejection`] naming what is wrong and who must act; the edge writes it, with the original
//! bytes, to the dead-letter output.

use crate::config::{Field, Rules, SourceMapping, TimeFormat};
use crate::event::{
    Activity, ContactKind, CustomerRef, Digests, Direction, Event, EventId, Ownership,
    OwnershipAction, RepRef,
};
use crate::identity::normalize;
use crate::time::Timestamp;
use serde::Deserialize;
use std::borrow::Cow;
use std::fmt;

mod canonical;

/// Why an input message was refused. Every variant is an input problem: the publisher must fix
/// it; retrying the same bytes never helps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// Larger than `settings.max_message_bytes`.
    Oversized,
    /// Not UTF-8 text.
    InvalidUtf8,
    /// Not one JSON object.
    MalformedJson,
    /// A required field is absent or empty.
    MissingField,
    /// A field has the wrong JSON type.
    WrongType,
    /// `kind` (or `direction`) is not a word leadguard knows.
    UnknownKind,
    /// `occurred_at` is unreadable, zone-less or implausible.
    BadTimestamp,
    /// No usable customer identifier (all were invalid).
    BadIdentifier,
    /// The event claims a time too far ahead of the engine's clock.
    FutureTimestamp,
    /// The event is older than the allowed lateness: too late to place in order.
    TooLate,
    /// Its identifiers belong to several customers (shared numbers) and it names no id.
    AmbiguousCustomer,
}

impl RejectReason {
    pub const ALL: [RejectReason; 11] = [
        RejectReason::Oversized,
        RejectReason::InvalidUtf8,
        RejectReason::MalformedJson,
        RejectReason::MissingField,
        RejectReason::WrongType,
        RejectReason::UnknownKind,
        RejectReason::BadTimestamp,
        RejectReason::BadIdentifier,
        RejectReason::FutureTimestamp,
        RejectReason::TooLate,
        RejectReason::AmbiguousCustomer,
    ];

    /// The stable name used in dead letters and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Oversized => "oversized",
            RejectReason::InvalidUtf8 => "invalid_utf8",
            RejectReason::MalformedJson => "malformed_json",
            RejectReason::MissingField => "missing_field",
            RejectReason::WrongType => "wrong_type",
            RejectReason::UnknownKind => "unknown_kind",
            RejectReason::BadTimestamp => "bad_timestamp",
            RejectReason::BadIdentifier => "bad_identifier",
            RejectReason::FutureTimestamp => "future_timestamp",
            RejectReason::TooLate => "too_late",
            RejectReason::AmbiguousCustomer => "ambiguous_customer",
        }
    }
}

/// An input refused, with a reason a publisher can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: RejectReason,
    pub detail: String,
}

impl Rejection {
    pub fn new(reason: RejectReason, detail: impl Into<String>) -> Rejection {
        Rejection {
            reason,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason.as_str(), self.detail)
    }
}

/// Turns messages into events under one set of rules.
#[derive(Debug, Clone)]
pub struct Ingest {
    rules: std::sync::Arc<Rules>,
    /// Identifiers dropped because they were invalid while others remained usable.
    pub dropped_identifiers: u64,
}

/// The canonical wire shape. Strings borrow from the input where JSON has no escapes.
#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(borrow)]
    event_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    direction: Option<Cow<'a, str>>,
    #[serde(borrow)]
    occurred_at: Option<Cow<'a, str>>,
    #[serde(borrow)]
    source: Option<Cow<'a, str>>,
    #[serde(borrow)]
    rep: Option<RepWire<'a>>,
    #[serde(borrow)]
    from_rep: Option<RepWire<'a>>,
    #[serde(borrow)]
    customer: Option<CustomerWire<'a>>,
    #[serde(borrow)]
    account_team: Option<Vec<Cow<'a, str>>>,
    #[allow(dead_code)]
    attributes: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct RepWire<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    team: Option<Cow<'a, str>>,
    #[serde(borrow)]
    role: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct CustomerWire<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    phone: Option<Cow<'a, str>>,
    #[serde(borrow)]
    email: Option<Cow<'a, str>>,
    #[serde(borrow)]
    company: Option<Cow<'a, str>>,
    #[serde(borrow)]
    region: Option<Cow<'a, str>>,
    #[serde(borrow)]
    industry: Option<Cow<'a, str>>,
    #[serde(borrow)]
    tier: Option<Cow<'a, str>>,
    #[serde(borrow)]
    product_line: Option<Cow<'a, str>>,
}

/// Every canonical field as text, whichever way it was read.
#[derive(Default)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct Raw<'a> {
    event_id: Option<Cow<'a, str>>,
    kind: Option<Cow<'a, str>>,
    direction: Option<Cow<'a, str>>,
    occurred_at: Option<Cow<'a, str>>,
    source: Option<Cow<'a, str>>,
    rep_id: Option<Cow<'a, str>>,
    rep_team: Option<Cow<'a, str>>,
    rep_role: Option<Cow<'a, str>>,
    customer_id: Option<Cow<'a, str>>,
    phone: Option<Cow<'a, str>>,
    email: Option<Cow<'a, str>>,
    company: Option<Cow<'a, str>>,
    region: Option<Cow<'a, str>>,
    industry: Option<Cow<'a, str>>,
    tier: Option<Cow<'a, str>>,
    product_line: Option<Cow<'a, str>>,
    from_rep_id: Option<Cow<'a, str>>,
    account_team: Vec<Cow<'a, str>>,
}

fn own(v: Option<Cow<'_, str>>) -> Option<String> {
    text(&v).map(str::to_string)
}

/// A field's text, trimmed; `None` when absent or blank. [`own`] copies it for the event; a
/// field only read while parsing uses it in place.
fn text<'r>(v: &'r Option<Cow<'_, str>>) -> Option<&'r str> {
    v.as_deref().map(trim).filter(|s| !s.is_empty())
}

/// `str::trim`, answered at once when the text starts and ends with a visible ASCII character,
/// as almost every field does: a message has a dozen fields, and the general search for
/// Unicode whitespace at both ends cost more than reading the field.
fn trim(s: &str) -> &str {
    let visible = |b: &u8| (0x21..=0x7e).contains(b);
    match s.as_bytes() {
        [first, .., last] if visible(first) && visible(last) => s,
        [only] if visible(only) => s,
        _ => s.trim(),
    }
}

impl Ingest {
    pub fn new(rules: std::sync::Arc<Rules>) -> Ingest {
        Ingest {
            rules,
            dropped_identifiers: 0,
        }
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Reads the next messages under new rules (a rules reload).
    pub fn replace_rules(&mut self, rules: std::sync::Arc<Rules>) {
        self.rules = rules;
    }

    /// Parses one message. `source` is the mapping of the input it came from (None: canonical
    /// shape); `default_source` names the publisher when the message doesn't.
    pub fn parse(
        &mut self,
        bytes: &[u8],
        source: Option<&SourceMapping>,
        default_source: &str,
    ) -> Result<Event, Rejection> {
        let max = self.rules.settings.max_message_bytes;
        if bytes.len() > max {
            return Err(Rejection::new(
                RejectReason::Oversized,
                format!(
                    "message is {} bytes; the limit is {max} (settings.max_message_bytes)",
                    bytes.len()
                ),
            ));
        }
        // A byte-order mark is no part of the JSON: Windows tools start a file (so its first
        // line) with one, and that event would be lost for it.
        let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
        let text = std::str::from_utf8(bytes).map_err(|e| {
            Rejection::new(
                RejectReason::InvalidUtf8,
                format!("not UTF-8 text: {e}; publish JSON encoded as UTF-8"),
            )
        })?;
        if !text.trim_start().starts_with('{') {
            return Err(Rejection::new(
                RejectReason::MalformedJson,
                "expected one JSON object per message (a line starting with `{`)",
            ));
        }
        let event = match source {
            None => {
                // Plain messages are read directly; the general parser reads the rest and
                // explains what is wrong with them.
                let raw = match canonical::read(text) {
                    Some(raw) => raw,
                    None => {
                        let wire: Wire<'_> =
                            serde_json::from_str(text).map_err(|e| wire_error(text, e))?;
                        canonical_raw(wire)
                    }
                };
                self.finish(raw, None, default_source)
            }
            Some(mapping) => {
                let value: serde_json::Value =
                    serde_json::from_str(text).map_err(|e| wire_error(text, e))?;
                if !value.is_object() {
                    return Err(Rejection::new(
                        RejectReason::MalformedJson,
                        "expected one JSON object per message",
                    ));
                }
                let raw = mapped_raw(text, &value, mapping)?;
                self.finish(raw, Some(mapping), default_source)
            }
        }?;
        // Here, on the parsing thread, rather than on the core's.
        event.compute_digests();
        Ok(event)
    }

    fn finish(
        &mut self,
        raw: Raw<'_>,
        mapping: Option<&SourceMapping>,
        default_source: &str,
    ) -> Result<Event, Rejection> {
        let missing = |f: &str| {
            Rejection::new(
                RejectReason::MissingField,
                format!("required field `{f}` is missing or empty"),
            )
        };
        let event_id = text(&raw.event_id)
            .map(EventId::new)
            .ok_or_else(|| missing("event_id"))?;
        let kind_text = text(&raw.kind).ok_or_else(|| missing("kind"))?;
        let occurred_text = text(&raw.occurred_at).ok_or_else(|| missing("occurred_at"))?;
        let source = own(raw.source).unwrap_or_else(|| default_source.to_string());
        let occurred_at = self.read_time(occurred_text, mapping)?;
        let rep = own(raw.rep_id).map(|id| RepRef {
            id,
            team: own(raw.rep_team),
            role: own(raw.rep_role),
        });
        let customer = self.customer(
            raw.customer_id,
            raw.phone,
            raw.email,
            raw.company,
            raw.region,
            raw.industry,
            raw.tier,
            raw.product_line,
        )?;
        if let Some(kind) = ContactKind::parse(kind_text) {
            let direction = match text(&raw.direction) {
                None | Some("outbound") => Direction::Outbound,
                Some("inbound") => Direction::Inbound,
                Some(other) => {
                    return Err(Rejection::new(
                        RejectReason::UnknownKind,
                        format!("`direction` is `{other}`; expected outbound or inbound"),
                    ))
                }
            };
            let rep = rep.ok_or_else(|| missing("rep.id"))?;
            return Ok(Event::Activity(Activity {
                event_id,
                source,
                kind,
                direction,
                occurred_at,
                rep,
                customer,
                digests: Digests::default(),
            }));
        }
        if let Some(action) = OwnershipAction::parse(kind_text) {
            if customer.id.is_none() {
                return Err(Rejection::new(
                    RejectReason::MissingField,
                    format!(
                        "`{}` is an ownership event: it must name the CRM's customer id (`customer.id`)",
                        action.as_str()
                    ),
                ));
            }
            if matches!(
                action,
                OwnershipAction::Assign | OwnershipAction::Transfer | OwnershipAction::Claim
            ) && rep.is_none()
            {
                return Err(missing("rep.id (the new owner)"));
            }
            return Ok(Event::Ownership(Ownership {
                event_id,
                source,
                action,
                occurred_at,
                customer,
                rep,
                from_rep: own(raw.from_rep_id).map(|id| RepRef {
                    id,
                    ..RepRef::default()
                }),
                account_team: raw
                    .account_team
                    .into_iter()
                    .filter_map(|c| own(Some(c)))
                    .collect(),
                digests: Digests::default(),
            }));
        }
        // The words come from the kinds' one definition, so the list can't leave one out.
        Err(Rejection::new(
            RejectReason::UnknownKind,
            format!(
                "`kind` is `{}`; expected one of {} (activity) or {} (ownership)",
                truncate(kind_text, 40),
                word_list(&ContactKind::ALL, ContactKind::as_str),
                word_list(&OwnershipAction::ALL, OwnershipAction::as_str),
            ),
        ))
    }

    fn read_time(
        &self,
        text: &str,
        mapping: Option<&SourceMapping>,
    ) -> Result<Timestamp, Rejection> {
        let format = mapping
            .map(|m| &m.time_format)
            .unwrap_or(&TimeFormat::Rfc3339);
        let parsed = match format {
            TimeFormat::Rfc3339 => Timestamp::parse_rfc3339(text),
            TimeFormat::EpochMillis | TimeFormat::EpochSeconds => {
                let scale = if *format == TimeFormat::EpochSeconds {
                    1000
                } else {
                    1
                };
                match text.parse::<i64>() {
                    Ok(n) => Timestamp::from_epoch_millis(n.saturating_mul(scale)),
                    Err(_) => Err(crate::time::TimeError(format!(
                        "`{}` is not a whole number of epoch units",
                        truncate(text, 40)
                    ))),
                }
            }
            TimeFormat::Local(pattern) => {
                Timestamp::parse_local(text, pattern, self.rules.settings.time_zone)
            }
        };
        parsed
            .map_err(|e| Rejection::new(RejectReason::BadTimestamp, format!("`occurred_at`: {e}")))
    }

    #[allow(clippy::too_many_arguments)]
    fn customer(
        &mut self,
        id: Option<Cow<'_, str>>,
        phone: Option<Cow<'_, str>>,
        email: Option<Cow<'_, str>>,
        company: Option<Cow<'_, str>>,
        region: Option<Cow<'_, str>>,
        industry: Option<Cow<'_, str>>,
        tier: Option<Cow<'_, str>>,
        product_line: Option<Cow<'_, str>>,
    ) -> Result<CustomerRef, Rejection> {
        let ident = &self.rules.identity;
        let mut problems: Vec<String> = Vec::new();
        let mut keep = |r: Result<String, normalize::NormalizeError>, what: &str| match r {
            Ok(v) => Some(v),
            Err(e) => {
                problems.push(format!("{what}: {e}"));
                None
            }
        };
        let phone = text(&phone).and_then(|p| {
            keep(
                normalize::normalize_phone(p, ident.default_region),
                "customer.phone",
            )
        });
        let email = text(&email).and_then(|e| {
            keep(
                normalize::normalize_email(e, ident.strip_email_plus_tags),
                "customer.email",
            )
        });
        let company =
            text(&company).and_then(|c| keep(normalize::normalize_company(c), "customer.company"));
        let c = CustomerRef {
            id: own(id),
            phone,
            email,
            company,
            region: own(region),
            industry: own(industry),
            tier: own(tier),
            product_line: own(product_line),
        };
        if !c.has_identifier() {
            return Err(if problems.is_empty() {
                Rejection::new(
                    RejectReason::MissingField,
                    "`customer` needs at least one of id, phone, email, company",
                )
            } else {
                Rejection::new(RejectReason::BadIdentifier, problems.join("; "))
            });
        }
        self.dropped_identifiers += problems.len() as u64;
        Ok(c)
    }
}

fn canonical_raw(w: Wire<'_>) -> Raw<'_> {
    let (rep_id, rep_team, rep_role) = match w.rep {
        Some(r) => (r.id, r.team, r.role),
        None => (None, None, None),
    };
    let c = w.customer.unwrap_or(CustomerWire {
        id: None,
        phone: None,
        email: None,
        company: None,
        region: None,
        industry: None,
        tier: None,
        product_line: None,
    });
    Raw {
        event_id: w.event_id,
        kind: w.kind,
        direction: w.direction,
        occurred_at: w.occurred_at,
        source: w.source,
        rep_id,
        rep_team,
        rep_role,
        customer_id: c.id,
        phone: c.phone,
        email: c.email,
        company: c.company,
        region: c.region,
        industry: c.industry,
        tier: c.tier,
        product_line: c.product_line,
        from_rep_id: w.from_rep.and_then(|r| r.id),
        account_team: w.account_team.unwrap_or_default(),
    }
}

/// A byte-order mark: U+FEFF in UTF-8.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads a publisher's own shape (`message`, read into `value`) through its mapping.
fn mapped_raw<'a>(
    message: &'a str,
    value: &'a serde_json::Value,
    m: &'a SourceMapping,
) -> Result<Raw<'a>, Rejection> {
    use serde_json::Value;
    let get = |f: Field| -> Result<Option<Cow<'a, str>>, Rejection> {
        let word: Cow<'a, str> = if let Some(c) = m.constant(f) {
            Cow::Borrowed(c)
        } else if let Some(p) = m.pointer(f) {
            match value.pointer(p) {
                // Null is absent, as in the canonical shape.
                None | Some(Value::Null) => return Ok(None),
                Some(Value::String(s)) => Cow::Borrowed(s.as_str()),
                Some(Value::Number(n)) => number_text(message, p, n),
                // Not read as text: `true` names no event, rep or customer, and the canonical
                // shape refuses it too.
                Some(Value::Bool(b)) => {
                    return Err(not_text(p, f, m, &format!("`{b}`, a boolean")))
                }
                Some(Value::Object(_)) => return Err(not_text(p, f, m, "an object")),
                Some(Value::Array(_)) => return Err(not_text(p, f, m, "a list")),
            }
        } else {
            return Ok(None);
        };
        match m.translate(f, &word) {
            Ok(x) if x == word.as_ref() => Ok(Some(word)),
            Ok(x) => Ok(Some(Cow::Owned(x.to_string()))),
            Err(e) => Err(Rejection::new(RejectReason::UnknownKind, e)),
        }
    };
    let account_team = match m.pointer(Field::AccountTeam) {
        None => Vec::new(),
        Some(p) => match value.pointer(p) {
            None | Some(Value::Null) => Vec::new(),
            // Rep ids, read as text as every other mapped field: a list that holds anything
            // else is refused, never shortened (a dropped member would lose an exemption).
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(Cow::Borrowed(s.as_str())),
                    Value::Number(n) => Ok(number_text(message, &format!("{p}/{i}"), n)),
                    Value::Null => Err("null"),
                    Value::Bool(_) => Err("a boolean"),
                    Value::Object(_) => Err("an object"),
                    Value::Array(_) => Err("a list"),
                })
                .collect::<Result<_, _>>()
                .map_err(|what| {
                    Rejection::new(
                        RejectReason::WrongType,
                        format!(
                            "`{p}` (mapped to `account_team` by source `{}`) holds {what}; expected a list of rep ids (text or numbers)",
                            m.name
                        ),
                    )
                })?,
            Some(Value::String(_) | Value::Number(_)) => {
                return Err(not_list(p, m, "a single value"))
            }
            Some(Value::Bool(_)) => return Err(not_list(p, m, "a boolean")),
            Some(Value::Object(_)) => return Err(not_list(p, m, "an object")),
        },
    };
    Ok(Raw {
        event_id: get(Field::EventId)?,
        kind: get(Field::Kind)?,
        direction: get(Field::Direction)?,
        occurred_at: get(Field::OccurredAt)?,
        source: get(Field::Source)?,
        rep_id: get(Field::RepId)?,
        rep_team: get(Field::RepTeam)?,
        rep_role: get(Field::RepRole)?,
        customer_id: get(Field::CustomerId)?,
        phone: get(Field::CustomerPhone)?,
        email: get(Field::CustomerEmail)?,
        company: get(Field::CustomerCompany)?,
        region: get(Field::CustomerRegion)?,
        industry: get(Field::CustomerIndustry)?,
        tier: get(Field::CustomerTier)?,
        product_line: get(Field::CustomerProductLine)?,
        from_rep_id: get(Field::FromRepId)?,
        account_team,
    })
}

/// A value at the mapped `account_team` pointer that is not a list.
fn not_list(pointer: &str, m: &SourceMapping, what: &str) -> Rejection {
    Rejection::new(
        RejectReason::WrongType,
        format!(
            "`{pointer}` (mapped to `account_team` by source `{}`) is {what}; expected a list of rep ids",
            m.name
        ),
    )
}

/// A value at a mapped pointer that can't be read as text.
fn not_text(pointer: &str, f: Field, m: &SourceMapping, what: &str) -> Rejection {
    Rejection::new(
        RejectReason::WrongType,
        format!(
            "`{pointer}` (mapped to `{}` by source `{}`) is {what}; expected text or a number",
            f.name(),
            m.name
        ),
    )
}

/// A number at a mapped pointer, read as text: as the publisher wrote it (`1e3` stays `1e3`,
/// `0.10` keeps its zero, a 20-digit id all its digits). `Value` keeps only the parsed number, so
/// its text is found again in the message.
fn number_text<'a>(message: &'a str, pointer: &str, n: &serde_json::Number) -> Cow<'a, str> {
    match canonical::value_text(message, pointer) {
        // The check costs one parse of a short number, and guards against the two readers ever
        // disagreeing on where the pointer leads.
        Some(t) if serde_json::from_str::<serde_json::Number>(t).ok().as_ref() == Some(n) => {
            Cow::Borrowed(t)
        }
        // Not found again (nesting deeper than the walk goes): the number itself, with an
        // integral float written without `.0` (`f64`'s `Display`).
        _ => Cow::Owned(match n.as_f64() {
            Some(x) if n.is_f64() => x.to_string(),
            _ => n.to_string(),
        }),
    }
}

/// Explains a serde failure, naming the field (found by a second, slower parse that tracks
/// the path; only taken on the error path).
fn wire_error(text: &str, e: serde_json::Error) -> Rejection {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            Rejection::new(RejectReason::MalformedJson, format!("not valid JSON: {e}"))
        }
        Category::Data => {
            let de = &mut serde_json::Deserializer::from_str(text);
            let path = match serde_path_to_error::deserialize::<_, Wire<'_>>(de) {
                Err(pe) => pe.path().to_string(),
                Ok(_) => String::from("?"),
            };
            if path == "." {
                Rejection::new(
                    RejectReason::MalformedJson,
                    format!("expected one JSON object per message: {e}"),
                )
            } else {
                Rejection::new(
                    RejectReason::WrongType,
                    format!("field `{path}`: {e}")
                        .replace("struct CustomerWire", "an object")
                        .replace("struct RepWire", "an object")
                        .replace("struct Wire", "an object"),
                )
            }
        }
    }
}

/// `a, b, c`: the word of every value in `all`.
fn word_list<T: Copy>(all: &[T], word: fn(T) -> &'static str) -> String {
    all.iter().map(|&x| word(x)).collect::<Vec<_>>().join(", ")
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::sync::Arc;

    /// The shipped `callcenter-cdr` mapping, as in `rules/sources.yaml`.
    const SOURCES: &str = r#"
sources:
  - name: callcenter-cdr
    time_format: "%Y-%m-%d %H:%M:%S"
    fields:
      event_id: /CallId
      occurred_at: /StartTime
      direction: /CallType
      rep.id: /Agent/Id
      rep.team: /Agent/Group
      customer.id: /CrmCustomerNo
      customer.phone: /PeerNumber
    constants:
      kind: call
      source: callcenter
    values:
      direction: {OUT: outbound, IN: inbound}
"#;

    fn ingest() -> Ingest {
        let rules = Rules::from_texts([(Path::new("sources.yaml"), SOURCES)]).expect("rules");
        Ingest::new(Arc::new(rules))
    }

    fn mapped(message: &str) -> Result<Event, Rejection> {
        let mut ingest = ingest();
        let rules = ingest.rules.clone();
        ingest.parse(message.as_bytes(), Some(&rules.sources[0]), "cdr")
    }

    fn cdr(call_id: &str, agent: &str, customer: &str) -> String {
        format!(
            r#"{{"CallId":{call_id},"StartTime":"2026-11-02 09:05:00","CallType":"OUT","Agent":{{"Id":{agent}}},"CrmCustomerNo":{customer}}}"#
        )
    }

    fn activity(e: Result<Event, Rejection>) -> Activity {
        match e {
            Ok(Event::Activity(a)) => a,
            other => panic!("expected an activity, got {other:?}"),
        }
    }

    #[test]
    fn booleans_at_a_mapped_pointer_are_refused_naming_the_field_and_the_pointer() {
        let all = mapped(&cdr("true", "false", "true")).unwrap_err();
        assert_eq!(all.reason, RejectReason::WrongType);
        assert_eq!(
            all.detail,
            "`/CallId` (mapped to `event_id` by source `callcenter-cdr`) is `true`, a boolean; expected text or a number"
        );
        let rep = mapped(&cdr(r#""A-1""#, "false", r#""C1""#)).unwrap_err();
        assert_eq!(rep.reason, RejectReason::WrongType);
        assert!(
            rep.detail.starts_with("`/Agent/Id` (mapped to `rep.id`"),
            "{rep}"
        );
        assert!(rep.detail.contains("`false`, a boolean"), "{rep}");
        let customer = mapped(&cdr(r#""A-1""#, r#""r1""#, "true")).unwrap_err();
        assert!(
            customer
                .detail
                .starts_with("`/CrmCustomerNo` (mapped to `customer.id`"),
            "{customer}"
        );
        // Objects and lists are refused alike; null stays absent, as in the canonical shape.
        let list = mapped(&cdr(r#""A-1""#, r#"["r1"]"#, r#""C1""#)).unwrap_err();
        assert_eq!(list.reason, RejectReason::WrongType);
        assert!(list.detail.contains("is a list;"), "{list}");
        let object = mapped(&cdr(r#"{"n":1}"#, r#""r1""#, r#""C1""#)).unwrap_err();
        assert!(object.detail.contains("is an object;"), "{object}");
        let no_id = mapped(&cdr(r#""A-1""#, r#""r1""#, "null")).unwrap_err();
        assert_eq!(no_id.reason, RejectReason::MissingField, "{no_id}");
    }

    #[test]
    fn a_mapped_account_team_is_read_whole_or_refused() {
        const CRM: &str = r#"
sources:
  - name: crm-owner
    fields:
      event_id: /Id
      kind: /Action
      occurred_at: /At
      rep.id: /Owner
      customer.id: /Customer
      account_team: /Helpers
"#;
        let rules = Rules::from_texts([(Path::new("s.yaml"), CRM)]).expect("rules");
        let mut ingest = Ingest::new(Arc::new(rules));
        let rules = ingest.rules.clone();
        let mut parse = |helpers: &str| {
            let msg = format!(
                r#"{{"Id":"o1","Action":"assign","At":"2026-11-02T09:00:00+08:00","Owner":"r1","Customer":"C1","Helpers":{helpers}}}"#
            );
            ingest.parse(msg.as_bytes(), Some(&rules.sources[0]), "crm")
        };
        let team = |e: Result<Event, Rejection>| match e {
            Ok(Event::Ownership(o)) => o.account_team,
            other => panic!("expected an ownership event, got {other:?}"),
        };
        assert_eq!(team(parse(r#"["r2", 7]"#)), ["r2", "7"]);
        assert!(team(parse("null")).is_empty());
        for (helpers, says) in [
            (r#"["r2", null]"#, "holds null"),
            (r#"["r2", {"id": "r3"}]"#, "holds an object"),
            (r#""r2""#, "is a single value"),
            (r#"{"id": "r2"}"#, "is an object"),
        ] {
            let e = parse(helpers).unwrap_err();
            assert_eq!(e.reason, RejectReason::WrongType, "{helpers}");
            assert!(
                e.detail
                    .starts_with("`/Helpers` (mapped to `account_team` by source `crm-owner`)"),
                "{e}"
            );
            assert!(e.detail.contains(says), "{helpers}: {e}");
        }
    }

    #[test]
    fn a_number_at_a_mapped_pointer_is_read_as_the_text_it_was_written_as() {
        for (written, expected) in [
            ("1e3", "1e3"),
            ("1000", "1000"),
            ("-0.10", "-0.10"),
            ("2.5E+2", "2.5E+2"),
            // Beyond u64: serde_json holds it as an approximate f64.
            ("12345678901234567890123", "12345678901234567890123"),
        ] {
            let a = activity(mapped(&cdr(written, written, written)));
            assert_eq!(a.event_id.as_str(), expected);
            assert_eq!(a.rep.id, expected);
            assert_eq!(a.customer.id.as_deref(), Some(expected));
        }
        // Text around it doesn't mislead the walk: escapes, a repeated key (the last counts,
        // as serde_json reads it), the pointer's words elsewhere.
        let a = activity(mapped(
            r#"{"x":{"CallId":"no","Agent":{"Id":"no"}},"k\"ey":"v\\","CallId":1,"CallId":2.0,
                "StartTime":"2026-11-02 09:05:00","CallType":"OUT","Agent":{"Id":7e0},
                "Agent":{"Group":"g","Id":8e0},"CrmCustomerNo":"C\u0031"}"#,
        ));
        assert_eq!(a.event_id.as_str(), "2.0");
        assert_eq!(a.rep.id, "8e0");
        assert_eq!(a.customer.id.as_deref(), Some("C1"));
    }

    #[test]
    fn a_number_the_walk_cannot_reach_is_written_without_a_fractional_part_when_integral() {
        let n = |t: &str| serde_json::from_str::<serde_json::Number>(t).unwrap();
        assert_eq!(number_text("{}", "/a", &n("1e3")), "1000");
        assert_eq!(number_text("{}", "/a", &n("0.5")), "0.5");
        assert_eq!(number_text("{}", "/a", &n("-42")), "-42");
    }

    #[test]
    fn a_leading_byte_order_mark_is_skipped() {
        let canonical = "\u{feff}{\"event_id\":\"e1\",\"kind\":\"call\",\"occurred_at\":\"2026-11-02T09:00:00+08:00\",\"rep\":{\"id\":\"r1\"},\"customer\":{\"id\":\"C1\"}}";
        let a = activity(ingest().parse(canonical.as_bytes(), None, "default"));
        assert_eq!(a.event_id.as_str(), "e1");
        // The general parser too (an escape sends the message there).
        let escaped = canonical.replace("\"e1\"", "\"e\\u0031\"");
        let a = activity(ingest().parse(escaped.as_bytes(), None, "default"));
        assert_eq!(a.event_id.as_str(), "e1");
        let a = activity(mapped(&format!(
            "\u{feff}{}",
            cdr(r#""A-1""#, r#""r1""#, r#""C1""#)
        )));
        assert_eq!(a.event_id.as_str(), "A-1");
        // Only at the start, and only one: elsewhere it is not JSON.
        for bad in [
            format!("\u{feff}\u{feff}{canonical}", canonical = &canonical[3..]),
            format!(" {canonical}"),
        ] {
            let e = ingest().parse(bad.as_bytes(), None, "default").unwrap_err();
            assert_eq!(e.reason, RejectReason::MalformedJson, "{bad}");
        }
    }

    #[test]
    fn an_unknown_kind_is_answered_with_every_kind() {
        let message = r#"{"event_id":"e1","kind":"fax","occurred_at":"2026-11-02T09:00:00+08:00","rep":{"id":"r1"},"customer":{"id":"C1"}}"#;
        let e = ingest()
            .parse(message.as_bytes(), None, "default")
            .unwrap_err();
        assert_eq!(e.reason, RejectReason::UnknownKind);
        assert_eq!(
            e.detail,
            "`kind` is `fax`; expected one of call, email, visit, meeting, message, complaint (activity) or assign, release, transfer, lock, unlock, won, claim (ownership)"
        );
        for word in ContactKind::ALL
            .map(ContactKind::as_str)
            .into_iter()
            .chain(OwnershipAction::ALL.map(OwnershipAction::as_str))
        {
            assert!(e.detail.contains(&format!(" {word}")), "{word}");
        }
    }

    proptest::proptest! {
        #[test]
        fn the_quick_trim_trims_as_str_trim_does(
            s in "[ \t\r\n\u{b}\u{c}\u{1c}-\u{1f}a-z~!\u{7f}\u{85}\u{a0}\u{3000}公]{0,6}"
        ) {
            proptest::prop_assert_eq!(trim(&s), s.trim());
        }
    }
}
