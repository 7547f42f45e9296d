//! `vault signin`: the browser sign-in `aws login` does (AWS CLI v2.32+), in its wire format.
//!
//! The person approves in a browser at `{Sign-In}/v1/authorize` (OAuth 2.0 authorization
//! code with PKCE, `code_challenge_method=SHA-256`, `scope=openid`). Same device: the browser
//! is redirected to a one-shot listener on 127.0.0.1 with the code. Another device
//! (`--remote`): the page shows a code (base64 of `state=…&code=…`) that the person types
//! here. Either way the code, the PKCE verifier and a DPoP proof made with a new P-256 key go
//! to CreateOAuth2Token, which answers 15-minute credentials, a refresh token bound to that
//! key, and an ID token whose `sub` is the session's ARN (`login_session`).

use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use vault_store::{ConsoleSecrets, ConsoleSignIn, ConsoleSignInInfo};
use zeroize::Zeroizing;

use super::dpop::{DpopKey, Prove};
use crate::aws::{Aws, Service};
use crate::sso::{Flow, ShowError, SignIn, SignInPrompt};

/// The OAuth client of the same-device flow, as the AWS CLI names it.
pub const SAME_DEVICE: &str = "arn:aws:signin:::devtools/same-device";
/// The OAuth client of the cross-device (`--remote`) flow.
pub const CROSS_DEVICE: &str = "arn:aws:signin:::devtools/cross-device";

/// Where the person reads the code in the cross-device flow; the caller asks for it (from
/// the terminal). `None`: the person gave none.
pub trait PastedCode {
    fn ask_code(&self, label: &str) -> Result<Option<Zeroizing<String>>, ShowError>;
}

/// One sign-in's choices.
#[derive(Clone, Debug)]
pub struct SignInOptions {
    /// The AWS Sign-In region.
    pub region: String,
    /// The cross-device flow: no listener here, the person types the page's code.
    pub remote: bool,
    /// Also keep the session in the AWS CLI's cache file.
    pub cli_cache: bool,
    /// The longest the sign-in waits for the person.
    pub timeout: Duration,
}

/// Why a sign-in did not complete.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("cannot listen on 127.0.0.1 for the browser's redirect: {0}")]
    Listen(std::io::Error),
    #[error("no AWS Sign-In endpoint for region {region}: {message}")]
    Endpoint { region: String, message: String },
    #[error("cannot show the sign-in page: {0}")]
    Show(ShowError),
    #[error("the sign-in was not approved in the browser")]
    Denied,
    #[error("the sign-in page answered {error}{}", description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Redirect {
        error: String,
        description: Option<String>,
    },
    #[error("no sign-in within {} minutes", after.as_secs() / 60)]
    TimedOut { after: Duration },
    #[error("no code was entered")]
    NoCode,
    #[error("that is not the code the sign-in page shows ({0})")]
    BadCode(&'static str),
    #[error("the code is from another sign-in (its state does not match this one's)")]
    StateMismatch,
    #[error("AWS Sign-In refused the sign-in: {code}{}: {message}", reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default())]
    Refused {
        code: String,
        reason: Option<String>,
        message: String,
    },
    #[error("cannot reach AWS Sign-In at {endpoint}: {message}")]
    Unreachable { endpoint: String, message: String },
    #[error("AWS Sign-In's answer cannot be used: {0}")]
    Answer(String),
}

