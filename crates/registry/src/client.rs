//! The HTTP side of the distribution API: one [`Client`] per daemon (connection pools,
//! the token cache, which hosts are insecure) and a [`Repository`] per pull or push, which
//! knows its registry's scheme and how to authorize against it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{header, Method, RequestBuilder, Response, StatusCode, Url};

use crate::auth::{parse_challenge, Challenge, Credentials, TokenResponse};
use crate::error::{Error, Result};
use crate::hosts::{api_host, Insecure};

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
    tokens: Mutex<HashMap<String, Token>>,
}

fn build_http(accept_invalid_certs: bool) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(120))
        .danger_accept_invalid_certs(accept_invalid_certs)
        .build()
        .map_err(|e| Error::http("client", &e))
}

impl Client {
    pub fn new(insecure_registries: &[String]) -> Result<Client> {
        Ok(Client {
            verified: build_http(false)?,
            unverified: build_http(true)?,
            insecure: Insecure::new(insecure_registries),
            tokens: Mutex::new(HashMap::new()),
        })
    }

    /// Whether `domain` may be reached over plain HTTP or unverified TLS.
    pub fn is_insecure(&self, domain: &str) -> bool {
        self.insecure.allows(domain)
    }

    fn http_for(&self, host: &str) -> &reqwest::Client {
        if self.insecure.allows(host) {
            &self.unverified
        } else {
            &self.verified
        }
    }

    /// Open a session on `path` of the registry `domain`: find its scheme, learn how it
    /// authenticates, and fetch a token for `access` if it wants one.
    pub async fn repository(
        self: &Arc<Self>,
        domain: &str,
        path: &str,
        credentials: Credentials,
        access: Access,
    ) -> Result<Repository> {
        let host = api_host(domain).to_string();
        let (base, challenge) = self.ping(&host).await?;
        let repo = Repository {
            client: self.clone(),
            base,
            host,
            path: path.to_string(),
            credentials,
            challenge,
            access,
            token: Mutex::new(None),
        };
        repo.authorize(false).await?;
        Ok(repo)
    }

    /// Check `credentials` against the registry `domain` (what `docker login` asks).
    pub async fn login(self: &Arc<Self>, domain: &str, credentials: &Credentials) -> Result<()> {
        let host = api_host(domain).to_string();
        let (base, challenge) = self.ping(&host).await?;
        let url = format!("{base}/v2/");
        match challenge {
            None => Ok(()),
            Some(Challenge::Basic) => {
                let resp = self
                    .http_for(&host)
                    .get(&url)
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
                .fetch_token(&host, &realm, service.as_deref(), &[], credentials)
                .await
                .map(|_| ()),
        }
    }

    /// `GET /v2/`: which scheme answers (HTTPS, or HTTP for an insecure registry whose
    /// HTTPS fails) and the challenge a 401 carries.
    async fn ping(&self, host: &str) -> Result<(String, Option<Challenge>)> {
        let https = format!("https://{host}");
        match self.ping_at(host, &https).await {
            Ok(challenge) => Ok((https, challenge)),
            Err(Error::Http { .. }) if self.insecure.allows(host) => {
                let http = format!("http://{host}");
                let challenge = self.ping_at(host, &http).await?;
                Ok((http, challenge))
            }
            Err(e) => Err(e),
        }
    }

    async fn ping_at(&self, host: &str, base: &str) -> Result<Option<Challenge>> {
        let url = format!("{base}/v2/");
        let resp = self
            .http_for(host)
            .get(&url)
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
        let mut req = self.http_for(host).get(url.clone());
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

/// A session on one repository of one registry.
pub struct Repository {
    client: Arc<Client>,
    /// `https://host` or `http://host`.
    base: String,
    host: String,
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

    /// `https://host/v2/<path>/<suffix>`.
    pub fn url(&self, suffix: &str) -> String {
        format!("{}/v2/{}/{suffix}", self.base, self.path)
    }

    /// A Location header resolved against the registry.
    pub(crate) fn resolve(&self, location: &str) -> Result<Url> {
        Url::parse(&self.base)
            .and_then(|b| b.join(location))
            .map_err(|e| Error::Http {
                url: location.to_string(),
                message: format!("invalid Location: {e}"),
            })
    }

    pub(crate) fn request(&self, method: Method, url: impl reqwest::IntoUrl) -> RequestBuilder {
        let req = self.client.http_for(&self.host).request(method, url);
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
