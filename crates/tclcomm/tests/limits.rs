//! The engine's limits as the Rust runtime carries them out, with raw TCP
//! peers: the connection cap (idle connections give way, a flood does not
//! lock clients out), the receive budget of all connections together, and
//! the nesting limit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use tclcomm::blocking::Channel;
use tclcomm::{Config, Dispatcher, Error, Limits};
use tclcomm_wire::engine::{NESTING_ERRORCODE, NESTING_MESSAGE};

fn server(limits: Limits) -> Channel {
    let d = Dispatcher::new();
    d.register("echo", |_c, a| Ok(a.concat()));
    Channel::new(Config::listening().limits(limits).evaluator(d)).unwrap()
}

/// A raw peer that completed its handshake (it read the `vers` answer).
fn idle_peer(port: u16) -> BufReader<TcpStream> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"{3 2} 0\n").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "{vers 3}\r\n");
    r
}

/// Whether the server closed the connection (bounded: 10 s).
fn closed_by_server(r: &mut BufReader<TcpStream>) -> bool {
    let mut buf = Vec::new();
    match r.read_to_end(&mut buf) {
        Ok(_) => true,
        Err(e) => e.kind() == ErrorKind::ConnectionReset,
    }
}

#[test]
fn at_the_cap_idle_connections_give_way_to_a_client() {
    let server = server(Limits {
        max_connections: 4,
        ..Limits::default()
    });
    let port = server.as_async().port();
    let mut idle: Vec<_> = (0..4).map(|_| idle_peer(port)).collect();
    // The cap is full of idle connections; a client is still served.
    let client = Channel::new(Config::new()).unwrap();
    assert_eq!(
        client.send(server.self_id(), "echo served").unwrap(),
        "served"
    );
    // The oldest idle connection made room.
    assert!(closed_by_server(&mut idle[0]));
    // A flood of idle connections after it does not push the client out.
    for _ in 0..12 {
        idle.push(idle_peer(port));
        assert_eq!(
            client.send(server.self_id(), "echo still").unwrap(),
            "still"
        );
    }
}

#[test]
fn the_receive_budget_refuses_many_big_messages_at_once() {
    let server = server(Limits {
        max_buffered: 1 << 20,
        ..Limits::default()
    });
    let port = server.as_async().port();
    let part = format!("{{send 1 {{{{echo {}", "z".repeat(700 * 1024));
    let mut peers = [idle_peer(port), idle_peer(port)];
    for p in &mut peers {
        p.get_mut().write_all(part.as_bytes()).unwrap();
    }
    // Whichever part the server took in second passes the budget: that
    // connection is closed (bounded wait for the EOF on either).
    let gone = (0..200)
        .find_map(|_| {
            peers.iter_mut().position(|p| {
                p.get_mut()
                    .set_read_timeout(Some(Duration::from_millis(25)))
                    .unwrap();
                let mut b = [0u8; 1];
                matches!(p.get_mut().read(&mut b), Ok(0))
                    || matches!(p.get_mut().read(&mut b), Err(e) if e.kind() == ErrorKind::ConnectionReset)
            })
        })
        .expect("neither big message was refused: both were absorbed");
    // The other finishes its message and is answered.
    let other = &mut peers[1 - gone];
    other
        .get_mut()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    other.get_mut().write_all(b"}}}\n").unwrap();
    let mut line = String::new();
    other.read_line(&mut line).unwrap();
    assert!(
        line.starts_with("{reply 1 {return -code 0 zzz"),
        "{}",
        &line[..40.min(line.len())]
    );
}

#[test]
fn deep_nesting_gets_tcls_error_and_the_server_lives() {
    let server = server(Limits::default());
    let client = Channel::new(Config::new()).unwrap();
    let deep = format!("{}echo x{}", "[".repeat(30_000), "]".repeat(30_000));
    match client.send(server.self_id(), deep.as_str()) {
        Err(Error::Remote(r)) => {
            assert_eq!(r.message, NESTING_MESSAGE);
            assert_eq!(r.errorcode, NESTING_ERRORCODE);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        client.send(server.self_id(), "echo alive").unwrap(),
        "alive"
    );
}
