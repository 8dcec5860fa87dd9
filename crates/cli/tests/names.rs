//! `tclcomm names ...` end to end: a name server, `serve --name`, `send`
//! and `attach` by name, `watch`, a restart of the name server, and
//! tcllib's `nns` app against our server. Loopback, port 0 (the restarted
//! name server takes the port its predecessor was given).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use common::{BIN, Server, run, run_with};

const WAIT: Duration = Duration::from_secs(20);

/// A running `tclcomm` (or other) process whose stdout lines arrive on a
/// channel; killed on drop.
struct Proc {
    child: Child,
    lines: Receiver<String>,
}

impl Proc {
    fn spawn(program: &str, args: &[&str]) -> Proc {
        let mut child = Command::new(program)
            .args(args)
            .env_remove("RUST_LOG")
            .env_remove("TCLCOMM_NAMES")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc { child, lines }
    }

    fn tclcomm(args: &[&str]) -> Proc {
        Proc::spawn(BIN, args)
    }

    /// The next line of output, waited for at most [`WAIT`].
    fn line(&self) -> String {
        self.lines
            .recv_timeout(WAIT)
            .expect("no output line in time")
    }

    fn terminate(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        // The end of its output is the event of its exit.
        let deadline = Instant::now() + WAIT;
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(_) => {}
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("did not exit on SIGTERM"),
            }
        }
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for `name` to be bound to `data` at the name server `ns`: the
/// event a `names watch` of it prints (the names bound already come first).
fn wait_bound(ns: &str, name: &str, data: &str) {
    let watch = Proc::tclcomm(&["names", "watch", "--names", ns, name]);
    wait_line(&watch, &format!("+ {name}\t{data}"));
}

/// Reads `watch`'s lines (at most 20) until `want`.
fn wait_line(watch: &Proc, want: &str) {
    let mut seen = Vec::new();
    while seen.len() < 20 {
        let line = watch.line();
        if line == want {
            return;
        }
        seen.push(line);
    }
    panic!("no {want:?} from watch: {seen:?}");
}

#[test]
fn names_end_to_end() {
    let mut ns = Proc::tclcomm(&["names", "serve", "--port", "0"]);
    let ns_id = ns.line();
    let ns_port = ns_id.clone();

    let mut served = Server::start(&["--name", "editor", "--names", &ns_id]);
    let editor = served.id.clone();

    // send and attach by name.
    let r = run(&["send", "--names", &ns_id, "editor", "expr", "6*7"]);
    assert_eq!(
        (r.code, r.out().as_str()),
        (Some(0), "42\n"),
        "{}",
        r.stderr
    );
    let r = run_with(
        &["attach", "--names", &ns_id, "editor"],
        b"expr {1+1}\nexit\n",
        WAIT,
    );
    assert_eq!((r.code, r.out().as_str()), (Some(0), "2\n"), "{}", r.stderr);
    // The environment variable says where the name server is, too.
    let r = Command::new(BIN)
        .args(["send", "editor", "set", "x", "7"])
        .env("TCLCOMM_NAMES", &ns_id)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&r.stdout), "7\n");

    // Listing and searching.
    let r = run(&["names", "list", "--names", &ns_id]);
    assert_eq!(r.out(), format!("NAME    ID\neditor  {editor}\n"));
    let r = run(&["names", "search", "--names", &ns_id, "e*"]);
    assert_eq!(r.out(), format!("editor\t{editor}\n"));
    assert_eq!(run(&["names", "search", "--names", &ns_id, "x*"]).out(), "");

    // A name is held once: a second serve under it fails.
    let r = run(&["serve", "--name", "editor", "--names", &ns_id]);
    assert_eq!(r.code, Some(2));
    assert!(
        r.stderr.contains("Name \"editor\" is already bound"),
        "{}",
        r.stderr
    );
    // An unknown name is explained.
    let r = run(&["send", "--names", &ns_id, "nosuch", "expr", "1"]);
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("no name \"nosuch\""), "{}", r.stderr);

    // Watch: the current names, then adds and removes as they happen.
    let watch = Proc::tclcomm(&["names", "watch", "--names", &ns_id]);
    assert_eq!(watch.line(), format!("+ editor\t{editor}"));
    let mut bind = Proc::tclcomm(&["names", "bind", "--names", &ns_id, "other", "4500"]);
    assert_eq!(bind.line(), "bound other");
    assert_eq!(watch.line(), "+ other\t4500");
    bind.terminate();
    assert_eq!(watch.line(), "- other\t4500");

    // The name server restarts: serve binds its name again, watch resumes.
    ns.terminate();
    assert_eq!(watch.line(), "# lost");
    let ns2 = Proc::tclcomm(&["names", "serve", "--port", &ns_port]);
    assert_eq!(ns2.line(), ns_id);
    wait_bound(&ns_id, "editor", &editor);
    let r = run(&["names", "resolve", "--names", &ns_id, "editor"]);
    assert_eq!(r.out().trim(), editor);
    // Around "# back", watch may show editor leave and come back (when it
    // reached the new server before serve did); then it follows new names.
    let mut seen = Vec::new();
    while seen.last().map(String::as_str) != Some("# back") {
        seen.push(watch.line());
        assert!(seen.len() < 10, "watch did not resume: {seen:?}");
    }
    let _late = Proc::tclcomm(&["names", "bind", "--names", &ns_id, "late", "4600"]);
    loop {
        let line = watch.line();
        if line == "+ late\t4600" {
            break;
        }
        assert!(
            line.contains("editor"),
            "unexpected {line:?} after {seen:?}"
        );
    }

    // serve goes: its name goes.
    served.terminate(WAIT);
    wait_line(&watch, &format!("- editor\t{editor}"));
    assert_eq!(
        run(&["names", "search", "--names", &ns_id, "editor"]).out(),
        ""
    );
}

