//! Reading an output stream: one CloudEvent per message, deduplicated by id, withdrawals
//! remembered, bad messages counted with their position.
//!
//! [`Collector::push`] takes one message's bytes, so any transport can feed it: [`read_lines`]
//! does so for files and stdin (any `BufRead`), and a topic consumer would call `push` with each
//! record's value. Nothing is counted here: withdrawals may come after the output they withdraw,
//! so figures are computed only once the whole stream has been read (see `tally`).

use crate::time::Timestamp;
use serde::de::IgnoredAny;
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::io::{self, BufRead};

/// How many bad messages are listed one by one; beyond that they are only counted, so a file
/// that is not an output stream at all cannot fill the report with a million lines.
pub const MALFORMED_LISTED: usize = 200;

/// A rep as outputs name them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Rep {
    pub id: String,
    #[serde(default)]
    pub team: Option<String>,
}

/// A collision alert, reduced to what the report counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collision {
    pub customer: String,
    pub rule: String,
    pub severity: String,
    pub reps: Vec<Rep>,
    pub intruder: Option<Rep>,
    /// The calendar day of the output's `time`, in that timestamp's own offset (`2026-11-02`).
    pub day: String,
}

/// What one output says, reduced to what the report counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    Collision(Collision),
    /// `leadguard.ownership.claimed`.
    Claimed {
        rep: Option<Rep>,
    },
    /// `leadguard.ownership.released`: a reclaim; `rep` is the previous owner.
    Released {
        rep: Option<Rep>,
        reason_code: Option<String>,
    },
    /// `leadguard.ownership.assigned`.
    Assigned {
        rep: Option<Rep>,
        strategy: Option<String>,
        had_previous_owner: bool,
    },
    /// `leadguard.ownership.reassigned`.
    Reassigned {
        from_rep: Option<Rep>,
        to_rep: Option<Rep>,
        resolution: Option<String>,
    },
    /// `leadguard.reassignment.recommended`.
    Recommended {
        from_rep: Option<Rep>,
        to_rep: Option<Rep>,
        resolution: Option<String>,
    },
    /// A type this report does not know (a newer leadguard): counted by type name only.
    Other {
        ty: String,
    },
}

/// One output that may stand (everything but withdrawals).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub id: String,
    pub time: Timestamp,
    pub time_text: String,
    pub fact: Fact,
}

/// A message that could not be read as an output.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Malformed {
    /// The line number in a file (1-based), or the message's position in the stream.
    pub line: u64,
    pub reason: String,
}

/// Everything read from one stream, before counting.
#[derive(Debug, Default)]
pub struct Collector {
    pub(crate) messages: u64,
    pub(crate) records: Vec<Record>,
    seen: HashSet<String>,
    pub(crate) duplicates: u64,
    pub(crate) malformed: Vec<Malformed>,
    pub(crate) malformed_count: u64,
    /// Withdrawn output id → the type the withdrawal says it had.
    pub(crate) withdrawn: HashMap<String, Option<String>>,
    pub(crate) withdrawals: u64,
}

#[derive(Deserialize)]
struct Envelope {
    id: String,
    #[serde(rename = "type")]
    ty: String,
    time: String,
    #[serde(default)]
    subject: Option<String>,
    data: serde_json::Value,
}

#[derive(Deserialize)]
struct CustomerIn {
    id: String,
}

#[derive(Deserialize)]
struct CollisionIn {
    rule: String,
    severity: String,
    #[serde(default)]
    customer: Option<CustomerIn>,
    reps: Vec<Rep>,
    #[serde(default)]
    intruder: Option<Rep>,
}

#[derive(Deserialize)]
struct ClaimedIn {
    #[serde(default)]
    rep: Option<Rep>,
}

#[derive(Deserialize)]
struct ReleasedIn {
    #[serde(default)]
    rep: Option<Rep>,
    #[serde(default)]
    reason_code: Option<String>,
}

#[derive(Deserialize)]
struct AssignedIn {
    #[serde(default)]
    rep: Option<Rep>,
    #[serde(default)]
    strategy: Option<String>,
    #[serde(default)]
    previous_owner: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct MoveIn {
    #[serde(default)]
    from_rep: Option<Rep>,
    #[serde(default)]
    to_rep: Option<Rep>,
    #[serde(default)]
    resolution: Option<String>,
}

#[derive(Deserialize)]
struct WithdrawnIn {
    withdrawn_id: String,
    #[serde(default)]
    withdrawn_type: Option<String>,
}

/// Reads `data` as `T`, naming the offending field on failure (`data.reps[1].id: ...`).
fn data<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            format!("`data`: {inner}")
        } else {
            format!("`data.{path}`: {inner}")
        }
    })
}

