//! The engine's time and limits, stepped in simulated time: handshake
//! deadlines, the connection cap and who gives way, the outbound budget, the
//! receive budget, the nesting limit, and the order of events on loss.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use tclcomm_wire::answer::{self, CallbackArgs, Failure};
use tclcomm_wire::engine::{
    Action, CallKind, ConnId, Engine, EngineConfig, FailedCall, Loss, NESTING_ERRORCODE,
    NESTING_MESSAGE, REASON_ABORT, REASON_LOST, REASON_SHUTDOWN, Refusal, RequestKind,
    nesting_exceeds,
};
use tclcomm_wire::{Code, Id, Message, Outcome};

fn drain(e: &mut Engine) -> Vec<Action> {
    std::iter::from_fn(|| e.poll_action()).collect()
}

fn closed(actions: &[Action]) -> Vec<ConnId> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Close { conn } => Some(*conn),
            _ => None,
        })
        .collect()
}

fn refusals(actions: &[Action]) -> Vec<(ConnId, Refusal)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Refused { conn, reason } => Some((*conn, reason.clone())),
            _ => None,
        })
        .collect()
}

fn losses(actions: &[Action]) -> Vec<(ConnId, Loss)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Lost { conn, loss, .. } => Some((*conn, loss.clone())),
            _ => None,
        })
        .collect()
}

fn config() -> EngineConfig {
    EngineConfig::new(Id::port(45001))
}

/// An accepted connection that completed its handshake.
fn established(e: &mut Engine, port: u16, now: Instant) -> ConnId {
    let c = e.accepted("127.0.0.1", port, "127.0.0.1", now);
    e.received(c, format!("{{3 2}} {port}\n").as_bytes());
    c
}

#[test]
fn handshake_deadline_closes_only_silent_connections() {
    let t0 = Instant::now();
    let mut e = Engine::new(EngineConfig {
        handshake_timeout: Duration::from_secs(5),
        ..config()
    });
    assert_eq!(e.poll_timeout(), None);
    let slow = e.accepted("127.0.0.1", 1, "127.0.0.1", t0);
    let half = e.accepted("127.0.0.1", 2, "127.0.0.1", t0 + Duration::from_secs(1));
    let good = e.accepted("127.0.0.1", 3, "127.0.0.1", t0 + Duration::from_secs(2));
    e.received(half, b"{3 2} 10");
    e.received(good, b"{3 2} 1003\n");
    drain(&mut e);
    assert_eq!(e.poll_timeout(), Some(t0 + Duration::from_secs(5)));

    // Just before the first deadline nothing happens.
    e.handle_timeout(t0 + Duration::from_millis(4999));
    assert!(drain(&mut e).is_empty());
    e.handle_timeout(t0 + Duration::from_secs(5));
    let out = drain(&mut e);
    assert_eq!(closed(&out), vec![slow]);
    assert_eq!(
        refusals(&out),
        vec![(slow, Refusal::TimedOut(Duration::from_secs(5)))]
    );
    assert!(!refusals(&out)[0].1.is_protocol());
    // The established connection has no deadline left: the half one is next.
    assert_eq!(e.poll_timeout(), Some(t0 + Duration::from_secs(6)));
    e.handle_timeout(t0 + Duration::from_secs(60));
    let out = drain(&mut e);
    assert_eq!(closed(&out), vec![half]);
    assert_eq!(e.poll_timeout(), None);
    assert!(e.is_open(good));
    assert_eq!(e.conns(), vec![good]);
}

