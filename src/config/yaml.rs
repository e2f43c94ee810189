//! A YAML tree that remembers where every node came from, and a reader that collects every
//! problem instead of stopping at the first.
//!
//! `serde`'s `deny_unknown_fields` stops at the first error; an operator fixing a rules change
//! wants all of them at once, each with file, line and column. So rules are read in two steps:
//! [`parse`] builds a [`Node`] tree with positions (yaml-rust2's marked events), then typed
//! readers walk it through [`Reader`], which records a [`Diagnostic`] for each problem and
//! carries on.

use std::fmt;
use std::path::{Path, PathBuf};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A problem in a configuration file, with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.message
        )
    }
}

/// A YAML node with its position (1-based line and column).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub line: usize,
    pub col: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A scalar; `quoted` tells `"10"` from `10`.
    Scalar {
        text: String,
        quoted: bool,
    },
    Seq(Vec<Node>),
    /// Entries in file order (duplicates are reported by the reader).
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The scalar's text, if this is a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// A plain `~`, `null` or empty scalar.
    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar { text, quoted: false } if text.is_empty() || text == "~" || text == "null")
    }

    fn describe(&self) -> &'static str {
        match &self.value {
            Value::Scalar { .. } if self.is_null() => "nothing",
            Value::Scalar { .. } => "a single value",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

/// Parses one YAML text (one document; an empty file gives an empty mapping). Every alias is
/// reported at once, as every other error of a file is.
pub fn parse(text: &str, file: &Path) -> Result<Node, Vec<Diagnostic>> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut builder, true).map_err(|e| {
        vec![Diagnostic {
            file: file.to_path_buf(),
            line: e.marker().line(),
            col: e.marker().col() + 1,
            message: format!("not valid YAML: {}", e.info()),
        }]
    })?;
    if !builder.aliases.is_empty() {
        return Err(builder
            .aliases
            .iter()
            .map(|&(line, col, merged)| Diagnostic {
                file: file.to_path_buf(),
                line,
                col,
                message: if merged {
                    "YAML merge keys (`<<: *name`) are not supported in rules; write the keys out"
                } else {
                    "YAML aliases (*name) are not supported in rules; write the value out"
                }
                .into(),
            })
            .collect());
    }
    match builder.docs.len() {
        0 => Ok(Node {
            value: Value::Map(Vec::new()),
            line: 1,
            col: 1,
        }),
        1 => Ok(builder.docs.pop().expect("one document")),
        _ => Err(vec![Diagnostic {
            file: file.to_path_buf(),
            line: builder.docs[1].line,
            col: builder.docs[1].col,
            message: "a rules file holds one YAML document; split `---` documents into files"
                .into(),
        }]),
    }
}

#[derive(Default)]
struct Builder {
    docs: Vec<Node>,
    /// Open collections: the node and, for maps, a pending key.
    stack: Vec<(Node, Option<Node>)>,
    /// Where each alias is (line, column), and whether it is the value of a merge key
    /// (`<<: *name`, reported at the key).
    aliases: Vec<(usize, usize, bool)>,
}

