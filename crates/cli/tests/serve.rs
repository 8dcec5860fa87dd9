//! `tclcomm serve`: answered by `tclcomm send`, `attach` and tcllib peers.

mod common;

use std::time::Duration;

use common::{Server, run, run_with, tricky};
use tclcomm::testing::{TclPeer, tcl_available};
use tclcomm_wire::list::format_list;

#[test]
fn serve_answers_send_and_a_tcllib_peer() {
    let mut s = Server::start(&[]);
    let r = run(&["send", &s.id, "expr", "{6*7}"]);
    assert_eq!(
        (r.code, r.out().as_str()),
        (Some(0), "42\n"),
        "{}",
        r.stderr
    );
    assert!(
        tcl_available(),
        "this test needs tclsh 8.6 with tcllib's `comm` package (apt-get install tcl tcllib)"
    );
    let mut p = TclPeer::spawn("").expect("tclsh peer");
    let got = p
        .eval_ok(&format!("::comm::comm send {} {{expr {{6*7}}}}", s.id))
        .expect("tcllib send");
    assert_eq!(got, "42");
    assert_eq!(s.terminate(Duration::from_secs(10)), Some(0));
}

#[test]
fn special_characters_errors_and_timeouts_against_serve() {
    let s = Server::start(&["--init", "proc never {} { vwait ::never }"]);
    let payload = tricky();
    let script = format_list(["set", "::v", payload.as_str()]);
    let r = run_with(
        &["send", &s.id, "-"],
        script.as_bytes(),
        Duration::from_secs(30),
    );
    assert_eq!(
        r.stdout,
        format!("{payload}\n").into_bytes(),
        "{}",
        r.stderr
    );
    let r = run(&["send", &s.id, "set ::v"]);
    assert_eq!(r.stdout, format!("{payload}\n").into_bytes());
    common::assert_verbose_remote_error(&s.id);
    let r = run(&["send", "--timeout", "0.3", &s.id, "never"]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.elapsed < Duration::from_secs(5));
    let r = run(&["send", "--async", &s.id, "set ::a 1"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    // The async script may still be on its way: the sync send waits for it
    // in the server's event loop (bounded by --timeout).
    let r = run(&[
        "send",
        "--timeout",
        "10",
        &s.id,
        "if {![info exists ::a]} {vwait ::a}; set ::a",
    ]);
    assert_eq!(r.out(), "1\n", "{}", r.stderr);
}

#[test]
fn served_scripts_have_comm_return_async_and_remoteid() {
    let init = "proc later {} {\n\
                    set f [::comm::comm return_async]\n\
                    after 100 [list $f return \"later from [::comm::comm remoteid]\"]\n\
                }";
    let s = Server::start(&["--init", init]);
    let r = run(&["send", &s.id, "later"]);
    assert_eq!(
        (r.code, r.out().as_str()),
        (Some(0), "later from 0\n"),
        "{}",
        r.stderr
    );
    let r = run(&["send", &s.id, "package present comm"]);
    assert_eq!(r.out(), "4.8\n");
}

#[test]
fn init_file_and_attach() {
    let dir = std::env::temp_dir().join(format!("tclcomm-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("init.tcl");
    std::fs::write(&file, "proc double {x} { expr {$x * 2} }\n").expect("write init file");
    let s = Server::start(&["--init-file", file.to_str().expect("utf-8 path")]);
    let r = run_with(
        &["attach", &s.id],
        b"set n 21\ndouble $n\nnosuch\n",
        Duration::from_secs(30),
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.out(), "21\n42\n");
    assert_eq!(r.stderr, "error: invalid command name \"nosuch\"\n");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn taken_port_and_failing_init_exit_3() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let r = run(&["serve", "--port", &port]);
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    assert!(r.stderr.contains("address already in use"), "{}", r.stderr);
    let r = run(&["serve", "--init", "error oops"]);
    assert_eq!(r.code, Some(3));
    assert!(r.stderr.contains("oops"), "{}", r.stderr);
}

#[test]
fn sigint_stops_serve_too() {
    let mut s = Server::start(&[]);
    let _ = std::process::Command::new("kill")
        .arg("-INT")
        .arg(s.child.id().to_string())
        .status();
    assert_eq!(
        s.wait_exit(Duration::from_secs(10)),
        Some(0),
        "serve did not stop on SIGINT"
    );
}
