//! `tclcomm::transfer` against tcllib's `transfer::transmitter` and
//! `transfer::receiver` in tclsh: both directions, both connection modes,
//! 0 B, 1 B and 100 MB of every byte value, plain and through `tls::socket`;
//! and the connector's own guarantees (one peer, deadline, drop).
//!
//! These tests need tclsh with tcllib (and tcl-tls, openssl for TLS); they
//! fail when those are missing.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use tclcomm::transfer::{self, Connector, Progress, Sink, Source, TransferError};
use tclcomm::{TlsConfig, Transport};

/// How long one tclsh step (start, transfer) may take.
const STEP: Duration = Duration::from_secs(120);

/// A tclsh running one tcllib transmitter or receiver, reporting on stdout.
struct TclSide {
    child: Child,
    lines: Receiver<String>,
    stderr: PathBuf,
}

const SCRIPT: &str = r#"
lassign $argv role mode port file tlsdir
if {$tlsdir ne ""} {
    package require tls
    tls::init -certfile $tlsdir/server.pem -keyfile $tlsdir/server.key \
        -cafile $tlsdir/ca.pem -require 0 -request 0
    # tcl-tls 1.7 starts a client's handshake only when the socket is
    # written: a receiver in active mode, which only reads, would wait
    # forever (tcllib with tcllib too). Complete the handshake at connect.
    proc tlssock {args} {
        set s [tls::socket {*}$args]
        if {"-server" ni $args} { while {![tls::handshake $s]} {} }
        return $s
    }
    set extra [list -socketcmd tlssock]
} else {
    set extra {}
}
proc done {obj n {err {}}} {
    close $::ch
    puts "DONE $n $err"
    flush stdout
    set ::forever 1
}
if {$role eq "send"} {
    package require transfer::transmitter
    set ch [open $file r]
    lappend extra -blocksize 65536
    set class transfer::transmitter
} else {
    package require transfer::receiver
    set ch [open $file w]
    set class transfer::receiver
}
fconfigure $ch -translation binary
$class T -channel $ch -mode $mode -host 127.0.0.1 -port $port \
    -translation binary -command done {*}$extra
set r [T start]
if {$mode eq "passive"} { puts [list PORT $r]; flush stdout }
vwait forever
"#;

impl TclSide {
    fn spawn(role: &str, mode: &str, port: u16, file: &Path, tls: Option<&Path>) -> TclSide {
        let dir = scratch();
        let script = dir.join("side.tcl");
        std::fs::write(&script, SCRIPT).expect("write script");
        let stderr = dir.join("stderr");
        let mut child = Command::new("tclsh")
            .arg(&script)
            .args([role, mode, &port.to_string()])
            .arg(file)
            .arg(tls.map(|p| p.as_os_str().to_owned()).unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("this test needs tclsh with tcllib (apt-get install tcl tcllib)");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        TclSide {
            child,
            lines,
            stderr,
        }
    }

    /// The next line starting with `tag`, within [`STEP`].
    fn expect(&mut self, tag: &str) -> String {
        let deadline = Instant::now() + STEP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.starts_with(tag) => return l,
                Ok(_) => continue,
                Err(RecvTimeoutError::Timeout) => panic!(
                    "tclsh: no {tag} within {STEP:?}; stderr: {}",
                    std::fs::read_to_string(&self.stderr).unwrap_or_default()
                ),
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "tclsh ended before {tag}; stderr: {}",
                    std::fs::read_to_string(&self.stderr).unwrap_or_default()
                ),
            }
        }
    }

    fn port(&mut self) -> u16 {
        let l = self.expect("PORT ");
        l[5..].trim().parse().expect("port")
    }

    /// The byte count and error the Tcl completion callback reported.
    fn done(&mut self) -> (u64, String) {
        let l = self.expect("DONE ");
        let rest = &l[5..];
        let (n, err) = rest.split_once(' ').unwrap_or((rest, ""));
        (n.parse().expect("count"), err.to_string())
    }
}