impl Collector {
    pub fn new() -> Collector {
        Collector::default()
    }

    /// Takes one message (one line of a file, without its line break). `line` is its position,
    /// named when the message is bad. Blank messages are skipped without comment: files often
    /// end with an empty line.
    pub fn push(&mut self, bytes: &[u8], line: u64) {
        self.messages += 1;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        if let Err(reason) = self.accept(bytes) {
            self.malformed_count += 1;
            if self.malformed.len() < MALFORMED_LISTED {
                self.malformed.push(Malformed { line, reason });
            }
        }
    }

    fn accept(&mut self, bytes: &[u8]) -> Result<(), String> {
        // Checked first so that `[1, 2]` is not explained in terms of struct fields.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err("not one JSON object".into());
        }
        let env: Envelope = serde_json::from_slice(bytes).map_err(|e| {
            if e.is_data() {
                format!("not a leadguard output: {e}")
            } else {
                format!("not one JSON object: {e}")
            }
        })?;
        if env.id.is_empty() {
            return Err("`id` is empty".into());
        }
        if self.seen.contains(&env.id) {
            // Outputs are delivered at least once; ids are content hashes, so a repeat is a
            // redelivery of the same output.
            self.duplicates += 1;
            return Ok(());
        }
        let time = Timestamp::parse_rfc3339(&env.time).map_err(|e| format!("`time`: {e}"))?;
        let fact = match env.ty.as_str() {
            "leadguard.output.withdrawn" => {
                let w: WithdrawnIn = data(env.data)?;
                self.withdrawals += 1;
                self.withdrawn
                    .entry(w.withdrawn_id)
                    .or_insert(w.withdrawn_type);
                self.seen.insert(env.id);
                return Ok(());
            }
            "leadguard.collision.detected" => {
                let c: CollisionIn = data(env.data)?;
                let customer = match (c.customer, env.subject) {
                    (Some(customer), _) => customer.id,
                    (None, Some(subject)) => subject,
                    (None, None) => {
                        return Err(
                            "names no customer (neither `data.customer` nor `subject`)".into()
                        )
                    }
                };
                Fact::Collision(Collision {
                    customer,
                    rule: c.rule,
                    severity: c.severity,
                    reps: c.reps,
                    intruder: c.intruder,
                    // RFC 3339 starts with the date in the timestamp's own offset, which is the
                    // day the people reading the output live in.
                    day: env.time[..10].to_string(),
                })
            }
            "leadguard.ownership.claimed" => {
                let c: ClaimedIn = data(env.data)?;
                Fact::Claimed { rep: c.rep }
            }
            "leadguard.ownership.released" => {
                let r: ReleasedIn = data(env.data)?;
                Fact::Released {
                    rep: r.rep,
                    reason_code: r.reason_code,
                }
            }
            "leadguard.ownership.assigned" => {
                let a: AssignedIn = data(env.data)?;
                Fact::Assigned {
                    rep: a.rep,
                    strategy: a.strategy,
                    had_previous_owner: a.previous_owner.is_some(),
                }
            }
            "leadguard.ownership.reassigned" => {
                let m: MoveIn = data(env.data)?;
                Fact::Reassigned {
                    from_rep: m.from_rep,
                    to_rep: m.to_rep,
                    resolution: m.resolution,
                }
            }
            "leadguard.reassignment.recommended" => {
                let m: MoveIn = data(env.data)?;
                Fact::Recommended {
                    from_rep: m.from_rep,
                    to_rep: m.to_rep,
                    resolution: m.resolution,
                }
            }
            other if other.starts_with("leadguard.") => Fact::Other {
                ty: other.to_string(),
            },
            other => return Err(format!("`type` `{other}` is not a leadguard output")),
        };
        self.records.push(Record {
            id: env.id.clone(),
            time,
            time_text: env.time,
            fact,
        });
        self.seen.insert(env.id);
        Ok(())
    }
}

/// Feeds every line of `reader` to a new collector. Bytes that are not UTF-8 make that line bad,
/// not the read; only an IO error stops it.
pub fn read_lines(mut reader: impl BufRead) -> io::Result<Collector> {
    let mut collector = Collector::new();
    let mut buf = Vec::with_capacity(4096);
    let mut line = 0;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            return Ok(collector);
        }
        line += 1;
        let mut end = buf.len();
        while end > 0 && matches!(buf[end - 1], b'\n' | b'\r') {
            end -= 1;
        }
        collector.push(&buf[..end], line);
    }
}
