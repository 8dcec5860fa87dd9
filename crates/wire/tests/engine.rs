//! The channel state machine, driven in memory: events in, actions out.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tclcomm_wire::engine::{
    Action, CallKind, ConnId, Engine, EngineConfig, FailedCall, REASON_ABORT, REASON_LOST,
    REASON_SHUTDOWN, RequestKind,
};
use tclcomm_wire::engine::{Loss, Refusal};
use tclcomm_wire::{Code, HandshakeError, Id, Outcome};

/// The start of simulated time: every test steps from here.
fn t0() -> std::time::Instant {
    use std::sync::OnceLock;
    static T0: OnceLock<std::time::Instant> = OnceLock::new();
    *T0.get_or_init(std::time::Instant::now)
}

fn drain(e: &mut Engine) -> Vec<Action> {
    std::iter::from_fn(|| e.poll_action()).collect()
}

fn writes(actions: &[Action]) -> Vec<u8> {
    let mut out = Vec::new();
    for a in actions {
        if let Action::Write { bytes, .. } = a {
            out.extend_from_slice(bytes);
        }
    }
    out
}

fn requests(actions: &[Action]) -> Vec<tclcomm_wire::engine::Request> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Evaluate(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

fn completes(actions: &[Action]) -> Vec<(u64, CallKind, Outcome)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Complete {
                serial,
                kind,
                outcome,
                ..
            } => Some((*serial, *kind, outcome.clone())),
            _ => None,
        })
        .collect()
}

fn server() -> (Engine, ConnId) {
    let mut s = Engine::new(EngineConfig::new(Id::port(45001)));
    let c = s.accepted("127.0.0.1", 50000, "127.0.0.1", t0());
    (s, c)
}

#[test]
fn client_bytes_match_transcript_1() {
    let mut c = Engine::new(EngineConfig::new(Id::port(45002)));
    let conn = c.outgoing(Id::port(45000));
    let serial = c
        .send(&Id::port(45000), RequestKind::Send, vec!["set a 1".into()])
        .unwrap();
    assert_eq!(serial, 1);
    let out = drain(&mut c);
    assert_eq!(writes(&out), b"{3 2} 45002\n{send 1 {{set a 1}}}\n");
    c.received(conn, b"{vers 3}\r\n{reply 1 {return -code 0 1}}\n");
    let out = drain(&mut c);
    assert_eq!(completes(&out), vec![(1, CallKind::Sync, Outcome::ok("1"))]);
    assert_eq!(c.version(conn), Some(3));
}

#[test]
fn server_answers_like_transcript_1() {
    let (mut s, conn) = server();
    s.received(conn, b"{3 2} 45002\n{send 1 {{set a 1}}}\n");
    let out = drain(&mut s);
    assert_eq!(writes(&out), b"{vers 3}\r\n");
    assert!(out.contains(&Action::Established {
        conn,
        id: Id::port(45002),
        version: 3
    }));
    let r = requests(&out).pop().unwrap();
    assert_eq!(r.kind, RequestKind::Send);
    assert_eq!(r.serial.0, "1");
    assert_eq!(r.script, vec!["set a 1"]);
    assert!(s.respond(conn, r.kind, &r.serial, &Outcome::ok("1")));
    assert_eq!(writes(&drain(&mut s)), b"{reply 1 {return -code 0 1}}\n");
}

#[test]
fn handshake_split_everywhere() {
    let input: &[u8] = b"{3 2} 1242\r\n{send 1 {{set a 3}}}\n{async 2 x}\n";
    for split in 0..=input.len() {
        let (mut s, conn) = server();
        s.received(conn, &input[..split]);
        s.received(conn, &input[split..]);
        let out = drain(&mut s);
        let r = requests(&out);
        assert_eq!(r.len(), 2, "split at {split}");
        assert_eq!(r[0].id, Id::port(1242));
        assert_eq!(r[1].kind, RequestKind::Async);
    }
}

#[test]
fn version_two_gets_no_vers_line() {
    let (mut s, conn) = server();
    s.received(conn, b"{2} 1235\n{send 1 {{set a 2}}}\n");
    let out = drain(&mut s);
    assert_eq!(writes(&out), b"");
    assert_eq!(requests(&out).len(), 1);
}

#[test]
fn unknown_protocols_refused_with_tcllib_text() {
    let (mut s, conn) = server();
    s.received(conn, b"{5 4} 1238\n");
    let out = drain(&mut s);
    let refused = out.iter().find_map(|a| match a {
        Action::Refused { reason, .. } => Some(reason.to_string()),
        _ => None,
    });
    assert_eq!(
        refused.as_deref(),
        Some("Unknown offered protocols \"{5 4} 1238\" from 127.0.0.1/50000")
    );
    assert!(out.contains(&Action::Close { conn }));
    assert!(!s.is_open(conn));
}

