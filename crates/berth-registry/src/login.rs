//! Checking credentials against a registry, for `berth login`.

use reqwest::header::AUTHORIZATION;
use reqwest::StatusCode;

use crate::auth::{self, AuthMode};
use crate::client::{error_chain, Client};
use crate::credentials::Credentials;
use crate::error::RegistryError;

impl Client {
    /// Verifies that `creds` are accepted by `registry`, the way `docker login`
    /// does: Basic registries must answer `/v2/` with 200, token registries
    /// must issue a token for them. Nothing is stored here; the caller writes
    /// the config file with [`crate::credentials::DockerConfig::store`].
    pub async fn check_login(
        &self,
        registry: &str,
        creds: &Credentials,
    ) -> Result<(), RegistryError> {
        self.ping(registry).await?;
        let ep = self.endpoint(registry).await?;
        let failed = |message: String| RegistryError::LoginFailed {
            registry: registry.into(),
            message,
        };
        match self.auth_mode(&ep.host).await {
            // An open registry accepts anything, as with docker.
            None => Ok(()),
            Some(AuthMode::Basic) => {
                let resp = self
                    .http_for(&ep)?
                    .get(ep.url("v2/"))
                    .header(AUTHORIZATION, auth::basic_header(creds))
                    .send()
                    .await
                    .map_err(|e| RegistryError::Unreachable {
                        registry: registry.into(),
                        message: error_chain(&e),
                    })?;
                match resp.status() {
                    s if s.is_success() => Ok(()),
                    StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(failed(
                        "the registry refused the username or password".into(),
                    )),
                    s => Err(failed(format!("the registry answered HTTP {s}"))),
                }
            }
            Some(AuthMode::Bearer { realm, service }) => self
                .fetch_token(registry, &ep, &realm, service.as_deref(), &[], Some(creds))
                .await
                .map(|_| ()),
        }
    }
}
