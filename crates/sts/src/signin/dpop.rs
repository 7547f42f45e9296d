//! DPoP proofs (RFC 9449) for vault's own calls to AWS Sign-In: every CreateOAuth2Token
//! carries a JWT signed (ES256) with the session's P-256 key, naming the method and URL of
//! that very request, when it was made and a never-repeated id; the service binds the
//! refresh token to the key at sign-in and refuses a proof from any other.
//!
//! aws-config signs the same proofs for the AWS CLI's cache file, but keeps that code to
//! itself; vault holds the key in the vault instead of a file, so it signs here, the same
//! way: the header's `jwk` is the public point, the signature the raw `r || s`.

use std::fmt;
use std::time::SystemTime;

use aws_sdk_signin::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_signin::config::{ConfigBag, Intercept, RuntimeComponents};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

/// A session's DPoP key.
#[derive(Clone)]
pub struct DpopKey(p256::SecretKey);

impl fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DpopKey(<redacted>)")
    }
}

impl DpopKey {
    /// A new key from the OS's random source.
    pub fn generate() -> DpopKey {
        loop {
            let mut bytes = Zeroizing::new([0u8; 32]);
            getrandom::fill(&mut *bytes).expect("the OS random source works");
            // Almost every 32 bytes is a scalar below the group order; the rest are drawn again.
            if let Ok(key) = p256::SecretKey::from_slice(&*bytes) {
                return DpopKey(key);
            }
        }
    }

    /// The key as the vault keeps it: the private scalar, base64.
    pub fn to_stored(&self) -> SecretString {
        let bytes = Zeroizing::new(self.0.to_bytes());
        SecretString::from(B64.encode(bytes.as_slice()))
    }

    /// The key as [`DpopKey::to_stored`] wrote it.
    pub fn from_stored(stored: &SecretString) -> Result<DpopKey, String> {
        let bytes = Zeroizing::new(
            B64.decode(stored.expose_secret())
                .map_err(|_| "the stored DPoP key is not base64".to_owned())?,
        );
        p256::SecretKey::from_slice(&bytes)
            .map(DpopKey)
            .map_err(|_| "the stored DPoP key is not a P-256 key".to_owned())
    }

    /// The key as the AWS CLI writes `dpopKey`: SEC1 PEM (`BEGIN EC PRIVATE KEY`) with the
    /// curve named and the public key, as awscrt exports it. botocore reads it with awscrt,
    /// which refuses a key without the curve (p256's own `to_sec1_pem` leaves it out).
    pub fn to_pem(&self) -> Result<Zeroizing<String>, String> {
        use p256::pkcs8::AssociatedOid as _;
        use sec1::der::EncodePem as _;
        let private = Zeroizing::new(self.0.to_bytes());
        let public = self.0.public_key().to_encoded_point(false);
        sec1::EcPrivateKey {
            private_key: private.as_slice(),
            parameters: Some(sec1::EcParameters::NamedCurve(p256::NistP256::OID)),
            public_key: Some(public.as_bytes()),
        }
        .to_pem(sec1::LineEnding::LF)
        .map(Zeroizing::new)
        .map_err(|e| format!("cannot write the DPoP key as PEM: {e}"))
    }

    /// The key from the AWS CLI's `dpopKey`.
    pub fn from_pem(pem: &str) -> Result<DpopKey, String> {
        p256::SecretKey::from_sec1_pem(pem)
            .map(DpopKey)
            .map_err(|_| "its dpopKey is not a P-256 key in SEC1 PEM".to_owned())
    }

    /// The proof for a POST to `url` (the whole URL, as sent), made now.
    pub fn proof(&self, url: &str, now: SystemTime) -> String {
        let point = self.0.public_key().to_encoded_point(false);
        let (x, y) = (
            point.x().expect("an uncompressed point has x"),
            point.y().expect("an uncompressed point has y"),
        );
        let header = serde_json::json!({
            "typ": "dpop+jwt",
            "alg": "ES256",
            "jwk": {"kty": "EC", "x": B64URL.encode(x), "y": B64URL.encode(y), "crv": "P-256"},
        });
        let iat = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let payload = serde_json::json!({
            "jti": uuid::Uuid::new_v4().to_string(),
            "htm": "POST",
            "htu": url,
            "iat": iat,
        });
        let message = format!(
            "{}.{}",
            B64URL.encode(header.to_string()),
            B64URL.encode(payload.to_string())
        );
        // RFC 6979: deterministic nonces, no random source needed to sign.
        let signature: Signature = SigningKey::from(&self.0).sign(message.as_bytes());
        format!("{message}.{}", B64URL.encode(signature.to_bytes()))
    }
}

/// Puts the proof on each request just before it is sent, when its URL is final.
#[derive(Debug)]
pub(super) struct Prove(pub(super) DpopKey);

impl Intercept for Prove {
    fn name(&self) -> &'static str {
        "DPoP proof"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let request = context.request_mut();
        let proof = self.0.proof(request.uri(), SystemTime::now());
        request.headers_mut().insert("DPoP", proof);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::VerifyingKey;
    use p256::ecdsa::signature::Verifier as _;

    #[test]
    fn a_proof_verifies_against_its_own_jwk_and_names_the_request() {
        let key = DpopKey::generate();
        let proof = key.proof(
            "https://us-east-1.signin.aws.amazon.com/v1/token",
            SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000),
        );
        let parts: Vec<&str> = proof.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&B64URL.decode(parts[0]).unwrap()).unwrap();
        let payload: serde_json::Value =
            serde_json::from_slice(&B64URL.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], "ES256");
        assert_eq!(payload["htm"], "POST");
        assert_eq!(
            payload["htu"],
            "https://us-east-1.signin.aws.amazon.com/v1/token"
        );
        assert_eq!(payload["iat"], 1_800_000_000u64);
        assert_eq!(payload["jti"].as_str().unwrap().len(), 36);
        let mut sec1 = vec![4u8];
        sec1.extend(B64URL.decode(header["jwk"]["x"].as_str().unwrap()).unwrap());
        sec1.extend(B64URL.decode(header["jwk"]["y"].as_str().unwrap()).unwrap());
        let public = VerifyingKey::from_sec1_bytes(&sec1).unwrap();
        let signature = Signature::from_slice(&B64URL.decode(parts[2]).unwrap()).unwrap();
        public
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
            .unwrap();
        // Two proofs never share a jti.
        assert_ne!(
            key.proof("u", SystemTime::now()).split('.').nth(1),
            key.proof("u", SystemTime::now()).split('.').nth(1)
        );
    }

    #[test]
    fn keys_round_trip_as_stored_and_as_the_aws_cli_writes_them() {
        let key = DpopKey::generate();
        let back = DpopKey::from_stored(&key.to_stored()).unwrap();
        assert_eq!(back.0.to_bytes(), key.0.to_bytes());
        let pem = key.to_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN EC PRIVATE KEY-----\n"));
        // awscrt's layout: 121 bytes with the curve's OID and the public key.
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = B64.decode(body).unwrap();
        assert_eq!(der.len(), 121);
        assert!(
            der.windows(10)
                .any(|w| w == [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07])
        );
        assert_eq!(
            DpopKey::from_pem(&pem).unwrap().0.to_bytes(),
            key.0.to_bytes()
        );
        assert!(DpopKey::from_stored(&SecretString::from("!!")).is_err());
        assert!(DpopKey::from_pem("not a key").is_err());
        assert!(!format!("{key:?}").contains(key.to_stored().expose_secret()));
    }
}
