//! The listener of our comm package in plain tclsh under descriptor
//! pressure: at its descriptor limit it neither spins nor stops serving
//! for good; with a limit above `FD_SETSIZE` it does not abort; and with
//! `-local 1` it answers on ::1 as well as 127.0.0.1.
//!
//! Needs tclsh and prlimit (util-linux); fails without them.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The package directory, laid out once per test process.
fn package() -> PathBuf {
    common::package("sockets")
}

/// A tclsh serving with our comm under a descriptor limit; killed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `tclsh` under `prlimit --nofile=N:N` with `::comm::comm`
    /// listening (`-local 1`, an OS-assigned port).
    fn start(nofile: u32) -> Server {
        let script = "package require comm 4.8\n\
            if {[package provide tclcomm] eq {}} {error notours}\n\
            after 120000 exit\n\
            puts [::comm::comm self]\nflush stdout\n\
            vwait forever\n";
        let mut child = Command::new("prlimit")
            .arg(format!("--nofile={nofile}:{nofile}"))
            .arg("tclsh")
            .env("TCLLIBPATH", package())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("prlimit and tclsh (util-linux, tcl8.6)");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(script.as_bytes()).expect("script");
        drop(stdin);
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("server printed its port");
        let port = line.trim().parse().expect("a port");
        Server { child, port }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// utime + stime in clock ticks, from /proc/PID/stat.
    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).expect("stat");
        // Fields after the command name (which is in parentheses).
        let rest = &stat[stat.rfind(')').expect("comm field") + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15, i.e. 11 and 12 after ')'.
        f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime")
    }

    /// Descriptors the server has open.
    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

/// A comm client on a raw socket: the handshake, then one sync send of
/// `script`; returns the reply line. Every read has a deadline.
fn comm_send(addr: SocketAddr, script: &str, timeout: Duration) -> std::io::Result<String> {
    let s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    let mut w = s.try_clone()?;
    write!(w, "{{3 2}} 1\n{{send 1 {{{{{script}}}}}}}\n")?;
    let mut r = BufReader::new(s);
    let mut vers = String::new();
    r.read_line(&mut vers)?;
    let mut reply = String::new();
    r.read_line(&mut reply)?;
    Ok(reply.trim_end().to_owned())
}

/// Retries `comm_send` until it answers or `deadline` passes (the server
/// may still be backing off, or closing what it could not watch).
fn served(addr: SocketAddr, script: &str, deadline: Instant) -> Option<String> {
    let mut answer = None;
    poll(deadline, || {
        let left = deadline.saturating_duration_since(Instant::now());
        match comm_send(addr, script, left.min(Duration::from_secs(5))) {
            Ok(l) if l.starts_with("{reply") => answer = Some(l),
            _ => {}
        }
        answer.is_some()
    });
    answer
}

