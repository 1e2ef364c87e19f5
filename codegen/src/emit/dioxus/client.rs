// The RPC client every generated function calls through. Written by hand and emitted as is
// after the module's header; the generated types, functions and hooks follow it.

/// Where the forge server is and how to authenticate with it.
///
/// Provide one to the component tree with
/// `use_context_provider(|| forge::Client::new("https://api.example.com"))`; the `use_…`
/// hooks find it with [`use_client`]. Cloning is cheap: clones share the token provider and
/// the HTTP connection pool.
#[derive(Clone)]
pub struct Client {
    base_url: String,
    /// Called before every request. `Rc`, not `Arc`: on the web everything runs on one
    /// thread, and a provider may then capture a Dioxus signal, which is not `Send`.
    token: Option<std::rc::Rc<dyn Fn() -> Option<String>>>,
    http: reqwest::Client,
    /// The live queries' connection, shared by every clone.
    live: std::rc::Rc<std::cell::RefCell<Live>>,
}

impl Client {
    /// A client for the server at `base_url` (its origin and path prefix, if any), sending
    /// no token.
    pub fn new(base_url: impl Into<String>) -> Self {
        let base_url: String = base_url.into();
        Client {
            base_url: base_url.trim_end_matches('/').to_owned(),
            token: None,
            http: reqwest::Client::new(),
            live: std::rc::Rc::default(),
        }
    }

    /// Sends `token` as `Authorization: Bearer` with every request.
    pub fn with_token(self, token: impl Into<String>) -> Self {
        let token: String = token.into();
        self.with_token_provider(move || Some(token.clone()))
    }

    /// Calls `provider` before every request; a token it returns is sent as
    /// `Authorization: Bearer`.
    pub fn with_token_provider(mut self, provider: impl Fn() -> Option<String> + 'static) -> Self {
        self.token = Some(std::rc::Rc::new(provider));
        self
    }