#[test]
fn malformed_offer_closes_instead_of_leaking() {
    let (mut s, conn) = server();
    s.received(conn, b"{3 2 1240\n");
    let out = drain(&mut s);
    assert!(matches!(
        out[1],
        Action::Refused {
            reason: Refusal::Handshake(HandshakeError::List(_)),
            ..
        }
    ));
    assert!(out.contains(&Action::Close { conn }));
}

#[test]
fn endless_first_line_is_bounded() {
    let (mut s, conn) = server();
    let chunk = vec![b'x'; 1000];
    let mut closed = false;
    for _ in 0..100 {
        s.received(conn, &chunk);
        let out = drain(&mut s);
        if out.contains(&Action::Close { conn }) {
            closed = true;
            break;
        }
        assert!(s.buffered(conn) <= 4096);
    }
    assert!(closed);
}

#[test]
fn remote_id_gets_host_when_addresses_differ() {
    let mut s = Engine::new(EngineConfig::new(Id::port(45001)));
    let conn = s.accepted("127.0.0.1", 50000, "127.0.0.2", t0());
    s.received(conn, b"{3 2} 46587\n");
    let out = drain(&mut s);
    assert!(out.contains(&Action::Established {
        conn,
        id: Id::from_text("46587 127.0.0.1"),
        version: 3
    }));
    // Empty remote id is kept verbatim.
    let conn = s.accepted("127.0.0.1", 50001, "127.0.0.1", t0());
    s.received(conn, b"{3 2}\n");
    assert!(drain(&mut s).contains(&Action::Established {
        conn,
        id: Id::from_text(""),
        version: 3
    }));
}

#[test]
fn data_before_eof_is_processed_first() {
    let mut c = Engine::new(EngineConfig::new(Id::port(45002)));
    let conn = c.outgoing(Id::port(45000));
    c.send(&Id::port(45000), RequestKind::Send, vec!["a".into()])
        .unwrap();
    c.send(&Id::port(45000), RequestKind::Send, vec!["b".into()])
        .unwrap();
    drain(&mut c);
    c.received(conn, b"{vers 3}\r\n{reply 1 {return -code 0 one}}\n");
    c.closed(conn);
    let out = drain(&mut c);
    assert_eq!(
        completes(&out),
        vec![(1, CallKind::Sync, Outcome::ok("one"))]
    );
    let lost = out.iter().find_map(|a| match a {
        Action::Lost { loss, failed, .. } => Some((loss.to_string(), failed.clone())),
        _ => None,
    });
    assert_eq!(
        lost,
        Some((
            REASON_LOST.to_string(),
            vec![FailedCall {
                serial: 2,
                kind: CallKind::Sync
            }]
        ))
    );
}

#[test]
fn replies_only_complete_calls_of_their_connection() {
    let mut c = Engine::new(EngineConfig::new(Id::port(45002)));
    let a = c.outgoing(Id::port(1001));
    let b = c.outgoing(Id::port(1002));
    let s = c
        .send(&Id::port(1001), RequestKind::Send, vec!["x".into()])
        .unwrap();
    drain(&mut c);
    // Peer 1002 forges an answer to the call sent to 1001.
    c.received(
        b,
        format!("{{reply {s} {{return -code 0 forged}}}}\n").as_bytes(),
    );
    assert!(completes(&drain(&mut c)).is_empty());
    c.received(
        a,
        format!("{{reply {s} {{return -code 0 real}}}}\n").as_bytes(),
    );
    assert_eq!(
        completes(&drain(&mut c)),
        vec![(s, CallKind::Sync, Outcome::ok("real"))]
    );
    // A second answer for the same serial is ignored.
    c.received(
        a,
        format!("{{reply {s} {{return -code 0 again}}}}\n").as_bytes(),
    );
    assert!(completes(&drain(&mut c)).is_empty());
}

#[test]
fn callback_and_reply_do_not_cross() {
    let mut c = Engine::new(EngineConfig::new(Id::port(45002)));
    let a = c.outgoing(Id::port(1001));
    let s = c
        .send(&Id::port(1001), RequestKind::Command, vec!["x".into()])
        .unwrap();
    drain(&mut c);
    c.received(
        a,
        format!("{{reply {s} {{return -code 0 r}}}}\n").as_bytes(),
    );
    assert!(completes(&drain(&mut c)).is_empty());
    c.received(
        a,
        format!("{{callback {s} {{return -code 1 -errorinfo i -errorcode {{A B}} msg}}}}\n")
            .as_bytes(),
    );
    let got = completes(&drain(&mut c));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].2.code, Code::Error);
    assert_eq!(got[0].2.errorcode, "A B");
}

