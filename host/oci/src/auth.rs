//! Which credentials to present to a registry.
//!
//! In order: a username and password given on the command line or in the environment
//! (`WASMFLOW_REGISTRY_USERNAME`/`_PASSWORD`); a bearer token (`WASMFLOW_REGISTRY_TOKEN`, e.g.
//! from `az acr login --expose-token`); the Docker-style `config.json` (`$DOCKER_CONFIG`, else
//! `~/.docker/config.json`; `auths` entries and credential helpers, through `docker_credential`);
//! else anonymous. Token exchanges (a `WWW-Authenticate: Bearer` challenge) are `oci-client`'s.

use oci_client::secrets::RegistryAuth;

/// Credentials the user gave explicitly.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// Basic-auth user.
    pub username: Option<String>,
    /// Basic-auth password (or token used as one).
    pub password: Option<String>,
    /// A ready bearer token.
    pub token: Option<String>,
}

/// The user name Azure Container Registry (and Docker's `identitytoken`) expects with a
/// refresh token used as a password.
const TOKEN_USER: &str = "00000000-0000-0000-0000-000000000000";

/// The credentials for `registry` (`host[:port]`) and where they came from (for messages).
pub fn for_registry(creds: &Credentials, registry: &str) -> (RegistryAuth, &'static str) {
    match (&creds.username, &creds.password) {
        (Some(u), Some(p)) => {
            return (
                RegistryAuth::Basic(u.clone(), p.clone()),
                "--registry-username/--registry-password",
            )
        }
        (Some(u), None) => return (RegistryAuth::Basic(u.clone(), String::new()), "--registry-username"),
        _ => {}
    }
    if let Some(t) = &creds.token {
        return (RegistryAuth::Bearer(t.clone()), "WASMFLOW_REGISTRY_TOKEN");
    }
    match docker_credential::get_credential(registry) {
        Ok(docker_credential::DockerCredential::UsernamePassword(u, p)) => {
            (RegistryAuth::Basic(u, p), "the Docker config.json")
        }
        Ok(docker_credential::DockerCredential::IdentityToken(t)) => {
            (RegistryAuth::Basic(TOKEN_USER.into(), t), "the Docker config.json")
        }
        Err(_) => (RegistryAuth::Anonymous, ANONYMOUS),
    }
}

/// `token` (from `WASMFLOW_REGISTRY_TOKEN`) as it can go in an `Authorization: Bearer` header:
/// without the whitespace around it (a trailing newline from a file or a command's output).
/// Anything else a header cannot hold is refused here: `oci-client` would panic building the
/// header. The message does not repeat the token.
pub fn bearer_token(token: &str) -> Result<String, String> {
    let t = token.trim();
    if t.is_empty() {
        return Err("it is empty".into());
    }
    if http::HeaderValue::from_str(&format!("Bearer {t}")).is_err() {
        let at = t
            .char_indices()
            .find(|(_, c)| c.is_ascii_control() && *c != '\t')
            .map_or_else(String::new, |(i, c)| format!(" ({:?} at byte {i})", c));
        return Err(format!(
            "it holds a control character{at}, which no HTTP header may carry"
        ));
    }
    Ok(t.to_string())
}

/// What [`for_registry`] says it tried when it found no credentials.
pub const ANONYMOUS: &str = "no credentials";

/// What to do about a refusal, given what [`for_registry`] tried.
pub fn hint(tried: &str) -> &'static str {
    match tried {
        ANONYMOUS => "pass --registry-username/--registry-password, set WASMFLOW_REGISTRY_USERNAME/WASMFLOW_REGISTRY_PASSWORD or WASMFLOW_REGISTRY_TOKEN, or log in with a Docker config.json",
        "WASMFLOW_REGISTRY_TOKEN" => "check WASMFLOW_REGISTRY_TOKEN: it may have expired, or not grant this repository and action",
        _ => "check them (they may be wrong, or not grant this repository and action), or pass others with --registry-username/--registry-password or WASMFLOW_REGISTRY_USERNAME/WASMFLOW_REGISTRY_PASSWORD",
    }
}
