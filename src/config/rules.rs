//! The rules model: what the YAML files in `rules/` say, checked and compiled.
//!
//! A rules directory holds any number of `*.yaml` files. Each file is a mapping of *sections*:
//! `settings`, `identity`, `ownership`, `exemptions` (each at most once across the directory),
//! and `collisions`, `sources` (lists, concatenated in file-name order). A missing section takes
//! the documented defaults. [`Rules::load_dir`] reports every problem of every file at once.

use super::lifecycle;
pub use super::lifecycle::{
    Assignment, Calendar, InboundSla, Limits, NewLeadSla, OwnershipRules, Pool, Protection,
    Resolution, Slas, Strategy,
};
use super::sources::{read_source, SourceMapping};
use super::yaml::{self, Diagnostic, MapReader, Node, Reader, Value};
use super::SourceFile;
use crate::event::{ContactKind, KindSet};
use crate::identity::normalize::{self, Region};
use crate::time::Span;
use chrono_tz::Tz;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How loud an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const CHOICES: [(&'static str, Severity); 4] = [
        ("low", Severity::Low),
        ("medium", Severity::Medium),
        ("high", Severity::High),
        ("critical", Severity::Critical),
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// Engine-wide settings (`settings:`).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Every day boundary and output timestamp is in this IANA zone.
    pub time_zone: Tz,
    /// How far behind the newest event time an event may arrive and still be placed in order.
    pub allowed_lateness: Span,
    /// How far ahead of the driver's clock an event may claim to be (live mode only).
    pub max_future_skew: Span,
    /// When event time is the clock (a replay, a file, Kafka's event clock): how far ahead of
    /// the newest event time an event may jump. A mistyped year would otherwise move the clock
    /// past every pending deadline and make every later event too late.
    pub max_clock_jump: Span,
    /// Larger input messages are rejected whole.
    pub max_message_bytes: usize,
    /// CloudEvents `source` of every output.
    pub output_source: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            time_zone: chrono_tz::Asia::Shanghai,
            allowed_lateness: Span::minutes(10),
            max_future_skew: Span::minutes(5),
            max_clock_jump: Span::days(30),
            max_message_bytes: 64 * 1024,
            output_source: "urn:leadguard".into(),
        }
    }
}

/// How identifiers are normalized and resolved (`identity:`).
#[derive(Debug, Clone, PartialEq)]
pub struct IdentitySettings {
    pub default_region: Region,
    pub strip_email_plus_tags: bool,
    /// An identifier seen with this many different customer ids is a shared one (a switchboard,
    /// a purchasing mailbox): it is never used to find or merge customers again.
    pub shared_identifier_limit: usize,
    /// Identifiers known up front to be shared (normalized on load).
    pub shared_phones: Vec<String>,
    pub shared_emails: Vec<String>,
}

impl Default for IdentitySettings {
    fn default() -> Self {
        IdentitySettings {
            default_region: Region::from_iso(normalize::DEFAULT_REGION_ISO)
                .expect("default region is in the table"),
            strip_email_plus_tags: true,
            shared_identifier_limit: 3,
            shared_phones: Vec::new(),
            shared_emails: Vec::new(),
        }
    }
}

/// Contacts that never count as collisions (`exemptions:`).
#[derive(Debug, Clone, PartialEq)]
pub struct Exemptions {
    /// Roles that don't sell.
    pub roles: Vec<String>,
    /// Members of the customer's account team may work it beside the owner.
    pub account_team: bool,
    /// An inbound contact answered by a teammate of the owner is not an intrusion.
    pub owner_team_inbound: bool,
}

impl Default for Exemptions {
    fn default() -> Self {
        Exemptions {
            roles: vec![
                "customer_service".into(),
                "support".into(),
                "technical".into(),
            ],
            account_team: true,
            owner_team_inbound: true,
        }
    }
}

/// Which customers and reps a rule looks at. Empty lists mean "any".
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scope {
    /// Team patterns, read as a pool's `teams` are (`east-*` is every team starting `east-`).
    pub teams: Vec<String>,
    pub regions: Vec<String>,
    pub industries: Vec<String>,
    pub tiers: Vec<String>,
}

impl Scope {
    /// Whether a rep of this team is in scope.
    pub fn allows_team(&self, team: Option<&str>) -> bool {
        lifecycle::teams_admit(&self.teams, team)
    }
}

/// What a collision rule detects.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CollisionKind {
    /// A rep who is not the owner contacts a customer under protection.
    ProtectedContact,
    /// No protecting owner, and `min_reps` or more distinct reps contact the customer within
    /// `window`.
    MultiRep { min_reps: usize, window: Span },
    /// The customer complains; every rep who contacted it within `window` is named.
    Complaint { window: Span },
    /// A rep whose team may not work the customer's pool contacts it.
    OutOfTerritory,
}

