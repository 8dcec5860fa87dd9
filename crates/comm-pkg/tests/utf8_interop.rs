//! Bytes that are not UTF-8, written by a raw client after a valid
//! handshake, reach scripts evaluated by our comm package (libcomm.so in
//! tclsh, plain socket: read as bytes and framed by the engine) as the text
//! tcllib comm 4.7 on Tcl 8.6 gets for the same bytes, and the connection
//! stays open for the next message. (Over TLS our package reads through
//! Tcl's own channel with `-encoding utf-8`, as tcllib does.) Needs tclsh
//! with tcllib: the test fails without them.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tclcomm_wire::{Framer, Message};

/// The package directory, laid out once per test process.
fn package() -> PathBuf {
    common::package("utf8_interop")
}

/// The bytes sent as the argument of `codes` (see the same test of the
/// Rust runtime, crates/tclcomm/tests/utf8_interop.rs).
const PAYLOAD: &[u8] = b"caf\xe9 \xe2\x82 \xc0\x80 \xed\xa0\xbd\xed\xb8\x80 \xf0\x9f\x98\x80 \
\xff\xa0\x85 \xc1\xbf \xe0\x80\x80 \xf4\x90\x80\x80 \x00";

/// What Tcl 8.6.13 makes of [`PAYLOAD`], as `codes` lists it.
const EXPECTED: &str = "63 61 66 E9 20 E2 82 20 0 20 1F600 20 1F600 20 FF A0 85 20 C1 BF 20 \
E0 80 80 20 F4 90 80 80 20 0";

const SERVER: &str = r#"
after 60000 exit
proc codes {s} {
    set out {}
    foreach c [split $s ""] { lappend out [format %X [scan $c %c]] }
    return $out
}
puts "ready [::comm::comm self]"
flush stdout
vwait forever
"#;

/// A tclsh serving `codes` with our comm (`ours`) or tcllib's; killed on drop.
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

fn server(ours: bool) -> Server {
    let require = if ours {
        "package require comm 4.8; if {[package provide tclcomm] eq {}} {error notours}"
    } else {
        "package require -exact comm 4.7"
    };
    let mut child = Command::new("tclsh")
        .env("TCLLIBPATH", package())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("tclsh");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(format!("{require}\n{SERVER}").as_bytes())
        .expect("script");
    drop(stdin);
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    let mut server = Server { child, port: 0 };
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("server ready (tclsh with tcllib comm needed)");
    server.port = line
        .trim()
        .strip_prefix("ready ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("not a ready line: {line:?}"));
    server
}

/// Connects to `port`, offers a handshake, sends `{codes {PAYLOAD}}` and
/// then `{codes ok}` on the same connection, and returns both results.
fn raw_codes(port: u16) -> Vec<String> {
    let mut sock = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let mut out = b"{3 2} 0\n{send 1 {{codes {".to_vec();
    out.extend_from_slice(PAYLOAD);
    out.extend_from_slice(b"}}}}\n{send 2 {{codes ok}}}\n");
    sock.write_all(&out).expect("write");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut framer = Framer::default();
    let mut results = vec![None, None];
    let mut buf = [0u8; 4096];
    while results.iter().any(Option::is_none) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no replies within 30 s: {results:?}");
        sock.set_read_timeout(Some(left)).expect("timeout");
        let n = sock.read(&mut buf).expect("reply");
        assert!(n > 0, "connection closed before both replies: {results:?}");
        framer.feed(&buf[..n]);
        while let Some(word) = framer.next_word().expect("framing") {
            if let Ok(Message::Reply { serial, outcome }) = Message::decode(&word) {
                let i: usize = serial.0.parse().expect("our serial");
                results[i - 1] = Some(outcome.result);
            }
        }
    }
    results.into_iter().flatten().collect()
}

#[test]
fn invalid_utf8_reaches_scripts_as_tcllib_decodes_it() {
    let tcllib = server(false);
    let theirs = raw_codes(tcllib.port);
    let ours = server(true);
    assert_eq!(theirs, [EXPECTED, "6F 6B"]);
    assert_eq!(raw_codes(ours.port), theirs);
}
