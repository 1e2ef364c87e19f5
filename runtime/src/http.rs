//! Outbound HTTP for handlers: `ctx.http()` on every context, a [`Client`] that will not
//! reach the node's own network.
//!
//! A handler that fetches a URL a caller supplied must not become a way into the machines
//! next to the node (server-side request forgery). So the client refuses every address
//! that is not on the public internet (see [`is_public`]): literal IPs in the URL before
//! anything is sent; names when they resolve, through a resolver of its own whose checked
//! addresses are the ones connected to (a name cannot resolve to a public address for the
//! check and a private one for the connection); and every redirect's target the same way.
//! No proxy from the environment is used, since a proxy would resolve names itself.
//!
//! `FORGE_HTTP_ALLOW` (comma-separated host names or CIDRs) lets named internal services
//! through: a listed host name is resolved and connected to whatever its addresses, and an
//! address in a listed network is allowed, whatever name led to it.
//!
//! Defaults: 10 s to connect, 30 s for a whole request (override per request with
//! [`RequestBuilder::timeout`]), at most 10 redirects.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde::Serialize;

use crate::context::{
    CronContext, DaemonContext, JobContext, McpToolContext, MutationContext, QueryContext,
    WebhookContext, WorkflowContext,
};

/// A response, as reqwest gives it (`.status()`, `.json::<T>().await?`, `.text().await?`).
pub use reqwest::Response;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_REDIRECTS: usize = 10;

/// Why an outbound request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request would have reached `addr`, an address outside the public internet
    /// (loopback, private, link-local, …), for `host`. Nothing was sent there.
    #[error(
        "refused to connect to {host} ({addr}): not a public internet address; list the host or its network in FORGE_HTTP_ALLOW to allow it"
    )]
    Blocked { host: String, addr: IpAddr },
    /// The URL or the request could not be built (no host, an unsupported scheme, …).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The request failed (connection, timeout, TLS, a body that is not the expected JSON).
    #[error(transparent)]
    Request(reqwest::Error),
}

impl From<reqwest::Error> for Error {
    /// A refusal made inside reqwest (by the resolver or the redirect policy) comes back
    /// as the [`Error::Blocked`] it was.
    fn from(error: reqwest::Error) -> Error {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
        while let Some(cause) = source {
            if let Some(Error::Blocked { host, addr }) = cause.downcast_ref::<Error>() {
                return Error::Blocked {
                    host: host.clone(),
                    addr: *addr,
                };
            }
            source = cause.source();
        }
        Error::Request(error)
    }
}

/// Outbound failures are the handler's own business: the caller sees `INTERNAL_ERROR`,
/// the log the cause (which may name internal hosts).
impl From<Error> for crate::Error {
    fn from(error: Error) -> crate::Error {
        crate::Error::Internal(format!("outbound HTTP: {error}"))
    }
}

impl From<reqwest::Error> for crate::Error {
    fn from(error: reqwest::Error) -> crate::Error {
        Error::from(error).into()
    }
}

/// What `FORGE_HTTP_ALLOW` lets through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allow {
    /// Host names (lowercase), connected to whatever their addresses.
    pub hosts: Vec<String>,
    /// Networks whose addresses are allowed.
    pub nets: Vec<IpNet>,
}

impl Allow {
    /// Parses `FORGE_HTTP_ALLOW`: comma-separated host names, addresses and CIDRs. On error,
    /// the entry that is wrong.
    pub fn parse(text: &str) -> Result<Allow, String> {
        let mut allow = Allow::default();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if let Ok(net) = entry.parse::<IpNet>() {
                allow.nets.push(net);
            } else if let Ok(ip) = entry.parse::<IpAddr>() {
                allow.nets.push(IpNet::from(ip));
            } else if url::Host::parse(entry).is_ok_and(|h| matches!(h, url::Host::Domain(_))) {
                allow.hosts.push(entry.to_ascii_lowercase());
            } else {
                return Err(entry.to_owned());
            }
        }
        Ok(allow)
    }

    fn host(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    /// Whether connecting to `addr` for `host` is allowed.
    fn check(&self, host: &str, addr: IpAddr) -> Result<(), Error> {
        if is_public(addr) || self.host(host) || self.nets.iter().any(|n| n.contains(&addr)) {
            return Ok(());
        }
        Err(Error::Blocked {
            host: host.to_owned(),
            addr,
        })
    }

    /// Checks a URL's host when it is a literal address (names are checked as they resolve).
    fn check_url(&self, url: &reqwest::Url) -> Result<(), Error> {
        let addr = match url.host() {
            None => return Err(Error::Invalid(format!("`{url}` has no host"))),
            Some(url::Host::Domain(_)) => return Ok(()),
            Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        };
        self.check(url.host_str().unwrap_or_default(), addr)
    }
}

/// An HTTP client that refuses non-public addresses (see the module docs). Cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: reqwest::Client,
    allow: Arc<Allow>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("allow", &self.allow)
            .finish()
    }
}