#[test]
fn at_the_cap_idle_connections_give_way_first() {
    let t0 = Instant::now();
    let mut e = Engine::new(EngineConfig {
        max_connections: 3,
        ..config()
    });
    let busy = established(&mut e, 1, t0);
    e.received(busy, b"{send 1 {{set a 1}}}\n");
    let idle = established(&mut e, 2, t0);
    let handshaking = e.accepted("127.0.0.1", 3, "127.0.0.1", t0);
    drain(&mut e);

    // The oldest connection that made no request goes: the idle one, an
    // established connection, is lost (its id's users see why).
    let fourth = e.accepted("127.0.0.1", 4, "127.0.0.1", t0);
    let out = drain(&mut e);
    assert_eq!(closed(&out), vec![idle]);
    assert_eq!(losses(&out), vec![(idle, Loss::Evicted)]);
    // Then the one still in its handshake.
    let fifth = e.accepted("127.0.0.1", 5, "127.0.0.1", t0);
    let out = drain(&mut e);
    assert_eq!(refusals(&out), vec![(handshaking, Refusal::Evicted)]);
    // Then the fourth (never spoke), and the busy one never.
    e.received(fifth, b"{3 2} 5\n{async 1 {{set a 1}}}\n");
    drain(&mut e);
    let sixth = e.accepted("127.0.0.1", 6, "127.0.0.1", t0);
    assert_eq!(closed(&drain(&mut e)), vec![fourth]);
    e.received(sixth, b"{3 2} 6\n{send 1 {{set a 1}}}\n");
    drain(&mut e);
    // Everyone left has made a request: the newcomer is refused.
    let seventh = e.accepted("127.0.0.1", 7, "127.0.0.1", t0);
    let out = drain(&mut e);
    assert_eq!(closed(&out), vec![seventh]);
    assert_eq!(refusals(&out), vec![(seventh, Refusal::Full(3))]);
    assert_eq!(e.conns(), vec![busy, fifth, sixth]);
    // Outgoing connections are not counted.
    e.outgoing(Id::port(9));
    assert_eq!(e.conns().len(), 4);
    // A place frees up when a connection goes.
    e.closed(busy);
    drain(&mut e);
    let eighth = e.accepted("127.0.0.1", 8, "127.0.0.1", t0);
    assert!(closed(&drain(&mut e)).is_empty());
    assert!(e.is_open(eighth));
}

#[test]
fn a_flood_never_locks_out_a_client_that_speaks() {
    let t0 = Instant::now();
    let mut e = Engine::new(EngineConfig {
        max_connections: 50,
        ..config()
    });
    for port in 1..=50 {
        established(&mut e, port, t0);
    }
    drain(&mut e);
    // A client arrives during the flood and sends at once: it is served.
    let client = e.accepted("127.0.0.1", 1000, "127.0.0.1", t0);
    e.received(client, b"{3 2} 1000\n{send 1 {{set a 1}}}\n");
    let out = drain(&mut e);
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::Evaluate(r) if r.conn == client))
    );
    // The flood goes on; the client is never the one to go.
    for port in 2000..2500 {
        established(&mut e, port, t0);
        drain(&mut e);
        assert!(e.is_open(client));
    }
}

#[test]
fn a_peer_that_does_not_read_is_dropped_past_the_outbound_budget() {
    let t0 = Instant::now();
    let mut e = Engine::new(EngineConfig {
        max_outbound: 1000,
        ..config()
    });
    let c = established(&mut e, 1, t0);
    drain(&mut e);
    // The newest message always goes out whole, however big.
    e.received(c, b"{send 1 x}\n");
    let r = match drain(&mut e).pop() {
        Some(Action::Evaluate(r)) => r,
        other => panic!("{other:?}"),
    };
    let big = "y".repeat(5000);
    assert!(e.respond(r.conn, r.kind, &r.serial, &Outcome::ok(&big)));
    let len = match drain(&mut e).pop() {
        Some(Action::Write { bytes, .. }) => bytes.len(),
        other => panic!("{other:?}"),
    };
    assert!(e.outbound(c, len));
    assert!(e.outbound(c, len + 1000));
    assert!(!e.outbound(c, len + 1001));
    let out = drain(&mut e);
    assert_eq!(closed(&out), vec![c]);
    assert_eq!(
        losses(&out),
        vec![(
            c,
            Loss::Outbound {
                queued: 1001,
                max: 1000
            }
        )]
    );
    assert!(!e.outbound(c, 0));
}

#[test]
fn the_receive_budget_bounds_all_connections_together() {
    let t0 = Instant::now();
    let mut e = Engine::new(EngineConfig {
        max_buffered: 10_000,
        ..config()
    });
    let a = established(&mut e, 1, t0);
    let b = established(&mut e, 2, t0);
    drain(&mut e);
    let part = format!("{{send 1 {{{{set x {}", "z".repeat(6000));
    e.received(a, part.as_bytes());
    assert!(e.held() >= 6000);
    assert!(drain(&mut e).is_empty());
    // The second connection's bytes pass the budget: it goes, not the first.
    e.received(b, part.as_bytes());
    let out = drain(&mut e);
    assert_eq!(closed(&out), vec![b]);
    assert!(matches!(losses(&out)[..], [(conn, Loss::Budget { max: 10_000, .. })] if conn == b));
    assert!(e.held() < 10_000);
    // The first finishes its message and is served; what it held is freed.
    e.received(a, b"}}}\n");
    let out = drain(&mut e);
    assert!(out.iter().any(|x| matches!(x, Action::Evaluate(_))));
    assert_eq!(e.held(), 0);
    // Dropping a connection gives back what it held.
    e.received(a, part.as_bytes());
    assert!(e.held() > 0);
    e.closed(a);
    assert_eq!(e.held(), 0);
}

