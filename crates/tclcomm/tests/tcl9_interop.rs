//! The runtime against tcllib 2.0's comm 4.7.3 in Tcl 9 (tclsh9.0 from
//! `$TCL9_PREFIX`, unpacked by ../shared/tools/tcl9-env; .ci/run sets it),
//! in both directions: the wire does not depend on the peer's Tcl, including
//! NUL and characters above U+FFFF (4-byte UTF-8 inside Tcl 9, a surrogate
//! pair inside 8.6). Missing Tcl 9, these tests fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use tclcomm::blocking::Channel;
use tclcomm::testing::TclPeer;
use tclcomm::{Config, Dispatcher, Id, Script};
use tclcomm_wire::list::format_list;

/// tclsh9.0; fails the test when it is missing.
fn tclsh9() -> PathBuf {
    let prefix = std::env::var_os("TCL9_PREFIX").expect(
        "these tests need Tcl 9: set TCL9_PREFIX to a directory unpacked by \
         ../shared/tools/tcl9-env",
    );
    let shell = PathBuf::from(prefix).join("bin/tclsh9.0");
    assert!(shell.is_file(), "{} is missing", shell.display());
    shell
}

const PRELUDE: &str = r#"
proc echo {s} { return $s }
proc boom {} { error "boom" "" {MY CODE} }
proc len {s} { string length $s }
"#;

/// Strings with Tcl's special characters, NUL and non-BMP characters.
fn strings() -> Vec<String> {
    vec![
        String::new(),
        "plain".into(),
        "{}[]$\\\" \n\t;#".into(),
        "a\0b".into(),
        "é中😀\u{10FFFF}".into(),
        "{unbalanced".into(),
        "trailing\\".into(),
    ]
}

#[test]
fn rust_to_tcl9() {
    let mut peer = TclPeer::spawn_in(&tclsh9(), PRELUDE).unwrap();
    assert_eq!(
        peer.eval_ok("list [info tclversion] [package provide comm]")
            .unwrap(),
        "9.0 4.7.3"
    );
    let ch = Channel::new(Config::new()).unwrap();
    let id = Id::from_text(peer.id());
    for s in strings() {
        assert_eq!(
            ch.send(id.clone(), Script::command(["echo", s.as_str()]))
                .unwrap(),
            s,
            "echo of {s:?}"
        );
        // One character each, as Tcl 9 counts them.
        assert_eq!(
            ch.send(id.clone(), Script::command(["len", s.as_str()]))
                .unwrap(),
            s.chars().count().to_string(),
            "length of {s:?}"
        );
    }
    let e = ch.send(id, "boom").unwrap_err();
    assert!(e.to_string().contains("boom"), "{e}");
}

#[test]
fn tcl9_to_rust() {
    let d = Dispatcher::new();
    d.register("echo", |_c, args| {
        Ok(args.first().cloned().unwrap_or_default())
    });
    let server = Channel::new(Config::listening().evaluator(d.clone())).unwrap();
    let mut peer = TclPeer::spawn_in(&tclsh9(), PRELUDE).unwrap();
    let rid = server.self_id();
    for s in strings() {
        let got = peer
            .eval_ok(&format!(
                "::comm::comm send {rid} [list echo {}]",
                format_list([s.as_str()])
            ))
            .unwrap();
        assert_eq!(got, s, "echo of {s:?}");
    }
}
