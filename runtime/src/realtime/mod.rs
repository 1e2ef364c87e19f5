//! Live queries (feature `realtime`): `GET /_api/events` (server-sent events),
//! `POST /_api/subscribe`, `POST /_api/unsubscribe` ([`http`]), and the pipeline that keeps
//! every subscribed result current.
//!
//! - **Sessions** are one SSE stream each, local to the node that serves it; a session ends
//!   when its stream does.
//! - **Bound sessions.** A session's secret is an HMAC-SHA256, under a key the node draws at
//!   start, of the session id, the client's IP and the 64-bit hash of its User-Agent
//!   (`gateway::client`). Subscribing or unsubscribing recomputes it for the requesting
//!   client: the pair from another IP or User-Agent is 403 `FORBIDDEN`, so a leaked pair is
//!   useless elsewhere. Nothing is stored per client: the secret *is* the binding.
//! - **Groups.** Subscriptions to the same query with the same arguments and the same caller
//!   identity share a [`Group`]: one run feeds every member. Each member remembers the hash
//!   of what it was last sent and gets an `update` only when the result's hash differs.
//! - **Invalidation.** Writes to reactive tables notify `forge_changes` (see
//!   `forge_enable_reactivity` in the system schema) on every node's shared listener, so a
//!   write on any node reaches every node. Changed tables are collected until the stream is
//!   quiet for [`QUIET`] (at most [`MAX_DELAY`] after the first), then every group reading
//!   one of them runs once, at most [`CONCURRENCY`] at a time, on the primary (a replica
//!   could still show the state before the write).
//! - **Outboxes.** A session's events wait in its [`Outbox`] until its client reads them:
//!   at most one per subscription (a newer result replaces one not yet sent, since only the
//!   newest matters) and at most `FORGE_LIVE_MAX_QUEUED_BYTES` in all. A session that falls
//!   further behind is disconnected; its client reconnects and subscribes again.
//! - **Limits.** Sessions per user, per client IP and per node, subscriptions per user and
//!   per session; past each, 429 naming the variable that sets it.
//! - **Expiry.** A subscription lives as long as the token it was made with: at its `exp`
//!   it is removed and its client gets an `error` event (`UNAUTHORIZED`); subscribing again
//!   under the same id with a fresh token renews it.
//! - **Missed changes.** After the listener reconnects (or falls behind), the tables changed
//!   meanwhile are read from `forge_change_log`; when the log no longer covers the gap,
//!   every group runs.
//!
//! # Decisions
//!
//! - **Feature.** `realtime` (default on) brings `gateway`: its endpoints are HTTP. The shared
//!   listener is compiled with `jobs` or `realtime`.
//! - **One LISTEN connection per node** (`listener.rs`), outside the primary pool, with
//!   `application_name = 'forge listener <node>'` so operators (and the tests) can find it. It
//!   LISTENs on the channels of the subsystems the node runs (`forge_jobs_available`,
//!   `forge_changes`) and fans notifications out over a `tokio::sync::broadcast` channel.
//!   Leadership does not listen (it polls its lock), so nothing else needed moving. A lost
//!   session is re-established by the listener itself (not by `PgListener`'s own retry, so every
//!   attempt is under the backoff: 0.5 s doubling to 30 s, reset once connected), LISTENs on
//!   every channel again and broadcasts `Connected`; a subscriber that lags behind the
//!   broadcast buffer (8,192) treats it the same way.
//! - **Sessions** are node-local: one SSE stream each, ended when the stream drops. The session
//!   secret is checked in constant time. `/_api/events` takes an optional bearer token (a
//!   valid one counts the session against its user; one that does not verify is 401, never an
//!   anonymous session); `/_api/subscribe` authenticates like RPC for that query, and the
//!   subscription runs with *that* token's identity.
//! - **Expiry.** A subscription lasts until its token's `exp` (no leeway: an expired token
//!   cannot subscribe). A sweep every second removes expired subscriptions (kept in a set
//!   ordered by expiry) and sends each an `error` event (`UNAUTHORIZED`); subscribing again
//!   under the same id with a fresh token renews it.
//! - **Groups** are keyed by (function, arguments as JSON text, identity: the user and every
//!   claim but `exp`, `iat`, `nbf` and `jti`, or anonymous): a query may read any claim, so
//!   callers whose claims differ never share a result; the per-token claims would otherwise
//!   split every refresh into a group of its own. Public queries are keyed by identity too, because a public query
//!   may read `ctx.user_id().ok()`; anonymous subscribers of a public query share one group.
//!   A group's runs are serialised by an async mutex around its last result, so a run that
//!   started after a write finishes after one that started before it. A new member of a live
//!   group is sent the group's last result without a run; a new group runs at once, and a
//!   first run that fails is the answer to `POST /_api/subscribe` (nothing is kept).
//! - **Push only on change.** Each member remembers the SHA-256 of the JSON it was last sent;
//!   a run pushes to exactly the members whose hash differs. A failed re-run sends `error` to
//!   every member and forgets their hashes, so the next good result reaches all of them.
//! - **Invalidation** is per table (`QueryDef::tables_read`, matched on the bare or
//!   schema-qualified name): changed tables collect until 50 ms pass without a notification or
//!   200 ms after the first, then each group reading one of them runs once, at most 8 at a time;
//!   the next batch waits for this one. Re-runs use the primary, never a replica, which could
//!   still show the state before the write. A query with no `tables_read` is never re-run.
//! - **Replay after a reconnect**: the tables of `forge_change_log` rows with an id above the
//!   highest one heard, or written from 60 s before the connection was last known to be up
//!   (ids are taken at insert, so a transaction can commit a lower id late). A gap longer than
//!   the log's retention, an unreadable log, a lagging broadcast, or subscriptions made before
//!   the first LISTEN took effect re-run every group instead (hashes keep that silent for
//!   clients).
//! - **Trimming**: every node deletes change-log rows older than an hour once a minute (cheap
//!   and idempotent; one node would do, but the leader exists only with `cron`/`daemons`).
//! - **Limits** (per node, since sessions are node-local): sessions per node
//!   (`FORGE_LIVE_MAX_SESSIONS`, 4096), per client address (`FORGE_LIVE_MAX_SESSIONS_PER_IP`,
//!   64, from `gateway::client`), per user (`FORGE_LIVE_MAX_SESSIONS_PER_USER`, 16), and
//!   `FORGE_LIVE_MAX_SUBSCRIPTIONS_PER_USER` (256, also the cap per session); past them
//!   `RATE_LIMITED` (429) with a message naming the variable. Subscribing again under an
//!   existing subscription id replaces it.
//! - **Outboxes.** A session's events wait in an outbox, not a channel: at most one event per
//!   subscription (a newer result replaces the unsent one; only the newest matters) and at
//!   most `FORGE_LIVE_MAX_QUEUED_BYTES` (4 MiB) in all, counted as the JSON text's length
//!   (results are serialised once per group run and shared). A push that takes a session past
//!   the bound (with more than one event waiting, so one large result always fits) ends it:
//!   the queue is freed, the stream ends and its connection is closed; clients reconnect and
//!   re-subscribe. `Running::live_stats` reports sessions, subscriptions and queued bytes.
//! - **TypeScript client**: one SSE stream per `createClient`, read with `fetch` (not
//!   `EventSource`) so it can send the bearer token; opened with the first subscription and
//!   closed after the last. It reconnects with the same backoff and re-subscribes everything on
//!   each new session. A subscribe the server refuses (bad arguments, no access) is reported to
//!   `onError` and dropped; a network failure is retried with the next connection. `api.ts`
//!   adds the typed `subscribe(client, "query", args, onData, onError)` and
//!   `live(client, "query", args)`, a store with Svelte's contract over
//!   `{ data, error }`; both names yield to handlers of the same name (`subscribe2`).

