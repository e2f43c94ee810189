//! A customer's description (region, industry, tier, product line) through time.
//!
//! Events describe their customer as it is when they happen, and the description can change: a
//! customer moves region, is upgraded a tier. The rules read the customer as it was described
//! *at each event's time*, never as it was described last: otherwise a late event would re-check
//! the customer's history against a description from after it, and arrival order would change
//! which outputs stand. So each log entry keeps what its event said ([`GivenId`], the words
//! interned once in [`GivenSets`]), and every fold carries the description forward in event-time
//! order ([`Attrs`]): detection's folds through the log, the lifecycle's as it finalizes events.
//!
//! A customer with no owner and no activity inside any window is evicted from memory, and its
//! description with it. When that happens depends on how far the stream has got when it
//! happens, so it must not show: an unowned customer that has been quiet for longer than
//! [`Rules::forget_after`] is forgotten in event time too ([`forgotten`]), whether or not it was
//! evicted yet, and its next event describes it afresh.

use super::reps::{Interner, Sym};
use crate::config::Rules;
use crate::event::CustomerRef;
use crate::time::{Span, Timestamp};
use rustc_hash::FxHashMap;

/// The attributes one event gives, in [`Attrs::fields`] order; [`Sym::NONE`] where it gives
/// none, which leaves that attribute as it was.
pub type Given = [Sym; 4];

/// A handle to a [`Given`] interned in [`GivenSets`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GivenId(pub u32);

impl GivenId {
    /// Gives nothing: events without attributes, and the entries the core writes itself.
    pub const NOTHING: GivenId = GivenId(0);
}

/// Every distinct set of attributes events have given, numbered in the order first seen.
/// Customers share a handful of descriptions, so an entry keeps four bytes, not four words.
#[derive(Debug)]
pub struct GivenSets {
    list: Vec<Given>,
    index: FxHashMap<Given, GivenId>,
}

impl Default for GivenSets {
    fn default() -> GivenSets {
        let nothing = [Sym::NONE; 4];
        GivenSets {
            list: vec![nothing],
            index: FxHashMap::from_iter([(nothing, GivenId::NOTHING)]),
        }
    }
}

impl GivenSets {
    pub fn intern(&mut self, given: Given) -> GivenId {
        if let Some(&id) = self.index.get(&given) {
            return id;
        }
        let id = GivenId(self.list.len() as u32);
        self.list.push(given);
        self.index.insert(given, id);
        id
    }

    pub fn get(&self, id: GivenId) -> &Given {
        &self.list[id.0 as usize]
    }

    pub fn holds(&self, id: GivenId) -> bool {
        (id.0 as usize) < self.list.len()
    }

    /// In handle order ([`GivenId::NOTHING`] first).
    pub fn iter(&self) -> impl Iterator<Item = &Given> {
        self.list.iter()
    }

    /// The handle for what `c` gives. `last` is the last handle other than
    /// [`GivenId::NOTHING`] this customer's events got: a customer is usually described the
    /// same way every time, and comparing its words is cheaper than hashing them.
    pub fn of(&mut self, words: &mut Interner, c: &CustomerRef, last: GivenId) -> GivenId {
        let values = [
            c.region.as_deref(),
            c.industry.as_deref(),
            c.tier.as_deref(),
            c.product_line.as_deref(),
        ];
        if values.iter().all(Option::is_none) {
            return GivenId::NOTHING;
        }
        let prev = *self.get(last);
        let same = prev.iter().zip(values).all(|(&s, v)| match v {
            None => s.is_none(),
            Some(v) => words.get(s).is_some_and(|w| &**w == v),
        });
        if same {
            return last;
        }
        // Most of a changed description is still what it was (an event that adds a tier
        // repeats the region): those words are compared, not hashed again.
        let mut syms = [Sym::NONE; 4];
        for (i, v) in values.into_iter().enumerate() {
            if let Some(v) = v {
                syms[i] = match words.get(prev[i]) {
                    Some(w) if **w == *v => prev[i],
                    _ => words.intern(v),
                };
            }
        }
        self.intern(syms)
    }
}

/// Whether a customer is forgotten before its event at `t`: it has no owner, and nothing
/// happened to it (an event, or an owner change the lifecycle made) for longer than
/// `forget_after` before, since `last` (it may have been evicted by the time an event at `t`
/// arrives; see the module text). Detection and the lifecycle both decide it by this, at events
/// only, so that they agree.
pub fn forgotten(last: Option<Timestamp>, t: Timestamp, owned: bool, forget_after: Span) -> bool {
    !owned && last.is_some_and(|l| t - l > forget_after)
}

/// A customer's attributes as of some point in its history, and the pool they place it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attrs {
    pub region: Sym,
    pub industry: Sym,
    pub tier: Sym,
    pub product_line: Sym,
    /// Index of the first pool the attributes match; found again when the rules change.
    pub pool: Option<u16>,
}

