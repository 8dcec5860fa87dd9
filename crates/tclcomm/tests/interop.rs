//! The runtime against real tcllib comm 4.7 peers (tclsh started by the
//! tests on loopback, port 0), in both directions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tclcomm::blocking::Channel;
use tclcomm::testing::{TclPeer, tcl_available};
use tclcomm::{Code, Config, Dispatcher, Error, Id, Script, TclError};
use tclcomm_wire::list::format_list;

/// Fails the test when tclsh or tcllib comm is missing (.ci/run installs
/// both): a missing tool must never look like a pass.
macro_rules! need_tcl {
    () => {
        assert!(
            tcl_available(),
            "these tests need tclsh 8.6 with tcllib's `comm` package (apt-get install tcl tcllib)"
        );
    };
}

const PRELUDE: &str = r#"
proc echo {s} { return $s }
proc big {n} { string repeat "\{\}\[\]\$\\\" \n\t\x00é中;#" $n }
proc delayed {ms value} {
    set f [::comm::comm return_async]
    after $ms [list $f return $value]
}
proc askback {} {
    set v [::comm::comm send [::comm::comm remoteid] {client-value}]
    return "client says $v"
}
"#;

/// Strings with every character Tcl's quoting treats specially.
fn special_strings() -> Vec<String> {
    let mut v: Vec<String> = [
        "",
        " ",
        "a b",
        "{",
        "}",
        "{a}",
        "}{",
        "a{b",
        "\\",
        "a\\",
        "a\\\\",
        "\\{",
        "\"",
        "a\"b",
        "[x]",
        "]",
        "$v",
        "$",
        ";",
        "#x",
        "#",
        "\n",
        "\r\n",
        "\t",
        "\x0b\x0c",
        "\0",
        "a\0b",
        "é中",
        "😀",
        "a\\\nb",
        "{\\}",
        "\\}",
        "{unbalanced",
        "x}",
        "}}{{",
        "  lead and trail  ",
        "\\x41\\u0041",
        "\\n literal",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push("{\"}[$;\\\n\t\0é😀 }".repeat(50));
    v
}

fn tcl_word(s: &str) -> String {
    // A list-quoted element is a valid word in any non-first position.
    let l = format_list(["x", s]);
    l[2..].to_string()
}

fn rust_server() -> (Channel, Dispatcher) {
    let d = Dispatcher::new();
    d.register("echo", |_c, args| {
        Ok(args.first().cloned().unwrap_or_default())
    });
    d.register("big", |_c, args| {
        let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(0);
        Ok(big(n))
    });
    d.register("boom", |_c, _a| {
        Err(TclError::new("boom").with_errorcode("MY CODE"))
    });
    let ch = Channel::new(Config::listening().evaluator(d.clone())).unwrap();
    (ch, d)
}

fn big(n: usize) -> String {
    "{}[]$\\\" \n\t\0é中;#".repeat(n)
}

#[test]
fn rust_to_tcl_sync_results_byte_exact() {
    need_tcl!();
    let peer = TclPeer::spawn(PRELUDE).unwrap();
    let ch = Channel::new(Config::new()).unwrap();
    let id = Id::from_text(peer.id());
    assert_eq!(ch.send(id.clone(), "set a 1").unwrap(), "1");
    for s in special_strings() {
        assert_eq!(
            ch.send(id.clone(), Script::command(["echo", s.as_str()]))
                .unwrap(),
            s,
            "echo of {s:?}"
        );
    }
    // comm's double evaluation: several words are concatenated.
    assert_eq!(
        ch.send(id.clone(), ["set", "b", "{hello world}"]).unwrap(),
        "hello world"
    );
}

#[test]
fn rust_to_tcl_large_result() {
    need_tcl!();
    let peer = TclPeer::spawn(PRELUDE).unwrap();
    let ch = Channel::new(Config::new()).unwrap();
    // A 12 MB result full of special characters, NUL and non-ASCII, made by
    // Tcl and received by us. (The other way round, tcllib's own receiver
    // is quadratic: 10 MB takes minutes there; ours is measured in
    // runtime.rs and the benchmarks.)
    let n = 800_000;
    let got = ch
        .send(Id::from_text(peer.id()), format!("big {n}"))
        .unwrap();
    assert!(
        got == big(n),
        "large result differs (len {} vs {})",
        got.len(),
        big(n).len()
    );
}

#[test]
fn rust_to_tcl_errors_keep_errorinfo_and_errorcode() {
    need_tcl!();
    let peer = TclPeer::spawn(PRELUDE).unwrap();
    let ch = Channel::new(Config::new()).unwrap();
    let id = Id::from_text(peer.id());
    let e = ch
        .send(id.clone(), "error boom {my info} {MY CODE}")
        .unwrap_err();
    let r = e.remote().expect("a remote error");
    assert_eq!(r.code, Code::Error);
    assert_eq!(r.message, "boom");
    assert_eq!(r.errorcode, "MY CODE");
    // Byte for byte what spec §2.9 transcript 3 shows.
    assert_eq!(
        r.errorinfo,
        "my info\n    (\"uplevel\" body line 1)\n    invoked from within\n\"uplevel #0 {error boom {my info} {MY CODE}}\"\n    invoked from within\n\"catch $thecmd ret\""
    );
    let e = ch.send(id.clone(), "expr 1/0").unwrap_err();
    assert_eq!(
        e.remote().unwrap().errorcode,
        "ARITH DIVZERO {divide by zero}"
    );
    assert_eq!(e.to_string(), "divide by zero");
}

#[test]
fn rust_to_tcl_codes_2_3_4_and_others() {
    need_tcl!();
    let peer = TclPeer::spawn(PRELUDE).unwrap();
    let ch = Channel::new(Config::new()).unwrap();
    let id = Id::from_text(peer.id());
    assert_eq!(
        ch.send(id.clone(), "return -code return xyz").unwrap(),
        "xyz"
    );
    assert_eq!(ch.send(id.clone(), "return -code 5 five").unwrap(), "five");
    let e = ch.send(id.clone(), "break").unwrap_err();
    assert_eq!(e.to_string(), "invoked \"break\" outside of a loop");
    assert_eq!(e.remote().unwrap().errorcode, "TCL RESULT UNEXPECTED");
    let e = ch.send(id.clone(), "continue").unwrap_err();
    assert_eq!(e.to_string(), "invoked \"continue\" outside of a loop");
    let e = ch
        .send(id.clone(), "return -level 0 -code 7 seven")
        .unwrap_err();
    assert_eq!(e.remote().unwrap().code, Code::Other(7));
    assert_eq!(e.remote().unwrap().result, "seven");
    // The raw outcome is there for who wants it.
    let o = ch.call(id, "break", None).unwrap();
    assert_eq!(o.code, Code::Break);
}

#[test]
fn rust_to_tcl_async_and_callback() {
    need_tcl!();
    let peer = TclPeer::spawn(PRELUDE).unwrap();
    let ch = Channel::new(Config::new()).unwrap();
    let id = Id::from_text(peer.id());
    ch.send_async(id.clone(), "set ::fox a").unwrap();
    // Messages on one connection run in order: the async ran first.
    assert_eq!(ch.send(id.clone(), "set ::fox").unwrap(), "a");
    let (tx, rx) = mpsc::channel();
    let tx2 = tx.clone();
    let s1 = ch
        .send_callback(id.clone(), "list b a", move |info| tx.send(info).unwrap())
        .unwrap();
    let s2 = ch
        .send_callback(id.clone(), "error oops", move |info| {
            tx2.send(info).unwrap()
        })
        .unwrap();
    let mut got = [
        rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        rx.recv_timeout(Duration::from_secs(10)).unwrap(),
    ];
    got.sort_by_key(|i| i.serial);
    assert_eq!((got[0].serial, got[1].serial), (s1, s2));
    assert_eq!(got[0].code, Some(Code::Ok));
    assert_eq!(got[0].result, "b a");
    assert_eq!(got[0].errorcode, "");
    assert_eq!(got[1].code, Some(Code::Error));
    assert_eq!(got[1].result, "oops");
    assert_eq!(got[1].errorcode, "NONE");
    assert!(
        got[1]
            .errorinfo
            .starts_with("oops\n    while executing\n\"error oops\"")
    );
    assert_eq!(got[0].chan, ch.as_async().name());
}

#[test]
fn rust_to_tcl_return_async_on_the_tcl_side() {
    need_tcl!();
    let peer = TclPeer::spawn(PRELUDE).unwrap();
    let ch = Channel::new(Config::new()).unwrap();
    let id = Id::from_text(peer.id());
    assert_eq!(ch.send(id.clone(), "delayed 100 fut").unwrap(), "fut");
    // Two callbacks answered by futures complete out of order: the server
    // was not blocked by the slower one.
    let order = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    for (ms, v) in [(600, "A"), (100, "B")] {
        let order = order.clone();
        let tx = tx.clone();
        ch.send_callback(id.clone(), format!("delayed {ms} {v}"), move |info| {
            order.lock().unwrap().push(info.result);
            tx.send(()).unwrap();
        })
        .unwrap();
    }
    for _ in 0..2 {
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
    }
    assert_eq!(*order.lock().unwrap(), vec!["B", "A"]);
}

#[test]
fn rust_to_tcl_peer_exit_mid_call() {
    need_tcl!();
    let mut peer = TclPeer::spawn(PRELUDE).unwrap();
    let ch = Channel::new(Config::new()).unwrap();
    let id = Id::from_text(peer.id());
    let (tx, rx) = mpsc::channel();
    // The first request waits in a nested event loop, so the peer goes on
    // serving; the second makes it exit with both calls unanswered.
    ch.send_callback(id.clone(), "vwait ::never", move |info| {
        tx.send(info).unwrap()
    })
    .unwrap();
    let e = ch
        .send(id.clone(), "after 100 exit; vwait ::never")
        .unwrap_err();
    assert_eq!(
        e,
        Error::Lost("target application died or connection lost".into())
    );
    let info = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(info.code, None);
    assert_eq!(info.code_text(), "-1");
    assert_eq!(info.result, "target application died or connection lost");
    assert_eq!(info.errorcode, "NONE");
    // Once the process is gone, connecting again fails the Tcl way.
    peer.wait_exit(Duration::from_secs(10)).unwrap();
    let e = ch.send(id, "set a").unwrap_err();
    assert_eq!(
        e.to_string(),
        "Connect to remote failed: couldn't open socket: connection refused"
    );
}

#[test]
fn tcl_to_rust_sync_results_byte_exact() {
    need_tcl!();
    let (server, _d) = rust_server();
    let mut peer = TclPeer::spawn(PRELUDE).unwrap();
    let rid = server.self_id();
    for s in special_strings() {
        let got = peer
            .eval_ok(&format!(
                "::comm::comm send {rid} [list echo {}]",
                tcl_word(&s)
            ))
            .unwrap();
        assert_eq!(got, s, "echo of {s:?}");
    }
    // Fragments are concatenated on our side as Tcl does.
    assert_eq!(
        peer.eval_ok(&format!("::comm::comm send {rid} echo {{a b}}"))
            .unwrap(),
        "a"
    );
}

#[test]
fn tcl_to_rust_large_result() {
    need_tcl!();
    let (server, d) = rust_server();
    let n = 800_000;
    let seen = Arc::new(Mutex::new(false));
    let seen2 = seen.clone();
    // Tcl sends us 12 MB of special characters; we check every byte.
    d.register("check", move |_c, args| {
        *seen2.lock().unwrap() = true;
        Ok(if args.first() == Some(&big(n)) {
            "same".into()
        } else {
            "differs".into()
        })
    });
    let mut peer = TclPeer::spawn(PRELUDE).unwrap();
    peer.set_timeout(Duration::from_secs(60));
    let rid = server.self_id();
    let got = peer
        .eval_ok(&format!("::comm::comm send {rid} [list check [big {n}]]"))
        .unwrap();
    assert_eq!(got, "same");
    assert!(*seen.lock().unwrap());
}

#[test]
fn tcl_to_rust_errors_and_codes() {
    need_tcl!();
    let (server, _d) = rust_server();
    let mut peer = TclPeer::spawn(PRELUDE).unwrap();
    let rid = server.self_id();
    let a = peer
        .eval_full(&format!("::comm::comm send {rid} boom"))
        .unwrap();
    assert_eq!(
        (a.code, a.result.as_str(), a.errorcode.as_str()),
        (1, "boom", "MY CODE")
    );
    assert!(
        a.errorinfo
            .starts_with("boom\n    while executing\n\"boom\""),
        "{}",
        a.errorinfo
    );
    let a = peer
        .eval_full(&format!("::comm::comm send {rid} nosuch"))
        .unwrap();
    assert_eq!(
        (a.code, a.result.as_str()),
        (1, "invalid command name \"nosuch\"")
    );
    assert_eq!(
        peer.eval_ok(&format!(
            "::comm::comm send {rid} {{return -code return xyz}}"
        ))
        .unwrap(),
        "xyz"
    );
    let a = peer
        .eval_full(&format!("::comm::comm send {rid} break"))
        .unwrap();
    assert_eq!(
        (a.code, a.result.as_str()),
        (1, "invoked \"break\" outside of a loop")
    );
    let a = peer
        .eval_full(&format!("::comm::comm send {rid} continue"))
        .unwrap();
    assert_eq!(
        (a.code, a.result.as_str()),
        (1, "invoked \"continue\" outside of a loop")
    );
    // No fragments at all: uplevel's own error, as tcllib answers.
    let a = peer.eval_full(&format!("::comm::comm send {rid}")).unwrap();
    assert_eq!(a.code, 1);
}

#[test]
fn tcl_to_rust_async_and_callback() {
    need_tcl!();
    let (server, d) = rust_server();
    let count = Arc::new(AtomicUsize::new(0));
    let c2 = count.clone();
    d.register("bump", move |_c, _a| {
        Ok(c2.fetch_add(1, Ordering::SeqCst).to_string())
    });
    let mut peer = TclPeer::spawn(PRELUDE).unwrap();
    let rid = server.self_id();
    peer.eval_ok(&format!(
        "for {{set i 0}} {{$i < 100}} {{incr i}} {{::comm::comm send -async {rid} bump}}"
    ))
    .unwrap();
    assert_eq!(
        peer.eval_ok(&format!("::comm::comm send {rid} bump"))
            .unwrap(),
        "100"
    );
    let got = peer
        .eval_ok(&format!(
            "proc cb {{args}} {{set ::cb $args}}; ::comm::comm send -command cb {rid} {{echo hi}}; vwait ::cb; \
             dict get $::cb -result"
        ))
        .unwrap();
    assert_eq!(got, "hi");
    let got = peer
        .eval_ok("list [dict get $::cb -code] [dict get $::cb -chan] [dict get $::cb -id]")
        .unwrap();
    assert_eq!(got, format!("0 ::comm::comm {rid}"));
}

#[test]
fn tcl_to_rust_return_async_on_the_rust_side() {
    need_tcl!();
    // The first request (A) is held; the second (B) is answered at once and
    // then A, from another thread, as comm's return_async does: the answers
    // arrive out of request order, B before A, with no timing involved.
    let first: Arc<Mutex<Option<(tclcomm::Responder, String)>>> = Arc::default();
    let ch = tclcomm::blocking::Channel::new(Config::listening().evaluator(
        move |req: tclcomm::Incoming, resp: tclcomm::Responder| {
            let words = tclcomm_wire::list::parse_list(&req.script_text()).unwrap_or_default();
            let value = words.get(1).cloned().unwrap_or_default();
            let mut held = first.lock().unwrap();
            match held.take() {
                None => *held = Some((resp, value)),
                Some((earlier, earlier_value)) => {
                    resp.ok(value);
                    std::thread::spawn(move || {
                        earlier.ok(earlier_value);
                    });
                }
            }
        },
    ))
    .unwrap();
    let mut peer = TclPeer::spawn(PRELUDE).unwrap();
    let rid = ch.self_id();
    let got = peer
        .eval_ok(&format!(
            "set ::order {{}}
             proc cb {{args}} {{lappend ::order [dict get $args -result]}}
             ::comm::comm send -command cb {rid} {{later A}}
             ::comm::comm send -command cb {rid} {{later B}}
             while {{[llength [set ::order]] < 2}} {{vwait ::order}}
             set ::order"
        ))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got, "B A");
}

