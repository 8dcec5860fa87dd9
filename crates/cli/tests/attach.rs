//! `tclcomm attach`: through a pseudo-terminal (line editing, history,
//! multi-line commands) and with piped input.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{BIN, run_with};
use rexpect::session::spawn_command;
use tclcomm::testing::{TclPeer, tcl_available};

fn peer() -> TclPeer {
    assert!(
        tcl_available(),
        "these tests need tclsh 8.6 with tcllib's `comm` package (apt-get install tcl tcllib)"
    );
    TclPeer::spawn("proc bgerror args {}").expect("tclsh peer")
}

#[test]
fn piped_input_uses_info_complete_and_shows_errors_apart() {
    let p = peer();
    let input = "set a 5\nproc f {x} {\n  expr {$x*2}\n}\nf $a\nnosuch\n\nset s {two\nlines}\nexit\nset never 1\n";
    let r = run_with(
        &["attach", p.id()],
        input.as_bytes(),
        Duration::from_secs(30),
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.out(), "5\n10\ntwo\nlines\n");
    assert_eq!(r.stderr, "error: invalid command name \"nosuch\"\n");
}

#[test]
fn attach_to_a_refused_port_exits_2() {
    let port = common::free_port();
    let r = run_with(&["attach", &port.to_string()], b"", Duration::from_secs(30));
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("connection refused"), "{}", r.stderr);
}

#[test]
fn terminal_session_with_history_and_a_multi_line_command() {
    let mut p = peer();
    let dir = std::env::temp_dir().join(format!("tclcomm-attach-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let history = dir.join("history");
    let _ = std::fs::remove_file(&history);
    let mut cmd = Command::new(BIN);
    cmd.arg("attach")
        .arg(p.id())
        .env("TCLCOMM_HISTORY", &history)
        .env("TERM", "xterm")
        .env_remove("RUST_LOG");
    let mut s = spawn_command(cmd, Some(15_000)).expect("spawn in a pty");
    let prompt = format!("{}% ", p.id());
    s.exp_string(&prompt).expect("prompt");
    s.send_line("set b 7").expect("type");
    s.exp_string("7").expect("result");
    s.exp_string(&prompt).expect("prompt");
    // A multi-line command: continuation prompts until info complete.
    s.send_line("if {1} {").expect("type");
    s.exp_string("> ").expect("continuation prompt");
    s.send_line("  set c [expr {$b + 1}]").expect("type");
    s.exp_string("> ").expect("continuation prompt");
    s.send_line("}").expect("type");
    s.exp_string("8").expect("multi-line result");
    s.exp_string(&prompt).expect("prompt");
    s.send_line("nosuch").expect("type");
    s.exp_string("error: invalid command name \"nosuch\"")
        .expect("error shown");
    s.exp_string(&prompt).expect("prompt");
    // History: up-arrow recalls the previous command; run it again.
    s.send_line("incr b").expect("type");
    s.exp_string("8").expect("incr");
    s.exp_string(&prompt).expect("prompt");
    s.send("\x1b[A").expect("up arrow");
    s.flush().expect("flush");
    // The editor redraws the recalled line: wait for it, not for a while.
    s.exp_string("incr b").expect("recalled line shown");
    s.send_line("").expect("enter");
    s.exp_string("9").expect("recalled command ran");
    s.exp_string(&prompt).expect("prompt");
    s.send_control('d').expect("ctrl-d");
    s.exp_eof().expect("ends on ctrl-d");
    assert_eq!(p.eval_ok("set b").expect("peer"), "9");
    assert_eq!(p.eval_ok("set c").expect("peer"), "8");
    let saved = std::fs::read_to_string(&history).expect("history file written");
    assert!(
        saved.contains("incr b") && saved.contains("set b 7"),
        "{saved}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