#[test]
fn deep_nesting_is_answered_with_tcls_error_and_not_evaluated() {
    let t0 = Instant::now();
    let mut e = Engine::new(config());
    let c = established(&mut e, 1, t0);
    drain(&mut e);
    let deep = format!("{}x{}", "[".repeat(30_000), "]".repeat(30_000));
    let msg = Message::Send {
        serial: 7.into(),
        script: vec![deep],
    };
    e.received(c, &msg.encode());
    let out = drain(&mut e);
    assert!(!out.iter().any(|a| matches!(a, Action::Evaluate(_))));
    let reply = out
        .iter()
        .find_map(|a| match a {
            Action::Write { bytes, .. } => Some(bytes.clone()),
            _ => None,
        })
        .unwrap();
    let reply = std::str::from_utf8(&reply).unwrap().trim_end();
    let reply = &reply[1..reply.len() - 1];
    match Message::decode(reply).unwrap() {
        Message::Reply { serial, outcome } => {
            assert_eq!(serial.0, "7");
            assert_eq!(outcome.code, Code::Error);
            assert_eq!(outcome.result, NESTING_MESSAGE);
            assert_eq!(outcome.errorcode, NESTING_ERRORCODE);
        }
        other => panic!("{other:?}"),
    }
    // The connection lives on.
    e.received(c, b"{send 8 {{set a 1}}}\n");
    assert!(
        drain(&mut e)
            .iter()
            .any(|a| matches!(a, Action::Evaluate(_)))
    );
}

#[test]
fn nesting_is_counted_across_fragments_and_past_backslashes() {
    assert!(!nesting_exceeds(&["[[[x]]]"], 3));
    assert!(nesting_exceeds(&["[[[[x]]]]"], 3));
    assert!(nesting_exceeds(&["[[", "[[x]]", "]]"], 3));
    assert!(!nesting_exceeds(&[r"\[\[\[\[x"], 3));
    assert!(!nesting_exceeds(&["[x] [y] [z] [w] [v]"], 1));
    // Closing brackets without openers do not go below zero.
    assert!(nesting_exceeds(&["]]]]][[[[x"], 3));
    let wide = "[a] ".repeat(10_000);
    assert!(!nesting_exceeds(&[wide.as_str()], 1000));
}

#[test]
fn loss_order_and_texts_are_tcllibs() {
    assert_eq!(Loss::Closed.to_string(), REASON_LOST);
    assert_eq!(Loss::Shutdown.to_string(), REASON_SHUTDOWN);
    assert_eq!(Loss::Abort.to_string(), REASON_ABORT);

    let mut c = Engine::new(EngineConfig::new(Id::port(45002)));
    let conn = c.outgoing(Id::port(1001));
    c.send(&Id::port(1001), RequestKind::Command, vec!["a".into()])
        .unwrap();
    c.send(&Id::port(1001), RequestKind::Send, vec!["b".into()])
        .unwrap();
    c.send(&Id::port(1001), RequestKind::Async, vec!["c".into()])
        .unwrap();
    drain(&mut c);
    c.closed(conn);
    let out = drain(&mut c);
    // Close first, then one Lost carrying the failed calls in serial order.
    assert_eq!(out.len(), 2);
    assert_eq!(out[0], Action::Close { conn });
    assert_eq!(
        out[1],
        Action::Lost {
            conn,
            id: Id::port(1001),
            loss: Loss::Closed,
            failed: vec![
                FailedCall {
                    serial: 1,
                    kind: CallKind::Callback
                },
                FailedCall {
                    serial: 2,
                    kind: CallKind::Sync
                },
            ],
        }
    );
    // What each caller gets.
    let f = Failure::from_loss(&Loss::Closed);
    assert_eq!((f.return_code, f.message.as_str()), (1, REASON_LOST));
    let args = CallbackArgs::from_loss(&Loss::Closed);
    assert_eq!(args.code, "-1");
    assert_eq!(args.errorcode, "NONE");
    assert_eq!(args.result, REASON_LOST);
}

