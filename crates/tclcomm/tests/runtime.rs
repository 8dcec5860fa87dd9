//! Rust↔Rust behaviour of the runtime: hooks and their refusals, limits,
//! configuration, and the faults of tcllib comm (spec §11) that ours must
//! not have — shown with raw TCP peers that misbehave on purpose.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tclcomm::blocking::Channel;
use tclcomm::{
    Code, Config, Dispatcher, Error, EvalDecision, HookKind, Id, Limits, Outcome, Port,
    RequestKind, Script,
};

fn echo_server() -> (Channel, Dispatcher) {
    let d = Dispatcher::new();
    d.register("echo", |_c, a| Ok(a.first().cloned().unwrap_or_default()));
    let ch = Channel::new(Config::listening().evaluator(tclcomm::Blocking(d.clone()))).unwrap();
    (ch, d)
}

/// Waits (bounded) until `f` holds.
fn eventually(what: &str, f: impl Fn() -> bool) {
    let end = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// What a blocking command waits at (10 s at most) until the test opens it.
#[derive(Clone, Default)]
struct Gate(
    Arc<(
        Mutex<bool>,
        std::sync::Condvar,
        std::sync::atomic::AtomicBool,
    )>,
);

impl Gate {
    /// A command that waits at the gate and answers `released` (or `timed
    /// out` when it never opened).
    fn command(
        &self,
    ) -> impl Fn(&mut tclcomm::dispatch::Call<'_>, &[String]) -> Result<String, tclcomm::TclError>
    + Send
    + Sync
    + 'static {
        let gate = self.clone();
        move |_c, _a| {
            let (open, cv, reached) = &*gate.0;
            let end = Instant::now() + Duration::from_secs(10);
            let mut is_open = open.lock().unwrap();
            // Under the lock, so that `wait_reached` cannot miss it.
            reached.store(true, Ordering::SeqCst);
            cv.notify_all();
            while !*is_open && Instant::now() < end {
                is_open = cv
                    .wait_timeout(is_open, Duration::from_millis(20))
                    .unwrap()
                    .0;
            }
            Ok(if *is_open { "released" } else { "timed out" }.into())
        }
    }

    /// Waits (10 s at most) until a command has reached the gate.
    fn wait_reached(&self) -> bool {
        let (open, cv, reached) = &*self.0;
        let end = Instant::now() + Duration::from_secs(10);
        let mut guard = open.lock().unwrap();
        while !reached.load(Ordering::SeqCst) {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            guard = cv.wait_timeout(guard, left).unwrap().0;
        }
        true
    }

    fn open(&self) {
        *self.0.0.lock().unwrap() = true;
        self.0.1.notify_all();
    }
}

#[test]
fn ten_megabytes_of_special_characters_round_trip() {
    let (server, _d) = echo_server();
    let client = Channel::new(Config::new()).unwrap();
    let payload = "{\"}[$;\\\n\t\0é😀 }\\".repeat(10 * 1024 * 1024 / 20);
    let got = client
        .send(
            server.self_id(),
            Script::command(["echo", payload.as_str()]),
        )
        .unwrap();
    assert!(got == payload);
}

#[test]
fn every_hook_fires_with_its_data() {
    let (server, _d) = echo_server();
    let client = Channel::new(Config::new()).unwrap();
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let l = log.clone();
    client.as_async().on_connecting(move |e| {
        l.lock()
            .unwrap()
            .push(format!("connecting {} {}", e.chan, e.id));
        Ok(())
    });
    let l = log.clone();
    client.as_async().on_connected(move |e| {
        l.lock()
            .unwrap()
            .push(format!("connected {} {} {}", e.id, e.host, e.port));
        Ok(())
    });
    let server_log = Arc::new(Mutex::new(Vec::<String>::new()));
    let l = server_log.clone();
    server.as_async().on_incoming(move |e| {
        l.lock().unwrap().push(format!("incoming {}", e.addr));
        Ok(())
    });
    let l = server_log.clone();
    server.as_async().on_eval(move |e| {
        l.lock().unwrap().push(format!(
            "eval {} {} {:?}",
            e.kind.name(),
            e.serial,
            e.script
        ));
        EvalDecision::Continue
    });
    let l = log.clone();
    client.as_async().on_reply(move |e| {
        l.lock()
            .unwrap()
            .push(format!("reply {} {}", e.serial, e.outcome.result))
    });
    let l = log.clone();
    client.as_async().on_callback(move |e| {
        l.lock()
            .unwrap()
            .push(format!("callback {} {}", e.serial, e.outcome.result))
    });
    let l = log.clone();
    client.as_async().on_lost(move |e| {
        l.lock()
            .unwrap()
            .push(format!("lost {} {}", e.id, e.reason))
    });

    let sid = server.self_id();
    assert_eq!(client.send(sid.clone(), "echo a").unwrap(), "a");
    let (tx, rx) = mpsc::channel();
    client
        .send_callback(sid.clone(), "echo b", move |i| tx.send(i.result).unwrap())
        .unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), "b");
    assert_eq!(
        client.shutdown(sid.clone()),
        Some("Connection shutdown by request")
    );
    let chan = client.as_async().name().to_string();
    let port = server.as_async().port();
    let got = log.lock().unwrap().clone();
    assert_eq!(
        got,
        vec![
            format!("connecting {chan} {sid}"),
            format!("connected {sid} 127.0.0.1 {port}"),
            "reply 1 a".to_string(),
            format!("connecting {chan} {sid}"),
            "callback 2 b".to_string(),
            format!("lost {sid} Connection shutdown by request"),
        ]
    );
    let got = server_log.lock().unwrap().clone();
    assert_eq!(
        got,
        vec![
            "incoming 127.0.0.1".to_string(),
            "eval send 1 [\"echo a\"]".to_string(),
            "eval command 2 [\"echo b\"]".to_string(),
        ]
    );
}

