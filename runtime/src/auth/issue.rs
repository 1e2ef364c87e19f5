//! Issuing tokens, for apps that own their users (DESIGN.md, "Identity, limits and outbound
//! calls"): `ctx.issue_token(user_id)` signs an access token, `ctx.issue_session(user_id)`
//! an access token and a refresh token that `POST /_api/auth/refresh` rotates.
//!
//! Access tokens are HS256 under `FORGE_JWT_SECRET`, with `sub`, `iat`, `exp`, the optional
//! `tenant_id`, `roles` and the app's own claims, and `iss` / `aud` when
//! `FORGE_JWT_ISSUER` / `FORGE_JWT_AUDIENCE` are set (so the node's own verifier accepts
//! them). Refresh tokens are [`super::refresh`]'s.
//!
//! These methods live in their own impl blocks, next to what they need, rather than in
//! `context.rs`: only the gateway runs the contexts that issue (mutations, webhooks, MCP
//! tools), and only gateway builds carry the signing code.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::refresh;
use crate::context::{McpToolContext, MutationContext, WebhookContext};
use crate::shared::Shared;
use crate::tx::{Target, Tx};
use crate::{Error, Result};

/// Claims the builder writes itself; `.claim()` may not set them.
const RESERVED: &[&str] = &[
    "sub",
    "iat",
    "exp",
    "nbf",
    "iss",
    "aud",
    "jti",
    "tenant_id",
    "roles",
];

/// What an access token says, besides its times. Stored with a refresh token, so that
/// every access token of a session says the same.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Grant {
    pub user_id: Uuid,
    pub tenant_id: Option<Uuid>,
    pub roles: Vec<String>,
    /// The app's own claims (never a [`RESERVED`] one).
    pub claims: Map<String, Value>,
    /// How long each access token lives.
    pub ttl: Duration,
}

/// Signs `grant` as an access token valid from now for `grant.ttl`.
pub(crate) fn sign(shared: &Shared, grant: &Grant) -> Result<String> {
    let secret = shared.config.jwt_secret.as_deref().ok_or_else(|| {
        Error::Internal("issuing a token needs FORGE_JWT_SECRET, which is not set".into())
    })?;
    if let Some(name) = grant.claims.keys().find(|k| RESERVED.contains(&k.as_str())) {
        return Err(Error::Internal(format!(
            "issue_token: `.claim(\"{name}\", …)` sets a claim the builder writes itself; \
             use .tenant(), .roles() or .ttl(), or another name"
        )));
    }
    let ttl = i64::try_from(grant.ttl.as_secs())
        .ok()
        .filter(|secs| *secs > 0)
        .ok_or_else(|| Error::Internal("issue_token: the ttl must be at least 1s".into()))?;
    let now = chrono::Utc::now().timestamp();
    let mut claims = grant.claims.clone();
    claims.insert("sub".into(), Value::String(grant.user_id.to_string()));
    claims.insert("iat".into(), now.into());
    claims.insert("exp".into(), now.saturating_add(ttl).into());
    if let Some(tenant) = grant.tenant_id {
        claims.insert("tenant_id".into(), Value::String(tenant.to_string()));
    }
    claims.insert("roles".into(), grant.roles.clone().into());
    if let Some(issuer) = &shared.config.jwt_issuer {
        claims.insert("iss".into(), issuer.clone().into());
    }
    if let Some(audience) = &shared.config.jwt_audience {
        claims.insert("aud".into(), audience.clone().into());
    }
    jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| Error::Internal(format!("signing a token: {e}")))
}

/// `ctx.issue_token(user_id)`: `.tenant(id)`, `.roles(&["admin"])`, `.ttl(d)`,
/// `.claim("k", v)`, then `.sign()`.
#[must_use = "a token builder does nothing until .sign()"]
pub struct TokenBuilder {
    shared: Arc<Shared>,
    grant: Grant,
}

impl TokenBuilder {
    fn new(shared: &Arc<Shared>, user_id: Uuid) -> TokenBuilder {
        TokenBuilder {
            shared: shared.clone(),
            grant: Grant {
                user_id,
                tenant_id: None,
                roles: Vec::new(),
                claims: Map::new(),
                ttl: shared.config.access_token_ttl,
            },
        }
    }

    /// The token's `tenant_id` (what `ctx.tenant_id()` returns).
    pub fn tenant(mut self, tenant_id: Uuid) -> Self {
        self.grant.tenant_id = Some(tenant_id);
        self
    }

    /// The token's `roles`.
    pub fn roles(mut self, roles: &[&str]) -> Self {
        self.grant.roles = roles.iter().map(|role| (*role).to_owned()).collect();
        self
    }

