//! A direct reader for messages in the canonical shape, for the common case.
//!
//! The general parser (serde into `Wire`, then `canonical_raw`) spends most of a message's
//! parsing time building intermediate structures and matching field names through visitors.
//! Almost every message a CRM or call center publishes is plain: strings without escapes,
//! fields of the documented types, each field once. This module reads such a message in one
//! pass straight into [`Raw`], borrowing every string from the input.
//!
//! It never decides that a message is wrong. Whenever it meets something it does not handle
//! (an escape or control character in a string, a field of another type, a repeated field,
//! deep nesting, anything that is not valid JSON) it answers `None`, and the general parser
//! reads the message again: it accepts what it accepts and explains what it refuses, exactly as
//! before. For every message this reader accepts, the general parser yields the same fields;
//! property tests below check that on generated messages and on mutated ones.

use super::Raw;
use crate::json::next_stop;
use std::borrow::Cow;

/// Reads a message in the canonical shape, or `None` when the general parser must read it.
pub(super) fn read(text: &str) -> Option<Raw<'_>> {
    let mut scan = Scan {
        text,
        bytes: text.as_bytes(),
        at: 0,
    };
    let mut raw = Raw::default();
    let mut seen = Seen::default();
    scan.object(|scan, key| {
        match key {
            "event_id" => raw.event_id = seen.once(0, scan.text())?,
            "kind" => raw.kind = seen.once(1, scan.text())?,
            "direction" => raw.direction = seen.once(2, scan.text())?,
            "occurred_at" => raw.occurred_at = seen.once(3, scan.text())?,
            "source" => raw.source = seen.once(4, scan.text())?,
            "rep" => {
                let rep = seen.once(5, scan.rep())?;
                (raw.rep_id, raw.rep_team, raw.rep_role) = rep.unwrap_or_default();
            }
            "from_rep" => {
                // Its team and role are read (and type-checked) like the rep's, then unused.
                raw.from_rep_id = seen.once(6, scan.rep())?.and_then(|(id, _, _)| id);
            }
            "customer" => seen.once(7, scan.customer(&mut raw))?,
            "account_team" => raw.account_team = seen.once(8, scan.names())?.unwrap_or_default(),
            "attributes" => seen.once(9, scan.skip(1))?,
            _ => scan.skip(1)?,
        }
        Some(())
    })?;
    scan.space();
    (scan.at == scan.bytes.len()).then_some(raw)
}

/// The JSON text of the value at `pointer` (RFC 6901) in `text`, exactly as the publisher wrote
/// it: a number a source mapping reads as text keeps its own spelling (`1e3`, `0.10`, digits
/// beyond what an `f64` holds), which `serde_json::Value` doesn't keep. `text` must already have
/// been read as valid JSON by serde_json; this finds the same value `Value::pointer` finds (a
/// repeated key counts its last occurrence, array indices are read alike). `None` when the value
/// isn't there or the walk meets nesting deeper than [`MAX_DEPTH`].
pub(super) fn value_text<'a>(text: &'a str, pointer: &str) -> Option<&'a str> {
    let path: Vec<String> = if pointer.is_empty() {
        Vec::new()
    } else {
        pointer
            .strip_prefix('/')?
            .split('/')
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect()
    };
    let mut scan = Scan {
        text,
        bytes: text.as_bytes(),
        at: 0,
    };
    let (start, end) = scan.locate(&path, 1)??;
    Some(&text[start..end])
}

/// Nesting deeper than this goes to the general parser (which has a limit of its own).
const MAX_DEPTH: u32 = 64;

/// Which known fields of one object were read: a second occurrence is an error the general
/// parser reports.
#[derive(Default)]
struct Seen(u16);

impl Seen {
    fn once<T>(&mut self, field: u8, value: Option<T>) -> Option<T> {
        let bit = 1 << field;
        if self.0 & bit != 0 {
            return None;
        }
        self.0 |= bit;
        value
    }
}

type RepFields<'a> = (
    Option<Cow<'a, str>>,
    Option<Cow<'a, str>>,
    Option<Cow<'a, str>>,
);

