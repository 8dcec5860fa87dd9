//! `tclcomm transmit`, `receive` and `cp` end to end: both connection
//! modes, TLS, timeouts and exit codes, and copies into and out of a running
//! tclsh (tcllib comm) and a `tclcomm serve`.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{BIN, Run, Server, free_port, run, run_with};
use tclcomm::testing::TclPeer;

const LIMIT: Duration = Duration::from_secs(60);

fn scratch() -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let d = std::env::temp_dir().join(format!(
        "tclcomm-cli-transfer-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&d).expect("scratch");
    d
}

/// `n` bytes with every byte value (n ≥ 256).
fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 256) as u8).collect()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A `tclcomm ... --listen 0` in the background: the port it printed.
struct Listening {
    child: Child,
    port: u16,
    /// Its whole stderr, sent once it closes (when the process exits).
    stderr: std::sync::mpsc::Receiver<String>,
}

impl Listening {
    fn start(args: &[&str]) -> Listening {
        let mut child = Command::new(BIN)
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tclcomm");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut first = String::new();
            let mut r = BufReader::new(out);
            let _ = r.read_line(&mut first);
            let _ = tx.send(first);
        });
        let err = child.stderr.take().expect("stderr");
        let (etx, stderr) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut text = String::new();
            let _ = BufReader::new(err).read_to_string(&mut text);
            let _ = etx.send(text);
        });
        let line = rx.recv_timeout(LIMIT).expect("the port line");
        let port = line.trim().parse().expect("a port on the first line");
        Listening {
            child,
            port,
            stderr,
        }
    }

    /// Waits (bounded) for the exit code and stderr: its stderr closing is
    /// the event of its exit.
    fn finish(mut self) -> (Option<i32>, String) {
        match self.stderr.recv_timeout(LIMIT) {
            Ok(err) => (self.child.wait().ok().and_then(|s| s.code()), err),
            Err(_) => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                (None, String::new())
            }
        }
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ok(r: &Run) {
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
}