#[test]
fn answers_map_to_what_tcllibs_caller_sees() {
    let ok = |code: Code| answer::sync_result(Outcome::with_code(code, "r"));
    assert_eq!(ok(Code::Ok), Ok("r".into()));
    assert_eq!(ok(Code::Return), Ok("r".into()));
    let e = answer::sync_result(Outcome::error("boom", "info", "A B")).unwrap_err();
    assert_eq!(
        (
            e.return_code,
            e.message.as_str(),
            e.errorinfo.as_deref(),
            e.errorcode.as_deref()
        ),
        (1, "boom", Some("info"), Some("A B"))
    );
    let e = ok(Code::Continue).unwrap_err();
    assert_eq!(e.message, "invoked \"continue\" outside of a loop");
    let e = ok(Code::Other(7)).unwrap_err();
    assert_eq!((e.return_code, e.message.as_str()), (7, "r"));
    let e = ok(Code::Invalid("x".into())).unwrap_err();
    assert_eq!(
        e.message,
        "bad completion code \"x\": must be ok, error, return, break, continue, or an integer"
    );
}

#[test]
fn loopback_only_refuses_other_addresses() {
    use tclcomm_wire::engine::is_loopback;
    for a in ["127.0.0.1", "127.3.4.5", "::1", "::ffff:127.0.0.1"] {
        assert!(is_loopback(a), "{a}");
    }
    for a in [
        "10.0.0.1",
        "192.168.1.2",
        "::ffff:10.0.0.1",
        "fe80::1",
        "localhost",
        "",
    ] {
        assert!(!is_loopback(a), "{a}");
    }
    let t0 = Instant::now();
    let mut e = Engine::new(EngineConfig {
        loopback_only: true,
        ..config()
    });
    let near = e.accepted("::1", 1, "::1", t0);
    let far = e.accepted("10.1.2.3", 2, "10.1.2.4", t0);
    let out = drain(&mut e);
    assert_eq!(closed(&out), vec![far]);
    assert_eq!(
        refusals(&out),
        vec![(far, Refusal::NotLocal("10.1.2.3".into()))]
    );
    assert!(e.is_open(near));
}

#[test]
fn big_messages_decode_as_small_ones_do() {
    use tclcomm_wire::engine::BIG_MESSAGE;
    let big = "y".repeat(BIG_MESSAGE);
    let words = [
        // One braced fragment: cut out in place.
        format!("send 5 {{{{set x {big}}}}}"),
        format!("async 6 {{{{puts {big}}}}}"),
        format!("command 7 {{{{set x {big}}}}}"),
        // Several fragments, a backslash, extra words: the general path.
        format!("send 8 {{set x {big}}}"),
        format!("send 9 {{{{set x \\n{big}}}}}"),
        format!("send 10 {{{{set x {big}}}}} extra"),
        // Shapes close to the usual one (`{{...}}`), which must not be
        // taken for it.
        format!("send 11 {{{{set x}} {{{big}}}}}"),
        format!("send 12 {{{{{{{big}}} x}}}}"),
        format!("send 13 {{{{set x \\}} {big}}}}} \t "),
        format!("send 14 {{{{set x {{{big}}}}}}}\n"),
        format!("{{send}} {{15}} {{{{set x {big}}}}}"),
        format!("send \\x31\\x36 {{{{set x {big}}}}}"),
    ];
    for word in words {
        let t0 = Instant::now();
        let mut e = Engine::new(config());
        let c = established(&mut e, 1, t0);
        drain(&mut e);
        e.received(c, format!("{{{word}}}\n").as_bytes());
        let got = drain(&mut e).into_iter().find_map(|a| match a {
            Action::Evaluate(r) => Some((r.kind, r.serial.0, r.script)),
            _ => None,
        });
        let want = match Message::decode(&word).unwrap() {
            Message::Send { serial, script } => Some((RequestKind::Send, serial.0, script)),
            Message::Async { serial, script } => Some((RequestKind::Async, serial.0, script)),
            Message::Command { serial, script } => Some((RequestKind::Command, serial.0, script)),
            other => panic!("{other:?}"),
        };
        assert_eq!(got, want, "{}", &word[..20]);
    }
}
