//! Who is this customer? Normalized identifiers ([`normalize`]) and the index that resolves them
//! to one customer ([`IdentityIndex`]).
//!
//! The CRM's customer id is authoritative. Phones, emails and company names are *links*: when an
//! event names an id together with a phone, the phone is linked to that id, and a later event that
//! names only the phone finds the customer. An identifier linked to several ids is ambiguous and
//! is not used to find anyone; once linked to `shared_identifier_limit` ids it is *shared* (a
//! switchboard, a purchasing mailbox) and never used again. This is what keeps a switchboard
//! number from merging every customer behind it into one (the classic false collision).
//!
//! A CRM customer's links outlive its eviction from memory: they become *dormant*, holding the
//! customer's id, and an event that names only the identifier brings the customer back (as an
//! event naming its id would). Whom an id-less event finds then never depends on whether
//! housekeeping has evicted the customer yet, a moment set by how far the stream has got.
//! Their number is bounded by the CRM's customers, as owned customers are. A provisional
//! customer's links are forgotten with it.

pub mod normalize;

use crate::digest_map::{DigestMap, Digested};
use crate::event::CustomerRef;
use std::sync::Arc;

/// One identifier kind's links (see [`IdentityIndex`] on digests).
type Links = DigestMap<Link>;

/// An identifier kind, in the order used to resolve id-less events (most specific first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(usize)]
pub enum IdentKind {
    Phone,
    Email,
    Company,
}

impl IdentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentKind::Phone => "phone",
            IdentKind::Email => "email",
            IdentKind::Company => "company",
        }
    }
}

/// An identifier as an event names it, with its digest ([`crate::digest::text`]): whoever
/// parses an event computes them ([`crate::event::Event::ident_digests`]), and a customer keeps
/// each of its identifiers' beside the text, so the core compares digests, not text it would
/// have to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ident<'a> {
    pub kind: IdentKind,
    pub text: &'a str,
    pub digest: u64,
}

impl<'a> Ident<'a> {
    pub fn new(kind: IdentKind, text: &'a str) -> Self {
        Ident {
            kind,
            text,
            digest: crate::digest::text(text),
        }
    }

    fn key(&self) -> Digested<'a> {
        Digested {
            text: self.text,
            digest: self.digest,
        }
    }
}

/// An identifier a customer has, with its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identifier {
    pub kind: IdentKind,
    pub digest: u64,
    pub text: Box<str>,
}

impl Identifier {
    pub fn new(kind: IdentKind, text: &str) -> Self {
        Ident::new(kind, text).into()
    }

    /// Whether an event's identifier is this one, by kind and digest: the text is not read
    /// (see [`IdentityIndex`] on digests).
    pub fn is(&self, i: &Ident<'_>) -> bool {
        self.kind == i.kind && self.digest == i.digest
    }

    pub fn as_ident(&self) -> Ident<'_> {
        Ident {
            kind: self.kind,
            text: &self.text,
            digest: self.digest,
        }
    }
}

impl From<Ident<'_>> for Identifier {
    fn from(i: Ident<'_>) -> Self {
        Identifier {
            kind: i.kind,
            digest: i.digest,
            text: i.text.into(),
        }
    }
}

/// A customer as the engine holds it: its slot, and the slot's generation when the link was
/// made. Links hold handles rather than customer keys: following a link is then a slot index,
/// not a key look-up, and linking an identifier allocates and shares nothing. The generation
/// tells a handle to a slot that has since been reused (the engine checks it: see
/// [`Status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle {
    pub slot: u32,
    pub generation: u32,
}

/// What the engine says about a handle: `None` when no live customer has it (the customer was
/// evicted or merged and its slot reused), else whether the customer is provisional.
pub type Status = Option<bool>;

/// What an identifier points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// Exactly one customer.
    One(Handle),
    /// Exactly one CRM customer, evicted from memory since: its id.
    /// Boxed: it keeps every link 16 bytes.
    Dormant(Box<Arc<str>>),
    /// Several CRM ids: ambiguous, not used to resolve.
    /// Boxed: rare, and it keeps every link 16 bytes.
    Many(Box<Vec<Member>>),
    /// Demoted for good: seen with too many customers, or configured as shared.
    Shared,
}

/// One of the CRM customers an ambiguous identifier was seen with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Member {
    Live(Handle),
    /// Evicted from memory: its id.
    Dormant(Arc<str>),
}

