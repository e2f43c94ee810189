//! Who is this customer? Normalized identifiers ([`normalize`]) and the index that resolves them
//! to one customer ([`IdentityIndex`]).
//!
//! The CRM's customer id is authoritative. Phones, emails and company names are *links*: when an
//! event names an id together with a phone, the phone is linked to that id, and a later event that
//! names only the phone finds the customer. An identifier linked to several ids is ambiguous and
//! is not used to find anyone; once linked to `shared_identifier_limit` ids it is *shared* (a
//! switchboard, a purchasing mailbox) and never used again. This is what keeps a switchboard
//! number from merging every customer behind it into one (the classic false collision).

pub mod normalize;

use crate::event::CustomerRef;
/// Identifier text → link. hashbrown's `entry_ref` looks up by `&str` and allocates the key
/// only when it inserts.
type Links = hashbrown::HashMap<Box<str>, Link, rustc_hash::FxBuildHasher>;
use std::sync::Arc;

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

/// What an identifier points at.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Link {
    /// Exactly one customer.
    One(Arc<str>),
    /// Several CRM ids: ambiguous, not used to resolve.
    Many(Vec<Arc<str>>),
    /// Demoted for good: seen with too many customers, or configured as shared.
    Shared,
}

/// The customer key an event resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key<'e> {
    /// The CRM id named by the event.
    Id(&'e str),
    /// A customer found through a link.
    Linked(Arc<str>),
    /// A new provisional customer, keyed by its first identifier (`phone:+86…`).
    New(String),
}

impl Key<'_> {
    pub fn as_str(&self) -> &str {
        match self {
            Key::Id(s) => s,
            Key::Linked(k) => k,
            Key::New(s) => s,
        }
    }
}

/// How an event's customer was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution<'e> {
    /// This customer key (existing or new).
    Customer {
        key: Key<'e>,
        /// Keyed by an identifier because no CRM id is known yet.
        provisional: bool,
        /// Provisional customers that turned out to be this one and must be merged into it.
        absorb: Vec<Arc<str>>,
        /// Identifiers linked to the customer by this event (new knowledge).
        linked: Vec<(IdentKind, &'e str)>,
    },
    /// No id, and every identifier is shared or ambiguous.
    Ambiguous(String),
}

/// What an identifier points at, for read-only questions (the API's pre-contact check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// Exactly one customer.
    Customer(&'a Arc<str>),
    /// Seen with this many different customer ids: it can't tell which one.
    Ambiguous(usize),
    /// A shared identifier (switchboard, purchasing mailbox): never used to find anyone.
    Shared,
    /// Never seen.
    Unknown,
}

/// Identifier → customer links, with demotion of shared identifiers.
#[derive(Debug)]
pub struct IdentityIndex {
    /// One map per identifier kind, so lookups borrow the event's text (no allocation).
    links: [Links; 3],
    limit: usize,
    /// Identifiers demoted so far (for metrics and explanations).
    pub shared_count: u64,
}

impl IdentityIndex {
    pub fn new(limit: usize, shared_phones: &[String], shared_emails: &[String]) -> Self {
        let mut links: [Links; 3] = Default::default();
        for p in shared_phones {
            links[IdentKind::Phone as usize].insert(p.as_str().into(), Link::Shared);
        }
        for e in shared_emails {
            links[IdentKind::Email as usize].insert(e.as_str().into(), Link::Shared);
        }
        IdentityIndex {
            links,
            limit: limit.max(2),
            shared_count: 0,
        }
    }

