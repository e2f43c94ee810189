//! Reps and the small words (teams, roles, sources, attributes) the core interns.
//!
//! The core compares reps and teams on every event, so it works with small integer handles and
//! keeps the strings here once.

use crate::config::Roster;
use crate::digest_map::{DigestMap, Digested};
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// A handle to an interned word. [`Sym::NONE`] stands for "not given".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sym(pub u32);

impl Sym {
    pub const NONE: Sym = Sym(u32::MAX);
    pub fn is_none(self) -> bool {
        self == Sym::NONE
    }
}

/// Interns strings to [`Sym`]s.
#[derive(Debug, Default)]
pub struct Interner {
    words: Vec<Arc<str>>,
    index: FxHashMap<Arc<str>, Sym>,
}

impl Interner {
    pub fn intern(&mut self, s: &str) -> Sym {
        if let Some(&sym) = self.index.get(s) {
            return sym;
        }
        let sym = Sym(self.words.len() as u32);
        let word: Arc<str> = Arc::from(s);
        self.words.push(word.clone());
        self.index.insert(word, sym);
        sym
    }
    pub fn intern_opt(&mut self, s: Option<&str>) -> Sym {
        s.map_or(Sym::NONE, |s| self.intern(s))
    }
    pub fn get(&self, sym: Sym) -> Option<&Arc<str>> {
        self.words.get(sym.0 as usize)
    }
    pub fn lookup(&self, s: &str) -> Option<Sym> {
        self.index.get(s).copied()
    }
    pub fn len(&self) -> usize {
        self.words.len()
    }
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }
}

/// A handle to a rep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepIdx(pub u32);

/// What the roster says about a rep (events may add a team or role for reps it doesn't list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepInfo {
    pub id: Arc<str>,
    pub team: Sym,
    pub role: Sym,
    pub manager: Sym,
    pub active: bool,
    pub in_roster: bool,
    pub region: Sym,
    /// Local dates away, both ends included.
    pub away: Box<[(chrono::NaiveDate, chrono::NaiveDate)]>,
    pub capacity: Option<u32>,
    pub industries: Box<[Sym]>,
    pub tiers: Box<[Sym]>,
    pub product_lines: Box<[Sym]>,
}

impl RepInfo {
    /// A rep the roster doesn't list: known from events only.
    fn unlisted(id: Arc<str>) -> RepInfo {
        RepInfo {
            id,
            team: Sym::NONE,
            role: Sym::NONE,
            manager: Sym::NONE,
            active: true,
            in_roster: false,
            region: Sym::NONE,
            away: Box::new([]),
            capacity: None,
            industries: Box::new([]),
            tiers: Box::new([]),
            product_lines: Box::new([]),
        }
    }

    pub fn away_on(&self, date: chrono::NaiveDate) -> bool {
        self.away.iter().any(|(f, t)| *f <= date && date <= *t)
    }

    /// The first date after `date` the rep is not away (ranges that follow on from each other
    /// count as one leave).
    pub fn back_after(&self, date: chrono::NaiveDate) -> Option<chrono::NaiveDate> {
        let mut day = date.succ_opt()?;
        while self.away_on(day) {
            let end = self
                .away
                .iter()
                .filter(|(f, t)| *f <= day && day <= *t)
                .map(|(_, t)| *t)
                .max()?;
            day = end.succ_opt()?;
        }
        Some(day)
    }
}

/// What a roster reload changed, in reps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RosterChange {
    /// Listed now, not before (new hires, or reps known from events until now).
    pub added: usize,
    /// Listed before and now, with other fields.
    pub changed: usize,
    /// Listed before, not now.
    pub removed: usize,
}

/// Every rep seen, roster first.
#[derive(Debug, Default)]
pub struct Reps {
    pub list: Vec<RepInfo>,
    /// By the digest of the rep id, which events carry ([`crate::event::Event::rep_digest`]).
    index: DigestMap<RepIdx>,
}

impl Reps {
    pub fn from_roster(roster: &Roster, words: &mut Interner) -> Reps {
        let mut reps = Reps::default();
        reps.apply_roster(roster, words);
        reps
    }

    /// Puts what `roster` says of each rep in force: reps it lists get their roster fields,
    /// new ones a handle after every handle given so far (handles never move: logs, owners
    /// and books refer to them), and reps it no longer lists become reps the roster doesn't
    /// know (their team and role come from their events again, and pools don't assign to
    /// them).
    pub fn apply_roster(&mut self, roster: &Roster, words: &mut Interner) -> RosterChange {
        let mut change = RosterChange::default();
        let mut listed = vec![false; self.list.len()];
        for r in &roster.reps {
            let idx = self.intern(&r.id);
            let i = idx.0 as usize;
            if listed.len() <= i {
                listed.resize(i + 1, false);
            }
            listed[i] = true;
            // Interned in this order, as always: snapshots list the words by number.
            let team = words.intern_opt(r.team.as_deref());
            let role = words.intern_opt(r.role.as_deref());
            let manager = words.intern_opt(r.manager.as_deref());
            let region = words.intern_opt(r.region.as_deref());
            let mut syms = |list: &[String]| list.iter().map(|w| words.intern(w)).collect();
            let info = RepInfo {
                id: self.list[i].id.clone(),
                team,
                role,
                manager,
                active: r.active,
                in_roster: true,
                region,
                away: r.away.clone().into(),
                capacity: r.capacity,
                industries: syms(&r.industries),
                tiers: syms(&r.tiers),
                product_lines: syms(&r.product_lines),
            };
            let old = &mut self.list[i];
            if !old.in_roster {
                change.added += 1;
            } else if *old != info {
                change.changed += 1;
            }
            *old = info;
        }
        for (i, info) in self.list.iter_mut().enumerate() {
            if info.in_roster && !listed.get(i).copied().unwrap_or(false) {
                *info = RepInfo::unlisted(info.id.clone());
                change.removed += 1;
            }
        }
        change
    }

    fn insert(&mut self, id: Digested<'_>) -> RepIdx {
        let idx = RepIdx(self.list.len() as u32);
        self.list.push(RepInfo::unlisted(Arc::from(id.text)));
        self.index.insert(id, idx);
        idx
    }

    /// The rep's handle, adding reps the roster doesn't list.
    pub fn intern(&mut self, id: &str) -> RepIdx {
        self.intern_digested(Digested::new(id))
    }

    /// [`Reps::intern`] for a rep id whose digest is known.
    pub fn intern_digested(&mut self, id: Digested<'_>) -> RepIdx {
        match self.index.get(id) {
            Some(&idx) => idx,
            None => self.insert(id),
        }
    }

    pub fn get(&self, idx: RepIdx) -> &RepInfo {
        &self.list[idx.0 as usize]
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn lookup(&self, id: &str) -> Option<RepIdx> {
        self.index.get(Digested::new(id)).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn a_rep_is_back_after_leaves_that_follow_on_from_each_other() {
        let date = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let mut reps = Reps::default();
        let idx = reps.insert(Digested::new("r-w"));
        let info = &mut reps.list[idx.0 as usize];
        info.away = vec![
            (date("2026-11-09"), date("2026-11-12")),
            (date("2026-11-05"), date("2026-11-08")),
            (date("2026-11-20"), date("2026-11-21")),
        ]
        .into();
        assert_eq!(
            info.back_after(date("2026-11-05")),
            Some(date("2026-11-13"))
        );
        assert_eq!(
            info.back_after(date("2026-11-12")),
            Some(date("2026-11-13"))
        );
        // Not away the next day: back then.
        assert_eq!(
            info.back_after(date("2026-11-14")),
            Some(date("2026-11-15"))
        );
    }
}