struct Scan<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scan<'a> {
    /// Skips JSON whitespace (exactly the four characters JSON allows).
    fn space(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    /// The next byte after whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        self.space();
        self.bytes.get(self.at).copied()
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.space();
        let end = self.at + word.len();
        (self.bytes.get(self.at..end)? == word).then(|| self.at = end)
    }

    /// A string with neither escapes nor control characters, borrowed from the input.
    fn string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.at;
        // The first byte that ends or interrupts the string: anything but its closing quote
        // (an escape, a control character) is for the general parser.
        let end = next_stop(self.bytes, start)?;
        if self.bytes[end] != b'"' {
            return None;
        }
        // Both ends are ASCII quotes, so both are character boundaries.
        self.at = end + 1;
        Some(&self.text[start..end])
    }

    /// A text field: a string, or `null` for absent. `None` for any other type.
    fn text(&mut self) -> Option<Option<Cow<'a, str>>> {
        match self.peek()? {
            b'"' => Some(Some(Cow::Borrowed(self.string()?))),
            b'n' => self.literal(b"null").map(|()| None),
            _ => None,
        }
    }

    /// An object, calling `field` with the scanner placed at each value.
    fn object(&mut self, mut field: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.expect(b'{')?;
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(());
        }
        loop {
            let key = self.string()?;
            self.expect(b':')?;
            field(self, key)?;
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A `rep` or `from_rep` object (or `null`): its id, team and role.
    fn rep(&mut self) -> Option<Option<RepFields<'a>>> {
        if self.peek()? == b'n' {
            return self.literal(b"null").map(|()| None);
        }
        let mut rep = RepFields::default();
        let mut seen = Seen::default();
        self.object(|scan, key| {
            match key {
                "id" => rep.0 = seen.once(0, scan.text())?,
                "team" => rep.1 = seen.once(1, scan.text())?,
                "role" => rep.2 = seen.once(2, scan.text())?,
                _ => scan.skip(2)?,
            }
            Some(())
        })?;
        Some(Some(rep))
    }

    /// The `customer` object (or `null`), read into `raw`.
    fn customer(&mut self, raw: &mut Raw<'a>) -> Option<()> {
        if self.peek()? == b'n' {
            return self.literal(b"null");
        }
        let mut seen = Seen::default();
        self.object(|scan, key| {
            match key {
                "id" => raw.customer_id = seen.once(0, scan.text())?,
                "phone" => raw.phone = seen.once(1, scan.text())?,
                "email" => raw.email = seen.once(2, scan.text())?,
                "company" => raw.company = seen.once(3, scan.text())?,
                "region" => raw.region = seen.once(4, scan.text())?,
                "industry" => raw.industry = seen.once(5, scan.text())?,
                "tier" => raw.tier = seen.once(6, scan.text())?,
                "product_line" => raw.product_line = seen.once(7, scan.text())?,
                _ => scan.skip(2)?,
            }
            Some(())
        })
    }

    /// An array, calling `item` with the scanner placed at each element.
    fn array(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.expect(b'[')?;
        if self.peek()? == b']' {
            self.at += 1;
            return Some(());
        }
        loop {
            item(self)?;
            match self.peek()? {
                b',' => self.at += 1,
                b']' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// `account_team`: a list of strings, or `null`.
    fn names(&mut self) -> Option<Option<Vec<Cow<'a, str>>>> {
        if self.peek()? == b'n' {
            return self.literal(b"null").map(|()| None);
        }
        let mut names = Vec::new();
        self.array(|scan| {
            names.push(Cow::Borrowed(scan.string()?));
            Some(())
        })?;
        Some(Some(names))
    }

    /// Any JSON value, checked and skipped (escapes left to the general parser).
    fn skip(&mut self, depth: u32) -> Option<()> {
        self.skip_value::<false>(depth)
    }

    /// Any JSON value, checked and skipped. `ESCAPES`: strings and keys with escapes are walked
    /// too (for [`value_text`], on text serde_json has read already) instead of refused.
    fn skip_value<const ESCAPES: bool>(&mut self, depth: u32) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' if ESCAPES => self.any_string().map(drop),
            b'"' => self.string().map(drop),
            b'{' if ESCAPES => self.members(|scan, _| scan.skip_value::<ESCAPES>(depth + 1)),
            b'{' => self.object(|scan, _| scan.skip_value::<ESCAPES>(depth + 1)),
            b'[' => self.array(|scan| scan.skip_value::<ESCAPES>(depth + 1)),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number(),
        }
    }

    /// A number as JSON writes it: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self) -> Option<()> {
        if self.bytes.get(self.at) == Some(&b'-') {
            self.at += 1;
        }
        match *self.bytes.get(self.at)? {
            b'0' => self.at += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.bytes.get(self.at) == Some(&b'.') {
            self.at += 1;
            self.at_least_one_digit()?;
        }
        if let Some(b'e' | b'E') = self.bytes.get(self.at) {
            self.at += 1;
            if let Some(b'+' | b'-') = self.bytes.get(self.at) {
                self.at += 1;
            }
            self.at_least_one_digit()?;
        }
        Some(())
    }

    /// Walks the value here, consuming it: where the value at `path` inside it starts and ends
    /// (`Some(None)`: not there). For [`value_text`].
    fn locate(&mut self, path: &[String], depth: u32) -> Option<Option<(usize, usize)>> {
        if depth > MAX_DEPTH {
            return None;
        }
        let Some((token, rest)) = path.split_first() else {
            self.space();
            let start = self.at;
            self.skip_value::<true>(depth)?;
            return Some(Some((start, self.at)));
        };
        let mut found = None;
        match self.peek()? {
            // Every occurrence is walked and the last one wins, as in the `Value` serde_json
            // builds from the same text.
            b'{' => self.members(|scan, key| {
                if key == token.as_str() {
                    found = scan.locate(rest, depth + 1)?;
                } else {
                    scan.skip_value::<true>(depth + 1)?;
                }
                Some(())
            })?,
            b'[' => {
                let index = array_index(token);
                let mut i = 0;
                self.array(|scan| {
                    if index == Some(i) {
                        found = scan.locate(rest, depth + 1)?;
                    } else {
                        scan.skip_value::<true>(depth + 1)?;
                    }
                    i += 1;
                    Some(())
                })?;
            }
            _ => self.skip_value::<true>(depth)?,
        }
        Some(found)
    }

    /// An object whose keys may have escapes, calling `field` with each key (decoded) and the
    /// scanner placed at its value.
    fn members(&mut self, mut field: impl FnMut(&mut Self, &str) -> Option<()>) -> Option<()> {
        self.expect(b'{')?;
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(());
        }
        loop {
            let key = self.any_string()?;
            self.expect(b':')?;
            field(self, &key)?;
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A string, escapes and all, decoded.
    fn any_string(&mut self) -> Option<Cow<'a, str>> {
        self.expect(b'"')?;
        let start = self.at;
        let mut at = start;
        let mut escaped = false;
        loop {
            let stop = next_stop(self.bytes, at)?;
            match self.bytes[stop] {
                b'"' => {
                    self.at = stop + 1;
                    break;
                }
                // The escaped character can't end the string: step over it.
                b'\\' if stop + 2 <= self.bytes.len() => {
                    escaped = true;
                    at = stop + 2;
                }
                _ => return None,
            }
        }
        if escaped {
            // Rare in keys: serde_json decodes it, quotes included.
            serde_json::from_str(&self.text[start - 1..self.at])
                .ok()
                .map(Cow::Owned)
        } else {
            Some(Cow::Borrowed(&self.text[start..self.at - 1]))
        }
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    fn at_least_one_digit(&mut self) -> Option<()> {
        let start = self.at;
        self.digits();
        (self.at > start).then_some(())
    }
}

