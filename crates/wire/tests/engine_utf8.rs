//! The engine on bytes that are not UTF-8: the message is evaluated with
//! the text Tcl 8.6 would have decoded, and the connection stays open.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tclcomm_wire::engine::{Action, Engine, EngineConfig};
use tclcomm_wire::{Id, Serial};

fn drain(e: &mut Engine) -> Vec<Action> {
    std::iter::from_fn(|| e.poll_action()).collect()
}

fn scripts(actions: &[Action]) -> Vec<(Serial, Vec<String>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Evaluate(r) => Some((r.serial.clone(), r.script.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn invalid_utf8_is_evaluated_as_tcl_decodes_it_and_the_connection_stays() {
    let mut s = Engine::new(EngineConfig::new(Id::port(45001)));
    let conn = s.accepted("127.0.0.1", 50000, "127.0.0.1", std::time::Instant::now());
    s.received(conn, b"{3 2} 45002\n");
    drain(&mut s);
    // Latin-1 bytes, a truncated sequence, an overlong NUL, a CESU-8 pair,
    // split in the middle of the pair.
    s.received(
        conn,
        b"{send 1 {{set a caf\xe9-\xe2\x82-\xc0\x80-\xed\xa0\xbd\xed",
    );
    s.received(conn, b"\xb8\x80}}}\n");
    let out = drain(&mut s);
    assert!(
        !out.iter().any(|a| matches!(a, Action::Close { .. })),
        "{out:?}"
    );
    assert_eq!(
        scripts(&out),
        vec![(
            Serial::from(1),
            vec!["set a caf\u{e9}-\u{e2}\u{82}-\0-\u{1f600}".to_owned()]
        )]
    );
    // The next message on the same connection works.
    s.received(conn, b"{send 2 {{set b 2}}}\n");
    let out = drain(&mut s);
    assert_eq!(
        scripts(&out),
        vec![(Serial::from(2), vec!["set b 2".to_owned()])]
    );
    assert!(s.is_open(conn));
}
