//! Who is calling, and signing callers in.
//!
//! [`Auth`] is the identity a handler sees; the gateway verifies it from bearer tokens
//! (`gateway::auth`). With the gateway, apps that own their users also get
//! [`hash_password`] / [`verify_password`] (argon2id) and issue tokens and sessions from
//! their handlers (`ctx.issue_token`, `ctx.issue_session`: [`TokenBuilder`],
//! [`SessionBuilder`]).

#[cfg(feature = "gateway")]
mod issue;
#[cfg(feature = "gateway")]
mod password;
#[cfg(feature = "gateway")]
pub(crate) mod refresh;

#[cfg(feature = "gateway")]
pub use issue::{Session, SessionBuilder, TokenBuilder};
#[cfg(feature = "gateway")]
pub use password::{hash_password, verify_password};

use serde_json::Value;
use uuid::Uuid;

/// The verified identity of a caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Auth {
    /// The token's `sub`.
    pub user_id: Uuid,
    /// The token's `tenant_id`, when it has one.
    pub tenant_id: Option<Uuid>,
    /// The token's `roles`.
    pub roles: Vec<String>,
    /// Every claim, for applications that put more in their tokens.
    pub claims: Value,
}

impl Auth {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}