impl Builder {
    fn push_value(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some((parent, pending_key)) => match &mut parent.value {
                Value::Seq(items) => items.push(node),
                Value::Map(entries) => match pending_key.take() {
                    None => *pending_key = Some(node),
                    Some(key) => entries.push((key, node)),
                },
                Value::Scalar { .. } => unreachable!("scalars are never on the stack"),
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let (line, col) = (mark.line(), mark.col() + 1);
        match ev {
            Event::Scalar(text, style, _, _) => self.push_value(Node {
                value: Value::Scalar {
                    text,
                    quoted: !matches!(style, TScalarStyle::Plain),
                },
                line,
                col,
            }),
            Event::SequenceStart(..) => self.stack.push((
                Node {
                    value: Value::Seq(Vec::new()),
                    line,
                    col,
                },
                None,
            )),
            Event::MappingStart(..) => self.stack.push((
                Node {
                    value: Value::Map(Vec::new()),
                    line,
                    col,
                },
                None,
            )),
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((node, _)) = self.stack.pop() {
                    self.push_value(node);
                }
            }
            Event::Alias(_) => {
                let merge_key = match self.stack.last() {
                    Some((_, Some(key))) if key.as_str() == Some("<<") => Some(key),
                    _ => None,
                };
                self.aliases.push(match merge_key {
                    Some(key) => (key.line, key.col, true),
                    None => (line, col, false),
                });
                self.push_value(Node {
                    value: Value::Scalar {
                        text: String::new(),
                        quoted: false,
                    },
                    line,
                    col,
                });
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

/// Collects diagnostics for one file while typed readers walk its tree.
pub struct Reader<'a> {
    pub file: &'a Path,
    pub errors: &'a mut Vec<Diagnostic>,
}

impl<'a> Reader<'a> {
    pub fn error(&mut self, node: &Node, message: impl Into<String>) {
        self.errors.push(Diagnostic {
            file: self.file.to_path_buf(),
            line: node.line,
            col: node.col,
            message: message.into(),
        });
    }

    /// Opens a mapping whose keys must all be in `known`; unknown and repeated keys are reported
    /// by [`MapReader::finish`].
    pub fn map<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
        known: &'static [&'static str],
    ) -> Option<MapReader<'n>> {
        let entries = self.map_any(node, what)?;
        Some(MapReader {
            node,
            entries,
            known,
            what: what.to_string(),
        })
    }

    /// A mapping whose keys are names chosen by the user (tiers, teams…), entries in file order.
    pub fn map_any<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [(Node, Node)]> {
        match &node.value {
            Value::Map(entries) => Some(entries),
            _ if node.is_null() => Some(&[]),
            _ => {
                self.error(
                    node,
                    format!(
                        "{what} must be a mapping of keys, found {}",
                        node.describe()
                    ),
                );
                None
            }
        }
    }

    pub fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.value {
            Value::Scalar { text, .. } if !node.is_null() => Some(text.clone()),
            _ => {
                self.error(
                    node,
                    format!("{what} must be a single value, found {}", node.describe()),
                );
                None
            }
        }
    }

    /// A name an entry gives itself (a rule's id, a source's or pool's name): a string that
    /// isn't blank, since outputs, metrics and messages refer to the entry by it.
    pub fn name(&mut self, node: &Node, what: &str) -> Option<String> {
        let s = self.string(node, what)?;
        if s.trim().is_empty() {
            self.error(
                node,
                format!("{what} must not be blank: outputs and messages name the entry by it"),
            );
            return None;
        }
        Some(s)
    }

    pub fn bool(&mut self, node: &Node, what: &str) -> Option<bool> {
        match node.as_str() {
            Some("true") => Some(true),
            Some("false") => Some(false),
            _ => {
                self.error(node, format!("{what} must be true or false"));
                None
            }
        }
    }

    /// A whole number in `min..=max`.
    pub fn uint(&mut self, node: &Node, what: &str, min: u64, max: u64) -> Option<u64> {
        match node.as_str().and_then(|s| s.parse::<u64>().ok()) {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.error(
                    node,
                    format!("{what} must be a whole number from {min} to {max}"),
                );
                None
            }
        }
    }

    pub fn span(&mut self, node: &Node, what: &str) -> Option<crate::time::Span> {
        let text = self.string(node, what)?;
        match crate::time::parse_span(&text) {
            Ok(s) => Some(s),
            Err(e) => {
                self.error(
                    node,
                    format!("{what}: {}", explain_span(&text).unwrap_or(e)),
                );
                None
            }
        }
    }

    /// One of a fixed set of words.
    pub fn choice<T: Copy>(&mut self, node: &Node, what: &str, options: &[(&str, T)]) -> Option<T> {
        let text = self.string(node, what)?;
        if let Some((_, v)) = options.iter().find(|(name, _)| *name == text) {
            return Some(*v);
        }
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        self.error(
            node,
            format!("{what}: `{text}` is not one of {}", names.join(", ")),
        );
        None
    }

    /// A list of items; a single value is not accepted as a list of one, so that a typo
    /// never silently changes meaning.
    pub fn list<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [Node]> {
        match &node.value {
            Value::Seq(items) => Some(items),
            _ if node.is_null() => Some(&[]),
            _ => {
                self.error(
                    node,
                    format!("{what} must be a list, found {}", node.describe()),
                );
                None
            }
        }
    }

    pub fn strings(&mut self, node: &Node, what: &str) -> Option<Vec<String>> {
        let items = self.list(node, what)?;
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in items {
            match self.string(item, &format!("each entry of {what}")) {
                Some(s) => out.push(s),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }
}

/// Reads the keys of one mapping.
pub struct MapReader<'n> {
    pub node: &'n Node,
    entries: &'n [(Node, Node)],
    known: &'static [&'static str],
    what: String,
}

