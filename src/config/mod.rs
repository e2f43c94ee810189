//! Configuration read from files: rules (`rules/*.yaml`), source mappings and the roster.
//! Everything is checked in one pass that reports every problem with file, line and column.

pub mod roster;
pub mod rules;
pub mod sources;
pub mod yaml;

pub use roster::{Roster, RosterRep};
pub use rules::{CollisionKind, CollisionRule, Rules, Scope, Severity};
pub use sources::{Field, SourceMapping, TimeFormat};
pub use yaml::Diagnostic;