/// Polls `cond` until it holds or `deadline` passes; whether it held. For
/// what only /proc or a retry shows (descriptors, CPU, a server that backs
/// off), which has no event to wait on: the one place these tests pause.
fn poll(deadline: Instant, mut cond: impl FnMut() -> bool) -> bool {
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Waits (bounded) until `cond` holds.
fn wait_for(what: &str, timeout: Duration, cond: impl FnMut() -> bool) {
    assert!(
        poll(Instant::now() + timeout, cond),
        "timed out waiting for {what}"
    );
}

/// At its descriptor limit (64) the server stays (nearly) idle instead
/// of spinning on a failing accept, and serves again once the flood goes.
/// Tcl's own `socket -server` spins here at ~100 ticks/s.
#[test]
fn fd_limit_backs_off_and_recovers() {
    let mut srv = Server::start(64);
    let addr = local(srv.port);
    assert!(served(addr, "expr {6*7}", Instant::now() + Duration::from_secs(20)).is_some());
    // Far more connections than the server has descriptors: they sit in
    // the listen backlog once it is out of them.
    let flood: Vec<TcpStream> = (0..150)
        .map(|_| TcpStream::connect(addr).expect("connect (backlog)"))
        .collect();
    wait_for(
        "the server to run out of descriptors",
        Duration::from_secs(20),
        || srv.fds() >= 60,
    );
    // CPU over a 1 s window (the window is the measurement).
    let t0 = srv.cpu_ticks();
    poll(Instant::now() + Duration::from_secs(1), || false);
    let ticks = srv.cpu_ticks() - t0;
    assert!(srv.alive(), "server died at its descriptor limit");
    assert!(
        ticks < 30,
        "server busy at its descriptor limit: {ticks} ticks in 1 s"
    );
    drop(flood);
    let r = served(addr, "expr {6*7}", Instant::now() + Duration::from_secs(30));
    assert_eq!(r.as_deref(), Some("{reply 1 {return -code 0 42}}"));
}

/// With a descriptor limit above `FD_SETSIZE`, connections beyond 1024
/// are closed (and counted) instead of aborting the process in Tcl 8.6's
/// select-based notifier.
#[test]
fn beyond_fd_setsize_no_abort() {
    let mut srv = Server::start(2048);
    let addr = local(srv.port);
    assert!(served(addr, "expr {6*7}", Instant::now() + Duration::from_secs(20)).is_some());
    let mut conns: Vec<TcpStream> = Vec::new();
    for _ in 0..1100 {
        conns.push(TcpStream::connect(addr).expect("connect"));
    }
    // The last ones got descriptors >= 1024 in the server: closed at once.
    let last = conns.last_mut().expect("a connection");
    last.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut b = [0u8; 16];
    let n = last
        .read(&mut b)
        .expect("EOF from the server, not a timeout");
    assert_eq!(n, 0, "the server closed the connection it cannot watch");
    assert!(srv.alive(), "server aborted beyond FD_SETSIZE");
    drop(conns);
    let r = served(
        addr,
        "dict get [::comm::RStats ::comm::comm] unwatchable",
        Instant::now() + Duration::from_secs(30),
    )
    .expect("served after the connections went");
    let count: u64 = r
        .trim_start_matches("{reply 1 {return -code 0 ")
        .trim_end_matches("}}")
        .parse()
        .expect("a count");
    assert!(count > 0, "unwatchable count {count}");
    assert!(srv.alive());
}

/// `-local 1` listens on ::1 too (on the same port), when the machine has
/// ::1.
#[test]
fn local_listens_on_ipv6_loopback() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no ::1 on this machine: nothing to check");
        return;
    }
    let srv = Server::start(1024);
    let v6 = SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, srv.port));
    let r = served(v6, "expr {6*7}", Instant::now() + Duration::from_secs(20));
    assert_eq!(r.as_deref(), Some("{reply 1 {return -code 0 42}}"));
    let r = served(
        local(srv.port),
        "expr {6*8}",
        Instant::now() + Duration::from_secs(20),
    );
    assert_eq!(r.as_deref(), Some("{reply 1 {return -code 0 48}}"));
}

/// A peer that sends requests and never reads the answers: what waits for
/// it is reported as `queued` (what the outbound cap will read), and is
/// gone once the peer is.
#[test]
fn queued_bytes_of_a_peer_that_does_not_read() {
    let srv = Server::start(1024);
    let addr = local(srv.port);
    let peer = TcpStream::connect(addr).expect("connect");
    let mut w = peer.try_clone().expect("clone");
    let mut reqs = String::from("{3 2} 1\n");
    for k in 1..=20_000 {
        reqs.push_str(&format!("{{send {k} {{{{string repeat y 1000}}}}}}\n"));
    }
    // 20 MB of answers: more than the socket buffers of both ends hold.
    w.write_all(reqs.as_bytes()).expect("requests");
    let queued = |deadline: Instant| -> u64 {
        let r = served(
            addr,
            "dict get [::comm::RStats ::comm::comm] queued",
            deadline,
        )
        .expect("stats served");
        r.trim_start_matches("{reply 1 {return -code 0 ")
            .trim_end_matches("}}")
            .parse()
            .expect("a count")
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut q = 0;
    while q < 1_000_000 && Instant::now() < deadline {
        q = queued(deadline);
    }
    assert!(q >= 1_000_000, "queued for the non-reader: {q}");
    drop(w);
    drop(peer);
    let deadline = Instant::now() + Duration::from_secs(30);
    while q > 0 && Instant::now() < deadline {
        q = queued(deadline);
    }
    assert_eq!(q, 0, "still queued after the peer went");
}
