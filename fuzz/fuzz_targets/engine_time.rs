//! The channel engine driven by time as well as bytes: arbitrary reads on
//! connections that come and go, time steps, outbound reports and limit
//! changes, with authentication (auth1) configured. Whatever the order, the engine never panics, its counts stay
//! consistent (every connection closed once, what it holds within the
//! budget), and once time passes every handshake deadline nothing is left
//! in its handshake.

#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use tclcomm_wire::auth::{AuthConfig, Secret};
use tclcomm_wire::engine::{Action, ConnId, Engine, EngineConfig, RequestKind};
use tclcomm_wire::{Id, Outcome};

const MAX: usize = 4096;
const BUDGET: usize = 3 * MAX;

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let mut now = t0;
    let mut config = EngineConfig::new(Id::port(45001));
    config.max_message = MAX;
    config.max_handshake_line = 256;
    config.max_connections = 4;
    config.max_outbound = 512;
    config.max_buffered = BUDGET;
    config.max_nesting = 8;
    config.handshake_timeout = Duration::from_millis(100);
    // Authentication in play: offers, challenges and proofs are bytes too.
    config.auth = Some(AuthConfig {
        secret: Secret::new(b"fuzz".to_vec()),
        required: data.first().is_some_and(|b| b & 1 == 1),
    });
    config.rng_seed = Some([7; 32]);
    let mut e = Engine::new(config.clone());
    let mut open: Vec<ConnId> = Vec::new();
    let mut k = 0;
    while k < data.len() {
        let op = data[k];
        k += 1;
        let len = usize::from(op >> 3) + 1;
        let piece = &data[k..(k + len).min(data.len())];
        match op & 7 {
            0 => open.push(e.accepted("127.0.0.1", 50000, "127.0.0.1", now)),
            1 => {
                let id = Id::port(45002 + u16::from(op >> 6));
                open.push(e.outgoing(id.clone()));
                let _ = e.send(&id, RequestKind::Send, vec!["x".into()]);
                let _ = e.send(&id, RequestKind::Command, vec!["y".into()]);
            }
            2 | 3 => {
                if let Some(&conn) = open.get(usize::from(op >> 4) % open.len().max(1)) {
                    e.received(conn, piece);
                }
                k += piece.len();
            }
            4 => {
                now += Duration::from_millis(u64::from(op >> 3) * 7);
                e.handle_timeout(now);
            }
            5 => {
                if let Some(&conn) = open.first() {
                    e.outbound(conn, usize::from(op) * 8);
                }
            }
            6 => {
                if let Some(&conn) = open.get(usize::from(op >> 4) % open.len().max(1)) {
                    e.closed(conn);
                }
            }
            _ => {
                config.max_connections = usize::from(op >> 5) + 1;
                if let Some(a) = &mut config.auth {
                    a.required = op & 16 != 0;
                }
                e.set_limits(&config);
            }
        }
        drain(&mut e, &mut open);
        assert!(e.held() <= BUDGET, "held {} past the budget", e.held());
        if let Some(at) = e.poll_timeout() {
            assert!(at <= now + config.handshake_timeout);
        }
    }
    // Past every deadline, nothing is left in its handshake.
    now += Duration::from_secs(1);
    e.handle_timeout(now);
    drain(&mut e, &mut open);
    assert!(e.poll_timeout().is_none());
    assert!(open.iter().all(|c| !e.is_handshaking(*c)));
    e.abort();
    drain(&mut e, &mut open);
    assert!(e.conns().is_empty());
    assert!(open.is_empty());
    assert_eq!(e.pending_calls(), 0);
    assert_eq!(e.held(), 0);
});

/// Carries out the actions: every request is answered; a closed
/// connection must be one that is open, and is closed once.
fn drain(e: &mut Engine, open: &mut Vec<ConnId>) {
    let mut requests = Vec::new();
    while let Some(a) = e.poll_action() {
        match a {
            Action::Evaluate(r) => requests.push(r),
            Action::Close { conn } => {
                let at = open.iter().position(|c| *c == conn);
                let at = at.expect("a connection closed twice or never opened");
                open.swap_remove(at);
            }
            _ => {}
        }
    }
    for r in requests {
        let outcome = Outcome::ok(r.script.concat());
        e.respond(r.conn, r.kind, &r.serial, &outcome);
    }
    while let Some(a) = e.poll_action() {
        if let Action::Close { conn } = a
            && let Some(at) = open.iter().position(|c| *c == conn)
        {
            open.swap_remove(at);
        }
    }
}