#[test]
fn refusals_of_connecting_connected_and_incoming() {
    let (server, _d) = echo_server();
    let sid = server.self_id();
    let client = Channel::new(Config::new()).unwrap();
    client.as_async().on_connecting(|_| Err("not now".into()));
    let e = client.send(sid.clone(), "echo a").unwrap_err();
    assert_eq!(e.to_string(), "Connect to remote failed: not now");
    client.as_async().clear_hook(HookKind::Connecting);
    client.as_async().on_connected(|_| Err("retval".into()));
    let e = client.send(sid.clone(), "echo a").unwrap_err();
    assert_eq!(e.to_string(), "Connect to remote failed: retval");
    client.as_async().clear_hook(HookKind::Connected);
    server
        .as_async()
        .on_incoming(|e| Err(format!("go away {}", e.addr)));
    let e = client.send(sid.clone(), "echo a").unwrap_err();
    assert_eq!(
        e,
        Error::Lost("target application died or connection lost".into())
    );
    server.as_async().clear_hook(HookKind::Incoming);
    assert_eq!(client.send(sid, "echo ok").unwrap(), "ok");
}

#[test]
fn eval_hook_rewrites_answers_and_fails() {
    let (server, _d) = echo_server();
    let sid = server.self_id();
    let client = Channel::new(Config::new()).unwrap();
    server.as_async().on_eval(|e| {
        match e.script.first().map(String::as_str) {
            Some("rewrite") => e.script = vec!["echo rewritten".into()],
            Some("answer") => return EvalDecision::Answer("answered".into()),
            Some("fail") => {
                return EvalDecision::Fail(Outcome::error("refused", "refused by hook", "HOOK NO"));
            }
            _ => {}
        }
        EvalDecision::Continue
    });
    assert_eq!(client.send(sid.clone(), "rewrite").unwrap(), "rewritten");
    assert_eq!(client.send(sid.clone(), "answer").unwrap(), "answered");
    let e = client.send(sid.clone(), "fail").unwrap_err();
    let r = e.remote().unwrap();
    assert_eq!(
        (
            r.message.as_str(),
            r.errorcode.as_str(),
            r.errorinfo.as_str()
        ),
        ("refused", "HOOK NO", "refused by hook")
    );
}