/// An array index in a JSON Pointer, read as `serde_json::Value::pointer` reads it (no sign, no
/// leading zero), so both find the same element.
fn array_index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.starts_with('0') && token.len() != 1) {
        return None;
    }
    token.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::super::{canonical_raw, Wire};
    use super::*;
    use proptest::prelude::*;

    fn general(text: &str) -> Option<Raw<'_>> {
        serde_json::from_str::<Wire<'_>>(text)
            .ok()
            .map(canonical_raw)
    }

    #[test]
    fn reads_every_valid_message_of_the_bundled_sample_stream_directly() {
        // The stream also carries broken messages on purpose (cut lines, bad bytes): those are
        // for the general parser to refuse.
        let (mut valid, mut direct) = (0, 0);
        for line in crate::pipeline::SAMPLE_STREAM.split(|&b| b == b'\n') {
            let Ok(line) = std::str::from_utf8(line) else {
                continue;
            };
            let Some(expected) = general(line) else {
                assert_eq!(read(line), None, "{line}");
                continue;
            };
            valid += 1;
            if let Some(fast) = read(line) {
                assert_eq!(fast, expected, "{line}");
                direct += 1;
            }
        }
        assert!(valid > 3000, "{valid}");
        assert_eq!(direct, valid, "every valid sample message is plain");
    }

    #[test]
    fn leaves_what_it_does_not_handle_to_the_general_parser() {
        let cases = [
            // an escape (the general parser decodes it)
            r#"{"event_id":"e\u0031","kind":"call"}"#,
            // a repeated field (the general parser refuses it)
            r#"{"kind":"call","kind":"email"}"#,
            r#"{"customer":{"id":"C1","id":"C2"}}"#,
            // wrong types
            r#"{"kind":7}"#,
            r#"{"rep":"r1"}"#,
            r#"{"account_team":["r1",null]}"#,
            // not JSON
            r#"{"kind":"call",}"#,
            r#"{"kind":"call"} x"#,
            r#"{"attributes":{"n":01}}"#,
            r#"{"attributes":{"n":1.}}"#,
            r#"{"attributes":[1,]}"#,
            "{\"kind\":\"ca\tll\"}",
        ];
        for case in cases {
            assert!(read(case).is_none(), "{case}");
        }
    }

    #[test]
    fn reads_nulls_unknown_fields_and_nested_attributes_like_the_general_parser() {
        let text = r#" { "event_id" : "e1", "x": [1, -2.5e+3, {"y": [true, false, null]}],
            "rep": {"id": "r1", "team": null, "extra": {}}, "from_rep": null,
            "customer": {"id": "C1", "phone": "138 0013 8000", "note": "多"},
            "account_team": ["r2", "r3"], "attributes": {"a": {"b": [0, 10, 0.5E-1]}},
            "kind": "call", "occurred_at": "2026-11-02T07:00:17+08:00" } "#;
        let fast = read(text).expect("fast path");
        assert_eq!(Some(&fast), general(text).as_ref());
        assert_eq!(fast.rep_id.as_deref(), Some("r1"));
        assert_eq!(fast.account_team.len(), 2);
    }

    /// Pieces of valid canonical messages: fields in any order, of the right and the wrong
    /// types, unknown fields and nested attributes.
    fn value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_string()),
            Just("true".to_string()),
            Just("\"\"".to_string()),
            "[a-z0-9 +@.-]{0,8}".prop_map(|s| format!("\"{s}\"")),
            // numbers, and number-like text JSON does not allow (`01`, `1.`, `1e`)
            "-?[0-9]{1,3}\\.?[0-9]{0,2}([eE][+-]?[0-9]{0,2})?",
            Just("\"a\\\"b\"".to_string()),
            Just("\"客户\"".to_string()),
        ];
        leaf.prop_recursive(3, 12, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4)
                    .prop_map(|items| format!("[{}]", items.join(","))),
                prop::collection::vec(("(id|team|role|phone|x)", inner), 0..4).prop_map(|fields| {
                    let body: Vec<String> =
                        fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                    format!("{{{}}}", body.join(","))
                }),
            ]
        })
    }

    fn message() -> impl Strategy<Value = String> {
        let key = prop_oneof![
            Just("event_id"),
            Just("kind"),
            Just("direction"),
            Just("occurred_at"),
            Just("source"),
            Just("rep"),
            Just("from_rep"),
            Just("customer"),
            Just("account_team"),
            Just("attributes"),
            Just("other"),
        ];
        prop::collection::vec((key, value(), " {0,2}"), 0..8).prop_map(|fields| {
            let body: Vec<String> = fields
                .iter()
                .map(|(k, v, pad)| format!("{pad}\"{k}\"{pad}:{pad}{v}"))
                .collect();
            format!("{{{}}}", body.join(","))
        })
    }

    /// A message with one byte inserted, replaced or removed.
    fn mutated() -> impl Strategy<Value = String> {
        let byte = prop_oneof![
            Just(b','),
            Just(b':'),
            Just(b'"'),
            Just(b'\\'),
            Just(b'{'),
            Just(b'}'),
            Just(b'['),
            Just(b']'),
            Just(b'0'),
            Just(b'.'),
            Just(b'e'),
            Just(b'-'),
            Just(b' '),
            Just(b'\n'),
            Just(0x01u8),
            Just(b'n'),
        ];
        (message(), any::<prop::sample::Index>(), byte, 0..3u8).prop_map(|(text, at, byte, how)| {
            let mut bytes = text.into_bytes();
            let i = at.index(bytes.len() + 1);
            match how {
                0 => bytes.insert(i, byte),
                1 if i < bytes.len() => bytes[i] = byte,
                _ if i < bytes.len() => {
                    bytes.remove(i);
                }
                _ => {}
            }
            // Every byte used above is ASCII, so the text stays UTF-8 unless a multi-byte
            // character was cut; such a message is refused before parsing anyway.
            String::from_utf8(bytes).unwrap_or_default()
        })
    }

    #[test]
    fn finds_the_text_of_a_value_by_its_pointer() {
        let text = r#" {"a": {"b": [10, 1e3, {"c~/": -0.50}]}, "a\u0062": 2E+1, "d": 1, "d": 2} "#;
        for (pointer, expected) in [
            ("/a/b/1", Some("1e3")),
            ("/a/b/2/c~0~1", Some("-0.50")),
            ("/ab", Some("2E+1")),
            ("/d", Some("2")),
            ("/a/b/01", None),
            ("/a/b/3", None),
            ("/a/x", None),
            ("a", None),
        ] {
            assert_eq!(value_text(text, pointer), expected, "{pointer}");
        }
        let deep = format!("{}1{}", "[".repeat(80), "]".repeat(80));
        assert_eq!(value_text(&deep, &"/0".repeat(80)), None);
    }

    /// JSON documents with repeated and escaped keys, escaped strings, and numbers in every
    /// spelling, for [`value_text`].
    fn document() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_string()),
            Just("false".to_string()),
            Just("\"a\\\"b\\\\\"".to_string()),
            Just("\"客户\"".to_string()),
            "-?(0|[1-9][0-9]{0,25})(\\.[0-9]{1,3})?([eE][+-]?[0-9]{1,2})?",
        ];
        let key = prop_oneof![
            Just("a"),
            Just("b"),
            Just("a~b"),
            Just("a/b"),
            Just("\\u0061"),
            Just("\\\"")
        ];
        leaf.prop_recursive(4, 24, 4, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4)
                    .prop_map(|items| format!("[ {} ]", items.join(" , "))),
                prop::collection::vec((key.clone(), inner), 0..4).prop_map(|fields| {
                    let body: Vec<String> = fields
                        .iter()
                        .map(|(k, v)| format!("\"{k}\" : {v}"))
                        .collect();
                    format!("{{{}}}", body.join(","))
                }),
            ]
        })
    }

    fn pointer() -> impl Strategy<Value = String> {
        let token = prop_oneof![
            Just("a"),
            Just("b"),
            Just("a~0b"),
            Just("a~1b"),
            Just("\""),
            Just("0"),
            Just("1"),
            Just("01"),
            Just("+1"),
        ];
        prop::collection::vec(token, 0..4)
            .prop_map(|tokens| tokens.iter().map(|t| format!("/{t}")).collect::<String>())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn finds_the_value_serde_json_finds(text in document(), pointer in pointer()) {
            let value: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
            let found = value_text(&text, &pointer)
                .map(|t| serde_json::from_str::<serde_json::Value>(t).expect("one value"));
            prop_assert_eq!(found.as_ref(), value.pointer(&pointer), "{} {}", text, pointer);
        }

        #[test]
        fn agrees_with_the_general_parser_on_messages(text in message()) {
            if let Some(fast) = read(&text) {
                prop_assert_eq!(Some(fast), general(&text), "{}", text);
            }
        }

        #[test]
        fn agrees_with_the_general_parser_on_mutated_messages(text in mutated()) {
            if let Some(fast) = read(&text) {
                prop_assert_eq!(Some(fast), general(&text), "{}", text);
            }
        }
    }
}
