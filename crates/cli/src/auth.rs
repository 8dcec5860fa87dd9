//! The authentication flags shared by `serve`, `send` and `attach`: where
//! the shared secret comes from, and whether peers must prove it.

use std::path::PathBuf;

use tclcomm::{AuthConfig, Secret};

use crate::Failure;

/// Authentication (opt-in; see docs/auth-protocol.md).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct AuthArgs {
    /// Authenticate with the secret in this cookie file (created, mode
    /// 0600, with a fresh secret when missing; refused when others may read
    /// it).
    #[arg(long, value_name = "FILE")]
    cookie: Option<PathBuf>,

    /// Authenticate with the default cookie file ($TCLCOMM_COOKIE, else
    /// ~/.tclcomm.cookie).
    #[arg(long)]
    auth: bool,

    /// Refuse peers that do not prove the secret (tcllib peers, ours
    /// without it). Implies --auth unless --cookie is given.
    #[arg(long)]
    auth_required: bool,
}

impl AuthArgs {
    /// The cookie file to use, if authentication is asked for.
    pub(crate) fn cookie_path(&self) -> Option<PathBuf> {
        if let Some(p) = &self.cookie {
            return Some(p.clone());
        }
        if !(self.auth || self.auth_required) {
            return None;
        }
        if let Some(p) = std::env::var_os("TCLCOMM_COOKIE") {
            return Some(PathBuf::from(p));
        }
        let home = std::env::var_os("HOME").map(PathBuf::from)?;
        Some(home.join(".tclcomm.cookie"))
    }

    /// Whether peers must authenticate.
    pub(crate) fn required(&self) -> bool {
        self.auth_required
    }

    /// The runtime's authentication settings (driver 1: send, attach).
    pub(crate) fn config(&self) -> Result<Option<AuthConfig>, Failure> {
        let Some(path) = self.cookie_path() else {
            if self.auth_required {
                return Err(Failure::comm(
                    "tclcomm: --auth-required needs a secret: set HOME or TCLCOMM_COOKIE, or give --cookie FILE"
                        .to_string(),
                ));
            }
            return Ok(None);
        };
        let secret: Secret = tclcomm::read_or_create_cookie(&path)
            .map_err(|e| Failure::local(format!("tclcomm: {e}")))?;
        Ok(Some(AuthConfig {
            secret,
            required: self.required(),
        }))
    }
}
