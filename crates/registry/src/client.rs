//! The HTTP side of the distribution API: one [`Client`] per daemon (connection pools,
//! the token cache, which hosts are insecure) and a [`Repository`] per pull or push, which
//! knows its registry's scheme and how to authorize against it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{header, Method, RequestBuilder, Response, StatusCode, Url};

use crate::auth::{parse_challenge, Challenge, Credentials, TokenResponse};
use crate::error::{Error, Result};
use crate::hosts::Insecure;
use crate::mirrors::{Endpoint, Need, RegistryHosts, Scheme};

/// Tokens without an `expires_in` live this long (the token spec's default).
const DEFAULT_TOKEN_LIFE: Duration = Duration::from_secs(60);
const USER_AGENT: &str = concat!("berth/", env!("CARGO_PKG_VERSION"));

/// What a repository session may do; it decides the token scope asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    Pull,
    /// Push, and pull from the other repositories blobs may be mounted from.
    Push {
        mount_from: Vec<String>,
    },
}

#[derive(Clone)]
struct Token {
    value: String,
    expires: Instant,
}

/// Shared by every pull and push of a daemon.
pub struct Client {
    verified: reqwest::Client,
    unverified: reqwest::Client,
    insecure: Insecure,
    /// Per-registry mirrors and endpoints (hosts.toml files).
    hosts: RegistryHosts,
    /// Connections trusting extra CAs, by (CA files, skip_verify) of the endpoints asking.
    with_ca: HashMap<(Vec<PathBuf>, bool), reqwest::Client>,
    tokens: Mutex<HashMap<String, Token>>,
}

fn builder(accept_invalid_certs: bool) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(120))
        .danger_accept_invalid_certs(accept_invalid_certs)
}

fn build_http(accept_invalid_certs: bool) -> Result<reqwest::Client> {
    builder(accept_invalid_certs)
        .build()
        .map_err(|e| Error::http("client", &e))
}

/// A connection that also trusts the certificates in the `ca` files (PEM bundles).
fn build_http_with_ca(ca: &[PathBuf], accept_invalid_certs: bool) -> Result<reqwest::Client> {
    let mut b = builder(accept_invalid_certs);
    for path in ca {
        let invalid =
            |why: String| Error::InvalidArgument(format!("CA file {}: {why}", path.display()));
        let pem = std::fs::read(path).map_err(|e| invalid(e.to_string()))?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| invalid(e.to_string()))?;
        if certs.is_empty() {
            return Err(invalid("no PEM certificate in it".into()));
        }
        for cert in certs {
            b = b.add_root_certificate(cert);
        }
    }
    b.build().map_err(|e| Error::http("client", &e))
}

impl Client {
    pub fn new(insecure_registries: &[String]) -> Result<Client> {
        Ok(Client {
            verified: build_http(false)?,
            unverified: build_http(true)?,
            insecure: Insecure::new(insecure_registries),
            hosts: RegistryHosts::default(),
            with_ca: HashMap::new(),
            tokens: Mutex::new(HashMap::new()),
        })
    }

    /// Reach registries through `hosts` (mirrors, endpoints, CAs): every CA file is read
    /// now, so a bad one stops the daemon's start rather than a later pull.
    pub fn with_registry_hosts(mut self, hosts: RegistryHosts) -> Result<Client> {
        for e in hosts.all().filter(|e| !e.ca.is_empty()) {
            if let std::collections::hash_map::Entry::Vacant(slot) =
                self.with_ca.entry((e.ca.clone(), e.skip_verify))
            {
                slot.insert(build_http_with_ca(&e.ca, e.skip_verify)?);
            }
        }
        self.hosts = hosts;
        Ok(self)
    }

    /// Where to send `need` for the registry `domain`, in the order to try them.
    pub fn endpoints(&self, domain: &str, need: Need) -> Vec<Endpoint> {
        self.hosts.endpoints(domain, need)
    }

    /// The connection for `e`: its own CAs, unverified TLS when it says `skip_verify` or
    /// its host is an insecure registry, the system's roots otherwise.
    fn http_for_endpoint(&self, e: &Endpoint) -> reqwest::Client {
        if let Some(c) = self.with_ca.get(&(e.ca.clone(), e.skip_verify)) {
            return c.clone();
        }
        if e.skip_verify || self.insecure.allows(&e.host) {
            self.unverified.clone()
        } else {
            self.verified.clone()
        }
    }