/// Runs the sign-in, showing its page through `show` and, in the cross-device flow, reading
/// the page's code from `paste`. Stores nothing: the caller checks who signed in first.
pub fn sign_in(
    aws: &Aws,
    show: &dyn SignIn,
    paste: &dyn PastedCode,
    options: &SignInOptions,
) -> Result<ConsoleSignIn, SignInError> {
    let region = &options.region;
    let base = aws
        .signin_endpoint(region)
        .map_err(|message| SignInError::Endpoint {
            region: region.clone(),
            message,
        })?;
    let key = DpopKey::generate();
    // 48 random bytes are 64 base64url characters, all of them PKCE's unreserved ones.
    let verifier = Zeroizing::new(crate::sso::pkce::random_url_safe(48));
    let challenge = B64URL.encode(Sha256::digest(verifier.as_bytes()));
    let state = uuid::Uuid::new_v4().to_string();
    let label = format!("AWS Sign-In ({region})");
    let deadline = Instant::now() + options.timeout;
    let (client_id, redirect_uri, code) = if options.remote {
        let redirect = format!("{base}/v1/sessions/confirmation");
        let url = authorize_url(&base, CROSS_DEVICE, &state, &challenge, &redirect);
        show_page(show, &label, &url, Flow::DeviceCode)?;
        let pasted = paste
            .ask_code(&label)
            .map_err(SignInError::Show)?
            .ok_or(SignInError::NoCode)?;
        let (code, got_state) = parse_pasted(&pasted)?;
        if got_state != state {
            return Err(SignInError::StateMismatch);
        }
        (CROSS_DEVICE, redirect, code)
    } else {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(SignInError::Listen)?;
        let port = listener.local_addr().map_err(SignInError::Listen)?.port();
        listener
            .set_nonblocking(true)
            .map_err(SignInError::Listen)?;
        let redirect = format!("http://127.0.0.1:{port}/oauth/callback");
        let url = authorize_url(&base, SAME_DEVICE, &state, &challenge, &redirect);
        show_page(show, &label, &url, Flow::AuthorizationCode)?;
        use crate::sso::loopback::{End, wait_for_code};
        let code = aws
            .block_on(wait_for_code(listener, &state, deadline))
            .map_err(|end| match end {
                End::Denied => SignInError::Denied,
                End::TimedOut => SignInError::TimedOut {
                    after: options.timeout,
                },
                End::Failed(message) => SignInError::Answer(message),
                End::Refused { error, description } => SignInError::Redirect { error, description },
                End::Io(e) => SignInError::Listen(e),
            })?;
        (SAME_DEVICE, redirect, code)
    };
    let body = aws_sdk_signin::types::CreateOAuth2TokenRequestBody::builder()
        .client_id(client_id)
        .grant_type("authorization_code")
        .code(code.as_str())
        .code_verifier(verifier.as_str())
        .redirect_uri(redirect_uri)
        .build()
        .map_err(|e| SignInError::Answer(e.to_string()))?;
    let signed_in = Utc::now();
    let answer = exchange(aws, region, &key, body).map_err(|e| match e {
        Exchange::Refused {
            code,
            reason,
            message,
        } => SignInError::Refused {
            code,
            reason,
            message,
        },
        Exchange::Unreachable { endpoint, message } => {
            SignInError::Unreachable { endpoint, message }
        }
        Exchange::Answer(message) => SignInError::Answer(message),
    })?;
    let id_token = answer
        .id_token
        .as_deref()
        .ok_or_else(|| SignInError::Answer("no ID token in the answer".to_owned()))?;
    let arn = subject(id_token).map_err(SignInError::Answer)?;
    let account_id = arn
        .split(':')
        .nth(4)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            SignInError::Answer(format!("the ID token's subject {arn:?} is not an ARN"))
        })?
        .to_owned();
    Ok(ConsoleSignIn {
        info: ConsoleSignInInfo {
            key: arn,
            region: region.clone(),
            client_id: client_id.to_owned(),
            account_id,
            cli_cache: options.cli_cache,
            signed_in,
            expires: answer.expires,
        },
        secrets: ConsoleSecrets {
            refresh_token: answer.refresh_token,
            dpop_key: key.to_stored(),
            access_key_id: answer.access_key_id,
            secret_access_key: answer.secret_access_key,
            session_token: answer.session_token,
        },
    })
}

fn show_page(show: &dyn SignIn, label: &str, url: &str, flow: Flow) -> Result<(), SignInError> {
    show.show(&SignInPrompt {
        label,
        url,
        user_code: None,
        flow,
        again: false,
    })
    .map_err(SignInError::Show)
}