pub(crate) mod cache;
mod http;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest as _, Sha256};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use uuid::Uuid;

use crate::auth::Auth;
use crate::context::{Base, QueryContext};
use crate::gateway::call;
use crate::gateway::client::Client;
use crate::listener::Heard;
use crate::shared::Shared;
use crate::{Error, Result};

pub(crate) use http::router;

/// The channel `forge_reactivity_notify` notifies.
pub(crate) const CHANNEL: &str = "forge_changes";

/// Invalidations wait for this much quiet, so a burst of writes costs one run per group.
const QUIET: Duration = Duration::from_millis(50);
/// … but never longer than this after the first change of a batch.
const MAX_DELAY: Duration = Duration::from_millis(200);
/// Group runs at once per batch, so a popular table cannot take every pool connection.
const CONCURRENCY: usize = 8;
/// How long change-log rows are kept for replay.
const RETENTION_SECS: i64 = 3600;
/// How often each node trims the change log.
const TRIM_EVERY: Duration = Duration::from_secs(60);
/// Change-log ids are taken at insert, not at commit: after a reconnect, rows up to this
/// long before the connection was lost are read again, for transactions that committed a
/// lower id late.
const REPLAY_MARGIN_SECS: i64 = 60;

/// How often expired subscriptions are looked for.
const EXPIRY_SWEEP: Duration = Duration::from_secs(1);
/// What an event costs in an outbox besides its subscription id and data: the event's
/// framing, so a flood of tiny events is bounded too.
const EVENT_OVERHEAD: usize = 64;

type Hash = [u8; 32];

/// An event waiting in an [`Outbox`]: the JSON text of an update's data or of an error.
#[derive(Clone)]
pub(crate) enum Push {
    Update(Arc<str>),
    Error(Arc<str>),
}

impl Push {
    fn error(error: &Error) -> Push {
        Push::Error(error.to_wire().to_string().into())
    }

    fn text(&self) -> &str {
        match self {
            Push::Update(text) | Push::Error(text) => text,
        }
    }
}