    /// Whether `domain` may be reached over plain HTTP or unverified TLS.
    pub fn is_insecure(&self, domain: &str) -> bool {
        self.insecure.allows(domain)
    }

    /// Open a session on `path` of the registry `domain` at the first of its endpoints that
    /// answers (mirrors first, for a pull; see [`Client::endpoints`]).
    pub async fn repository(
        self: &Arc<Self>,
        domain: &str,
        path: &str,
        credentials: Credentials,
        access: Access,
    ) -> Result<Repository> {
        let need = match access {
            Access::Pull => Need::Resolve,
            Access::Push { .. } => Need::Push,
        };
        let mut last = None;
        for endpoint in self.endpoints(domain, need) {
            match self
                .open(&endpoint, path, credentials.clone(), access.clone())
                .await
            {
                Ok(repo) => return Ok(repo),
                Err(e) => {
                    tracing::warn!(registry = domain, endpoint = %endpoint.origin(), "{e}");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| no_endpoint(domain, need)))
    }

    /// Open a session on `path` at `endpoint`: find its scheme, learn how it
    /// authenticates, and fetch a token for `access` if it wants one.
    pub async fn open(
        self: &Arc<Self>,
        endpoint: &Endpoint,
        path: &str,
        credentials: Credentials,
        access: Access,
    ) -> Result<Repository> {
        let http = self.http_for_endpoint(endpoint);
        let (origin, challenge) = self.ping(endpoint, &http).await?;
        let repo = Repository {
            client: self.clone(),
            origin,
            root: endpoint.root.clone(),
            host: endpoint.host.clone(),
            headers: endpoint.headers.clone(),
            // Only pulls: a push builds query strings of its own on its URLs.
            ns: endpoint
                .ns
                .as_deref()
                .filter(|_| access == Access::Pull)
                .map(|ns| form_urlencoded::byte_serialize(ns.as_bytes()).collect()),
            http,
            path: path.to_string(),
            credentials,
            challenge,
            access,
            token: Mutex::new(None),
        };
        repo.authorize(false).await?;
        Ok(repo)
    }

    /// Check `credentials` against the registry `domain` (what `docker login` asks): at
    /// its server, never at a mirror.
    pub async fn login(self: &Arc<Self>, domain: &str, credentials: &Credentials) -> Result<()> {
        let endpoint = self
            .endpoints(domain, Need::Pull)
            .into_iter()
            .find(|e| !e.mirror)
            .unwrap_or_else(|| Endpoint::implicit(domain));
        let http = self.http_for_endpoint(&endpoint);
        let (origin, challenge) = self.ping(&endpoint, &http).await?;
        let url = format!("{origin}{}/", endpoint.root);
        let host = endpoint.host;
        match challenge {
            None => Ok(()),
            Some(Challenge::Basic) => {
                let resp = with_headers(http.get(&url), &endpoint.headers)
                    .basic_auth(&credentials.username, Some(&credentials.password))
                    .send()
                    .await
                    .map_err(|e| Error::http(&url, &e))?;
                if resp.status().is_success() {
                    Ok(())
                } else {
                    Err(Error::Unauthorized(format!(
                        "login attempt to {url} failed with status: {}",
                        resp.status()
                    )))
                }
            }
            Some(Challenge::Bearer { realm, service }) => self
                .fetch_token(&http, &host, &realm, service.as_deref(), &[], credentials)
                .await
                .map(|_| ()),
        }
    }

    /// `GET /v2/` (the endpoint's API root): which scheme answers (the endpoint's; for an
    /// HTTPS one on an insecure registry whose HTTPS fails, HTTP) and the challenge a 401
    /// carries. Returns `scheme://host`.
    async fn ping(
        &self,
        e: &Endpoint,
        http: &reqwest::Client,
    ) -> Result<(String, Option<Challenge>)> {
        let origin = e.origin();
        match self.ping_at(e, http, &origin).await {
            Ok(challenge) => Ok((origin, challenge)),
            Err(Error::Http { .. })
                if e.scheme == Scheme::Https && self.insecure.allows(&e.host) =>
            {
                let plain = format!("http://{}", e.host);
                let challenge = self.ping_at(e, http, &plain).await?;
                Ok((plain, challenge))
            }
            Err(err) => Err(err),
        }
    }

    async fn ping_at(
        &self,
        e: &Endpoint,
        http: &reqwest::Client,
        origin: &str,
    ) -> Result<Option<Challenge>> {
        let url = format!("{origin}{}/", e.root);
        let host = &e.host;
        let resp = with_headers(http.get(&url), &e.headers)
            .send()
            .await
            .map_err(|e| Error::http(&url, &e))?;
        match resp.status() {
            StatusCode::UNAUTHORIZED => {
                let header = resp
                    .headers()
                    .get(header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                parse_challenge(header).map(Some).ok_or_else(|| {
                    Error::Unauthorized(format!(
                        "{url}: unsupported authentication challenge {header:?}"
                    ))
                })
            }
            s if s.is_success() => Ok(None),
            s => Err(Error::Status {
                what: format!("{url} (is {host} a registry?)"),
                status: s.as_u16(),
                message: format!("unexpected status {s}"),
            }),
        }
    }

    /// A Bearer token from `realm` for `scopes`, from the cache while it lasts.
    async fn fetch_token(
        &self,
        http: &reqwest::Client,
        host: &str,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        credentials: &Credentials,
    ) -> Result<String> {
        let key = format!(
            "{realm}|{}|{}|{}",
            service.unwrap_or_default(),
            scopes.join(" "),
            credentials.username
        );
        if let Ok(tokens) = self.tokens.lock() {
            if let Some(t) = tokens.get(&key).filter(|t| t.expires > Instant::now()) {
                return Ok(t.value.clone());
            }
        }
        let mut url = Url::parse(realm).map_err(|e| {
            Error::Unauthorized(format!("{host}: invalid token realm {realm:?}: {e}"))
        })?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            for s in scopes {
                q.append_pair("scope", s);
            }
        }
        let mut req = http.get(url.clone());
        if !credentials.username.is_empty() {
            req = req.basic_auth(&credentials.username, Some(&credentials.password));
        }
        let resp = req
            .send()
            .await
            .map_err(|e| Error::http(url.as_str(), &e))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| Error::http(url.as_str(), &e))?;
        if !status.is_success() {
            return Err(Error::Unauthorized(format!(
                "{}: {}",
                host,
                error_message(&body)
                    .unwrap_or_else(|| format!("the token server answered {status}"))
            )));
        }
        let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
            Error::Unauthorized(format!(
                "{host}: the token server's answer is not JSON: {e}"
            ))
        })?;
        let value = parsed
            .bearer()
            .ok_or_else(|| Error::Unauthorized(format!("{host}: the token server sent no token")))?
            .to_string();
        let life = parsed
            .expires_in
            .map_or(DEFAULT_TOKEN_LIFE, Duration::from_secs)
            .max(DEFAULT_TOKEN_LIFE);
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.insert(
                key,
                Token {
                    value: value.clone(),
                    // Refresh a little early rather than send a token about to lapse.
                    expires: Instant::now() + life - Duration::from_secs(10),
                },
            );
        }
        Ok(value)
    }

    fn forget_tokens(&self) {
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.clear();
        }
    }
}