#[test]
fn reply_and_callback_hooks_change_what_the_caller_gets() {
    let (server, _d) = echo_server();
    let sid = server.self_id();
    let client = Channel::new(Config::new()).unwrap();
    client
        .as_async()
        .on_reply(|e| e.outcome.result = format!("<{}>", e.outcome.result));
    client.as_async().on_callback(|e| {
        e.outcome.code = Code::Error;
        e.outcome.result = "made an error".into();
    });
    assert_eq!(client.send(sid.clone(), "echo x").unwrap(), "<x>");
    let (tx, rx) = mpsc::channel();
    client
        .send_callback(sid, "echo y", move |i| tx.send((i.code, i.result)).unwrap())
        .unwrap();
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        (Some(Code::Error), "made an error".into())
    );
}

#[test]
fn deadline_fails_clearly_and_late_reply_is_dropped() {
    // tcllib §11.9: no send timeout. The command waits at a gate, so the
    // deadline passes for certain; the answer comes only once it is opened.
    let (server, d) = echo_server();
    let gate = Gate::default();
    d.register("hold", gate.command());
    let sid = server.self_id();
    let client = Channel::new(Config::new()).unwrap();
    let e = client
        .send_timeout(sid.clone(), "hold", Duration::from_millis(50))
        .unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with(&format!("no answer from {sid} within"))
    );
    // The late reply is written before the next one on the same connection,
    // so it arrives first and must be dropped, not taken for this answer.
    gate.open();
    assert_eq!(client.send(sid, "echo after").unwrap(), "after");
}

#[test]
fn dropping_a_send_future_cancels_the_wait() {
    let (server, d) = echo_server();
    let gate = Gate::default();
    d.register("hold", gate.command());
    let sid = server.self_id();
    let client = Channel::new(Config::new()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ch = client.as_async().clone();
    rt.block_on(async {
        let send = ch.send(sid.clone(), "hold");
        tokio::pin!(send);
        // Polled until the command is running on the server, then dropped.
        let g = gate.clone();
        let reached = tokio::task::spawn_blocking(move || g.wait_reached());
        tokio::select! {
            _ = &mut send => panic!("should not finish"),
            r = reached => assert!(r.unwrap(), "the held command never started"),
        }
    });
    // Its answer comes after the drop, before the next one on the connection.
    gate.open();
    assert_eq!(client.send(sid, "echo next").unwrap(), "next");
}

#[test]
fn slow_command_does_not_stall_other_connections() {
    let (server, d) = echo_server();
    let gate = Gate::default();
    d.register("hold", gate.command());
    let sid = server.self_id();
    let slow = Channel::new(Config::new()).unwrap();
    let fast = Channel::new(Config::new()).unwrap();
    let (tx, rx) = mpsc::channel();
    slow.send_callback(sid.clone(), "hold", move |i| tx.send(i.result).unwrap())
        .unwrap();
    assert!(gate.wait_reached(), "the slow command never started");
    for _ in 0..5 {
        assert_eq!(fast.send(sid.clone(), "echo quick").unwrap(), "quick");
    }
    // The fast client was served while the slow command was still held.
    assert!(rx.try_recv().is_err(), "the held command finished early");
    gate.open();
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        "released"
    );
}

