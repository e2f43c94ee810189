//! Output events: CloudEvents 1.0 in structured JSON, with deterministic ids.
//!
//! An output's `id` is a 128-bit XXH3 hash of its `type`, `subject` and `data` bytes. The core
//! renders `data` deterministically (fixed field order, sorted lists, event-time timestamps), so
//! the same input and rules give the same ids on every replay and redelivery, on any instance,
//! and downstream consumers can deduplicate by id.

use crate::event::EventId;
use crate::json::push_str;
use crate::time::Timestamp;
use serde::Serialize;
use std::cell::OnceCell;
use std::sync::Arc;

mod write;
pub use write::WriteJson;

/// The CloudEvents `type` of every output leadguard emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OutputType {
    /// A collision alert (`leadguard.collision.detected`).
    Collision,
    /// A rep became owner by first developing an unowned customer (`leadguard.ownership.claimed`).
    OwnershipClaimed,
    /// An earlier output is withdrawn because a late event or a merge changed the facts
    /// (`leadguard.output.withdrawn`).
    Withdrawn,
    /// A pool's strategy gave the customer to a rep (`leadguard.ownership.assigned`).
    OwnershipAssigned,
    /// The customer went back to its pool (`leadguard.ownership.released`).
    OwnershipReleased,
    /// The owner's follow-up moved the end of protection (`leadguard.ownership.extended`).
    OwnershipExtended,
    /// An ownership change was refused by the rules (`leadguard.ownership.rejected`).
    OwnershipRejected,
    /// A collision's resolution moved the customer (`leadguard.ownership.reassigned`).
    OwnershipReassigned,
    /// A collision's resolution names another rep (`leadguard.reassignment.recommended`).
    ReassignmentRecommended,
    /// The owner will lose the customer soon (`leadguard.reclaim.warning`).
    ReclaimWarning,
    /// A follow-up SLA was missed (`leadguard.sla.breached`).
    SlaBreached,
    /// A won customer went quiet (`leadguard.customer.dormant`).
    CustomerDormant,
}

impl OutputType {
    pub const ALL: [OutputType; 12] = [
        OutputType::Collision,
        OutputType::OwnershipClaimed,
        OutputType::Withdrawn,
        OutputType::OwnershipAssigned,
        OutputType::OwnershipReleased,
        OutputType::OwnershipExtended,
        OutputType::OwnershipRejected,
        OutputType::OwnershipReassigned,
        OutputType::ReassignmentRecommended,
        OutputType::ReclaimWarning,
        OutputType::SlaBreached,
        OutputType::CustomerDormant,
    ];

    /// Its position in [`OutputType::ALL`], for counting by type in an array.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OutputType::Collision => "leadguard.collision.detected",
            OutputType::OwnershipClaimed => "leadguard.ownership.claimed",
            OutputType::Withdrawn => "leadguard.output.withdrawn",
            OutputType::OwnershipAssigned => "leadguard.ownership.assigned",
            OutputType::OwnershipReleased => "leadguard.ownership.released",
            OutputType::OwnershipExtended => "leadguard.ownership.extended",
            OutputType::OwnershipRejected => "leadguard.ownership.rejected",
            OutputType::OwnershipReassigned => "leadguard.ownership.reassigned",
            OutputType::ReassignmentRecommended => "leadguard.reassignment.recommended",
            OutputType::ReclaimWarning => "leadguard.reclaim.warning",
            OutputType::SlaBreached => "leadguard.sla.breached",
            OutputType::CustomerDormant => "leadguard.customer.dormant",
        }
    }
}

/// One output event.
///
/// Its `data` and `id` are rendered either when it is built ([`Output::new`]) or, for outputs
/// the core never compares again ([`Output::deferred`]), the first time anyone asks for them —
/// so a replay renders them on its writing thread, off the core's. Either way the bytes are the
/// same: they depend on the data alone.
#[derive(Clone)]
pub struct Output {
    // Read-only once built (accessors below): the id is derived from them, so changing one
    // would leave an output whose id says something else.
    ty: OutputType,
    subject: Arc<str>,
    time: Timestamp,
    rule: Option<(Arc<str>, &'static str)>,
    /// A cell, not a lock: an output is moved between threads, never shared by them, and a
    /// lock's first-use synchronisation showed in the writing thread's profile.
    content: OnceCell<Content>,
    /// Renders `data` for a deferred output.
    render: Option<Render>,
}

/// The rendered `data` and the id derived from it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Content {
    id: String,
    data: String,
}

