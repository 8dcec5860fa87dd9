//! Arbitrary bytes, in arbitrary reads, from a peer that connected to us
//! and from a peer we connected to: the channel engine (handshake, framer,
//! message decoding, dispatch, answers) never panics, keeps its buffers
//! within bounds, and a connection that misbehaves ends closed.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tclcomm_wire::engine::{Action, Engine, EngineConfig, RequestKind};
use tclcomm_wire::{Id, Outcome};

const MAX: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&split, bytes)) = data.split_first() else { return };
    let chunk = usize::from(split % 64) + 1;
    let mut config = EngineConfig::new(Id::port(45001));
    config.max_message = MAX;
    config.max_handshake_line = 256;
    let mut e = Engine::new(config);
    let incoming = e.accepted("127.0.0.1", 50000, "127.0.0.2", std::time::Instant::now());
    let outgoing = e.outgoing(Id::port(45002));
    // Calls waiting on the outgoing connection, for replies to complete.
    for _ in 0..3 {
        let _ = e.send(&Id::port(45002), RequestKind::Send, vec!["x".into()]);
        let _ = e.send(&Id::port(45002), RequestKind::Command, vec!["y".into()]);
    }
    for piece in bytes.chunks(chunk) {
        for conn in [incoming, outgoing] {
            e.received(conn, piece);
            assert!(e.buffered(conn) <= MAX + chunk + 256);
        }
        drain(&mut e);
    }
    e.closed(incoming);
    e.closed(outgoing);
    drain(&mut e);
    assert!(e.conns().is_empty());
    assert_eq!(e.pending_calls(), 0);
});

/// Carries out the actions: every request is answered, which exercises the
/// encoder with whatever serials and scripts the input held.
fn drain(e: &mut Engine) {
    let mut requests = Vec::new();
    while let Some(a) = e.poll_action() {
        if let Action::Evaluate(r) = a {
            requests.push(r);
        }
    }
    for r in requests {
        let outcome = Outcome::ok(r.script.concat());
        e.respond(r.conn, r.kind, &r.serial, &outcome);
    }
    while e.poll_action().is_some() {}
}
