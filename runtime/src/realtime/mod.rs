//! Live queries (feature `realtime`): `GET /_api/events` (server-sent events),
//! `POST /_api/subscribe`, `POST /_api/unsubscribe` ([`http`]), and the pipeline that keeps
//! every subscribed result current.
//!
//! - **Sessions** are one SSE stream each, local to the node that serves it; a session ends
//!   when its stream does.
//! - **Groups.** Subscriptions to the same query with the same arguments and the same caller
//!   identity share a [`Group`]: one run feeds every member. Each member remembers the hash
//!   of what it was last sent and gets an `update` only when the result's hash differs.
//! - **Invalidation.** Writes to reactive tables notify `forge_changes` (see
//!   `forge_enable_reactivity` in the system schema) on every node's shared listener, so a
//!   write on any node reaches every node. Changed tables are collected until the stream is
//!   quiet for [`QUIET`] (at most [`MAX_DELAY`] after the first), then every group reading
//!   one of them runs once, at most [`CONCURRENCY`] at a time, on the primary (a replica
//!   could still show the state before the write).
//! - **Missed changes.** After the listener reconnects (or falls behind), the tables changed
//!   meanwhile are read from `forge_change_log`; when the log no longer covers the gap,
//!   every group runs.

pub(crate) mod cache;
mod http;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest as _, Sha256};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use uuid::Uuid;

use crate::auth::Auth;
use crate::context::{Base, QueryContext};
use crate::gateway::call;
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

type Hash = [u8; 32];

/// What a session's stream sends.
pub(crate) enum Push {
    Update {
        subscription_id: Arc<str>,
        data: Arc<Value>,
    },
    Error {
        subscription_id: Arc<str>,
        error: Value,
    },
}

/// Who a group runs as. Private results depend on the caller; public ones may too
/// (`ctx.user_id().ok()`), so every query is keyed by the identity it runs with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Scope {
    Anonymous,
    User {
        user: Uuid,
        tenant: Option<Uuid>,
        roles: BTreeSet<String>,
    },
}

impl Scope {
    fn of(auth: Option<&Auth>) -> Scope {
        match auth {
            None => Scope::Anonymous,
            Some(auth) => Scope::User {
                user: auth.user_id,
                tenant: auth.tenant_id,
                roles: auth.roles.iter().cloned().collect(),
            },
        }
    }
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
    events: mpsc::UnboundedSender<Push>,
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
    /// The last result; its lock serialises the group's runs, so a run that started after
    /// a write always finishes after one that started before it.
    last: tokio::sync::Mutex<Option<(Hash, Arc<Value>)>>,
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

struct Session {
    secret: String,
    user: Option<Uuid>,
    events: mpsc::UnboundedSender<Push>,
    /// Subscription id → its group and the user it counts against.
    subscriptions: HashMap<Arc<str>, (Arc<Group>, Option<Uuid>)>,
}

#[derive(Default)]
struct State {
    sessions: HashMap<Uuid, Session>,
    groups: HashMap<GroupKey, Arc<Group>>,
    sessions_per_user: HashMap<Uuid, usize>,
    subscriptions_per_user: HashMap<Uuid, usize>,
}

/// The node's live-query state, in [`Shared`].
#[derive(Default)]
pub(crate) struct Hub {
    state: Mutex<State>,
}

fn count_down(counts: &mut HashMap<Uuid, usize>, user: Option<Uuid>) {
    if let Some(user) = user {
        if let Some(count) = counts.get_mut(&user) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&user);
            }
        }
    }
}

impl Hub {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a session for `user`; refused past `max_sessions` sessions of that user.
    fn open(
        &self,
        user: Option<Uuid>,
        max_sessions: usize,
    ) -> Result<(Uuid, String, mpsc::UnboundedReceiver<Push>)> {
        let mut state = self.state();
        if let Some(user) = user {
            let open = state.sessions_per_user.entry(user).or_default();
            if *open >= max_sessions {
                return Err(Error::RateLimited(format!(
                    "this user has {open} live sessions open on this node, the most allowed \
                     (FORGE_LIVE_MAX_SESSIONS_PER_USER); close one first"
                )));
            }
            *open += 1;
        }
        let id = Uuid::new_v4();
        let secret = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
        let (events, receiver) = mpsc::unbounded_channel();
        state.sessions.insert(
            id,
            Session {
                secret: secret.clone(),
                user,
                events,
                subscriptions: HashMap::new(),
            },
        );
        Ok((id, secret, receiver))
    }

