//! A partition's engine state in the changelog topic.
//!
//! Changelog partition *p* holds the state of state partition *p* as:
//! - `chunk/<n>`: the n-th piece of the latest snapshot ([`crate::engine::snapshot::Snapshot`]
//!   as JSON), with the snapshot's id in a header;
//! - `manifest`: which snapshot is complete (id, number of chunks, and the input offset it was
//!   taken at);
//! - `ticks`: wall-clock ticks applied since that snapshot, with the input offset each was
//!   applied at.
//!
//! Keys are reused by every snapshot, so a compacted topic keeps about one snapshot per
//! partition; stale chunks past the new count are deleted (tombstones). All of it is written in
//! the same transaction as the outputs and input offsets it goes with, so the state read back
//! always matches what was committed.
//!
//! Recovery is "snapshot, then replay": restore the snapshot, re-read the input from the
//! snapshot's offset, re-apply the logged ticks at their offsets, and drop the outputs of
//! everything up to the committed offset (they were already committed). The engine is
//! deterministic, so this rebuilds exactly the state that was committed.

use super::records::Record;
use crate::engine::snapshot::Snapshot;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const H_SNAPSHOT: &str = "leadguard_snapshot";
const MANIFEST: &[u8] = b"manifest";
const TICKS: &[u8] = b"ticks";
const CHUNK_PREFIX: &[u8] = b"chunk/";

/// Which snapshot is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub id: u64,
    /// The input offset the snapshot was taken at: the next message to process.
    pub offset: i64,
    pub chunks: u32,
    pub bytes: u64,
}

/// A wall-clock tick: `Engine::handle_timeout(now)` before processing input offset `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tick {
    pub offset: i64,
    pub now: i64,
    /// Whether a timer was due: a tick that fired nothing may be merged with the next one.
    pub fired: bool,
}

/// Ticks applied since snapshot `snapshot_id` (0: since the partition's beginning).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickLog {
    pub snapshot_id: u64,
    pub ticks: Vec<Tick>,
}

impl TickLog {
    /// Records a tick. Consecutive ticks at the same input offset where the earlier fired no
    /// timer are one tick: `handle_timeout(t1); handle_timeout(t2)` then equals
    /// `handle_timeout(t2)`.
    pub fn push(&mut self, tick: Tick) {
        if let Some(last) = self.ticks.last_mut() {
            if last.offset == tick.offset && !last.fired {
                *last = tick;
                return;
            }
        }
        self.ticks.push(tick);
    }
}

/// The records that store `snap`, taken at input offset `offset`, as snapshot `id` of
/// `partition`; `previous_chunks` is how many chunks the previous snapshot had.
pub fn snapshot_records(
    topic: &str,
    partition: i32,
    id: u64,
    offset: i64,
    snap: &Snapshot,
    previous_chunks: u32,
    chunk_bytes: usize,
) -> (Manifest, Vec<Record>) {
    let bytes = serde_json::to_vec(snap).expect("a snapshot serializes");
    let record = |key: Vec<u8>, value: Option<Vec<u8>>, headers| Record {
        topic: topic.to_string(),
        partition: Some(partition),
        key: Some(key),
        value,
        headers,
        timestamp: None,
    };
    let mut records = Vec::new();
    let chunks: Vec<&[u8]> = bytes.chunks(chunk_bytes.max(1)).collect();
    for (n, chunk) in chunks.iter().enumerate() {
        records.push(record(
            chunk_key(n as u32),
            Some(chunk.to_vec()),
            vec![(H_SNAPSHOT, id.to_string().into_bytes())],
        ));
    }
    for n in chunks.len() as u32..previous_chunks {
        records.push(record(chunk_key(n), None, Vec::new()));
    }
    let manifest = Manifest {
        id,
        offset,
        chunks: chunks.len() as u32,
        bytes: bytes.len() as u64,
    };
    records.push(record(
        MANIFEST.to_vec(),
        Some(serde_json::to_vec(&manifest).expect("serializes")),
        Vec::new(),
    ));
    records.push(ticks_record(
        topic,
        partition,
        &TickLog {
            snapshot_id: id,
            ticks: Vec::new(),
        },
    ));
    (manifest, records)
}

