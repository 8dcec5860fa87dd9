//! Mutual authentication (`auth1`) between engines, in memory: with and
//! without the secret, a wrong secret, a replayed handshake, peers that do
//! not authenticate (tcllib's bytes) where it is optional and required.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use tclcomm_wire::auth::{AuthConfig, Secret};
use tclcomm_wire::engine::{
    AUTH_REQUIRED_MESSAGE, Action, ConnId, Engine, EngineConfig, Loss, Refusal, RequestKind,
};
use tclcomm_wire::{Code, Id, Message, Outcome};

fn config(port: u16, secret: Option<&str>, required: bool, seed: u8) -> EngineConfig {
    EngineConfig {
        auth: secret.map(|s| AuthConfig {
            secret: Secret::new(s.as_bytes().to_vec()),
            required,
        }),
        rng_seed: Some([seed; 32]),
        ..EngineConfig::new(Id::port(port))
    }
}

/// A client and a server engine, wired: `pump` carries bytes both ways
/// until nothing moves, answering every request with its script.
struct Pair {
    client: Engine,
    server: Engine,
    c: ConnId,
    s: ConnId,
    /// Everything each side did, in order.
    client_log: Vec<Action>,
    server_log: Vec<Action>,
    /// Bytes the client wrote, in order (for replay).
    client_bytes: Vec<u8>,
}

impl Pair {
    fn new(client: EngineConfig, server: EngineConfig) -> Pair {
        let mut client = Engine::new(client);
        let mut server = Engine::new(server);
        let c = client.outgoing(Id::port(45001));
        let s = server.accepted("127.0.0.1", 50000, "127.0.0.1", Instant::now());
        Pair {
            client,
            server,
            c,
            s,
            client_log: Vec::new(),
            server_log: Vec::new(),
            client_bytes: Vec::new(),
        }
    }

    fn pump(&mut self) {
        for _ in 0..20 {
            let mut moved = false;
            while let Some(a) = self.client.poll_action() {
                if let Action::Write { bytes, .. } = &a {
                    self.client_bytes.extend_from_slice(bytes);
                    self.server.received(self.s, bytes);
                    moved = true;
                }
                self.client_log.push(a);
            }
            let mut requests = Vec::new();
            while let Some(a) = self.server.poll_action() {
                match &a {
                    Action::Write { bytes, .. } => {
                        self.client.received(self.c, bytes);
                        moved = true;
                    }
                    Action::Evaluate(r) => requests.push(r.clone()),
                    _ => {}
                }
                self.server_log.push(a);
            }
            for r in requests {
                let outcome = Outcome::ok(r.script.concat());
                self.server.respond(r.conn, r.kind, &r.serial, &outcome);
                moved = true;
            }
            if !moved {
                return;
            }
        }
        panic!("the engines never settled");
    }

    fn answers(&self) -> Vec<Outcome> {
        self.client_log
            .iter()
            .filter_map(|a| match a {
                Action::Complete { outcome, .. } => Some(outcome.clone()),
                _ => None,
            })
            .collect()
    }

    fn client_loss(&self) -> Option<Loss> {
        self.client_log.iter().find_map(|a| match a {
            Action::Lost { loss, .. } => Some(loss.clone()),
            _ => None,
        })
    }

    fn server_refusal(&self) -> Option<Refusal> {
        self.server_log.iter().find_map(|a| match a {
            Action::Refused { reason, .. } => Some(reason.clone()),
            _ => None,
        })
    }
}

#[test]
fn both_sides_with_the_secret_authenticate_and_talk() {
    let mut p = Pair::new(
        config(45002, Some("s3cret"), true, 1),
        config(45001, Some("s3cret"), true, 2),
    );
    // Sent at once: held until the server has proven the secret.
    p.client
        .send(&Id::port(45001), RequestKind::Send, vec!["hello".into()])
        .unwrap();
    p.pump();
    assert_eq!(p.answers(), vec![Outcome::ok("hello")]);
    assert!(
        p.server_log
            .iter()
            .any(|a| matches!(a, Action::Established { id, .. } if *id == Id::port(45002)))
    );
    // No secret on the wire: the bytes hold nonces and proofs only.
    let wire = String::from_utf8_lossy(&p.client_bytes);
    assert!(wire.starts_with("{auth1 3 2} 45002\n"), "{wire}");
    assert!(!wire.contains("s3cret"));
}

#[test]
fn a_wrong_secret_is_refused_on_both_sides() {
    let mut p = Pair::new(
        config(45002, Some("guess"), false, 1),
        config(45001, Some("s3cret"), false, 2),
    );
    p.client
        .send(&Id::port(45001), RequestKind::Send, vec!["hello".into()])
        .unwrap();
    p.pump();
    assert!(p.answers().is_empty());
    assert_eq!(
        p.server_refusal(),
        Some(Refusal::Auth("wrong secret".into()))
    );
    assert_eq!(
        p.client_loss(),
        Some(Loss::Auth("refused by the peer: wrong secret".into()))
    );
    // Nothing was evaluated.
    assert!(
        !p.server_log
            .iter()
            .any(|a| matches!(a, Action::Evaluate(_)))
    );
}

