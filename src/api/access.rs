//! Who may see what: pure decisions over a caller ([`Principal`]) and the facts an engine
//! answered with. No IO, no state; the matrix below is the specification.
//!
//! - A **rep** sees the full record of customers they own; of any other customer, only whether
//!   it is taken. They may run the pre-contact check only for themselves.
//! - A **manager** sees the full record of customers owned by a rep of their team(s), and may
//!   check on behalf of reps the roster places in their team(s).
//! - An **admin** sees everything and may check for anyone.
//!
//! "Out of scope" (acting for someone else) is a 403; seeing less is not an error, it is the
//! limited view ("taken by another rep"), the way a CRM tells a rep a record exists without
//! showing it.

/// An authenticated caller, as its bearer token maps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Rep { id: String },
    Manager { teams: Vec<String> },
    Admin,
}

impl Principal {
    /// For logs: the role only, never who.
    pub fn role(&self) -> &'static str {
        match self {
            Principal::Rep { .. } => "rep",
            Principal::Manager { .. } => "manager",
            Principal::Admin => "admin",
        }
    }
}

/// How much of a customer a caller may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Owner, protection, identifiers, recent contacts, reasons naming reps.
    Full,
    /// Only whether the customer is taken, and the decision of a check.
    Limited,
}

/// The owner of a customer as far as access is concerned: rep id and team.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnerFacts<'a> {
    pub rep: &'a str,
    pub team: Option<&'a str>,
}

/// What `who` may see of a customer owned by `owner` (`None`: nobody owns it).
pub fn customer_visibility(who: &Principal, owner: Option<OwnerFacts<'_>>) -> Visibility {
    let full = match who {
        Principal::Admin => true,
        Principal::Rep { id } => owner.is_some_and(|o| o.rep == id),
        Principal::Manager { teams } => owner
            .and_then(|o| o.team)
            .is_some_and(|t| teams.iter().any(|m| m == t)),
    };
    if full {
        Visibility::Full
    } else {
        Visibility::Limited
    }
}

/// Whether `who` may ask on behalf of `rep`, whose team the roster gives as `rep_team`.
pub fn may_act_for(who: &Principal, rep: &str, rep_team: Option<&str>) -> bool {
    match who {
        Principal::Admin => true,
        Principal::Rep { id } => id == rep,
        Principal::Manager { teams } => rep_team.is_some_and(|t| teams.iter().any(|m| m == t)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Visibility::{Full, Limited};

    fn rep(id: &str) -> Principal {
        Principal::Rep { id: id.into() }
    }
    fn manager(team: &str) -> Principal {
        Principal::Manager {
            teams: vec![team.into()],
        }
    }
    fn owned(rep: &'static str, team: &'static str) -> Option<OwnerFacts<'static>> {
        Some(OwnerFacts {
            rep,
            team: Some(team),
        })
    }

    #[test]
    fn visibility_matrix() {
        // (caller, owner of the customer, expected)
        let cases = [
            // A rep: own customer full; a teammate's, another team's or nobody's: taken or not.
            (rep("r1"), owned("r1", "east"), Full),
            (rep("r1"), owned("r2", "east"), Limited),
            (rep("r1"), owned("r9", "west"), Limited),
            (rep("r1"), None, Limited),
            // A manager: their team's customers full, others limited.
            (manager("east"), owned("r1", "east"), Full),
            (manager("east"), owned("r2", "east"), Full),
            (manager("east"), owned("r9", "west"), Limited),
            (manager("east"), None, Limited),
            (
                manager("east"),
                Some(OwnerFacts {
                    rep: "r5",
                    team: None,
                }),
                Limited,
            ),
            // An admin: everything.
            (Principal::Admin, owned("r1", "east"), Full),
            (Principal::Admin, owned("r9", "west"), Full),
            (Principal::Admin, None, Full),
        ];
        for (who, owner, want) in cases {
            assert_eq!(
                customer_visibility(&who, owner),
                want,
                "{who:?} / {owner:?}"
            );
        }
    }

    #[test]
    fn acting_for_matrix() {
        let two_teams = Principal::Manager {
            teams: vec!["east".into(), "north".into()],
        };
        let cases = [
            (rep("r1"), "r1", Some("east"), true),
            (rep("r1"), "r2", Some("east"), false),
            (rep("r1"), "r9", Some("west"), false),
            (manager("east"), "r1", Some("east"), true),
            (manager("east"), "r9", Some("west"), false),
            // A rep the roster doesn't place in a team is nobody's to act for but an admin's.
            (manager("east"), "r-new", None, false),
            (two_teams.clone(), "r7", Some("north"), true),
            (two_teams, "r9", Some("west"), false),
            (Principal::Admin, "r9", Some("west"), true),
            (Principal::Admin, "r-new", None, true),
        ];
        for (who, rep, team, want) in cases {
            assert_eq!(may_act_for(&who, rep, team), want, "{who:?} for {rep}");
        }
    }
}
