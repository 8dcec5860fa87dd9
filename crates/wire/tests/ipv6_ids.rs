//! The id an accepting engine gives an IPv6 peer: tcllib's rule (the
//! offered id as is when the peer's address equals the local address of the
//! accepted socket, else the list `{id addr}`), with addresses as Tcl
//! writes them (`::1`). The list's elements read back as port and host.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tclcomm_wire::Id;
use tclcomm_wire::engine::{Action, Engine, EngineConfig};

fn established(addr: &str, local: &str) -> Id {
    let mut s = Engine::new(EngineConfig::new(Id::port(45001)));
    let conn = s.accepted(addr, 50000, local, std::time::Instant::now());
    s.received(conn, b"{3 2} 45002\n");
    std::iter::from_fn(|| s.poll_action())
        .find_map(|a| match a {
            Action::Established { id, .. } => Some(id),
            _ => None,
        })
        .expect("established")
}

#[test]
fn ipv6_peer_ids_follow_tcllibs_rule() {
    assert_eq!(established("::1", "::1"), Id::port(45002));
    let id = established("fe80::2", "::1");
    assert_eq!(id.as_str(), "45002 fe80::2");
    assert_eq!(id.port_number(), Some(45002));
    assert_eq!(id.host(), "fe80::2");
    // The id a person would write for it reads back the same.
    assert_eq!(Id::parse("[fe80::2]:45002").unwrap(), id);
    assert_eq!(Id::parse("45002 fe80::2").unwrap(), id);
}
