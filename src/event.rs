//! The canonical input events, after parsing and normalization.
//!
//! Every source's JSON is turned into these types by [`crate::ingest`]; the core only ever sees
//! them. Identifiers inside [`CustomerRef`] are already normalized (E.164 phones, lower-cased
//! emails, canonical company keys), so two spellings of one phone are equal strings here.

use crate::time::Timestamp;

/// What kind of contact an activity is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ContactKind {
    Call,
    Email,
    Visit,
    Meeting,
    Message,
    /// The customer reports being contacted by several reps.
    Complaint,
}

impl ContactKind {
    pub const ALL: [ContactKind; 6] = [
        ContactKind::Call,
        ContactKind::Email,
        ContactKind::Visit,
        ContactKind::Meeting,
        ContactKind::Message,
        ContactKind::Complaint,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ContactKind::Call => "call",
            ContactKind::Email => "email",
            ContactKind::Visit => "visit",
            ContactKind::Meeting => "meeting",
            ContactKind::Message => "message",
            ContactKind::Complaint => "complaint",
        }
    }

    pub fn parse(s: &str) -> Option<ContactKind> {
        ContactKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Bit for [`KindSet`].
    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A small set of contact kinds (a rule's `kinds:` list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KindSet(u8);

impl KindSet {
    pub const EMPTY: KindSet = KindSet(0);
    /// Every kind that is a contact by a rep (all but `complaint`).
    pub const CONTACTS: KindSet = KindSet(0b0001_1111);

    pub fn contains(self, k: ContactKind) -> bool {
        self.0 & k.bit() != 0
    }
    pub fn insert(&mut self, k: ContactKind) {
        self.0 |= k.bit();
    }
    pub fn iter(self) -> impl Iterator<Item = ContactKind> {
        ContactKind::ALL
            .into_iter()
            .filter(move |k| self.contains(*k))
    }
}

impl FromIterator<ContactKind> for KindSet {
    fn from_iter<I: IntoIterator<Item = ContactKind>>(iter: I) -> Self {
        let mut s = KindSet::EMPTY;
        for k in iter {
            s.insert(k);
        }
        s
    }
}

/// Who started the contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Direction {
    /// The rep reached out (the default).
    #[default]
    Outbound,
    /// The customer reached the company and a rep answered.
    Inbound,
}

impl Direction {
    pub const ALL: [Direction; 2] = [Direction::Outbound, Direction::Inbound];

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Outbound => "outbound",
            Direction::Inbound => "inbound",
        }
    }
}

/// A change of ownership published by the CRM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OwnershipAction {
    /// The customer is given to `rep`.
    Assign,
    /// The owner gives the customer up (back to the pool).
    Release,
    /// The customer moves from `from_rep` (or the current owner) to `rep`.
    Transfer,
    /// The owner locks the customer: exempt from reclaim.
    Lock,
    Unlock,
    /// The customer bought.
    Won,
    /// The rep takes the customer from the public pool (领取): claim limits apply.
    Claim,
}

impl OwnershipAction {
    pub const ALL: [OwnershipAction; 7] = [
        OwnershipAction::Assign,
        OwnershipAction::Release,
        OwnershipAction::Transfer,
        OwnershipAction::Lock,
        OwnershipAction::Unlock,
        OwnershipAction::Won,
        OwnershipAction::Claim,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OwnershipAction::Assign => "assign",
            OwnershipAction::Release => "release",
            OwnershipAction::Transfer => "transfer",
            OwnershipAction::Lock => "lock",
            OwnershipAction::Unlock => "unlock",
            OwnershipAction::Won => "won",
            OwnershipAction::Claim => "claim",
        }
    }

    pub fn parse(s: &str) -> Option<OwnershipAction> {
        OwnershipAction::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A rep as named by an event. Team and role are optional: the roster may know them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RepRef {
    pub id: String,
    pub team: Option<String>,
    pub role: Option<String>,
}

/// A customer as named by an event: normalized identifiers plus attributes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CustomerRef {
    /// The CRM's customer id: authoritative when present.
    pub id: Option<String>,
    /// E.164.
    pub phone: Option<String>,
    /// Lower-cased, plus-tag stripped when configured.
    pub email: Option<String>,
    /// Canonical company key (see `identity::normalize`).
    pub company: Option<String>,
    pub region: Option<String>,
    pub industry: Option<String>,
    pub tier: Option<String>,
    /// The product line the customer is interested in (for product-line assignment).
    pub product_line: Option<String>,
}

impl CustomerRef {
    pub fn has_identifier(&self) -> bool {
        self.id.is_some() || self.phone.is_some() || self.email.is_some() || self.company.is_some()
    }
}