impl CollisionKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            CollisionKind::ProtectedContact => "protected_contact",
            CollisionKind::MultiRep { .. } => "multi_rep",
            CollisionKind::Complaint { .. } => "complaint",
            CollisionKind::OutOfTerritory => "out_of_territory",
        }
    }
    /// How far back this rule looks from an event.
    pub fn window(&self) -> Span {
        match self {
            CollisionKind::ProtectedContact | CollisionKind::OutOfTerritory => Span::ZERO,
            CollisionKind::MultiRep { window, .. } | CollisionKind::Complaint { window } => *window,
        }
    }
}

/// One entry of `collisions:`.
#[derive(Debug, Clone, PartialEq)]
pub struct CollisionRule {
    pub id: String,
    pub kind: CollisionKind,
    pub severity: Severity,
    /// At most one alert per (customer, rep set, rule) within this span of event time.
    pub cooldown: Span,
    /// Which contact kinds this rule looks at.
    pub kinds: KindSet,
    pub scope: Scope,
    /// Who should keep the customer after this collision.
    pub resolution: Resolution,
    /// Reassign automatically to the rep the resolution names (else only recommend).
    pub reassign: bool,
    /// Where the rule was written, for explanations.
    pub defined_at: String,
}

/// Everything the engine is configured with.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rules {
    pub settings: Settings,
    pub identity: IdentitySettings,
    pub ownership: OwnershipRules,
    pub exemptions: Exemptions,
    pub collisions: Vec<CollisionRule>,
    pub sources: Vec<SourceMapping>,
    /// Public pools, in order: a customer belongs to the first pool it matches.
    pub pools: Vec<Pool>,
    pub sla: Slas,
    pub calendar: Calendar,
    /// The files these rules were compiled from, in the order read ([`Rules::from_texts`]);
    /// empty for rules built or changed in code, which can't be compiled again from files.
    pub files: Arc<[SourceFile]>,
}

/// The shipped rules, compiled into the binary so that `leadguard run` works anywhere.
pub const EMBEDDED: &[(&str, &str)] = &[
    (
        "rules/settings.yaml",
        include_str!("../../rules/settings.yaml"),
    ),
    (
        "rules/collisions.yaml",
        include_str!("../../rules/collisions.yaml"),
    ),
    (
        "rules/lifecycle.yaml",
        include_str!("../../rules/lifecycle.yaml"),
    ),
    (
        "rules/sources.yaml",
        include_str!("../../rules/sources.yaml"),
    ),
];

const SECTIONS: &[&str] = &[
    "settings",
    "identity",
    "ownership",
    "exemptions",
    "collisions",
    "sources",
    "pools",
    "sla",
    "calendar",
];

impl Rules {
    /// These rules without the ownership lifecycle: collision rules, identity, exemptions and
    /// first-touch claims with a plain protection period — no pools, SLAs, extension, warnings
    /// or reclaims. For measuring collision detection on its own (benchmarks).
    pub fn without_lifecycle(self) -> Rules {
        Rules {
            ownership: crate::config::OwnershipRules {
                first_touch: self.ownership.first_touch,
                follow_up_kinds: self.ownership.follow_up_kinds,
                release_on_expiry: false,
                ..Default::default()
            },
            pools: Vec::new(),
            sla: Default::default(),
            // No longer what the files say.
            files: Arc::default(),
            ..self
        }
    }

    /// The longest span any rule looks back from an event (windows and cooldowns): how long a
    /// contact must be remembered.
    pub fn horizon(&self) -> Span {
        // A resolution of a rule without a window scores the protection period back from the
        // alert (see the lifecycle), so those contacts must still be in memory.
        let longest_protection = std::iter::once(self.ownership.protection.period)
            .chain(self.ownership.tiers.iter().map(|(_, p)| p.period))
            .max()
            .unwrap_or(Span::ZERO);
        self.collisions
            .iter()
            .map(|r| {
                let scored =
                    if r.resolution != Resolution::OwnerWins && r.kind.window() == Span::ZERO {
                        longest_protection
                    } else {
                        Span::ZERO
                    };
                r.kind.window().max(r.cooldown).max(scored)
            })
            .max()
            .unwrap_or(Span::ZERO)
    }

    /// How long a customer with no owner is remembered without an event: the horizon, or
    /// longer while a rule still waits on it (a reclaim cooldown, a pool's assignment). After
    /// that it is forgotten, its description and its lifecycle record with it (the core evicts
    /// it from memory, and reads it as forgotten in event time even before it does).
    pub fn forget_after(&self) -> Span {
        let waits = self
            .pools
            .iter()
            .filter_map(|p| p.assignment.map(|a| a.after))
            .chain(self.ownership.limits.reclaim_cooldown);
        waits.fold(self.horizon(), Span::max)
    }

