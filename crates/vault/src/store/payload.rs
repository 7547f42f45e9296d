//! The age calls of the store, in one place: entries of the vault's files are sealed to the
//! vault's public key and opened with the vault key; the vault key itself is wrapped under
//! the passphrase the same way.

use std::io::{Read, Write};
use std::iter;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use zeroize::Zeroizing;

/// A sealed entry opened; the error says why it does not open.
pub(super) fn open_payload(
    identity: &age::x25519::Identity,
    data: &str,
) -> Result<Zeroizing<Vec<u8>>, String> {
    let sealed = BASE64.decode(data).map_err(|_| "not base64".to_owned())?;
    decrypt(identity, &sealed).map_err(|e| format!("does not decrypt ({e})"))
}

pub(super) fn encrypt(recipient: &dyn age::Recipient, plain: &[u8]) -> std::io::Result<Vec<u8>> {
    let encryptor =
        age::Encryptor::with_recipients(iter::once(recipient)).map_err(std::io::Error::other)?;
    let mut out = Vec::with_capacity(plain.len() + 256);
    let mut writer = encryptor.wrap_output(&mut out)?;
    writer.write_all(plain)?;
    writer.finish()?;
    Ok(out)
}

pub(super) fn decrypt(
    identity: &dyn age::Identity,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, age::DecryptError> {
    let decryptor = age::Decryptor::new_buffered(sealed)?;
    let mut reader = decryptor.decrypt(iter::once(identity))?;
    let mut out = Zeroizing::new(Vec::with_capacity(sealed.len()));
    reader.read_to_end(&mut out)?;
    Ok(out)
}