impl Drop for TclSide {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn scratch() -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let d = std::env::temp_dir().join(format!(
        "tclcomm-transfer-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

/// `n` bytes in which every byte value occurs (for n ≥ 256), in an order
/// that is not a plain repetition.
fn data(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u64).wrapping_mul(2_654_435_761).wrapping_shr(7) as u8 ^ (i as u8))
        .collect()
}

const SIZES: [usize; 3] = [0, 1, 100 << 20];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Rust transmits, tcllib's receiver receives, in both modes.
fn rust_to_tcl(tls: Option<&Certs>) {
    let rt = runtime();
    for size in SIZES {
        let payload = data(size);
        if size > 256 {
            let mut seen = [false; 256];
            payload.iter().for_each(|&b| seen[b as usize] = true);
            assert!(seen.iter().all(|&s| s), "not every byte value");
        }
        for rust_mode in ["active", "passive"] {
            let dir = scratch();
            let out = dir.join("received");
            let tcl_mode = if rust_mode == "active" {
                "passive"
            } else {
                "active"
            };
            let (progress, seen) = Progress::watch();
            let sent = if rust_mode == "active" {
                let mut tcl = TclSide::spawn("recv", tcl_mode, 0, &out, tls.map(|c| &*c.dir));
                let port = tcl.port();
                let sent = rt.block_on(async {
                    let c = with_tls(Connector::active("127.0.0.1", port), tls)
                        .timeout(STEP)
                        .connect()
                        .await
                        .expect("connect to tcllib's passive receiver");
                    transfer::transmit(c, Source::Bytes(&payload), progress).await
                });
                let (n, err) = tcl.done();
                assert_eq!((n, err.as_str()), (size as u64, ""), "tcllib receiver");
                sent
            } else {
                rt.block_on(async {
                    let l = with_tls(Connector::passive(0).loopback(), tls)
                        .timeout(STEP)
                        .listen()
                        .await
                        .expect("listen");
                    let mut tcl =
                        TclSide::spawn("recv", tcl_mode, l.port(), &out, tls.map(|c| &*c.dir));
                    let s = l.accept().await.expect("accept tcllib's active receiver");
                    let sent = transfer::transmit(s, Source::Bytes(&payload), progress).await;
                    let (n, err) = tokio::task::block_in_place(|| tcl.done());
                    assert_eq!((n, err.as_str()), (size as u64, ""), "tcllib receiver");
                    sent
                })
            };
            assert_eq!(sent.expect("transmit"), size as u64);
            assert_eq!(*seen.borrow(), size as u64, "final progress");
            let got = std::fs::read(&out).expect("received file");
            assert!(
                got == payload,
                "{size} bytes, Rust {rust_mode}: tcllib received {} different bytes",
                got.len()
            );
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// tcllib's transmitter sends, Rust receives, in both modes.
fn tcl_to_rust(tls: Option<&Certs>) {
    let rt = runtime();
    for size in SIZES {
        let payload = data(size);
        let dir = scratch();
        let input = dir.join("input");
        std::fs::write(&input, &payload).expect("input file");
        for rust_mode in ["active", "passive"] {
            let out = dir.join(format!("received-{rust_mode}"));
            let (progress, seen) = Progress::watch();
            let (received, mut tcl) = if rust_mode == "active" {
                let mut tcl = TclSide::spawn("send", "passive", 0, &input, tls.map(|c| &*c.dir));
                let port = tcl.port();
                let r = rt.block_on(async {
                    let c = with_tls(Connector::active("127.0.0.1", port), tls)
                        .timeout(STEP)
                        .connect()
                        .await
                        .expect("connect to tcllib's passive transmitter");
                    transfer::receive(c, Sink::File(&out), progress).await
                });
                (r, tcl)
            } else {
                rt.block_on(async {
                    let l = with_tls(Connector::passive(0).loopback(), tls)
                        .timeout(STEP)
                        .listen()
                        .await
                        .expect("listen");
                    let tcl =
                        TclSide::spawn("send", "active", l.port(), &input, tls.map(|c| &*c.dir));
                    let s = l
                        .accept()
                        .await
                        .expect("accept tcllib's active transmitter");
                    (transfer::receive(s, Sink::File(&out), progress).await, tcl)
                })
            };
            let (n, err) = tcl.done();
            assert_eq!((n, err.as_str()), (size as u64, ""), "tcllib transmitter");
            assert_eq!(received.expect("receive"), size as u64);
            assert_eq!(*seen.borrow(), size as u64, "final progress");
            let got = std::fs::read(&out).expect("received file");
            assert!(
                got == payload,
                "{size} bytes, Rust {rust_mode}: received {} different bytes",
                got.len()
            );
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn rust_transmits_to_tcllib_receiver() {
    rust_to_tcl(None);
}

#[test]
fn tcllib_transmitter_to_rust() {
    tcl_to_rust(None);
}

#[test]
fn rust_transmits_to_tcllib_receiver_over_tls() {
    rust_to_tcl(Some(&certs()));
}

#[test]
fn tcllib_transmitter_to_rust_over_tls() {
    tcl_to_rust(Some(&certs()));
}

#[test]
fn passive_accepts_exactly_one_peer_then_stops_listening() {
    let rt = runtime();
    rt.block_on(async {
        let l = Connector::passive(0)
            .loopback()
            .listen()
            .await
            .expect("listen");
        let port = l.port();
        assert_ne!(port, 0, "the port is known at once");
        assert!(listening_here(port), "the check sees a listener");
        let accept = tokio::spawn(l.accept());
        let first = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("first peer");
        let stream = accept.await.expect("join").expect("accepted");
        assert_eq!(stream.peer_addr(), first.local_addr().expect("addr"));
        // The listener is closed once the first peer is accepted: no socket
        // of this process listens on the port any more. (Not checked by
        // connecting again: another test's listener, in a tclsh or here,
        // may be given the same port by then, both with SO_REUSEADDR.)
        assert!(
            !listening_here(port),
            "this process still listens on port {port}"
        );
    });
}

/// Whether a socket of this process listens on `port` (from /proc).
fn listening_here(port: u16) -> bool {
    let ours: std::collections::HashSet<String> = std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            l.strip_prefix("socket:[")?
                .strip_suffix(']')
                .map(str::to_owned)
        })
        .collect();
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
        std::fs::read_to_string(table)
            .unwrap_or_default()
            .lines()
            .skip(1)
            .any(|row| {
                let f: Vec<&str> = row.split_whitespace().collect();
                let local_port = f
                    .get(1)
                    .and_then(|a| a.rsplit(':').next())
                    .and_then(|p| u16::from_str_radix(p, 16).ok());
                // State 0A is LISTEN; field 9 is the socket's inode.
                local_port == Some(port)
                    && f.get(3) == Some(&"0A")
                    && f.get(9).is_some_and(|inode| ours.contains(*inode))
            })
    })
}

#[test]
fn passive_deadline_and_drop() {
    let rt = runtime();
    rt.block_on(async {
        let l = Connector::passive(0)
            .loopback()
            .timeout(Duration::from_millis(50))
            .listen()
            .await
            .expect("listen");
        let port = l.port();
        match l.accept().await {
            Err(TransferError::Timeout(_)) => {}
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert!(
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err(),
            "still listening after the deadline"
        );
        // Dropping the waiting future cancels the wait and closes the socket.
        let l = Connector::passive(0)
            .loopback()
            .listen()
            .await
            .expect("listen");
        let port = l.port();
        let waiting = tokio::spawn(l.accept());
        waiting.abort();
        assert!(waiting.await.is_err_and(|e| e.is_cancelled()));
        assert!(
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err(),
            "still listening after the drop"
        );
    });
}

#[test]
fn active_errors_are_clear() {
    let rt = runtime();
    rt.block_on(async {
        // A port nobody listens on: take one and close it.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let e = Connector::active("127.0.0.1", port)
            .connect()
            .await
            .expect_err("refused");
        assert!(matches!(e, TransferError::Connect { .. }), "{e:?}");
        assert!(
            e.to_string().starts_with("cannot connect to 127.0.0.1:"),
            "{e}"
        );
        let e = Connector::active("127.0.0.1", port)
            .listen()
            .await
            .expect_err("active does not listen");
        assert!(matches!(e, TransferError::Config(_)), "{e:?}");
        // A TLS peer that is not TLS: the handshake fails with an error, no hang.
        let l = Connector::passive(0)
            .loopback()
            .listen()
            .await
            .expect("listen");
        let port = l.port();
        let server = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let mut s = l.accept().await.expect("accept");
            let _ = s.write_all(b"not tls at all\n").await;
        });
        let certs = certs();
        let e = with_tls(Connector::active("127.0.0.1", port), Some(&certs))
            .timeout(STEP)
            .connect()
            .await
            .expect_err("not TLS");
        assert!(matches!(e, TransferError::Tls { .. }), "{e:?}");
        server.await.expect("server");
    });
}

fn with_tls(c: Connector, tls: Option<&Certs>) -> Connector {
    match tls {
        None => c,
        Some(certs) => {
            let cfg = TlsConfig::from_pem(&certs.client_pem, &certs.client_key, &certs.ca_pem)
                .expect("TLS config");
            // The Tcl side's certificate is for localhost and 127.0.0.1; ours
            // (as TLS server) uses the client pair, which has the same names.
            c.transport(Transport::Tls(Arc::new(cfg)))
        }
    }
}

struct Certs {
    dir: PathBuf,
    ca_pem: Vec<u8>,
    client_pem: Vec<u8>,
    client_key: Vec<u8>,
}

/// Generates a CA and two 2048-bit certificates for localhost/127.0.0.1.
fn certs() -> Certs {
    let ok = Command::new("tclsh")
        .stdin(Stdio::piped())
        .spawn()
        .ok()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()?
                .write_all(b"exit [catch {package require tls}]")
                .ok()?;
            c.wait().ok()
        });
    assert!(
        ok.is_some_and(|s| s.success()),
        "this test needs tclsh with the `tls` package (apt-get install tcl-tls)"
    );
    let dir = scratch();
    tclcomm::testing::make_test_certs(&dir);
    let read = |f: &str| std::fs::read(dir.join(f)).expect("certificate file");
    Certs {
        ca_pem: read("ca.pem"),
        client_pem: read("client.pem"),
        client_key: read("client.key"),
        dir,
    }
}