#[derive(Default)]
struct Queue {
    /// Subscription ids in the order their events became pending.
    order: VecDeque<Arc<str>>,
    /// Each subscription's newest unsent event and its cost in bytes.
    pending: HashMap<Arc<str>, (Push, usize)>,
    bytes: usize,
    /// The client fell too far behind: the session is over.
    overflowed: bool,
}

/// One session's events on their way to its client.
pub(crate) struct Outbox {
    queue: Mutex<Queue>,
    ready: Notify,
    max_bytes: usize,
    /// Bytes queued in every outbox of the node.
    node_bytes: Arc<AtomicUsize>,
}

impl Outbox {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `push` for `subscription_id`, replacing its event not sent yet. When the
    /// queue goes over its bound with more than one event in it, the session is over.
    fn push(&self, subscription_id: &Arc<str>, push: Push) {
        let mut queue = self.queue();
        if queue.overflowed {
            return;
        }
        let cost = push.text().len() + subscription_id.len() + EVENT_OVERHEAD;
        match queue.pending.insert(subscription_id.clone(), (push, cost)) {
            Some((_, replaced)) => {
                queue.bytes -= replaced;
                self.node_bytes.fetch_sub(replaced, Ordering::Relaxed);
            }
            None => queue.order.push_back(subscription_id.clone()),
        }
        queue.bytes += cost;
        self.node_bytes.fetch_add(cost, Ordering::Relaxed);
        if queue.bytes > self.max_bytes && queue.order.len() > 1 {
            queue.overflowed = true;
            self.node_bytes.fetch_sub(queue.bytes, Ordering::Relaxed);
            queue.bytes = 0;
            queue.pending = HashMap::new();
            queue.order = VecDeque::new();
        }
        drop(queue);
        self.ready.notify_one();
    }

