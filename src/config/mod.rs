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

use serde::{Deserialize, Serialize};

/// One configuration file as it was read: its name and its text.
///
/// Compiled rules and rosters keep the files they were compiled from, so that a snapshot can
/// record them: a partition restored after a crash re-reads its input under the files its
/// snapshot was taken with, not whatever the files say at the restart (see
/// `kafka::task::Task::restore`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFile {
    pub name: String,
    pub text: String,
}
