//! Who is calling: the identity a handler sees. The gateway verifies it from HS256 bearer
//! tokens (`FORGE_JWT_SECRET`, `gateway::auth`).

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