#[test]
fn responder_answers_later_and_knows_about_loss() {
    let lost = Arc::new(AtomicUsize::new(0));
    let l = lost.clone();
    let held = Arc::new(Mutex::new(Vec::new()));
    let h = held.clone();
    let server = Channel::new(Config::listening().evaluator(
        move |req: tclcomm::Incoming, resp: tclcomm::Responder| {
            if req.script_text() == "hold" {
                let l = l.clone();
                resp.on_lost(move || {
                    l.fetch_add(1, Ordering::SeqCst);
                });
                h.lock().unwrap().push(resp);
            } else {
                resp.ok("now");
            }
        },
    ))
    .unwrap();
    let sid = server.self_id();
    let client = Channel::new(Config::new()).unwrap();
    let (tx, rx) = mpsc::channel();
    client
        .send_callback(sid.clone(), "hold", move |i| tx.send(i).unwrap())
        .unwrap();
    eventually("the request to be held", || held.lock().unwrap().len() == 1);
    let resp = held.lock().unwrap().pop().unwrap();
    assert!(resp.is_connected());
    assert!(resp.ok("later"));
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10)).unwrap().result,
        "later"
    );
    // Now hold one and drop the client: the responder hears of the loss and
    // its answer is dropped.
    let (tx, _rx) = mpsc::channel();
    client
        .send_callback(sid, "hold", move |i| tx.send(i).unwrap())
        .unwrap();
    eventually("the second request to be held", || {
        held.lock().unwrap().len() == 1
    });
    client.destroy();
    eventually("the loss to be seen", || lost.load(Ordering::SeqCst) == 1);
    let resp = held.lock().unwrap().pop().unwrap();
    assert!(!resp.is_connected());
    assert!(!resp.ok("too late"));
}

#[test]
fn taken_port_and_failed_relisten_keep_the_channel_usable() {
    let (server, _d) = echo_server();
    let taken = server.as_async().port();
    let e = Channel::new(Config::listening().port(taken)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "couldn't open socket: address already in use"
    );
    let other = Channel::new(Config::listening().evaluator(Dispatcher::new())).unwrap();
    let old_port = other.as_async().port();
    let e = other.configure(|c| c.port(taken)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "couldn't open socket: address already in use"
    );
    // tcllib leaves the channel half-destroyed here; ours keeps its old settings.
    assert_eq!(other.as_async().port(), old_port);
    assert_eq!(other.as_async().config().port, Port::Fixed(old_port));
    let client = Channel::new(Config::new()).unwrap();
    assert_eq!(
        client.send(other.self_id(), "list still here").unwrap(),
        "still here"
    );
}

#[test]
fn configure_relisten_changes_the_id_and_aborts_connections() {
    let (server, _d) = echo_server();
    let client = Channel::new(Config::listening()).unwrap();
    let before = client.self_id();
    client.send(server.self_id(), "echo x").unwrap();
    assert_eq!(client.interps().len(), 2);
    client.configure(|c| c.local(false)).unwrap();
    assert_eq!(
        client.self_id(),
        before,
        "port 0 re-listens on the port it got"
    );
    assert_eq!(client.interps(), vec![before.clone()]);
    client.configure(|c| c.listen(false)).unwrap();
    assert_eq!(client.self_id(), Id::port(0));
    // High port: above 10000.
    client
        .configure(|c| c.listen(true).port(Port::High))
        .unwrap();
    assert!(client.as_async().port() > 10000);
}

#[test]
fn channels_registry_and_destroy() {
    let a = Channel::new(Config::new().name("registry-a")).unwrap();
    assert!(tclcomm::channels().iter().any(|c| c.name() == "registry-a"));
    a.destroy();
    assert!(!tclcomm::channels().iter().any(|c| c.name() == "registry-a"));
    assert_eq!(a.send(Id::port(1), "x").unwrap_err(), Error::Destroyed);
}

#[test]
fn anonymous_and_bad_ids() {
    let c = Channel::new(Config::new()).unwrap();
    assert_eq!(
        c.send(Id::port(0), "x").unwrap_err().to_string(),
        "Connect to remote failed: Remote comm is anonymous; cannot connect"
    );
    assert_eq!(
        c.send(Id::from_text("00 localhost"), "x")
            .unwrap_err()
            .to_string(),
        "Connect to remote failed: Remote comm is anonymous; cannot connect"
    );
    assert_eq!(
        c.send(Id::from_text("-command"), "x")
            .unwrap_err()
            .to_string(),
        "Connect to remote failed: expected integer but got \"-command\""
    );
}

/// A raw TCP peer speaking the wire protocol by hand.
fn raw_server() -> (TcpListener, Id) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let id = Id::port(l.local_addr().unwrap().port());
    (l, id)
}