#[test]
fn tcl_to_rust_server_dies_mid_call() {
    need_tcl!();
    // The request is held (never answered) and reported; once it is there,
    // the server channel is destroyed under the waiting caller.
    let (arrived_tx, arrived_rx) = mpsc::channel::<()>();
    let held: Arc<Mutex<Vec<tclcomm::Responder>>> = Arc::default();
    let keep = held.clone();
    let ch = Channel::new(Config::listening().evaluator(
        move |_req: tclcomm::Incoming, resp: tclcomm::Responder| {
            keep.lock().unwrap().push(resp);
            let _ = arrived_tx.send(());
        },
    ))
    .unwrap();
    let mut peer = TclPeer::spawn(PRELUDE).unwrap();
    let rid = ch.self_id();
    let killer = ch.clone();
    std::thread::spawn(move || {
        if arrived_rx.recv_timeout(Duration::from_secs(10)).is_ok() {
            killer.destroy();
        }
    });
    let a = peer
        .eval_full(&format!("::comm::comm send {rid} {{wait forever}}"))
        .unwrap();
    assert_eq!(
        (a.code, a.result.as_str()),
        (1, "target application died or connection lost")
    );
    drop(held);
}

#[test]
fn listen_off_client_is_called_back_over_its_own_connection() {
    need_tcl!();
    let peer = TclPeer::spawn(PRELUDE).unwrap();
    let d = Dispatcher::new();
    d.register("client-value", |_c, _a| {
        Ok(format!(
            "from {}",
            tclcomm::remoteid()
                .map(|i| i.to_string())
                .unwrap_or_default()
        ))
    });
    let ch = Channel::new(Config::new().evaluator(d)).unwrap();
    assert_eq!(ch.self_id(), Id::port(0));
    let got = ch.send(Id::from_text(peer.id()), "askback").unwrap();
    assert_eq!(got, format!("client says from {}", peer.id()));
}

