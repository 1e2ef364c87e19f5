//! Verified tokens, so that a client sending the same token on every request pays one
//! SHA-256 instead of a signature check (an RS256 verification costs far more than the
//! rest of a small RPC).
//!
//! Keyed by the SHA-256 of the token, never the token itself, so the cache holds nothing a
//! memory dump could replay. An entry lives until the token's `exp` (without leeway), and
//! the cache holds at most [`CAPACITY`] entries: when full, expired entries go first, then
//! arbitrary ones (a client cannot grow it, only make others verify again).

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::auth::Auth;

/// Entries kept at most: about 1,000 bytes each with their claims, so a few MiB.
pub(crate) const CAPACITY: usize = 4096;

pub(crate) type TokenHash = [u8; 32];

pub(crate) fn token_hash(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

#[derive(Default)]
pub(crate) struct TokenCache {
    entries: Mutex<HashMap<TokenHash, (Auth, i64)>>,
}

impl TokenCache {
    /// The identity of a token verified before, while its `exp` (Unix seconds) is ahead.
    pub fn get(&self, hash: &TokenHash, now: i64) -> Option<Auth> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(hash) {
            Some((auth, exp)) if *exp > now => Some(auth.clone()),
            Some(_) => {
                entries.remove(hash);
                None
            }
            None => None,
        }
    }

    pub fn insert(&self, hash: TokenHash, auth: Auth, exp: i64, now: i64) {
        if exp <= now {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CAPACITY && !entries.contains_key(&hash) {
            entries.retain(|_, (_, exp)| *exp > now);
            if entries.len() >= CAPACITY {
                // Nothing expired: drop a tenth, whichever the map yields first.
                let drop: Vec<TokenHash> = entries.keys().take(CAPACITY / 10).copied().collect();
                for key in drop {
                    entries.remove(&key);
                }
            }
        }
        entries.insert(hash, (auth, exp));
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Auth {
        Auth {
            user_id: uuid::Uuid::new_v4(),
            tenant_id: None,
            roles: Vec::new(),
            claims: serde_json::Value::Null,
        }
    }

    #[test]
    fn entries_expire_with_their_token() {
        let cache = TokenCache::default();
        let hash = token_hash("a");
        cache.insert(hash, auth(), 100, 50);
        assert!(cache.get(&hash, 99).is_some());
        assert!(cache.get(&hash, 100).is_none());
        assert_eq!(cache.len(), 0);
        cache.insert(token_hash("b"), auth(), 10, 50);
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = TokenCache::default();
        for i in 0..CAPACITY * 3 {
            cache.insert(token_hash(&i.to_string()), auth(), 1_000, 0);
            assert!(cache.len() <= CAPACITY);
        }
        // Expired entries make room first.
        let cache = TokenCache::default();
        for i in 0..CAPACITY {
            cache.insert(token_hash(&i.to_string()), auth(), 10, 0);
        }
        cache.insert(token_hash("fresh"), auth(), 1_000, 20);
        assert_eq!(cache.len(), 1);
    }
}