/// A contact between a rep and a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    /// Kept as the core keeps it (inline when short), so placing the event copies it from the
    /// event itself instead of reading a separate allocation.
    pub event_id: EventId,
    pub source: String,
    pub kind: ContactKind,
    pub direction: Direction,
    pub occurred_at: Timestamp,
    pub rep: RepRef,
    pub customer: CustomerRef,
    pub digests: Digests,
}

/// An ownership change published by the CRM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ownership {
    pub event_id: EventId,
    pub source: String,
    pub action: OwnershipAction,
    pub occurred_at: Timestamp,
    pub customer: CustomerRef,
    /// The rep the action is about: the new owner for assign/transfer, the owner for the others.
    pub rep: Option<RepRef>,
    /// For a transfer: the previous owner, when the CRM says.
    pub from_rep: Option<RepRef>,
    /// Reps who may work the customer beside the owner (assign/transfer).
    pub account_team: Vec<String>,
    pub digests: Digests,
}

/// Hashes of an event that the core needs for every event, computed once: by the parsing thread
/// when there is one ([`Event::compute_digests`]), else when the core first asks. A cache, not
/// part of what the event says: events compare equal whatever it holds. It is derived from the
/// source, the event id, the customer's id and identifiers and the rep's id: build a new event
/// rather than changing those on one whose digests may be computed (nothing in leadguard changes
/// them after parsing).
#[derive(Debug, Clone, Default)]
pub struct Digests {
    // Cells, not locks: an event is moved between threads, never shared by them.
    tie: std::cell::OnceCell<u64>,
    customer_id: std::cell::OnceCell<u64>,
    idents: std::cell::OnceCell<[u64; 3]>,
    rep: std::cell::OnceCell<Option<u64>>,
}

impl PartialEq for Digests {
    fn eq(&self, _: &Digests) -> bool {
        true
    }
}

impl Eq for Digests {}

/// The hash a customer id is looked up by (see `engine::keys`).
pub fn customer_id_hash(id: &str) -> u64 {
    crate::digest::text(id)
}

/// Anything the core consumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Activity(Activity),
    Ownership(Ownership),
}

impl Event {
    pub fn event_id(&self) -> &EventId {
        match self {
            Event::Activity(a) => &a.event_id,
            Event::Ownership(o) => &o.event_id,
        }
    }
    pub fn source(&self) -> &str {
        match self {
            Event::Activity(a) => &a.source,
            Event::Ownership(o) => &o.source,
        }
    }
    pub fn occurred_at(&self) -> Timestamp {
        match self {
            Event::Activity(a) => a.occurred_at,
            Event::Ownership(o) => o.occurred_at,
        }
    }
    pub fn customer(&self) -> &CustomerRef {
        match self {
            Event::Activity(a) => &a.customer,
            Event::Ownership(o) => &o.customer,
        }
    }

    fn digests(&self) -> &Digests {
        match self {
            Event::Activity(a) => &a.digests,
            Event::Ownership(o) => &o.digests,
        }
    }

    /// Orders events of the same time and kind the same way on every run, whatever their
    /// arrival order: a hash of (source, event id).
    pub fn tie(&self) -> u64 {
        *self.digests().tie.get_or_init(|| {
            crate::digest::xxh3_64_parts([
                self.source().as_bytes(),
                &[0],
                self.event_id().as_bytes(),
            ])
        })
    }

    /// [`customer_id_hash`] of the customer id, if the event names one.
    pub fn customer_id_hash(&self) -> Option<u64> {
        let id = self.customer().id.as_deref()?;
        Some(
            *self
                .digests()
                .customer_id
                .get_or_init(|| customer_id_hash(id)),
        )
    }

    /// The digests of the customer's identifiers ([`crate::identity::IdentityIndex::digests`]).
    pub fn ident_digests(&self) -> [u64; 3] {
        *self
            .digests()
            .idents
            .get_or_init(|| crate::identity::IdentityIndex::digests(self.customer()))
    }

    /// The [`crate::digest::text`] of the rep's id (an ownership event may name no rep).
    pub fn rep_digest(&self) -> Option<u64> {
        *self.digests().rep.get_or_init(|| {
            let rep = match self {
                Event::Activity(a) => Some(&a.rep),
                Event::Ownership(o) => o.rep.as_ref(),
            };
            rep.map(|r| crate::digest::text(&r.id))
        })
    }

    /// Computes the digests now, so that the thread that parsed the event pays for them rather
    /// than the core's.
    pub fn compute_digests(&self) {
        self.tie();
        self.customer_id_hash();
        self.ident_digests();
        self.rep_digest();
    }
}

/// An event id as events, and the core's logs and owners, keep it.
///
/// Ids of up to 22 bytes (most: `cc-00000001`, numeric ids) are stored inline, longer ones
/// (UUIDs) shared. Inline ids need no allocation, and reading or dropping one touches no memory
/// elsewhere: the core compares and copies event ids of customers it has not looked at for
/// hours, where each separate allocation was a cache miss.
#[derive(Clone)]
pub struct EventId(IdRepr);

