//! Password hashing for apps that own their users: argon2id, stored as a PHC string.
//!
//! Parameters (OWASP's first recommendation for argon2id): 19 MiB of memory (`m=19456`),
//! 2 iterations (`t=2`), 1 lane (`p=1`), a 16-byte random salt and a 32-byte hash. The PHC
//! string records them, so a later change of parameters still verifies older hashes.
//!
//! Hashing is deliberately slow (tens of milliseconds) and uses 19 MiB while it runs; a
//! handler that hashes on every request should sit behind a rate limit.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use ring::rand::{SecureRandom, SystemRandom};

use crate::{Error, Result};

/// Memory in KiB, iterations and lanes of every new hash.
const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const LANES: u32 = 1;

fn hasher() -> Result<Argon2<'static>> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, LANES, None)
        .map_err(|e| Error::Internal(format!("argon2 parameters: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes `password` with argon2id and a fresh random salt: a PHC string such as
/// `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`, ready to store.
pub fn hash_password(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| Error::Internal("the system's random source failed".into()))?;
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| Error::Internal(format!("password salt: {e}")))?;
    let hash = hasher()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| Error::Internal(format!("password hashing: {e}")))?;
    Ok(hash.to_string())
}

/// Whether `password` matches `hash` (a PHC string from [`hash_password`], or any argon2
/// PHC string: its own parameters are used). A `hash` that is not a PHC string is an
/// internal error (the stored value is corrupt), not a mismatch.
pub fn verify_password(password: &str, hash: &str) -> Result<bool> {
    let parsed = PasswordHash::new(hash).map_err(|e| {
        Error::Internal(format!("the stored password hash is not a PHC string: {e}"))
    })?;
    match hasher()?.verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(e) => Err(Error::Internal(format!("password verification: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_state_their_parameters() {
        let hash = hash_password("correct horse").unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_password("correct horse", &hash).unwrap());
        assert!(!verify_password("correct horse!", &hash).unwrap());
        // Salted: the same password never hashes the same way twice.
        assert_ne!(hash, hash_password("correct horse").unwrap());
    }

    #[test]
    fn a_corrupt_stored_hash_is_an_error_not_a_mismatch() {
        let error = verify_password("x", "plaintext").unwrap_err();
        assert_eq!(error.code(), "INTERNAL_ERROR");
    }
}
