//! TLS without tcl-tls: `::comm::tls CHAN ?-option value ...?` makes a
//! channel's connections (accepted and outgoing) TLS, done here with
//! rustls over the raw socket bytes.
//!
//! rustls is sans-IO, like the engine: each [`Session`] takes the bytes
//! read from the Tcl socket (`read_tls`), hands back the plaintext for the
//! engine, and turns the engine's plaintext into records written to the Tcl
//! channel (`write_tls`). The plain path is untouched but for one branch
//! per read and per write (whether the socket has a session).
//!
//! `-socketcmd tls::socket` keeps working as in tcllib: a channel whose
//! socket command is not Tcl's `socket` is never wrapped here (tcl-tls
//! already stacks its TLS on it).

use std::cell::RefCell;
use std::io::{Read, Write};
use std::rc::Rc;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tclcomm_tcl::{Channel, Exception, Interp, Obj};

use crate::state::Comm;

/// Plaintext handed to rustls at a time on the write path: bounds the
/// ciphertext buffer however large a message is.
const WRITE_CHUNK: usize = 256 * 1024;

/// A channel's TLS settings, as given, and the rustls configurations built
/// from them.
#[derive(Clone, Default)]
pub(crate) struct Settings {
    certfile: String,
    keyfile: String,
    cafile: String,
    require: bool,
    servername: String,
    /// For accepted connections (needs `-certfile` and `-keyfile`).
    server: Option<Arc<rustls::ServerConfig>>,
    /// For outgoing connections (needs `-cafile`).
    client: Option<Arc<rustls::ClientConfig>>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_file(option: &str, path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("couldn't read {option} \"{path}\": {e}"))
}

fn certs(option: &str, path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read_file(option, path)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{option} \"{path}\": {e}"))?;
    if certs.is_empty() {
        return Err(format!("{option} \"{path}\": no PEM certificate in it"));
    }
    Ok(certs)
}

impl Settings {
    /// Builds the rustls configurations from the paths; errors name the
    /// option and the file.
    fn build(&mut self) -> Result<(), String> {
        let identity = match (self.certfile.is_empty(), self.keyfile.is_empty()) {
            (true, true) => None,
            (false, false) => {
                let chain = certs("-certfile", &self.certfile)?;
                let pem = read_file("-keyfile", &self.keyfile)?;
                let key = PrivateKeyDer::from_pem_slice(&pem)
                    .map_err(|e| format!("-keyfile \"{}\": {e}", self.keyfile))?;
                Some((chain, key))
            }
            _ => return Err("-certfile and -keyfile go together".into()),
        };
        let roots = if self.cafile.is_empty() {
            None
        } else {
            let mut roots = rustls::RootCertStore::empty();
            for ca in certs("-cafile", &self.cafile)? {
                roots
                    .add(ca)
                    .map_err(|e| format!("-cafile \"{}\": {e}", self.cafile))?;
            }
            Some(Arc::new(roots))
        };
        if self.require && roots.is_none() {
            return Err("-require 1 needs -cafile (the CA of client certificates)".into());
        }
        self.server = match &identity {
            None => None,
            Some((chain, key)) => {
                let builder = rustls::ServerConfig::builder_with_provider(provider())
                    .with_safe_default_protocol_versions()
                    .map_err(|e| e.to_string())?;
                let builder = match &roots {
                    // Client certificates are checked whenever a CA is
                    // given; -require decides whether one must be shown.
                    Some(roots) => {
                        let v = rustls::server::WebPkiClientVerifier::builder_with_provider(
                            roots.clone(),
                            provider(),
                        );
                        let v = if self.require {
                            v
                        } else {
                            v.allow_unauthenticated()
                        };
                        builder.with_client_cert_verifier(v.build().map_err(|e| e.to_string())?)
                    }
                    None => builder.with_no_client_auth(),
                };
                let config = builder
                    .with_single_cert(chain.clone(), key.clone_key())
                    .map_err(|e| format!("-certfile/-keyfile: {e}"))?;
                Some(Arc::new(config))
            }
        };
        self.client = match &roots {
            None => None,
            Some(roots) => {
                let builder = rustls::ClientConfig::builder_with_provider(provider())
                    .with_safe_default_protocol_versions()
                    .map_err(|e| e.to_string())?
                    .with_root_certificates(roots.clone());
                let config = match identity {
                    Some((chain, key)) => builder
                        .with_client_auth_cert(chain, key)
                        .map_err(|e| format!("-certfile/-keyfile: {e}"))?,
                    None => builder.with_no_client_auth(),
                };
                Some(Arc::new(config))
            }
        };
        if self.server.is_none() && self.client.is_none() {
            return Err(
                "TLS needs -certfile and -keyfile (to accept) or -cafile (to connect)".into(),
            );
        }
        Ok(())
    }