/// Renders a deferred output's `data` as JSON.
type Render = Arc<dyn Fn() -> String + Send + Sync>;

impl Output {
    /// Builds an output whose id is derived from its content, rendered now.
    pub fn new(
        ty: OutputType,
        subject: Arc<str>,
        time: Timestamp,
        data: &impl WriteJson,
        rule: Option<(Arc<str>, &'static str)>,
    ) -> Output {
        Output::from_rendered(ty, subject, time, render_json(data), rule)
    }

    /// Builds an output whose `data` (and so its id) is rendered when first asked for.
    pub fn deferred(
        ty: OutputType,
        subject: Arc<str>,
        time: Timestamp,
        data: impl WriteJson + Send + Sync + 'static,
        rule: Option<(Arc<str>, &'static str)>,
    ) -> Output {
        Output {
            ty,
            subject,
            time,
            rule,
            content: OnceCell::new(),
            render: Some(Arc::new(move || render_json(&data))),
        }
    }

    /// Builds an output from `data` already rendered as JSON.
    pub fn from_rendered(
        ty: OutputType,
        subject: Arc<str>,
        time: Timestamp,
        data: String,
        rule: Option<(Arc<str>, &'static str)>,
    ) -> Output {
        let id = content_id(ty.as_str(), &subject, &data);
        Output::from_parts(id, ty, subject, time, data, rule)
    }

    /// Builds an output from an id and `data` as they were written (a snapshot, a test).
    pub fn from_parts(
        id: String,
        ty: OutputType,
        subject: Arc<str>,
        time: Timestamp,
        data: String,
        rule: Option<(Arc<str>, &'static str)>,
    ) -> Output {
        Output {
            ty,
            subject,
            time,
            rule,
            content: OnceCell::from(Content { id, data }),
            render: None,
        }
    }

    fn content(&self) -> &Content {
        self.content.get_or_init(|| {
            let render = self
                .render
                .as_ref()
                .expect("an output is rendered or can render");
            let data = render();
            Content {
                id: content_id(self.ty.as_str(), &self.subject, &data),
                data,
            }
        })
    }

    /// The CloudEvents `type`.
    pub fn ty(&self) -> OutputType {
        self.ty
    }

    /// The customer key (CloudEvents `subject`).
    pub fn subject(&self) -> &Arc<str> {
        &self.subject
    }

    /// Event time of what caused the output.
    pub fn time(&self) -> Timestamp {
        self.time
    }

    /// For collision alerts: the rule id and severity, for counting without parsing `data`.
    pub fn rule(&self) -> Option<&(Arc<str>, &'static str)> {
        self.rule.as_ref()
    }

    /// The CloudEvents `id`: a hash of `type`, `subject` and `data`.
    pub fn id(&self) -> &str {
        &self.content().id
    }

    /// The `data` member, rendered JSON.
    pub fn data(&self) -> &str {
        &self.content().data
    }

    /// The CloudEvent as one line of JSON (no trailing newline).
    pub fn to_cloudevent(&self, source: &str, tz: chrono_tz::Tz) -> String {
        let mut out = Vec::with_capacity(self.data().len() + 256);
        self.write_cloudevent(&mut out, source, tz);
        String::from_utf8(out).expect("JSON text is UTF-8")
    }

    /// Appends the CloudEvent's JSON line (no trailing newline) to `out`: the writers reuse
    /// one buffer for every output instead of building a string each.
    pub fn write_cloudevent(&self, out: &mut Vec<u8>, source: &str, tz: chrono_tz::Tz) {
        out.extend_from_slice(b"{\"specversion\":\"1.0\",\"id\":");
        push_str(out, self.id());
        out.extend_from_slice(b",\"source\":");
        push_str(out, source);
        out.extend_from_slice(b",\"type\":");
        push_str(out, self.ty.as_str());
        out.extend_from_slice(b",\"time\":\"");
        // RFC 3339 text has nothing to escape.
        self.time.write_rfc3339_in(tz, out);
        out.extend_from_slice(b"\",\"subject\":");
        push_str(out, &self.subject);
        out.extend_from_slice(b",\"datacontenttype\":\"application/json\",\"data\":");
        out.extend_from_slice(self.data().as_bytes());
        out.push(b'}');
    }
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output")
            .field("id", &self.id())
            .field("ty", &self.ty)
            .field("subject", &self.subject)
            .field("time", &self.time)
            .field("data", &self.data())
            .field("rule", &self.rule)
            .finish()
    }
}

impl PartialEq for Output {
    fn eq(&self, other: &Output) -> bool {
        self.ty == other.ty
            && self.subject == other.subject
            && self.time == other.time
            && self.rule == other.rule
            && self.content() == other.content()
    }
}

impl Eq for Output {}

/// `data` as JSON. Written into a reused string, then copied once at its exact size: a fresh
/// string would grow (reallocate and copy) several times on the way to a few hundred bytes.
fn render_json(data: &impl WriteJson) -> String {
    thread_local! {
        static BUF: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    BUF.with_borrow_mut(|buf| {
        buf.clear();
        data.write_json(buf);
        buf.as_str().to_owned()
    })
}

/// The deterministic id: 32 lower-case hex digits.
pub fn content_id(ty: &str, subject: &str, data: &str) -> String {
    let digest = crate::digest::xxh3_128_parts([
        ty.as_bytes(),
        &[0],
        subject.as_bytes(),
        &[0],
        data.as_bytes(),
    ]);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = [0u8; 32];
    for (i, c) in id.iter_mut().enumerate() {
        *c = HEX[((digest >> (124 - 4 * i)) & 0xf) as usize];
    }
    String::from_utf8(id.to_vec()).expect("hex digits")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_types_index_is_its_position_in_all() {
        for (i, ty) in OutputType::ALL.into_iter().enumerate() {
            assert_eq!(ty.index(), i, "{}", ty.as_str());
        }
    }

    #[test]
    fn a_deferred_output_renders_the_bytes_and_id_of_an_eager_one() {
        let data = WithdrawnData {
            withdrawn_id: "0a1b".into(),
            withdrawn_type: OutputType::Collision.as_str(),
            reason: "a late event \"changed\" the facts".into(),
        };
        let t = Timestamp(1_790_000_000_000);
        let eager = Output::new(OutputType::Withdrawn, Arc::from("C1"), t, &data, None);
        let deferred = Output::deferred(OutputType::Withdrawn, Arc::from("C1"), t, data, None);
        // Rendered on another thread, as a replay's writer does.
        let copy = deferred.clone();
        let (id, text) =
            std::thread::spawn(move || (copy.id().to_string(), copy.data().to_string()))
                .join()
                .unwrap();
        assert_eq!((id.as_str(), text.as_str()), (eager.id(), eager.data()));
        assert_eq!(deferred, eager);
        assert_eq!(
            deferred.to_cloudevent("urn:x", chrono_tz::Asia::Shanghai),
            eager.to_cloudevent("urn:x", chrono_tz::Asia::Shanghai)
        );
    }

    #[test]
    fn text_written_later_renders_like_text_written_now() {
        let key: Arc<str> = Arc::from("公司 \"C1\"");
        let at = OutTime {
            t: Timestamp(1_790_000_000_000),
            tz: chrono_tz::Asia::Shanghai,
        };
        let later = {
            let key = key.clone();
            Text::later(move |out| say!(out, "customer ", key, " at ", at, "\n."))
        };
        let now = Text::from(format!(
            "customer {key} at {}\n.",
            at.t.to_rfc3339_in(at.tz)
        ));
        assert_eq!(
            serde_json::to_string(&later).unwrap(),
            serde_json::to_string(&now).unwrap()
        );
        assert_eq!(later, now);
        assert_eq!(
            serde_json::to_string(&at).unwrap(),
            "\"2026-09-21T22:13:20+08:00\""
        );
    }

    #[test]
    fn ids_are_32_hex_digits_of_the_hash() {
        let id = content_id("t", "s", "{}");
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        h.update(b"t\0s\0{}");
        assert_eq!(id, format!("{:032x}", h.digest128()));
    }
}

/// A time in output data: RFC 3339 in the configured time zone. Kept as a time until the data
/// is rendered, so a deferred output formats it on the thread that writes it, not the core's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutTime {
    pub t: Timestamp,
    pub tz: chrono_tz::Tz,
}

// Output data is rendered by `output/write.rs`; the `Serialize` impls here and the data types'
// derives are the reference its tests compare the bytes against.
impl Serialize for OutTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.t.to_rfc3339_in(self.tz))
    }
}

