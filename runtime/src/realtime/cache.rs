//! `#[forge::query(cache = "30s")]`: results kept per (function, arguments, caller
//! identity) for the duration, on the node that ran them.
//!
//! - **Identity** is every claim of the caller's token (anonymous callers share one
//!   identity), so one user's cached result never reaches another, nor the same user under
//!   another tenant or role.
//! - **Invalidation** rides the live-query pipeline: every `forge_changes` notification
//!   (a write to a reactive table on any node) drops, at once and without the live queries'
//!   debounce, the entries of queries that read that table; a query whose tables are
//!   unknown is dropped by every change. When the listener reconnects or falls behind, the
//!   whole cache is dropped. A run that overlapped an invalidation is not stored (it may
//!   have read the state before the write). This is why the cache needs the `realtime`
//!   feature; without it, `cache` is ignored and the node says so at start.
//! - **Bounds**: `FORGE_QUERY_CACHE_ENTRIES` entries and `FORGE_QUERY_CACHE_BYTES` bytes of
//!   result JSON per node; past either, the oldest entries go first. A result larger than
//!   the whole budget is not stored.
//! - **Visible**: the RPC response carries `x-forge-cache: hit` or `miss`.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use crate::auth::Auth;

/// What a cached result is keyed by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    function: &'static str,
    /// The arguments as canonical JSON text.
    args: String,
    /// Every claim of the caller's token as JSON text; empty for anonymous callers.
    identity: String,
}

impl Key {
    pub fn new(function: &'static str, args: &Value, auth: Option<&Auth>) -> Key {
        Key {
            function,
            args: args.to_string(),
            identity: auth.map(|auth| auth.claims.to_string()).unwrap_or_default(),
        }
    }
}

struct Entry {
    value: Arc<Value>,
    bytes: usize,
    expires: Instant,
    tables: &'static [&'static str],
    /// Its place in [`Inner::order`].
    seq: u64,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Key, Entry>,
    /// Insertion order, for eviction; stale pairs (replaced or removed entries) are skipped.
    order: VecDeque<(u64, Key)>,
    next_seq: u64,
    bytes: usize,
    /// Counts invalidations: a run that saw it change while running is not stored.
    generation: u64,
}

pub(crate) struct QueryCache {
    inner: Mutex<Inner>,
    max_entries: usize,
    max_bytes: usize,
}

fn reads(tables: &[&str], schema: &str, name: &str) -> bool {
    tables.is_empty()
        || tables.iter().any(|table| match table.split_once('.') {
            Some((s, t)) => s == schema && t == name,
            None => *table == name,
        })
}

impl QueryCache {
    pub fn new(max_entries: usize, max_bytes: usize) -> QueryCache {
        QueryCache {
            inner: Mutex::new(Inner::default()),
            max_entries,
            max_bytes,
        }
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached result, if one is stored and has not expired.
    pub fn get(&self, key: &Key) -> Option<Arc<Value>> {
        let mut inner = self.inner();
        let entry = inner.entries.get(key)?;
        if entry.expires > Instant::now() {
            return Some(entry.value.clone());
        }
        if let Some(gone) = inner.entries.remove(key) {
            inner.bytes -= gone.bytes;
        }
        None
    }

    /// To pass to [`QueryCache::put`] for a run that starts now.
    pub fn generation(&self) -> u64 {
        self.inner().generation
    }

    /// Stores `value` for `ttl`, unless an invalidation happened since `generation`.
    pub fn put(
        &self,
        key: Key,
        value: &Value,
        ttl: Duration,
        tables: &'static [&'static str],
        generation: u64,
    ) {
        let bytes = value.to_string().len() + key.args.len() + key.identity.len();
        if bytes > self.max_bytes || self.max_entries == 0 {
            return;
        }
        let mut guard = self.inner();
        let inner = &mut *guard;
        if inner.generation != generation {
            return;
        }
        let seq = inner.next_seq;
        inner.next_seq += 1;
        let entry = Entry {
            value: Arc::new(value.clone()),
            bytes,
            expires: Instant::now() + ttl,
            tables,
            seq,
        };
        inner.order.push_back((seq, key.clone()));
        inner.bytes += bytes;
        if let Some(old) = inner.entries.insert(key, entry) {
            inner.bytes -= old.bytes;
        }
        while inner.entries.len() > self.max_entries || inner.bytes > self.max_bytes {
            let Some((seq, key)) = inner.order.pop_front() else {
                break;
            };
            if inner.entries.get(&key).is_some_and(|e| e.seq == seq) {
                if let Some(gone) = inner.entries.remove(&key) {
                    inner.bytes -= gone.bytes;
                }
            }
        }
        // Keep the order queue from growing past the entries it describes.
        if inner.order.len() > 2 * inner.entries.len() + 64 {
            let entries = &inner.entries;
            inner
                .order
                .retain(|(seq, key)| entries.get(key).is_some_and(|e| e.seq == *seq));
        }
    }