fn read_line(r: &mut BufReader<TcpStream>) -> String {
    let mut s = String::new();
    r.read_line(&mut s).unwrap();
    s
}

#[test]
fn reply_followed_by_close_is_not_lost() {
    // tcllib §11.5: data read together with EOF is discarded.
    let (l, id) = raw_server();
    let peer = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        assert!(read_line(&mut r).starts_with("{3 2} "));
        assert_eq!(read_line(&mut r), "{send 1 {{set a 1}}}\n");
        let mut s = s;
        s.write_all(b"{vers 3}\r\n{reply 1 {return -code 0 answered}}\n")
            .unwrap();
        drop(s);
    });
    let c = Channel::new(Config::new()).unwrap();
    assert_eq!(c.send(id, "set a 1").unwrap(), "answered");
    peer.join().unwrap();
}

#[test]
fn forged_replies_from_another_peer_are_ignored() {
    // tcllib §11.6: any peer can complete any pending serial.
    let (l1, id1) = raw_server();
    let (l2, id2) = raw_server();
    let c = Channel::new(Config::new()).unwrap();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let honest = std::thread::spawn(move || {
        let (s, _) = l1.accept().unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        read_line(&mut r);
        let req = read_line(&mut r);
        go_rx.recv().unwrap();
        let serial = req.split(' ').nth(1).unwrap().to_string();
        let mut s = s;
        s.write_all(format!("{{reply {serial} {{return -code 0 honest}}}}\n").as_bytes())
            .unwrap();
        let mut rest = Vec::new();
        let _ = r.read_to_end(&mut rest);
    });
    let c2 = c.clone();
    let forger = std::thread::spawn(move || {
        // Connect the forger, then have it answer serial 2 (the call to id1).
        c2.connect(id2).unwrap();
        let (s, _) = l2.accept().unwrap();
        let mut s2 = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        read_line(&mut r);
        // The forged reply, then a request: its answer proves the client has
        // read (and judged) the forged reply, which came before it.
        s2.write_all(b"{reply 2 {return -code 0 forged}}\n{send 1 {{list seen}}}\n")
            .unwrap();
        let answer = read_line(&mut r);
        assert!(answer.starts_with("{reply 1 "), "{answer:?}");
        r
    });
    let _keep = forger.join().unwrap();
    go_tx.send(()).unwrap();
    let got = c.send(id1, "x").unwrap();
    assert_eq!(got, "honest");
    c.destroy();
    honest.join().unwrap();
}

#[test]
fn duplicate_ids_are_tracked_without_staleness() {
    // tcllib §11.7: two anonymous clients share id 0; stale entries follow.
    let (server, _d) = echo_server();
    let sid = server.self_id();
    let a = Channel::new(Config::new()).unwrap();
    let b = Channel::new(Config::new()).unwrap();
    a.send(sid.clone(), "echo a").unwrap();
    b.send(sid.clone(), "echo b").unwrap();
    assert_eq!(
        server.interps(),
        vec![sid.clone(), Id::port(0), Id::port(0)]
    );
    // The server can reach id 0 (the first connection), then the other when
    // the first goes.
    assert_eq!(server.send(Id::port(0), "list hi").unwrap(), "hi");
    a.destroy();
    eventually("one connection left", || server.interps().len() == 2);
    b.destroy();
    eventually("no connection left", || server.interps().len() == 1);
    assert_eq!(server.interps(), vec![sid]);
}