    /// A new session for a connection: a client one for an outgoing
    /// connection to `host` (the id's host, unless `-servername`), else a
    /// server one.
    pub(crate) fn session(&self, outgoing_host: Option<&str>) -> Result<Session, String> {
        let mut conn: rustls::Connection = match outgoing_host {
            Some(host) => {
                let client = self.client.clone().ok_or(
                    "TLS: no -cafile to verify the server with (see ::comm::tls)".to_string(),
                )?;
                let name = if self.servername.is_empty() {
                    host
                } else {
                    &self.servername
                };
                let name = ServerName::try_from(name.to_string())
                    .map_err(|e| format!("TLS: server name \"{name}\": {e}"))?;
                rustls::ClientConnection::new(client, name)
                    .map_err(|e| format!("TLS: {e}"))?
                    .into()
            }
            None => {
                let server = self.server.clone().ok_or(
                    "TLS: no -certfile/-keyfile to accept connections with (see ::comm::tls)"
                        .to_string(),
                )?;
                rustls::ServerConnection::new(server)
                    .map_err(|e| format!("TLS: {e}"))?
                    .into()
            }
        };
        // The engine queues its first messages before the handshake ends,
        // and a message can be any size: rustls must hold them all (the
        // engine's -maxoutbound bounds what a peer makes us hold).
        conn.set_buffer_limit(None);
        Ok(Session {
            conn: RefCell::new(conn),
            spare: RefCell::default(),
        })
    }
}

/// The TLS state of one socket.
pub(crate) struct Session {
    conn: RefCell<rustls::Connection>,
    /// A buffer reused for plaintext (see [`Session::received`]).
    spare: RefCell<Vec<u8>>,
}

/// Writes what rustls has to send (handshake messages, records, alerts)
/// to the Tcl channel. Errors mean the peer is gone: the read side reports.
fn send_pending(conn: &mut rustls::Connection, channel: &Channel) -> bool {
    if !conn.wants_write() {
        return false;
    }
    let mut out = Vec::new();
    while conn.wants_write() {
        if conn.write_tls(&mut out).is_err() {
            break;
        }
    }
    let _ = channel.write(&out);
    true
}

impl Session {
    /// Sends what the session has to say first (a client's hello).
    pub(crate) fn start(&self, channel: &Channel) {
        if send_pending(&mut self.conn.borrow_mut(), channel) {
            let _ = channel.flush();
        }
    }