    /// Ends a session and every subscription in it.
    fn close(&self, session_id: Uuid) {
        let mut state = self.state();
        let Some(session) = state.sessions.remove(&session_id) else {
            return;
        };
        count_down(&mut state.sessions_per_user, session.user);
        for (subscription_id, (group, user)) in session.subscriptions {
            count_down(&mut state.subscriptions_per_user, user);
            leave(&mut state, &group, session_id, &subscription_id);
        }
    }

    /// Checks the session pair; the events sender of the session.
    fn session(&self, id: Uuid, secret: &str) -> Result<mpsc::UnboundedSender<Push>> {
        let state = self.state();
        match state.sessions.get(&id) {
            Some(session) if constant_time_eq(session.secret.as_bytes(), secret.as_bytes()) => {
                Ok(session.events.clone())
            }
            _ => Err(Error::NotFound(
                "no such live session on this node: open /_api/events again".into(),
            )),
        }
    }

    /// Removes a subscription; `true` when it existed.
    fn unsubscribe(&self, session_id: Uuid, subscription_id: &str) -> bool {
        let mut state = self.state();
        let Some(session) = state.sessions.get_mut(&session_id) else {
            return false;
        };
        let Some((group, user)) = session.subscriptions.remove(subscription_id) else {
            return false;
        };
        count_down(&mut state.subscriptions_per_user, user);
        leave(&mut state, &group, session_id, subscription_id);
        true
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
}

/// Adds a subscription and sends its first result. A query that fails on its first run is
/// not kept: the error is the answer.
pub(crate) async fn subscribe(shared: &Arc<Shared>, request: Subscribe) -> Result<()> {
    let hub = &shared.realtime;
    let events = hub.session(request.session_id, &request.session_secret)?;
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
            if let Some((old, old_user)) = session.subscriptions.remove(&subscription_id) {
                count_down(&mut state.subscriptions_per_user, old_user);
                leave(&mut state, &old, request.session_id, &subscription_id);
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
            Member { events, sent: None },
        );
        let Some(session) = state.sessions.get_mut(&request.session_id) else {
            leave(&mut state, &group, request.session_id, &subscription_id);
            return Err(Error::NotFound("the live session ended".into()));
        };
        session
            .subscriptions
            .insert(subscription_id.clone(), (group.clone(), user));
        if let Some(user) = user {
            *state.subscriptions_per_user.entry(user).or_default() += 1;
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
    subscription_id: &str,
) -> Result<bool> {
    shared.realtime.session(session_id, session_secret)?;
    Ok(shared.realtime.unsubscribe(session_id, subscription_id))
}

fn send_update(subscription_id: &Arc<str>, member: &mut Member, hash: Hash, data: &Arc<Value>) {
    if member.sent == Some(hash) {
        return;
    }
    member.sent = Some(hash);
    let _ = member.events.send(Push::Update {
        subscription_id: subscription_id.clone(),
        data: data.clone(),
    });
}

fn fan_out(group: &Group, hash: Hash, data: &Arc<Value>) {
    for ((_, subscription_id), member) in group.members().iter_mut() {
        send_update(subscription_id, member, hash, data);
    }
}

/// Runs the group's query as its subscribers' identity; the result and its hash.
async fn run(shared: &Arc<Shared>, group: &Group) -> Result<(Hash, Arc<Value>)> {
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
    let hash: Hash = Sha256::digest(serde_json::to_vec(&data)?).into();
    Ok((hash, Arc::new(data)))
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
            let wire = error.to_wire();
            for ((_, subscription_id), member) in group.members().iter_mut() {
                member.sent = None;
                let _ = member.events.send(Push::Error {
                    subscription_id: subscription_id.clone(),
                    error: wire.clone(),
                });
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
