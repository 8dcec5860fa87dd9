//! Real `tclsh` comm peers for integration tests (feature `testing`).
//!
//! [`TclPeer::spawn`] starts `tclsh`, loads tcllib `comm`, runs a prelude
//! script, and reports the id of the default channel `::comm::comm`
//! (listening on an OS-assigned port on 127.0.0.1). The test then drives the
//! peer through its stdin: each [`TclPeer::eval`] sends one script and reads
//! back its completion code and result byte for byte, with a bounded
//! timeout. The process is killed and reaped on drop.
//!
//! The line protocol: requests are `<seq> <hex of the UTF-8 script>`;
//! answers are `@@tclcomm@@ ANSWER <seq> <code> <hex result> <hex errorCode>
//! <hex errorInfo>`; anything else the peer prints on stdout is kept as
//! noise ([`TclPeer::stdout_noise`]). Scripts run at global level inside
//! `catch`, from the event loop, so they may `vwait` and `comm send`.
//!
//! ```no_run
//! use tclcomm::testing::TclPeer;
//!
//! let mut a = TclPeer::spawn("")?;
//! let mut b = TclPeer::spawn("set ::greeting hello")?;
//! let (code, result) = a.eval(&format!("::comm::comm send {} {{set ::greeting}}", b.id()))?;
//! assert_eq!((code, result.as_str()), (0, "hello"));
//! # drop(b);
//! # Ok::<(), tclcomm::testing::HarnessError>(())
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// How long spawning and each evaluation may take unless changed with
/// [`TclPeer::set_timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

const TAG: &str = "@@tclcomm@@";