#[test]
fn transmit_and_receive_both_modes() {
    let dir = scratch();
    let input = dir.join("in.bin");
    let payload = data(3 << 20);
    std::fs::write(&input, &payload).expect("input");
    // The receiver waits, the transmitter connects.
    let out = dir.join("out1.bin");
    let l = Listening::start(&["receive", s(&out), "--listen", "0", "--bind", "127.0.0.1"]);
    let r = run_with(
        &[
            "transmit",
            s(&input),
            "--connect",
            &format!("127.0.0.1:{}", l.port),
        ],
        b"",
        LIMIT,
    );
    ok(&r);
    assert_eq!(l.finish().0, Some(0));
    assert!(std::fs::read(&out).expect("out") == payload);
    // The transmitter waits, the receiver connects; to standard output.
    let l = Listening::start(&["transmit", s(&input), "--listen", "0"]);
    let r = run_with(
        &["receive", "-", "--connect", &l.port.to_string()],
        b"",
        LIMIT,
    );
    ok(&r);
    assert_eq!(l.finish().0, Some(0));
    assert!(r.stdout == payload, "{} bytes on stdout", r.stdout.len());
    // From standard input, an empty file.
    let out = dir.join("out3.bin");
    let l = Listening::start(&["receive", s(&out), "--listen", "0"]);
    ok(&run_with(
        &["transmit", "-", "--connect", &l.port.to_string()],
        b"",
        LIMIT,
    ));
    assert_eq!(l.finish().0, Some(0));
    assert_eq!(std::fs::read(&out).expect("out"), b"");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn transmit_to_tcllib_receiver() {
    // The CLI against tcllib's own receiver (passive), one byte.
    let dir = scratch();
    let input = dir.join("one");
    std::fs::write(&input, b"\xff").expect("input");
    let out = dir.join("got");
    let mut peer = TclPeer::spawn(
        "package require transfer::receiver
         proc done {args} {close $::ch; set ::done $args}",
    )
    .expect("this test needs tclsh with tcllib");
    let port = peer
        .eval_ok(&format!(
            "set ::ch [open {{{}}} w]; fconfigure $::ch -translation binary
             transfer::receiver R -channel $::ch -mode passive -translation binary -command done
             R start",
            out.display()
        ))
        .expect("receiver");
    ok(&run_with(
        &["transmit", s(&input), "--connect", &port],
        b"",
        LIMIT,
    ));
    let done = peer
        .eval_ok("if {![info exists ::done]} {after 10000 {set ::done timeout}; vwait ::done}; set ::done")
        .expect("done");
    assert_eq!(done, "::R 1");
    assert_eq!(std::fs::read(&out).expect("out"), b"\xff");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn failures_and_exit_codes() {
    let dir = scratch();
    // Nobody connects: the --timeout ends the wait, exit 2.
    let r = run(&[
        "receive",
        s(&dir.join("x")),
        "--listen",
        "0",
        "--timeout",
        "0.2",
    ]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("no connection within"), "{}", r.stderr);
    // Nobody listens: exit 2.
    let r = run(&[
        "transmit",
        "/dev/null",
        "--connect",
        &format!("127.0.0.1:{}", free_port()),
    ]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr.contains("cannot connect to 127.0.0.1:"),
        "{}",
        r.stderr
    );
    // A missing local file: exit 3, before any connection.
    let r = run(&["transmit", "/nonexistent/file", "--listen", "0"]);
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    // Bad usage: exit 2.
    for args in [
        &["transmit", "f"][..],
        &["transmit", "f", "--listen", "0", "--connect", "1"],
        &["receive", "f", "--connect", "host:"],
        &["cp", "a", "b"],
        &["cp", "1:/a", "2:/b"],
    ] {
        let r = run(args);
        assert_eq!(r.code, Some(2), "{args:?}: {}", r.stderr);
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn tls_both_modes() {
    let dir = scratch();
    let certs = certs(&dir);
    let tls = |who: &str| {
        vec![
            "--tls-cert".to_string(),
            s(&certs.join(format!("{who}.pem"))).to_string(),
            "--tls-key".to_string(),
            s(&certs.join(format!("{who}.key"))).to_string(),
            "--tls-ca".to_string(),
            s(&certs.join("ca.pem")).to_string(),
        ]
    };
    let input = dir.join("in.bin");
    let payload = data(1 << 20);
    std::fs::write(&input, &payload).expect("input");
    let out = dir.join("out.bin");
    let mut args = vec![
        "receive".to_string(),
        s(&out).into(),
        "--listen".into(),
        "0".into(),
    ];
    args.extend(tls("server"));
    let l = Listening::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let mut args = vec![
        "transmit".to_string(),
        s(&input).into(),
        "--connect".into(),
        format!("localhost:{}", l.port),
    ];
    args.extend(tls("client"));
    ok(&run_with(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        b"",
        LIMIT,
    ));
    assert_eq!(l.finish().0, Some(0));
    assert!(std::fs::read(&out).expect("out") == payload);
    // TLS to a plain listener: the handshake gets no answer; --timeout
    // ends it with exit 2.
    let l = Listening::start(&["receive", s(&dir.join("plain")), "--listen", "0"]);
    let mut args = vec![
        "transmit".to_string(),
        s(&input).into(),
        "--connect".into(),
        format!("localhost:{}", l.port),
        "--timeout".into(),
        "0.5".into(),
    ];
    args.extend(tls("client"));
    let r = run_with(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        b"",
        LIMIT,
    );
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("no connection within"), "{}", r.stderr);
    drop(l);
    let _ = std::fs::remove_dir_all(dir);
}

/// `cp` into and out of an application: `id` is its comm id (a port).
fn cp_round_trip(id: &str) {
    let dir = scratch();
    let remote = scratch();
    let input = dir.join("data.bin");
    let payload = data(2 << 20);
    std::fs::write(&input, &payload).expect("input");
    // Into the application, by path, then into a directory (keeps the name).
    let target = remote.join("copy.bin");
    ok(&run_with(
        &["cp", s(&input), &format!("{id}:{}", s(&target))],
        b"",
        LIMIT,
    ));
    assert!(std::fs::read(&target).expect("remote copy") == payload);
    ok(&run_with(
        &["cp", s(&input), &format!("{id}:{}", s(&remote))],
        b"",
        LIMIT,
    ));
    assert!(std::fs::read(remote.join("data.bin")).expect("in dir") == payload);
    // Out of it, to a file, to a directory, to stdout.
    let back = dir.join("back.bin");
    ok(&run_with(
        &["cp", &format!("{id}:{}", s(&target)), s(&back)],
        b"",
        LIMIT,
    ));
    assert!(std::fs::read(&back).expect("back") == payload);
    let sub = dir.join("sub");
    std::fs::create_dir_all(&sub).expect("sub");
    ok(&run_with(
        &["cp", &format!("{id}:{}", s(&target)), s(&sub)],
        b"",
        LIMIT,
    ));
    assert!(std::fs::read(sub.join("copy.bin")).expect("in dir") == payload);
    let r = run_with(&["cp", &format!("{id}:{}", s(&target)), "-"], b"", LIMIT);
    ok(&r);
    assert!(r.stdout == payload);
    // From stdin, an empty file.
    let empty = remote.join("empty");
    ok(&run_with(
        &["cp", "-", &format!("{id}:{}", s(&empty))],
        b"",
        LIMIT,
    ));
    assert_eq!(std::fs::read(&empty).expect("empty"), b"");
    // A file the application cannot open: its error, exit 1.
    let r = run_with(
        &["cp", &format!("{id}:/nonexistent/x"), s(&dir.join("never"))],
        b"",
        LIMIT,
    );
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr.contains("couldn't open \"/nonexistent/x\""),
        "{}",
        r.stderr
    );
    // A local file that does not exist: exit 3.
    let r = run_with(
        &[
            "cp",
            s(&dir.join("missing")),
            &format!("{id}:{}", s(&target)),
        ],
        b"",
        LIMIT,
    );
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(remote);
}

#[test]
fn cp_into_and_out_of_a_running_tclsh() {
    // tcllib's comm in a plain tclsh: nothing else is installed there.
    let peer = TclPeer::spawn("").expect("this test needs tclsh with tcllib");
    cp_round_trip(&peer.port().to_string());
}

#[test]
fn cp_into_and_out_of_tclcomm_serve() {
    let server = Server::start(&[]);
    cp_round_trip(&server.id);
}

/// A CA and server/client certificates (2048-bit) for localhost.
fn certs(dir: &Path) -> PathBuf {
    let dir = dir.join("certs");
    tclcomm::testing::make_test_certs(&dir);
    dir
}

#[test]
fn bench_transfer_row() {
    let r = run_with(&["bench", "--transfer", "8"], b"", LIMIT);
    ok(&r);
    let out = r.out();
    assert!(out.contains("| 8 MB over loopback (best of 3) |"), "{out}");
    assert!(out.contains("peak memory (VmHWM)"), "{out}");
    assert_eq!(run(&["bench", "--transfer", "0"]).code, Some(2));
}