    /// The identifiers an event names, most specific first.
    pub fn identifiers(c: &CustomerRef) -> impl Iterator<Item = (IdentKind, &str)> {
        [
            (IdentKind::Phone, c.phone.as_deref()),
            (IdentKind::Email, c.email.as_deref()),
            (IdentKind::Company, c.company.as_deref()),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
    }

    /// Finds (or names) the customer of an event and records the links it reveals.
    /// `is_provisional` says whether an existing key is provisional.
    pub fn resolve<'e>(
        &mut self,
        c: &'e CustomerRef,
        is_provisional: impl Fn(&str) -> bool,
    ) -> Resolution<'e> {
        if let Some(id) = c.id.as_deref() {
            let mut absorb = Vec::new();
            let mut linked = Vec::new();
            let mut key: Option<Arc<str>> = None;
            for (kind, ident) in Self::identifiers(c) {
                let (newly, absorbed) = self.link(kind, ident, id, &mut key, &is_provisional);
                if newly {
                    linked.push((kind, ident));
                }
                if let Some(p) = absorbed {
                    if !absorb.contains(&p) {
                        absorb.push(p);
                    }
                }
            }
            return Resolution::Customer {
                key: Key::Id(id),
                provisional: false,
                absorb,
                linked,
            };
        }
        let mut found: Option<Arc<str>> = None;
        let mut unknown: Vec<(IdentKind, &'e str)> = Vec::new();
        let mut blocked: Vec<String> = Vec::new();
        for (kind, ident) in Self::identifiers(c) {
            match self.links[kind as usize].get(ident) {
                Some(Link::One(k)) => {
                    if found.is_none() {
                        found = Some(k.clone());
                    }
                }
                Some(Link::Many(ks)) => blocked.push(format!(
                    "{} {ident} belongs to {} customers",
                    kind.as_str(),
                    ks.len()
                )),
                Some(Link::Shared) => {
                    blocked.push(format!("{} {ident} is a shared identifier", kind.as_str()))
                }
                None => unknown.push((kind, ident)),
            }
        }
        let (key, arc, provisional) = match found {
            Some(k) => {
                let p = is_provisional(&k);
                (Key::Linked(k.clone()), k, p)
            }
            None => match unknown.first() {
                Some((kind, ident)) => {
                    let name = format!("{}:{ident}", kind.as_str());
                    let arc: Arc<str> = Arc::from(name.as_str());
                    (Key::New(name), arc, true)
                }
                None => return Resolution::Ambiguous(blocked.join("; ")),
            },
        };
        for (kind, ident) in &unknown {
            self.links[*kind as usize].insert(Box::from(*ident), Link::One(arc.clone()));
        }
        Resolution::Customer {
            key,
            provisional,
            absorb: Vec::new(),
            linked: unknown,
        }
    }

    /// Links `ident` to the CRM id `id` (its `Arc` made once, on first need, in `key`). Returns
    /// whether the link is new for `id`, and a provisional customer the identifier pointed at,
    /// which must now be merged into `id`.
    fn link(
        &mut self,
        kind: IdentKind,
        ident: &str,
        id: &str,
        key: &mut Option<Arc<str>>,
        is_provisional: &impl Fn(&str) -> bool,
    ) -> (bool, Option<Arc<str>>) {
        let limit = self.limit;
        let mut arc = || key.get_or_insert_with(|| Arc::from(id)).clone();
        let link = match self.links[kind as usize].entry_ref(ident) {
            hashbrown::hash_map::EntryRef::Vacant(v) => {
                v.insert_with_key(Box::from(ident), Link::One(arc()));
                return (true, None);
            }
            hashbrown::hash_map::EntryRef::Occupied(o) => o.into_mut(),
        };
        match link {
            Link::Shared => (false, None),
            Link::One(existing) => {
                if &**existing == id {
                    return (false, None);
                }
                if is_provisional(existing) {
                    let absorbed = existing.clone();
                    *link = Link::One(arc());
                    return (true, Some(absorbed));
                }
                let mut both = vec![existing.clone(), arc()];
                both.sort();
                *link = if both.len() >= limit {
                    self.shared_count += 1;
                    Link::Shared
                } else {
                    Link::Many(both)
                };
                (true, None)
            }
            Link::Many(keys) => {
                if keys.iter().any(|k| &**k == id) {
                    return (false, None);
                }
                keys.push(arc());
                keys.sort();
                if keys.len() >= limit {
                    *link = Link::Shared;
                    self.shared_count += 1;
                }
                (true, None)
            }
        }
    }