    /// Sends requests with `http` (its default headers, timeouts, TLS settings).
    pub fn with_http_client(mut self, http: reqwest::Client) -> Self {
        self.http = http;
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Calls the query or mutation `name` with `args`, which serialises to an object of its
    /// parameters by name.
    pub async fn call<A, T>(&self, name: &str, args: &A) -> Result<T, ForgeError>
    where
        A: serde::Serialize + ?Sized,
        T: serde::de::DeserializeOwned,
    {
        #[derive(serde::Serialize)]
        struct Envelope<'a, A: ?Sized> {
            args: &'a A,
        }
        let body = serde_json::to_vec(&Envelope { args }).map_err(|e| {
            ForgeError::client(
                ForgeError::VALIDATION_ERROR,
                format!("{name}: the arguments cannot be serialised: {e}"),
                None,
            )
        })?;
        let mut request = self
            .http
            .post(format!("{}/_api/rpc/{name}", self.base_url))
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(body);
        request = self.authorize(request);
        let network = |e: reqwest::Error, status: Option<u16>| {
            ForgeError::client(ForgeError::NETWORK_ERROR, format!("{name}: {e}"), status)
        };
        let response = request.send().await.map_err(|e| network(e, None))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| network(e, Some(status)))?;
        decode(name, &text, status)
    }

    fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self.token.as_ref().and_then(|provider| provider()) {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Subscribes to the query `name` with `args`: `on_event` receives its result now and
    /// again whenever it changes, or an error. Dropping the returned handle unsubscribes.
    ///
    /// Every subscription of a client (and its clones) shares one server-sent-events stream,
    /// opened with the first and closed after the last; when it drops, it is reopened with
    /// backoff (0.5 s doubling to 30 s) and every subscription is made again. Must be called
    /// inside a Dioxus runtime, which drives the stream.
    pub fn subscribe<A, T>(
        &self,
        name: &str,
        args: &A,
        on_event: impl Fn(Result<T, ForgeError>) + 'static,
    ) -> LiveSubscription
    where
        A: serde::Serialize + ?Sized,
        T: serde::de::DeserializeOwned,
    {
        let args = match serde_json::to_value(args) {
            Ok(args) => args,
            Err(e) => {
                on_event(Err(ForgeError::client(
                    ForgeError::VALIDATION_ERROR,
                    format!("{name}: the arguments cannot be serialised: {e}"),
                    None,
                )));
                return LiveSubscription {
                    client: None,
                    id: String::new(),
                };
            }
        };
        let function = name.to_owned();
        let on_event = move |result: Result<serde_json::Value, ForgeError>| {
            on_event(result.and_then(|data| {
                serde_json::from_value(data).map_err(|e| {
                    ForgeError::client(
                        ForgeError::INTERNAL_ERROR,
                        format!("{function}: the result does not match the generated types ({e}); regenerate the client"),
                        None,
                    )
                })
            }))
        };
        let (id, session, idle) = {
            let mut live = self.live.borrow_mut();
            live.last_id += 1;
            let id = live.last_id.to_string();
            live.subscriptions.insert(
                id.clone(),
                LiveEntry {
                    function: name.to_owned(),
                    args,
                    on_event: std::rc::Rc::new(on_event),
                },
            );
            (id, live.session.clone(), live.task.is_none())
        };
        if idle {
            let task = spawn_live(self.clone().run_live());
            self.live.borrow_mut().task = task;
        } else if let Some(session) = session {
            spawn_live(self.clone().register(session, id.clone()));
        }
        LiveSubscription {
            client: Some(self.clone()),
            id,
        }
    }

    /// Keeps the event stream open, reopening it after the backoff whenever it ends, until
    /// the last subscription cancels this task.
    async fn run_live(self) {
        let mut retry = FIRST_RETRY;
        loop {
            let ended = self.read_events(&mut retry).await;
            self.live.borrow_mut().session = None;
            // A network failure is the normal reason to reconnect; anything else (the server
            // refused the stream) is also every subscriber's business.
            if let Err(error) = ended {
                if error.code != ForgeError::NETWORK_ERROR {
                    let subscribers: Vec<_> = self
                        .live
                        .borrow()
                        .subscriptions
                        .values()
                        .map(|entry| entry.on_event.clone())
                        .collect();
                    for on_event in subscribers {
                        on_event(Err(error.clone()));
                    }
                }
            }
            futures_timer::Delay::new(retry).await;
            retry = (retry * 2).min(LAST_RETRY);
        }
    }

    /// Reads `GET /_api/events` until it ends: `Ok` when the server closed it.
    async fn read_events(&self, retry: &mut std::time::Duration) -> Result<(), ForgeError> {
        let network = |e: reqwest::Error, status: Option<u16>| {
            ForgeError::client(ForgeError::NETWORK_ERROR, format!("events: {e}"), status)
        };
        let request = self
            .http
            .get(format!("{}/_api/events", self.base_url))
            .header("accept", "text/event-stream");
        let response = self
            .authorize(request)
            .send()
            .await
            .map_err(|e| network(e, None))?;
        let status = response.status().as_u16();
        if !response.status().is_success() {
            let text = response
                .text()
                .await
                .map_err(|e| network(e, Some(status)))?;
            decode::<serde_json::Value>("events", &text, status)?;
            return Err(ForgeError::client(
                ForgeError::NETWORK_ERROR,
                "events: no stream".to_owned(),
                Some(status),
            ));
        }
        let mut stream = std::pin::pin!(response.bytes_stream());
        let mut buffer = Vec::new();
        while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
            let chunk = chunk.map_err(|e| network(e, Some(status)))?;
            // Lines may end in `\r\n`; JSON data never holds a raw `\r`.
            buffer.extend(chunk.iter().filter(|&&byte| byte != b'\r'));
            while let Some(end) = buffer.windows(2).position(|pair| pair == b"\n\n") {
                let frame: Vec<u8> = buffer.drain(..end + 2).collect();
                self.dispatch(&String::from_utf8_lossy(&frame[..end]), retry);
            }
        }
        Ok(())
    }

    /// One server-sent event: `event:` and `data:` lines; comments are keep-alives.
    fn dispatch(&self, frame: &str, retry: &mut std::time::Duration) {
        let mut event = "message";
        let mut data = Vec::new();
        for line in frame.lines() {
            if let Some(name) = line.strip_prefix("event:") {
                event = name.trim();
            } else if let Some(value) = line.strip_prefix("data:") {
                data.push(value.strip_prefix(' ').unwrap_or(value));
            }
        }
        let Ok(serde_json::Value::Object(mut body)) = serde_json::from_str(&data.join("\n")) else {
            return;
        };
        let mut text = |key: &str| match body.remove(key) {
            Some(serde_json::Value::String(text)) => Some(text),
            _ => None,
        };
        if event == "connected" {
            if let (Some(id), Some(secret)) = (text("session_id"), text("session_secret")) {
                let session = Session { id, secret };
                *retry = FIRST_RETRY;
                let ids: Vec<String> = {
                    let mut live = self.live.borrow_mut();
                    live.session = Some(session.clone());
                    live.subscriptions.keys().cloned().collect()
                };
                for id in ids {
                    spawn_live(self.clone().register(session.clone(), id));
                }
            }
            return;
        }
        let Some(id) = text("subscription_id") else {
            return;
        };
        let Some((function, on_event)) = self
            .live
            .borrow()
            .subscriptions
            .get(&id)
            .map(|entry| (entry.function.clone(), entry.on_event.clone()))
        else {
            return;
        };
        match event {
            "update" => on_event(Ok(body.remove("data").unwrap_or_default())),
            "error" => {
                let error = body.remove("error").unwrap_or_default();
                let text = |key: &str| error.get(key).and_then(serde_json::Value::as_str);
                on_event(Err(ForgeError {
                    code: text("code")
                        .unwrap_or(ForgeError::INTERNAL_ERROR)
                        .to_owned(),
                    message: text("message")
                        .map_or_else(|| format!("{function} failed"), str::to_owned),
                    details: error.get("details").cloned().unwrap_or_default(),
                    request_id: None,
                    status: None,
                }))
            }
            _ => {}
        }
    }

    /// Makes one subscription on `session`; its first result arrives as an event.
    async fn register(self, session: Session, id: String) {
        let Some(body) = self.live.borrow().subscriptions.get(&id).map(|entry| {
            serde_json::json!({
                "subscription_id": id,
                "function": entry.function,
                "args": entry.args,
            })
        }) else {
            return;
        };
        let result = self.post_live("subscribe", &session, body).await;
        let current = self.live.borrow().session.as_ref() == Some(&session);
        match result {
            Ok(()) => {
                // Unsubscribed while the request was in flight: the server kept it.
                if current && !self.live.borrow().subscriptions.contains_key(&id) {
                    let body = serde_json::json!({ "subscription_id": id });
                    let _ = self.post_live("unsubscribe", &session, body).await;
                }
            }
            Err(error) if current => {
                let mut live = self.live.borrow_mut();
                // The server refused it (bad arguments, no access): trying again cannot
                // help. A network failure is retried with the next connection.
                let on_event = if error.code == ForgeError::NETWORK_ERROR {
                    live.subscriptions
                        .get(&id)
                        .map(|entry| entry.on_event.clone())
                } else {
                    live.subscriptions.remove(&id).map(|entry| entry.on_event)
                };
                drop(live);
                if let Some(on_event) = on_event {
                    on_event(Err(error));
                }
            }
            Err(_) => {}
        }
    }

    /// `POST /_api/<path>` with the session's pair added to `body`.
    async fn post_live(
        &self,
        path: &str,
        session: &Session,
        mut body: serde_json::Value,
    ) -> Result<(), ForgeError> {
        body["session_id"] = session.id.clone().into();
        body["session_secret"] = session.secret.clone().into();
        let request = self
            .http
            .post(format!("{}/_api/{path}", self.base_url))
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(body.to_string());
        let network = |e: reqwest::Error, status: Option<u16>| {
            ForgeError::client(ForgeError::NETWORK_ERROR, format!("{path}: {e}"), status)
        };
        let response = self
            .authorize(request)
            .send()
            .await
            .map_err(|e| network(e, None))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| network(e, Some(status)))?;
        decode::<serde_json::Value>(path, &text, status).map(drop)
    }
}

