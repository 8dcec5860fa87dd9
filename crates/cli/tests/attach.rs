//! `tclcomm attach`: through a pseudo-terminal (line editing, history,
//! multi-line commands) and with piped input.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{BIN, Server, run_with};
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

/// `tclcomm attach ID` in a pseudo-terminal, with its own history file.
fn console(id: &str, name: &str) -> (rexpect::session::PtySession, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("tclcomm-attach-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let history = dir.join("history");
    let _ = std::fs::remove_file(&history);
    let mut cmd = Command::new(BIN);
    cmd.arg("attach")
        .arg(id)
        .env("TCLCOMM_HISTORY", &history)
        .env("TERM", "xterm")
        .env_remove("RUST_LOG");
    let mut s = spawn_command(cmd, Some(15_000)).expect("spawn in a pty");
    s.exp_string(&format!("{id}% ")).expect("prompt");
    (s, dir)
}

#[test]
fn backslash_newline_continues_the_command_as_in_tclsh() {
    let p = peer();
    let (mut s, dir) = console(p.id(), "backslash");
    s.send_line("list a \\").expect("type");
    s.exp_string("> ")
        .expect("continuation prompt after a backslash");
    s.send_line("b").expect("type");
    s.exp_string("a b").expect("one command: list a b");
    s.exp_string(&format!("{}% ", p.id())).expect("prompt");
    s.send_control('d').expect("ctrl-d");
    s.exp_eof().expect("ends");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn up_walks_whole_entries_and_never_edits_a_multi_line_one() {
    let mut p = peer();
    let prompt = format!("{}% ", p.id());
    let (mut s, dir) = console(p.id(), "history");
    s.send_line("set b 7").expect("type");
    s.exp_string("7").expect("result");
    s.exp_string(&prompt).expect("prompt");
    s.send_line("if {1} {").expect("type");
    s.exp_string("> ").expect("continuation prompt");
    s.send_line("  set c [expr {$b + 1}]").expect("type");
    s.exp_string("> ").expect("continuation prompt");
    s.send_line("}").expect("type");
    s.exp_string("8").expect("multi-line result");
    s.exp_string(&prompt).expect("prompt");
    // Up: the whole multi-line command, one entry.
    s.send("\x1b[A").expect("up");
    s.flush().expect("flush");
    s.exp_string("set c [expr {$b + 1}]")
        .expect("recalled multi-line entry");
    // Up again goes to the previous entry (by default it moved the cursor
    // into the lines of the recalled one, where typing edited it).
    s.send("\x1b[A").expect("up");
    s.flush().expect("flush");
    s.exp_string("set b 7").expect("previous entry");
    s.send_line("0").expect("type at the end and run");
    s.exp_string("70").expect("set b 70 ran");
    s.exp_string(&prompt).expect("prompt");
    // Down past the newest entry, then Up Up: the multi-line entry is intact.
    s.send("\x1b[A\x1b[A").expect("up up");
    s.flush().expect("flush");
    s.exp_string("set c [expr {$b + 1}]")
        .expect("multi-line entry again");
    s.send_line("").expect("run it");
    s.exp_string("71")
        .expect("the recalled multi-line command ran unchanged");
    s.exp_string(&prompt).expect("prompt");
    s.send_control('d').expect("ctrl-d");
    s.exp_eof().expect("ends");
    assert_eq!(p.eval_ok("set c").expect("peer"), "71");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tab_completes_a_remote_proc() {
    assert!(
        tcl_available(),
        "these tests need tclsh 8.6 with tcllib's `comm` package"
    );
    let p = TclPeer::spawn("proc bgerror args {}; proc zzuniqueproc {} {return tab-ok}")
        .expect("tclsh peer");
    let prompt = format!("{}% ", p.id());
    let (mut s, dir) = console(p.id(), "tab");
    s.send("zzuniq\t").expect("type and tab");
    s.flush().expect("flush");
    s.exp_string("zzuniqueproc")
        .expect("completed from the remote");
    s.send_line("").expect("run");
    s.exp_string("tab-ok").expect("the completed proc ran");
    s.exp_string(&prompt).expect("prompt");
    s.send_control('d').expect("ctrl-d");
    s.exp_eof().expect("ends");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn serve_output_is_shown_in_the_console_and_other_peers_say_why_not() {
    let srv = Server::start(&[]);
    let (mut s, dir) = console(&srv.id, "output");
    s.send_line("puts [string cat hello - from - serve]")
        .expect("type");
    s.exp_string("hello-from-serve")
        .expect("serve's stdout in the console");
    s.send_line("puts stderr [string cat err - line]")
        .expect("type");
    s.exp_string("err-line")
        .expect("serve's stderr in the console");
    s.send_control('d').expect("ctrl-d");
    s.exp_eof().expect("ends");
    let _ = std::fs::remove_dir_all(&dir);

    let p = peer();
    let (mut s, dir) = console_note(p.id(), "note");
    s.send_control('d').expect("ctrl-d");
    s.exp_eof().expect("ends");
    let _ = std::fs::remove_dir_all(&dir);
}

/// As [`console`], expecting the note that output stays on the peer first.
fn console_note(id: &str, name: &str) -> (rexpect::session::PtySession, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("tclcomm-attach-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut cmd = Command::new(BIN);
    cmd.arg("attach")
        .arg(id)
        .env("TCLCOMM_HISTORY", dir.join("history"))
        .env("TERM", "xterm")
        .env_remove("RUST_LOG");
    let mut s = spawn_command(cmd, Some(15_000)).expect("spawn in a pty");
    s.exp_string("only tclcomm serve forwards it")
        .expect("note");
    s.exp_string(&format!("{id}% ")).expect("prompt");
    (s, dir)
}

#[test]
fn piped_attach_to_serve_shows_its_output() {
    let srv = Server::start(&[]);
    let r = run_with(
        &["attach", &srv.id],
        b"puts [string cat piped - out]\nexpr 1\n",
        Duration::from_secs(30),
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.out().contains("piped-out\n"), "{}", r.out());
}

#[test]
fn an_entry_edited_then_left_stays_as_it_was() {
    let p = peer();
    let prompt = format!("{}% ", p.id());
    let (mut s, dir) = console(p.id(), "left");
    s.send_line("set b first").expect("type");
    s.exp_string(&prompt).expect("prompt");
    s.send_line("set b second").expect("type");
    s.exp_string(&prompt).expect("prompt");
    // Up, edit, Up (leaving the edited entry), Down (back to it), Enter.
    s.send("\x1b[A").expect("up");
    s.flush().expect("flush");
    s.exp_string("set b second").expect("recalled");
    s.send("X\x1b[A").expect("edit, up");
    s.flush().expect("flush");
    s.exp_string("set b first").expect("previous entry");
    s.send("\x1b[B").expect("down");
    s.flush().expect("flush");
    s.exp_string("set b second").expect("back");
    s.send_line("").expect("run");
    s.exp_string("\nsecond\r\n")
        .expect("the entry ran as it was, not secondX");
    s.exp_string(&prompt).expect("prompt");
    s.send_control('d').expect("ctrl-d");
    s.exp_eof().expect("ends");
    let _ = std::fs::remove_dir_all(&dir);
}
