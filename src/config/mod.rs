//! Configuration read from files: rules (`rules/*.yaml`), source mappings and the roster.
//! Everything is checked in one pass that reports every problem with file, line and column.

pub mod lifecycle;
pub mod roster;
pub mod rules;
pub mod sources;
pub mod yaml;

pub use roster::{Roster, RosterRep};
pub use rules::{
    Assignment, Calendar, CollisionKind, CollisionRule, InboundSla, Limits, NewLeadSla,
    OwnershipRules, Pool, Protection, Resolution, Rules, Scope, Severity, Slas, Strategy,
};
pub use sources::{Field, SourceMapping, TimeFormat};
pub use yaml::Diagnostic;