/// Reconnection backoff: 0.5 s doubling to 30 s, back to the start once connected.
const FIRST_RETRY: std::time::Duration = std::time::Duration::from_millis(500);
const LAST_RETRY: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs `task` on the Dioxus runtime, outliving the component that started it. `None` when
/// no runtime is current (the app is shutting down): there is nothing left to update.
fn spawn_live(task: impl std::future::Future<Output = ()> + 'static) -> Option<dioxus::core::Task> {
    dioxus::core::Runtime::try_current().map(|_| dioxus::core::spawn_forever(task))
}

/// The state of a client's live queries.
#[derive(Default)]
struct Live {
    subscriptions: std::collections::HashMap<String, LiveEntry>,
    /// Set while the event stream is open and the server has named its session.
    session: Option<Session>,
    /// The task reading the event stream, while there are subscriptions.
    task: Option<dioxus::core::Task>,
    last_id: u64,
}

struct LiveEntry {
    function: String,
    args: serde_json::Value,
    on_event: std::rc::Rc<dyn Fn(Result<serde_json::Value, ForgeError>)>,
}

#[derive(Clone, PartialEq)]
struct Session {
    id: String,
    secret: String,
}

/// A live query's subscription (see [`Client::subscribe`]); dropping it unsubscribes.
#[must_use = "dropping the subscription unsubscribes"]
pub struct LiveSubscription {
    /// `None` when the subscription was never made.
    client: Option<Client>,
    id: String,
}

