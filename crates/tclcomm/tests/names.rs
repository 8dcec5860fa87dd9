//! The nns name service (`tclcomm::names`) against tcllib's own nns: our
//! server with tcllib's `nameserv` and `nameserv::auto` clients (tclsh,
//! tcllib comm), and our client with tcllib's `nnsd` app. Loopback, port 0
//! (a restarted server takes the port its predecessor was given).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tclcomm::names::{Client, Event, Server};
use tclcomm::testing::{TclPeer, tcl_available};
use tclcomm::{AuthConfig, Config, Error, Id, Secret};

const WAIT: Duration = Duration::from_secs(15);

macro_rules! need_tcl {
    () => {
        assert!(
            tcl_available(),
            "these tests need tclsh 8.6 with tcllib (comm, nameserv) (apt-get install tcl tcllib)"
        );
    };
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Waits (at most [`WAIT`]) until `done` holds for `server`, checked on
/// each change of its names and searches.
async fn changed_until(what: &str, server: &Server, done: impl FnMut(&Server) -> bool) {
    tokio::time::timeout(WAIT, server.wait_until(done))
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

/// [`changed_until`] from outside the runtime.
fn wait_until(
    rt: &tokio::runtime::Runtime,
    what: &str,
    server: &Server,
    done: impl FnMut(&Server) -> bool,
) {
    rt.block_on(changed_until(what, server, done));
}

/// Tcl helpers of the peer: `waitev N` waits (bounded) until the search
/// callback has recorded N events.
const PEER_PRELUDE: &str = r#"
set ::ev {}
proc record {args} {lappend ::ev $args; set ::evtick 1}
proc waitev {n} {
    set deadline [expr {[clock milliseconds] + 10000}]
    while {[llength $::ev] < $n && [clock milliseconds] < $deadline} {
        set t [after 200 {set ::evtick 0}]
        vwait ::evtick
        after cancel $t
    }
    return $::ev
}
"#;

/// Stops `server` and starts a new one on its port (free at once: `close`
/// returns once the old listener is closed).
fn restart(rt: &tokio::runtime::Runtime, server: Server) -> Server {
    let port = server.port();
    rt.block_on(server.close());
    drop(server);
    rt.block_on(Server::start(Config::listening().port(port)))
        .unwrap()
}

fn names_of(server: &Server) -> Vec<String> {
    server.names().into_iter().map(|(n, _, _)| n).collect()
}

#[test]
fn tcllib_nameserv_client_with_our_server() {
    need_tcl!();
    let rt = rt();
    let server = rt.block_on(Server::start(Config::listening())).unwrap();
    let port = server.port();
    let mut peer = TclPeer::spawn(&format!(
        "{PEER_PRELUDE}\npackage require nameserv\nnameserv::configure -port {port}"
    ))
    .unwrap();

    assert_eq!(
        peer.eval_ok("nameserv::bind foo {data for foo}").unwrap(),
        ""
    );
    // A collision: tcllib's exact text.
    let (code, msg) = peer.eval("nameserv::bind foo other").unwrap();
    assert_eq!((code, msg.as_str()), (1, "Name \"foo\" is already bound"));
    assert_eq!(
        peer.eval_ok("nameserv::search *").unwrap(),
        "foo {data for foo}"
    );
    assert_eq!(peer.eval_ok("nameserv::search x*").unwrap(), "");
    assert_eq!(peer.eval_ok("nameserv::server_protocol").unwrap(), "1");
    assert_eq!(
        peer.eval_ok("nameserv::server_features").unwrap(),
        "Core Search/Continuous"
    );

    // Continuous search: the initial set, then adds and removes.
    peer.eval_ok("set r [nameserv::search -continuous f*]; $r configure -command record")
        .unwrap();
    assert_eq!(
        peer.eval_ok("waitev 1").unwrap(),
        "{add {foo {data for foo}}}"
    );
    let other = rt
        .block_on(Client::connect(server.id(), Config::new()))
        .unwrap();
    rt.block_on(other.bind("fab", "fab data")).unwrap();
    rt.block_on(other.bind("zed", "not matching")).unwrap();
    assert_eq!(
        peer.eval_ok("lindex [waitev 2] 1").unwrap(),
        "add {fab {fab data}}"
    );
    other.close();
    assert_eq!(
        peer.eval_ok("lindex [waitev 3] 2").unwrap(),
        "remove {fab {fab data}}"
    );
    assert_eq!(peer.eval_ok("lsort [$r names]").unwrap(), "foo");

    // Stopping a search works here (tcllib's server raises `can't read
    // "comm"`): the server forgets it.
    assert_eq!(server.searches().len(), 1);
    peer.eval_ok("$r destroy").unwrap();
    wait_until(&rt, "the search to stop", &server, |server| {
        server.searches().is_empty()
    });

    // Release drops the caller's names.
    peer.eval_ok("nameserv::release").unwrap();
    assert!(names_of(&server).is_empty());
    peer.eval_ok("nameserv::bind held x").unwrap();
    assert_eq!(names_of(&server), ["held"]);

    // Names go with their holder's connection.
    drop(peer);
    wait_until(
        &rt,
        "the name of the exited peer to go",
        &server,
        |server| names_of(server).is_empty(),
    );
}

#[test]
fn tcllib_nameserv_auto_rebinds_after_our_server_restarts() {
    need_tcl!();
    let rt = rt();
    let server = rt.block_on(Server::start(Config::listening())).unwrap();
    let port = server.port();
    let mut peer = TclPeer::spawn(&format!(
        "{PEER_PRELUDE}\npackage require nameserv::auto\n\
         nameserv::auto::configure -port {port} -delay 100"
    ))
    .unwrap();
    peer.eval_ok("nameserv::auto::bind app1 {4500}").unwrap();
    peer.eval_ok("set r [nameserv::auto::search -continuous *]; $r configure -command record")
        .unwrap();
    assert_eq!(peer.eval_ok("waitev 1").unwrap(), "{add {app1 4500}}");
    assert_eq!(names_of(&server), ["app1"]);

    // The server goes away and comes back on the same port.
    let server = restart(&rt, server);
    wait_until(&rt, "nameserv::auto to bind again", &server, |server| {
        names_of(server) == ["app1"]
    });
    wait_until(
        &rt,
        "nameserv::auto to resume its search",
        &server,
        |server| server.searches().len() == 1,
    );
    // The resumed search sees new names.
    let other = rt
        .block_on(Client::connect(server.id(), Config::new()))
        .unwrap();
    rt.block_on(other.bind("late", "4600")).unwrap();
    let evs = peer.eval_ok("waitev 3").unwrap();
    assert!(evs.ends_with("{add {late 4600}}"), "{evs}");
    assert_eq!(peer.eval_ok("lsort [$r names]").unwrap(), "app1 late");
    drop(peer);
    wait_until(&rt, "app1 released", &server, |server| {
        names_of(server) == ["late"]
    });
}

/// tcllib's `nnsd` app, unchanged, on an OS-assigned port: a wrapper
/// prints the port its server got, then sources the app.
struct Nnsd {
    child: Child,
    port: u16,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn nnsd_path() -> String {
    let out = Command::new("sh")
        .args(["-c", "command -v nnsd"])
        .output()
        .expect("sh");
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        !path.is_empty(),
        "these tests need tcllib's nnsd app (apt-get install tcllib)"
    );
    path
}

impl Nnsd {
    fn start(port: u16) -> Nnsd {
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tclcomm-nnsd-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let wrapper = dir.join("nnsd-wrapper.tcl");
        std::fs::write(
            &wrapper,
            format!(
                "package require nameserv::server\n\
                 rename ::nameserv::server::start ::nameserv::server::Start0\n\
                 proc ::nameserv::server::start {{}} {{\n\
                     Start0\n\
                     puts \"PORT [$::nameserv::server::comm self]\"\n\
                     flush stdout\n\
                 }}\n\
                 set argv {{-port {port}}}\n\
                 set argv0 nnsd\n\
                 source {}\n",
                nnsd_path()
            ),
        )
        .unwrap();
        let mut child = Command::new("tclsh")
            .arg(&wrapper)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("tclsh");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(p) = line.strip_prefix("PORT ") {
                    let _ = tx.send(p.trim().parse::<u16>().unwrap_or(0));
                }
            }
        });
        let port = rx.recv_timeout(WAIT).expect("nnsd did not start");
        assert_ne!(port, 0);
        Nnsd {
            child,
            port,
            _dir: TempDir(dir),
        }
    }
}