/// The authorize page's URL, its parameters in the AWS CLI's order.
fn authorize_url(base: &str, client: &str, state: &str, challenge: &str, redirect: &str) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", client)
        .append_pair("state", state)
        .append_pair("code_challenge_method", "SHA-256")
        .append_pair("scope", "openid")
        .append_pair("redirect_uri", redirect)
        .append_pair("code_challenge", challenge)
        .finish();
    format!("{base}/v1/authorize?{query}")
}

/// The code and state in what the cross-device page shows: base64 of `state=…&code=…`.
fn parse_pasted(pasted: &str) -> Result<(Zeroizing<String>, String), SignInError> {
    let trimmed = pasted.trim();
    let decoded = Zeroizing::new(
        B64.decode(trimmed)
            .or_else(|_| B64URL.decode(trimmed.trim_end_matches('=')))
            .map_err(|_| SignInError::BadCode("not base64"))?,
    );
    let (mut code, mut state) = (None, None);
    for (name, value) in form_urlencoded::parse(&decoded) {
        match &*name {
            "code" => code = Some(Zeroizing::new(value.into_owned())),
            "state" => state = Some(value.into_owned()),
            _ => {}
        }
    }
    match (code, state) {
        (Some(code), Some(state)) if !code.is_empty() => Ok((code, state)),
        _ => Err(SignInError::BadCode("it holds no code and state")),
    }
}

/// The `sub` of a JWT, unverified: the service sent it over TLS in answer to our own call,
/// and only names the session (the AWS CLI reads it the same way).
fn subject(id_token: &str) -> Result<String, String> {
    let payload = id_token
        .split('.')
        .nth(1)
        .filter(|_| id_token.split('.').count() == 3)
        .ok_or("the ID token is not a JWT")?;
    let bytes = B64URL
        .decode(payload.trim_end_matches('='))
        .map_err(|_| "the ID token's payload is not base64url")?;
    let claims: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| "the ID token's payload is not JSON")?;
    let sub = claims["sub"]
        .as_str()
        .ok_or("the ID token names no session (sub)")?
        .trim();
    // It becomes `login_session` in the config file and a key in the vault: only what an
    // ARN can hold (IAM's name characters), six fields, a 12-digit account.
    let fields: Vec<&str> = sub.splitn(6, ':').collect();
    let arn_chars = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-/:".contains(c);
    let is_arn = fields.len() == 6
        && fields[0] == "arn"
        && fields[4].len() == 12
        && fields[4].bytes().all(|b| b.is_ascii_digit())
        && sub.len() <= 2048
        && sub.chars().all(arn_chars);
    match is_arn {
        true => Ok(sub.to_owned()),
        false => Err(format!(
            "the ID token's subject is not an ARN: {:?}",
            sub.chars().take(80).collect::<String>()
        )),
    }
}

/// What CreateOAuth2Token answered, secrets wrapped at once.
pub(super) struct Answer {
    pub access_key_id: SecretString,
    pub secret_access_key: SecretString,
    pub session_token: SecretString,
    pub refresh_token: SecretString,
    pub expires: DateTime<Utc>,
    pub id_token: Option<String>,
}

/// Why CreateOAuth2Token gave nothing.
pub(super) enum Exchange {
    Refused {
        code: String,
        reason: Option<String>,
        message: String,
    },
    Unreachable {
        endpoint: String,
        message: String,
    },
    Answer(String),
}

