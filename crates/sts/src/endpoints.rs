//! Endpoint overrides in force for the services vault calls (`AWS_ENDPOINT_URL_<SERVICE>`,
//! `AWS_ENDPOINT_URL`, a profile's `endpoint_url`). aws-config resolves and applies them for
//! the actual calls; this copy, read the same way, is for cache keys, messages and
//! `--explain`, which must name the endpoint a session came from.

use crate::config::ConfigFile;
use crate::origin::{Origin, Sourced};

/// Endpoint overrides in force for the services vault calls. aws-config resolves and applies
/// them for the actual calls; this copy is for cache keys, messages and `--explain`.
#[derive(Clone, Debug, Default)]
pub struct Endpoints {
    pub sts: Option<Sourced<String>>,
    pub iam: Option<Sourced<String>>,
    /// The SSO portal (role credentials, accounts, logout).
    pub sso: Option<Sourced<String>>,
    /// The SSO OIDC service (client registration, tokens; the browser's authorize page).
    pub sso_oidc: Option<Sourced<String>>,
    /// AWS Sign-In (console sessions' CreateOAuth2Token). Only the environment's: aws-config's
    /// login provider builds its client without the profile, so `endpoint_url` does not
    /// reach it.
    pub signin: Option<Sourced<String>>,
}

impl Endpoints {
    /// As the SDKs read them: `AWS_ENDPOINT_URL_<SERVICE>`, `AWS_ENDPOINT_URL`, then the
    /// profile's `endpoint_url`, none of them under `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`
    /// (except Sign-In's, which aws-config's login provider reads from the environment
    /// whatever that says).
    pub fn from_env(
        config: &ConfigFile,
        profile: &str,
        get: impl Fn(&str) -> Option<String>,
    ) -> Endpoints {
        let of_env = |service_env: &'static str| {
            [service_env, "AWS_ENDPOINT_URL"]
                .into_iter()
                .find_map(|name| {
                    get(name)
                        .filter(|v| !v.is_empty())
                        .map(|url| Sourced::new(url, Origin::Env(name)))
                })
        };
        let signin = of_env("AWS_ENDPOINT_URL_SIGNIN");
        if get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").is_some_and(|v| v == "true") {
            return Endpoints {
                signin,
                ..Endpoints::default()
            };
        }
        let of = |service_env: &'static str| {
            of_env(service_env).or_else(|| {
                config.get(profile, "endpoint_url").map(|(url, line)| {
                    Sourced::new(
                        url.to_owned(),
                        Origin::Config {
                            path: config.path.clone(),
                            line,
                            profile: profile.to_owned(),
                        },
                    )
                })
            })
        };
        Endpoints {
            sts: of("AWS_ENDPOINT_URL_STS"),
            iam: of("AWS_ENDPOINT_URL_IAM"),
            sso: of("AWS_ENDPOINT_URL_SSO"),
            sso_oidc: of("AWS_ENDPOINT_URL_SSO_OIDC"),
            signin,
        }
    }
}