    /// Drops the entries of queries reading one of `tables` (schema, table).
    pub fn invalidate(&self, tables: &BTreeSet<(String, String)>) {
        let mut inner = self.inner();
        inner.generation += 1;
        let mut freed = 0;
        inner.entries.retain(|_, entry| {
            let keep = !tables
                .iter()
                .any(|(schema, name)| reads(entry.tables, schema, name));
            if !keep {
                freed += entry.bytes;
            }
            keep
        });
        inner.bytes -= freed;
    }

    /// Drops every entry: changes may have been missed.
    pub fn clear(&self) {
        let mut inner = self.inner();
        inner.generation += 1;
        inner.entries.clear();
        inner.order.clear();
        inner.bytes = 0;
    }

    #[cfg(test)]
    fn len(&self) -> (usize, usize) {
        let inner = self.inner();
        (inner.entries.len(), inner.bytes)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn auth(user: u128, claims: Value) -> Auth {
        Auth {
            user_id: uuid::Uuid::from_u128(user),
            tenant_id: None,
            roles: Vec::new(),
            claims,
        }
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn keys_include_every_claim_and_the_arguments() {
        let cache = QueryCache::new(100, 1 << 20);
        let alice = auth(1, json!({"sub": "alice"}));
        let key = Key::new("q", &json!({"a": 1}), Some(&alice));
        cache.put(
            key.clone(),
            &json!("alice's"),
            MINUTE,
            &["items"],
            cache.generation(),
        );
        assert_eq!(cache.get(&key).as_deref(), Some(&json!("alice's")));
        let bob = auth(1, json!({"sub": "bob"}));
        assert!(cache
            .get(&Key::new("q", &json!({"a": 1}), Some(&bob)))
            .is_none());
        assert!(cache.get(&Key::new("q", &json!({"a": 1}), None)).is_none());
        assert!(cache
            .get(&Key::new("q", &json!({"a": 2}), Some(&alice)))
            .is_none());
        let admin = auth(1, json!({"sub": "alice", "roles": ["admin"]}));
        assert!(cache
            .get(&Key::new("q", &json!({"a": 1}), Some(&admin)))
            .is_none());
    }

    #[tokio::test]
    async fn writes_to_read_tables_and_overlapping_runs_invalidate() {
        let cache = QueryCache::new(100, 1 << 20);
        let items = Key::new("items", &json!({}), None);
        let other = Key::new("other", &json!({}), None);
        let unknown = Key::new("unknown", &json!({}), None);
        let generation = cache.generation();
        cache.put(items.clone(), &json!(1), MINUTE, &["items"], generation);
        cache.put(
            other.clone(),
            &json!(2),
            MINUTE,
            &["public.other"],
            generation,
        );
        cache.put(unknown.clone(), &json!(3), MINUTE, &[], generation);
        cache.invalidate(&BTreeSet::from([("public".into(), "items".into())]));
        assert!(cache.get(&items).is_none());
        assert!(cache.get(&unknown).is_none(), "unknown tables: any change");
        assert!(cache.get(&other).is_some());
        // A run that started before that invalidation is not stored.
        cache.put(items.clone(), &json!(1), MINUTE, &["items"], generation);
        assert!(cache.get(&items).is_none());
        cache.clear();
        assert_eq!(cache.len(), (0, 0));
    }

    #[tokio::test]
    async fn entries_expire_and_the_bounds_evict_the_oldest() {
        let cache = QueryCache::new(2, 1 << 20);
        let key = |n: i32| Key::new("q", &json!({ "n": n }), None);
        cache.put(key(1), &json!(1), Duration::from_millis(1), &["t"], 0);
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(cache.get(&key(1)).is_none(), "expired");
        for n in 2..=4 {
            cache.put(key(n), &json!(n), MINUTE, &["t"], 0);
        }
        assert!(cache.get(&key(2)).is_none(), "the oldest went");
        assert_eq!(cache.len().0, 2);
        let small = QueryCache::new(100, 40);
        small.put(key(1), &json!("x".repeat(100)), MINUTE, &["t"], 0);
        assert_eq!(small.len(), (0, 0), "larger than the whole budget");
        for n in 0..10 {
            small.put(key(n), &json!(n), MINUTE, &["t"], 0);
        }
        assert!(small.len().1 <= 40, "{:?}", small.len());
    }
}
