//! `tclcomm send` against tclsh peers running tcllib comm.

mod common;

use std::time::Duration;

use common::{run, run_with, tricky};
use tclcomm::testing::{TclPeer, tcl_available};
use tclcomm_wire::list::format_list;

fn peer(prelude: &str) -> TclPeer {
    assert!(
        tcl_available(),
        "these tests need tclsh 8.6 with tcllib's `comm` package (apt-get install tcl tcllib)"
    );
    TclPeer::spawn(prelude).expect("tclsh peer")
}

#[test]
fn words_are_fragments_and_the_result_is_printed() {
    let p = peer("");
    let r = run(&["send", p.id(), "expr", "{6*7}"]);
    assert_eq!(
        (r.code, r.out().as_str()),
        (Some(0), "42\n"),
        "{}",
        r.stderr
    );
    // Double evaluation, as comm: three fragments make `set b hello world`.
    let r = run(&["send", p.id(), "set", "b", "{hello world}"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.out(), "hello world\n");
    let r = run(&["send", &format!("127.0.0.1:{}", p.port()), "set b"]);
    assert_eq!(r.out(), "hello world\n");
    let r = run(&["send", &format!("{} 127.0.0.1", p.port()), "set b"]);
    assert_eq!(r.out(), "hello world\n");
}

#[test]
fn every_special_character_and_nul_through_stdin() {
    let mut p = peer("");
    let payload = tricky();
    let script = format_list(["set", "::v", payload.as_str()]);
    let r = run_with(
        &["send", p.id(), "-"],
        script.as_bytes(),
        Duration::from_secs(30),
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.stdout, format!("{payload}\n").into_bytes());
    assert_eq!(p.eval_ok("set ::v").expect("peer"), payload);
    // Stdin as one fragment among others.
    let r = run_with(
        &["send", p.id(), "string", "length", "-"],
        b"{a\0b}",
        Duration::from_secs(30),
    );
    assert_eq!(r.out(), "3\n", "{}", r.stderr);
}

#[test]
fn stdin_that_is_not_utf8_is_refused() {
    let p = peer("");
    let r = run_with(
        &["send", p.id(), "-"],
        b"set x \xff\xfe",
        Duration::from_secs(30),
    );
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("not UTF-8"), "{}", r.stderr);
}

#[test]
fn remote_error_exits_1_and_verbose_adds_errorinfo() {
    let p = peer("proc bgerror args {}");
    let script = "error boom {my info} {MY CODE}";
    let r = run(&["send", p.id(), script]);
    assert_eq!(r.code, Some(1));
    assert_eq!(r.stderr, "boom\n");
    assert!(r.stdout.is_empty());
    common::assert_verbose_remote_error(p.id());
    let r = run(&["send", p.id(), "break"]);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (Some(1), "invoked \"break\" outside of a loop\n")
    );
}

#[test]
fn refused_connection_exits_2() {
    // A port that was free a moment ago.
    let port = common::free_port();
    let r = run(&["send", &port.to_string(), "set a 1"]);
    assert_eq!(r.code, Some(2));
    assert!(
        r.stderr.contains(&format!(
            "cannot connect to {port} (127.0.0.1:{port}): couldn't open socket: connection refused"
        )),
        "{}",
        r.stderr
    );
}

#[test]
fn timeout_against_a_peer_that_never_answers_exits_2_on_time() {
    let mut p = peer("proc never {} { vwait ::tclcomm_never }");
    let r = run(&["send", "--timeout", "0.5", p.id(), "never"]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("no answer from"), "{}", r.stderr);
    assert!(r.elapsed < Duration::from_secs(5), "took {:?}", r.elapsed);
    // The peer is still alive and serving.
    assert_eq!(p.eval_ok("expr {1+1}").expect("peer alive"), "2");
}

#[test]
fn lost_connection_exits_2() {
    let mut p = peer("");
    let r = run(&["send", p.id(), "after 100 exit; vwait ::forever"]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("lost before the answer: target application died or connection lost"),
        "{}",
        r.stderr
    );
    assert!(p.wait_exit(Duration::from_secs(5)).is_ok());
}

#[test]
fn async_sends_arrive_and_print_nothing() {
    let mut p = peer("set ::n 0");
    for _ in 0..5 {
        let r = run(&["send", "--async", p.id(), "incr ::n"]);
        assert_eq!(r.code, Some(0), "{}", r.stderr);
        assert!(r.stdout.is_empty());
    }
    // Everything was delivered (they may still be running: poll).
    let start = std::time::Instant::now();
    while p.eval_ok("set ::n").expect("peer") != "5" {
        assert!(start.elapsed() < Duration::from_secs(5), "async sends lost");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["send"][..],
        &["send", "nonsense", "x"],
        &["send", "1234"],
        &["send", "--timeout", "-1", "1234", "x"],
    ] {
        let r = run(args);
        assert_eq!(r.code, Some(2), "{args:?}: {}", r.stderr);
    }
}

#[test]
fn help_documents_exit_codes_for_every_subcommand() {
    for sub in ["serve", "send", "attach", "bench", "tcl-package"] {
        let r = run(&[sub, "--help"]);
        assert_eq!(r.code, Some(0));
        assert!(r.out().contains("Exit codes:"), "{sub}");
    }
    assert!(run(&["--help"]).out().contains("Exit codes:"));
}
