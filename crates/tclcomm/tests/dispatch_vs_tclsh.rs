//! Differential test: the dispatcher against Tcl 8.6 itself, on scripts made
//! of the built-in commands and Tcl's special characters. Code, result,
//! errorCode and errorInfo must all be identical.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use tclcomm::dispatch::Dispatcher;
use tclcomm::testing::{TclPeer, tcl_available};

/// Evaluates `script` in tclsh with `catch`; returns (code, result,
/// errorcode, errorinfo) as the dispatcher reports them.
fn in_tcl(peer: &mut TclPeer, script: &str) -> (i32, String, String, String) {
    let quoted = tclcomm_quote(script);
    let a = peer
        .eval_full(&format!(
            "set ::s {quoted}; set ::c [catch $::s ::r ::o]; \
             if {{$::c == 1}} {{list $::c $::r [dict get $::o -errorcode] [dict get $::o -errorinfo]}} \
             else {{list $::c $::r NONE {{}}}}"
        ))
        .unwrap();
    assert_eq!(a.code, 0, "harness wrapper failed: {a:?}");
    let got = Arc::new(Mutex::new(Vec::new()));
    let d = Dispatcher::new();
    let g = Arc::clone(&got);
    d.register("capture", move |_, args| {
        *g.lock().unwrap() = args.to_vec();
        Ok(String::new())
    });
    d.eval(&format!("capture {{*}}{}", tclcomm_quote(&a.result)))
        .unwrap();
    let v = got.lock().unwrap().clone();
    (
        v[0].parse().unwrap(),
        v[1].clone(),
        v[2].clone(),
        v[3].clone(),
    )
}

fn in_rust(script: &str) -> (i32, String, String, String) {
    match Dispatcher::new().eval(script) {
        Ok(r) => (0, r, "NONE".into(), String::new()),
        Err(e) if e.is_error() => (
            1,
            e.message().into(),
            e.errorcode().into(),
            e.errorinfo().into(),
        ),
        Err(e) => (e.code(), e.message().into(), "NONE".into(), String::new()),
    }
}

/// One Tcl word holding `s` (backslash quoting throughout).
fn tclcomm_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            '\x0c' => out.push_str("\\f"),
            '\0' => out.push_str("\\x00"),
            '"' | '\\' | '$' | '[' | ']' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A tclsh peer; fails the test when tclsh or tcllib is missing, never
/// passes without having compared anything.
fn peer() -> TclPeer {
    assert!(
        tcl_available(),
        "these tests need tclsh 8.6 with tcllib's `comm` package (apt-get install tcl tcllib)"
    );
    TclPeer::spawn("").unwrap()
}

#[test]
fn fixed_scripts_match_tcl() {
    let mut p = peer();
    let scripts = [
        "list a {b c} \"d e\" f\\ g",
        "list {a",
        "list x\nlist {a\n#x {",
        "list \"a",
        "list [list a",
        "list {a}b",
        "list \"a\"b",
        "nosuch a b",
        "list [nosuch]",
        "error boom {my info} {MY CODE}",
        "error oops",
        "error oops {} {}",
        "error",
        "return x",
        "return -code error x",
        "return -level 0 -code error x",
        "return -level 0 -code error -errorinfo foo -errorcode {A B} x",
        "return -level 0 -code 5 x",
        "return -code foo x",
        "return -level x x",
        "return -options {a} x",
        "break",
        "continue",
        "list \\x414 \\u00e9z \\400 \\777 \\xg \\ug a\\  \\x4142 \\a\\b\\f\\v\\r",
        "list a\\\n   b {a\\\n   b} \"a\\\n   b\"",
        "concat \" a \" \"b\\ \" \" c\\\\ \" \"\" \"  \"",
        "list [error x]",
        "list [list [error x]]",
        "list {*}{a b {c d}} {*}\"x y\" {*} ",
        "list {*}{a {b",
        "list {*}\"a \\{\"",
        "# comment \\\n continued\nlist a ; # c2\nlist b",
        "list \"a]\" [list b]x]",
        "list ${a",
        "list a$ $(",
        "list {*}{*}{a b}",
        "list \"a\"éb",
        "[{*}]",
        "list [list {*}]",
        "\"\"é",
        "error oops   ;",
        "  list [\n  error a\n  ]",
        "list x[]y a]b [list a]b]",
        &format!("nosuch {}", "é".repeat(100)),
    ];
    for s in scripts {
        assert_eq!(in_rust(s), in_tcl(&mut p, s), "script {s:?}");
    }
}

fn piece() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "list", "concat", "error", "return", "nosuch", " ", " ", " ", "\n", ";", "{", "}", "[",
        "]", "\"", "\\", "\\n", "\\x41", "\\u00e9", "\\101", "#", "{*}", "a", "b c", "-code",
        "-level", "0", "1", "3", "\t", "é", "\\\n", "  ", "break",
    ])
}

#[test]
fn random_scripts_match_tcl() {
    let p = peer();
    // One peer for all cases (a strategy run cannot own it otherwise).
    let p = std::cell::RefCell::new(p);
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 1000,
        ..ProptestConfig::default()
    });
    runner
        .run(&prop::collection::vec(piece(), 0..16), |parts| {
            let script = parts.concat();
            let want = in_tcl(&mut p.borrow_mut(), &script);
            prop_assert_eq!(in_rust(&script), want, "script {:?}", script);
            Ok(())
        })
        .unwrap();
}