    /// The next event to send; `None` once the session fell too far behind.
    pub(crate) async fn next(&self) -> Option<(Arc<str>, Push)> {
        loop {
            {
                let mut queue = self.queue();
                if queue.overflowed {
                    return None;
                }
                while let Some(id) = queue.order.pop_front() {
                    if let Some((push, cost)) = queue.pending.remove(&id) {
                        queue.bytes -= cost;
                        self.node_bytes.fetch_sub(cost, Ordering::Relaxed);
                        return Some((id, push));
                    }
                }
            }
            // `notify_one` keeps a permit when nobody waits, so a push between the check
            // above and this wait is not missed.
            self.ready.notified().await;
        }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        let bytes = self.queue().bytes;
        self.node_bytes.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// Claims that differ between two tokens of the same grant; a live query's result must not
/// depend on them, so they do not split groups.
const PER_TOKEN_CLAIMS: [&str; 4] = ["exp", "iat", "nbf", "jti"];

/// Who a group runs as. Private results depend on the caller; public ones may too
/// (`ctx.user_id().ok()`), and a query may read any claim, so every query is keyed by the
/// identity it runs with: every claim but [`PER_TOKEN_CLAIMS`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Scope {
    Anonymous,
    User {
        user: Uuid,
        /// The claims as JSON text, without [`PER_TOKEN_CLAIMS`].
        claims: String,
    },
}

impl Scope {
    fn of(auth: Option<&Auth>) -> Scope {
        match auth {
            None => Scope::Anonymous,
            Some(auth) => {
                let mut claims = auth.claims.clone();
                if let Value::Object(map) = &mut claims {
                    for claim in PER_TOKEN_CLAIMS {
                        map.remove(claim);
                    }
                }
                Scope::User {
                    user: auth.user_id,
                    claims: claims.to_string(),
                }
            }
        }
    }
}

/// When a token expires (its `exp`, in Unix seconds).
fn expiry(auth: &Auth) -> Option<i64> {
    let exp = auth.claims.get("exp")?;
    exp.as_i64().or_else(|| exp.as_f64().map(|e| e as i64))
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Live-query figures of a node, for operators and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveStats {
    /// Sessions (`/_api/events` streams) open.
    pub sessions: usize,
    /// Subscriptions held by those sessions.
    pub subscriptions: usize,
    /// Bytes of events waiting for their clients, in every session's outbox.
    pub queued_bytes: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct GroupKey {
    function: &'static str,
    /// The arguments as canonical JSON text.
    args: String,
    scope: Scope,
}

/// One member: a subscription of a session.
struct Member {
    outbox: Arc<Outbox>,
    /// The hash of the last result this member was sent.
    sent: Option<Hash>,
}

/// Subscriptions that share one run.
pub(crate) struct Group {
    key: GroupKey,
    args: Value,
    auth: Option<Auth>,
    tables: &'static [&'static str],
    timeout_ms: Option<u64>,
    members: Mutex<HashMap<(Uuid, Arc<str>), Member>>,
    /// The last result (as JSON text); its lock serialises the group's runs, so a run that
    /// started after a write always finishes after one that started before it.
    last: tokio::sync::Mutex<Option<(Hash, Arc<str>)>>,
}

impl Group {
    fn reads(&self, changed: &BTreeSet<(String, String)>) -> bool {
        self.tables.iter().any(|table| {
            changed
                .iter()
                .any(|(schema, name)| match table.split_once('.') {
                    Some((s, t)) => s == schema && t == name,
                    None => table == name,
                })
        })
    }

    fn members(&self) -> MutexGuard<'_, HashMap<(Uuid, Arc<str>), Member>> {
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A subscription of a session.
struct Subscription {
    group: Arc<Group>,
    /// The user it counts against.
    user: Option<Uuid>,
    /// When the token it was made with expires.
    expires: Option<i64>,
}

struct Session {
    /// Who opened it: only to tell a stolen pair (403) from a wrong one (404).
    client: Client,
    user: Option<Uuid>,
    outbox: Arc<Outbox>,
    subscriptions: HashMap<Arc<str>, Subscription>,
}

#[derive(Default)]
struct State {
    sessions: HashMap<Uuid, Session>,
    groups: HashMap<GroupKey, Arc<Group>>,
    sessions_per_user: HashMap<Uuid, usize>,
    sessions_per_ip: HashMap<IpAddr, usize>,
    subscriptions_per_user: HashMap<Uuid, usize>,
    subscriptions: usize,
    /// (expiry, session, subscription) of every subscription made with an expiring token.
    expiries: BTreeSet<(i64, Uuid, Arc<str>)>,
}

impl State {
    /// Takes a subscription out of its session's books (the caller removed it from the
    /// session) and its member out of its group.
    fn forget(&mut self, session_id: Uuid, subscription_id: &Arc<str>, subscription: Subscription) {
        count_down(&mut self.subscriptions_per_user, subscription.user);
        self.subscriptions -= 1;
        if let Some(expires) = subscription.expires {
            self.expiries
                .remove(&(expires, session_id, subscription_id.clone()));
        }
        leave(self, &subscription.group, session_id, subscription_id);
    }
}

/// The node's live-query state, in [`Shared`].
pub(crate) struct Hub {
    state: Mutex<State>,
    queued_bytes: Arc<AtomicUsize>,
    /// The key session secrets are HMACs under; sessions are local to the node, so the key
    /// never leaves it.
    key: [u8; 32],
}

impl Hub {
    pub fn new() -> Result<Hub> {
        let mut key = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key)
            .map_err(|_| Error::Internal("the system's random source failed".into()))?;
        Ok(Hub {
            state: Mutex::default(),
            queued_bytes: Arc::default(),
            key,
        })
    }

    /// The secret of session `id` for `client`: hex HMAC-SHA256 over the id, the IP (as 16
    /// bytes, IPv4 mapped) and the User-Agent hash.
    fn secret(&self, id: Uuid, client: &Client) -> String {
        let ip = match client.ip {
            IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            IpAddr::V6(v6) => v6,
        };
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.key);
        let mut context = ring::hmac::Context::with_key(&key);
        context.update(id.as_bytes());
        context.update(&ip.octets());
        context.update(&client.user_agent_hash.to_be_bytes());
        hex::encode(context.sign().as_ref())
    }
}

/// What one session may hold open, from [`crate::Config`].
pub(crate) struct SessionLimits {
    pub per_user: usize,
    pub per_ip: usize,
    pub total: usize,
    pub queued_bytes: usize,
}

fn count_down<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, usize>, key: Option<K>) {
    if let Some(key) = key {
        if let Some(count) = counts.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&key);
            }
        }
    }
}

impl Hub {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a session for `user` at `ip`; refused past any of `limits`.
    fn open(
        &self,
        user: Option<Uuid>,
        client: &Client,
        limits: &SessionLimits,
    ) -> Result<(Uuid, String, Arc<Outbox>)> {
        let ip = client.ip;
        let mut state = self.state();
        if state.sessions.len() >= limits.total {
            return Err(Error::RateLimited(format!(
                "this node has {} live sessions open, the most it allows \
                 (FORGE_LIVE_MAX_SESSIONS); try again later",
                state.sessions.len()
            )));
        }
        let from_ip = state.sessions_per_ip.get(&ip).copied().unwrap_or(0);
        if from_ip >= limits.per_ip {
            return Err(Error::RateLimited(format!(
                "this address has {from_ip} live sessions open on this node, the most allowed \
                 (FORGE_LIVE_MAX_SESSIONS_PER_IP); close one first"
            )));
        }
        if let Some(user) = user {
            let open = state.sessions_per_user.get(&user).copied().unwrap_or(0);
            if open >= limits.per_user {
                return Err(Error::RateLimited(format!(
                    "this user has {open} live sessions open on this node, the most allowed \
                     (FORGE_LIVE_MAX_SESSIONS_PER_USER); close one first"
                )));
            }
            *state.sessions_per_user.entry(user).or_default() += 1;
        }
        *state.sessions_per_ip.entry(ip).or_default() += 1;
        let id = Uuid::new_v4();
        let secret = self.secret(id, client);
        let outbox = Arc::new(Outbox {
            queue: Mutex::new(Queue::default()),
            ready: Notify::new(),
            max_bytes: limits.queued_bytes,
            node_bytes: self.queued_bytes.clone(),
        });
        state.sessions.insert(
            id,
            Session {
                client: *client,
                user,
                outbox: outbox.clone(),
                subscriptions: HashMap::new(),
            },
        );
        Ok((id, secret, outbox))
    }