impl Attrs {
    /// A customer nobody has described yet (a pool without criteria still takes it).
    pub fn blank(rules: &Rules, words: &Interner) -> Attrs {
        let mut a = Attrs {
            region: Sym::NONE,
            industry: Sym::NONE,
            tier: Sym::NONE,
            product_line: Sym::NONE,
            pool: None,
        };
        a.place(rules, words);
        a
    }

    /// The attributes in [`Given`] order.
    pub fn fields(&self) -> Given {
        [self.region, self.industry, self.tier, self.product_line]
    }

    /// Takes `fields` and, when they differ from the ones before, finds the pool again.
    fn set_fields(&mut self, fields: Given, rules: &Rules, words: &Interner) {
        if fields == self.fields() {
            return;
        }
        let [region, industry, tier, product_line] = fields;
        *self = Attrs {
            region,
            industry,
            tier,
            product_line,
            pool: self.pool,
        };
        self.place(rules, words);
    }

    /// Takes what an event gives: each attribute it gives replaces the one before.
    pub fn take(&mut self, given: GivenId, sets: &GivenSets, rules: &Rules, words: &Interner) {
        if given == GivenId::NOTHING {
            return;
        }
        let mut fields = self.fields();
        for (mine, &theirs) in fields.iter_mut().zip(sets.get(given)) {
            if !theirs.is_none() {
                *mine = theirs;
            }
        }
        self.set_fields(fields, rules, words);
    }

    /// Fills in what this lacks from `other` (a merge: the surviving customer's own
    /// description wins).
    pub fn fill_from(&mut self, other: &Attrs, rules: &Rules, words: &Interner) {
        let mut fields = self.fields();
        for (mine, theirs) in fields.iter_mut().zip(other.fields()) {
            if mine.is_none() {
                *mine = theirs;
            }
        }
        self.set_fields(fields, rules, words);
    }

    /// Finds the pool again, by the rules in force.
    pub fn place(&mut self, rules: &Rules, words: &Interner) {
        let word = |s: Sym| words.get(s).map(|w| &**w);
        self.pool = rules
            .pools
            .iter()
            .position(|p| p.matches(word(self.region), word(self.industry), word(self.tier)))
            .map(|i| i as u16);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn rules() -> Rules {
        let text = "settings:\n  time_zone: Asia/Shanghai\npools:\n  - {id: west, teams: [w], regions: [west]}\n  - {id: rest, teams: [r]}\ncollisions: []\n";
        Rules::from_texts([(Path::new("r.yaml"), text)]).expect("valid rules")
    }

    fn described(region: Option<&str>, tier: Option<&str>) -> CustomerRef {
        CustomerRef {
            region: region.map(str::to_string),
            tier: tier.map(str::to_string),
            ..CustomerRef::default()
        }
    }

    #[test]
    fn an_attribute_an_event_does_not_give_stays_as_it_was() {
        let rules = rules();
        let (mut words, mut sets) = (Interner::default(), GivenSets::default());
        let mut a = Attrs::blank(&rules, &words);
        assert_eq!(a.pool, Some(1), "a pool without criteria takes anyone");
        let west = sets.of(
            &mut words,
            &described(Some("west"), Some("gold")),
            GivenId::NOTHING,
        );
        a.take(west, &sets, &rules, &words);
        assert_eq!(a.pool, Some(0));
        let silver = sets.of(&mut words, &described(None, Some("silver")), west);
        a.take(silver, &sets, &rules, &words);
        assert_eq!(words.get(a.region).map(|w| &**w), Some("west"));
        assert_eq!(words.get(a.tier).map(|w| &**w), Some("silver"));
        assert_eq!(a.pool, Some(0));
    }

    #[test]
    fn the_same_description_gets_the_same_handle() {
        let (mut words, mut sets) = (Interner::default(), GivenSets::default());
        let c = described(Some("west"), None);
        let first = sets.of(&mut words, &c, GivenId::NOTHING);
        assert_ne!(first, GivenId::NOTHING);
        assert_eq!(sets.of(&mut words, &c, first), first);
        assert_eq!(sets.of(&mut words, &c, GivenId::NOTHING), first);
        let other = sets.of(&mut words, &described(Some("east"), None), first);
        assert_ne!(other, first);
        assert_eq!(
            sets.of(&mut words, &CustomerRef::default(), other),
            GivenId::NOTHING
        );
    }

    #[test]
    fn a_merge_fills_only_what_is_missing() {
        let rules = rules();
        let (mut words, mut sets) = (Interner::default(), GivenSets::default());
        let mut mine = Attrs::blank(&rules, &words);
        let gold = sets.of(&mut words, &described(None, Some("gold")), GivenId::NOTHING);
        mine.take(gold, &sets, &rules, &words);
        let mut theirs = Attrs::blank(&rules, &words);
        let west = sets.of(&mut words, &described(Some("west"), Some("bronze")), gold);
        theirs.take(west, &sets, &rules, &words);
        mine.fill_from(&theirs, &rules, &words);
        assert_eq!(words.get(mine.region).map(|w| &**w), Some("west"));
        assert_eq!(words.get(mine.tier).map(|w| &**w), Some("gold"));
        assert_eq!(mine.pool, Some(0));
    }
}