/// Private, so inline bytes are always a copy of a `str`.
#[derive(Clone)]
enum IdRepr {
    Inline {
        len: u8,
        bytes: [u8; EventId::INLINE],
    },
    Shared(std::sync::Arc<str>),
}

impl EventId {
    const INLINE: usize = 22;

    pub fn new(id: &str) -> EventId {
        if id.len() <= Self::INLINE {
            let mut bytes = [0; Self::INLINE];
            bytes[..id.len()].copy_from_slice(id.as_bytes());
            EventId(IdRepr::Inline {
                len: id.len() as u8,
                bytes,
            })
        } else {
            EventId(IdRepr::Shared(id.into()))
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            IdRepr::Inline { len, bytes } => &bytes[..*len as usize],
            IdRepr::Shared(s) => s.as_bytes(),
        }
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            IdRepr::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..*len as usize]).expect("copied from a str")
            }
            IdRepr::Shared(s) => s,
        }
    }
}

impl From<&str> for EventId {
    fn from(id: &str) -> Self {
        EventId::new(id)
    }
}

impl From<String> for EventId {
    fn from(id: String) -> Self {
        EventId::new(&id)
    }
}

impl Default for EventId {
    fn default() -> Self {
        EventId::new("")
    }
}

impl PartialEq for EventId {
    fn eq(&self, other: &EventId) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for EventId {}

impl PartialEq<str> for EventId {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl std::fmt::Debug for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::ops::Deref for EventId {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl serde::Serialize for EventId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod digest_tests {
    use super::*;

    fn call(id: &str, customer: Option<&str>) -> Event {
        Event::Activity(Activity {
            event_id: id.into(),
            source: "cc".into(),
            kind: ContactKind::Call,
            direction: Direction::Outbound,
            occurred_at: Timestamp(1_790_000_000_000),
            rep: RepRef::default(),
            customer: CustomerRef {
                id: customer.map(str::to_string),
                ..CustomerRef::default()
            },
            digests: Digests::default(),
        })
    }

    #[test]
    fn digests_are_the_same_computed_early_late_or_after_a_clone() {
        let early = call("e1", Some("C1"));
        early.compute_digests();
        let late = call("e1", Some("C1"));
        assert_eq!(early.clone().tie(), late.tie());
        assert_eq!(
            early.tie(),
            crate::digest::xxh3_64_parts([b"cc".as_slice(), &[0], b"e1"])
        );
        assert_eq!(early.customer_id_hash(), Some(customer_id_hash("C1")));
        assert_eq!(late.customer_id_hash(), early.customer_id_hash());
        assert_ne!(call("e2", Some("C1")).tie(), early.tie());
        assert_eq!(call("e1", None).customer_id_hash(), None);
        // A cache, not content: an event with its digests equals one without.
        assert_eq!(early, call("e1", Some("C1")));
    }

    #[test]
    fn identifier_and_rep_digests_are_those_of_their_text() {
        let mut e = call("e1", Some("C1"));
        if let Event::Activity(a) = &mut e {
            a.rep.id = "r-li".into();
            a.customer.phone = Some("+8613800138000".into());
            a.customer.company = Some("星辰科技".into());
        }
        let late = e.clone();
        e.compute_digests();
        let text = crate::digest::text;
        let expected = [text("+8613800138000"), 0, text("星辰科技")];
        assert_eq!(e.ident_digests(), expected);
        assert_eq!(late.ident_digests(), expected);
        assert_eq!(e.rep_digest(), Some(text("r-li")));
        assert_eq!(late.rep_digest(), e.rep_digest());
    }
}

#[cfg(test)]
mod event_id_tests {
    use super::EventId;

    #[test]
    fn short_and_long_ids_read_back_and_compare_as_their_text() {
        for id in [
            "",
            "cc-00000001",
            "二十二字节以内",
            "exactly-22-bytes-long!",
            "23-bytes-long-is-shared",
            "0b7e4a3c-9f1d-4c2e-8a55-6d2f1e9b3c70",
        ] {
            let e = EventId::new(id);
            assert_eq!(e.as_str(), id);
            assert_eq!(&*e, id);
            assert_eq!(e, EventId::new(id));
            assert!(e == *id);
            assert_eq!(format!("{e}"), id);
            assert_eq!(
                serde_json::to_string(&e).unwrap(),
                serde_json::to_string(id).unwrap()
            );
            assert_eq!(matches!(e.0, super::IdRepr::Inline { .. }), id.len() <= 22);
        }
        assert_ne!(EventId::new("a"), EventId::new("ab"));
    }
}