#[test]
fn hostile_bytes_close_only_the_offending_connection() {
    // tcllib §11.1–3: spin on `{"}`, wedge on `{}`, unbounded growth.
    let (server, _d) = echo_server();
    let port = server.as_async().port();
    server
        .configure(|c| {
            c.limits(Limits {
                max_message: 64 * 1024,
                ..Limits::default()
            })
        })
        .unwrap();
    let good = Channel::new(Config::new()).unwrap();
    for evil in [
        &b"{3 2} 1\n{\"}\n"[..],
        b"{3 2} 2\n{}\n{send 1 x}\n",
        b"{3 2} 3\n{",
    ] {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(evil).unwrap();
        if evil.ends_with(b"{") {
            // An endless message: closed once past the limit, never buffered whole.
            let chunk = vec![b'x'; 16 * 1024];
            let mut closed = false;
            for _ in 0..64 {
                if s.write_all(&chunk).is_err() {
                    closed = true;
                    break;
                }
            }
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            // The handshake answer, then EOF (or a reset).
            let mut got = Vec::new();
            closed = closed
                || s.read_to_end(&mut got)
                    .is_ok_and(|_| got == b"{vers 3}\r\n")
                || got.is_empty();
            assert!(closed, "the endless message was not cut off");
        } else {
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut got = Vec::new();
            let _ = s.read_to_end(&mut got);
            assert_eq!(
                got, b"{vers 3}\r\n",
                "closed after the handshake answer, nothing executed"
            );
        }
        assert_eq!(
            good.send(Id::port(port), "echo still-serving").unwrap(),
            "still-serving"
        );
    }
}

#[test]
fn handshake_that_never_comes_is_dropped() {
    let server = Channel::new(Config::listening().limits(Limits {
        handshake_timeout: Duration::from_millis(200),
        ..Limits::default()
    }))
    .unwrap();
    let mut s = TcpStream::connect(("127.0.0.1", server.as_async().port())).unwrap();
    s.write_all(b"{3 2} 12").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 16];
    assert!(
        matches!(s.read(&mut buf), Ok(0) | Err(_)),
        "the silent peer was not dropped"
    );
}

#[test]
fn callbacks_get_minus_one_when_the_connection_goes() {
    let (server, d) = echo_server();
    let gate = Gate::default();
    d.register("hold", gate.command());
    let client = Channel::new(Config::new()).unwrap();
    let (tx, rx) = mpsc::channel();
    client
        .send_callback(server.self_id(), "hold", move |i| tx.send(i).unwrap())
        .unwrap();
    // Held on the server, so the answer cannot come before the abort.
    assert!(gate.wait_reached(), "the held command never started");
    client.abort();
    gate.open();
    let i = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(
        (i.code_text(), i.result.as_str(), i.errorcode.as_str()),
        ("-1".into(), "Connection aborted by request", "NONE")
    );
    let _ = RequestKind::Send;
}

#[test]
fn async_bursts_run_every_message_in_order() {
    let seen = Arc::new(Mutex::new(Vec::<usize>::new()));
    let d = Dispatcher::new();
    let s = seen.clone();
    d.register("note", move |_c, a| {
        s.lock().unwrap().push(a[0].parse().unwrap());
        Ok(String::new())
    });
    let server = Channel::new(Config::listening().evaluator(d)).unwrap();
    let client = Channel::new(Config::new()).unwrap();
    let n = 30_000;
    for i in 0..n {
        // Plain words, and words the full parser must handle, mixed.
        let script = if i % 3 == 0 {
            format!("note {{{i}}}")
        } else {
            format!("note {i}")
        };
        client.send_async(server.self_id(), script).unwrap();
    }
    // Same connection, in order: when this is answered all were run.
    assert_eq!(client.send(server.self_id(), "list done").unwrap(), "done");
    assert_eq!(*seen.lock().unwrap(), (0..n).collect::<Vec<_>>());
}

