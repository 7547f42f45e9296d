//! Unlock once: the opened vault key of a `file` vault, kept for an idle timeout so later
//! commands need neither the passphrase nor scrypt's half second and 256 MiB.
//!
//! Linux keeps it in the kernel: a `user` key in the caller's session keyring, readable only
//! by processes that possess that keyring (the login session that unlocked it), never by other
//! users, never on disk, with a kernel-enforced timeout that every use pushes back (idle
//! timeout). The payload is `<idle seconds>\n<age identity>`, so a use refreshes the timeout
//! the unlock chose. Other platforms have no such cache yet: every command asks.

use std::time::Duration;

use zeroize::Zeroizing;

/// Why the cache could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(pub String);

// Only the Linux implementation keeps keys; elsewhere these go unused.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn description(vault_id: &str) -> String {
    format!("vault-unlock:{vault_id}")
}

/// The slot of a vault key opened with a passphrase from the environment: kept wrapped (see
/// [`wrap`]), so only a process that presents the same passphrase can use it.
// Only the Linux implementation keeps keys; elsewhere these go unused.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn env_description(vault_id: &str) -> String {
    format!("vault-env:{vault_id}")
}

/// The vault key sealed under a key derived from `passphrase` and the vault id with one
/// HMAC-SHA256 (cheap on purpose: scrypt is what this saves): random nonce, then
/// ChaCha20-Poly1305 ciphertext. A different passphrase does not open it.
pub fn wrap(passphrase: &str, vault_id: &str, secret: &str) -> Option<Zeroizing<String>> {
    use chacha20poly1305::aead::{Aead, KeyInit};
    let cipher = chacha20poly1305::ChaCha20Poly1305::new(&wrapping_key(passphrase, vault_id));
    let mut nonce = [0u8; 12];
    getrandom::fill(&mut nonce).ok()?;
    let sealed = cipher.encrypt(&nonce.into(), secret.as_bytes()).ok()?;
    let mut out = Zeroizing::new(hex::encode(nonce));
    out.push_str(&hex::encode(sealed));
    Some(out)
}

/// [`wrap`] undone; `None` for another passphrase (or anything damaged).
pub fn unwrap(passphrase: &str, vault_id: &str, wrapped: &str) -> Option<Zeroizing<String>> {
    use chacha20poly1305::aead::{Aead, KeyInit};
    let bytes = hex::decode(wrapped).ok()?;
    if bytes.len() < 12 {
        return None;
    }
    let (nonce, sealed) = bytes.split_at(12);
    let cipher = chacha20poly1305::ChaCha20Poly1305::new(&wrapping_key(passphrase, vault_id));
    let plain = Zeroizing::new(cipher.decrypt(nonce.into(), sealed).ok()?);
    Some(Zeroizing::new(String::from_utf8(plain.to_vec()).ok()?))
}

fn wrapping_key(passphrase: &str, vault_id: &str) -> chacha20poly1305::Key {
    use hmac::{Hmac, Mac};
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(passphrase.as_bytes()).expect("any key length");
    mac.update(b"vault env unlock v1\0");
    mac.update(vault_id.as_bytes());
    let bytes: [u8; 32] = mac.finalize().into_bytes().into();
    bytes.into()
}

// Only the Linux implementation keeps keys; elsewhere these go unused.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn encode(secret: &str, idle: Duration) -> Zeroizing<Vec<u8>> {
    let mut payload = Zeroizing::new(Vec::with_capacity(secret.len() + 16));
    payload.extend_from_slice(idle.as_secs().to_string().as_bytes());
    payload.push(b'\n');
    payload.extend_from_slice(secret.as_bytes());
    payload
}

// Only the Linux implementation keeps keys; elsewhere these go unused.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn decode(payload: &[u8]) -> Option<(Duration, Zeroizing<String>)> {
    let newline = payload.iter().position(|&b| b == b'\n')?;
    let idle: u64 = std::str::from_utf8(&payload[..newline])
        .ok()?
        .parse()
        .ok()?;
    let secret = std::str::from_utf8(&payload[newline + 1..]).ok()?;
    Some((Duration::from_secs(idle), Zeroizing::new(secret.to_owned())))
}

#[cfg(target_os = "linux")]
mod imp {
    use linux_keyutils::{KeyPermissionsBuilder, KeyRing, KeyRingIdentifier, Permission};

    use super::*;

    /// The caller's session keyring, or the user-session keyring when it has none. Never a
    /// new one: a keyring created here would die with this process.
    fn session() -> Result<KeyRing, Unavailable> {
        KeyRing::from_special_id(KeyRingIdentifier::Session, false)
            .map_err(|e| Unavailable(format!("the kernel keyring is not usable here ({e})")))
    }