    /// Reads every `*.yaml`/`*.yml` file of a directory (or one file), in name order.
    pub fn load_dir(path: &Path) -> Result<Rules, Vec<Diagnostic>> {
        let mut files: Vec<PathBuf> = Vec::new();
        let diag = |message: String| Diagnostic {
            file: path.to_path_buf(),
            line: 0,
            col: 0,
            message,
        };
        if path.is_file() {
            files.push(path.to_path_buf());
        } else {
            let entries = std::fs::read_dir(path)
                .map_err(|e| vec![diag(format!("cannot read the rules directory: {e}"))])?;
            for entry in entries {
                let p = entry
                    .map_err(|e| vec![diag(format!("cannot list the rules directory: {e}"))])?
                    .path();
                if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
                    files.push(p);
                }
            }
            files.sort();
        }
        if files.is_empty() {
            return Err(vec![diag(
                "no *.yaml rules files here; `leadguard validate` checks a directory like rules/"
                    .into(),
            )]);
        }
        let mut texts = Vec::new();
        let mut errors = Vec::new();
        for f in files {
            match std::fs::read_to_string(&f) {
                Ok(t) => texts.push((f, t)),
                Err(e) => errors.push(Diagnostic {
                    file: f,
                    line: 0,
                    col: 0,
                    message: format!("cannot read: {e}"),
                }),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Self::from_texts(texts.iter().map(|(p, t)| (p.as_path(), t.as_str())))
    }

    /// The rules shipped in `rules/`, as compiled into the binary.
    pub fn embedded() -> Rules {
        Self::from_texts(EMBEDDED.iter().map(|(p, t)| (Path::new(*p), *t)))
            .expect("the shipped rules are valid (checked by tests)")
    }

    /// Compiles rules from (file name, YAML text) pairs.
    pub fn from_texts<'a>(
        files: impl IntoIterator<Item = (&'a Path, &'a str)>,
    ) -> Result<Rules, Vec<Diagnostic>> {
        let mut errors = Vec::new();
        let mut trees = Vec::new();
        let mut read = Vec::new();
        for (path, text) in files {
            read.push(SourceFile {
                name: path.display().to_string(),
                text: text.to_string(),
            });
            match yaml::parse(text, path) {
                Ok(node) => trees.push((path, node)),
                Err(d) => errors.extend(d),
            }
        }
        let mut rules = Rules {
            files: read.into(),
            ..Rules::default()
        };
        // Names are gathered as written, also from entries that fail for another reason, so
        // that a duplicate is reported in the same run as that entry's other problems.
        let (mut collision_ids, mut source_names, mut pool_ids) =
            (Vec::new(), Vec::new(), Vec::new());
        let mut seen_sections: Vec<(&str, String)> = Vec::new();
        for (path, tree) in &trees {
            let mut r = Reader {
                file: path,
                errors: &mut errors,
            };
            let Some(top) = r.map(tree, "a rules file", SECTIONS) else {
                continue;
            };
            for &section in SECTIONS {
                let Some(node) = top.get(section) else {
                    continue;
                };
                let here = format!("{}:{}", path.display(), node.line);
                if matches!(
                    section,
                    "settings" | "identity" | "ownership" | "exemptions" | "sla" | "calendar"
                ) {
                    if let Some((_, first)) = seen_sections.iter().find(|(s, _)| *s == section) {
                        r.error(
                            node,
                            format!("section `{section}` is already defined at {first}; keep one"),
                        );
                        continue;
                    }
                    seen_sections.push((section, here));
                }
                match section {
                    "settings" => read_settings(&mut r, node, &mut rules.settings),
                    "identity" => read_identity(&mut r, node, &mut rules.identity),
                    "ownership" => lifecycle::read_ownership(&mut r, node, &mut rules.ownership),
                    "sla" => lifecycle::read_sla(&mut r, node, &mut rules.sla),
                    "calendar" => lifecycle::read_calendar(&mut r, node, &mut rules.calendar),
                    "pools" => {
                        if let Some(items) = r.list(node, "`pools`") {
                            for item in items {
                                if let Some(p) = lifecycle::read_pool(&mut r, item, &mut pool_ids) {
                                    rules.pools.push(p);
                                }
                            }
                        }
                    }
                    "exemptions" => read_exemptions(&mut r, node, &mut rules.exemptions),
                    "collisions" => {
                        if let Some(items) = r.list(node, "`collisions`") {
                            for item in items {
                                if let Some(rule) = read_collision(&mut r, item, &mut collision_ids)
                                {
                                    rules.collisions.push(rule);
                                }
                            }
                        }
                    }
                    "sources" => {
                        if let Some(items) = r.list(node, "`sources`") {
                            for item in items {
                                if let Some(s) = read_source(&mut r, item, &mut source_names) {
                                    rules.sources.push(s);
                                }
                            }
                        }
                    }
                    _ => unreachable!("every section is handled"),
                }
            }
            top.finish(&mut r);
        }
        check_unique(&mut errors, &collision_ids, "collision rule id");
        check_unique(&mut errors, &source_names, "source name");
        check_unique(&mut errors, &pool_ids, "pool id");
        if errors.is_empty() {
            Ok(rules)
        } else {
            errors.sort_by(|a, b| (&a.file, a.line, a.col).cmp(&(&b.file, b.line, b.col)));
            Err(errors)
        }
    }
}

