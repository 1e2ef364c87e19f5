//! An identity provider's keys (`FORGE_JWKS_URL`): a JSON Web Key Set fetched over HTTP(S)
//! and cached by `kid`.
//!
//! - Only RSA (RS256), EC P-256 (ES256) and OKP Ed25519 (EdDSA) signing keys are kept; each
//!   key fixes the one algorithm it verifies, so a token cannot choose another (a symmetric
//!   `oct` key in a key set is ignored: it would let anyone holding the public set sign).
//! - An unknown `kid` refetches the set (the provider rotated keys), one fetch in flight at
//!   a time: concurrent requests wait for it instead of fetching again. A `kid` still
//!   unknown after a fetch is remembered for [`NEGATIVE_TTL`], and no refetch happens less
//!   than [`MIN_REFETCH`] after the last one, so tokens with made-up `kid`s cannot turn the
//!   node into a flood against the provider.
//! - A set older than [`MAX_AGE`] is refetched on the next lookup (other requests meanwhile
//!   use the known keys), so a key the provider withdrew stops verifying within that time.
//! - A fetch has [`FETCH_TIMEOUT`] and reads at most [`MAX_SET_BYTES`].

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

pub(crate) const NEGATIVE_TTL: Duration = Duration::from_secs(30);
pub(crate) const MIN_REFETCH: Duration = Duration::from_secs(1);
pub(crate) const MAX_AGE: Duration = Duration::from_secs(10 * 60);
pub(crate) const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
pub(crate) const MAX_SET_BYTES: usize = 256 * 1024;
/// `kid`s remembered as unknown at most (then the oldest half is forgotten).
const NEGATIVE_CAPACITY: usize = 1024;

/// One usable key: what it verifies with, and the algorithm it is for.
#[derive(Clone)]
pub(crate) struct Key {
    pub key: DecodingKey,
    pub algorithm: Algorithm,
}

struct Fetched {
    keys: HashMap<String, Key>,
    at: Instant,
}

pub(crate) struct Jwks {
    url: String,
    http: reqwest::Client,
    fetched: RwLock<Option<Fetched>>,
    /// Held while fetching: the one fetch in flight.
    fetching: tokio::sync::Mutex<()>,
    unknown: Mutex<HashMap<String, Instant>>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum JwksError {
    #[error("no key `{0}` in the identity provider's key set")]
    UnknownKid(String),
    #[error("cannot fetch FORGE_JWKS_URL: {0}")]
    Fetch(String),
}

impl Jwks {
    pub fn new(url: String) -> Result<Jwks, String> {
        let parsed = url::Url::parse(&url).map_err(|e| e.to_string())?;
        if !matches!(parsed.scheme(), "https" | "http") {
            return Err("not an http(s) URL".into());
        }
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Jwks {
            url,
            http,
            fetched: RwLock::new(None),
            fetching: tokio::sync::Mutex::new(()),
            unknown: Mutex::new(HashMap::new()),
        })
    }

    fn cached(&self, kid: &str) -> (Option<Key>, Option<Instant>) {
        let fetched = self.fetched.read().unwrap_or_else(|e| e.into_inner());
        match &*fetched {
            Some(set) => (set.keys.get(kid).cloned(), Some(set.at)),
            None => (None, None),
        }
    }