/// The record that stores the ticks since the last snapshot.
pub fn ticks_record(topic: &str, partition: i32, log: &TickLog) -> Record {
    Record {
        topic: topic.to_string(),
        partition: Some(partition),
        key: Some(TICKS.to_vec()),
        value: Some(serde_json::to_vec(log).expect("serializes")),
        headers: Vec::new(),
        timestamp: None,
    }
}

fn chunk_key(n: u32) -> Vec<u8> {
    let mut k = CHUNK_PREFIX.to_vec();
    k.extend_from_slice(n.to_string().as_bytes());
    k
}

/// What a changelog partition says.
#[derive(Debug, Default)]
pub struct Restored {
    /// The latest complete snapshot, if any.
    pub snapshot: Option<(Manifest, Snapshot)>,
    /// Ticks to re-apply after it.
    pub ticks: Vec<Tick>,
}

/// Reads a changelog partition record by record, from the beginning. Works on a compacted
/// topic and on one that keeps every record: only the newest complete snapshot is kept in
/// memory (plus pieces of at most one newer, unfinished one).
#[derive(Debug, Default)]
pub struct Restorer {
    manifest: Option<Manifest>,
    /// (snapshot id, chunk number) → bytes.
    chunks: BTreeMap<(u64, u32), Vec<u8>>,
    ticks: Option<TickLog>,
    pub records: u64,
}

impl Restorer {
    pub fn add(
        &mut self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        snapshot_header: Option<&[u8]>,
    ) -> Result<(), String> {
        self.records += 1;
        let Some(key) = key else {
            return Err("a changelog record without a key".into());
        };
        if key == MANIFEST {
            let Some(value) = value else { return Ok(()) };
            let m: Manifest = serde_json::from_slice(value)
                .map_err(|e| format!("an unreadable manifest: {e}"))?;
            self.chunks.retain(|(id, _), _| *id >= m.id);
            self.manifest = Some(m);
        } else if key == TICKS {
            let Some(value) = value else { return Ok(()) };
            self.ticks = Some(
                serde_json::from_slice(value)
                    .map_err(|e| format!("an unreadable tick log: {e}"))?,
            );
        } else if let Some(n) = key.strip_prefix(CHUNK_PREFIX) {
            let n: u32 = std::str::from_utf8(n)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or("a chunk key without a number")?;
            let (Some(value), Some(id)) = (value, snapshot_header) else {
                // A tombstone, or a chunk without its id: nothing to keep.
                return Ok(());
            };
            let id: u64 = std::str::from_utf8(id)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or("a chunk with an unreadable snapshot id")?;
            if self.manifest.is_none_or(|m| id >= m.id) {
                self.chunks.insert((id, n), value.to_vec());
            }
        } else {
            return Err(format!(
                "an unexpected key `{}` (is the changelog topic shared with something else?)",
                String::from_utf8_lossy(key)
            ));
        }
        Ok(())
    }