impl Client {
    /// A client allowing what `allow` lists, resolving names with the system's resolver.
    pub fn new(allow: Allow) -> Result<Client, Error> {
        ClientBuilder::new(allow).build()
    }

    /// A builder, for pinning names to addresses ([`ClientBuilder::resolve`]).
    pub fn builder(allow: Allow) -> ClientBuilder {
        ClientBuilder::new(allow)
    }

    pub fn get(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request(reqwest::Method::GET, url)
    }

    pub fn post(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request(reqwest::Method::POST, url)
    }

    pub fn put(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request(reqwest::Method::PUT, url)
    }

    pub fn patch(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request(reqwest::Method::PATCH, url)
    }

    pub fn delete(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request(reqwest::Method::DELETE, url)
    }

    pub fn request(&self, method: reqwest::Method, url: impl AsRef<str>) -> RequestBuilder {
        RequestBuilder {
            inner: self.inner.request(method, url.as_ref()),
            allow: self.allow.clone(),
        }
    }
}

/// Builds a [`Client`].
pub struct ClientBuilder {
    allow: Allow,
    pinned: Vec<(String, SocketAddr)>,
}

impl ClientBuilder {
    fn new(allow: Allow) -> ClientBuilder {
        ClientBuilder {
            allow,
            pinned: Vec::new(),
        }
    }

    /// Resolves `host` to `addr` instead of asking DNS. The address is checked like any
    /// resolved one: pinning a name to a private address does not get it through.
    pub fn resolve(mut self, host: &str, addr: SocketAddr) -> ClientBuilder {
        self.pinned.push((host.to_ascii_lowercase(), addr));
        self
    }

    pub fn build(self) -> Result<Client, Error> {
        let allow = Arc::new(self.allow);
        let resolver = Arc::new(CheckedResolver {
            allow: allow.clone(),
            pinned: self.pinned,
        });
        let redirects = allow.clone();
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                let message = format!("more than {MAX_REDIRECTS} redirects");
                return attempt.error(Error::Invalid(message));
            }
            match redirects.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(error) => attempt.error(error),
            }
        });
        let inner = reqwest::Client::builder()
            .no_proxy()
            .dns_resolver(resolver)
            .redirect(policy)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| Error::Invalid(format!("cannot build the HTTP client: {e}")))?;
        Ok(Client { inner, allow })
    }
}

/// A request being built: `.header(k, v)`, `.json(&v)`, `.body(…)`, `.send().await?`.
pub struct RequestBuilder {
    inner: reqwest::RequestBuilder,
    allow: Arc<Allow>,
}

impl RequestBuilder {
    pub fn header(self, name: &str, value: &str) -> RequestBuilder {
        self.map(|inner| inner.header(name, value))
    }

    pub fn bearer_auth(self, token: impl fmt::Display) -> RequestBuilder {
        self.map(|inner| inner.bearer_auth(token))
    }

    pub fn json<T: Serialize + ?Sized>(self, body: &T) -> RequestBuilder {
        self.map(|inner| inner.json(body))
    }

    pub fn body(self, body: impl Into<reqwest::Body>) -> RequestBuilder {
        self.map(|inner| inner.body(body))
    }

    pub fn query<T: Serialize + ?Sized>(self, query: &T) -> RequestBuilder {
        self.map(|inner| inner.query(query))
    }

    /// The whole request's timeout, instead of the default 30 s.
    pub fn timeout(self, timeout: Duration) -> RequestBuilder {
        self.map(|inner| inner.timeout(timeout))
    }

    fn map(self, f: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder) -> Self {
        RequestBuilder {
            inner: f(self.inner),
            allow: self.allow,
        }
    }

    /// Sends the request; [`Error::Blocked`] when it would reach a non-public address.
    pub async fn send(self) -> Result<Response, Error> {
        let (client, request) = self.inner.build_split();
        let request = request.map_err(|e| Error::Invalid(e.to_string()))?;
        if !matches!(request.url().scheme(), "http" | "https") {
            let scheme = request.url().scheme().to_owned();
            return Err(Error::Invalid(format!(
                "unsupported scheme `{scheme}`: use http or https"
            )));
        }
        self.allow.check_url(request.url())?;
        Ok(client.execute(request).await?)
    }
}