#[test]
fn sends_from_many_threads_keep_each_threads_order() {
    // Threads share one connection and mix async sends (queued for the
    // writer task) with sync sends (written directly, after the channel's
    // lock is released): each thread's sync send must still arrive after
    // its own async sends, whatever the others write meanwhile.
    let counts = Arc::new(Mutex::new(std::collections::HashMap::<String, u64>::new()));
    let d = Dispatcher::new();
    let c = counts.clone();
    d.register("bump", move |_c, a| {
        *c.lock().unwrap().entry(a[0].clone()).or_default() += 1;
        Ok(String::new())
    });
    let c = counts.clone();
    d.register("count", move |_c, a| {
        Ok(c.lock()
            .unwrap()
            .get(&a[0])
            .copied()
            .unwrap_or(0)
            .to_string())
    });
    let server = Channel::new(Config::listening().evaluator(d)).unwrap();
    let client = Channel::new(Config::new()).unwrap();
    let id = server.self_id();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (client, id) = (client.clone(), id.clone());
            std::thread::spawn(move || {
                for round in 1..=300u64 {
                    for _ in 0..3 {
                        client.send_async(id.clone(), format!("bump t{t}")).unwrap();
                    }
                    let got = client.send(id.clone(), format!("count t{t}")).unwrap();
                    assert_eq!(got, (3 * round).to_string(), "thread {t}, round {round}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn a_peer_that_does_not_read_is_dropped_past_the_outbound_limit() {
    // The peer accepts and never reads: once the socket buffers are full,
    // what is queued for it grows until the limit, and the connection goes.
    let (l, id) = raw_server();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let peer = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        let _ = done_rx.recv_timeout(Duration::from_secs(60));
        drop(s);
    });
    let client = Channel::new(Config::new().limits(Limits {
        max_outbound: 1 << 20,
        ..Limits::default()
    }))
    .unwrap();
    let (lost_tx, lost_rx) = mpsc::channel();
    client.as_async().on_lost(move |e| {
        let _ = lost_tx.send(e.reason.clone());
    });
    let chunk = "x".repeat(64 * 1024);
    let mut lost = None;
    for _ in 0..2000 {
        client
            .send_async(id.clone(), Script::command(["set", "a", chunk.as_str()]))
            .unwrap();
        if let Ok(reason) = lost_rx.try_recv() {
            lost = Some(reason);
            break;
        }
    }
    let reason = match lost {
        Some(r) => r,
        None => lost_rx.recv_timeout(Duration::from_secs(10)).unwrap(),
    };
    assert!(
        reason.starts_with("peer does not read: ")
            && reason.ends_with(" bytes queued (limit 1048576)"),
        "{reason}"
    );
    done_tx.send(()).unwrap();
    peer.join().unwrap();
}

#[test]
fn a_blocking_command_does_not_stall_other_connections() {
    // One worker thread: a command that blocks it would stall every
    // connection, unless it is registered as blocking.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let gate = Gate::default();
        let d = Dispatcher::new();
        d.register_blocking("hold", gate.command());
        d.register("ping", |_c, _a| Ok("pong".into()));
        let server = tclcomm::Channel::new(Config::listening().evaluator(d))
            .await
            .unwrap();
        let id = server.self_id();
        let a = tclcomm::Channel::new(Config::new()).await.unwrap();
        let b = tclcomm::Channel::new(Config::new()).await.unwrap();
        let held = tokio::spawn({
            let id = id.clone();
            async move { a.send(id, "hold").await }
        });
        let g = gate.clone();
        let reached = tokio::task::spawn_blocking(move || g.wait_reached());
        assert!(reached.await.unwrap(), "the blocking command never started");
        // While `hold` blocks its thread, another connection is served.
        let pong = tokio::time::timeout(Duration::from_secs(5), b.send(id.clone(), "ping")).await;
        gate.open();
        assert_eq!(
            pong.expect("the other connection was stalled").unwrap(),
            "pong"
        );
        assert_eq!(held.await.unwrap().unwrap(), "released");
        server.destroy();
        b.destroy();
    });
}