/// A name an entry gives itself (a collision rule's id, a source's or a pool's name) and where
/// its value is written.
pub(super) struct NameAt {
    name: String,
    file: PathBuf,
    line: usize,
    col: usize,
}

impl NameAt {
    pub(super) fn new(r: &Reader<'_>, node: &Node, name: &str) -> NameAt {
        NameAt {
            name: name.to_string(),
            file: r.file.to_path_buf(),
            line: node.line,
            col: node.col,
        }
    }
}

/// Reports every repeat of a name at the repeat's value, naming where it was first used.
fn check_unique(errors: &mut Vec<Diagnostic>, names: &[NameAt], what: &str) {
    for (i, n) in names.iter().enumerate() {
        if let Some(first) = names[..i].iter().find(|f| f.name == n.name) {
            errors.push(Diagnostic {
                file: n.file.clone(),
                line: n.line,
                col: n.col,
                message: format!(
                    "{what} `{}` is already used at {}:{}; rename one",
                    n.name,
                    first.file.display(),
                    first.line
                ),
            });
        }
    }
}

fn read_settings(r: &mut Reader<'_>, node: &Node, out: &mut Settings) {
    let Some(m) = r.map(
        node,
        "`settings`",
        &[
            "time_zone",
            "allowed_lateness",
            "max_future_skew",
            "max_clock_jump",
            "max_message_bytes",
            "output_source",
        ],
    ) else {
        return;
    };
    if let Some(n) = m.get("time_zone") {
        if let Some(s) = r.string(n, "`time_zone`") {
            match s.parse::<Tz>() {
                Ok(tz) => out.time_zone = tz,
                Err(_) => r.error(
                    n,
                    format!("`time_zone`: `{s}` is not an IANA time zone such as Asia/Shanghai"),
                ),
            }
        }
    }
    if let Some(v) = m
        .get("allowed_lateness")
        .and_then(|n| r.span(n, "`allowed_lateness`"))
    {
        out.allowed_lateness = v;
    }
    if let Some(v) = m
        .get("max_future_skew")
        .and_then(|n| r.span(n, "`max_future_skew`"))
    {
        out.max_future_skew = v;
    }
    if let Some(n) = m.get("max_clock_jump") {
        if let Some(v) = r.span(n, "`max_clock_jump`") {
            if v < out.allowed_lateness {
                r.error(
                    n,
                    "`max_clock_jump` must be at least `allowed_lateness`: a smaller jump would refuse events the lateness still accepts",
                );
            } else {
                out.max_clock_jump = v;
            }
        }
    }
    if let Some(v) = m
        .get("max_message_bytes")
        .and_then(|n| r.uint(n, "`max_message_bytes`", 256, 16 * 1024 * 1024))
    {
        out.max_message_bytes = v as usize;
    }
    if let Some(n) = m.get("output_source") {
        if let Some(v) = r.string(n, "`output_source`") {
            match check_output_source(&v) {
                Ok(()) => out.output_source = v,
                Err(e) => r.error(n, format!("`output_source`: {e}")),
            }
        }
    }
    m.finish(r);
}

/// CloudEvents 1.0 requires every event's `source` to be a non-empty URI-reference, and a
/// URI never holds whitespace or control characters: consumers that check would refuse every
/// output. The rest of URI syntax is left to the operator.
fn check_output_source(v: &str) -> Result<(), String> {
    const EXPECTED: &str =
        "it is the CloudEvents `source` of every output, a URI-reference such as urn:leadguard or https://crm.example.com/leadguard";
    if v.is_empty() {
        return Err(format!("must not be empty; {EXPECTED}"));
    }
    if let Some(c) = v.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "`{}` contains {} ({c:?}), which a URI cannot hold; {EXPECTED}",
            v.escape_debug(),
            if c.is_whitespace() {
                "whitespace"
            } else {
                "a control character"
            }
        ));
    }
    Ok(())
}