    /// Ends a session and every subscription in it.
    fn close(&self, session_id: Uuid) {
        let mut state = self.state();
        let Some(session) = state.sessions.remove(&session_id) else {
            return;
        };
        count_down(&mut state.sessions_per_user, session.user);
        count_down(&mut state.sessions_per_ip, Some(session.client.ip));
        for (subscription_id, subscription) in session.subscriptions {
            state.forget(session_id, &subscription_id, subscription);
        }
    }

    /// Checks the session pair presented by `client`; the session's outbox. The right pair
    /// from another client is `FORBIDDEN`; a wrong pair `NOT_FOUND`, like a session that
    /// ended.
    fn session(&self, id: Uuid, secret: &str, client: &Client) -> Result<Arc<Outbox>> {
        let state = self.state();
        let Some(session) = state.sessions.get(&id) else {
            return Err(no_session());
        };
        if constant_time_eq(self.secret(id, client).as_bytes(), secret.as_bytes()) {
            return Ok(session.outbox.clone());
        }
        let opened_by = session.client;
        if constant_time_eq(self.secret(id, &opened_by).as_bytes(), secret.as_bytes()) {
            tracing::warn!(session = %id, ip = %client.ip, opened_from = %opened_by.ip,
                "a live session's pair was presented by another client");
            return Err(Error::Forbidden(
                "this live session belongs to another client (its IP address or User-Agent \
                 differs): open /_api/events from this client"
                    .into(),
            ));
        }
        Err(no_session())
    }

    /// Removes a subscription; `true` when it existed.
    fn unsubscribe(&self, session_id: Uuid, subscription_id: &str) -> bool {
        let mut state = self.state();
        let Some(session) = state.sessions.get_mut(&session_id) else {
            return false;
        };
        let Some((subscription_id, subscription)) =
            session.subscriptions.remove_entry(subscription_id)
        else {
            return false;
        };
        state.forget(session_id, &subscription_id, subscription);
        true
    }

    /// Removes the subscriptions whose token expired by `now` and tells their clients.
    fn expire(&self, now: i64) {
        let mut state = self.state();
        while let Some(first) = state.expiries.first() {
            if first.0 > now {
                break;
            }
            let Some((_, session_id, subscription_id)) = state.expiries.pop_first() else {
                break;
            };
            let Some(session) = state.sessions.get_mut(&session_id) else {
                continue;
            };
            let Some(subscription) = session.subscriptions.remove(&subscription_id) else {
                continue;
            };
            let outbox = session.outbox.clone();
            state.forget(session_id, &subscription_id, subscription);
            outbox.push(
                &subscription_id,
                Push::error(&Error::Unauthorized(
                    "the token this subscription was made with has expired: subscribe again \
                     with a fresh token"
                        .into(),
                )),
            );
        }
    }

    /// The node's live-query figures.
    pub(crate) fn stats(&self) -> LiveStats {
        let state = self.state();
        LiveStats {
            sessions: state.sessions.len(),
            subscriptions: state.subscriptions,
            queued_bytes: self.queued_bytes.load(Ordering::Relaxed),
        }
    }

    fn groups(&self) -> Vec<Arc<Group>> {
        self.state().groups.values().cloned().collect()
    }
}

/// Takes a member out of its group, and the group out of the hub once it is empty.
fn leave(state: &mut State, group: &Arc<Group>, session_id: Uuid, subscription_id: &str) {
    let mut members = group.members();
    members.remove(&(session_id, Arc::from(subscription_id)));
    if members.is_empty() {
        if let Some(current) = state.groups.get(&group.key) {
            if Arc::ptr_eq(current, group) {
                state.groups.remove(&group.key);
            }
        }
    }
}

