//! A partition's engine state in the changelog topic.
//!
//! Changelog partition *p* holds the state of state partition *p* as:
//! - `chunk/<snapshot>/<n>`: the n-th piece of a snapshot
//!   ([`crate::engine::snapshot::Snapshot`] as JSON), with the snapshot's name in a header;
//! - `manifest`: which snapshot is complete (name, number of chunks, and the input offset it
//!   was taken at);
//! - `ticks`: wall-clock ticks applied since that snapshot, with the input offset each was
//!   applied at, and the tries of the pools' line of waiting customers made after a restart
//!   under another roster or other pools (see [`Tick::line`]), and how many of them had
//!   their outputs delivered (at-least-once mode: [`TickLog::delivered`]).
//!
//! A snapshot's name is its sequence number and a random number of the task that wrote it, so
//! its chunks have keys of their own. After writing a snapshot's manifest, a writer deletes
//! (tombstones) the chunks of every snapshot whose manifest it had seen before — never chunks
//! a manifest it hasn't seen may still name. This matters in at-least-once mode, where nothing
//! fences an instance that lost its partitions without noticing (a member dropped from the
//! group while starved of CPU): two writers may then interleave their snapshots, and with
//! shared chunk keys the newest manifest could name chunks the other writer had overwritten,
//! which compaction then removes for good. With these rules the newest manifest's chunks are
//! always there, so a compacted topic keeps about one snapshot per partition and the newest
//! is always whole. The exception is a snapshot whose writer stopped before its manifest (a
//! crash, a rewind, a lost partition): nobody can tell that its manifest will never come, so
//! its chunks stay; a restore counts them ([`Unfinished`]) and they are logged. In exactly-once
//! mode all of it is written in the same transaction as the outputs and input offsets it goes
//! with, so the state read back always matches what was committed (and an unfinished snapshot
//! is aborted with its transaction).
//!
//! Recovery is "snapshot, then replay": restore the snapshot, re-read the input from the
//! snapshot's offset, re-apply the logged ticks at their offsets, and drop the outputs of
//! everything up to the committed offset (they were already committed), and of the ticks the
//! log says were delivered. The engine is
//! deterministic, so this rebuilds exactly the state that was committed.

use super::records::Record;
use crate::engine::snapshot::Snapshot;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

pub const H_SNAPSHOT: &str = "leadguard_snapshot";
const MANIFEST: &[u8] = b"manifest";
const TICKS: &[u8] = b"ticks";
const CHUNK_PREFIX: &[u8] = b"chunk/";

/// A snapshot's name: the writer's sequence number and the writer's random number.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct SnapshotName {
    pub id: u64,
    pub writer: u64,
}

impl fmt::Display for SnapshotName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:016x}", self.id, self.writer)
    }
}

impl SnapshotName {
    fn parse(s: &[u8]) -> Option<SnapshotName> {
        let s = std::str::from_utf8(s).ok()?;
        let (id, writer) = s.split_once('.')?;
        Some(SnapshotName {
            id: id.parse().ok()?,
            writer: u64::from_str_radix(writer, 16).ok()?,
        })
    }
}

/// Which snapshot is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub id: u64,
    pub writer: u64,
    /// The input offset the snapshot was taken at: the next message to process.
    pub offset: i64,
    pub chunks: u32,
    pub bytes: u64,
}

impl Manifest {
    pub fn name(&self) -> SnapshotName {
        SnapshotName {
            id: self.id,
            writer: self.writer,
        }
    }
}

/// A wall-clock tick: `Engine::handle_timeout(now)` before processing input offset `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tick {
    pub offset: i64,
    pub now: i64,
    /// Whether a timer was due or the tick published anything: a tick that did neither may
    /// be merged with the next one.
    pub fired: bool,
    /// Then `Engine::try_line_again`: the first tick after a restart under another roster or
    /// other pools. Absent in earlier builds' logs (which had no such tick).
    #[serde(default, skip_serializing_if = "is_false")]
    pub line: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Ticks applied since snapshot `snapshot` (id 0: since the partition's beginning).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickLog {
    pub snapshot: SnapshotName,
    pub ticks: Vec<Tick>,
    /// How many of the first ticks had their outputs delivered when this log was written. In
    /// `at_least_once` mode a tick's outputs go out after its log (nothing makes writes to two
    /// topics atomic), so a crash may lose those of the later ones: a replay publishes them
    /// again. Absent in logs of earlier builds, which wrote the log after the outputs: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered: Option<usize>,
}