/// Resolves names and refuses them when any address is not allowed; reqwest connects to
/// exactly the addresses it returns.
struct CheckedResolver {
    allow: Arc<Allow>,
    pinned: Vec<(String, SocketAddr)>,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_ascii_lowercase();
        let allow = self.allow.clone();
        let pinned: Vec<SocketAddr> = self
            .pinned
            .iter()
            .filter(|(pinned, _)| *pinned == host)
            .map(|(_, addr)| *addr)
            .collect();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = if pinned.is_empty() {
                // The port is replaced by the connector; lookup_host needs one.
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect()
            } else {
                pinned
            };
            for addr in &addrs {
                allow.check(&host, addr.ip())?;
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// Whether `ip` is on the public internet: not loopback, private (RFC 1918), shared
/// (CGNAT, 100.64/10), link-local, unique-local, unspecified, broadcast, multicast,
/// documentation, benchmarking, reserved, and no IPv6 address that embeds or translates to
/// an IPv4 one (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo), whatever it embeds.
pub fn is_public(ip: IpAddr) -> bool {
    !NON_PUBLIC.iter().any(|net| net.contains(&ip))
}

static NON_PUBLIC: LazyLock<Vec<IpNet>> = LazyLock::new(|| {
    [
        // IPv4 (RFC 6890 and successors).
        "0.0.0.0/8",       // "this network", unspecified
        "10.0.0.0/8",      // private
        "100.64.0.0/10",   // shared address space (CGNAT)
        "127.0.0.0/8",     // loopback
        "169.254.0.0/16",  // link-local (cloud metadata services live here)
        "172.16.0.0/12",   // private
        "192.0.0.0/24",    // IETF protocol assignments
        "192.0.2.0/24",    // documentation (TEST-NET-1)
        "192.88.99.0/24",  // 6to4 relay anycast
        "192.168.0.0/16",  // private
        "198.18.0.0/15",   // benchmarking
        "198.51.100.0/24", // documentation (TEST-NET-2)
        "203.0.113.0/24",  // documentation (TEST-NET-3)
        "224.0.0.0/4",     // multicast
        "240.0.0.0/4",     // reserved, and 255.255.255.255 broadcast
        // IPv6.
        "::/128",         // unspecified
        "::1/128",        // loopback
        "::/96",          // IPv4-compatible (deprecated)
        "::ffff:0:0/96",  // IPv4-mapped
        "64:ff9b::/96",   // NAT64
        "64:ff9b:1::/48", // local-use NAT64
        "100::/64",       // discard-only
        "2001::/23",      // IETF protocol assignments (Teredo 2001::/32 among them)
        "2001:db8::/32",  // documentation
        "2002::/16",      // 6to4
        "3fff::/20",      // documentation
        "fc00::/7",       // unique local
        "fe80::/10",      // link-local
        "fec0::/10",      // site-local (deprecated)
        "ff00::/8",       // multicast
    ]
    .iter()
    .map(|net| net.parse().expect("the list holds valid networks"))
    .collect()
});

/// Every context's `http()`, in one place (ARCHITECTURE.md, "Outbound HTTP").
macro_rules! http_method {
    ($($context:ident),* $(,)?) => {$(
        impl $context {
            /// The node's outbound HTTP client, which refuses non-public addresses unless
            /// `FORGE_HTTP_ALLOW` lists them: `ctx.http().get(url).send().await?`.
            pub fn http(&self) -> &Client {
                &self.base.shared.http
            }
        }
    )*};
}

http_method!(
    QueryContext,
    MutationContext,
    JobContext,
    CronContext,
    WorkflowContext,
    DaemonContext,
    WebhookContext,
    McpToolContext,
);

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn special_ranges_are_not_public() {
        for blocked in [
            "127.0.0.1",
            "10.1.2.3",
            "172.31.255.255",
            "192.168.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "198.51.100.1",
            "203.0.113.1",
            "198.18.0.1",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:8.8.8.8",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "2002:7f00:1::",
            "2001:0:4136:e378::1",
            "2001:db8::1",
            "fd00::1",
            "fe80::1",
            "ff02::1",
        ] {
            assert!(!is_public(ip(blocked)), "{blocked}");
        }
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.1",
            "172.32.0.1",
            "2606:4700:4700::1111",
        ] {
            assert!(is_public(ip(public)), "{public}");
        }
    }

    #[test]
    fn the_allow_list_parses_hosts_addresses_and_networks() {
        let allow = Allow::parse("Billing.Internal, 10.0.0.0/8, 192.168.1.5,").unwrap();
        assert_eq!(allow.hosts, ["billing.internal"]);
        assert_eq!(allow.nets.len(), 2);
        assert!(allow.check("billing.internal", ip("10.9.9.9")).is_ok());
        assert!(allow.check("BILLING.internal", ip("127.0.0.1")).is_ok());
        assert!(allow.check("other", ip("10.9.9.9")).is_ok());
        assert!(allow.check("other", ip("192.168.1.5")).is_ok());
        assert!(matches!(
            allow.check("other", ip("192.168.1.6")),
            Err(Error::Blocked { .. })
        ));
        assert_eq!(
            Allow::parse("ok.test, not a host"),
            Err("not a host".into())
        );
    }

    #[test]
    fn ipv4_addresses_are_unaffected_by_the_ipv6_lists() {
        // `::/96` must not swallow IPv4 addresses through ipnet's family handling.
        assert!(is_public(IpAddr::V4(Ipv4Addr::new(9, 9, 9, 9))));
        assert!(!is_public(IpAddr::V6(Ipv6Addr::UNSPECIFIED)));
    }
}