fn no_session() -> Error {
    Error::NotFound("no such live session on this node: open /_api/events again".into())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A subscription request, already authenticated.
pub(crate) struct Subscribe {
    pub session_id: Uuid,
    pub session_secret: String,
    pub subscription_id: String,
    pub function: String,
    pub args: Value,
    pub auth: Option<Auth>,
    pub client: Client,
}

/// Adds a subscription and sends its first result. A query that fails on its first run is
/// not kept: the error is the answer.
pub(crate) async fn subscribe(shared: &Arc<Shared>, request: Subscribe) -> Result<()> {
    let hub = &shared.realtime;
    let outbox = hub.session(request.session_id, &request.session_secret, &request.client)?;
    let Some((&function, query)) = shared
        .registry
        .queries
        .get_key_value(request.function.as_str())
    else {
        return Err(Error::NotFound(format!(
            "no query is named `{}`",
            request.function
        )));
    };
    let expires = request.auth.as_ref().and_then(expiry);
    // Live subscriptions get no leeway on `exp`: one made with an expired token would be
    // closed at once.
    if expires.is_some_and(|expires| expires <= unix_now()) {
        return Err(Error::Unauthorized(
            "the token has expired: subscribe with a fresh token".into(),
        ));
    }
    let subscription_id: Arc<str> = request.subscription_id.into();
    let key = GroupKey {
        function,
        args: serde_json::to_string(&request.args)?,
        scope: Scope::of(request.auth.as_ref()),
    };
    let user = request.auth.as_ref().map(|auth| auth.user_id);
    let limit = shared.config.live_max_subscriptions_per_user;
    let group = {
        let mut state = hub.state();
        // Subscribing again under the same id replaces the subscription.
        if let Some(session) = state.sessions.get_mut(&request.session_id) {
            if let Some((id, old)) = session.subscriptions.remove_entry(&subscription_id) {
                state.forget(request.session_id, &id, old);
            }
        }
        let session_count = state
            .sessions
            .get(&request.session_id)
            .map_or(0, |s| s.subscriptions.len());
        let user_count = user.map_or(0, |u| {
            state.subscriptions_per_user.get(&u).copied().unwrap_or(0)
        });
        if session_count >= limit || user_count >= limit {
            return Err(Error::RateLimited(format!(
                "{} live subscriptions are open, the most allowed per user and per session \
                 (FORGE_LIVE_MAX_SUBSCRIPTIONS_PER_USER); unsubscribe from one first",
                session_count.max(user_count)
            )));
        }
        let group = state
            .groups
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(Group {
                    key,
                    args: request.args,
                    auth: request.auth,
                    tables: query.def.tables_read,
                    timeout_ms: query.def.timeout_ms,
                    members: Mutex::new(HashMap::new()),
                    last: tokio::sync::Mutex::new(None),
                })
            })
            .clone();
        group.members().insert(
            (request.session_id, subscription_id.clone()),
            Member { outbox, sent: None },
        );
        let Some(session) = state.sessions.get_mut(&request.session_id) else {
            leave(&mut state, &group, request.session_id, &subscription_id);
            return Err(Error::NotFound("the live session ended".into()));
        };
        session.subscriptions.insert(
            subscription_id.clone(),
            Subscription {
                group: group.clone(),
                user,
                expires,
            },
        );
        if let Some(user) = user {
            *state.subscriptions_per_user.entry(user).or_default() += 1;
        }
        state.subscriptions += 1;
        if let Some(expires) = expires {
            state
                .expiries
                .insert((expires, request.session_id, subscription_id.clone()));
        }
        group
    };
    let mut last = group.last.lock().await;
    if let Some((hash, data)) = last.as_ref() {
        // The group is live: its last result is current up to invalidations in flight.
        let mut members = group.members();
        if let Some(member) = members.get_mut(&(request.session_id, subscription_id.clone())) {
            send_update(&subscription_id, member, *hash, data);
        }
        return Ok(());
    }
    match run(shared, &group).await {
        Ok((hash, data)) => {
            fan_out(&group, hash, &data);
            *last = Some((hash, data));
            Ok(())
        }
        Err(error) => {
            drop(last);
            hub.unsubscribe(request.session_id, &subscription_id);
            Err(error)
        }
    }
}

pub(crate) fn unsubscribe(
    shared: &Shared,
    session_id: Uuid,
    session_secret: &str,
    client: &Client,
    subscription_id: &str,
) -> Result<bool> {
    shared
        .realtime
        .session(session_id, session_secret, client)?;
    Ok(shared.realtime.unsubscribe(session_id, subscription_id))
}

fn send_update(subscription_id: &Arc<str>, member: &mut Member, hash: Hash, data: &Arc<str>) {
    if member.sent == Some(hash) {
        return;
    }
    member.sent = Some(hash);
    member
        .outbox
        .push(subscription_id, Push::Update(data.clone()));
}

fn fan_out(group: &Group, hash: Hash, data: &Arc<str>) {
    for ((_, subscription_id), member) in group.members().iter_mut() {
        send_update(subscription_id, member, hash, data);
    }
}

/// Runs the group's query as its subscribers' identity; the result as JSON text and its
/// hash.
async fn run(shared: &Arc<Shared>, group: &Group) -> Result<(Hash, Arc<str>)> {
    let query = shared
        .registry
        .queries
        .get(group.key.function)
        .ok_or_else(|| Error::Internal(format!("`{}` is not registered", group.key.function)))?;
    let context = QueryContext {
        base: Base::new(shared, group.auth.clone()),
    };
    let future = (query.call)(context, group.args.clone());
    let data = call::run_inline(shared, group.key.function, group.timeout_ms, future).await?;
    let text = serde_json::to_string(&data)?;
    let hash: Hash = Sha256::digest(text.as_bytes()).into();
    Ok((hash, text.into()))
}

