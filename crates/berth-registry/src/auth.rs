//! Registry authentication state: which scheme each host asked for, and
//! bearer tokens cached per (host, scope set, credentials).
//!
//! Tokens are keyed by a hash of the credentials as well as the scope, so a
//! daemon serving several users never hands one user's token to another.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine;
use sha2::{Digest as _, Sha256};
use tokio::sync::Mutex;

use crate::credentials::Credentials;

/// Bound on a token server's answer.
pub(crate) const MAX_TOKEN_RESPONSE: usize = 1 << 20;
/// Lifetime assumed when a token server does not say (the distribution spec's default).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// How a host wants to be authenticated, learnt from its 401 challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AuthMode {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

#[derive(Debug, Clone)]
struct CachedToken {
    token: String,
    /// When to stop using it: a little before the server's expiry, so that a
    /// request in flight does not carry a token that expires on the way.
    refresh_at: Instant,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TokenKey {
    host: String,
    scopes: String,
    identity: String,
}

#[derive(Default)]
pub(crate) struct AuthState {
    modes: Mutex<HashMap<String, AuthMode>>,
    tokens: Mutex<HashMap<TokenKey, CachedToken>>,
}

/// A stable, non-reversible identity for a set of credentials.
pub(crate) fn identity(creds: Option<&Credentials>) -> String {
    match creds {
        None => String::from("anonymous"),
        Some(c) => {
            let mut h = Sha256::new();
            for part in [
                c.username.as_str(),
                c.password.as_str(),
                c.identity_token.as_deref().unwrap_or(""),
            ] {
                h.update((part.len() as u64).to_le_bytes());
                h.update(part.as_bytes());
            }
            hex::encode(h.finalize())
        }
    }
}

/// Canonical form of a scope set: sorted, deduplicated, space-separated.
pub(crate) fn scope_key(scopes: &[String]) -> String {
    let mut s: Vec<&str> = scopes.iter().map(String::as_str).collect();
    s.sort_unstable();
    s.dedup();
    s.join(" ")
}

impl AuthState {
    pub(crate) async fn mode(&self, host: &str) -> Option<AuthMode> {
        self.modes.lock().await.get(host).cloned()
    }

    pub(crate) async fn set_mode(&self, host: &str, mode: AuthMode) {
        self.modes.lock().await.insert(host.to_string(), mode);
    }

    pub(crate) async fn token(
        &self,
        host: &str,
        scopes: &[String],
        identity: &str,
    ) -> Option<String> {
        let key = TokenKey {
            host: host.into(),
            scopes: scope_key(scopes),
            identity: identity.into(),
        };
        let mut tokens = self.tokens.lock().await;
        match tokens.get(&key) {
            Some(t) if t.refresh_at > Instant::now() => Some(t.token.clone()),
            Some(_) => {
                tokens.remove(&key);
                None
            }
            None => None,
        }
    }

    pub(crate) async fn store_token(
        &self,
        host: &str,
        scopes: &[String],
        identity: &str,
        token: String,
        lifetime: Duration,
    ) {
        // Use at most 90% of the lifetime, and never cache a token for less than a second.
        let usable = lifetime.mul_f32(0.9);
        if usable < Duration::from_secs(1) {
            return;
        }
        let key = TokenKey {
            host: host.into(),
            scopes: scope_key(scopes),
            identity: identity.into(),
        };
        let mut tokens = self.tokens.lock().await;
        tokens.retain(|_, t| t.refresh_at > Instant::now());
        tokens.insert(
            key,
            CachedToken {
                token,
                refresh_at: Instant::now() + usable,
            },
        );
    }

    pub(crate) async fn forget_token(&self, host: &str, scopes: &[String], identity: &str) {
        let key = TokenKey {
            host: host.into(),
            scopes: scope_key(scopes),
            identity: identity.into(),
        };
        self.tokens.lock().await.remove(&key);
    }
}

/// A token server's answer (both docker's `token` and OAuth2's `access_token` spellings).
#[derive(Debug, serde::Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    token: String,
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
}

impl TokenResponse {
    /// The token and how long it lives, or `None` when the answer holds no token.
    pub(crate) fn into_token(self) -> Option<(String, Duration, Option<String>)> {
        let token = if self.token.is_empty() {
            self.access_token
        } else {
            self.token
        };
        if token.is_empty() {
            return None;
        }
        let lifetime = self
            .expires_in
            .filter(|s| *s > 0)
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_TOKEN_LIFETIME);
        Some((token, lifetime, self.refresh_token))
    }
}

/// `Authorization: Basic ...` for a username and password.
pub(crate) fn basic_header(creds: &Credentials) -> String {
    let raw = format!("{}:{}", creds.username, creds.password);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tokens_are_cached_per_scope_and_identity() {
        let state = AuthState::default();
        let a = identity(Some(&Credentials::basic("a", "1")));
        let b = identity(Some(&Credentials::basic("a", "2")));
        assert_ne!(a, b);
        let scopes = vec![
            "repository:x:pull".to_string(),
            "repository:y:pull".to_string(),
        ];
        let reversed: Vec<String> = scopes.iter().rev().cloned().collect();
        state
            .store_token("h", &scopes, &a, "T".into(), Duration::from_secs(60))
            .await;
        assert_eq!(state.token("h", &reversed, &a).await.as_deref(), Some("T"));
        assert_eq!(state.token("h", &reversed, &b).await, None);
        assert_eq!(state.token("h", &scopes[..1], &a).await, None);
        assert_eq!(state.token("other", &scopes, &a).await, None);
        state.forget_token("h", &scopes, &a).await;
        assert_eq!(state.token("h", &scopes, &a).await, None);
        // A token too short-lived to use is not cached.
        state
            .store_token("h", &scopes, &a, "T".into(), Duration::from_millis(500))
            .await;
        assert_eq!(state.token("h", &scopes, &a).await, None);
    }

    #[test]
    fn token_response_spellings() {
        let r: TokenResponse = serde_json::from_str(r#"{"token":"t","expires_in":300}"#).unwrap();
        assert_eq!(
            r.into_token().map(|t| (t.0, t.1)),
            Some(("t".into(), Duration::from_secs(300)))
        );
        let r: TokenResponse = serde_json::from_str(r#"{"access_token":"a"}"#).unwrap();
        assert_eq!(
            r.into_token().map(|t| (t.0, t.1)),
            Some(("a".into(), DEFAULT_TOKEN_LIFETIME))
        );
        let r: TokenResponse = serde_json::from_str(r#"{}"#).unwrap();
        assert!(r.into_token().is_none());
    }
}