impl<'n> MapReader<'n> {
    /// The value under `key`, if present (and not null).
    pub fn get(&self, key: &str) -> Option<&'n Node> {
        debug_assert!(self.known.contains(&key), "`{key}` missing from known keys");
        self.entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
            .filter(|v| !v.is_null())
    }

    /// The value under `key`, reporting its absence.
    pub fn require(&self, r: &mut Reader<'_>, key: &str) -> Option<&'n Node> {
        let v = self.get(key);
        if v.is_none() {
            r.error(
                self.node,
                format!("{} is missing the required key `{key}`", self.what),
            );
        }
        v
    }

    /// Reports unknown keys (with the closest known one) and repeated keys.
    pub fn finish(self, r: &mut Reader<'_>) {
        let mut seen: Vec<&str> = Vec::new();
        for (k, _) in self.entries {
            let Some(name) = k.as_str() else {
                r.error(k, format!("{}: keys must be plain words", self.what));
                continue;
            };
            if seen.contains(&name) {
                r.error(k, format!("{}: `{name}` is given twice", self.what));
            }
            seen.push(name);
            if name == "<<" {
                r.error(
                    k,
                    format!(
                        "{}: YAML merge keys (`<<`) are not supported in rules; write the keys out",
                        self.what
                    ),
                );
            } else if !self.known.contains(&name) {
                let hint = closest(name, self.known)
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
                r.error(
                    k,
                    format!(
                        "{}: unknown key `{name}`{hint}; known keys: {}",
                        self.what,
                        self.known.join(", ")
                    ),
                );
            }
        }
    }
}

/// The units `time::parse_span` reads, and the longer spellings people write for them.
const SPAN_UNITS: &str = "ms, s, m, h, d and w";
const SPAN_SPELLINGS: &[(&str, &str)] = &[
    ("msec", "ms"),
    ("millis", "ms"),
    ("milliseconds", "ms"),
    ("sec", "s"),
    ("secs", "s"),
    ("second", "s"),
    ("seconds", "s"),
    ("min", "m"),
    ("mins", "m"),
    ("minute", "m"),
    ("minutes", "m"),
    ("hr", "h"),
    ("hrs", "h"),
    ("hour", "h"),
    ("hours", "h"),
    ("day", "d"),
    ("days", "d"),
    ("week", "w"),
    ("weeks", "w"),
];

/// A clearer message than `parse_span`'s for the two mistakes it can only call an unknown unit:
/// a negative duration, and a unit spelled out (`10min`, which it would otherwise read as
/// 10 minutes followed by a stray `i`). `None` leaves `parse_span`'s message.
fn explain_span(text: &str) -> Option<String> {
    let t = text.trim();
    if let Some(positive) = t.strip_prefix('-') {
        return Some(format!(
            "`{t}`: durations can't be negative; write a length such as {}",
            if positive.is_empty() {
                "5m"
            } else {
                positive.trim()
            }
        ));
    }
    // Rewrite each run of letters that is a spelled-out unit; suggest only if one was.
    let mut suggestion = String::new();
    let mut spelled = Vec::new();
    let mut rest = t;
    while !rest.is_empty() {
        let letters = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        if letters == 0 {
            let other = rest
                .find(|c: char| c.is_ascii_alphabetic())
                .unwrap_or(rest.len());
            suggestion.push_str(&rest[..other]);
            rest = &rest[other..];
            continue;
        }
        let word = &rest[..letters];
        match SPAN_SPELLINGS
            .iter()
            .find(|(long, _)| long.eq_ignore_ascii_case(word))
        {
            Some((_, unit)) => {
                suggestion.push_str(unit);
                spelled.push(word);
            }
            None => suggestion.push_str(word),
        }
        rest = &rest[letters..];
    }
    if spelled.is_empty() || crate::time::parse_span(&suggestion).is_err() {
        return None;
    }
    let (is, unit) = if spelled.len() == 1 {
        ("is", "a unit")
    } else {
        ("are", "units")
    };
    Some(format!(
        "`{t}`: `{}` {is} not {unit}; write {suggestion} (the units are {SPAN_UNITS})",
        spelled.join("`, `")
    ))
}