/// Runs an invalidated group and pushes what changed; a failure goes to every member as an
/// `error` event, and the next successful run is sent to all of them again.
async fn refresh(shared: Arc<Shared>, group: Arc<Group>) {
    let mut last = group.last.lock().await;
    match run(&shared, &group).await {
        Ok((hash, data)) => {
            fan_out(&group, hash, &data);
            *last = Some((hash, data));
        }
        Err(error) => {
            tracing::warn!(function = group.key.function, %error, "a live query failed to re-run");
            let push = Push::error(&error);
            for ((_, subscription_id), member) in group.members().iter_mut() {
                member.sent = None;
                member.outbox.push(subscription_id, push.clone());
            }
            *last = None;
        }
    }
}

/// Starts the invalidation loop and the change-log trimmer. Subscribes to the listener
/// here, before it connects, so the first [`Heard::Connected`] is not missed.
pub(crate) fn spawn(shared: &Arc<Shared>, tasks: &mut JoinSet<()>) {
    let heard = shared.listener.subscribe();
    tasks.spawn(invalidate(shared.clone(), heard));
    tasks.spawn(trim(shared.clone()));
    tasks.spawn(expire(shared.clone()));
}

/// Closes subscriptions whose token expired, every [`EXPIRY_SWEEP`].
async fn expire(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(EXPIRY_SWEEP);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shared.shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        shared.realtime.expire(unix_now());
    }
}

/// What must re-run after a batch of notifications.
#[derive(Default)]
struct Batch {
    tables: BTreeSet<(String, String)>,
    everything: bool,
}

#[derive(serde::Deserialize)]
struct Change {
    s: String,
    t: String,
    id: i64,
}