#[test]
fn tls_with_tcl_tls_socket() {
    need_tcl!();
    // Certificates are generated by the test (2048-bit); see runtime.rs for
    // Rust↔Rust TLS. Interop needs tcl-tls on the Tcl side.
    let certs = tls_certs().expect(
        "this test needs openssl and tclsh with the `tls` package (apt-get install openssl tcl-tls)",
    );
    let mut peer = TclPeer::spawn(&format!(
        "package require tls
         tls::init -certfile {{{dir}/server.pem}} -keyfile {{{dir}/server.key}} -cafile {{{dir}/ca.pem}} -require 0 -request 0
         ::comm::comm new ::T -socketcmd tls::socket -listen 1 -local 1
         proc echo {{s}} {{return $s}}",
        dir = certs.dir.display()
    ))
    .unwrap();
    let tport = peer.eval_ok("::T self").unwrap();
    let tls = tclcomm::TlsConfig::from_pem(&certs.client_pem, &certs.client_key, &certs.ca_pem)
        .unwrap()
        .with_server_name("localhost");
    let d = Dispatcher::new();
    d.register("echo", |_c, a| Ok(a.first().cloned().unwrap_or_default()));
    let ch = Channel::new(
        Config::listening()
            .transport(tclcomm::Transport::Tls(Arc::new(tls)))
            .evaluator(d),
    )
    .unwrap();
    let id = Id::from_text(tport);
    for s in ["plain", "a{b", "é中\0"] {
        assert_eq!(
            ch.send(id.clone(), Script::command(["echo", s])).unwrap(),
            s
        );
    }
    // And Tcl to Rust over TLS.
    let got = peer
        .eval_ok(&format!("::T send {} {{echo over-tls}}", ch.self_id()))
        .unwrap();
    assert_eq!(got, "over-tls");
}

struct Certs {
    dir: std::path::PathBuf,
    ca_pem: Vec<u8>,
    client_pem: Vec<u8>,
    client_key: Vec<u8>,
}

fn tls_certs() -> Option<Certs> {
    use std::process::Command;
    let ok = Command::new("tclsh")
        .arg("/dev/stdin")
        .stdin(std::process::Stdio::piped())
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
    if !ok.is_some_and(|s| s.success()) {
        return None;
    }
    let dir = std::env::temp_dir().join(format!(
        "tclcomm-tls-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    tclcomm::testing::make_test_certs(&dir);
    Some(Certs {
        ca_pem: std::fs::read(dir.join("ca.pem")).ok()?,
        client_pem: std::fs::read(dir.join("client.pem")).ok()?,
        client_key: std::fs::read(dir.join("client.key")).ok()?,
        dir,
    })
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}
