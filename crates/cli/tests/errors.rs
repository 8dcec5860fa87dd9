//! Every failure a user can meet in the CLI says what failed, where, and
//! what to try; Tcl tracebacks only with `-v`. And `serve` reports the
//! errors of received scripts as theirs, not as its own failure.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use common::{BIN, Server, free_port, run};

#[test]
fn connection_refused_names_the_address_and_what_to_run() {
    let port = free_port().to_string();
    let r = run(&["send", &port, "expr", "1"]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "cannot connect to {port} (127.0.0.1:{port}): couldn't open socket: connection refused"
        )) && r.stderr.contains("Start one with `tclcomm serve`"),
        "{}",
        r.stderr
    );
}

/// A TCP server that answers anything with an HTTP error and closes.
fn not_comm() -> (u16, std::thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let t = std::thread::spawn(move || {
        if let Ok((mut s, _)) = l.accept() {
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let mut buf = [0u8; 256];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        }
    });
    (port, t)
}

#[test]
fn a_port_that_is_not_a_comm_peer_is_named_as_a_possibility() {
    let (port, t) = not_comm();
    let port = port.to_string();
    let r = run(&["send", "--timeout", "20", &port, "expr", "1"]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "connection to {port} (127.0.0.1:{port}) lost before the answer"
        )) && r.stderr.contains("is not a comm peer at all"),
        "{}",
        r.stderr
    );
    let _ = t.join();
}

#[test]
fn timeout_says_what_to_try() {
    let s = Server::start(&[]);
    let r = run(&["send", "--timeout", "0.3", &s.id, "after", "5000"]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "no answer from {} (127.0.0.1:{}) within 0.3s",
            s.id, s.id
        )) && r.stderr.contains("Raise --timeout"),
        "{}",
        r.stderr
    );
}

#[test]
fn lost_peer_is_reported_as_lost() {
    let s = Server::start(&[]);
    let r = run(&["send", &s.id, "exit"]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("connection to {} (127.0.0.1:{}) lost", s.id, s.id))
            && r.stderr.contains("it exited"),
        "{}",
        r.stderr
    );
}

#[test]
fn bad_id_lists_the_forms() {
    // A bare word is a name now: point the lookup at a port where no name
    // server listens, so a name server on the default port can't answer it.
    let names = free_port().to_string();
    for bad in ["x", "host:", "0"] {
        let r = run(&["send", "--names", &names, bad, "expr", "1"]);
        assert_eq!(r.code, Some(2), "{bad}: {}", r.stderr);
        assert!(
            r.stderr.contains(&format!("invalid id \"{bad}\"")),
            "{}",
            r.stderr
        );
    }
    let r = run(&["send", "--names", &names, "x", "expr", "1"]);
    assert!(
        r.stderr
            .contains("PORT, HOST:PORT, [IPV6]:PORT or \"PORT HOST\""),
        "{}",
        r.stderr
    );
}

#[test]
fn taken_port_is_explained_and_the_traceback_needs_v() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let r = run(&["serve", "--port", &port]);
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    assert!(
        r.stderr.starts_with(&format!(
            "tclcomm serve: cannot listen on port {port}: couldn't open socket: address already in use\n\
             Another program holds port {port}"
        )) && r.stderr.contains("choose another --port"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("while executing"), "{}", r.stderr);
    assert!(
        r.stderr.contains("-v shows the Tcl traceback"),
        "{}",
        r.stderr
    );
    let r = run(&["-v", "serve", "--port", &port]);
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    assert!(
        r.stderr.contains("Tcl traceback:") && r.stderr.contains("while executing"),
        "{}",
        r.stderr
    );
}

/// `tclcomm serve ARGS`: the process, the id it printed, and its stderr
/// line by line.
fn serve_logged(args: &[&str]) -> (Child, String, Receiver<String>) {
    let mut child = Command::new(BIN)
        .arg("serve")
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(out);
        let mut first = String::new();
        let _ = lines.read_line(&mut first);
        let _ = tx.send(first);
        let mut rest = Vec::new();
        let _ = lines.read_to_end(&mut rest);
    });
    let err = child.stderr.take().expect("stderr");
    let (etx, erx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if etx.send(line).is_err() {
                break;
            }
        }
    });
    let id = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("serve printed its id");
    (child, id.trim().to_string(), erx)
}

/// Waits (bounded) for the stderr line holding `marker`; returns every
/// line up to it.
fn wait_for(log: &Receiver<String>, marker: &str) -> String {
    let end = Instant::now() + Duration::from_secs(20);
    let mut text = String::new();
    loop {
        let left = end.saturating_duration_since(Instant::now());
        let line = log
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no {marker:?} in the log: {text}"));
        text.push_str(&line);
        text.push('\n');
        if line.contains(marker) {
            return text;
        }
    }
}

#[test]
fn serve_reports_script_errors_as_the_senders_and_can_be_quiet() {
    let (mut child, id, log) = serve_logged(&[]);
    let r = run(&["send", &id, "nosuch"]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    let r = run(&["send", &id, "puts stderr marker-1; flush stderr"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let text = wait_for(&log, "marker-1");
    assert!(
        text.contains("tclcomm serve: a script from a client raised an error")
            && text.contains(
                "raised an error (returned to the sender unless sent -async; serving goes on): invalid command name \"nosuch\""
            ),
        "{text}"
    );
    assert!(!text.contains("background error"), "{text}");
    let _ = child.kill();
    let _ = child.wait();

    let (mut child, id, log) = serve_logged(&["--quiet-errors"]);
    let r = run(&["send", &id, "nosuch"]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    let r = run(&["send", &id, "puts stderr marker-2; flush stderr"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let text = wait_for(&log, "marker-2");
    assert!(!text.contains("nosuch"), "{text}");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn bench_refuses_an_unwritable_out_dir_before_measuring() {
    let r = run(&["bench", "--quick", "--out", "/proc/tclcomm-bench"]);
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    assert!(
        r.stderr
            .starts_with("tclcomm bench: cannot write to /proc/tclcomm-bench")
            && r.stderr.contains("Pass --out DIR"),
        "{}",
        r.stderr
    );
    // Nothing was measured.
    assert!(r.out().is_empty(), "{}", r.out());
}

#[test]
fn transfer_failures_say_what_to_try() {
    let port = free_port();
    let r = run(&[
        "transmit",
        "--connect",
        &format!("127.0.0.1:{port}"),
        "/dev/null",
    ]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("cannot connect to 127.0.0.1:{port}"))
            && r.stderr.contains("Start the listening side first"),
        "{}",
        r.stderr
    );
    let taken = TcpListener::bind("0.0.0.0:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let r = run(&["receive", "--listen", &port, "--timeout", "5", "/dev/null"]);
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("cannot listen on port {port}"))
            && r.stderr.contains("Another program holds that port"),
        "{}",
        r.stderr
    );
}