impl std::fmt::Display for OutTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Written into a reused string, not a new one each: an allocation per time.
        thread_local! {
            static BUF: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
        }
        BUF.with_borrow_mut(|buf| {
            buf.clear();
            self.put(buf);
            f.write_str(buf)
        })
    }
}

/// A sentence for humans in output data (`reason`). Either text already, or the values it is
/// made of and how to write them: a deferred output writes it when it is rendered, so the core
/// spends no time formatting the explanations of outputs it never compares again.
#[derive(Clone)]
pub struct Text(TextRepr);

type WriteText = dyn Fn(&mut String) + Send + Sync;

#[derive(Clone)]
enum TextRepr {
    Ready(String),
    Later(Arc<WriteText>),
}

impl Text {
    /// Text written from captured values when the data is rendered, usually with the crate's
    /// `say!`. The closure must write the same text every time (it captures values, never
    /// state that changes).
    pub fn later(write: impl Fn(&mut String) + Send + Sync + 'static) -> Text {
        Text(TextRepr::Later(Arc::new(write)))
    }

    /// Appends the text to `out`.
    pub(crate) fn push_to(&self, out: &mut String) {
        match &self.0 {
            TextRepr::Ready(text) => out.push_str(text),
            TextRepr::Later(write) => write(out),
        }
    }
}