fn read_identity(r: &mut Reader<'_>, node: &Node, out: &mut IdentitySettings) {
    let Some(m) = r.map(
        node,
        "`identity`",
        &[
            "default_region",
            "strip_email_plus_tags",
            "shared_identifier_limit",
            "shared_phones",
            "shared_emails",
        ],
    ) else {
        return;
    };
    if let Some(n) = m.get("default_region") {
        if let Some(s) = r.string(n, "`default_region`") {
            match Region::from_iso(&s) {
                Some(reg) => out.default_region = reg,
                None => r.error(
                    n,
                    format!("`default_region`: `{s}` is not a supported ISO country code (e.g. CN, HK, US)"),
                ),
            }
        }
    }
    if let Some(v) = m
        .get("strip_email_plus_tags")
        .and_then(|n| r.bool(n, "`strip_email_plus_tags`"))
    {
        out.strip_email_plus_tags = v;
    }
    if let Some(v) = m
        .get("shared_identifier_limit")
        .and_then(|n| r.uint(n, "`shared_identifier_limit`", 2, 1000))
    {
        out.shared_identifier_limit = v as usize;
    }
    if let Some(n) = m.get("shared_phones") {
        let region = out.default_region;
        for item in r.list(n, "`shared_phones`").unwrap_or(&[]) {
            if let Some(s) = r.string(item, "each shared phone") {
                match normalize::normalize_phone(&s, region) {
                    Ok(p) => out.shared_phones.push(p),
                    Err(e) => r.error(item, format!("shared phone `{s}`: {e}")),
                }
            }
        }
    }
    if let Some(n) = m.get("shared_emails") {
        let strip = out.strip_email_plus_tags;
        for item in r.list(n, "`shared_emails`").unwrap_or(&[]) {
            if let Some(s) = r.string(item, "each shared email") {
                match normalize::normalize_email(&s, strip) {
                    Ok(p) => out.shared_emails.push(p),
                    Err(e) => r.error(item, format!("shared email `{s}`: {e}")),
                }
            }
        }
    }
    m.finish(r);
}