const DRIVER: &str = r#"
package require comm
namespace eval ::tclcomm_peer {}
proc ::tclcomm_peer::hex {s} { binary encode hex [encoding convertto utf-8 $s] }
proc ::tclcomm_peer::unhex {h} { encoding convertfrom utf-8 [binary decode hex $h] }
proc ::tclcomm_peer::say {args} { puts stdout "@@tclcomm@@ [join $args { }]"; flush stdout }
fconfigure stdout -translation lf -encoding utf-8
fconfigure stdin -translation lf -encoding utf-8 -blocking 0
if {[catch {uplevel #0 [::tclcomm_peer::unhex $::tclcomm_peer::prelude]} msg]} {
    ::tclcomm_peer::say FAIL [::tclcomm_peer::hex $msg] [::tclcomm_peer::hex $::errorInfo]
    exit 1
}
proc ::tclcomm_peer::request {} {
    if {[gets stdin line] < 0} {
        if {[eof stdin]} { exit 0 }
        return
    }
    lassign [split $line " "] seq hex
    # No new request while this one runs a nested event loop.
    fileevent stdin readable {}
    set code [catch {uplevel #0 [unhex $hex]} result opts]
    set ec ""
    set ei ""
    if {$code == 1} {
        set ec [dict get $opts -errorcode]
        set ei [dict get $opts -errorinfo]
    }
    say ANSWER $seq $code [hex $result] [hex $ec] [hex $ei]
    fileevent stdin readable ::tclcomm_peer::request
}
fileevent stdin readable ::tclcomm_peer::request
::tclcomm_peer::say READY [::comm::comm self]
vwait ::tclcomm_peer::forever
"#;

/// Why the harness could not get an answer from a peer.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// `tclsh` could not be started, or its driver script not written.
    #[error("could not start tclsh: {0}")]
    Spawn(#[source] std::io::Error),
    /// The prelude script given to [`TclPeer::spawn`] raised an error.
    #[error("the peer's prelude failed: {message}\n{errorinfo}")]
    Prelude {
        /// The error message.
        message: String,
        /// Tcl's errorInfo.
        errorinfo: String,
    },
    /// No answer within the timeout.
    #[error("tclsh did not answer within {timeout:?}; stderr: {stderr}")]
    Timeout {
        /// The timeout that passed.
        timeout: Duration,
        /// What the peer wrote to stderr so far.
        stderr: String,
    },
    /// The peer process ended (or closed its stdout) before answering.
    #[error("tclsh exited ({status:?}); stderr: {stderr}")]
    Exited {
        /// Its exit status, if it could be collected.
        status: Option<ExitStatus>,
        /// Everything it wrote to stderr.
        stderr: String,
    },
    /// The peer printed a tagged line the harness cannot read.
    #[error("malformed line from tclsh: {0:?}")]
    Protocol(String),
    /// [`TclPeer::eval_ok`] got a completion code other than 0.
    #[error("script failed with code {code}: {result}\n{errorinfo}")]
    Tcl {
        /// The completion code.
        code: i32,
        /// The result or error message.
        result: String,
        /// errorInfo (empty unless `code` is 1).
        errorinfo: String,
    },
}

/// Everything `catch` reported for one evaluated script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The completion code (0 ok, 1 error, 2 return, 3 break, 4 continue...).
    pub code: i32,
    /// The result or error message.
    pub result: String,
    /// errorCode (empty unless `code` is 1).
    pub errorcode: String,
    /// errorInfo (empty unless `code` is 1).
    pub errorinfo: String,
}

/// A running `tclsh` with tcllib comm, driven over its stdin and stdout.
#[derive(Debug)]
pub struct TclPeer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Arc<Mutex<Vec<u8>>>,
    noise: Vec<String>,
    id: String,
    seq: u64,
    timeout: Duration,
    script: PathBuf,
    status: Option<ExitStatus>,
}

impl TclPeer {
    /// Starts `tclsh`, runs `package require comm`, evaluates `prelude` at
    /// global level, and waits (at most [`DEFAULT_TIMEOUT`]) for the peer to
    /// report the id of `::comm::comm`.
    pub fn spawn(prelude: &str) -> Result<Self, HarnessError> {
        Self::spawn_in(std::path::Path::new("tclsh"), prelude)
    }

    /// [`TclPeer::spawn`] in another shell: `tclsh9.0` (Tcl 9, where
    /// `package require comm` gives tcllib 2.0's comm 4.7.3), say.
    pub fn spawn_in(shell: &std::path::Path, prelude: &str) -> Result<Self, HarnessError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let script = std::env::temp_dir().join(format!(
            "tclcomm-peer-{}-{}.tcl",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let driver = format!(
            "namespace eval ::tclcomm_peer {{}}\nset ::tclcomm_peer::prelude {{{}}}\n{DRIVER}",
            hex_encode(prelude.as_bytes())
        );
        std::fs::write(&script, driver).map_err(HarnessError::Spawn)?;
        let spawned = Command::new(shell)
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_file(&script);
                return Err(HarnessError::Spawn(e));
            }
        };
        let (tx, lines) = channel();
        if let Some(out) = child.stdout.take() {
            std::thread::spawn(move || {
                let mut out = BufReader::new(out);
                let mut buf = Vec::new();
                loop {
                    buf.clear();
                    match out.read_until(b'\n', &mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {
                            let line = String::from_utf8_lossy(&buf);
                            let line = line.trim_end_matches(['\n', '\r']).to_owned();
                            if tx.send(line).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
        let stderr = Arc::new(Mutex::new(Vec::new()));
        if let Some(mut err) = child.stderr.take() {
            let sink = Arc::clone(&stderr);
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = err.read(&mut buf) {
                    sink.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .extend_from_slice(&buf[..n]);
                }
            });
        }
        let mut peer = TclPeer {
            stdin: child.stdin.take(),
            child,
            lines,
            stderr,
            noise: Vec::new(),
            id: String::new(),
            seq: 0,
            timeout: DEFAULT_TIMEOUT,
            script,
            status: None,
        };
        let ready = peer.next_tagged(|fields| matches!(fields.first(), Some(&"READY" | &"FAIL")));
        let _ = std::fs::remove_file(&peer.script);
        let fields = ready?;
        let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
        match fields.as_slice() {
            [_, "READY", id] => {
                peer.id = (*id).to_owned();
                Ok(peer)
            }
            [_, "FAIL", msg, info] => Err(HarnessError::Prelude {
                message: hex_decode_string(msg)?,
                errorinfo: hex_decode_string(info)?,
            }),
            _ => Err(HarnessError::Protocol(fields.join(" "))),
        }
    }

    /// The id of the peer's `::comm::comm` channel (its port, as text).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The port `::comm::comm` listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.id.parse().unwrap_or(0)
    }

    /// The `tclsh` process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sets how long each later evaluation may take.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Evaluates `script` at global level in the peer; returns the `catch`
    /// code and the result (or error message).
    pub fn eval(&mut self, script: &str) -> Result<(i32, String), HarnessError> {
        let a = self.eval_full(script)?;
        Ok((a.code, a.result))
    }

    /// Like [`eval`](Self::eval), but fails unless the code is 0.
    pub fn eval_ok(&mut self, script: &str) -> Result<String, HarnessError> {
        let a = self.eval_full(script)?;
        if a.code == 0 {
            Ok(a.result)
        } else {
            Err(HarnessError::Tcl {
                code: a.code,
                result: a.result,
                errorinfo: a.errorinfo,
            })
        }
    }

    /// Evaluates `script` and returns everything `catch` reported.
    pub fn eval_full(&mut self, script: &str) -> Result<Answer, HarnessError> {
        self.seq += 1;
        let seq = self.seq.to_string();
        let request = format!("{seq} {}\n", hex_encode(script.as_bytes()));
        let written = match self.stdin.as_mut() {
            Some(stdin) => stdin
                .write_all(request.as_bytes())
                .and_then(|()| stdin.flush()),
            None => Err(std::io::ErrorKind::BrokenPipe.into()),
        };
        if written.is_err() {
            return Err(self.exited());
        }
        // Answers to earlier, timed-out requests are skipped.
        let fields = self.next_tagged(|f| f.len() == 6 && f[0] == "ANSWER" && f[1] == seq)?;
        let [_, _, _, code, result, ec, ei] = fields.as_slice() else {
            return Err(HarnessError::Protocol(fields.join(" ")));
        };
        Ok(Answer {
            code: code
                .parse()
                .map_err(|_| HarnessError::Protocol(fields.join(" ")))?,
            result: hex_decode_string(result)?,
            errorcode: hex_decode_string(ec)?,
            errorinfo: hex_decode_string(ei)?,
        })
    }

    /// Waits for the next tagged line whose fields (after the tag) satisfy
    /// `want`; returns all its fields, the tag first. Untagged lines are
    /// kept as noise.
    fn next_tagged(&mut self, want: impl Fn(&[&str]) -> bool) -> Result<Vec<String>, HarnessError> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let fields: Vec<&str> = line.split(' ').collect();
                    if fields.first() != Some(&TAG) {
                        self.noise.push(line.clone());
                    } else if want(&fields[1..]) {
                        return Ok(fields.into_iter().map(str::to_owned).collect());
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(HarnessError::Timeout {
                        timeout: self.timeout,
                        stderr: self.stderr(),
                    });
                }
                Err(RecvTimeoutError::Disconnected) => return Err(self.exited()),
            }
        }
    }

    /// The error for a peer whose stdout has closed: collects its exit status
    /// (killing it if it does not exit within a second).
    fn exited(&mut self) -> HarnessError {
        let status = self.wait_exit(Duration::from_secs(1)).ok().or_else(|| {
            let _ = self.child.kill();
            self.child.wait().ok()
        });
        self.status = status;
        HarnessError::Exited {
            status,
            stderr: self.stderr(),
        }
    }

    /// Waits at most `timeout` for the peer to exit by itself (e.g. after it
    /// evaluated `exit`); fails with [`HarnessError::Timeout`] if it is
    /// still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus, HarnessError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.status {
                return Ok(status);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                self.status = Some(status);
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::Timeout {
                    timeout,
                    stderr: self.stderr(),
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Closes the peer's stdin, which makes it exit, and waits for that
    /// (killing it after the timeout).
    pub fn shutdown(mut self) -> Result<ExitStatus, HarnessError> {
        self.stdin = None;
        let timeout = self.timeout;
        self.wait_exit(timeout)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.status.is_none() && matches!(self.child.try_wait(), Ok(None))
    }

    /// Everything the peer wrote to stderr so far (e.g. comm's
    /// `bgerror failed to handle background error` reports).
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap_or_else(PoisonError::into_inner))
            .into_owned()
    }

    /// Waits at most `timeout` until the peer's stderr contains `needle`.
    pub fn wait_stderr(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.stderr().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Lines the peer printed on stdout that were not harness answers, as
    /// read so far.
    pub fn stdout_noise(&self) -> &[String] {
        &self.noise
    }
}

impl Drop for TclPeer {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_file(&self.script);
    }
}