#[test]
fn pipelined_requests_are_all_answered_in_order() {
    // A peer that writes many requests at once (as tcllib does for a loop
    // of `send -command`) gets every answer, in order; answers to the
    // requests of one read are written together.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let d = Dispatcher::new();
    d.register("echo", |_c, a| Ok(a.first().cloned().unwrap_or_default()));
    let server = rt
        .block_on(tclcomm::Channel::new(Config::listening().evaluator(d)))
        .unwrap();
    let mut s = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let n = 2_000;
    let mut out = b"{3 2} 1\n".to_vec();
    for i in 0..n {
        out.extend_from_slice(format!("{{send {i} {{{{echo v{i}}}}}}}\n").as_bytes());
    }
    s.write_all(&out).unwrap();
    let mut expected = String::from("{vers 3}\r\n");
    for i in 0..n {
        expected.push_str(&format!("{{reply {i} {{return -code 0 v{i}}}}}\n"));
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    while got.len() < expected.len() {
        let k = s.read(&mut buf).expect("answers stopped coming");
        assert!(k > 0, "closed after {} bytes", got.len());
        got.extend_from_slice(&buf[..k]);
    }
    assert_eq!(String::from_utf8(got).unwrap(), expected);
    server.destroy();
}

#[test]
fn an_answer_is_not_held_behind_a_blocking_command_of_the_same_read() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let gate = Gate::default();
    let d = Dispatcher::new();
    d.register("echo", |_c, a| Ok(a.first().cloned().unwrap_or_default()));
    d.register_blocking("hold", gate.command());
    let server = rt
        .block_on(tclcomm::Channel::new(Config::listening().evaluator(d)))
        .unwrap();
    let mut s = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // Both requests in one write, so that they are read together.
    s.write_all(b"{3 2} 1\n{send 1 {{echo first}}}\n{send 2 hold}\n")
        .unwrap();
    let first = b"{vers 3}\r\n{reply 1 {return -code 0 first}}\n";
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.len() < first.len() {
        let k = s
            .read(&mut buf)
            .expect("the first answer waited for `hold`");
        assert!(k > 0);
        got.extend_from_slice(&buf[..k]);
    }
    assert_eq!(&got[..], &first[..]);
    gate.open();
    let second = b"{reply 2 {return -code 0 released}}\n";
    got.clear();
    while got.len() < second.len() {
        let k = s.read(&mut buf).unwrap();
        assert!(k > 0);
        got.extend_from_slice(&buf[..k]);
    }
    assert_eq!(&got[..], &second[..]);
    server.destroy();
}

/// The inode of this process's TCP socket from local port `local` to
/// remote port `remote` (IPv4 loopback), from /proc/net/tcp.
#[cfg(target_os = "linux")]
fn socket_inode(local: u16, remote: u16) -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let port = |a: &str| u16::from_str_radix(a.rsplit(':').next()?, 16).ok();
        (port(f.get(1)?)? == local && port(f.get(2)?)? == remote)
            .then(|| f.get(9).map(|s| s.to_string()))?
    })
}

/// Whether a descriptor of this process refers to socket `inode`.
#[cfg(target_os = "linux")]
fn holds_socket(inode: &str) -> bool {
    let want = format!("socket:[{inode}]");
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(Result::ok)
        .any(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy() == want))
}

#[cfg(target_os = "linux")]
#[test]
fn a_connection_closed_here_lets_its_socket_go_while_the_peer_stays_silent() {
    // The connection's reader waits for data that never comes (the peer
    // keeps its side open and says nothing): only the stop signal can end
    // it, and with it the last hold on the socket.
    let (l, id) = raw_server();
    let server_port = l.local_addr().unwrap().port();
    let (port_tx, port_rx) = mpsc::channel::<u16>();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let peer = std::thread::spawn(move || {
        let (s, from) = l.accept().unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        assert!(read_line(&mut r).starts_with("{3 2} "));
        (&s).write_all(b"{vers 3}\r\n").unwrap();
        port_tx.send(from.port()).unwrap();
        // EOF once the client has shut its write side; the socket stays
        // open here until the test is done.
        let mut rest = Vec::new();
        let _ = r.read_to_end(&mut rest);
        let _ = done_rx.recv_timeout(Duration::from_secs(10));
        drop(s);
    });
    let c = Channel::new(Config::new()).unwrap();
    c.connect(id.clone()).unwrap();
    let client_port = port_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let inode =
        socket_inode(client_port, server_port).expect("the client's socket in /proc/net/tcp");
    assert!(holds_socket(&inode));
    assert!(c.shutdown(id).is_some());
    eventually("the closed connection's socket to be let go", || {
        !holds_socket(&inode)
    });
    done_tx.send(()).unwrap();
    peer.join().unwrap();
}
