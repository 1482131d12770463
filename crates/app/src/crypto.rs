//! Encryption of national ids at rest.
//!
//! Values are sealed with XChaCha20-Poly1305 (random 192-bit nonces, so no
//! nonce bookkeeping) under a 256-bit key that lives outside the database
//! (a key file or an environment variable; see docs/security.md). The
//! sealed text names the key that sealed it (`v1.<key id>.<hex>`), so keys
//! can be rotated: new values use the first key, older ones still open
//! with the keys listed after it. A keyed blind index (HMAC-SHA256 under a
//! key derived from the data key) lets the store find equal ids without
//! opening anything; without the key neither reveals the id.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use rapport_domain::patient::SealedId;
use sha2::{Digest, Sha256};

/// What went wrong with keys or sealed values.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("no data key is configured: set RAPPORT_DATA_KEY or --key-file to store national ids")]
    NoKey,
    #[error("a data key must be 64 hexadecimal characters (256 bits)")]
    BadKey,
    #[error("sealed with key {0}, which is not configured")]
    UnknownKey(String),
    #[error("a sealed value is damaged or was sealed with another key")]
    Damaged,
}

const AAD: &[u8] = b"rapport:national_id:v1";

struct DataKey {
    id: String,
    key: [u8; 32],
    index_key: [u8; 32],
}

/// The configured data keys: the first seals, all open.
#[derive(Default)]
pub struct DataKeys {
    keys: Vec<DataKey>,
}

impl std::fmt::Debug for DataKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        f.debug_struct("DataKeys").field("ids", &ids).finish()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// HMAC-SHA256 (RFC 2104), written out to keep one SHA-2 implementation
/// in the build.
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

impl DataKeys {
    /// No keys: national ids cannot be stored or opened.
    pub fn none() -> Self {
        DataKeys::default()
    }

    /// Keys from text: one 64-hex-character key per line, the sealing key
    /// first; blank lines and `#` comments are ignored.
    pub fn parse(text: &str) -> Result<Self, CryptoError> {
        let mut keys = Vec::new();
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let bytes = unhex(line)
                .filter(|b| b.len() == 32)
                .ok_or(CryptoError::BadKey)?;
            let mut key = [0u8; 32];
            key.copy_from_slice(&bytes);
            keys.push(DataKey {
                id: hex(&Sha256::digest(key)[..4]),
                index_key: hmac_sha256(&key, b"rapport blind index v1"),
                key,
            });
        }
        if keys.is_empty() {
            return Err(CryptoError::BadKey);
        }
        Ok(DataKeys { keys })
    }

    /// A new random key, as a line for a key file.
    pub fn generate_line() -> String {
        let mut k = [0u8; 32];
        rand::rng().fill_bytes(&mut k);
        hex(&k)
    }

    pub fn is_configured(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The id of the sealing key.
    pub fn current_id(&self) -> Option<&str> {
        self.keys.first().map(|k| k.id.as_str())
    }

    /// The blind index of a (normalised) national id under the sealing key.
    pub fn index(&self, value: &str) -> Result<String, CryptoError> {
        let k = self.keys.first().ok_or(CryptoError::NoKey)?;
        Ok(hex(&hmac_sha256(&k.index_key, value.as_bytes())))
    }

    /// Seals a value with the first key.
    pub fn seal(&self, value: &str) -> Result<SealedId, CryptoError> {
        let k = self.keys.first().ok_or(CryptoError::NoKey)?;
        let cipher = XChaCha20Poly1305::new_from_slice(&k.key).map_err(|_| CryptoError::BadKey)?;
        let mut nonce = [0u8; 24];
        rand::rng().fill_bytes(&mut nonce);
        let n = XNonce::try_from(&nonce[..]).map_err(|_| CryptoError::Damaged)?;
        let ct = cipher
            .encrypt(
                &n,
                Payload {
                    msg: value.as_bytes(),
                    aad: AAD,
                },
            )
            .map_err(|_| CryptoError::Damaged)?;
        let mut body = nonce.to_vec();
        body.extend_from_slice(&ct);
        Ok(SealedId {
            ciphertext: format!("v1.{}.{}", k.id, hex(&body)),
            index: self.index(value)?,
        })
    }

    /// Opens a sealed value with whichever configured key sealed it.
    pub fn open(&self, sealed: &str) -> Result<String, CryptoError> {
        let mut parts = sealed.splitn(3, '.');
        let (Some("v1"), Some(id), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(CryptoError::Damaged);
        };
        if self.keys.is_empty() {
            return Err(CryptoError::NoKey);
        }
        let k = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| CryptoError::UnknownKey(id.to_string()))?;
        let body = unhex(body)
            .filter(|b| b.len() > 24)
            .ok_or(CryptoError::Damaged)?;
        let cipher = XChaCha20Poly1305::new_from_slice(&k.key).map_err(|_| CryptoError::BadKey)?;
        let n = XNonce::try_from(&body[..24]).map_err(|_| CryptoError::Damaged)?;
        let pt = cipher
            .decrypt(
                &n,
                Payload {
                    msg: &body[24..],
                    aad: AAD,
                },
            )
            .map_err(|_| CryptoError::Damaged)?;
        String::from_utf8(pt).map_err(|_| CryptoError::Damaged)
    }

    /// Whether a sealed value was sealed with the current key.
    pub fn is_current(&self, sealed: &str) -> bool {
        self.current_id()
            .is_some_and(|id| sealed.split('.').nth(1) == Some(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn seal_open_rotate_and_tamper() {
        let k1 = DataKeys::generate_line();
        let k2 = DataKeys::generate_line();
        let old = DataKeys::parse(&k1).unwrap();
        let sealed = old.seal("11010519491231002X").unwrap();
        assert!(!sealed.ciphertext.contains("1101051949"));
        assert_eq!(old.open(&sealed.ciphertext).unwrap(), "11010519491231002X");
        // Two seals of the same value differ; their blind index does not.
        let again = old.seal("11010519491231002X").unwrap();
        assert_ne!(again.ciphertext, sealed.ciphertext);
        assert_eq!(again.index, sealed.index);
        // After rotation the old value still opens; new seals use the new key.
        let both = DataKeys::parse(&format!("{k2}\n# old\n{k1}\n")).unwrap();
        assert_eq!(both.open(&sealed.ciphertext).unwrap(), "11010519491231002X");
        assert!(!both.is_current(&sealed.ciphertext));
        assert!(both.is_current(&both.seal("x1234567").unwrap().ciphertext));
        // Without the key, or tampered, nothing opens.
        let other = DataKeys::parse(&k2).unwrap();
        assert!(matches!(
            other.open(&sealed.ciphertext),
            Err(CryptoError::UnknownKey(_))
        ));
        let mut bad = sealed.ciphertext.clone();
        let last = bad.pop().unwrap();
        bad.push(if last == '0' { '1' } else { '0' });
        assert_eq!(old.open(&bad), Err(CryptoError::Damaged));
        assert_eq!(DataKeys::none().seal("x"), Err(CryptoError::NoKey));
        assert_eq!(DataKeys::parse("abc").err(), Some(CryptoError::BadKey));
    }
}