    /// The key `kid`, fetching the set when it is unknown or stale (see the module doc).
    pub async fn key(&self, kid: &str) -> Result<Key, JwksError> {
        let (key, at) = self.cached(kid);
        let fresh = at.is_some_and(|at| at.elapsed() < MAX_AGE);
        if let (Some(key), true) = (&key, fresh) {
            return Ok(key.clone());
        }
        if key.is_none() && self.recently_unknown(kid) {
            return Err(JwksError::UnknownKid(kid.to_owned()));
        }
        let _one_in_flight = match (&key, self.fetching.try_lock()) {
            (_, Ok(guard)) => guard,
            // A known key in a stale set: while another request refreshes, use it rather
            // than wait (only the refreshing request pays for the fetch).
            (Some(key), Err(_)) => return Ok(key.clone()),
            (None, Err(_)) => self.fetching.lock().await,
        };
        // Another request may have fetched while this one waited.
        let (key, at) = self.cached(kid);
        let fetched_since = at.is_some_and(|at| at.elapsed() < MIN_REFETCH);
        let fresh = at.is_some_and(|at| at.elapsed() < MAX_AGE);
        if let Some(key) = key.as_ref().filter(|_| fresh) {
            return Ok(key.clone());
        }
        if !fetched_since {
            match self.fetch().await {
                Ok(keys) => {
                    *self.fetched.write().unwrap_or_else(|e| e.into_inner()) = Some(Fetched {
                        keys,
                        at: Instant::now(),
                    });
                }
                // A provider that is down leaves the known keys in use (stale beats none).
                Err(error) if key.is_some() => {
                    tracing::warn!(%error, "refreshing the identity provider's keys failed");
                }
                Err(error) => return Err(error),
            }
        }
        match self.cached(kid).0 {
            Some(key) => Ok(key),
            None => {
                self.remember_unknown(kid);
                Err(JwksError::UnknownKid(kid.to_owned()))
            }
        }
    }

    fn recently_unknown(&self, kid: &str) -> bool {
        let unknown = self.unknown.lock().unwrap_or_else(|e| e.into_inner());
        unknown
            .get(kid)
            .is_some_and(|at| at.elapsed() < NEGATIVE_TTL)
    }

    fn remember_unknown(&self, kid: &str) {
        let mut unknown = self.unknown.lock().unwrap_or_else(|e| e.into_inner());
        if unknown.len() >= NEGATIVE_CAPACITY {
            unknown.retain(|_, at| at.elapsed() < NEGATIVE_TTL);
            if unknown.len() >= NEGATIVE_CAPACITY {
                let drop: Vec<String> = unknown
                    .keys()
                    .take(NEGATIVE_CAPACITY / 2)
                    .cloned()
                    .collect();
                for kid in drop {
                    unknown.remove(&kid);
                }
            }
        }
        unknown.insert(kid.to_owned(), Instant::now());
    }

    async fn fetch(&self) -> Result<HashMap<String, Key>, JwksError> {
        let fail = |e: &dyn std::fmt::Display| JwksError::Fetch(format!("{}: {e}", self.url));
        let mut response = self
            .http
            .get(&self.url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| fail(&e))?;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| fail(&e))? {
            if body.len() + chunk.len() > MAX_SET_BYTES {
                return Err(fail(&format!("the key set is over {MAX_SET_BYTES} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        let set: JwkSet = serde_json::from_slice(&body).map_err(|e| fail(&e))?;
        let keys = usable_keys(&set);
        tracing::info!(url = %self.url, keys = keys.len(), "fetched the identity provider's keys");
        Ok(keys)
    }
}

/// The signing keys of `set` forge verifies with, by `kid`.
pub(crate) fn usable_keys(set: &JwkSet) -> HashMap<String, Key> {
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let Some(kid) = &jwk.common.key_id else {
            continue;
        };
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        let algorithm = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Algorithm::RS256,
            AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
                Algorithm::ES256
            }
            AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
                Algorithm::EdDSA
            }
            _ => continue,
        };
        let declared = jwk.common.key_algorithm;
        let matches = match declared {
            None => true,
            Some(KeyAlgorithm::RS256) => algorithm == Algorithm::RS256,
            Some(KeyAlgorithm::ES256) => algorithm == Algorithm::ES256,
            Some(KeyAlgorithm::EdDSA) => algorithm == Algorithm::EdDSA,
            Some(_) => false,
        };
        if !matches {
            continue;
        }
        if let Ok(key) = DecodingKey::from_jwk(jwk) {
            keys.insert(kid.clone(), Key { key, algorithm });
        }
    }
    keys
}
