//! Secrets: fresh random API tokens and tickets, and the SHA-256 digests they are stored and
//! compared by (a secret itself is never kept or logged).

use sha2::{Digest, Sha256};

/// Lowercase hex SHA-256 of a secret.
pub fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Generates a fresh random secret (32 random bytes, base64url) with a recognizable prefix.
pub fn new_secret(prefix: &str) -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_fresh_and_digests_are_hex() {
        let (a, b) = (new_secret("t_"), new_secret("t_"));
        assert!(a.starts_with("t_") && a.len() == 2 + 43);
        assert_ne!(a, b);
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