impl Member {
    /// Whether this is the customer `to`, whose id is `key`.
    fn is(&self, to: Handle, key: &str) -> bool {
        match self {
            Member::Live(h) => *h == to,
            Member::Dormant(k) => &**k == key,
        }
    }
}

// One per identifier ever linked: kept small.
const _: () = assert!(std::mem::size_of::<Link>() == 16);

/// The identifiers an event that names its customer id links to that customer.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Linked<'e> {
    /// Provisional customers that turned out to be this one and must be merged into it.
    pub absorb: Vec<Handle>,
    /// Identifiers linked to the customer by this event (new knowledge).
    pub linked: Vec<Ident<'e>>,
}

/// The customer of an event that names no customer id.
#[derive(Debug, PartialEq, Eq)]
pub enum Found<'e> {
    /// The customer an identifier is linked to; `unknown` are the event's identifiers linked to
    /// no one yet, to [`IdentityIndex::attach`] to it.
    Customer {
        handle: Handle,
        unknown: Vec<Ident<'e>>,
    },
    /// A CRM customer, found by a dormant link: its id, which the engine brings back into
    /// memory (unless an event naming the id already has). `unknown` includes the identifiers
    /// whose dormant links name it, to [`IdentityIndex::attach`] to it.
    Dormant {
        key: Arc<str>,
        unknown: Vec<Ident<'e>>,
    },
    /// No identifier is known: a new provisional customer, keyed by its first identifier
    /// (`phone:+86…`).
    New {
        key: String,
        unknown: Vec<Ident<'e>>,
    },
    /// Every identifier is shared or ambiguous: why.
    Ambiguous(String),
}

/// What an identifier points at, for read-only questions (the API's pre-contact check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Exactly one customer.
    Customer(Handle),
    /// Exactly one CRM customer, evicted from memory since: its id.
    Dormant(Arc<str>),
    /// Seen with this many different customer ids: it can't tell which one.
    Ambiguous(usize),
    /// A shared identifier (switchboard, purchasing mailbox): never used to find anyone.
    Shared,
    /// Never seen.
    Unknown,
}

/// Identifier → customer links, with demotion of shared identifiers.
///
/// Every handle a link holds is a live customer's, and that customer lists the identifier among
/// its own: links are made only to a live customer (which records what was linked), moved by
/// [`IdentityIndex::relink`] when it is merged, and made dormant (a CRM customer) or removed (a
/// provisional one) by [`IdentityIndex::forget`] when it is evicted. The engine still checks a
/// handle's generation before it follows one, so a broken promise shows as an unknown
/// identifier, never as someone else's customer.
///
/// Identifiers are found by digest ([`crate::digest_map`]): inserts, changes and removals are
/// exact; a look-up ([`IdentityIndex::find`], [`IdentityIndex::lookup`]) of an identifier that
/// was never linked but whose digest equals a linked one's is taken for that one (with n
/// identifiers, a chance of n/2⁶⁴ per look-up).
#[derive(Debug)]
pub struct IdentityIndex {
    /// One table per identifier kind.
    links: [Links; 3],
    limit: usize,
    /// Identifiers demoted so far (for metrics and explanations).
    pub shared_count: u64,
    /// Entries for the identifiers configured as shared up front, which stay for good: not
    /// counted by [`IdentityIndex::len`], which counts what the stream brought.
    configured: usize,
}

impl IdentityIndex {
    pub fn new(limit: usize, shared_phones: &[String], shared_emails: &[String]) -> Self {
        let mut links: [Links; 3] = Default::default();
        for p in shared_phones {
            links[IdentKind::Phone as usize].insert(Digested::new(p), Link::Shared);
        }
        for e in shared_emails {
            links[IdentKind::Email as usize].insert(Digested::new(e), Link::Shared);
        }
        let configured = links.iter().map(|m| m.len()).sum();
        IdentityIndex {
            links,
            limit: limit.max(2),
            shared_count: 0,
            configured,
        }
    }

    /// The identifier fields of a customer reference, most specific first, given or not.
    fn fields(c: &CustomerRef) -> [(IdentKind, Option<&str>); 3] {
        [
            (IdentKind::Phone, c.phone.as_deref()),
            (IdentKind::Email, c.email.as_deref()),
            (IdentKind::Company, c.company.as_deref()),
        ]
    }

