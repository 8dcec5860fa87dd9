//! TLS flags of `tclcomm send` and `attach`: driver 1's rustls transport
//! (`Transport::Tls`), the peer of `tclcomm serve --tls-cert` and of tcllib
//! with `-socketcmd tls::socket`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tclcomm::{TlsConfig, Transport};

use crate::Failure;

/// The TLS options of a client command.
#[derive(Debug, Default, clap::Args)]
pub(crate) struct TlsArgs {
    /// Connect over TLS, verifying the server's certificate against these
    /// PEM CA certificates (its name: the id's host, 127.0.0.1 by default).
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,

    /// A PEM client certificate chain to show (with --tls-key), for servers
    /// that require one.
    #[arg(long, value_name = "FILE", requires_all = ["tls_key", "tls_ca"])]
    tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

fn read(option: &str, path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| {
        Failure::local(format!(
            "tclcomm: cannot read {option} {}: {e}",
            path.display()
        ))
    })
}

impl TlsArgs {
    /// The transport these flags ask for: plain TCP without --tls-ca.
    pub(crate) fn transport(&self) -> Result<Transport, Failure> {
        let Some(ca) = &self.tls_ca else {
            return Ok(Transport::Tcp);
        };
        let ca = read("--tls-ca", ca)?;
        let identity = match (&self.tls_cert, &self.tls_key) {
            (Some(c), Some(k)) => Some((read("--tls-cert", c)?, read("--tls-key", k)?)),
            _ => None,
        };
        let config = TlsConfig::client_from_pem(
            &ca,
            identity.as_ref().map(|(c, k)| (c.as_slice(), k.as_slice())),
        )
        .map_err(|e| Failure::local(format!("tclcomm: {e}")))?;
        Ok(Transport::Tls(Arc::new(config)))
    }
}
