//! Opt-in mutual authentication with a shared secret (`auth1`): the
//! proofs the engine exchanges in the handshake, and the cookie file the
//! drivers read the secret from. The protocol is written down in
//! `docs/auth-protocol.md`.
//!
//! ```
//! use tclcomm_wire::auth::{Secret, client_proof, server_proof, verify};
//!
//! let secret = Secret::new(b"correct horse".to_vec());
//! let (ns, nc) = ("a".repeat(64), "b".repeat(64));
//! let proof = client_proof(&secret, &ns, &nc);
//! assert!(verify(&secret, b"client", &ns, &nc, &proof));
//! assert!(!verify(&Secret::new(b"wrong".to_vec()), b"client", &ns, &nc, &proof));
//! // The server's proof is another value: one cannot be replayed as the other.
//! assert_ne!(proof, server_proof(&secret, &ns, &nc));
//! ```

use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;

/// The version word a client adds to its offer to ask for authentication
/// (`{auth1 3 2} 45002`); peers that do not know it pick 3 and ignore it.
pub const OFFER: &str = "auth1";

/// The instruction of the authentication messages (`{auth1 challenge N}`,
/// `{auth1 response N P}`, `{auth1 ok P}`, `{auth1 refused R}`).
pub const INSTRUCTION: &str = "auth1";

/// A shared secret. Its `Debug` output does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// A secret from its bytes.
    pub fn new(bytes: Vec<u8>) -> Secret {
        Secret(bytes)
    }

    /// The secret's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

/// A channel's authentication settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// The shared secret both sides prove they know.
    pub secret: Secret,
    /// Refuse peers that do not authenticate (tcllib peers, ours without
    /// the secret). When false they connect unauthenticated, and only peers
    /// that offer authentication must get it right.
    pub required: bool,
}

/// Lowercase hex of bytes (nonces and proofs travel as hex words).
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn mac(secret: &Secret, role: &[u8], ns: &str, nc: &str) -> Hmac<Sha256> {
    // HMAC accepts keys of any length.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    m.update(b"tclcomm auth1 ");
    m.update(role);
    m.update(b" ");
    m.update(ns.as_bytes());
    m.update(b" ");
    m.update(nc.as_bytes());
    m
}

/// The client's proof: HMAC-SHA256 over its role and both nonces.
pub fn client_proof(secret: &Secret, ns: &str, nc: &str) -> String {
    hex(&mac(secret, b"client", ns, nc).finalize().into_bytes())
}

/// The server's proof: the same with the server's role, so neither side's
/// proof can be sent back as the other's.
pub fn server_proof(secret: &Secret, ns: &str, nc: &str) -> String {
    hex(&mac(secret, b"server", ns, nc).finalize().into_bytes())
}

/// Checks a proof (in constant time) for `role` (`b"client"` or
/// `b"server"`) and the nonces.
pub fn verify(secret: &Secret, role: &[u8], ns: &str, nc: &str, proof: &str) -> bool {
    match unhex(proof) {
        Some(p) => mac(secret, role, ns, nc).verify_slice(&p).is_ok(),
        None => false,
    }
}

/// Why a cookie file cannot be used.
#[derive(Debug, Error)]
pub enum CookieError {
    /// Others than its owner may read or write it.
    #[error("cookie file {path} is accessible by others (mode {mode:o}): run `chmod 600 {path}`")]
    Open {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// It holds no secret.
    #[error("cookie file {0} is empty")]
    Empty(String),
    /// It could not be read or created.
    #[error("cookie file {path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        error: std::io::Error,
    },
}

/// Reads the secret from a cookie file, as Erlang does with its
/// `.erlang.cookie`: a file only its owner may read or write (refused
/// otherwise), whose content without surrounding white space is the
/// secret. A missing file is created with mode 0600 and a fresh random
/// secret (64 hex characters). The one place of this crate that touches
/// files; the engine itself does not.
pub fn read_or_create_cookie(path: &Path) -> Result<Secret, CookieError> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let name = path.display().to_string();
    let io = |error| CookieError::Io {
        path: name.clone(),
        error,
    };
    if !path.exists() {
        let mut bytes = [0u8; 32];
        {
            use rand_chacha::rand_core::{RngCore, SeedableRng};
            rand_chacha::ChaCha20Rng::from_os_rng().fill_bytes(&mut bytes);
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        writeln!(f, "{}", hex(&bytes)).map_err(io)?;
    }
    let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(CookieError::Open { path: name, mode });
    }
    let text = std::fs::read(path).map_err(io)?;
    let secret = text.trim_ascii().to_vec();
    if secret.is_empty() {
        return Err(CookieError::Empty(name));
    }
    Ok(Secret::new(secret))
}
