//! Who is calling: bearer tokens in the `Authorization` header, HS256 under
//! `FORGE_JWT_SECRET` and/or RS256, ES256 and EdDSA under an identity provider's keys
//! (`FORGE_JWKS_URL`, [`jwks`]).
//!
//! - The algorithm decides the key, never the other way round: HS256 only with the secret,
//!   the others only with the provider key named by `kid`, and only the one algorithm that
//!   key is for. So `alg: none` and algorithm confusion (an HS256 token "signed" with a
//!   public key) are refused.
//! - `FORGE_JWT_ISSUER` / `FORGE_JWT_AUDIENCE`, when set, are required of every token.
//! - `exp` is required, `nbf` honoured, both with `FORGE_JWT_LEEWAY` of clock skew (5 s).
//! - A verified token is cached ([`cache`]) until its `exp`.
//! - The scheme is case-insensitive (RFC 7235): `bearer`, `Bearer`, `BEARER`.
//! - A refused token is "invalid token" to the caller; why is logged (debug), since the
//!   library's messages tell an attacker which check they passed.

mod cache;
mod jwks;

use axum::http::header::AUTHORIZATION;
use axum::http::HeaderMap;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::auth::Auth;
use crate::config::Config;
use crate::shared::Shared;
use crate::{Error, Result};

use cache::{token_hash, TokenCache};
use jwks::Jwks;

/// The caller's identity from an `Authorization` header. A handler that is not public needs
/// a valid token; a public one runs anonymously when the token is missing or invalid, so a
/// client that always sends its (perhaps expired) token can still reach public handlers.
pub(crate) async fn authenticate(
    shared: &Shared,
    headers: &HeaderMap,
    public: bool,
) -> Result<Option<Auth>> {
    let Some(header) = headers.get(AUTHORIZATION) else {
        if public {
            return Ok(None);
        }
        return Err(Error::Unauthorized(
            "this needs a bearer token (Authorization: Bearer <jwt>)".into(),
        ));
    };
    let verified = match &shared.gateway.verifier {
        None => Err(Error::Unauthorized(
            "this server accepts no tokens: neither FORGE_JWT_SECRET nor FORGE_JWKS_URL is set"
                .into(),
        )),
        Some(verifier) => match header.to_str() {
            Ok(header) => verifier.verify_header(header).await,
            Err(_) => Err(Error::Unauthorized(
                "the Authorization header is not valid text".into(),
            )),
        },
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
    /// A NumericDate, which RFC 7519 allows to be fractional.
    exp: f64,
    #[serde(default)]
    tenant_id: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
}

/// Verifies bearer tokens: HS256 with a shared secret and/or a provider's key set.
pub struct Verifier {
    secret: Option<DecodingKey>,
    jwks: Option<Jwks>,
    issuer: Option<String>,
    audience: Option<String>,
    leeway_secs: u64,
    cache: TokenCache,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Verifier { .. }")
    }
}

/// Why a token was refused: logged, never sent.
fn invalid(why: impl std::fmt::Display) -> Error {
    tracing::debug!(reason = %why, "refused a bearer token");
    Error::Unauthorized("invalid token".into())
}

impl Verifier {
    /// The verifier `config` asks for; `None` when it names no way to verify.
    pub fn from_config(config: &Config) -> Result<Option<Verifier>> {
        let jwks = match &config.jwks_url {
            None => None,
            Some(url) => Some(Jwks::new(url.clone()).map_err(|e| {
                Error::Internal(format!(
                    "FORGE_JWKS_URL={url:?} is not usable ({e}): set it to the https URL of \
                     your identity provider's JSON Web Key Set"
                ))
            })?),
        };
        if config.jwt_secret.is_none() && jwks.is_none() {
            return Ok(None);
        }
        Ok(Some(Verifier {
            secret: config
                .jwt_secret
                .as_deref()
                .map(|s| DecodingKey::from_secret(s.as_bytes())),
            jwks,
            issuer: config.jwt_issuer.clone(),
            audience: config.jwt_audience.clone(),
            leeway_secs: config.jwt_leeway.as_secs(),
            cache: TokenCache::default(),
        }))
    }