/// Whether `tclsh` is on the PATH and can `package require comm` (checked
/// once per process, within [`DEFAULT_TIMEOUT`]).
pub fn tcl_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| match TclPeer::spawn("") {
        Ok(peer) => peer.port() != 0,
        Err(_) => false,
    })
}

fn hex_encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

fn hex_decode_string(hex: &str) -> Result<String, HarnessError> {
    let bad = || HarnessError::Protocol(format!("bad hex {hex:?}"));
    if !hex.len().is_multiple_of(2) {
        return Err(bad());
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("x"), 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| bad())?;
    String::from_utf8(bytes).map_err(|_| bad())
}

/// Makes test certificates in `dir` with `openssl`: a CA (`ca.pem`,
/// `ca.key`) and a server and a client certificate it signed
/// (`server.pem`/`server.key`, `client.pem`/`client.key`; 2048-bit RSA,
/// subject `localhost`, valid for `localhost` and 127.0.0.1). Panics with
/// what to install when `openssl` is missing or fails: tests that need
/// certificates fail rather than skip.
pub fn make_test_certs(dir: &std::path::Path) {
    std::fs::create_dir_all(dir).expect("certificate dir");
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("this test needs openssl (apt-get install openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=tclcomm test CA",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .expect("ext.cnf");
    for who in ["server", "client"] {
        let (key, csr, pem) = (
            format!("{who}.key"),
            format!("{who}.csr"),
            format!("{who}.pem"),
        );
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            "/CN=localhost",
        ]);
        run(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ]);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hex_round_trip() {
        let s = "a\0bé中😀\n";
        assert_eq!(hex_decode_string(&hex_encode(s.as_bytes())).unwrap(), s);
        assert_eq!(hex_encode(b""), "");
        assert!(hex_decode_string("abc").is_err());
        assert!(hex_decode_string("zz").is_err());
    }
}
