//! Bearer tokens for the HTTP API, from a YAML file (`--api-tokens FILE`).
//!
//! ```yaml
//! tokens:
//!   - name: li-wei                # optional; logs name the token by this, never by its value
//!     sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//!     rep: r0001
//!   - name: east-managers
//!     env: LEADGUARD_TOKEN_EAST   # the token itself is in this environment variable
//!     manager: [east-1, east-2]   # a team, or a list of teams
//!   - name: ops
//!     env: LEADGUARD_TOKEN_ADMIN
//!     admin: true
//! ```
//!
//! The file never holds a token in clear: either its SHA-256 (`printf %s "$TOKEN" | sha256sum`)
//! or the name of an environment variable that holds it (how container secrets arrive). A
//! presented token is hashed and looked up by hash, so the file is safe to keep in version
//! control and comparing never touches the secret itself.

use super::access::Principal;
use crate::config::yaml::{self, Diagnostic, Reader};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;

/// Tokens from the environment must be at least this long: they are the whole secret.
pub const MIN_TOKEN_CHARS: usize = 16;

/// One configured token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenEntry {
    /// For logs (the file's `name`, else `token #N`).
    pub name: String,
    pub principal: Principal,
}

/// The configured tokens, by SHA-256 of the token.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    by_hash: HashMap<[u8; 32], TokenEntry>,
}

