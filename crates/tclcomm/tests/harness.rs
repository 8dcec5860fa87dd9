//! The tclsh peer harness itself: real tcllib comm peers talking to each
//! other, exit handling, timeouts, and cleanup.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use tclcomm::testing::{HarnessError, TclPeer, tcl_available};

/// Fails the calling test when tclsh with tcllib is missing: a missing
/// tool must never look like a pass (.ci/run installs it).
macro_rules! require_tcl {
    () => {
        assert!(
            tcl_available(),
            "these tests need tclsh 8.6 with tcllib's `comm` package (apt-get install tcl tcllib)"
        );
    };
}

#[test]
fn peer_reports_its_id_and_evaluates() {
    require_tcl!();
    let mut p = TclPeer::spawn("proc double {x} { expr {2 * $x} }").unwrap();
    assert!(p.port() > 0);
    assert_eq!(p.id(), p.port().to_string());
    assert_eq!(p.eval_ok("::comm::comm self").unwrap(), p.id());
    assert_eq!(p.eval("double 21").unwrap(), (0, "42".into()));
    assert_eq!(p.eval("").unwrap(), (0, String::new()));
    assert_eq!(p.eval("break").unwrap(), (3, String::new()));
    assert_eq!(
        p.eval("return -level 0 -code 7 x").unwrap(),
        (7, "x".into())
    );

    let a = p.eval_full("error boom {} {MY CODE}").unwrap();
    assert_eq!(
        (a.code, a.result.as_str(), a.errorcode.as_str()),
        (1, "boom", "MY CODE")
    );
    assert!(
        a.errorinfo
            .starts_with("boom\n    while executing\n\"error boom")
    );
    match p.eval_ok("error oops") {
        Err(HarnessError::Tcl {
            code: 1, result, ..
        }) => assert_eq!(result, "oops"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn results_are_byte_exact() {
    require_tcl!();
    let mut p = TclPeer::spawn("").unwrap();
    let s = "a\0bé中\n\r\t{z} \\ \"q\" [x] $y";
    let script = format!("string cat {}", tcl_quote(s));
    assert_eq!(p.eval_ok(&script).unwrap(), s);
    assert_eq!(
        p.eval_ok(&format!("string length {}", tcl_quote(s)))
            .unwrap(),
        s.chars().count().to_string()
    );
    assert_eq!(p.eval_ok("string repeat x 100000").unwrap().len(), 100_000);
}

/// Quotes `s` as one Tcl word with backslashes only (never braces).
fn tcl_quote(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '\0' => out.push_str("\\x00"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_ascii_alphanumeric() || !c.is_ascii() => out.push(c),
            c => {
                out.push('\\');
                out.push(c);
            }
        }
    }
    if out.is_empty() { "{}".into() } else { out }
}

#[test]
fn two_peers_send_async_and_callback() {
    require_tcl!();
    let mut a = TclPeer::spawn("proc cb {args} { set ::cbargs $args }").unwrap();
    let mut b = TclPeer::spawn("set ::x 0; proc whoami {} { ::comm::comm remoteid }").unwrap();
    let bid = b.id().to_owned();

    // Synchronous send.
    assert_eq!(
        a.eval_ok(&format!("::comm::comm send {bid} {{set ::x 42}}"))
            .unwrap(),
        "42"
    );
    assert_eq!(b.eval_ok("set ::x").unwrap(), "42");
    // The remote id of a's connection is a's own port.
    assert_eq!(
        a.eval_ok(&format!("::comm::comm send {bid} whoami"))
            .unwrap(),
        a.id()
    );

    // Async: returns at once; a later sync send on the same connection is
    // executed after it.
    assert_eq!(
        a.eval_ok(&format!("::comm::comm send -async {bid} {{set ::y async}}"))
            .unwrap(),
        ""
    );
    assert_eq!(
        a.eval_ok(&format!("::comm::comm send {bid} {{set ::y}}"))
            .unwrap(),
        "async"
    );

    // -command: the callback arrives through a's event loop.
    a.eval_ok(&format!(
        "::comm::comm send -command cb {bid} {{set ::z 7}}"
    ))
    .unwrap();
    let args = a
        .eval_ok("after 5000 {set ::cbargs timeout}; if {![info exists ::cbargs]} {vwait ::cbargs}; set ::cbargs")
        .unwrap();
    assert_eq!(
        args,
        format!(
            "-id {bid} -serial 5 -chan ::comm::comm -code 0 -errorcode {{}} -errorinfo {{}} -result 7"
        )
    );

    // Remote errors keep message and errorCode.
    let got = a
        .eval_ok(&format!(
            "list [catch {{::comm::comm send {bid} {{error boom {{}} {{MY CODE}}}}}} m o] $m [dict get $o -errorcode]"
        ))
        .unwrap();
    assert_eq!(got, "1 boom {MY CODE}");
    // ...and the executing side reports them to bgerror (stderr in tclsh).
    assert!(
        b.wait_stderr("boom", Duration::from_secs(5)),
        "stderr: {}",
        b.stderr()
    );

    // b can call back into a over the same connection.
    assert_eq!(
        b.eval_ok(&format!("::comm::comm send {} {{expr {{6 * 7}}}}", a.id()))
            .unwrap(),
        "42"
    );
}

#[test]
fn prelude_errors_are_reported() {
    require_tcl!();
    match TclPeer::spawn("error {bad prelude}") {
        Err(HarnessError::Prelude { message, errorinfo }) => {
            assert_eq!(message, "bad prelude");
            assert!(errorinfo.contains("bad prelude"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn peer_exit_is_reported() {
    require_tcl!();
    let mut p = TclPeer::spawn("").unwrap();
    match p.eval("puts stderr goodbye; exit 3") {
        Err(HarnessError::Exited { status, stderr }) => {
            assert_eq!(status.and_then(|s| s.code()), Some(3));
            assert!(stderr.contains("goodbye"), "{stderr}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!p.is_running());
    // Later calls fail the same way, without waiting for the timeout.
    let start = Instant::now();
    assert!(matches!(p.eval("list"), Err(HarnessError::Exited { .. })));
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(p.wait_exit(Duration::from_secs(1)).unwrap().code(), Some(3));
}

#[test]
fn a_peer_that_dies_is_seen_by_the_other() {
    require_tcl!();
    let mut a = TclPeer::spawn("").unwrap();
    let mut b = TclPeer::spawn("").unwrap();
    let bid = b.id().to_owned();
    assert_eq!(
        a.eval_ok(&format!("::comm::comm send {bid} {{list up}}"))
            .unwrap(),
        "up"
    );
    // b exits while answering a's next request.
    let (code, msg) = a.eval(&format!("::comm::comm send {bid} exit")).unwrap();
    assert_eq!(
        (code, msg.as_str()),
        (1, "target application died or connection lost")
    );
    assert!(b.wait_exit(Duration::from_secs(5)).unwrap().success());
    let (code, _) = a
        .eval(&format!("::comm::comm send {bid} {{list again}}"))
        .unwrap();
    assert_eq!(code, 1);
}

#[test]
fn timeouts_are_bounded_and_late_answers_skipped() {
    require_tcl!();
    let mut p = TclPeer::spawn("").unwrap();
    p.set_timeout(Duration::from_millis(200));
    let start = Instant::now();
    assert!(matches!(
        p.eval("after 1500; list late"),
        Err(HarnessError::Timeout { .. })
    ));
    assert!(start.elapsed() < Duration::from_secs(1));
    p.set_timeout(Duration::from_secs(10));
    // The late answer to the first request is not taken for this one.
    assert_eq!(p.eval_ok("list fresh").unwrap(), "fresh");
}

#[test]
fn stdout_noise_and_stderr_are_captured() {
    require_tcl!();
    let mut p = TclPeer::spawn("puts {hello from prelude}").unwrap();
    p.eval_ok("puts {line two}; puts stderr {to stderr}")
        .unwrap();
    assert_eq!(p.stdout_noise(), ["hello from prelude", "line two"]);
    assert!(p.wait_stderr("to stderr", Duration::from_secs(5)));
}

#[test]
fn shutdown_ends_the_process() {
    require_tcl!();
    let p = TclPeer::spawn("").unwrap();
    assert!(p.shutdown().unwrap().success());
}

#[cfg(target_os = "linux")]
#[test]
fn dropped_peers_leave_no_process() {
    require_tcl!();
    let pids: Vec<u32> = (0..3)
        .map(|_| {
            let mut p = TclPeer::spawn("").unwrap();
            assert!(p.is_running());
            p.pid()
        })
        .collect();
    // Drop killed and reaped each one: not even a zombie is left.
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "tclsh {pid} still exists"
        );
    }
}