/// One CreateOAuth2Token call with a proof made with `key`.
pub(super) fn exchange(
    aws: &Aws,
    region: &str,
    key: &DpopKey,
    body: aws_sdk_signin::types::CreateOAuth2TokenRequestBody,
) -> Result<Answer, Exchange> {
    let client = aws.signin(region, Prove(key.clone()));
    let sent = aws.call(
        Service::Signin,
        "CreateOAuth2Token",
        client.create_o_auth2_token().token_input(body).send(),
    );
    let out = match sent {
        Ok(out) => out,
        Err(e) => {
            if let Some((code, reason, message)) = e.as_service_error().and_then(refusal) {
                return Err(Exchange::Refused {
                    code,
                    reason,
                    message,
                });
            }
            return Err(Exchange::Unreachable {
                endpoint: aws.settings().describe_endpoint(Service::Signin),
                message: crate::error_chain(&e),
            });
        }
    };
    let body = out
        .token_output
        .ok_or_else(|| Exchange::Answer("no tokenOutput in the answer".to_owned()))?;
    let access = body
        .access_token
        .ok_or_else(|| Exchange::Answer("no credentials in the answer".to_owned()))?;
    let expires_in = i64::from(body.expires_in.max(0));
    Ok(Answer {
        access_key_id: SecretString::from(access.access_key_id),
        secret_access_key: SecretString::from(access.secret_access_key),
        session_token: SecretString::from(access.session_token),
        refresh_token: SecretString::from(body.refresh_token),
        expires: DateTime::<Utc>::from(SystemTime::now()) + chrono::Duration::seconds(expires_in),
        id_token: body.id_token,
    })
}

/// A refusal's shape (`AccessDeniedException`, ...), its `error` field (`TOKEN_EXPIRED`,
/// ...) when sent, and its message; `None` for an error no answer carried.
pub(super) fn refusal(
    refused: &aws_sdk_signin::operation::create_o_auth2_token::CreateOAuth2TokenError,
) -> Option<(String, Option<String>, String)> {
    use aws_sdk_signin::error::ProvideErrorMetadata;
    use aws_sdk_signin::operation::create_o_auth2_token::CreateOAuth2TokenError as E;
    let reason = match refused {
        E::AccessDeniedException(a) => Some(a.error.as_str().to_owned()),
        E::ValidationException(v) => Some(v.error.as_str().to_owned()),
        _ => None,
    };
    let code = refused.code()?.to_owned();
    Some((
        code,
        reason,
        refused.message().unwrap_or("no message").to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_authorize_url_is_the_aws_clis() {
        let url = authorize_url(
            "https://us-east-1.signin.aws.amazon.com",
            SAME_DEVICE,
            "s-1",
            "abc",
            "http://127.0.0.1:5000/oauth/callback",
        );
        assert_eq!(
            url,
            "https://us-east-1.signin.aws.amazon.com/v1/authorize?response_type=code\
             &client_id=arn%3Aaws%3Asignin%3A%3A%3Adevtools%2Fsame-device&state=s-1\
             &code_challenge_method=SHA-256&scope=openid\
             &redirect_uri=http%3A%2F%2F127.0.0.1%3A5000%2Foauth%2Fcallback&code_challenge=abc"
        );
    }

    #[test]
    fn pasted_codes_are_read_as_the_page_shows_them() {
        let shown = B64.encode("state=s-1&code=c%2Fode");
        let (code, state) = parse_pasted(&format!("  {shown}\n")).unwrap();
        assert_eq!((code.as_str(), state.as_str()), ("c/ode", "s-1"));
        assert!(matches!(
            parse_pasted("%%%"),
            Err(SignInError::BadCode("not base64"))
        ));
        assert!(matches!(
            parse_pasted(&B64.encode("state=s-1")),
            Err(SignInError::BadCode(_))
        ));
    }

    #[test]
    fn the_subject_is_the_session() {
        let payload = B64URL.encode(r#"{"sub":"arn:aws:iam::123456789012:user/alice"}"#);
        assert_eq!(
            subject(&format!("h.{payload}.s")).unwrap(),
            "arn:aws:iam::123456789012:user/alice"
        );
        assert!(subject("h.x").is_err());
        for bad in [
            r#"{"sub":"bob"}"#,
            r#"{"sub":"arn:aws:iam::123456789012:user/a\n[profile x]"}"#,
            r#"{"sub":"arn:aws:iam::1234:user/a"}"#,
            r#"{"sub":"arn:aws:iam::123456789012:user/a b"}"#,
        ] {
            assert!(
                subject(&format!("h.{}.s", B64URL.encode(bad))).is_err(),
                "{bad}"
            );
        }
    }
}
