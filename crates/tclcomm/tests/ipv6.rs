//! IPv6 ids: the runtime connects to `PORT ::1` as to `PORT 127.0.0.1`, and
//! the id a server gives an incoming IPv6 peer follows tcllib's rule (the
//! offered id as is when the peer's address is the local address of the
//! accepted socket, else `{id addr}`), checked against tcllib comm in
//! tclsh. Needs ::1 on the loopback interface and tclsh with tcllib: the
//! tests fail without them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tclcomm::blocking::Channel;
use tclcomm::testing::TclPeer;
use tclcomm::{Config, Dispatcher, Id};

/// A listening Rust channel whose command `who` returns comm's `remoteid`.
fn rust_server(config: Config) -> Channel {
    let d = Dispatcher::new();
    d.register("who", |_c, _a| {
        Ok(tclcomm::remoteid()
            .map(|id| id.to_string())
            .unwrap_or_default())
    });
    Channel::new(config.evaluator(d)).unwrap()
}

fn port(ch: &Channel) -> u16 {
    ch.self_id().port_number().unwrap()
}

fn has_ipv6_loopback() -> bool {
    std::net::TcpListener::bind(("::1", 0)).is_ok()
}

#[test]
fn rust_reaches_rust_over_ipv6_and_ipv4() {
    assert!(
        has_ipv6_loopback(),
        "this test needs ::1 on the loopback interface"
    );
    for config in [Config::listening(), Config::listening().local(false)] {
        let server = rust_server(config);
        let p = port(&server);
        let client = Channel::new(Config::listening()).unwrap();
        let me = client.self_id().to_string();
        // Same address at both ends, over either family: the offered id as is
        // (a dual-stack listener sees IPv4 peers as IPv4, as Tcl does).
        for id in [
            Id::with_host(p.to_string(), "::1"),
            Id::with_host(p.to_string(), "127.0.0.1"),
            Id::parse(&format!("[::1]:{p}")).unwrap(),
            Id::port(p),
        ] {
            assert_eq!(client.send(id.clone(), "who").unwrap(), me, "{id}");
        }
        assert_eq!(
            client
                .send(Id::from_text(format!("{p} ::1")), "who")
                .unwrap(),
            me
        );
    }
}

#[test]
fn ipv6_peer_ids_match_tcllib() {
    assert!(
        has_ipv6_loopback(),
        "this test needs ::1 on the loopback interface"
    );
    // tcllib listening on all interfaces (IPv4 and IPv6), reached over ::1.
    let mut tcl =
        TclPeer::spawn("::comm::comm new ::S -listen 1 -local 0\nproc who {} { ::S remoteid }")
            .expect("tclsh with tcllib comm");
    let tcl_server: u16 = tcl.eval_ok("::S self").unwrap().parse().unwrap();
    let client = Channel::new(Config::listening()).unwrap();
    let me = client.self_id().to_string();
    let tcllib_says = client
        .send(Id::with_host(tcl_server.to_string(), "::1"), "who")
        .unwrap();
    assert_eq!(tcllib_says, me);

    // Our server, reached by tcllib over ::1, derives the same kind of id:
    // the tcllib client's port as is.
    let server = rust_server(Config::listening());
    let we_say = tcl
        .eval_ok(&format!("::comm::comm send {{{} ::1}} who", port(&server)))
        .unwrap();
    assert_eq!(we_say, tcl.id());
    // And tcllib's server says the same of that client over ::1.
    let tcllib_says = tcl
        .eval_ok(&format!("::comm::comm send {{{tcl_server} ::1}} who"))
        .unwrap();
    assert_eq!(tcllib_says, tcl.id());
}
