//! The Secret Service (gnome-keyring, KWallet) through the `secret-service` crate, with a
//! `plain` session.
//!
//! Why `plain` and not the Diffie-Hellman session: the session's encryption protects the
//! secret on its way across the bus, and this bus is the user's own session bus, a unix
//! socket only the same uid can connect to, whose every other client is a process of that
//! uid that could as well ask the Secret Service for the same item. What DH adds there is
//! nothing an attacker in the session lacks, and it cost two 1024-bit exponentiations per
//! read (about half of a cold command; docs/backends.md and docs/performance.md). A bus over
//! TCP is refused.
//!
//! Entries are the ones keyring-core's Secret Service store wrote before (attributes
//! `service` and `username`, default collection), so existing vaults keep their key.

use std::collections::HashMap;

use secret_service::blocking::{Item, SecretService};
use secret_service::{EncryptionType, Error as SsError};
use zeroize::Zeroizing;

use crate::names::KEYRING_SERVICE;

/// One connection and session to the Secret Service.
pub(crate) struct SecretServiceKeyring {
    ss: SecretService<'static>,
}

/// What went wrong, as the keyring-store errors were sorted: unreachable, or refused.
pub(crate) enum Failure {
    Unavailable(String),
    Refused(String),
}

/// `plain` is safe only on a local bus (see the module doc).
fn local_bus_only() -> Result<(), String> {
    let address = std::env::var("DBUS_SESSION_BUS_ADDRESS").unwrap_or_default();
    if address
        .split(';')
        .any(|a| a.starts_with("tcp:") || a.starts_with("nonce-tcp:"))
    {
        return Err(
            "the session bus is reached over TCP (DBUS_SESSION_BUS_ADDRESS), and vault reads \
             the Secret Service only over a local socket; use --backend file"
                .to_owned(),
        );
    }
    Ok(())
}

fn unreachable_text(e: impl std::fmt::Display) -> String {
    format!("cannot reach the Secret Service on the session bus ({e})")
}

fn unreachable(e: impl std::fmt::Display) -> Failure {
    Failure::Unavailable(unreachable_text(e))
}

const SERVICE: &str = "org.freedesktop.secrets";
const SERVICE_PATH: &str = "/org/freedesktop/secrets";
const SERVICE_INTERFACE: &str = "org.freedesktop.Secret.Service";
const ITEM_INTERFACE: &str = "org.freedesktop.Secret.Item";

/// What the two-round-trip read found.
enum Quick {
    Found(Zeroizing<Vec<u8>>),
    Missing,
    /// Locked, more than one entry, or an answer it does not expect: the full path decides.
    Ask,
}

/// The vault key of `vault_id`, read the way every command after the idle timeout reads it.
///
/// Each call to gnome-keyring goes through the bus daemon to the provider and back (about a
/// millisecond each on the bench machine), and the secret-service crate waits for each in
/// turn: OpenSession, SearchItems, GetSecret. The session and the search do not depend on
/// each other, so they are sent together here; GetSecret needs both. A locked or duplicated
/// entry (which may need a prompt, or a clear refusal) goes the crate's way.
pub(crate) fn get(vault_id: &str) -> Result<Option<Zeroizing<Vec<u8>>>, Failure> {
    local_bus_only().map_err(Failure::Unavailable)?;
    match async_io::block_on(quick_get(vault_id))? {
        Quick::Found(secret) => Ok(Some(secret)),
        Quick::Missing => Ok(None),
        Quick::Ask => SecretServiceKeyring::connect()
            .map_err(Failure::Unavailable)?
            .get(vault_id),
    }
}