impl Drop for LiveSubscription {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        let mut live = client.live.borrow_mut();
        if live.subscriptions.remove(&self.id).is_none() {
            return;
        }
        if live.subscriptions.is_empty() {
            // Closing the stream ends the session and, with it, its subscriptions.
            live.session = None;
            let task = live.task.take();
            drop(live);
            if let Some(task) = task.filter(|_| dioxus::core::Runtime::try_current().is_some()) {
                task.cancel();
            }
        } else if let Some(session) = live.session.clone() {
            drop(live);
            let body = serde_json::json!({ "subscription_id": self.id });
            spawn_live(async move {
                let _ = client.post_live("unsubscribe", &session, body).await;
            });
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token stays out of logs.
        f.debug_struct("Client")
            .field("base_url", &self.base_url)
            .field("token", &self.token.as_ref().map(|_| "…"))
            .finish_non_exhaustive()
    }
}

/// The [`Client`] provided to this component's tree; panics, as `use_context` does, when no
/// ancestor provided one.
pub fn use_client() -> Client {
    dioxus::prelude::use_context::<Client>()
}

/// A failed call: an error the server reported, or a request that never got an answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ForgeError {
    /// `VALIDATION_ERROR`, `UNAUTHORIZED`, … (see the constants), or `NETWORK_ERROR` when no
    /// response arrived.
    pub code: String,
    pub message: String,
    /// What the server attached to the error (which fields failed validation, …), as sent;
    /// `Null` when nothing.
    pub details: serde_json::Value,
    /// The server's id for the request, for its logs; `None` when no response named one.
    pub request_id: Option<String>,
    /// The HTTP status; `None` when no response arrived.
    pub status: Option<u16>,
}

impl ForgeError {
    pub const VALIDATION_ERROR: &'static str = "VALIDATION_ERROR";
    pub const UNAUTHORIZED: &'static str = "UNAUTHORIZED";
    pub const FORBIDDEN: &'static str = "FORBIDDEN";
    pub const NOT_FOUND: &'static str = "NOT_FOUND";
    pub const RATE_LIMITED: &'static str = "RATE_LIMITED";
    pub const INTERNAL_ERROR: &'static str = "INTERNAL_ERROR";
    pub const TIMEOUT: &'static str = "TIMEOUT";
    /// Raised by this client: the request failed before a response arrived.
    pub const NETWORK_ERROR: &'static str = "NETWORK_ERROR";

    /// An error raised on this side of the wire.
    fn client(code: &str, message: String, status: Option<u16>) -> Self {
        ForgeError {
            code: code.to_owned(),
            message,
            details: serde_json::Value::Null,
            request_id: None,
            status,
        }
    }
}

impl std::fmt::Display for ForgeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ForgeError {}

/// Reads the server's envelope: the result, or the error it describes.
fn decode<T: serde::de::DeserializeOwned>(
    name: &str,
    text: &str,
    status: u16,
) -> Result<T, ForgeError> {
    let internal = |message: String, request_id: Option<String>| ForgeError {
        request_id,
        ..ForgeError::client(ForgeError::INTERNAL_ERROR, message, Some(status))
    };
    let excerpt: String = text.chars().take(200).collect();
    let body: serde_json::Value = serde_json::from_str(text).map_err(|_| {
        internal(
            format!("{name}: the server answered {status} with a body that is not JSON: {excerpt}"),
            None,
        )
    })?;
    let request_id = body
        .get("request_id")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned);
    match (body.get("success"), body.get("error")) {
        (Some(serde_json::Value::Bool(true)), _) => {
            let data = body.get("data").cloned().unwrap_or_default();
            serde_json::from_value(data).map_err(|e| {
                internal(
                    format!("{name}: the result does not match the generated types ({e}); regenerate the client"),
                    request_id,
                )
            })
        }
        (Some(serde_json::Value::Bool(false)), Some(error)) if error.is_object() => {
            let text = |key: &str| error.get(key).and_then(serde_json::Value::as_str);
            Err(ForgeError {
                code: text("code")
                    .unwrap_or(ForgeError::INTERNAL_ERROR)
                    .to_owned(),
                message: text("message").map_or_else(|| format!("{name} failed"), str::to_owned),
                details: error.get("details").cloned().unwrap_or_default(),
                request_id,
                status: Some(status),
            })
        }
        _ => Err(internal(
            format!("{name}: the server answered {status} with an unexpected body: {excerpt}"),
            request_id,
        )),
    }
}