/// A part of an explanation, appended as it is written.
///
/// Explanations were written with `write!`: its machinery (an argument list walked at run
/// time, a padding check and a call through a pointer per part) cost about 1,700 instructions
/// per explanation, 5% of the core's work on the benchmark stream. Pieces are appended
/// directly instead; the crate's `say!` lists them.
pub trait Piece {
    fn put(&self, out: &mut String);
}

impl<T: Piece + ?Sized> Piece for &T {
    fn put(&self, out: &mut String) {
        (**self).put(out)
    }
}

impl Piece for str {
    fn put(&self, out: &mut String) {
        out.push_str(self)
    }
}

impl Piece for String {
    fn put(&self, out: &mut String) {
        out.push_str(self)
    }
}

impl Piece for Arc<str> {
    fn put(&self, out: &mut String) {
        out.push_str(self)
    }
}

impl Piece for OutTime {
    fn put(&self, out: &mut String) {
        self.t.push_rfc3339_in(self.tz, out)
    }
}

/// A span as [`crate::time::format_span`] writes it (`1d12h`).
impl Piece for crate::time::Span {
    fn put(&self, out: &mut String) {
        crate::time::push_span(*self, out)
    }
}

macro_rules! integer_pieces {
    ($($t:ty),*) => {$(
        impl Piece for $t {
            fn put(&self, out: &mut String) {
                out.push_str(itoa::Buffer::new().format(*self))
            }
        }
    )*};
}
integer_pieces!(u32, usize, i64);

/// Appends each piece ([`Piece`]) to the string, in order:
/// `say!(out, who, " followed up customer ", key)`.
macro_rules! say {
    ($out:expr $(, $piece:expr)* $(,)?) => {{
        let out: &mut String = $out;
        $( $crate::output::Piece::put(&$piece, out); )*
    }};
}
pub(crate) use say;

impl From<String> for Text {
    fn from(s: String) -> Text {
        Text(TextRepr::Ready(s))
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text(TextRepr::Ready(s.to_string()))
    }
}

impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            TextRepr::Ready(s) => f.write_str(s),
            TextRepr::Later(write) => {
                let mut text = String::new();
                write(&mut text);
                f.write_str(&text)
            }
        }
    }
}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.to_string(), f)
    }
}

/// Two texts are equal when they read the same, however they are held.
impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for Text {}

impl Serialize for Text {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A rep as named in output data.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct RepData {
    pub id: Arc<str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Arc<str>>,
}

/// The customer as named in output data.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CustomerData {
    pub id: Arc<str>,
    /// True when the customer is known only by an identifier (no CRM id seen yet).
    pub provisional: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub industry: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<Arc<str>>,
}

/// One input event cited as evidence.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct EvidenceData {
    pub event_id: EventId,
    pub source: Arc<str>,
    pub kind: &'static str,
    /// `outbound` or `inbound` for a contact; absent for an ownership event, which has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<&'static str>,
    pub rep: Arc<str>,
    pub occurred_at: OutTime,
}