impl TickLog {
    /// An empty log after snapshot `snapshot`.
    pub fn after(snapshot: SnapshotName) -> TickLog {
        TickLog {
            snapshot,
            ticks: Vec::new(),
            delivered: Some(0),
        }
    }

    /// Records a tick. Consecutive ticks at the same input offset where the earlier fired no
    /// timer are one tick: `handle_timeout(t1); handle_timeout(t2)` then equals
    /// `handle_timeout(t2)`.
    pub fn push(&mut self, tick: Tick) {
        if let Some(last) = self.ticks.last_mut() {
            if last.offset == tick.offset && !last.fired {
                *last = tick;
                // The merged tick's outputs are the new one's.
                let merged = self.ticks.len() - 1;
                self.delivered = self.delivered.map(|d| d.min(merged));
                return;
            }
        }
        self.ticks.push(tick);
    }

    /// Every tick's outputs were delivered.
    pub fn all_delivered(&mut self) {
        self.delivered = Some(self.ticks.len());
    }

    /// The outputs of the first `n` ticks were delivered (of those before too).
    pub fn delivered_up_to(&mut self, n: usize) {
        let n = n.min(self.ticks.len()).max(self.delivered.unwrap_or(0));
        self.delivered = Some(n);
    }

    /// How many of the first ticks had their outputs delivered.
    pub fn delivered(&self) -> usize {
        self.delivered
            .unwrap_or(self.ticks.len())
            .min(self.ticks.len())
    }
}

/// The records that store `snap`, taken at input offset `offset`, as snapshot `name` of
/// `partition`, followed by the deletion of the chunks `superseded` (see the module docs).
pub fn snapshot_records(
    topic: &str,
    partition: i32,
    name: SnapshotName,
    offset: i64,
    snap: &Snapshot,
    superseded: &[Vec<u8>],
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
            chunk_key(name, n as u32),
            Some(chunk.to_vec()),
            vec![(H_SNAPSHOT, name.to_string().into_bytes())],
        ));
    }
    let manifest = Manifest {
        id: name.id,
        writer: name.writer,
        offset,
        chunks: chunks.len() as u32,
        bytes: bytes.len() as u64,
    };
    records.push(record(
        MANIFEST.to_vec(),
        Some(serde_json::to_vec(&manifest).expect("serializes")),
        Vec::new(),
    ));
    records.push(ticks_record(topic, partition, &TickLog::after(name)));
    // Only after the manifest that replaces them.
    for key in superseded {
        records.push(record(key.clone(), None, Vec::new()));
    }
    (manifest, records)
}

/// The chunk keys of the snapshot `manifest` describes.
pub fn chunk_keys(manifest: &Manifest) -> Vec<Vec<u8>> {
    (0..manifest.chunks)
        .map(|n| chunk_key(manifest.name(), n))
        .collect()
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

fn chunk_key(name: SnapshotName, n: u32) -> Vec<u8> {
    format!("chunk/{name}/{n}").into_bytes()
}

/// What a changelog partition says.
#[derive(Debug, Default)]
pub struct Restored {
    /// The latest complete snapshot, if any.
    pub snapshot: Option<(Manifest, Snapshot)>,
    /// Ticks to re-apply after it.
    pub ticks: Vec<Tick>,
    /// How many of the first `ticks` had their outputs delivered (see [`TickLog::delivered`]).
    pub ticks_delivered: usize,
    /// Chunks still in the topic whose manifest was read (the restored snapshot's and any
    /// superseded one's): the restoring writer deletes them after its next manifest.
    pub superseded: Vec<Vec<u8>>,
    /// The tick log belonged to another snapshot than the newest manifest's (two writers
    /// interleaved): its ticks could not be re-applied.
    pub ticks_mismatched: bool,
    /// Chunks of snapshots whose manifest was never read: their writer stopped while writing
    /// them (a crash, a rewind, or a writer that lost the partition in `at_least_once` mode).
    /// No state is read from them, and nobody deletes them: a manifest for them may still come
    /// from a writer that doesn't know it lost the partition (see the module docs).
    pub unfinished: Unfinished,
}

/// Chunks of snapshots that were never completed, left in the changelog.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Unfinished {
    pub snapshots: usize,
    pub chunks: usize,
    pub bytes: u64,
}

