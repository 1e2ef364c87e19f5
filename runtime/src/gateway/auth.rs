//! Who is calling: HS256 bearer tokens (`FORGE_JWT_SECRET`) in the `Authorization` header.

use axum::http::header::AUTHORIZATION;
use axum::http::HeaderMap;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::auth::Auth;
use crate::shared::Shared;
use crate::{Error, Result};

/// The caller's identity from an `Authorization` header. A handler that is not public needs
/// a valid token; a public one runs anonymously when the token is missing or invalid, so a
/// client that always sends its (perhaps expired) token can still reach public handlers.
pub(crate) fn authenticate(
    shared: &Shared,
    headers: &HeaderMap,
    public: bool,
) -> Result<Option<Auth>> {
    if public && !headers.contains_key(AUTHORIZATION) {
        return Ok(None);
    }
    let header = headers.get(AUTHORIZATION).map(|value| {
        value
            .to_str()
            .map_err(|_| Error::Unauthorized("the Authorization header is not valid text".into()))
    });
    let verified = match (header, &shared.gateway.verifier) {
        (None, _) => Err(Error::Unauthorized(
            "this needs a bearer token (Authorization: Bearer <jwt>)".into(),
        )),
        (Some(_), None) => Err(Error::Unauthorized(
            "this server accepts no tokens: FORGE_JWT_SECRET is not set".into(),
        )),
        (Some(header), Some(verifier)) => header.and_then(|h| verifier.verify_header(h)),
    };
    match verified {
        Ok(auth) => Ok(Some(auth)),
        Err(_) if public => Ok(None),
        Err(error) => Err(error),
    }
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    tenant_id: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
}

/// Verifies bearer tokens with one shared secret.
#[derive(Clone)]
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Verifier { .. }")
    }
}

impl Verifier {
    pub fn hs256(secret: &[u8]) -> Verifier {
        let mut validation = Validation::new(Algorithm::HS256);
        // A token that never expires is a credential that cannot be revoked.
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.validate_nbf = true;
        Verifier {
            key: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// The identity in an `Authorization` header value (`Bearer <jwt>`).
    pub fn verify_header(&self, header: &str) -> Result<Auth> {
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| {
                Error::Unauthorized("the Authorization header is not `Bearer <token>`".into())
            })?;
        self.verify(token.trim())
    }

    pub fn verify(&self, token: &str) -> Result<Auth> {
        let data = jsonwebtoken::decode::<Value>(token, &self.key, &self.validation)
            .map_err(|e| Error::Unauthorized(format!("invalid token: {e}")))?;
        let claims: Claims = serde_json::from_value(data.claims.clone())
            .map_err(|e| Error::Unauthorized(format!("invalid token claims: {e}")))?;
        let uuid = |what: &str, value: &str| {
            Uuid::parse_str(value)
                .map_err(|_| Error::Unauthorized(format!("the token's `{what}` is not a UUID")))
        };
        Ok(Auth {
            user_id: uuid("sub", &claims.sub)?,
            tenant_id: claims
                .tenant_id
                .as_deref()
                .map(|t| uuid("tenant_id", t))
                .transpose()?,
            roles: claims.roles,
            claims: data.claims,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    fn token(claims: Value) -> String {
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(b"s3cret"),
        )
        .unwrap()
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    #[test]
    fn reads_identity_tenant_and_roles() {
        let user = Uuid::new_v4();
        let tenant = Uuid::new_v4();
        let auth = Verifier::hs256(b"s3cret")
            .verify_header(&format!(
                "Bearer {}",
                token(
                    json!({"sub": user, "tenant_id": tenant, "roles": ["admin"], "exp": now() + 60})
                )
            ))
            .unwrap();
        assert_eq!((auth.user_id, auth.tenant_id), (user, Some(tenant)));
        assert!(auth.has_role("admin"));
    }

    #[test]
    fn refuses_expired_premature_unsigned_and_foreign_tokens() {
        let verifier = Verifier::hs256(b"s3cret");
        let sub = Uuid::new_v4();
        let expired = token(json!({"sub": sub, "exp": now() - 3600}));
        let premature = token(json!({"sub": sub, "exp": now() + 7200, "nbf": now() + 3600}));
        let no_exp = token(json!({"sub": sub}));
        let not_uuid = token(json!({"sub": "bob", "exp": now() + 60}));
        let foreign = encode(
            &Header::default(),
            &json!({"sub": sub, "exp": now() + 60}),
            &EncodingKey::from_secret(b"other"),
        )
        .unwrap();
        for bad in [
            expired,
            premature,
            no_exp,
            not_uuid,
            foreign,
            "garbage".into(),
        ] {
            let error = verifier.verify(&bad).unwrap_err();
            assert_eq!(error.code(), "UNAUTHORIZED", "{bad}");
        }
    }
}