/// The message of a registry's error body (`{"errors":[{"code","message"}]}`), or of a
/// token server's (`{"details": ...}` / `{"error": ...}`).
pub(crate) fn error_message(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    if let Some(errors) = v["errors"].as_array() {
        let parts: Vec<String> = errors
            .iter()
            .map(|e| {
                let code = e["code"]
                    .as_str()
                    .unwrap_or_default()
                    .to_ascii_lowercase()
                    .replace('_', " ");
                match e["message"].as_str() {
                    Some(m) if !code.is_empty() => format!("{code}: {m}"),
                    Some(m) => m.to_string(),
                    None => code,
                }
            })
            .collect();
        return Some(parts.join("; ")).filter(|s| !s.is_empty());
    }
    ["details", "error_description", "error", "message"]
        .iter()
        .find_map(|k| v[*k].as_str().map(String::from))
}

/// No endpoint of `domain` may do `need` (its hosts.toml leaves every one out).
fn no_endpoint(domain: &str, need: Need) -> Error {
    let what = match need {
        Need::Pull => "pull",
        Need::Resolve => "pull and resolve",
        Need::Push => "push",
    };
    Error::InvalidArgument(format!(
        "no host configured for {domain} may {what} (see its hosts.toml)"
    ))
}

/// `headers` (a hosts.toml's `[header]`) added to a request.
fn with_headers(mut req: RequestBuilder, headers: &[(String, String)]) -> RequestBuilder {
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    req
}