/// A list of the contact kinds a rule counts: a rep's contacts, so never `complaint` (a
/// complaint is the customer's, and has its own rule type). Each wrong entry is reported once,
/// at the entry; "name at least one" only for a list that is empty as written.
pub(super) fn read_kinds(r: &mut Reader<'_>, node: &Node, what: &str) -> Option<KindSet> {
    let items = r.list(node, what)?;
    let accepted = || {
        KindSet::CONTACTS
            .iter()
            .map(ContactKind::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut set = KindSet::EMPTY;
    let mut ok = true;
    for item in items {
        let Some(s) = r.string(item, &format!("each entry of {what}")) else {
            ok = false;
            continue;
        };
        match ContactKind::parse(&s) {
            Some(k) if KindSet::CONTACTS.contains(k) => set.insert(k),
            Some(_) => {
                ok = false;
                r.error(
                    item,
                    format!(
                        "{what}: `{s}` is not a rep's contact (a complaint has its own rule type, complaint); list some of {}",
                        accepted()
                    ),
                );
            }
            None => {
                ok = false;
                r.error(
                    item,
                    format!(
                        "{what}: `{s}` is not a contact kind; the kinds are {}",
                        accepted()
                    ),
                );
            }
        }
    }
    if !ok {
        return None;
    }
    if set == KindSet::EMPTY {
        r.error(
            node,
            format!("{what} must name at least one kind, e.g. [{}]", accepted()),
        );
        return None;
    }
    Some(set)
}

fn read_exemptions(r: &mut Reader<'_>, node: &Node, out: &mut Exemptions) {
    let Some(m) = r.map(
        node,
        "`exemptions`",
        &["roles", "account_team", "owner_team_inbound"],
    ) else {
        return;
    };
    if let Some(v) = m.get("roles").and_then(|n| r.strings(n, "`roles`")) {
        out.roles = v;
    }
    if let Some(v) = m
        .get("account_team")
        .and_then(|n| r.bool(n, "`account_team`"))
    {
        out.account_team = v;
    }
    if let Some(v) = m
        .get("owner_team_inbound")
        .and_then(|n| r.bool(n, "`owner_team_inbound`"))
    {
        out.owner_team_inbound = v;
    }
    m.finish(r);
}

fn read_scope(r: &mut Reader<'_>, node: &Node) -> Scope {
    let mut scope = Scope::default();
    let Some(m) = r.map(
        node,
        "`scope`",
        &["teams", "regions", "industries", "tiers"],
    ) else {
        return scope;
    };
    let list = |r: &mut Reader<'_>, key: &str, m: &MapReader<'_>| {
        m.get(key)
            .and_then(|n| r.strings(n, &format!("`scope.{key}`")))
            .unwrap_or_default()
    };
    scope.teams = list(r, "teams", &m);
    scope.regions = list(r, "regions", &m);
    scope.industries = list(r, "industries", &m);
    scope.tiers = list(r, "tiers", &m);
    m.finish(r);
    scope
}

const COLLISION_KEYS: &[&str] = &[
    "id",
    "type",
    "description",
    "severity",
    "cooldown",
    "kinds",
    "scope",
    "min_reps",
    "window",
    "resolution",
    "reassign",
];

fn read_collision(r: &mut Reader<'_>, node: &Node, ids: &mut Vec<NameAt>) -> Option<CollisionRule> {
    let m = r.map(node, "a collision rule", COLLISION_KEYS)?;
    let id_node = m.require(r, "id");
    let id = id_node.and_then(|n| r.name(n, "`id`"));
    if let (Some(n), Some(id)) = (id_node, &id) {
        ids.push(NameAt::new(r, n, id));
    }
    let what = format!("collision rule `{}`", id.as_deref().unwrap_or("?"));
    let ty = m.require(r, "type").and_then(|n| {
        r.choice(
            n,
            "`type`",
            &[
                ("protected_contact", 0u8),
                ("multi_rep", 1u8),
                ("complaint", 2u8),
                ("out_of_territory", 3u8),
            ],
        )
    });
    let severity = m
        .get("severity")
        .and_then(|n| r.choice(n, "`severity`", &Severity::CHOICES));
    let cooldown = m
        .get("cooldown")
        .and_then(|n| r.span(n, "`cooldown`"))
        .unwrap_or(Span::hours(24));
    let scope = m.get("scope").map(|n| read_scope(r, n)).unwrap_or_default();
    let window = m.get("window").and_then(|n| r.span(n, "`window`"));
    let min_reps = m
        .get("min_reps")
        .and_then(|n| r.uint(n, "`min_reps`", 2, 100));
    if let Some(n) = m.get("description") {
        r.string(n, "`description`");
    }
    let kind = match ty {
        Some(t @ (0 | 3)) => {
            let name = if t == 0 {
                "protected_contact"
            } else {
                "out_of_territory"
            };
            for key in ["window", "min_reps"] {
                if let Some(n) = m.get(key) {
                    r.error(n, format!("{what}: `{key}` does not apply to type {name}"));
                }
            }
            Some(if t == 0 {
                CollisionKind::ProtectedContact
            } else {
                CollisionKind::OutOfTerritory
            })
        }
        Some(1) => match window {
            Some(w) if w > Span::ZERO => Some(CollisionKind::MultiRep {
                min_reps: min_reps.unwrap_or(2) as usize,
                window: w,
            }),
            Some(_) => {
                r.error(
                    m.get("window").unwrap_or(node),
                    format!("{what}: `window` must be longer than zero"),
                );
                None
            }
            None => {
                if m.get("window").is_none() {
                    r.error(
                        node,
                        format!("{what}: type multi_rep needs a `window`, e.g. 7d"),
                    );
                }
                None
            }
        },
        Some(2) => {
            if let Some(n) = m.get("min_reps") {
                r.error(
                    n,
                    format!("{what}: `min_reps` does not apply to type complaint"),
                );
            }
            match window {
                Some(w) if w > Span::ZERO => Some(CollisionKind::Complaint { window: w }),
                _ => {
                    if m.get("window").is_none() || window.is_some() {
                        r.error(
                            m.get("window").unwrap_or(node),
                            format!("{what}: type complaint needs a `window` longer than zero"),
                        );
                    }
                    None
                }
            }
        }
        _ => None,
    };
    let kinds = match m.get("kinds") {
        Some(n) => read_kinds(r, n, &format!("{what}: `kinds`")),
        None => Some(KindSet::CONTACTS),
    };
    let severity = severity.unwrap_or(match kind {
        Some(CollisionKind::Complaint { .. }) => Severity::Critical,
        Some(CollisionKind::ProtectedContact) => Severity::High,
        _ => Severity::Medium,
    });
    let resolution = m
        .get("resolution")
        .and_then(|n| r.choice(n, "`resolution`", &Resolution::CHOICES))
        .unwrap_or_default();
    let reassign = match m.get("reassign") {
        Some(n) => r
            .choice(
                n,
                "`reassign`",
                &[("recommend", false), ("automatic", true)],
            )
            .unwrap_or(false),
        None => false,
    };
    if reassign && resolution == Resolution::OwnerWins {
        if let Some(n) = m.get("reassign") {
            r.error(
                n,
                format!("{what}: `reassign: automatic` needs a `resolution` other than owner_wins"),
            );
        }
    }
    if resolution != Resolution::OwnerWins && matches!(kind, Some(CollisionKind::Complaint { .. }))
    {
        if let Some(n) = m.get("resolution") {
            r.error(
                n,
                format!("{what}: a complaint names no intruder; use `resolution` on the rule that detects the collision"),
            );
        }
    }
    m.finish(r);
    Some(CollisionRule {
        id: id?,
        kind: kind?,
        severity,
        cooldown,
        kinds: kinds?,
        scope,
        resolution,
        reassign,
        defined_at: format!("{}:{}", r.file.display(), node.line),
    })
}

/// Used by `read_source` and others: the scalar text of a mapping value, if it is one.
pub(super) fn scalar_of(node: &Node) -> Option<&str> {
    match &node.value {
        Value::Scalar { text, .. } => Some(text),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(files: &[(&str, &str)]) -> Result<Rules, Vec<Diagnostic>> {
        Rules::from_texts(files.iter().map(|(p, t)| (Path::new(*p), *t)))
    }

    #[test]
    fn the_shipped_rules_compile() {
        let rules = Rules::embedded();
        assert!(rules.collisions.len() >= 3);
        assert_eq!(rules.settings.time_zone, chrono_tz::Asia::Shanghai);
    }

    #[test]
    fn every_error_of_every_file_is_reported() {
        let errs = compile(&[
            (
                "a.yaml",
                "collisions:\n  - id: x\n    type: multi_rep\n    windw: 7d\n    severity: loud\n",
            ),
            (
                "b.yaml",
                "settings:\n  time_zone: Mars/Olympus\n  allowed_lateness: 10\nbogus: 1\n",
            ),
        ])
        .unwrap_err();
        let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        let joined = text.join("\n");
        assert!(joined.contains("a.yaml:4:5:"), "{joined}");
        assert!(joined.contains("did you mean `window`"), "{joined}");
        assert!(joined.contains("`loud` is not one of"), "{joined}");
        assert!(joined.contains("needs a `window`"), "{joined}");
        assert!(joined.contains("b.yaml:2:14:"), "{joined}");
        assert!(joined.contains("needs a unit"), "{joined}");
        assert!(joined.contains("unknown key `bogus`"), "{joined}");
        assert_eq!(errs.len(), 6, "{joined}");
    }

    #[test]
    fn duplicate_ids_and_sections_name_both_places() {
        let errs = compile(&[
            (
                "a.yaml",
                "settings: {}\ncollisions:\n  - {id: x, type: protected_contact}\n",
            ),
            (
                "b.yaml",
                "settings: {}\ncollisions:\n  - {id: x, type: protected_contact}\n",
            ),
        ])
        .unwrap_err();
        let joined: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        let joined = joined.join("\n");
        assert!(joined.contains("already defined at a.yaml:1"), "{joined}");
        assert!(
            joined.contains("`x` is already used at a.yaml:3"),
            "{joined}"
        );
    }

    /// Every problem as `file:line:col: message`, one a line.
    fn problems(files: &[(&str, &str)]) -> String {
        let errs = compile(files).unwrap_err();
        errs.iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn a_duplicate_id_is_reported_even_when_the_first_rule_has_another_error() {
        for first in ["window: 0s", "window: 7d, kinds: [fax]"] {
            let text = format!(
                "collisions:\n  - {{id: a, type: multi_rep, {first}}}\n  - id: a\n    type: protected_contact\n"
            );
            let joined = problems(&[("c.yaml", &text)]);
            assert!(
                joined.contains("c.yaml:3:9: collision rule id `a` is already used at c.yaml:2"),
                "{joined}"
            );
            assert_eq!(joined.lines().count(), 2, "{joined}");
        }
        // Pools too: a pool refused for its assignment still claims its id.
        let joined = problems(&[(
            "p.yaml",
            "pools:\n  - {id: east, assignment: {strategy: lottery}}\n  - {id: east}\n",
        )]);
        assert!(
            joined.contains("p.yaml:3:10: pool id `east` is already used at p.yaml:2"),
            "{joined}"
        );
    }

    #[test]
    fn an_unknown_kind_is_one_error_listing_only_the_kinds_accepted() {
        let joined = problems(&[(
            "c.yaml",
            "collisions:\n  - {id: a, type: protected_contact, kinds: [fax]}\n",
        )]);
        assert_eq!(joined.lines().count(), 1, "{joined}");
        assert!(joined.contains("c.yaml:2:46:"), "{joined}");
        assert!(
            joined.contains(
                "`fax` is not a contact kind; the kinds are call, email, visit, meeting, message"
            ),
            "{joined}"
        );
        assert!(!joined.contains("complaint,"), "{joined}");
        let joined = problems(&[(
            "c.yaml",
            "collisions:\n  - {id: a, type: protected_contact, kinds: [call, complaint]}\n",
        )]);
        assert_eq!(joined.lines().count(), 1, "{joined}");
        assert!(
            joined.contains("`complaint` is not a rep's contact"),
            "{joined}"
        );
        let joined = problems(&[(
            "c.yaml",
            "collisions:\n  - {id: a, type: protected_contact, kinds: []}\n",
        )]);
        assert!(joined.contains("must name at least one kind"), "{joined}");
    }

    #[test]
    fn scopes_read_team_patterns_as_pools_do() {
        let rules = compile(&[(
            "c.yaml",
            "collisions:\n  - {id: a, type: protected_contact, scope: {teams: [\"south-*\", north-1]}}\n",
        )])
        .unwrap();
        let scope = &rules.collisions[0].scope;
        assert!(scope.allows_team(Some("south-2")));
        assert!(scope.allows_team(Some("north-1")));
        assert!(!scope.allows_team(Some("north-2")));
        assert!(!scope.allows_team(Some("south")));
        assert!(!scope.allows_team(None));
        assert!(Scope::default().allows_team(None));
    }

    #[test]
    fn an_output_source_that_is_no_uri_reference_is_refused() {
        for bad in [
            "\"\"",
            "\"urn:lead guard\"",
            "\"urn:lead\\tguard\"",
            "\"urn:x\\u0007\"",
        ] {
            let joined = problems(&[("s.yaml", &format!("settings:\n  output_source: {bad}\n"))]);
            assert!(
                joined.starts_with("s.yaml:2:18: `output_source`: "),
                "{joined}"
            );
            assert!(
                joined.contains("URI-reference such as urn:leadguard"),
                "{joined}"
            );
        }
        let rules = compile(&[(
            "s.yaml",
            "settings:\n  output_source: https://crm.example.com/lg\n",
        )])
        .unwrap();
        assert_eq!(rules.settings.output_source, "https://crm.example.com/lg");
    }

    #[test]
    fn a_clock_jump_below_the_lateness_is_refused() {
        let joined = problems(&[(
            "s.yaml",
            "settings:\n  allowed_lateness: 1h\n  max_clock_jump: 30m\n",
        )]);
        assert!(
            joined.starts_with("s.yaml:3:19: `max_clock_jump` must be at least `allowed_lateness`"),
            "{joined}"
        );
        let rules = compile(&[("s.yaml", "settings:\n  max_clock_jump: 90d\n")]).unwrap();
        assert_eq!(rules.settings.max_clock_jump, Span::days(90));
        assert_eq!(Settings::default().max_clock_jump, Span::days(30));
    }

    #[test]
    fn blank_ids_and_names_are_refused() {
        let joined = problems(&[
            (
                "c.yaml",
                "collisions:\n  - id: \"\"\n    type: protected_contact\n",
            ),
            (
                "p.yaml",
                "pools:\n  - id: \" \"\n",
            ),
            (
                "s.yaml",
                "sources:\n  - name: \"\"\n    fields: {event_id: /id, kind: /k, occurred_at: /t, rep.id: /a, customer.id: /c}\n",
            ),
        ]);
        for (at, what) in [
            ("c.yaml:2:9", "`id`"),
            ("p.yaml:2:9", "`id`"),
            ("s.yaml:2:11", "`name`"),
        ] {
            assert!(
                joined.contains(&format!("{at}: {what} must not be blank")),
                "{at}: {joined}"
            );
        }
    }

    #[test]
    fn durations_and_windows_are_explained_where_they_are_written() {
        let joined = problems(&[(
            "c.yaml",
            "collisions:\n  - id: a\n    type: multi_rep\n    window: 0s\n  - id: b\n    type: complaint\n    window: 0s\n  - id: c\n    type: protected_contact\n    cooldown: -5m\n  - id: d\n    type: protected_contact\n    cooldown: 10min\n",
        )]);
        assert!(
            joined.contains("c.yaml:4:13: collision rule `a`: `window` must be longer than zero"),
            "{joined}"
        );
        assert!(
            joined.contains("c.yaml:7:13: collision rule `b`: type complaint"),
            "{joined}"
        );
        assert!(
            joined.contains("c.yaml:10:15: `cooldown`: `-5m`: durations can't be negative"),
            "{joined}"
        );
        assert!(
            joined.contains("c.yaml:13:15: `cooldown`: `10min`: `min` is not a unit; write 10m (the units are ms, s, m, h, d and w)"),
            "{joined}"
        );
        assert_eq!(joined.lines().count(), 4, "{joined}");
    }
}