#[test]
fn a_replayed_handshake_does_not_authenticate() {
    let mut p = Pair::new(
        config(45002, Some("s3cret"), true, 1),
        config(45001, Some("s3cret"), true, 2),
    );
    p.client
        .send(&Id::port(45001), RequestKind::Send, vec!["set a 1".into()])
        .unwrap();
    p.pump();
    assert_eq!(p.answers().len(), 1);
    // An eavesdropper replays every byte the client sent, to the same
    // server: the new challenge has a new nonce, so the old proof fails.
    let recorded = p.client_bytes.clone();
    let replay = p
        .server
        .accepted("127.0.0.1", 50001, "127.0.0.1", Instant::now());
    p.server.received(replay, &recorded);
    let out: Vec<Action> = std::iter::from_fn(|| p.server.poll_action()).collect();
    assert!(!out.iter().any(|a| matches!(a, Action::Evaluate(_))));
    assert!(out.iter().any(|a| matches!(a,
        Action::Refused { conn, reason: Refusal::Auth(_) } if *conn == replay)));
}

#[test]
fn optional_authentication_lets_plain_peers_in() {
    // A tcllib client (no auth1 in its offer) to a server with a secret
    // that is not required: plain comm, as today.
    let mut server = Engine::new(config(45001, Some("s3cret"), false, 2));
    let s = server.accepted("127.0.0.1", 50000, "127.0.0.1", Instant::now());
    server.received(s, b"{3 2} 1234\n{send 1 {{set a 1}}}\n");
    let out: Vec<Action> = std::iter::from_fn(|| server.poll_action()).collect();
    assert_eq!(
        out.first(),
        Some(&Action::Write {
            conn: s,
            bytes: b"{vers 3}\r\n".to_vec()
        })
    );
    assert!(out.iter().any(|a| matches!(a, Action::Evaluate(_))));

    // Our client with a secret, optional, to a server without one (as
    // tcllib answers): it goes on unauthenticated.
    let mut p = Pair::new(
        config(45002, Some("s3cret"), false, 1),
        config(45001, None, false, 2),
    );
    p.client
        .send(&Id::port(45001), RequestKind::Send, vec!["hi".into()])
        .unwrap();
    p.pump();
    assert_eq!(p.answers(), vec![Outcome::ok("hi")]);
}

#[test]
fn required_authentication_refuses_plain_peers_with_a_reason() {
    // tcllib's bytes to a server that requires authentication: its request
    // is answered with an error that says why, then the connection closes.
    let mut server = Engine::new(config(45001, Some("s3cret"), true, 2));
    let s = server.accepted("127.0.0.1", 50000, "127.0.0.1", Instant::now());
    server.received(s, b"{3 2} 1234\n{send 7 {{exec rm -rf /}}}\n");
    let out: Vec<Action> = std::iter::from_fn(|| server.poll_action()).collect();
    assert!(!out.iter().any(|a| matches!(a, Action::Evaluate(_))));
    let reply = out
        .iter()
        .find_map(|a| match a {
            Action::Write { bytes, .. } => Some(String::from_utf8(bytes.clone()).unwrap()),
            _ => None,
        })
        .unwrap();
    let word = reply.trim_end();
    match Message::decode(&word[1..word.len() - 1]).unwrap() {
        Message::Reply { serial, outcome } => {
            assert_eq!(serial.0, "7");
            assert_eq!(outcome.code, Code::Error);
            assert_eq!(outcome.result, AUTH_REQUIRED_MESSAGE);
        }
        other => panic!("{other:?}"),
    }
    // It stays (tcllib drops an answer read together with EOF) until the
    // handshake deadline, and every request gets the same answer.
    assert!(!out.contains(&Action::Close { conn: s }));
    server.received(s, b"{send 8 {{set a 1}}}\n");
    let again: Vec<Action> = std::iter::from_fn(|| server.poll_action()).collect();
    assert!(matches!(&again[..], [Action::Write { .. }]));
    server.handle_timeout(Instant::now() + std::time::Duration::from_secs(31));
    let out: Vec<Action> = std::iter::from_fn(|| server.poll_action()).collect();
    assert_eq!(
        out,
        vec![
            Action::Close { conn: s },
            Action::Refused {
                conn: s,
                reason: Refusal::AuthRequired
            }
        ]
    );

    // Our client that requires it, to a peer that does not authenticate:
    // its calls fail with the reason.
    let mut p = Pair::new(
        config(45002, Some("s3cret"), true, 1),
        config(45001, None, false, 2),
    );
    p.client
        .send(&Id::port(45001), RequestKind::Send, vec!["hi".into()])
        .unwrap();
    p.pump();
    assert!(p.answers().is_empty());
    assert!(matches!(p.client_loss(), Some(Loss::Auth(r)) if r.contains("does not authenticate")));
    // The request never went out.
    assert!(!String::from_utf8_lossy(&p.client_bytes).contains("send"));
}

#[test]
fn a_silent_challenge_times_out_like_a_silent_handshake() {
    let t0 = Instant::now();
    let mut server = Engine::new(config(45001, Some("s3cret"), true, 2));
    let s = server.accepted("127.0.0.1", 50000, "127.0.0.1", t0);
    server.received(s, b"{auth1 3 2} 1234\n");
    while server.poll_action().is_some() {}
    assert!(server.is_handshaking(s));
    server.handle_timeout(t0 + std::time::Duration::from_secs(31));
    let out: Vec<Action> = std::iter::from_fn(|| server.poll_action()).collect();
    assert!(out.contains(&Action::Close { conn: s }));
}