async fn invalidate(shared: Arc<Shared>, mut heard: tokio::sync::broadcast::Receiver<Heard>) {
    let stop = shared.shutdown.clone();
    // The highest change id heard, and when the session was last known to be up.
    let mut seen: Option<i64> = None;
    let mut up_since_lost = std::time::SystemTime::now();
    let mut first_connect = true;
    let semaphore = Arc::new(Semaphore::new(CONCURRENCY));
    loop {
        let mut batch = Batch::default();
        let mut deadline: Option<(Instant, Instant)> = None;
        loop {
            let wait = deadline.map(|(quiet, max)| quiet.min(max));
            let next = tokio::select! {
                () = stop.cancelled() => return,
                () = sleep_until(wait) => break,
                next = heard.recv() => next,
            };
            match next {
                Ok(Heard::Notification { channel, payload }) if &*channel == CHANNEL => {
                    match serde_json::from_str::<Change>(&payload) {
                        Ok(change) => {
                            seen = Some(seen.map_or(change.id, |s| s.max(change.id)));
                            // Cached results go at once; live queries wait for the quiet.
                            let table = BTreeSet::from([(change.s, change.t)]);
                            shared.query_cache.invalidate(&table);
                            batch.tables.extend(table);
                        }
                        Err(error) => {
                            tracing::warn!(%error, %payload, "unreadable change notification");
                            shared.query_cache.clear();
                            batch.everything = true;
                        }
                    }
                }
                Ok(Heard::Notification { .. }) => continue,
                Ok(Heard::Connected) => {
                    if first_connect {
                        first_connect = false;
                        seen = latest_change(&shared).await.or(seen);
                        // Subscriptions made before the first LISTEN took effect may have
                        // missed changes.
                        batch.everything = !shared.realtime.groups().is_empty();
                    } else {
                        replay(&shared, seen, up_since_lost, &mut batch).await;
                    }
                    up_since_lost = std::time::SystemTime::now();
                    // Changes may have been missed while the session was down.
                    shared.query_cache.clear();
                    if !batch.everything && batch.tables.is_empty() {
                        continue;
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    shared.query_cache.clear();
                    tracing::warn!(
                        missed,
                        "live queries fell behind the change stream; re-running all"
                    );
                    batch.everything = true;
                }
                Err(RecvError::Closed) => return,
            }
            // The connection is up while notifications arrive.
            up_since_lost = std::time::SystemTime::now();
            let now = Instant::now();
            deadline = Some(match deadline {
                None => (now + QUIET, now + MAX_DELAY),
                Some((_, max)) => (now + QUIET, max),
            });
        }
        if !batch.everything && batch.tables.is_empty() {
            continue;
        }
        let groups: Vec<Arc<Group>> = shared
            .realtime
            .groups()
            .into_iter()
            .filter(|group| batch.everything || group.reads(&batch.tables))
            .collect();
        tracing::debug!(tables = ?batch.tables, groups = groups.len(), "re-running live queries");
        let mut runs = JoinSet::new();
        for group in groups {
            let Ok(permit) = semaphore.clone().acquire_owned().await else {
                break;
            };
            let shared = shared.clone();
            runs.spawn(async move {
                refresh(shared, group).await;
                drop(permit);
            });
        }
        while runs.join_next().await.is_some() {}
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

async fn latest_change(shared: &Shared) -> Option<i64> {
    sqlx::query_scalar("SELECT max(id) FROM forge_change_log")
        .fetch_one(&shared.primary)
        .await
        .inspect_err(|error| tracing::warn!(%error, "cannot read forge_change_log"))
        .ok()
        .flatten()
}

/// Adds the tables changed while the listener was down to `batch`, from the change log;
/// everything when the log cannot tell (the gap is longer than the log is kept, or it
/// cannot be read).
async fn replay(
    shared: &Shared,
    seen: Option<i64>,
    lost_at: std::time::SystemTime,
    batch: &mut Batch,
) {
    let down = lost_at.elapsed().unwrap_or_default();
    if down.as_secs() as i64 + REPLAY_MARGIN_SECS >= RETENTION_SECS {
        batch.everything = true;
        return;
    }
    let lost_at: chrono::DateTime<chrono::Utc> = lost_at.into();
    let since = lost_at - chrono::Duration::seconds(REPLAY_MARGIN_SECS);
    let rows: sqlx::Result<Vec<(String, String)>> = sqlx::query_as(
        "SELECT DISTINCT table_schema, table_name FROM forge_change_log \
         WHERE id > $1 OR changed_at >= $2",
    )
    .bind(seen.unwrap_or(0))
    .bind(since)
    .fetch_all(&shared.primary)
    .await;
    match rows {
        Ok(rows) => {
            tracing::info!(
                tables = rows.len(),
                "replaying changes missed while the listener was down"
            );
            batch.tables.extend(rows);
        }
        Err(error) => {
            tracing::warn!(%error, "cannot replay forge_change_log; re-running every live query");
            batch.everything = true;
        }
    }
}

/// Deletes change-log rows older than [`RETENTION_SECS`], on every node (the deletes are
/// idempotent; one is enough, more cost little).
async fn trim(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(TRIM_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shared.shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        let trimmed = sqlx::query(
            "DELETE FROM forge_change_log WHERE changed_at < now() - $1 * interval '1 second'",
        )
        .bind(RETENTION_SECS)
        .execute(&shared.primary)
        .await;
        match trimmed {
            Ok(done) if done.rows_affected() > 0 => {
                tracing::debug!(rows = done.rows_affected(), "trimmed forge_change_log")
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "trimming forge_change_log failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox(max_bytes: usize) -> (Outbox, Arc<AtomicUsize>) {
        let node_bytes = Arc::new(AtomicUsize::new(0));
        let outbox = Outbox {
            queue: Mutex::new(Queue::default()),
            ready: Notify::new(),
            max_bytes,
            node_bytes: node_bytes.clone(),
        };
        (outbox, node_bytes)
    }

    fn update(text: &str) -> Push {
        Push::Update(text.into())
    }

    async fn next_text(outbox: &Outbox) -> Option<(String, String)> {
        let (id, push) = outbox.next().await?;
        Some((id.to_string(), push.text().to_owned()))
    }

    #[tokio::test]
    async fn a_newer_event_replaces_the_unsent_one_of_its_subscription_in_place() {
        let (outbox, node_bytes) = outbox(1 << 20);
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        outbox.push(&a, update("1"));
        outbox.push(&b, update("2"));
        outbox.push(&a, update("3"));
        assert_eq!(outbox.queue().order.len(), 2);
        let queued = node_bytes.load(Ordering::Relaxed);
        assert_eq!(queued, 2 * (1 + 1 + EVENT_OVERHEAD));
        assert_eq!(next_text(&outbox).await, Some(("a".into(), "3".into())));
        assert_eq!(next_text(&outbox).await, Some(("b".into(), "2".into())));
        assert_eq!(node_bytes.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn past_its_bound_an_outbox_ends_and_gives_its_bytes_back() {
        let (outbox, node_bytes) = outbox(1000);
        let big = "x".repeat(900);
        // One event larger than the bound still fits: a session can always get a result.
        outbox.push(&"a".into(), update(&format!("{big}{big}")));
        assert!(node_bytes.load(Ordering::Relaxed) > 1000);
        outbox.push(&"b".into(), update("1"));
        assert_eq!(node_bytes.load(Ordering::Relaxed), 0);
        assert_eq!(next_text(&outbox).await, None);
        outbox.push(&"c".into(), update("2"));
        assert_eq!(next_text(&outbox).await, None);
        assert_eq!(node_bytes.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn groups_split_on_claims_but_not_on_per_token_ones() {
        let user = Uuid::new_v4();
        let auth = |claims: Value| Auth {
            user_id: user,
            tenant_id: None,
            roles: Vec::new(),
            claims,
        };
        let free = auth(serde_json::json!({"sub": user, "exp": 1, "iat": 0, "plan": "free"}));
        let free_later = auth(serde_json::json!({"sub": user, "exp": 9, "iat": 5, "plan": "free"}));
        let pro = auth(serde_json::json!({"sub": user, "exp": 1, "plan": "pro"}));
        assert_eq!(Scope::of(Some(&free)), Scope::of(Some(&free_later)));
        assert_ne!(Scope::of(Some(&free)), Scope::of(Some(&pro)));
    }
}