    /// The cached identity, its timeout pushed back; `None` when absent or expired.
    pub fn get(vault_id: &str) -> Option<Zeroizing<String>> {
        get_in(&description(vault_id))
    }

    /// The wrapped identity kept for a passphrase from the environment (see [`wrap`]).
    pub fn get_env(vault_id: &str) -> Option<Zeroizing<String>> {
        get_in(&env_description(vault_id))
    }

    fn get_in(description: &str) -> Option<Zeroizing<String>> {
        let ring = session().ok()?;
        let key = ring.search(description).ok()?;
        let payload = Zeroizing::new(key.read_to_vec().ok()?);
        let (idle, secret) = decode(&payload)?;
        let _ = key.set_timeout(idle.as_secs() as usize);
        Some(secret)
    }

    pub fn put(vault_id: &str, secret: &str, idle: Duration) -> Result<(), Unavailable> {
        put_in(&description(vault_id), secret, idle)
    }

    /// Keeps `wrapped` (from [`wrap`]) for the idle timeout.
    pub fn put_env(vault_id: &str, wrapped: &str, idle: Duration) -> Result<(), Unavailable> {
        put_in(&env_description(vault_id), wrapped, idle)
    }

    fn put_in(description: &str, secret: &str, idle: Duration) -> Result<(), Unavailable> {
        let ring = session()?;
        let payload = encode(secret, idle);
        let fail = |e: linux_keyutils::KeyError| {
            Unavailable(format!(
                "cannot keep the vault key in the kernel keyring ({e})"
            ))
        };
        let key = ring.add_key(description, &*payload).map_err(fail)?;
        // Only processes possessing this session keyring may see or read it; the owner uid
        // without possession gets nothing, other users nothing.
        key.set_perms(
            KeyPermissionsBuilder::builder()
                .posessor(Permission::ALL)
                .build(),
        )
        .map_err(fail)?;
        key.set_timeout(idle.as_secs().max(1) as usize)
            .map_err(fail)
    }

    /// Forgets the cached identity, both the unlocked and the wrapped one. Returns whether
    /// there was one.
    pub fn forget(vault_id: &str) -> bool {
        let Ok(ring) = session() else {
            return false;
        };
        let mut forgot = false;
        for description in [description(vault_id), env_description(vault_id)] {
            if let Ok(key) = ring.search(&description) {
                forgot |= key.invalidate().is_ok();
            }
        }
        forgot
    }

    pub fn supported() -> Result<(), Unavailable> {
        session().map(|_| ())
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::*;

    pub fn get(_vault_id: &str) -> Option<Zeroizing<String>> {
        None
    }

    pub fn get_env(_vault_id: &str) -> Option<Zeroizing<String>> {
        None
    }

    pub fn put(_vault_id: &str, _secret: &str, _idle: Duration) -> Result<(), Unavailable> {
        supported()
    }

    pub fn put_env(_vault_id: &str, _wrapped: &str, _idle: Duration) -> Result<(), Unavailable> {
        supported()
    }

    pub fn forget(_vault_id: &str) -> bool {
        false
    }

    pub fn supported() -> Result<(), Unavailable> {
        Err(Unavailable(
            "vault unlock keeps the vault key in the Linux kernel keyring, which this platform does not have".into(),
        ))
    }
}

pub use imp::{forget, get, get_env, put, put_env, supported};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip() {
        let payload = encode("AGE-SECRET-KEY-1XYZ", Duration::from_secs(900));
        let (idle, secret) = decode(&payload).unwrap();
        assert_eq!(idle, Duration::from_secs(900));
        assert_eq!(secret.as_str(), "AGE-SECRET-KEY-1XYZ");
        assert!(decode(b"nonsense").is_none());
    }

    #[test]
    fn wrapped_keys_open_only_with_their_passphrase_and_vault() {
        let wrapped = wrap("right", "vault-1", "AGE-SECRET-KEY-1XYZ").unwrap();
        assert_eq!(
            unwrap("right", "vault-1", &wrapped).unwrap().as_str(),
            "AGE-SECRET-KEY-1XYZ"
        );
        assert!(unwrap("wrong", "vault-1", &wrapped).is_none());
        assert!(unwrap("right", "vault-2", &wrapped).is_none());
        assert!(!wrapped.contains("AGE-SECRET"));
        assert!(unwrap("right", "vault-1", "00").is_none());
    }
}