/// The known word nearest to `word` by edit distance, if it is close.
fn closest<'k>(word: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (edit_distance(word, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min()
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_kept() {
        let n = parse("a:\n  b: 1\n  c: [x, y]\n", Path::new("t.yaml")).unwrap();
        let Value::Map(entries) = &n.value else {
            panic!("map")
        };
        let (_, a) = &entries[0];
        let Value::Map(inner) = &a.value else {
            panic!("map")
        };
        assert_eq!((inner[1].0.line, inner[1].0.col), (3, 3));
    }

    #[test]
    fn every_unknown_key_is_reported_with_a_hint() {
        let n = parse("windw: 1\nseverty: high\nid: x\n", Path::new("r.yaml")).unwrap();
        let mut errors = Vec::new();
        let mut r = Reader {
            file: Path::new("r.yaml"),
            errors: &mut errors,
        };
        let m = r.map(&n, "rule", &["id", "window", "severity"]).unwrap();
        m.finish(&mut r);
        assert_eq!(errors.len(), 2);
        assert!(errors[0].to_string().starts_with("r.yaml:1:1:"));
        assert!(errors[0].message.contains("did you mean `window`"));
        assert!(errors[1].message.contains("did you mean `severity`"));
    }

    #[test]
    fn spelled_out_and_negative_durations_are_explained() {
        assert_eq!(
            explain_span("1day12hours").as_deref(),
            Some("`1day12hours`: `day`, `hours` are not units; write 1d12h (the units are ms, s, m, h, d and w)")
        );
        assert!(explain_span("-5m")
            .unwrap()
            .contains("can't be negative; write a length such as 5m"));
        // Anything else keeps `parse_span`'s own message.
        assert_eq!(explain_span("5x"), None);
        assert_eq!(explain_span("10"), None);
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let e = parse("a: [1, 2\nb: 3\n", Path::new("bad.yaml")).unwrap_err();
        assert_eq!(e.len(), 1);
        assert!(e[0].to_string().starts_with("bad.yaml:"), "{}", e[0]);
    }

    #[test]
    fn every_alias_is_reported_and_a_merge_key_is_named() {
        let text = "base: &b {window: 1h}\na: *b\nc: [*b, *b]\n";
        let e = parse(text, Path::new("r.yaml")).unwrap_err();
        let at: Vec<(usize, usize)> = e.iter().map(|d| (d.line, d.col)).collect();
        assert_eq!(at, [(2, 4), (3, 5), (3, 9)]);
        assert!(e[0].message.contains("aliases (*name) are not supported"));

        // A merge of an anchored mapping is named as a merge, at its key.
        let e = parse(
            "base: &b {window: 1h}
rule:
  <<: *b
",
            Path::new("r.yaml"),
        )
        .unwrap_err();
        assert_eq!(e.len(), 1);
        assert_eq!(
            e[0].to_string(),
            "r.yaml:3:3: YAML merge keys (`<<: *name`) are not supported in rules; write the keys out"
        );

        let n = parse("id: x\n<<: {window: 1h}\n", Path::new("r.yaml")).unwrap();
        let mut errors = Vec::new();
        let mut r = Reader {
            file: Path::new("r.yaml"),
            errors: &mut errors,
        };
        r.map(&n, "rule", &["id", "window"]).unwrap().finish(&mut r);
        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors[0].to_string(),
            "r.yaml:2:1: rule: YAML merge keys (`<<`) are not supported in rules; write the keys out"
        );
    }
}