    /// The identity in an `Authorization` header value (`Bearer <jwt>`, any case).
    pub async fn verify_header(&self, header: &str) -> Result<Auth> {
        let (scheme, token) = header.trim().split_once(' ').unwrap_or((header, ""));
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return Err(Error::Unauthorized(
                "the Authorization header is not `Bearer <token>`".into(),
            ));
        }
        self.verify(token.trim()).await
    }

    pub async fn verify(&self, token: &str) -> Result<Auth> {
        let now = chrono::Utc::now().timestamp();
        let hash = token_hash(token);
        if let Some(auth) = self.cache.get(&hash, now) {
            return Ok(auth);
        }
        let header = jsonwebtoken::decode_header(token).map_err(invalid)?;
        let key = match header.alg {
            Algorithm::HS256 => match &self.secret {
                Some(secret) => secret.clone(),
                None => return Err(invalid("an HS256 token, and FORGE_JWT_SECRET is not set")),
            },
            Algorithm::RS256 | Algorithm::ES256 | Algorithm::EdDSA => {
                let Some(jwks) = &self.jwks else {
                    return Err(invalid(format!(
                        "a {:?} token, and FORGE_JWKS_URL is not set",
                        header.alg
                    )));
                };
                let kid = header
                    .kid
                    .as_deref()
                    .ok_or_else(|| invalid("a provider token without `kid`"))?;
                let key = jwks.key(kid).await.map_err(|error| {
                    if matches!(error, jwks::JwksError::Fetch(_)) {
                        tracing::warn!(%error, "cannot verify a token");
                    }
                    invalid(error)
                })?;
                if key.algorithm != header.alg {
                    return Err(invalid(format!(
                        "key `{kid}` is for {:?}, the token says {:?}",
                        key.algorithm, header.alg
                    )));
                }
                key.key
            }
            other => return Err(invalid(format!("algorithm {other:?} is not accepted"))),
        };
        let data = jsonwebtoken::decode::<Value>(token, &key, &self.validation(header.alg))
            .map_err(invalid)?;
        let claims: Claims = serde_json::from_value(data.claims.clone()).map_err(invalid)?;
        let uuid = |what: &str, value: &str| {
            Uuid::parse_str(value)
                .map_err(|_| Error::Unauthorized(format!("the token's `{what}` is not a UUID")))
        };
        let auth = Auth {
            user_id: uuid("sub", &claims.sub)?,
            tenant_id: claims
                .tenant_id
                .as_deref()
                .map(|t| uuid("tenant_id", t))
                .transpose()?,
            roles: claims.roles,
            claims: data.claims,
        };
        self.cache
            .insert(hash, auth.clone(), claims.exp as i64, now);
        Ok(auth)
    }

    fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        // A token that never expires is a credential that cannot be revoked.
        let mut required = vec!["exp", "sub"];
        required.extend(self.issuer.as_ref().map(|_| "iss"));
        required.extend(self.audience.as_ref().map(|_| "aud"));
        validation.set_required_spec_claims(&required);
        validation.validate_nbf = true;
        validation.leeway = self.leeway_secs;
        match &self.issuer {
            Some(issuer) => validation.set_issuer(&[issuer]),
            None => validation.iss = None,
        }
        match &self.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        validation
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    fn verifier() -> Verifier {
        Verifier {
            secret: Some(DecodingKey::from_secret(b"s3cret")),
            jwks: None,
            issuer: None,
            audience: None,
            leeway_secs: 5,
            cache: TokenCache::default(),
        }
    }

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

    #[tokio::test]
    async fn reads_identity_tenant_and_roles_whatever_the_scheme_case() {
        let user = Uuid::new_v4();
        let tenant = Uuid::new_v4();
        let token =
            token(json!({"sub": user, "tenant_id": tenant, "roles": ["admin"], "exp": now() + 60}));
        for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
            let auth = verifier()
                .verify_header(&format!("{scheme} {token}"))
                .await
                .unwrap();
            assert_eq!((auth.user_id, auth.tenant_id), (user, Some(tenant)));
            assert!(auth.has_role("admin"));
        }
        for bad in [
            format!("Basic {token}"),
            "Bearer".into(),
            "Bearer ".into(),
            token,
        ] {
            let error = verifier().verify_header(&bad).await.unwrap_err();
            assert_eq!(error.code(), "UNAUTHORIZED", "{bad}");
        }
    }

    #[tokio::test]
    async fn refuses_expired_premature_unsigned_and_foreign_tokens_saying_only_invalid_token() {
        let verifier = verifier();
        let sub = Uuid::new_v4();
        let expired = token(json!({"sub": sub, "exp": now() - 3600}));
        let premature = token(json!({"sub": sub, "exp": now() + 7200, "nbf": now() + 3600}));
        let no_exp = token(json!({"sub": sub}));
        let foreign = encode(
            &Header::default(),
            &json!({"sub": sub, "exp": now() + 60}),
            &EncodingKey::from_secret(b"other"),
        )
        .unwrap();
        let hs384 = encode(
            &Header::new(Algorithm::HS384),
            &json!({"sub": sub, "exp": now() + 60}),
            &EncodingKey::from_secret(b"s3cret"),
        )
        .unwrap();
        // `alg: none`, unsigned.
        let none = format!(
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.",
            base64_url(&json!({"sub": sub, "exp": now() + 60}).to_string())
        );
        for bad in [
            expired,
            premature,
            no_exp,
            foreign,
            hs384,
            none,
            "garbage".into(),
        ] {
            let error = verifier.verify(&bad).await.unwrap_err();
            assert_eq!(error.code(), "UNAUTHORIZED", "{bad}");
            assert_eq!(error.to_string(), "invalid token", "{bad}");
        }
        let not_uuid = token(json!({"sub": "bob", "exp": now() + 60}));
        let error = verifier.verify(&not_uuid).await.unwrap_err();
        assert!(error.to_string().contains("`sub` is not a UUID"), "{error}");
    }

    #[tokio::test]
    async fn the_leeway_is_the_configured_one() {
        let sub = Uuid::new_v4();
        // Expired 3 s ago: inside a 5 s leeway, outside a 0 s one (jsonwebtoken's default
        // would have been 60 s).
        let recent = token(json!({"sub": sub, "exp": now() - 3}));
        assert!(verifier().verify(&recent).await.is_ok());
        let strict = Verifier {
            leeway_secs: 0,
            ..verifier()
        };
        assert!(strict.verify(&recent).await.is_err());
        let old = token(json!({"sub": sub, "exp": now() - 30}));
        assert!(verifier().verify(&old).await.is_err());
    }

    #[tokio::test]
    async fn issuer_and_audience_are_required_when_configured() {
        let sub = Uuid::new_v4();
        let strict = Verifier {
            issuer: Some("https://id.example".into()),
            audience: Some("forge-app".into()),
            ..verifier()
        };
        let good = token(
            json!({"sub": sub, "exp": now() + 60, "iss": "https://id.example", "aud": "forge-app"}),
        );
        assert!(strict.verify(&good).await.is_ok());
        for bad in [
            json!({"sub": sub, "exp": now() + 60}),
            json!({"sub": sub, "exp": now() + 60, "iss": "https://evil", "aud": "forge-app"}),
            json!({"sub": sub, "exp": now() + 60, "iss": "https://id.example", "aud": "other"}),
            json!({"sub": sub, "exp": now() + 60, "iss": "https://id.example"}),
        ] {
            assert!(strict.verify(&token(bad.clone())).await.is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn verified_tokens_are_cached_until_exp() {
        let verifier = verifier();
        let good = token(json!({"sub": Uuid::new_v4(), "exp": now() + 60}));
        verifier.verify(&good).await.unwrap();
        assert_eq!(verifier.cache.len(), 1);
        verifier.verify(&good).await.unwrap();
        assert_eq!(verifier.cache.len(), 1);
        // Refused tokens are never cached.
        let _ = verifier.verify("garbage").await;
        assert_eq!(verifier.cache.len(), 1);
    }

    fn base64_url(text: &str) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let bytes = text.as_bytes();
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n =
                chunk.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
            for i in 0..=chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }
}