impl Drop for Nnsd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn next_event(w: &mut tclcomm::names::Watch) -> Event {
    tokio::time::timeout(WAIT, w.next())
        .await
        .expect("no event in time")
        .expect("watch closed")
}

#[test]
fn our_client_with_tcllib_nnsd() {
    need_tcl!();
    let rt = rt();
    let nnsd = Nnsd::start(0);
    let sid = Id::port(nnsd.port);
    rt.block_on(async {
        let a = Client::connect_with_delay(sid.clone(), Config::new(), Duration::from_millis(100))
            .await
            .unwrap();
        let b = Client::connect(sid.clone(), Config::new()).await.unwrap();
        assert_eq!(a.server_protocol().await.unwrap(), "1");
        assert_eq!(a.server_features().await.unwrap(), "Core Search/Continuous");
        a.bind("alpha", "45001").await.unwrap();
        let err = b.bind("alpha", "45002").await.unwrap_err();
        assert!(matches!(&err, Error::Remote(r) if r.message == "Name \"alpha\" is already bound"));
        assert_eq!(
            b.search("*").await.unwrap(),
            [("alpha".to_string(), "45001".to_string())]
        );
        assert_eq!(b.resolve("alpha").await.unwrap().to_string(), "45001");
        assert!(b.resolve("nosuch").await.is_err());

        let mut w = b.watch("a*").await.unwrap();
        assert_eq!(
            next_event(&mut w).await,
            Event::Added(vec![("alpha".into(), "45001".into())])
        );
        a.bind("apple", "45003").await.unwrap();
        a.bind("zulu", "45004").await.unwrap();
        assert_eq!(
            next_event(&mut w).await,
            Event::Added(vec![("apple".into(), "45003".into())])
        );
        a.close();
        match next_event(&mut w).await {
            Event::Removed(mut gone) => {
                gone.sort();
                assert_eq!(
                    gone,
                    [
                        ("alpha".to_string(), "45001".to_string()),
                        ("apple".to_string(), "45003".to_string())
                    ]
                );
            }
            other => panic!("expected a removal, got {other:?}"),
        }
        assert!(w.current().is_empty());
    });
}