fn sha256(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

fn parse_hex(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

const KEYS: &[&str] = &["name", "sha256", "env", "token", "rep", "manager", "admin"];

impl Tokens {
    /// No tokens: every request to a protected route is refused.
    pub fn none() -> Tokens {
        Tokens::default()
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// Reads the tokens file; environment variables are read through `env`.
    pub fn load(
        path: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Tokens, Vec<Diagnostic>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![Diagnostic {
                file: path.to_path_buf(),
                line: 0,
                col: 0,
                message: format!("cannot read the API tokens file: {e}"),
            }]
        })?;
        Self::parse(&text, path, env)
    }

    pub fn parse(
        text: &str,
        path: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Tokens, Vec<Diagnostic>> {
        let tree = yaml::parse(text, path)?;
        let mut errors = Vec::new();
        let mut tokens = Tokens::default();
        {
            let mut r = Reader {
                file: path,
                errors: &mut errors,
            };
            if let Some(top) = r.map(&tree, "an API tokens file", &["tokens"]) {
                let items = top
                    .require(&mut r, "tokens")
                    .and_then(|n| r.list(n, "`tokens`"))
                    .unwrap_or(&[]);
                for (i, item) in items.iter().enumerate() {
                    let Some(m) = r.map(item, "a token", KEYS) else {
                        continue;
                    };
                    let name = m
                        .get("name")
                        .and_then(|n| r.string(n, "`name`"))
                        .unwrap_or_else(|| format!("token #{}", i + 1));
                    if let Some(n) = m.get("token") {
                        r.error(n, "tokens are not written in clear here: give `sha256:` (printf %s \"$TOKEN\" | sha256sum) or `env:` naming an environment variable that holds the token");
                    }
                    let hash = match (m.get("sha256"), m.get("env")) {
                        (Some(n), None) => match r.string(n, "`sha256`") {
                            Some(h) => {
                                let parsed = parse_hex(&h);
                                if parsed.is_none() {
                                    r.error(n, "`sha256` must be 64 hexadecimal digits: the SHA-256 of the token (printf %s \"$TOKEN\" | sha256sum)");
                                }
                                parsed
                            }
                            None => None,
                        },
                        (None, Some(n)) => match r.string(n, "`env`") {
                            Some(var) => match env(&var).filter(|v| !v.is_empty()) {
                                None => {
                                    r.error(n, format!("environment variable {var} is not set or empty; set it to the token before starting leadguard"));
                                    None
                                }
                                Some(v) if v.chars().count() < MIN_TOKEN_CHARS => {
                                    r.error(n, format!("the token in {var} is shorter than {MIN_TOKEN_CHARS} characters; use a long random one (e.g. openssl rand -hex 24)"));
                                    None
                                }
                                Some(v) => Some(sha256(&v)),
                            },
                            None => None,
                        },
                        (Some(_), Some(_)) => {
                            r.error(item, "a token has either `sha256` or `env`, not both");
                            None
                        }
                        (None, None) => {
                            if m.get("token").is_none() {
                                r.error(item, "a token needs `sha256` (the token's SHA-256) or `env` (a variable holding it)");
                            }
                            None
                        }
                    };
                    let roles = ["rep", "manager", "admin"]
                        .into_iter()
                        .filter(|k| m.get(k).is_some())
                        .count();
                    let principal = if roles != 1 {
                        r.error(
                            item,
                            "a token maps to exactly one of `rep: ID`, `manager: TEAM` (or a list of teams), `admin: true`",
                        );
                        None
                    } else if let Some(n) = m.get("rep") {
                        r.string(n, "`rep`").map(|id| Principal::Rep { id })
                    } else if let Some(n) = m.get("manager") {
                        let teams = match n.as_str() {
                            Some(team) => Some(vec![team.to_string()]),
                            None => r.strings(n, "`manager`"),
                        };
                        teams.map(|teams| Principal::Manager { teams })
                    } else {
                        let n = m.get("admin").expect("counted above");
                        match r.bool(n, "`admin`") {
                            Some(true) => Some(Principal::Admin),
                            Some(false) => {
                                r.error(n, "`admin: false` grants nothing; map the token to `rep` or `manager` instead");
                                None
                            }
                            None => None,
                        }
                    };
                    if let (Some(hash), Some(principal)) = (hash, principal) {
                        if let Some(first) = tokens.by_hash.get(&hash) {
                            r.error(
                                item,
                                format!(
                                    "this token is the same as `{}`; give each caller its own",
                                    first.name
                                ),
                            );
                        } else {
                            tokens.by_hash.insert(hash, TokenEntry { name, principal });
                        }
                    }
                    m.finish(&mut r);
                }
                top.finish(&mut r);
            }
        }
        if errors.is_empty() {
            Ok(tokens)
        } else {
            Err(errors)
        }
    }

    /// The caller a presented bearer token stands for.
    pub fn authenticate(&self, token: &str) -> Option<&TokenEntry> {
        if token.is_empty() {
            return None;
        }
        self.by_hash.get(&sha256(token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "a-rep-token-0123456789";

    fn hex(bytes: [u8; 32]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn env(var: &str) -> Option<String> {
        (var == "ADMIN_TOKEN").then(|| "an-admin-token-0123456789".to_string())
    }

    #[test]
    fn hashed_and_environment_tokens_map_to_callers() {
        let text = format!(
            "tokens:\n  - {{name: li, sha256: {}, rep: r1}}\n  - {{env: ADMIN_TOKEN, admin: true}}\n  - {{sha256: {}, manager: [east, west]}}\n",
            hex(sha256(SECRET)),
            hex(sha256("a-manager-token-0123456789"))
        );
        let t = Tokens::parse(&text, Path::new("t.yaml"), env).expect("valid");
        assert_eq!(t.len(), 3);
        let li = t.authenticate(SECRET).expect("known");
        assert_eq!(li.name, "li");
        assert_eq!(li.principal, Principal::Rep { id: "r1".into() });
        assert_eq!(
            t.authenticate("an-admin-token-0123456789")
                .map(|e| &e.principal),
            Some(&Principal::Admin)
        );
        assert_eq!(
            t.authenticate("a-manager-token-0123456789")
                .map(|e| &e.principal),
            Some(&Principal::Manager {
                teams: vec!["east".into(), "west".into()]
            })
        );
        assert!(t.authenticate("guess").is_none());
        assert!(t.authenticate("").is_none());
    }

    #[test]
    fn every_mistake_is_reported_with_its_place() {
        let text = "tokens:\n  - {token: plain, rep: r1}\n  - {sha256: abc, rep: r1}\n  - {env: MISSING, admin: true}\n  - {env: ADMIN_TOKEN, rep: r1, admin: true}\n  - {env: ADMIN_TOKEN, admin: false}\n";
        let errs = Tokens::parse(text, Path::new("t.yaml"), env).expect_err("invalid");
        let lines: Vec<usize> = errs.iter().map(|e| e.line).collect();
        assert_eq!(lines, [2, 3, 4, 5, 6], "{errs:#?}");
        assert!(errs[0].message.contains("sha256sum"));
        assert!(errs[2].message.contains("MISSING"));
    }

    #[test]
    fn a_token_given_twice_is_refused() {
        let text =
            "tokens:\n  - {env: ADMIN_TOKEN, admin: true}\n  - {env: ADMIN_TOKEN, rep: r1}\n";
        let errs = Tokens::parse(text, Path::new("t.yaml"), env).expect_err("duplicate");
        assert_eq!(errs.len(), 1);
        assert!(errs[0].message.contains("same as"), "{}", errs[0].message);
    }
}