/// The owner at the time of the triggering event.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OwnerData {
    pub rep: RepData,
    pub since: String,
    pub protected_until: String,
    /// How the owner got the customer: `crm` (an ownership event) or `first_touch`.
    pub via: &'static str,
    /// The event that made them owner.
    pub origin_event: EventId,
}

/// `data` of `leadguard.collision.detected`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CollisionData {
    pub rule: Arc<str>,
    pub rule_type: &'static str,
    pub severity: &'static str,
    pub customer: CustomerData,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<OwnerData>,
    /// Every rep involved, sorted by id.
    pub reps: Vec<RepData>,
    /// The rep whose contact triggered the alert (absent for complaints).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intruder: Option<RepData>,
    /// The triggering event first, then supporting events in event-time order.
    pub evidence: Vec<EvidenceData>,
    /// The event-time window the rule looked at.
    pub window: WindowData,
    /// One sentence for humans.
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct WindowData {
    pub from: String,
    pub to: String,
}

/// `data` of `leadguard.ownership.claimed` and `leadguard.ownership.assigned`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ClaimData {
    pub customer: CustomerData,
    pub rep: RepData,
    /// `first_touch`, `claim`, `assigned`.
    pub via: &'static str,
    pub protected_until: OutTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool: Option<Arc<str>>,
    /// For assignments: the pool's strategy and how many reps were eligible.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eligible_reps: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_owner: Option<RepData>,
    pub evidence: Vec<EvidenceData>,
    pub reason: Text,
}

/// `data` of `leadguard.ownership.released`, `.extended`, `leadguard.reclaim.warning`,
/// `leadguard.sla.breached` and `leadguard.customer.dormant`: something about the owner's hold.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct HoldData {
    pub customer: CustomerData,
    /// The owner concerned.
    pub rep: RepData,
    /// Machine-readable cause, e.g. `no_follow_up`, `protection_cap`, `no_deal`,
    /// `follow_up_sla`, `new_lead_first_follow_up`, `inbound_response`, `dormant`.
    pub reason_code: &'static str,
    /// The rule section that decided it, e.g. `ownership.protection`, `sla.new_lead`.
    pub rule: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool: Option<Arc<str>>,
    /// The time the rule looked at: the new protection end, the reclaim time, the SLA due time.
    pub at: OutTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<OutTime>,
    pub evidence: Vec<EvidenceData>,
    pub reason: Text,
}

/// `data` of `leadguard.ownership.rejected`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RejectedData {
    pub customer: CustomerData,
    /// What was asked: `first_touch`, `claim`, `assign`, `transfer`, `lock`, `reassign`.
    pub action: &'static str,
    pub rep: RepData,
    /// `claims_per_day`, `max_owned`, `max_locked`, `reclaim_cooldown`, `out_of_territory`,
    /// `rep_inactive`, `not_owner`, `owned_by_other` (also: a provisional customer's owner
    /// dropped by a merge).
    pub reason_code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<RepData>,
    pub evidence: Vec<EvidenceData>,
    pub reason: Text,
}

/// One rep's engagement score, itemised.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ScoreData {
    pub rep: RepData,
    /// Counted contacts in the window (1 point each).
    pub contacts: u32,
    /// Visits and meetings in the window (3 points each).
    pub progress: u32,
    /// 0–10: how recent the rep's last contact is within the window.
    pub recency: u32,
    /// When the rep first contacted the customer within the window.
    pub first_contact: String,
    pub total: u32,
}

/// `data` of `leadguard.reassignment.recommended` and `leadguard.ownership.reassigned`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReassignmentData {
    pub customer: CustomerData,
    pub rule: Arc<str>,
    /// `first_touch` or `most_engaged`.
    pub resolution: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_rep: Option<RepData>,
    pub to_rep: RepData,
    /// The collision alert this settles.
    pub collision_id: String,
    /// Every candidate's score, best first.
    pub scores: Vec<ScoreData>,
    pub window: WindowData,
    pub evidence: Vec<EvidenceData>,
    pub reason: Text,
}

/// `data` of `leadguard.output.withdrawn`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct WithdrawnData {
    /// The id of the output that no longer holds.
    pub withdrawn_id: String,
    pub withdrawn_type: &'static str,
    pub reason: String,
}