#[test]
fn our_client_rebinds_and_resumes_after_nnsd_restarts() {
    need_tcl!();
    let rt = rt();
    let nnsd = Nnsd::start(0);
    let port = nnsd.port;
    let sid = Id::port(port);
    rt.block_on(async {
        let a = Client::connect_with_delay(sid.clone(), Config::new(), Duration::from_millis(100))
            .await
            .unwrap();
        a.bind("kept", "45010").await.unwrap();
        let mut w = a.watch("*").await.unwrap();
        assert_eq!(
            next_event(&mut w).await,
            Event::Added(vec![("kept".into(), "45010".into())])
        );
        drop(nnsd);
        assert_eq!(next_event(&mut w).await, Event::Disconnected);
        let nnsd = Nnsd::start(port);
        // Back: the name is bound again, and the resumed search finds it
        // unchanged (no event for it), then reports resumption.
        assert_eq!(next_event(&mut w).await, Event::Reconnected);
        let b = Client::connect(sid.clone(), Config::new()).await.unwrap();
        assert_eq!(
            b.search("*").await.unwrap(),
            [("kept".to_string(), "45010".to_string())]
        );
        b.bind("newer", "45011").await.unwrap();
        assert_eq!(
            next_event(&mut w).await,
            Event::Added(vec![("newer".into(), "45011".into())])
        );
        drop(nnsd);
    });
}

#[test]
fn registration_can_require_the_secret() {
    let rt = rt();
    rt.block_on(async {
        let secret = Secret::new(b"0123456789abcdef0123456789abcdef".to_vec());
        let auth = AuthConfig {
            secret: secret.clone(),
            required: true,
        };
        let mut config = Config::listening();
        config.auth = Some(auth.clone());
        let server = Server::start(config).await.unwrap();
        let outsider = Client::connect(server.id(), Config::new()).await.unwrap();
        assert!(outsider.bind("x", "1").await.is_err());
        assert!(server.names().is_empty());
        let mut config = Config::new();
        config.auth = Some(auth);
        let insider = Client::connect(server.id(), config).await.unwrap();
        insider.bind("x", "1").await.unwrap();
        assert_eq!(server.names().len(), 1);
    });
}

#[test]
fn our_client_with_our_server() {
    let rt = rt();
    let server = rt.block_on(Server::start(Config::listening())).unwrap();
    rt.block_on(async {
        let a = Client::connect(server.id(), Config::new()).await.unwrap();
        a.bind("one", "45001").await.unwrap();
        a.bind("two", "45002 example.org").await.unwrap();
        assert_eq!(a.resolve("one").await.unwrap().to_string(), "45001");
        assert_eq!(
            a.resolve("two").await.unwrap().to_string(),
            "45002 example.org"
        );
        // Glob characters in a name are taken literally by resolve.
        a.bind("a*", "45003").await.unwrap();
        assert_eq!(a.resolve("a*").await.unwrap().to_string(), "45003");
        a.bind("notid", "hello").await.unwrap();
        assert!(matches!(
            a.resolve("notid").await,
            Err(tclcomm::names::ResolveError::NotAnId { .. })
        ));
        // lookup: ids stay ids, names are resolved.
        let sid = server.id();
        assert_eq!(
            tclcomm::names::lookup("4500", &sid, Config::new())
                .await
                .unwrap()
                .to_string(),
            "4500"
        );
        assert_eq!(
            tclcomm::names::lookup("one", &sid, Config::new())
                .await
                .unwrap()
                .to_string(),
            "45001"
        );
        assert!(
            tclcomm::names::lookup("host:", &sid, Config::new())
                .await
                .is_err()
        );

        // A watch stopped by dropping it is forgotten by the server.
        let w = a.watch("*").await.unwrap();
        changed_until("the search to start", &server, |s| s.searches().len() == 1).await;
        drop(w);
        changed_until("the search to stop", &server, |s| s.searches().is_empty()).await;

        // Dropping the last handle of a client releases its names.
        drop(a);
    });
    wait_until(&rt, "the names to go", &server, |server| {
        server.names().is_empty()
    });
}