/// A session on one repository of one registry (or of one of its mirrors).
pub struct Repository {
    client: Arc<Client>,
    /// `https://host` or `http://host`.
    origin: String,
    /// The API root's path, `/v2` for a compliant registry.
    root: String,
    host: String,
    headers: Vec<(String, String)>,
    /// `ns=<registry>` for every request to a mirror (URL-encoded registry name).
    ns: Option<String>,
    http: reqwest::Client,
    pub path: String,
    credentials: Credentials,
    challenge: Option<Challenge>,
    access: Access,
    token: Mutex<Option<String>>,
}

impl Repository {
    fn scopes(&self) -> Vec<String> {
        match &self.access {
            Access::Pull => vec![format!("repository:{}:pull", self.path)],
            Access::Push { mount_from } => {
                let mut s = vec![format!("repository:{}:pull,push", self.path)];
                s.extend(mount_from.iter().map(|r| format!("repository:{r}:pull")));
                s
            }
        }
    }

    /// Get a token when the registry wants Bearer auth (a fresh one with `renew`).
    async fn authorize(&self, renew: bool) -> Result<()> {
        let Some(Challenge::Bearer { realm, service }) = &self.challenge else {
            return Ok(());
        };
        if renew {
            self.client.forget_tokens();
        }
        let token = self
            .client
            .fetch_token(
                &self.http,
                &self.host,
                realm,
                service.as_deref(),
                &self.scopes(),
                &self.credentials,
            )
            .await?;
        if let Ok(mut t) = self.token.lock() {
            *t = Some(token);
        }
        Ok(())
    }

    /// `https://host/v2/<path>/<suffix>` (`?ns=<registry>` at a mirror).
    pub fn url(&self, suffix: &str) -> String {
        let url = format!("{}{}/{}/{suffix}", self.origin, self.root, self.path);
        match &self.ns {
            Some(ns) => format!("{url}?ns={ns}"),
            None => url,
        }
    }

    /// A Location header resolved against the registry.
    pub(crate) fn resolve(&self, location: &str) -> Result<Url> {
        Url::parse(&self.origin)
            .and_then(|b| b.join(location))
            .map_err(|e| Error::Http {
                url: location.to_string(),
                message: format!("invalid Location: {e}"),
            })
    }

    pub(crate) fn request(&self, method: Method, url: impl reqwest::IntoUrl) -> RequestBuilder {
        let req = with_headers(self.http.request(method, url), &self.headers);
        match &self.challenge {
            Some(Challenge::Basic) if !self.credentials.username.is_empty() => {
                req.basic_auth(&self.credentials.username, Some(&self.credentials.password))
            }
            Some(Challenge::Bearer { .. }) => {
                match self.token.lock().ok().and_then(|t| t.clone()) {
                    Some(t) => req.bearer_auth(t),
                    None => req,
                }
            }
            _ => req,
        }
    }

    /// Send what `build` makes; a 401 (an expired token) is retried once with a new token.
    pub(crate) async fn send(
        &self,
        url: &str,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
        method: Method,
    ) -> Result<Response> {
        let first = build(self.request(method.clone(), url))
            .send()
            .await
            .map_err(|e| Error::http(url, &e))?;
        if first.status() != StatusCode::UNAUTHORIZED
            || !matches!(self.challenge, Some(Challenge::Bearer { .. }))
        {
            return Ok(first);
        }
        self.authorize(true).await?;
        build(self.request(method, url))
            .send()
            .await
            .map_err(|e| Error::http(url, &e))
    }

    /// The registry's name for errors: `localhost:5000/app`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.host, self.path)
    }
}

/// Turn an error status into an error naming `what`; success passes through.
pub(crate) async fn check(resp: Response, what: &str) -> Result<Response> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let body = resp.bytes().await.unwrap_or_default();
    let message = error_message(&body).unwrap_or_else(|| status.to_string());
    Err(match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            Error::Unauthorized(format!("{what}: {message}"))
        }
        StatusCode::NOT_FOUND => Error::NotFound(format!("{what} not found: {message}")),
        _ => Error::Status {
            what: what.to_string(),
            status: status.as_u16(),
            message,
        },
    })
}