#[test]
fn serials_are_per_channel_and_async_is_not_tracked() {
    let mut c = Engine::new(EngineConfig::new(Id::port(45002)));
    c.outgoing(Id::port(1001));
    c.outgoing(Id::port(1002));
    assert_eq!(
        c.send(&Id::port(1001), RequestKind::Async, vec![]).unwrap(),
        1
    );
    assert_eq!(
        c.send(&Id::port(1002), RequestKind::Send, vec![]).unwrap(),
        2
    );
    assert_eq!(
        c.send(&Id::port(1001), RequestKind::Command, vec![])
            .unwrap(),
        3
    );
    assert_eq!(c.pending_calls(), 2);
    assert!(c.send(&Id::port(9), RequestKind::Send, vec![]).is_err());
    assert_eq!(c.serial(), 3);
}

#[test]
fn cancelled_call_ignores_late_reply() {
    let mut c = Engine::new(EngineConfig::new(Id::port(45002)));
    let a = c.outgoing(Id::port(1001));
    let s = c.send(&Id::port(1001), RequestKind::Send, vec![]).unwrap();
    drain(&mut c);
    assert!(c.cancel(s));
    c.received(
        a,
        format!("{{reply {s} {{return -code 0 late}}}}\n").as_bytes(),
    );
    assert!(completes(&drain(&mut c)).is_empty());
}

#[test]
fn framing_error_closes_only_that_connection() {
    let mut s = Engine::new(EngineConfig::new(Id::port(45001)));
    let good = s.accepted("127.0.0.1", 1, "127.0.0.1", t0());
    let bad = s.accepted("127.0.0.1", 2, "127.0.0.1", t0());
    s.received(good, b"{3 2} 1001\n");
    s.received(bad, b"{3 2} 1002\n{\"}\n{send 1 x}\n");
    let out = drain(&mut s);
    assert!(out.contains(&Action::Close { conn: bad }));
    assert!(requests(&out).is_empty());
    let lost = out
        .iter()
        .any(|a| matches!(a, Action::Lost { conn, loss: Loss::Protocol(_), .. } if *conn == bad));
    assert!(lost);
    s.received(good, b"{send 7 {{set x 1}}}\n");
    assert_eq!(requests(&drain(&mut s)).len(), 1);
    // The empty word does not wedge: it is an error for that connection.
    let third = s.accepted("127.0.0.1", 3, "127.0.0.1", t0());
    s.received(third, b"{3 2} 1003\n{}\n{send 1 {{set a 22}}}\n");
    let out = drain(&mut s);
    assert!(out.contains(&Action::Close { conn: third }));
}

#[test]
fn duplicate_ids_take_over_deterministically() {
    let mut s = Engine::new(EngineConfig::new(Id::port(45001)));
    let first = s.accepted("127.0.0.1", 1, "127.0.0.1", t0());
    let second = s.accepted("127.0.0.1", 2, "127.0.0.1", t0());
    s.received(first, b"{3 2} 0\n");
    s.received(second, b"{3 2} 0\n");
    drain(&mut s);
    assert_eq!(s.ids(), vec![Id::port(0), Id::port(0)]);
    assert_eq!(s.connection(&Id::port(0)), Some(first));
    s.closed(first);
    drain(&mut s);
    assert_eq!(s.connection(&Id::port(0)), Some(second));
    s.closed(second);
    drain(&mut s);
    assert_eq!(s.connection(&Id::port(0)), None);
    assert!(s.ids().is_empty());
}

#[test]
fn requests_and_calls_share_one_connection() {
    // A listen-off client (id 0) is called back over its own connection.
    let mut client = Engine::new(EngineConfig::new(Id::port(0)));
    let (mut srv, sc) = server();
    let cc = client.outgoing(Id::port(45001));
    client
        .send(&Id::port(45001), RequestKind::Send, vec!["askback".into()])
        .unwrap();
    srv.received(sc, &writes(&drain(&mut client)));
    let out = drain(&mut srv);
    let req = requests(&out).pop().unwrap();
    assert_eq!(req.id, Id::port(0));
    // While evaluating, the server sends to the client's id.
    let back = srv
        .send(&Id::port(0), RequestKind::Send, vec!["set ::cv".into()])
        .unwrap();
    assert_eq!(back, 1);
    client.received(cc, &writes(&out));
    client.received(cc, &writes(&drain(&mut srv)));
    let out = drain(&mut client);
    let inner = requests(&out).pop().unwrap();
    assert_eq!(inner.serial.0, "1");
    client.respond(cc, inner.kind, &inner.serial, &Outcome::ok("client-value"));
    srv.received(sc, &writes(&drain(&mut client)));
    assert_eq!(
        completes(&drain(&mut srv)),
        vec![(1, CallKind::Sync, Outcome::ok("client-value"))]
    );
    srv.respond(
        sc,
        req.kind,
        &req.serial,
        &Outcome::ok("client says client-value"),
    );
    client.received(cc, &writes(&drain(&mut srv)));
    assert_eq!(
        completes(&drain(&mut client)),
        vec![(1, CallKind::Sync, Outcome::ok("client says client-value"))]
    );
}