    /// Takes the `raw` bytes read from the socket; on return `raw` holds
    /// the plaintext they carried (possibly none). Handshake answers are
    /// written and flushed. `Ok(true)`: the peer closed the session
    /// (close_notify). An error is the reason to close the connection.
    pub(crate) fn received(&self, channel: &Channel, raw: &mut Vec<u8>) -> Result<bool, String> {
        let mut conn = self.conn.borrow_mut();
        let mut plain = self.spare.borrow_mut();
        plain.clear();
        let mut input: &[u8] = raw;
        let mut closed = false;
        let mut result = Ok(());
        while !input.is_empty() {
            // read_tls takes what fits in its buffer; draining the
            // plaintext after each call makes room for the rest.
            match conn.read_tls(&mut input) {
                // Nothing taken: the peer already said close_notify, and
                // whatever follows it is ignored (never a spin).
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    result = Err(format!("TLS: {e}"));
                    break;
                }
            }
            if let Err(e) = conn.process_new_packets() {
                result = Err(format!("TLS: {e}"));
                break;
            }
            loop {
                let at = plain.len();
                plain.resize(at + 64 * 1024, 0);
                match conn.reader().read(&mut plain[at..]) {
                    Ok(0) => {
                        plain.truncate(at);
                        closed = true;
                        break;
                    }
                    Ok(n) => plain.truncate(at + n),
                    Err(_) => {
                        plain.truncate(at);
                        break;
                    }
                }
            }
        }
        // Also after an error: rustls then has an alert to send, which
        // tells the peer why.
        if send_pending(&mut conn, channel) {
            let _ = channel.flush();
        }
        std::mem::swap(raw, &mut *plain);
        result.map(|()| closed)
    }

    /// Encrypts `bytes` and writes the records to the Tcl channel (to its
    /// buffers; the caller flushes). Before the handshake ends rustls holds
    /// the plaintext and sends it once the handshake is done.
    pub(crate) fn write(&self, channel: &Channel, bytes: &[u8]) -> Result<(), Exception> {
        let mut conn = self.conn.borrow_mut();
        for chunk in bytes.chunks(WRITE_CHUNK) {
            conn.writer()
                .write_all(chunk)
                .map_err(|e| Exception::error(format!("TLS: {e}")))?;
            send_pending(&mut conn, channel);
        }
        Ok(())
    }

    /// Says goodbye (close_notify) before the socket is closed.
    pub(crate) fn close_notify(&self, channel: &Channel) {
        let mut conn = self.conn.borrow_mut();
        conn.send_close_notify();
        send_pending(&mut conn, channel);
    }
}

fn bool_text(b: bool) -> &'static str {
    if b { "1" } else { "0" }
}

/// `::comm::tls chan ?-option value ...?`: TLS with rustls for the
/// channel's connections made from now on (accepted and outgoing), without
/// tcl-tls. Options: `-certfile F -keyfile F` (this side's certificate
/// chain and key, PEM: needed to accept, and shown to servers that ask),
/// `-cafile F` (PEM CA certificates that peers' certificates must chain
/// to: needed to connect; on a server, client certificates are checked
/// against it), `-require BOOL` (a server refuses clients without a
/// certificate), `-servername NAME` (the name verified in servers'
/// certificates; default: the host of the id), `-off 1` (back to plain).
/// With only `chan`, a dict of the settings (paths, not contents).
pub(crate) fn cmd_tls(i: Interp<'_>, comm: &Rc<Comm>, objv: &[Obj]) -> Result<Obj, Exception> {
    if objv.len() < 2 {
        return Err(i.wrong_num_args(objv, 1, "chan ?-option value ...?"));
    }
    let c = comm.chan_or_err(&objv[1].to_str())?;
    let rest = &objv[2..];
    let current = c.tls.borrow().clone();
    if rest.is_empty() {
        let s = current.as_deref().cloned().unwrap_or_default();
        return Ok(Obj::list_of([
            "-certfile",
            &s.certfile,
            "-keyfile",
            &s.keyfile,
            "-cafile",
            &s.cafile,
            "-require",
            bool_text(s.require),
            "-servername",
            &s.servername,
        ]));
    }
    if !rest.len().is_multiple_of(2) {
        return Err(Exception::error(format!(
            "value for \"{}\" missing",
            rest[rest.len() - 1].to_str()
        )));
    }
    let mut s = current.as_deref().cloned().unwrap_or_default();
    let mut off = false;
    for pair in rest.chunks(2) {
        let (o, v) = (pair[0].to_str(), &pair[1]);
        match &*o {
            "-certfile" => s.certfile = v.to_str().into_owned(),
            "-keyfile" => s.keyfile = v.to_str().into_owned(),
            "-cafile" => s.cafile = v.to_str().into_owned(),
            "-servername" => s.servername = v.to_str().into_owned(),
            "-require" => s.require = v.to_bool()?,
            "-off" => off = v.to_bool()?,
            _ => {
                return Err(Exception::error(format!(
                    "bad option \"{o}\": must be -certfile, -keyfile, -cafile, -require, \
                     -servername, or -off"
                )));
            }
        }
    }
    if off {
        *c.tls.borrow_mut() = None;
        return Ok(Obj::new());
    }
    s.build().map_err(Exception::error)?;
    *c.tls.borrow_mut() = Some(Rc::new(s));
    Ok(Obj::new())
}
