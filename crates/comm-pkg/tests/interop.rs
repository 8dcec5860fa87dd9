//! Interop: our comm (libcomm.so) in one tclsh against tcllib's comm 4.7 in
//! another, both directions, plain TCP and TLS (`-socketcmd tls::socket`
//! with a 2048-bit certificate generated here).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The package directory, laid out once per test process.
fn package() -> PathBuf {
    common::package("interop")
}

/// Which comm a tclsh loads.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Ours,
    Tcllib,
}

impl Kind {
    fn require(self) -> &'static str {
        match self {
            Kind::Ours => {
                "package require comm 4.8; if {[package provide tclcomm] eq {}} {error notours}"
            }
            Kind::Tcllib => "package require -exact comm 4.7",
        }
    }
}

struct Peer {
    child: Child,
    id: String,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const SERVER: &str = r#"
proc bgerror {m} {}
after 60000 exit
proc later {ms v} {
    set f [$::ch return_async]
    after $ms [list $f return "late $v"]
}
proc laterr {} {
    set f [$::ch return_async]
    after 10 [list $f return -code 1 "future failed"]
}
proc boom {} {error "server boom" "" {SERVER CODE}}
proc code {c} {return -level 0 -code $c "code $c"}
proc die {} {after 50 exit; vwait forever}
if {$tls} {
    package require tls
    tls::init -certfile $cert -keyfile $key -require 0 -request 0
    set ch [::comm::comm new ::S -socketcmd tls::socket -listen 1]
} else {
    set ch ::comm::comm
}
puts "ready [$ch self]"
flush stdout
vwait forever
"#;

const CLIENT: &str = r#"
proc bgerror {m} {}
after 60000 {puts "FAIL timeout"; exit 1}
proc check {name got want} {
    if {$got eq $want} {puts "ok $name"} else {puts "FAIL $name: got <$got> want <$want>"}
}
if {$tls} {
    package require tls
    tls::init -certfile $cert -keyfile $key -require 0 -request 0
    ::comm::comm new ::C -socketcmd tls::socket
    set c ::C
} else {
    set c ::comm::comm
}
check sync [$c send $srv {expr {6*7}}] 42
check async [$c send -async $srv {set ::a 1}] {}
check after-async [$c send $srv {set ::a}] 1
set s "a\x00b\u00e9\u4e2d\U0001F600\n\r\t\{\}\}\[\]\$\\;\" \\ \{"
check special [string equal [$c send $srv [list set ::s $s]] $s] 1
check special-len [$c send $srv {string length $::s}] [string length $s]
check error [list [catch {$c send $srv boom} m o] $m [dict get $o -errorcode] \
    [string match "server boom*(procedure \"boom\" line 1)*catch \$thecmd ret*" [dict get $o -errorinfo]]] \
    {1 {server boom} {SERVER CODE} 1}
check code2 [$c send $srv {code 2}] {code 2}
check code3 [list [catch {$c send $srv {code 3}} m] $m] {1 {invoked "break" outside of a loop}}
check code4 [list [catch {$c send $srv {code 4}} m] $m] {1 {invoked "continue" outside of a loop}}
$c send -command {lappend ::cb} $srv {list x y}
vwait ::cb
check callback [list [dict get $::cb -code] [dict get $::cb -result] [dict get $::cb -errorcode]] {0 {x y} {}}
unset ::cb
$c send -command {lappend ::cb} $srv {error oops {} {OOPS 1}}
vwait ::cb
check callback-error [list [dict get $::cb -code] [dict get $::cb -result] [dict get $::cb -errorcode]] {1 oops {OOPS 1}}
check return_async [$c send $srv {later 50 x}] {late x}
check return_async-error [list [catch {$c send $srv laterr} m] $m] {1 {future failed}}
check big [string length [$c send $srv {string repeat "\{\\\}" 250000}]] 750000
check died [list [catch {$c send $srv die} m] $m] {1 {target application died or connection lost}}
puts done
exit 0
"#;

fn tclsh(kind: Kind, body: &str, vars: &[(&str, &str)]) -> Child {
    let mut script = String::new();
    for (k, v) in vars {
        script.push_str(&format!("set {k} {{{v}}}\n"));
    }
    script.push_str(kind.require());
    script.push('\n');
    script.push_str(body);
    let mut child = Command::new("tclsh")
        .env("TCLLIBPATH", package())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("tclsh");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(script.as_bytes()).expect("script");
    drop(stdin);
    child
}

/// Lines of a child's stdout, with a bound on the wait for each.
fn lines(child: &mut Child) -> mpsc::Receiver<String> {
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

fn server(kind: Kind, vars: &[(&str, &str)]) -> Peer {
    let mut child = tclsh(kind, SERVER, vars);
    let rx = lines(&mut child);
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("server ready");
    let id = line.strip_prefix("ready ").expect("ready line").to_owned();
    Peer { child, id }
}

fn run(server_kind: Kind, client_kind: Kind, tls: Option<(&Path, &Path)>) {
    let (cert, key) = tls
        .map(|(c, k)| (c.display().to_string(), k.display().to_string()))
        .unwrap_or_default();
    let flag = if tls.is_some() { "1" } else { "0" };
    let vars = [
        ("tls", flag),
        ("cert", cert.as_str()),
        ("key", key.as_str()),
    ];
    let srv = server(server_kind, &vars);
    let mut cvars = vars.to_vec();
    cvars.push(("srv", srv.id.as_str()));
    let mut client = Peer {
        child: tclsh(client_kind, CLIENT, &cvars),
        id: String::new(),
    };
    let rx = lines(&mut client.child);
    let mut failures = Vec::new();
    let mut oks = 0;
    loop {
        match rx.recv_timeout(Duration::from_secs(90)) {
            Ok(l) if l == "done" => break,
            Ok(l) if l.starts_with("ok ") => oks += 1,
            Ok(l) => failures.push(l),
            Err(e) => {
                failures.push(format!("client stopped: {e}"));
                break;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{server_kind:?} server, {client_kind:?} client: {failures:#?}"
    );
    assert_eq!(oks, 15, "{server_kind:?} server, {client_kind:?} client");
}

#[test]
fn ours_client_tcllib_server() {
    run(Kind::Tcllib, Kind::Ours, None);
}

#[test]
fn tcllib_client_ours_server() {
    run(Kind::Ours, Kind::Tcllib, None);
}

#[test]
fn ours_both_sides() {
    run(Kind::Ours, Kind::Ours, None);
}

/// A self-signed 2048-bit certificate, or None without openssl/tls.
fn certificate(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let has_tls = Command::new("tclsh")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .and_then(|mut c| {
            c.stdin
                .take()
                .map(|mut s| s.write_all(b"exit [catch {package require tls}]\n"));
            c.wait()
        })
        .is_ok_and(|s| s.success());
    std::fs::create_dir_all(dir).ok()?;
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    (has_tls && ok).then_some((cert, key))
}

#[test]
fn tls_both_directions() {
    let dir = package().join("certs");
    let (cert, key) = certificate(&dir).expect(
        "this test needs openssl and tclsh with the `tls` package (apt-get install openssl tcl-tls)",
    );
    run(Kind::Tcllib, Kind::Ours, Some((&cert, &key)));
    run(Kind::Ours, Kind::Tcllib, Some((&cert, &key)));
}