#[test]
fn shutdown_and_abort_reasons() {
    let mut c = Engine::new(EngineConfig::new(Id::port(45002)));
    c.outgoing(Id::port(1001));
    c.outgoing(Id::port(1002));
    c.send(&Id::port(1001), RequestKind::Command, vec![])
        .unwrap();
    drain(&mut c);
    assert_eq!(c.shutdown(&Id::port(1001)), Some(REASON_SHUTDOWN));
    assert_eq!(c.shutdown(&Id::port(1001)), None);
    let out = drain(&mut c);
    assert!(out.iter().any(|a| matches!(a, Action::Lost { loss, failed, .. }
        if loss.to_string() == REASON_SHUTDOWN && failed == &vec![FailedCall { serial: 1, kind: CallKind::Callback }])));
    let pending = c.accepted("127.0.0.1", 5, "127.0.0.1", t0());
    c.abort();
    let out = drain(&mut c);
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::Lost { loss, .. } if loss.to_string() == REASON_ABORT))
    );
    assert!(out.contains(&Action::Close { conn: pending }));
    assert!(c.conns().is_empty());
}

#[test]
fn answers_to_gone_connections_are_dropped() {
    let (mut s, conn) = server();
    s.received(conn, b"{3 2} 1\n{send 1 x}\n");
    let r = requests(&drain(&mut s)).pop().unwrap();
    s.closed(conn);
    drain(&mut s);
    assert!(!s.respond(conn, r.kind, &r.serial, &Outcome::ok("late")));
    assert!(drain(&mut s).is_empty());
}

#[test]
fn unknown_instructions_and_extra_words_are_ignored() {
    let (mut s, conn) = server();
    s.received(conn, b"{3 2} 1247\nfoo bar {send 3 {{set a 12}}}\n{bogus 1 x}\n{send 4 {{set a 1}} extra stuff}\n");
    let r = requests(&drain(&mut s));
    assert_eq!(
        r.iter().map(|r| r.serial.0.as_str()).collect::<Vec<_>>(),
        vec!["3", "4"]
    );
}

/// tcllib's `remoteid` names the sender of the latest message of any kind:
/// messages that produce no action (the `vers` answer, an unknown
/// instruction, an answer nobody waits for) are reported once by
/// `take_heard`; requests and awaited answers are not (their actions carry
/// the id).
#[test]
fn heard_reports_messages_without_actions() {
    let mut c = Engine::new(EngineConfig::new(Id::port(45002)));
    let conn = c.outgoing(Id::port(45000));
    drain(&mut c);
    assert_eq!(c.take_heard(), None);
    c.received(conn, b"{vers 3}\r\n");
    assert_eq!(c.take_heard(), Some(Id::port(45000)));
    assert_eq!(c.take_heard(), None);
    c.received(conn, b"{bogus 1 x}\n");
    assert_eq!(c.take_heard(), Some(Id::port(45000)));
    c.received(conn, b"{reply 99 {return -code 0 x}}\n");
    assert_eq!(c.take_heard(), Some(Id::port(45000)));
    let serial = c
        .send(&Id::port(45000), RequestKind::Send, vec!["set a 1".into()])
        .unwrap();
    drain(&mut c);
    c.received(
        conn,
        format!("{{reply {serial} {{return -code 0 1}}}}\n").as_bytes(),
    );
    assert_eq!(completes(&drain(&mut c)).len(), 1);
    assert_eq!(c.take_heard(), None);
}

/// A serial can be used up without sending (tcllib takes it before the
/// write that fails); the next send gets the one after.
#[test]
fn skip_serial_uses_one_up() {
    let mut c = Engine::new(EngineConfig::new(Id::port(45002)));
    c.outgoing(Id::port(45000));
    assert_eq!(c.skip_serial(), 1);
    let serial = c
        .send(&Id::port(45000), RequestKind::Async, vec!["x".into()])
        .unwrap();
    assert_eq!((serial, c.serial()), (2, 2));
}