    /// The digests of a customer reference's identifiers, in [`IdentityIndex::identifiers`]'
    /// order (0 for one not given). Events cache them ([`crate::event::Event::ident_digests`]).
    pub fn digests(c: &CustomerRef) -> [u64; 3] {
        Self::fields(c).map(|(_, text)| text.map_or(0, crate::digest::text))
    }

    /// The identifiers an event names, most specific first, with their `digests`
    /// ([`IdentityIndex::digests`]).
    pub fn identifiers(c: &CustomerRef, digests: [u64; 3]) -> impl Iterator<Item = Ident<'_>> {
        Self::fields(c)
            .into_iter()
            .zip(digests)
            .filter_map(|((kind, text), digest)| text.map(|text| Ident { kind, text, digest }))
    }

    /// Links the identifiers of an event that names its customer by CRM id (`key`) to that
    /// customer (`to`, live). `status` tells what the handles already linked are.
    pub fn link_all<'e>(
        &mut self,
        idents: impl Iterator<Item = Ident<'e>>,
        to: Handle,
        key: &str,
        status: impl Fn(Handle) -> Status,
    ) -> Linked<'e> {
        let mut out = Linked::default();
        for ident in idents {
            let (newly, absorbed) = self.link(&ident, to, key, &status);
            if newly {
                out.linked.push(ident);
            }
            if let Some(p) = absorbed {
                if !out.absorb.contains(&p) {
                    out.absorb.push(p);
                }
            }
        }
        out
    }

    /// Finds the customer of an event that names no CRM id, by the first of its identifiers
    /// linked to exactly one customer, live or dormant. Records nothing: the engine
    /// [`attaches`](IdentityIndex::attach) the unknown identifiers once it has the customer.
    pub fn find<'e>(
        &self,
        idents: impl Iterator<Item = Ident<'e>>,
        status: impl Fn(Handle) -> Status,
    ) -> Found<'e> {
        let mut found: Option<Handle> = None;
        // Dormant links met, with their identifiers: the first decides if no live link does
        // before it; the others that name the same customer are woken with it.
        let mut dormant: Vec<(&Arc<str>, Ident<'e>)> = Vec::new();
        let mut unknown: Vec<Ident<'e>> = Vec::new();
        let mut blocked: Vec<String> = Vec::new();
        for ident in idents {
            let (kind, text) = (ident.kind, ident.text);
            match self.links[kind as usize].get(ident.key()) {
                Some(Link::One(h)) if status(*h).is_some() => {
                    if found.is_none() && dormant.is_empty() {
                        found = Some(*h);
                    }
                }
                Some(Link::Dormant(key)) => dormant.push((key, ident)),
                Some(Link::Many(hs)) => blocked.push(format!(
                    "{} {text} belongs to {} customers",
                    kind.as_str(),
                    hs.len()
                )),
                Some(Link::Shared) => {
                    blocked.push(format!("{} {text} is a shared identifier", kind.as_str()))
                }
                // Never seen, or linked to a customer that is gone.
                Some(Link::One(_)) | None => unknown.push(ident),
            }
        }
        if found.is_none() {
            if let Some(&(key, _)) = dormant.first() {
                unknown.extend(dormant.iter().filter(|(k, _)| *k == key).map(|(_, i)| *i));
                return Found::Dormant {
                    key: key.clone(),
                    unknown,
                };
            }
        }
        match (found, unknown.first()) {
            (Some(handle), _) => Found::Customer { handle, unknown },
            (None, Some(first)) => Found::New {
                key: format!("{}:{}", first.kind.as_str(), first.text),
                unknown,
            },
            (None, None) => Found::Ambiguous(blocked.join("; ")),
        }
    }

    /// Links identifiers that [`IdentityIndex::find`] reported unknown to the customer it found
    /// or the engine made.
    pub fn attach(&mut self, idents: &[Ident<'_>], to: Handle) {
        for ident in idents {
            self.links[ident.kind as usize].insert(ident.key(), Link::One(to));
        }
    }

    /// Links `ident` to the customer `to` (CRM id `key`). Returns whether the link is new for
    /// `to`, and a provisional customer the identifier pointed at, which must now be merged
    /// into `to`.
    fn link(
        &mut self,
        ident: &Ident<'_>,
        to: Handle,
        key: &str,
        status: &impl Fn(Handle) -> Status,
    ) -> (bool, Option<Handle>) {
        let limit = self.limit;
        let (link, new) =
            self.links[ident.kind as usize].get_or_insert_with(ident.key(), || Link::One(to));
        if new {
            return (true, None);
        }
        match link {
            Link::Shared => (false, None),
            Link::One(existing) => {
                if *existing == to {
                    return (false, None);
                }
                match status(*existing) {
                    // Linked to a customer that is gone: as if never seen.
                    None => {
                        *link = Link::One(to);
                        (true, None)
                    }
                    Some(true) => {
                        let absorbed = *existing;
                        *link = Link::One(to);
                        (true, Some(absorbed))
                    }
                    Some(false) => {
                        let both = vec![Member::Live(*existing), Member::Live(to)];
                        self.shared_count += u64::from(both.len() >= limit);
                        *link = Self::many(both, limit);
                        (true, None)
                    }
                }
            }
            Link::Dormant(k) => {
                // Woken: the customer is back in memory and lists the identifier again.
                if &***k == key {
                    *link = Link::One(to);
                    return (true, None);
                }
                let both = vec![Member::Dormant((**k).clone()), Member::Live(to)];
                self.shared_count += u64::from(both.len() >= limit);
                *link = Self::many(both, limit);
                (true, None)
            }
            Link::Many(members) => {
                match members.iter_mut().find(|m| m.is(to, key)) {
                    Some(Member::Live(_)) => return (false, None),
                    Some(m) => {
                        *m = Member::Live(to);
                        return (true, None);
                    }
                    None => {}
                }
                members.push(Member::Live(to));
                if members.len() >= limit {
                    *link = Link::Shared;
                    self.shared_count += 1;
                }
                (true, None)
            }
        }
    }

    /// Several customers' link, or shared when they are `limit` or more.
    fn many(members: Vec<Member>, limit: usize) -> Link {
        if members.len() >= limit {
            Link::Shared
        } else {
            Link::Many(Box::new(members))
        }
    }

    /// What a normalized identifier points at, without recording anything.
    pub fn lookup(&self, kind: IdentKind, ident: &str) -> Lookup {
        match self.links[kind as usize].get(Digested::new(ident)) {
            Some(Link::One(h)) => Lookup::Customer(*h),
            Some(Link::Dormant(key)) => Lookup::Dormant((**key).clone()),
            Some(Link::Many(hs)) => Lookup::Ambiguous(hs.len()),
            Some(Link::Shared) => Lookup::Shared,
            None => Lookup::Unknown,
        }
    }

    /// Points every identifier of `from` at `to` (after a merge).
    pub fn relink(&mut self, idents: &[Identifier], from: Handle, to: Handle) {
        for ident in idents {
            if let Some(link) = self.links[ident.kind as usize].get_mut(ident.as_ident().key()) {
                if *link == Link::One(from) {
                    *link = Link::One(to);
                }
            }
        }
    }

    /// An evicted customer's links: a CRM customer's (`key`, its id) become dormant; a
    /// provisional customer's (`key` `None`) are forgotten. Shared identifiers stay demoted.
    pub fn forget(&mut self, idents: &[Identifier], gone: Handle, key: Option<&Arc<str>>) {
        for ident in idents {
            let ident = ident.as_ident();
            let map = &mut self.links[ident.kind as usize];
            let Some(link) = map.get_mut(ident.key()) else {
                continue;
            };
            let remove = match link {
                Link::One(h) if *h == gone => match key {
                    Some(key) => {
                        *link = Link::Dormant(Box::new(key.clone()));
                        false
                    }
                    None => true,
                },
                Link::Many(members) => {
                    match key {
                        Some(key) => {
                            for m in members.iter_mut() {
                                if *m == Member::Live(gone) {
                                    *m = Member::Dormant(key.clone());
                                }
                            }
                        }
                        None => members.retain(|m| *m != Member::Live(gone)),
                    }
                    false
                }
                _ => false,
            };
            if remove {
                map.remove(ident.key());
            }
        }
    }

    /// Every link, for a snapshot of the engine's state (see `engine::snapshot`).
    pub fn links(&self) -> impl Iterator<Item = (IdentKind, &str, &Link)> {
        [IdentKind::Phone, IdentKind::Email, IdentKind::Company]
            .into_iter()
            .flat_map(move |kind| {
                self.links[kind as usize]
                    .iter()
                    .map(move |(ident, link)| (kind, ident, link))
            })
    }

    /// Puts back a link taken by [`IdentityIndex::links`] (restoring a snapshot).
    pub fn restore_link(&mut self, kind: IdentKind, ident: &str, link: Link) {
        self.links[kind as usize].insert(Digested::new(ident), link);
    }

    /// Number of identifiers indexed from the stream (those configured as shared are not
    /// counted: an engine that has seen nothing holds none).
    pub fn len(&self) -> usize {
        let all: usize = self.links.iter().map(|m| m.len()).sum();
        // Configured entries are never removed; saturating all the same, as a count.
        all.saturating_sub(self.configured)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHONE: &str = "+8613800138000";

    fn cref(id: Option<&str>, phone: &str) -> CustomerRef {
        CustomerRef {
            id: id.map(Into::into),
            phone: Some(phone.into()),
            ..CustomerRef::default()
        }
    }

    fn h(slot: u32) -> Handle {
        Handle {
            slot,
            generation: 1,
        }
    }

    /// The identifiers of `c`, digested here (an engine gets the digests from the event).
    fn idents(c: &CustomerRef) -> impl Iterator<Item = Ident<'_>> {
        IdentityIndex::identifiers(c, IdentityIndex::digests(c))
    }

    /// Every handle is a live customer; the ones in `provisional` are provisional.
    fn live(provisional: &[Handle]) -> impl Fn(Handle) -> Status + '_ {
        move |x| Some(provisional.contains(&x))
    }

    /// An event naming the CRM id `id` and `phone` links the phone to the customer in `slot`.
    fn link(ix: &mut IdentityIndex, id: &str, phone: &str, slot: u32) {
        ix.link_all(idents(&cref(Some(id), phone)), h(slot), id, live(&[]));
    }

    fn phone_of(ix: &IdentityIndex) -> Lookup {
        ix.lookup(IdentKind::Phone, PHONE)
    }

    #[test]
    fn identifiers_configured_as_shared_are_not_counted_as_seen() {
        let index = IdentityIndex::new(3, &["+864008208820".into(), "+864008208820".into()], &[]);
        assert_eq!(index.len(), 0, "nothing seen yet");
        assert!(index.is_empty());
    }

    #[test]
    fn a_phone_finds_the_customer_it_was_seen_with() {
        let mut ix = IdentityIndex::new(3, &[], &[]);
        link(&mut ix, "C1", PHONE, 0);
        assert_eq!(
            ix.find(idents(&cref(None, PHONE)), live(&[])),
            Found::Customer {
                handle: h(0),
                unknown: vec![]
            }
        );
    }

    #[test]
    fn a_switchboard_never_merges_customers() {
        let mut ix = IdentityIndex::new(3, &[], &[]);
        for slot in 0..4 {
            link(&mut ix, "C", "+862160000000", slot);
        }
        let Found::Ambiguous(why) = ix.find(idents(&cref(None, "+862160000000")), live(&[])) else {
            panic!("a shared number must not find anyone")
        };
        assert_eq!(why, "phone +862160000000 is a shared identifier");
        assert_eq!(ix.shared_count, 1);
    }

    #[test]
    fn a_provisional_customer_is_absorbed_when_its_id_appears() {
        let mut ix = IdentityIndex::new(3, &[], &[]);
        let a = cref(None, PHONE);
        let Found::New { key, unknown } = ix.find(idents(&a), live(&[])) else {
            panic!("an unknown phone makes a new customer")
        };
        assert_eq!(key, "phone:+8613800138000");
        ix.attach(&unknown, h(0));
        let b = cref(Some("C1"), PHONE);
        let linked = ix.link_all(idents(&b), h(1), "C1", live(&[h(0)]));
        assert_eq!(linked.absorb, vec![h(0)]);
        assert_eq!(linked.linked, vec![Ident::new(IdentKind::Phone, PHONE)]);
        assert_eq!(phone_of(&ix), Lookup::Customer(h(1)));
    }

    #[test]
    fn a_link_to_a_customer_that_is_gone_counts_as_unknown() {
        let mut ix = IdentityIndex::new(3, &[], &[]);
        link(&mut ix, "C1", PHONE, 0);
        let gone = |_| None;
        let by_phone = cref(None, PHONE);
        let Found::New { unknown, .. } = ix.find(idents(&by_phone), gone) else {
            panic!("a stale link must not find anyone")
        };
        assert_eq!(unknown, vec![Ident::new(IdentKind::Phone, PHONE)]);
        // Linked again by id: taken over, not counted as a second customer.
        let by_id = cref(Some("C2"), PHONE);
        let linked = ix.link_all(idents(&by_id), h(1), "C2", gone);
        assert_eq!(linked.absorb, vec![]);
        assert_eq!(phone_of(&ix), Lookup::Customer(h(1)));
    }

    fn phone() -> [Identifier; 1] {
        [Identifier::new(IdentKind::Phone, PHONE)]
    }

    #[test]
    fn an_evicted_crm_customer_is_found_by_its_dormant_link() {
        let mut ix = IdentityIndex::new(3, &[], &[]);
        link(&mut ix, "C1", PHONE, 0);
        let c1: Arc<str> = Arc::from("C1");
        ix.forget(&phone(), h(0), Some(&c1));
        assert_eq!(phone_of(&ix), Lookup::Dormant(c1.clone()));
        let by_phone = cref(None, PHONE);
        assert_eq!(
            ix.find(idents(&by_phone), |_| None),
            Found::Dormant {
                key: c1,
                unknown: vec![Ident::new(IdentKind::Phone, PHONE)]
            }
        );
        // Back in memory by its id: the link wakes, new knowledge for the customer again.
        let by_id = cref(Some("C1"), PHONE);
        let linked = ix.link_all(idents(&by_id), h(5), "C1", live(&[]));
        assert_eq!(linked.linked, vec![Ident::new(IdentKind::Phone, PHONE)]);
        assert_eq!(phone_of(&ix), Lookup::Customer(h(5)));
    }

    #[test]
    fn a_dormant_link_still_counts_its_customer() {
        let mut ix = IdentityIndex::new(3, &[], &[]);
        link(&mut ix, "C1", PHONE, 0);
        ix.forget(&phone(), h(0), Some(&Arc::from("C1")));
        link(&mut ix, "C2", PHONE, 1);
        assert_eq!(phone_of(&ix), Lookup::Ambiguous(2));
        link(&mut ix, "C3", PHONE, 2);
        assert_eq!(
            phone_of(&ix),
            Lookup::Shared,
            "three ids, one of them evicted"
        );
    }

    #[test]
    fn evicting_one_of_two_customers_leaves_the_identifier_ambiguous() {
        let mut ix = IdentityIndex::new(3, &[], &[]);
        link(&mut ix, "C1", PHONE, 0);
        link(&mut ix, "C2", PHONE, 1);
        assert_eq!(phone_of(&ix), Lookup::Ambiguous(2));
        ix.forget(&phone(), h(0), Some(&Arc::from("C1")));
        assert_eq!(phone_of(&ix), Lookup::Ambiguous(2));
        // C1 back in memory is the same member, not a third.
        link(&mut ix, "C1", PHONE, 7);
        assert_eq!(phone_of(&ix), Lookup::Ambiguous(2));
        let Some(Link::Many(members)) = ix.links[0].get(Digested::new(PHONE)) else {
            panic!("still ambiguous")
        };
        assert!(members.contains(&Member::Live(h(7))));
    }

    #[test]
    fn an_evicted_provisional_customer_is_forgotten() {
        let mut ix = IdentityIndex::new(3, &[], &[]);
        let by_phone = cref(None, PHONE);
        let Found::New { unknown, .. } = ix.find(idents(&by_phone), live(&[])) else {
            panic!("an unknown phone makes a new customer")
        };
        ix.attach(&unknown, h(0));
        ix.forget(&phone(), h(0), None);
        assert_eq!(phone_of(&ix), Lookup::Unknown);
        assert!(ix.is_empty());
    }

    #[test]
    fn identifiers_with_the_same_digest_are_kept_apart_when_linked() {
        let mut ix = IdentityIndex::new(3, &[], &[]);
        let a = Ident::new(IdentKind::Phone, PHONE);
        // A different number given the same digest, as a digest collision would.
        let b = Ident {
            text: "+8613900139000",
            ..a
        };
        ix.link_all([a].into_iter(), h(0), "C1", live(&[]));
        let linked = ix.link_all([b].into_iter(), h(1), "C2", live(&[]));
        assert_eq!(
            linked.linked,
            vec![b],
            "b is a new identifier, not a second id of a"
        );
        assert_eq!(ix.len(), 2);
        assert_eq!(phone_of(&ix), Lookup::Customer(h(0)));
        assert_eq!(ix.links[0].get(b.key()), Some(&Link::One(h(1))));
        ix.forget(&[Identifier::from(b)], h(1), None);
        assert_eq!(ix.len(), 1);
        ix.forget(&[Identifier::from(a)], h(0), None);
        assert!(ix.is_empty());
    }
}
