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
        if let Some(token) = self.token.as_ref().and_then(|provider| provider()) {
            request = request.bearer_auth(token);
        }
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