/// Reads a changelog partition record by record, from the beginning. Works on a compacted
/// topic and on one that keeps every record: chunks are dropped when their deletion is read,
/// so memory holds the snapshots not yet deleted (about one, plus any being written).
#[derive(Debug, Default)]
pub struct Restorer {
    manifest: Option<Manifest>,
    /// Snapshots whose manifest was read.
    seen: BTreeSet<SnapshotName>,
    /// Live chunks: (snapshot, chunk number) → bytes.
    chunks: BTreeMap<(SnapshotName, u32), Vec<u8>>,
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
            self.seen.insert(m.name());
            self.manifest = Some(m);
        } else if key == TICKS {
            let Some(value) = value else { return Ok(()) };
            self.ticks = Some(
                serde_json::from_slice(value)
                    .map_err(|e| format!("an unreadable tick log: {e}"))?,
            );
        } else if let Some(rest) = key.strip_prefix(CHUNK_PREFIX) {
            let parsed = rest.iter().rposition(|b| *b == b'/').and_then(|slash| {
                let name = SnapshotName::parse(&rest[..slash])?;
                let n = std::str::from_utf8(&rest[slash + 1..]).ok()?.parse().ok()?;
                Some((name, n))
            });
            let Some((name, n)) = parsed else {
                return Err(format!(
                    "a chunk key `{}` this version does not read (written by an older leadguard? \
                     such a changelog must be emptied and the partition rebuilt from its input)",
                    String::from_utf8_lossy(key)
                ));
            };
            match value {
                None => {
                    self.chunks.remove(&(name, n));
                }
                Some(value) => {
                    if snapshot_header.is_some_and(|h| h != name.to_string().as_bytes()) {
                        return Err(format!(
                            "chunk `{}` says it belongs to snapshot `{}`",
                            String::from_utf8_lossy(key),
                            String::from_utf8_lossy(snapshot_header.unwrap_or_default())
                        ));
                    }
                    self.chunks.insert((name, n), value.to_vec());
                }
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
        let superseded = self
            .chunks
            .keys()
            .filter(|(name, _)| self.seen.contains(name))
            .map(|(name, n)| chunk_key(*name, *n))
            .collect();
        let mut unfinished = Unfinished::default();
        let mut last = None;
        for ((name, _), bytes) in &self.chunks {
            if self.seen.contains(name) {
                continue;
            }
            if last != Some(*name) {
                unfinished.snapshots += 1;
                last = Some(*name);
            }
            unfinished.chunks += 1;
            unfinished.bytes += bytes.len() as u64;
        }
        let Some(m) = self.manifest else {
            let (ticks, ticks_mismatched) = match self.ticks {
                Some(t) if t.snapshot.id == 0 => (t, false),
                Some(t) => (TickLog::default(), !t.ticks.is_empty()),
                None => (TickLog::default(), false),
            };
            return Ok(Restored {
                snapshot: None,
                ticks_delivered: ticks.delivered(),
                ticks: ticks.ticks,
                superseded,
                ticks_mismatched,
                unfinished,
            });
        };
        let mut bytes = Vec::with_capacity(m.bytes as usize);
        for n in 0..m.chunks {
            let chunk = self.chunks.get(&(m.name(), n)).ok_or_else(|| {
                format!("snapshot {} is missing chunk {n} of {}", m.name(), m.chunks)
            })?;
            bytes.extend_from_slice(chunk);
        }
        if bytes.len() as u64 != m.bytes {
            return Err(format!(
                "snapshot {} has {} bytes, its manifest says {}",
                m.name(),
                bytes.len(),
                m.bytes
            ));
        }
        // The format first: a snapshot of another format would only fail to parse, with a
        // message about some field instead of what to do.
        #[derive(serde::Deserialize)]
        struct Format {
            format: u32,
        }
        if let Ok(Format { format }) = serde_json::from_slice::<Format>(&bytes) {
            if format != crate::engine::snapshot::SNAPSHOT_FORMAT {
                return Err(format!(
                    "snapshot {} was written in format {format} (by another leadguard version); \
                     this version reads format {}: run the version that wrote it, or empty the \
                     changelog topic and let the partition be rebuilt from its input",
                    m.name(),
                    crate::engine::snapshot::SNAPSHOT_FORMAT
                ));
            }
        }
        let snap: Snapshot = serde_json::from_slice(&bytes)
            .map_err(|e| format!("snapshot {} is unreadable: {e}", m.name()))?;
        let (ticks, ticks_mismatched) = match self.ticks {
            Some(t) if t.snapshot == m.name() => (t, false),
            Some(t) => (TickLog::default(), !t.ticks.is_empty()),
            None => (TickLog::default(), false),
        };
        Ok(Restored {
            snapshot: Some((m, snap)),
            ticks_delivered: ticks.delivered(),
            ticks: ticks.ticks,
            superseded,
            ticks_mismatched,
            unfinished,
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

    const A: u64 = 0xa;
    const B: u64 = 0xb;

    fn name(id: u64, writer: u64) -> SnapshotName {
        SnapshotName { id, writer }
    }

    /// What a compacted topic keeps: the newest record of each key, deletions dropped.
    fn compacted(records: &[Record]) -> Vec<Record> {
        let mut last: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
        for (i, r) in records.iter().enumerate() {
            last.insert(r.key.clone().unwrap(), i);
        }
        let keep: BTreeSet<usize> = last.into_values().collect();
        records
            .iter()
            .enumerate()
            .filter(|(i, r)| keep.contains(i) && r.value.is_some())
            .map(|(_, r)| r.clone())
            .collect()
    }

    fn restore(records: &[Record]) -> Restored {
        let mut r = Restorer::default();
        feed(&mut r, records);
        r.finish().unwrap()
    }

    /// A tick log of an earlier build has no count of delivered ticks: it was written after
    /// their outputs, so all were.
    #[test]
    fn an_earlier_builds_tick_log_counts_every_tick_delivered() {
        let old = br#"{"snapshot":{"id":0,"writer":0},"ticks":[{"offset":3,"now":5,"fired":true},{"offset":4,"now":6,"fired":true}]}"#;
        let log: TickLog = serde_json::from_slice(old).expect("reads");
        assert_eq!(log.delivered(), 2);
        let mut r = Restorer::default();
        r.add(Some(TICKS), Some(old), None).unwrap();
        let restored = r.finish().unwrap();
        assert_eq!((restored.ticks.len(), restored.ticks_delivered), (2, 2));
    }

    #[test]
    fn the_newest_complete_snapshot_and_its_ticks_are_restored() {
        let first = engine_with(10).snapshot();
        let second = engine_with(40).snapshot();
        let (m1, r1) = snapshot_records("cl", 2, name(1, A), 100, &first, &[], 200);
        let (m2, r2) = snapshot_records("cl", 2, name(2, A), 250, &second, &chunk_keys(&m1), 4096);
        assert!(m1.chunks > m2.chunks, "smaller chunks, more of them");
        // The second snapshot deletes the first one's chunks, after its manifest.
        assert_eq!(
            r2.iter().filter(|r| r.value.is_none()).count(),
            m1.chunks as usize
        );
        let manifest_at = r2.iter().position(|r| r.key.as_deref() == Some(MANIFEST));
        let first_deletion = r2.iter().position(|r| r.value.is_none());
        assert!(manifest_at < first_deletion);
        let mut ticks = TickLog::after(name(2, A));
        ticks.push(Tick {
            offset: 260,
            now: 5,
            fired: false,
            line: false,
        });
        ticks.all_delivered();
        assert_eq!(ticks.delivered(), 1);
        ticks.push(Tick {
            offset: 260,
            now: 6,
            fired: true,
            line: false,
        });
        ticks.push(Tick {
            offset: 261,
            now: 7,
            fired: false,
            line: false,
        });
        assert_eq!(ticks.ticks.len(), 2, "a tick that fired nothing is merged");
        assert_eq!(
            ticks.delivered(),
            0,
            "the merged tick's outputs are the new one's"
        );
        let mut all = [r1, r2, vec![ticks_record("cl", 2, &ticks)]].concat();
        // Pieces of a third snapshot whose manifest never came (an aborted write).
        let (_, r3) = snapshot_records("cl", 2, name(3, A), 400, &first, &chunk_keys(&m2), 300);
        all.extend_from_slice(&r3[..2]);
        let unfinished = Unfinished {
            snapshots: 1,
            chunks: 2,
            bytes: r3[..2]
                .iter()
                .map(|r| r.value.as_ref().unwrap().len() as u64)
                .sum(),
        };
        for records in [all.clone(), compacted(&all)] {
            let restored = restore(&records);
            let (m, snap) = restored.snapshot.unwrap();
            assert_eq!(m, m2);
            assert_eq!(snap, second);
            assert_eq!(restored.ticks, ticks.ticks);
            assert_eq!(restored.ticks_delivered, 0);
            assert!(!restored.ticks_mismatched);
            // The restored snapshot's chunks go after the next manifest; the unfinished
            // snapshot's stay (a manifest naming them may still come), and are reported.
            assert_eq!(restored.superseded, chunk_keys(&m2));
            assert_eq!(restored.unfinished, unfinished);
        }
    }

    /// In at-least-once mode an instance that lost a partition without noticing may keep
    /// writing it while the new owner does: the newest manifest must still be whole, on a
    /// compacted topic too, whichever way the writes interleave.
    #[test]
    fn two_writers_interleaving_leave_the_newest_manifest_whole() {
        let small = engine_with(10).snapshot();
        let big = engine_with(40).snapshot();
        // Both restored the same snapshot, then write their own, one record at a time.
        let (m0, base) = snapshot_records("cl", 1, name(1, A), 10, &small, &[], 400);
        let r0 = restore(&base);
        let mut writers = [(A, r0.superseded.clone(), 1u64), (B, r0.superseded, 1u64)];
        let mut log = base;
        let mut newest = m0;
        let mut seed = 7u64;
        for round in 0..40 {
            let mut pending: Vec<(usize, Vec<Record>, Manifest)> = Vec::new();
            for (w, (writer, superseded, id)) in writers.iter_mut().enumerate() {
                let snap = if (round + w) % 2 == 0 { &small } else { &big };
                *id += 1;
                let (m, recs) =
                    snapshot_records("cl", 1, name(*id, *writer), 10, snap, superseded, 400);
                *superseded = chunk_keys(&m);
                pending.push((w, recs, m));
            }
            // Interleave the two writers' records at random.
            let (mut a, mut b) = (pending[0].1.iter(), pending[1].1.iter());
            loop {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let next = if seed.is_multiple_of(2) {
                    a.next().or_else(|| b.next())
                } else {
                    b.next().or_else(|| a.next())
                };
                let Some(r) = next else { break };
                if r.key.as_deref() == Some(MANIFEST) {
                    newest = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
                }
                log.push(r.clone());
            }
            for records in [log.clone(), compacted(&log)] {
                let restored = restore(&records);
                assert_eq!(
                    restored.snapshot.map(|(m, _)| m),
                    Some(newest),
                    "round {round}"
                );
            }
        }
        // A restore picks up what both left behind and deletes it with its next snapshot.
        let restored = restore(&log);
        let (m, recs) =
            snapshot_records("cl", 1, name(99, A), 10, &small, &restored.superseded, 400);
        log.extend(recs);
        let after = compacted(&log);
        let chunks = after
            .iter()
            .filter(|r| r.key.as_ref().unwrap().starts_with(CHUNK_PREFIX))
            .count();
        assert_eq!(chunks, m.chunks as usize, "one snapshot left");
    }

    #[test]
    fn an_empty_changelog_restores_nothing() {
        let restored = Restorer::default().finish().unwrap();
        assert!(restored.snapshot.is_none());
        assert!(restored.ticks.is_empty());
    }

    #[test]
    fn a_snapshot_of_another_format_is_refused_with_what_to_do() {
        let mut snap = engine_with(5).snapshot();
        snap.format -= 1;
        let (_, records) = snapshot_records("cl", 0, name(1, A), 5, &snap, &[], 100);
        let mut r = Restorer::default();
        feed(&mut r, &records);
        let err = r.finish().unwrap_err();
        assert!(err.contains("written in format"), "{err}");
        assert!(err.contains("empty the changelog topic"), "{err}");
    }

    #[test]
    fn a_missing_chunk_is_an_error_not_a_silent_reset() {
        let (_, records) = snapshot_records(
            "cl",
            0,
            name(1, A),
            5,
            &engine_with(30).snapshot(),
            &[],
            100,
        );
        let mut r = Restorer::default();
        let mut without_one = records.clone();
        without_one.remove(1);
        feed(&mut r, &without_one);
        let err = r.finish().unwrap_err();
        assert!(err.contains("missing chunk 1"), "{err}");
    }

    #[test]
    fn a_chunk_key_of_another_format_is_refused_with_what_to_do() {
        let mut r = Restorer::default();
        let err = r
            .add(Some(b"chunk/0"), Some(b"{}"), Some(b"1"))
            .unwrap_err();
        assert!(err.contains("emptied"), "{err}");
    }
}
