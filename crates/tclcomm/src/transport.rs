//! Transports: plain TCP, or TLS through rustls (the peer of Tcl's
//! `-socketcmd tls::socket`).

use std::io;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// The read half of a connection.
pub(crate) type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
/// The write half of a connection.
pub(crate) type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// How a channel's connections are carried.
#[derive(Clone, Debug, Default)]
pub enum Transport {
    /// Plain TCP (tcllib's default `-socketcmd ::socket`).
    #[default]
    Tcp,
    /// TLS over TCP (tcllib's `-socketcmd tls::socket`).
    Tls(Arc<TlsConfig>),
}

/// TLS settings: a server configuration for accepted connections (needed
/// when the channel listens) and a client configuration for outgoing ones.
#[derive(Clone)]
pub struct TlsConfig {
    /// For connections accepted by a listening channel.
    pub server: Option<Arc<rustls::ServerConfig>>,
    /// For connections this channel opens.
    pub client: Arc<rustls::ClientConfig>,
    /// The name to verify the server's certificate against; default: the
    /// host part of the id.
    pub server_name: Option<String>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("server", &self.server.is_some())
            .field("server_name", &self.server_name)
            .finish()
    }
}

/// A TLS setting could not be built.
#[derive(Debug, thiserror::Error)]
#[error("TLS configuration: {0}")]
pub struct TlsError(String);

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsConfig {
    /// Builds a configuration from PEM text: this side's certificate chain
    /// and private key (used as server, and as client certificate), and the
    /// CA certificates that peers' certificates must chain to.
    pub fn from_pem(cert_chain: &[u8], key: &[u8], ca: &[u8]) -> Result<TlsConfig, TlsError> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_chain)
            .collect::<Result<_, _>>()
            .map_err(|e| TlsError(format!("certificate: {e}")))?;
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| TlsError(format!("key: {e}")))?;
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(ca) {
            let ca = ca.map_err(|e| TlsError(format!("CA: {e}")))?;
            roots.add(ca).map_err(|e| TlsError(format!("CA: {e}")))?;
        }
        let server = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs.clone(), key.clone_key())
            .map_err(|e| TlsError(e.to_string()))?;
        let client = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(e.to_string()))?
            .with_root_certificates(roots)
            .with_client_auth_cert(certs, key)
            .map_err(|e| TlsError(e.to_string()))?;
        Ok(TlsConfig {
            server: Some(Arc::new(server)),
            client: Arc::new(client),
            server_name: None,
        })
    }

    /// Builds a client-only configuration (for a channel that only
    /// connects): the CA certificates (PEM) that servers' certificates must
    /// chain to, and optionally this side's certificate chain and key
    /// (PEM), shown to servers that ask for a client certificate.
    pub fn client_from_pem(
        ca: &[u8],
        identity: Option<(&[u8], &[u8])>,
    ) -> Result<TlsConfig, TlsError> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(ca) {
            let ca = ca.map_err(|e| TlsError(format!("CA: {e}")))?;
            roots.add(ca).map_err(|e| TlsError(format!("CA: {e}")))?;
        }
        if roots.is_empty() {
            return Err(TlsError("CA: no PEM certificate".into()));
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(e.to_string()))?
            .with_root_certificates(roots);
        let client = match identity {
            None => builder.with_no_client_auth(),
            Some((chain, key)) => {
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain)
                    .collect::<Result<_, _>>()
                    .map_err(|e| TlsError(format!("certificate: {e}")))?;
                let key = PrivateKeyDer::from_pem_slice(key)
                    .map_err(|e| TlsError(format!("key: {e}")))?;
                builder
                    .with_client_auth_cert(certs, key)
                    .map_err(|e| TlsError(e.to_string()))?
            }
        };
        Ok(TlsConfig {
            server: None,
            client: Arc::new(client),
            server_name: None,
        })
    }

    /// Sets the name verified in the server's certificate.
    pub fn with_server_name(mut self, name: impl Into<String>) -> TlsConfig {
        self.server_name = Some(name.into());
        self
    }
}

/// An open connection, ready for the reader and writer.
pub(crate) enum Halves {
    /// Plain TCP: one socket shared by reader and writers, so that a writer
    /// can write directly when nothing is queued (no task hop).
    Tcp(Arc<TcpStream>),
    /// Anything else (TLS): separate halves, written by the writer task.
    Boxed(BoxRead, BoxWrite),
}

/// Prepares an open TCP connection, wrapping it in TLS first if configured.
/// `outgoing_host` is the name dialled (for an outgoing connection).
pub(crate) async fn wrap(
    transport: &Transport,
    stream: TcpStream,
    outgoing_host: Option<&str>,
) -> io::Result<Halves> {
    let _ = stream.set_nodelay(true);
    match transport {
        Transport::Tcp => Ok(Halves::Tcp(Arc::new(stream))),
        Transport::Tls(tls) => match outgoing_host {
            Some(host) => {
                let name = tls.server_name.clone().unwrap_or_else(|| host.to_string());
                let name = rustls::pki_types::ServerName::try_from(name)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                let s = tokio_rustls::TlsConnector::from(tls.client.clone())
                    .connect(name, stream)
                    .await?;
                let (r, w) = tokio::io::split(s);
                Ok(Halves::Boxed(Box::new(r), Box::new(w)))
            }
            None => {
                let server = tls.server.clone().ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "TLS transport has no server configuration",
                    )
                })?;
                let s = tokio_rustls::TlsAcceptor::from(server)
                    .accept(stream)
                    .await?;
                let (r, w) = tokio::io::split(s);
                Ok(Halves::Boxed(Box::new(r), Box::new(w)))
            }
        },
    }
}

/// A non-blocking listening socket on `addr` (`SO_REUSEADDR`; for IPv6,
/// `v6only` if given), for the channels' and the transfer connector's
/// listeners.
pub(crate) fn open_listener(
    addr: std::net::SocketAddr,
    v6only: Option<bool>,
    backlog: i32,
) -> std::io::Result<tokio::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let domain = if addr.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let s = Socket::new(domain, Type::STREAM, None)?;
    if let Some(v) = v6only {
        s.set_only_v6(v)?;
    }
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    s.listen(backlog)?;
    s.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(s.into())
}