    pub fn finish(self) -> Result<Restored, String> {
        let Some(m) = self.manifest else {
            return Ok(Restored {
                snapshot: None,
                ticks: self
                    .ticks
                    .filter(|t| t.snapshot_id == 0)
                    .map(|t| t.ticks)
                    .unwrap_or_default(),
            });
        };
        let mut bytes = Vec::with_capacity(m.bytes as usize);
        for n in 0..m.chunks {
            let chunk = self
                .chunks
                .get(&(m.id, n))
                .ok_or_else(|| format!("snapshot {} is missing chunk {n} of {}", m.id, m.chunks))?;
            bytes.extend_from_slice(chunk);
        }
        if bytes.len() as u64 != m.bytes {
            return Err(format!(
                "snapshot {} has {} bytes, its manifest says {}",
                m.id,
                bytes.len(),
                m.bytes
            ));
        }
        let snap: Snapshot = serde_json::from_slice(&bytes)
            .map_err(|e| format!("snapshot {} is unreadable: {e}", m.id))?;
        Ok(Restored {
            snapshot: Some((m, snap)),
            ticks: self
                .ticks
                .filter(|t| t.snapshot_id == m.id)
                .map(|t| t.ticks)
                .unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Roster, Rules};
    use crate::engine::Engine;
    use std::sync::Arc;

    fn feed(r: &mut Restorer, records: &[Record]) {
        for rec in records {
            let id = rec
                .headers
                .iter()
                .find(|(n, _)| *n == H_SNAPSHOT)
                .map(|(_, v)| v.as_slice());
            r.add(rec.key.as_deref(), rec.value.as_deref(), id).unwrap();
        }
    }

    fn engine_with(events: usize) -> Engine {
        let rules = Arc::new(Rules::embedded());
        let mut ingest = crate::ingest::Ingest::new(rules.clone());
        let mut e = Engine::new(rules, &Roster::default());
        for i in 0..events {
            let line = format!(
                r#"{{"event_id":"{i}","kind":"call","occurred_at":"2026-11-02T09:{:02}:00+08:00","rep":{{"id":"r{}"}},"customer":{{"id":"C{}"}}}}"#,
                i % 60,
                i % 7,
                i % 13
            );
            let ev = ingest.parse(line.as_bytes(), None, "t").unwrap();
            let _ = e.handle_event(&ev, ev.occurred_at());
        }
        e.drain_outputs().for_each(drop);
        e
    }

    #[test]
    fn the_newest_complete_snapshot_and_its_ticks_are_restored() {
        let first = engine_with(10).snapshot();
        let second = engine_with(40).snapshot();
        let (m1, r1) = snapshot_records("cl", 2, 1, 100, &first, 0, 200);
        let (m2, r2) = snapshot_records("cl", 2, 2, 250, &second, m1.chunks, 4096);
        assert!(m1.chunks > m2.chunks, "smaller chunks, more of them");
        // The second snapshot deletes the first one's extra chunks.
        assert!(r2.iter().any(|r| r.value.is_none()));
        let mut ticks = TickLog {
            snapshot_id: 2,
            ticks: Vec::new(),
        };
        ticks.push(Tick {
            offset: 260,
            now: 5,
            fired: false,
        });
        ticks.push(Tick {
            offset: 260,
            now: 6,
            fired: true,
        });
        ticks.push(Tick {
            offset: 261,
            now: 7,
            fired: false,
        });
        assert_eq!(ticks.ticks.len(), 2, "a tick that fired nothing is merged");
        let mut r = Restorer::default();
        feed(&mut r, &r1);
        feed(&mut r, &r2);
        feed(&mut r, &[ticks_record("cl", 2, &ticks)]);
        // Pieces of a third snapshot whose manifest never came (an aborted write).
        let (_, r3) = snapshot_records("cl", 2, 3, 400, &first, m2.chunks, 300);
        feed(&mut r, &r3[..2]);
        let restored = r.finish().unwrap();
        let (m, snap) = restored.snapshot.unwrap();
        assert_eq!(m, m2);
        assert_eq!(snap, second);
        assert_eq!(restored.ticks, ticks.ticks);
    }

    #[test]
    fn an_empty_changelog_restores_nothing() {
        let restored = Restorer::default().finish().unwrap();
        assert!(restored.snapshot.is_none());
        assert!(restored.ticks.is_empty());
    }

    #[test]
    fn a_missing_chunk_is_an_error_not_a_silent_reset() {
        let (_, records) = snapshot_records("cl", 0, 1, 5, &engine_with(30).snapshot(), 0, 100);
        let mut r = Restorer::default();
        let mut without_one = records.clone();
        without_one.remove(1);
        feed(&mut r, &without_one);
        let err = r.finish().unwrap_err();
        assert!(err.contains("missing chunk 1"), "{err}");
    }
}