#[test]
fn a_name_with_no_name_server_is_explained() {
    let port = common::free_port().to_string();
    let r = run(&["send", "--names", &port, "editor", "expr", "1"]);
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("invalid id \"editor\""), "{}", r.stderr);
    assert!(r.stderr.contains("no name server present"), "{}", r.stderr);
    assert!(r.stderr.contains("tclcomm names serve"), "{}", r.stderr);
}

fn tcllib_app(name: &str) -> String {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .expect("sh");
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        !path.is_empty(),
        "this test needs tcllib's {name} app (apt-get install tcllib)"
    );
    path
}

#[test]
fn tcllib_nns_app_with_our_name_server() {
    let nns = tcllib_app("nns");
    let ns = Proc::tclcomm(&["names", "serve", "--port", "0"]);
    let ns_id = ns.line();
    let served = Server::start(&[]);

    // tcllib's nns app names our serve; tclcomm send finds it.
    let _bind = Proc::spawn(
        "tclsh",
        &[&nns, "bind", "-port", &ns_id, "viaapp", &served.id],
    );
    wait_bound(&ns_id, "viaapp", &served.id);
    let r = run(&["send", "--names", &ns_id, "viaapp", "expr", "2+3"]);
    assert_eq!(r.out(), "5\n", "{}", r.stderr);

    let r = Command::new("tclsh")
        .args([&nns, "ident", "-port", &ns_id])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&r.stdout);
    assert!(out.contains("Protocol: 1"), "{out}");
    assert!(
        out.contains("Features: Core, and Search/Continuous"),
        "{out}"
    );
}

#[test]
fn serve_name_waits_for_a_name_server_to_come() {
    // A port free a moment ago: nothing answers there yet.
    let port = common::free_port().to_string();
    let served = Server::start(&["--name", "early", "--names", &port]);
    let ns = Proc::tclcomm(&["names", "serve", "--port", &port]);
    assert_eq!(ns.line(), port);
    wait_bound(&port, "early", &served.id);
}

#[test]
fn registration_can_require_the_secret() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("tclcomm-names-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cookie = dir.join("cookie");
    std::fs::write(&cookie, "names s3cret").unwrap();
    std::fs::set_permissions(&cookie, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cookie = cookie.display().to_string();

    let ns = Proc::tclcomm(&[
        "names",
        "serve",
        "--port",
        "0",
        "--cookie",
        &cookie,
        "--auth-required",
    ]);
    let ns_id = ns.line();
    // Without the secret: refused, and nothing is bound.
    let r = run(&["names", "bind", "--names", &ns_id, "intruder", "1"]);
    assert_ne!(r.code, Some(0));
    assert!(r.stderr.contains("authentication"), "{}", r.stderr);
    // With it: bound, and found by those who have it too.
    let bind = Proc::tclcomm(&[
        "names", "bind", "--names", &ns_id, "--cookie", &cookie, "trusted", "4500",
    ]);
    assert_eq!(bind.line(), "bound trusted");
    let r = run(&["names", "list", "--names", &ns_id, "--cookie", &cookie]);
    assert_eq!(r.out(), "NAME     ID\ntrusted  4500\n", "{}", r.stderr);
    drop(bind);
    let _ = std::fs::remove_dir_all(&dir);
}