    /// What a normalized identifier points at, without recording anything.
    pub fn lookup(&self, kind: IdentKind, ident: &str) -> Lookup<'_> {
        match self.links[kind as usize].get(ident) {
            Some(Link::One(k)) => Lookup::Customer(k),
            Some(Link::Many(ks)) => Lookup::Ambiguous(ks.len()),
            Some(Link::Shared) => Lookup::Shared,
            None => Lookup::Unknown,
        }
    }

    /// Points every identifier of `from` at `to` (after a merge).
    pub fn relink(&mut self, idents: &[(IdentKind, Box<str>)], from: &str, to: &Arc<str>) {
        for (kind, ident) in idents {
            if let Some(link) = self.links[*kind as usize].get_mut(&**ident) {
                if matches!(link, Link::One(k) if &**k == from) {
                    *link = Link::One(to.clone());
                }
            }
        }
    }

    /// Forgets an evicted customer's links (shared identifiers stay demoted).
    pub fn forget(&mut self, idents: &[(IdentKind, Box<str>)], key: &str) {
        for (kind, ident) in idents {
            let map = &mut self.links[*kind as usize];
            let remove = match map.get_mut(&**ident) {
                Some(Link::One(k)) => &**k == key,
                Some(link @ Link::Many(_)) => {
                    let Link::Many(keys) = link else {
                        unreachable!()
                    };
                    keys.retain(|k| &**k != key);
                    if keys.len() == 1 {
                        *link = Link::One(keys[0].clone());
                    }
                    false
                }
                _ => false,
            };
            if remove {
                map.remove(&**ident);
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
                    .map(move |(ident, link)| (kind, &**ident, link))
            })
    }

    /// Puts back a link taken by [`IdentityIndex::links`] (restoring a snapshot).
    pub fn restore_link(&mut self, kind: IdentKind, ident: &str, link: Link) {
        self.links[kind as usize].insert(Box::from(ident), link);
    }

    /// Number of identifiers indexed.
    pub fn len(&self) -> usize {
        self.links.iter().map(|m| m.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cref(id: Option<&str>, phone: Option<&str>) -> CustomerRef {
        CustomerRef {
            id: id.map(Into::into),
            phone: phone.map(Into::into),
            ..CustomerRef::default()
        }
    }

    fn key_of(r: Resolution<'_>) -> String {
        match r {
            Resolution::Customer { key, .. } => key.as_str().to_string(),
            Resolution::Ambiguous(why) => format!("ambiguous: {why}"),
        }
    }

    #[test]
    fn a_phone_finds_the_customer_it_was_seen_with() {
        let mut ix = IdentityIndex::new(3, &[], &[]);
        ix.resolve(&cref(Some("C1"), Some("+8613800138000")), |_| false);
        assert_eq!(
            key_of(ix.resolve(&cref(None, Some("+8613800138000")), |_| false)),
            "C1"
        );
    }

    #[test]
    fn a_switchboard_never_merges_customers() {
        let mut ix = IdentityIndex::new(3, &[], &[]);
        for id in ["C1", "C2", "C3", "C4"] {
            ix.resolve(&cref(Some(id), Some("+862160000000")), |_| false);
        }
        assert!(
            key_of(ix.resolve(&cref(None, Some("+862160000000")), |_| false))
                .starts_with("ambiguous")
        );
        assert_eq!(ix.shared_count, 1);
    }

    #[test]
    fn a_provisional_customer_is_absorbed_when_its_id_appears() {
        let mut ix = IdentityIndex::new(3, &[], &[]);
        let a = cref(None, Some("+8613800138000"));
        let first = ix.resolve(&a, |_| false);
        assert_eq!(key_of(first), "phone:+8613800138000");
        let b = cref(Some("C1"), Some("+8613800138000"));
        let r = ix.resolve(&b, |k| k.starts_with("phone:"));
        let Resolution::Customer { key, absorb, .. } = r else {
            panic!("resolved")
        };
        assert_eq!(key.as_str(), "C1");
        assert_eq!(absorb, vec![Arc::<str>::from("phone:+8613800138000")]);
    }
}