    /// How long the token is valid (default `FORGE_ACCESS_TOKEN_TTL`, 15 minutes).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.grant.ttl = ttl;
        self
    }

    /// A claim of the app's own, readable as `ctx.auth()?.claims["k"]`. The standard claims
    /// and `tenant_id` / `roles` are the builder's: setting one fails at `.sign()`.
    pub fn claim(mut self, name: &str, value: impl Serialize) -> Self {
        // A value that does not serialize becomes null rather than a panic; serde_json only
        // fails on maps with non-string keys.
        let value = serde_json::to_value(value).unwrap_or(Value::Null);
        self.grant.claims.insert(name.to_owned(), value);
        self
    }

    /// The signed token (HS256 with `FORGE_JWT_SECRET`).
    pub fn sign(self) -> Result<String> {
        sign(&self.shared, &self.grant)
    }
}

/// What `ctx.issue_session(user_id)` and `POST /_api/auth/refresh` return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// A bearer token for RPC, subscriptions and MCP.
    pub access_token: String,
    /// Single use: `POST /_api/auth/refresh` with it returns the next pair. Using one twice
    /// revokes the whole session.
    pub refresh_token: String,
    /// Seconds until `access_token` expires.
    pub expires_in: u64,
}

/// `ctx.issue_session(user_id)`: the same options as [`TokenBuilder`] (they apply to every
/// access token of the session), then `.await`. The refresh token is stored in the
/// handler's transaction, so a handler that fails issued no session.
#[must_use = "a session builder does nothing until awaited"]
pub struct SessionBuilder<'a> {
    token: TokenBuilder,
    writes: Tx<'a>,
}

impl SessionBuilder<'_> {
    /// See [`TokenBuilder::tenant`].
    pub fn tenant(mut self, tenant_id: Uuid) -> Self {
        self.token = self.token.tenant(tenant_id);
        self
    }

    /// See [`TokenBuilder::roles`].
    pub fn roles(mut self, roles: &[&str]) -> Self {
        self.token = self.token.roles(roles);
        self
    }

    /// How long each access token of the session is valid (the refresh token's lifetime is
    /// `FORGE_REFRESH_TOKEN_TTL`).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.token = self.token.ttl(ttl);
        self
    }

    /// See [`TokenBuilder::claim`].
    pub fn claim(mut self, name: &str, value: impl Serialize) -> Self {
        self.token = self.token.claim(name, value);
        self
    }
}

impl<'a> IntoFuture for SessionBuilder<'a> {
    type Output = Result<Session>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<Session>> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let TokenBuilder { shared, grant } = self.token;
            let access_token = sign(&shared, &grant)?;
            let refresh_token =
                refresh::create(self.writes, &grant, shared.config.refresh_token_ttl, None).await?;
            Ok(Session {
                access_token,
                refresh_token,
                expires_in: grant.ttl.as_secs(),
            })
        })
    }
}

impl MutationContext {
    /// A builder for an access token for `user_id`: `.roles(&["admin"]).sign()?`.
    pub fn issue_token(&self, user_id: Uuid) -> TokenBuilder {
        TokenBuilder::new(&self.base.shared, user_id)
    }

    /// Signs `user_id` in: `ctx.issue_session(user_id).await?` is an access token and a
    /// refresh token, stored in this mutation's transaction.
    pub fn issue_session(&self, user_id: Uuid) -> SessionBuilder<'_> {
        SessionBuilder {
            token: self.issue_token(user_id),
            writes: self.tx(),
        }
    }
}

impl WebhookContext {
    /// See [`MutationContext::issue_token`].
    pub fn issue_token(&self, user_id: Uuid) -> TokenBuilder {
        TokenBuilder::new(&self.base.shared, user_id)
    }

    /// See [`MutationContext::issue_session`]; stored in the webhook's transaction.
    pub fn issue_session(&self, user_id: Uuid) -> SessionBuilder<'_> {
        SessionBuilder {
            token: self.issue_token(user_id),
            writes: self.tx(),
        }
    }
}

impl McpToolContext {
    /// See [`MutationContext::issue_token`].
    pub fn issue_token(&self, user_id: Uuid) -> TokenBuilder {
        TokenBuilder::new(&self.base.shared, user_id)
    }

    /// See [`MutationContext::issue_session`]; an MCP tool has no transaction, so the
    /// refresh token is stored at once.
    pub fn issue_session(&self, user_id: Uuid) -> SessionBuilder<'_> {
        SessionBuilder {
            token: self.issue_token(user_id),
            writes: Tx(Target::Pool(&self.base.shared.primary)),
        }
    }
}
