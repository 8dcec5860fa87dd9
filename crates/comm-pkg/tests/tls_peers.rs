//! `::comm::tls` against hostile TLS peers, from a raw rustls client: a
//! close_notify followed by garbage, bytes that are not TLS, and a
//! handshake left half done. The tclsh server must close those
//! connections and keep serving (no spin, no hang): each case ends with a
//! TLS comm request it must answer. Needs tclsh and openssl; fails
//! without them.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

/// The package directory, laid out once per test process.
fn package() -> PathBuf {
    common::package("tls_peers")
}

/// A CA and the server (and client) certificates it signed (localhost,
/// 127.0.0.1).
fn make_certs() -> PathBuf {
    let dir = package().join("certs");
    tclcomm::testing::make_test_certs(&dir);
    dir
}

/// tclsh serving with our comm over `::comm::tls`; killed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(certs: &Path) -> Server {
        let c = |f: &str| certs.join(f).to_string_lossy().into_owned();
        let script = format!(
            "package require comm 4.8\n\
             if {{[package provide tclcomm] eq {{}}}} {{error notours}}\n\
             after 120000 exit\n\
             ::comm::tls ::comm::comm -certfile {{{}}} -keyfile {{{}}}\n\
             ::comm::limits ::comm::comm -handshaketimeout 300\n\
             puts [::comm::comm self]\nflush stdout\n\
             vwait forever\n",
            c("server.pem"),
            c("server.key")
        );
        let mut child = Command::new("tclsh")
            .env("TCLLIBPATH", package())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("tclsh (tcl8.6)");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(script.as_bytes()).expect("script");
        drop(stdin);
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("server printed its port");
        let port = line.trim().parse().expect("a port");
        Server { child, port }
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

fn client_config(certs: &Path) -> Arc<rustls::ClientConfig> {
    let pem = std::fs::read(certs.join("ca.pem")).expect("ca.pem");
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(&pem) {
        roots.add(ca.expect("CA")).expect("CA");
    }
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

/// A TLS connection to the server, handshake done (every read bounded).
fn connect(
    addr: SocketAddr,
    config: &Arc<rustls::ClientConfig>,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(config.clone(), name).expect("client");
    let mut s = rustls::StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock).expect("TLS handshake");
    }
    s
}

/// One comm request over a fresh TLS connection; the reply line.
fn tls_send(addr: SocketAddr, config: &Arc<rustls::ClientConfig>, script: &str) -> String {
    let mut s = connect(addr, config);
    write!(s, "{{3 2}} 1\n{{send 1 {{{{{script}}}}}}}\n").expect("write");
    s.flush().expect("flush");
    let mut r = BufReader::new(s);
    let mut vers = String::new();
    r.read_line(&mut vers).expect("vers line");
    let mut reply = String::new();
    r.read_line(&mut reply).expect("reply line");
    reply.trim_end().to_owned()
}

/// Reads until the server closes (bounded by the read timeout); whether it did.
fn closed_by_server(tcp: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match tcp.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn hostile_tls_peers_are_closed_and_serving_goes_on() {
    let certs = make_certs();
    let server = Server::start(&certs);
    let config = client_config(&certs);
    let addr = server.addr();
    assert_eq!(
        tls_send(addr, &config, "expr {6*7}"),
        "{reply 1 {return -code 0 42}}"
    );

    // close_notify, then 200 KB more in the same write: what follows the
    // goodbye is ignored, the connection ends.
    let mut s = connect(addr, &config);
    s.conn.send_close_notify();
    let mut out = Vec::new();
    while s.conn.wants_write() {
        s.conn.write_tls(&mut out).unwrap();
    }
    out.extend(std::iter::repeat_n(0x17u8, 200_000));
    let _ = s.sock.write_all(&out);
    assert!(
        closed_by_server(&mut s.sock),
        "not closed after close_notify"
    );
    assert_eq!(
        tls_send(addr, &config, "expr 1"),
        "{reply 1 {return -code 0 1}}"
    );

    // Bytes that are not TLS (a plain comm client): closed.
    let mut tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = tcp.write_all(b"{3 2} 1\n{send 1 {{expr 1}}}\n");
    assert!(closed_by_server(&mut tcp), "plain bytes not refused");
    assert_eq!(
        tls_send(addr, &config, "expr 2"),
        "{reply 1 {return -code 0 2}}"
    );

    // A handshake left half done: the handshake deadline (300 ms) closes it.
    let mut tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut hello = Vec::new();
    let mut c =
        rustls::ClientConnection::new(config.clone(), ServerName::try_from("127.0.0.1").unwrap())
            .unwrap();
    c.write_tls(&mut hello).unwrap();
    tcp.write_all(&hello).unwrap();
    assert!(closed_by_server(&mut tcp), "half handshake never closed");
    assert_eq!(
        tls_send(addr, &config, "expr 3"),
        "{reply 1 {return -code 0 3}}"
    );
    let _ = std::fs::remove_dir_all(&certs);
}
