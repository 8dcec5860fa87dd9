//! Bytes that are not UTF-8, written by a raw client after a valid
//! handshake, reach the Rust runtime's commands as the text tcllib comm on
//! Tcl 8.6 gets for the same bytes (tclsh started here, loopback, port 0),
//! and the connection stays open for the next message. Needs tclsh with
//! tcllib: the test fails without them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use tclcomm::blocking::Channel;
use tclcomm::testing::TclPeer;
use tclcomm::{Config, Dispatcher};
use tclcomm_wire::{Framer, Message};

/// The bytes sent as the argument of `codes`: Latin-1, a truncated
/// sequence, the overlong NUL, a CESU-8 pair, a 4-byte character, stray
/// bytes (A0 and 85 are whitespace to Tcl, here inside braces), overlong
/// forms, a form beyond U+10FFFF and a raw NUL.
const PAYLOAD: &[u8] = b"caf\xe9 \xe2\x82 \xc0\x80 \xed\xa0\xbd\xed\xb8\x80 \xf0\x9f\x98\x80 \
\xff\xa0\x85 \xc1\xbf \xe0\x80\x80 \xf4\x90\x80\x80 \x00";

/// What Tcl 8.6.13 makes of [`PAYLOAD`], as `codes` lists it.
const EXPECTED: &str = "63 61 66 E9 20 E2 82 20 0 20 1F600 20 1F600 20 FF A0 85 20 C1 BF 20 \
E0 80 80 20 F4 90 80 80 20 0";

/// Lists the characters of its argument as hex codes, in Tcl.
const CODES_TCL: &str = r#"
proc codes {s} {
    set out {}
    foreach c [split $s ""] { lappend out [format %X [scan $c %c]] }
    return $out
}
"#;

/// Connects to `port`, offers a handshake, sends `{codes {PAYLOAD}}` and
/// then `{codes ok}` on the same connection, and returns both results.
fn raw_codes(port: u16) -> Vec<String> {
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut out = b"{3 2} 0\n{send 1 {{codes {".to_vec();
    out.extend_from_slice(PAYLOAD);
    out.extend_from_slice(b"}}}}\n{send 2 {{codes ok}}}\n");
    sock.write_all(&out).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut framer = Framer::default();
    let mut results = vec![None, None];
    let mut buf = [0u8; 4096];
    while results.iter().any(Option::is_none) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no replies within 30 s: {results:?}");
        sock.set_read_timeout(Some(left)).unwrap();
        let n = sock.read(&mut buf).expect("reply");
        assert!(n > 0, "connection closed before both replies: {results:?}");
        framer.feed(&buf[..n]);
        while let Some(word) = framer.next_word().unwrap() {
            if let Message::Reply { serial, outcome } = Message::decode(&word).unwrap() {
                let i = serial.0.parse::<usize>().unwrap() - 1;
                results[i] = Some(outcome.result);
            }
        }
    }
    results.into_iter().flatten().collect()
}

#[test]
fn invalid_utf8_reaches_rust_commands_as_tcllib_decodes_it() {
    let codes = |_c: &mut tclcomm::dispatch::Call<'_>, args: &[String]| {
        let s = args.first().cloned().unwrap_or_default();
        let hex: Vec<String> = s.chars().map(|c| format!("{:X}", u32::from(c))).collect();
        Ok(hex.join(" "))
    };
    let d = Dispatcher::new();
    d.register("codes", codes);
    let rust = Channel::new(Config::listening().evaluator(d)).unwrap();
    let ours = raw_codes(rust.self_id().port_number().unwrap());

    let tcllib = TclPeer::spawn(CODES_TCL).expect("tclsh with tcllib comm");
    let theirs = raw_codes(tcllib.port());

    assert_eq!(theirs, [EXPECTED, "6F 6B"]);
    assert_eq!(ours, theirs);
}