async fn quick_get(vault_id: &str) -> Result<Quick, Failure> {
    use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};

    let conn = zbus::Connection::session().await.map_err(unreachable)?;
    let open_args = ("plain", Value::from(""));
    let search_args = (SecretServiceKeyring::attributes(vault_id),);
    let open = conn.call_method(
        Some(SERVICE),
        SERVICE_PATH,
        Some(SERVICE_INTERFACE),
        "OpenSession",
        &open_args,
    );
    let search = conn.call_method(
        Some(SERVICE),
        SERVICE_PATH,
        Some(SERVICE_INTERFACE),
        "SearchItems",
        &search_args,
    );
    let (open, search) = futures_lite::future::zip(open, search).await;
    let (_, session): (OwnedValue, OwnedObjectPath) = open
        .map_err(unreachable)?
        .body()
        .deserialize()
        .map_err(unreachable)?;
    let Ok((unlocked, locked)) = search
        .map_err(unreachable)?
        .body()
        .deserialize::<(Vec<OwnedObjectPath>, Vec<OwnedObjectPath>)>()
    else {
        return Ok(Quick::Ask);
    };
    let item = match (unlocked.as_slice(), locked.is_empty()) {
        ([], true) => return Ok(Quick::Missing),
        ([item], true) => item,
        _ => return Ok(Quick::Ask),
    };
    let Ok(reply) = conn
        .call_method(
            Some(SERVICE),
            item.as_ref(),
            Some(ITEM_INTERFACE),
            "GetSecret",
            &(&session,),
        )
        .await
    else {
        return Ok(Quick::Ask);
    };
    let body = reply.body();
    let Ok((_, _, value, _)) = body.deserialize::<(OwnedObjectPath, Vec<u8>, Vec<u8>, String)>()
    else {
        return Ok(Quick::Ask);
    };
    Ok(Quick::Found(Zeroizing::new(value)))
}

impl SecretServiceKeyring {
    /// Connects and opens the session, which proves a provider answers (a bus without one
    /// accepts the connection and fails only when asked).
    pub(crate) fn connect() -> Result<SecretServiceKeyring, String> {
        local_bus_only()?;
        let ss = SecretService::connect(EncryptionType::Plain).map_err(unreachable_text)?;
        Ok(SecretServiceKeyring { ss })
    }

    fn attributes(vault_id: &str) -> HashMap<&str, &str> {
        HashMap::from([("service", KEYRING_SERVICE), ("username", vault_id)])
    }

    /// The item of `vault_id`, unlocked (which may prompt); `None` when there is none.
    fn item(&self, vault_id: &str) -> Result<Option<Item<'_>>, Failure> {
        let found = self
            .ss
            .search_items(Self::attributes(vault_id))
            .map_err(failure)?;
        let locked = found.unlocked.is_empty();
        let mut items = found.unlocked.into_iter().chain(found.locked);
        let Some(item) = items.next() else {
            return Ok(None);
        };
        if items.next().is_some() {
            return Err(Failure::Refused(format!(
                "the Secret Service holds more than one entry for vault {vault_id}; \
                 remove the extra ones (e.g. with seahorse)"
            )));
        }
        // The search said which it is: asking the item again would cost two more round
        // trips (a property read subscribes to its changes first).
        if locked {
            self.ss.unlock_all(&[&item]).map_err(failure)?;
        }
        Ok(Some(item))
    }

    pub(crate) fn get(&self, vault_id: &str) -> Result<Option<Zeroizing<Vec<u8>>>, Failure> {
        match self.item(vault_id)? {
            Some(item) => Ok(Some(Zeroizing::new(item.get_secret().map_err(failure)?))),
            None => Ok(None),
        }
    }

    /// Replaces the entry's secret, or creates the entry in the default collection.
    pub(crate) fn set(&self, vault_id: &str, secret: &[u8]) -> Result<(), Failure> {
        if let Some(item) = self.item(vault_id)? {
            return item.set_secret(secret, "text/plain").map_err(failure);
        }
        let collection = self.ss.get_default_collection().map_err(failure)?;
        if collection.is_locked().map_err(failure)? {
            collection.unlock().map_err(failure)?;
        }
        collection
            .create_item(
                &format!("vault key {vault_id}"),
                Self::attributes(vault_id),
                secret,
                true,
                "text/plain",
            )
            .map_err(failure)?;
        Ok(())
    }

    /// `false` when there was no entry.
    pub(crate) fn delete(&self, vault_id: &str) -> Result<bool, Failure> {
        match self.item(vault_id)? {
            Some(item) => item.delete().map(|()| true).map_err(failure),
            None => Ok(false),
        }
    }

    /// A lookup that needs no entry: proves a provider answers.
    pub(crate) fn probe(&self) -> Result<(), String> {
        match self.item("vault-probe") {
            Ok(_) => Ok(()),
            Err(Failure::Unavailable(e) | Failure::Refused(e)) => {
                Err(format!("the Secret Service did not answer ({e})"))
            }
        }
    }
}

fn failure(e: SsError) -> Failure {
    match e {
        SsError::Zbus(_) | SsError::ZbusFdo(_) | SsError::Unavailable => {
            Failure::Unavailable(e.to_string())
        }
        other => Failure::Refused(other.to_string()),
    }
}
