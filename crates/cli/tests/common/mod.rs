//! Helpers of the end-to-end tests: run the built `tclcomm` with a bound
//! on time, and start `tclcomm serve`.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_tclcomm");

/// What a finished run left.
#[derive(Debug)]
pub struct Run {
    /// The exit code (`None`: killed by a signal or by the time bound).
    pub code: Option<i32>,
    /// Standard output, byte for byte.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: String,
    /// How long it took.
    pub elapsed: Duration,
}

impl Run {
    /// Standard output as text.
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Runs `tclcomm ARGS` with `stdin` as standard input; killed after `limit`.
pub fn run_with(args: &[&str], stdin: &[u8], limit: Duration) -> Run {
    let start = Instant::now();
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tclcomm");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break Some(s);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = start.elapsed();
    let _ = writer.join();
    let stdout = out_t.join().unwrap_or_default();
    let stderr = String::from_utf8_lossy(&err_t.join().unwrap_or_default()).into_owned();
    Run {
        code: status.and_then(|s| s.code()),
        stdout,
        stderr,
        elapsed,
    }
}

/// Runs `tclcomm ARGS` with empty standard input, killed after 30 s.
pub fn run(args: &[&str]) -> Run {
    run_with(args, b"", Duration::from_secs(30))
}

/// A running `tclcomm serve`, killed on drop.
pub struct Server {
    /// The process.
    pub child: Child,
    /// The id it printed.
    pub id: String,
    /// Signalled when its standard output closes (it exited).
    closed: std::sync::mpsc::Receiver<()>,
}

impl Server {
    /// Starts `tclcomm serve ARGS` and reads its id.
    pub fn start(args: &[&str]) -> Server {
        let mut child = Command::new(BIN)
            .arg("serve")
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn tclcomm serve");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        let (closed_tx, closed) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(out);
            let mut first = String::new();
            let _ = lines.read_line(&mut first);
            let _ = tx.send(first);
            // Keep reading so the server never blocks on a full pipe; the
            // end of its output is the event of its exit.
            let mut rest = Vec::new();
            let _ = lines.read_to_end(&mut rest);
            let _ = closed_tx.send(());
        });
        let id = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) if !line.trim().is_empty() => line.trim().to_string(),
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("tclcomm serve printed no id: {other:?}");
            }
        };
        Server { child, id, closed }
    }

    /// Waits (at most `limit`) for the process to exit; its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        self.closed.recv_timeout(limit).ok()?;
        self.child.wait().ok()?.code()
    }

    /// Sends SIGTERM and waits (at most `limit`) for the exit code.
    pub fn terminate(&mut self, limit: Duration) -> Option<i32> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        self.wait_exit(limit)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Every special character of Tcl and of comm's framing, NUL, CR, LF,
/// non-ASCII and an unbalanced brace.
pub fn tricky() -> String {
    let mut s = String::from("a\0b {c} [d] $e \"f\" \\g ; h\ni\r\tj é 中 😀 \u{7f}\u{1}");
    s.push_str(" unbalanced { and } } backslash-at-end \\");
    s
}

/// A loopback port that was free a moment ago (so connecting is refused).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port()
}

/// `-v send ID {error boom {my info} {MY CODE}}` exits 1 with the message,
/// errorCode and errorInfo on stderr.
pub fn assert_verbose_remote_error(id: &str) {
    let r = run(&["-v", "send", id, "error boom {my info} {MY CODE}"]);
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr
            .starts_with("boom\nerrorCode: MY CODE\nerrorInfo:\nmy info\n"),
        "{}",
        r.stderr
    );
}
