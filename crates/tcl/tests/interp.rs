//! Evaluation, errors, commands, strings and events against a real Tcl 8.6.
#![allow(clippy::unwrap_used)]

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tclcomm_tcl::{EventFlags, Exception, Interpreter, Obj};

fn tcl() -> Interpreter {
    Interpreter::new().expect("Tcl interpreter")
}

#[test]
fn eval_result_and_error() {
    let tcl = tcl();
    let i = tcl.interp();
    assert_eq!(i.eval("expr {6*7}").unwrap().to_str(), "42");
    assert_eq!(i.version().0, 8);
    let e = i
        .eval("proc lvl2 {} {error {boom from proc} {} {COMM TEST 42}}; proc lvl1 {} lvl2; lvl1")
        .unwrap_err();
    assert_eq!(e.code, 1);
    assert_eq!(e.result, "boom from proc");
    assert_eq!(e.errorcode.as_deref(), Some("COMM TEST 42"));
    let info = e.errorinfo.unwrap();
    assert!(
        info.starts_with("boom from proc\n    while executing\n\"error {boom"),
        "{info}"
    );
    assert!(info.contains("(procedure \"lvl1\" line 1)"), "{info}");
    // Interp still fine afterwards.
    assert_eq!(i.eval("set x 1").unwrap().to_str(), "1");
}

#[test]
fn eval_outcome_codes() {
    let tcl = tcl();
    let i = tcl.interp();
    let o = i.eval_outcome("break");
    assert_eq!((o.code, o.result.as_str()), (3, ""));
    assert_eq!(i.eval_outcome("continue").code, 4);
    assert_eq!(i.eval_outcome("return -level 0 -code 7 seven").code, 7);
    // A top-level `return` completes the script (unlike `catch`).
    assert_eq!(i.eval_outcome("return x").code, 0);
    let o = i.eval_outcome("error e1 info1 {A B}");
    assert_eq!((o.code, o.errorcode.as_str()), (1, "A B"));
    assert!(o.errorinfo.starts_with("info1"));
    // Without allow_exceptions a top-level break is an error.
    let e = i.eval("break").unwrap_err();
    assert_eq!(e.code, 1);
    assert_eq!(e.result, "invoked \"break\" outside of a loop");
}

#[test]
fn vars_lists_dicts() {
    let tcl = tcl();
    let i = tcl.interp();
    i.set_var("a", &Obj::string("x y")).unwrap();
    assert_eq!(i.get_var("::a").unwrap().to_str(), "x y");
    i.set_var2("arr", "k", &Obj::int(5)).unwrap();
    assert_eq!(i.eval("set arr(k)").unwrap().to_i64().unwrap(), 5);
    assert_eq!(i.get_var2("arr", "k").unwrap().to_i64().unwrap(), 5);
    i.unset_var("a").unwrap();
    assert!(i.get_var("a").is_none());
    assert!(i.unset_var("a").is_err());

    let mut l = Obj::list_of(["a b", "c"]);
    let shared = l.clone();
    l.list_append(&Obj::string("{")).unwrap();
    assert_eq!(shared.to_str(), "{a b} c"); // copy-on-write
    assert_eq!(l.to_str(), "{a b} c \\{");
    assert_eq!(l.list_len().unwrap(), 3);
    assert_eq!(l.list_index(2).unwrap().unwrap().to_str(), "{");
    assert!(l.list_index(9).unwrap().is_none());
    assert!(Obj::string("a {b").list_elements().is_err());
    let e = i.list_elements(&Obj::string("a {b")).unwrap_err();
    assert_eq!(e.result, "unmatched open brace in list");

    let mut d = Obj::dict();
    d.dict_put(&"k1".into(), &"v1".into()).unwrap();
    d.dict_put(&"k2".into(), &Obj::boolean(true)).unwrap();
    assert_eq!(d.dict_len().unwrap(), 2);
    assert_eq!(d.dict_get(&"k1".into()).unwrap().unwrap().to_str(), "v1");
    assert!(d.dict_get(&"nope".into()).unwrap().is_none());
    let keys: Vec<String> = d
        .dict_entries()
        .unwrap()
        .iter()
        .map(|(k, _)| k.to_string())
        .collect();
    assert_eq!(keys, ["k1", "k2"]);
    d.dict_remove(&"k1".into()).unwrap();
    assert_eq!(d.to_str(), "k2 1");
    assert!(Obj::string("yes").to_bool().unwrap());
    assert!(Obj::string("x").to_i64().is_err());
    assert_eq!(Obj::bytes(&[0, 255, 10]).to_bytes(), [0, 255, 10]);
    i.set_var("bin", &Obj::bytes(&[0, 1, 255])).unwrap();
    assert_eq!(i.eval("string length $bin").unwrap().to_str(), "3");
}

#[test]
fn strings_round_trip() {
    let tcl = tcl();
    let i = tcl.interp();
    for s in ["a\0b", "é", "中", "😀", "a\0bé中😀\n\r\tz", ""] {
        i.set_var("s", &Obj::string(s)).unwrap();
        assert_eq!(i.get_var("s").unwrap().to_str(), s, "{s:?}");
    }
    // Built in Tcl, compared in Tcl: equal only if the encoding is right.
    // (Tcl 8.6 turns `\U1F600` into U+FFFD; a surrogate pair is its 😀.)
    i.set_var("r", &Obj::string("a\0bé中😀")).unwrap();
    let same = i
        .eval(r#"string equal $r "a\x00b\u00e9\u4e2d\ud83d\ude00""#)
        .unwrap();
    assert_eq!(same.to_str(), "1");
    assert_eq!(
        i.eval("dict exists [dict create $r 1] $r")
            .unwrap()
            .to_str(),
        "1"
    );
    // Tcl-built to Rust.
    let t = i
        .eval(r#"string cat a \x00 b \u00e9 \u4e2d \ud83d \ude00"#)
        .unwrap();
    assert_eq!(t.to_str(), "a\0bé中😀");
    // 8.6 counts the surrogate pair as two characters.
    assert_eq!(i.eval("string length $r").unwrap().to_str(), "7");
    // Scripts and variable names with NUL and non-BMP characters.
    assert_eq!(i.eval("set v😀 \"x\\0y\"").unwrap().to_str(), "x\0y");
    assert_eq!(i.get_var("v😀").unwrap().to_str(), "x\0y");
}

#[test]
fn command_args_errors_and_panic() {
    let tcl = tcl();
    let i = tcl.interp();
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    i.create_command("rs::echo", move |_i, objv| {
        c.set(c.get() + 1);
        Ok(Obj::list(&objv[1..]))
    });
    i.create_command("rs::fail", |_i, objv| {
        Err(Exception::with_errorcode(objv[1].to_string(), "bad thing"))
    });
    i.create_command("rs::panic", |_i, _objv| panic!("deliberate panic"));
    i.create_command("rs::raise", |_i, objv| {
        Err(Exception::with_options(
            objv[1].to_i64()? as i32,
            "raised",
            Some("remote info".into()),
            Some("REMOTE CODE".into()),
        ))
    });
    i.create_namespace("rs").unwrap();
    assert_eq!(
        i.eval("rs::echo a {b c} 😀").unwrap().to_str(),
        "a {b c} 😀"
    );
    assert_eq!(calls.get(), 1);

    let e = i.eval("rs::fail {COMM BAD 7}").unwrap_err();
    assert_eq!(e.result, "bad thing");
    assert_eq!(e.errorcode.as_deref(), Some("COMM BAD 7"));
    assert_eq!(
        e.errorinfo.as_deref(),
        Some("bad thing\n    while executing\n\"rs::fail {COMM BAD 7}\"")
    );

    let e = i.eval("rs::panic").unwrap_err();
    assert_eq!(e.result, "Rust panic: deliberate panic");
    assert_eq!(e.errorcode.as_deref(), Some("RUST PANIC"));
    assert_eq!(i.eval("rs::echo alive").unwrap().to_str(), "alive");
    assert_eq!(
        i.eval("catch rs::panic m o; dict get $o -errorcode")
            .unwrap()
            .to_str(),
        "RUST PANIC"
    );

    // Re-raised options: errorinfo kept; as with `return -level 0
    // -errorinfo …`, Tcl adds the frames above the command, not the
    // command's own "invoked from within" line.
    let e = i.eval("proc p {} {rs::raise 1}; p").unwrap_err();
    assert_eq!(e.errorcode.as_deref(), Some("REMOTE CODE"));
    let info = e.errorinfo.unwrap();
    assert_eq!(
        info,
        "remote info\n    (procedure \"p\" line 1)\n    invoked from within\n\"p\""
    );
    assert_eq!(i.eval_outcome("rs::raise 3").code, 3);
    assert_eq!(
        i.eval("foreach x {1 2} {rs::raise 3}; set x")
            .unwrap()
            .to_str(),
        "1"
    );

    let e = i.eval("rs::fail").unwrap_err(); // objv[1] missing -> Rust panic (index)
    assert_eq!(e.errorcode.as_deref(), Some("RUST PANIC"));

    assert!(i.delete_command("rs::echo"));
    assert!(!i.delete_command("rs::echo"));
    assert!(i.eval("rs::echo").is_err());
}

#[test]
fn assoc_data_and_delete_hooks() {
    let fired = Rc::new(Cell::new(false));
    {
        let tcl = tcl();
        let i = tcl.interp();
        i.set_assoc_data("k", Rc::new(41u32));
        assert_eq!(*i.assoc_data::<u32>("k").unwrap(), 41);
        assert!(i.assoc_data::<String>("k").is_none());
        i.set_assoc_data("k", Rc::new(42u32));
        assert_eq!(*i.assoc_data::<u32>("k").unwrap(), 42);
        i.delete_assoc_data("k");
        assert!(i.assoc_data::<u32>("k").is_none());
        let f = fired.clone();
        i.on_delete(move || f.set(true));
        let f2 = fired.clone();
        let h = i.on_delete(move || f2.set(true));
        assert!(i.cancel_on_delete(h));
        let r = i.preserve();
        assert!(r.get().is_some());
        drop(tcl);
        // Preserved memory, but deleted.
        assert!(r.get().is_none());
    }
    assert!(fired.get());
}

#[test]
fn timers_and_idle() {
    let tcl = tcl();
    let i = tcl.interp();
    let log = Rc::new(std::cell::RefCell::new(Vec::new()));
    let (l1, l2, l3, l4) = (log.clone(), log.clone(), log.clone(), log.clone());
    i.after(30, move || l1.borrow_mut().push("t30"));
    i.after(10, move || l2.borrow_mut().push("t10"));
    let t = i.after(20, move || l3.borrow_mut().push("cancelled"));
    assert!(t.cancel());
    i.when_idle(move || l4.borrow_mut().push("idle"));
    let idle = i.when_idle(|| panic!("cancelled idle ran"));
    assert!(idle.cancel());
    let start = Instant::now();
    i.wait_until(|| log.borrow().len() == 3);
    assert_eq!(*log.borrow(), ["idle", "t10", "t30"]);
    assert!(start.elapsed() >= Duration::from_millis(25));
    assert!(!i.do_one_event(EventFlags::ALL | EventFlags::DONT_WAIT));
}

/// A queued event runs before idle callbacks scheduled earlier, in the
/// first pass of the event loop, like a socket event: not from
/// `update idletasks`; cancelled, it does nothing.
#[test]
fn queued_events_run_before_idle_and_not_from_idletasks() {
    let tcl = tcl();
    let i = tcl.interp();
    let log = Rc::new(std::cell::RefCell::new(Vec::new()));
    let (l1, l2) = (log.clone(), log.clone());
    i.when_idle(move || l1.borrow_mut().push("idle"));
    i.queue_event(move || l2.borrow_mut().push("queued"));
    let q = i.queue_event(|| panic!("cancelled event ran"));
    assert!(q.cancel());
    // Idle events only: the queued one waits.
    assert!(i.do_one_event(EventFlags::IDLE | EventFlags::DONT_WAIT));
    assert_eq!(*log.borrow(), ["idle"]);
    let (l3, l4) = (log.clone(), log.clone());
    i.when_idle(move || l3.borrow_mut().push("idle 2"));
    i.queue_event(move || l4.borrow_mut().push("queued 2"));
    // One event a pass, all before the idle callback.
    for _ in 0..10 {
        if !i.do_one_event(EventFlags::ALL | EventFlags::DONT_WAIT) {
            break;
        }
    }
    assert_eq!(*log.borrow(), ["idle", "queued", "queued 2", "idle 2"]);
}

#[test]
fn panicking_timer_becomes_background_error() {
    let tcl = tcl();
    let i = tcl.interp();
    i.eval("proc bgerror {m} {set ::bg [list $m $::errorCode]}")
        .unwrap();
    i.after(1, || panic!("timer boom"));
    i.eval("vwait ::bg").unwrap();
    assert_eq!(
        i.get_var("bg").unwrap().to_str(),
        "{Rust panic: timer boom} {RUST PANIC}"
    );
}

#[test]
fn poster_wakes_vwait_from_another_thread() {
    let tcl = tcl();
    let i = tcl.interp();
    let poster = i.poster();
    let id = i.id();
    thread_local! {
        static HITS: Cell<u32> = const { Cell::new(0) };
    }
    let p = poster.clone();
    let bg = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        for _ in 0..1000 {
            p.post(|| HITS.with(|h| h.set(h.get() + 1))).unwrap();
        }
        p.post(move || {
            // Jobs run on the Tcl thread: state is looked up thread-locally.
            let _ = id;
            HITS.with(|h| h.set(h.get() + 1000));
        })
        .unwrap();
    });
    let start = Instant::now();
    i.create_command("hits", |_, _| Ok(Obj::int(HITS.with(|h| h.get()).into())));
    i.wait_until(|| HITS.with(|h| h.get()) >= 2000);
    bg.join().unwrap();
    assert_eq!(i.eval("hits").unwrap().to_str(), "2000");
    assert!(start.elapsed() < Duration::from_secs(4));

    // Panicking job -> background error; the poster keeps working.
    i.eval("proc bgerror {m} {set ::bg $m}").unwrap();
    poster.post(|| panic!("job boom")).unwrap();
    i.eval("vwait ::bg").unwrap();
    assert_eq!(i.get_var("bg").unwrap().to_str(), "Rust panic: job boom");

    // Gate closes with the interpreter.
    drop(tcl);
    assert!(poster.is_closed());
    assert!(poster.post(|| {}).is_err());
}

#[test]
fn vwait_woken_by_posted_job() {
    // A job looks up per-interp state (here: an InterpRef in a thread-local
    // map keyed by InterpId) and sets the variable `vwait` waits for.
    thread_local! {
        static INTERPS: std::cell::RefCell<Vec<(tclcomm_tcl::InterpId, tclcomm_tcl::InterpRef)>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    let tcl = tcl();
    let i = tcl.interp();
    INTERPS.with(|m| m.borrow_mut().push((i.id(), i.preserve())));
    let id = i.id();
    let poster = i.poster();
    let t0 = Instant::now();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        poster
            .post(move || {
                INTERPS.with(|m| {
                    for (k, r) in m.borrow().iter() {
                        if *k == id
                            && let Some(i) = r.get()
                        {
                            i.set_var("::woken", &Obj::string("by job")).unwrap();
                        }
                    }
                })
            })
            .unwrap();
    });
    i.eval("after 3000 {set ::woken timeout}; vwait ::woken")
        .unwrap();
    assert_eq!(i.get_var("woken").unwrap().to_str(), "by job");
    assert!(t0.elapsed() < Duration::from_millis(2000));
    INTERPS.with(|m| m.borrow_mut().clear());
}

#[test]
fn channel_handler_on_local_socket() {
    let tcl = tcl();
    let i = tcl.interp();
    // A Tcl server that echoes lines back; the client side is driven from Rust.
    i.eval(
        r#"
        proc accept {s a p} {
            fconfigure $s -translation binary -blocking 0
            fileevent $s readable [list echo $s]
        }
        proc echo {s} {
            set d [read $s]
            if {[eof $s]} { close $s; return }
            puts -nonewline $s $d; flush $s
        }
        set srv [socket -server accept -myaddr 127.0.0.1 0]
        set port [lindex [fconfigure $srv -sockname] 2]
        set cli [socket 127.0.0.1 $port]
        "#,
    )
    .unwrap();
    let name = i.get_var("cli").unwrap().to_string();
    let ch = i.channel(&name).unwrap();
    assert_eq!(ch.name(), name);
    ch.configure("-blocking", "0").unwrap();
    ch.configure("-translation", "binary").unwrap();
    assert_eq!(ch.cget("-blocking").unwrap(), "0");
    assert!(ch.configure("-bogus", "1").is_err());

    let got = Rc::new(std::cell::RefCell::new(Vec::new()));
    let g = got.clone();
    let reader = i.channel(&name).unwrap();
    let h = ch
        .on_readable(move || {
            reader.read_raw(&mut g.borrow_mut(), 4096).unwrap();
        })
        .unwrap();
    // Nothing to read yet: non-blocking read returns 0 and reports blocked.
    let mut buf = Vec::new();
    assert_eq!(ch.read_raw(&mut buf, 10).unwrap(), 0);
    let msg = "{send 1 {{set a é\u{0}😀}}}\n".as_bytes();
    assert_eq!(ch.write(msg).unwrap(), msg.len());
    ch.flush().unwrap();
    let t0 = Instant::now();
    i.wait_until(|| got.borrow().len() >= msg.len() || t0.elapsed() > Duration::from_secs(3));
    assert_eq!(&*got.borrow(), msg);
    assert!(!ch.eof());
    assert!(ch.remove_handler(h));

    // Close the server side: the client sees EOF.
    i.eval("foreach c [chan names sock*] { if {$c ne $cli && $c ne $srv} { close $c } }")
        .unwrap();
    let t0 = Instant::now();
    let mut rest = Vec::new();
    while !ch.eof() && t0.elapsed() < Duration::from_secs(3) {
        i.do_one_event(EventFlags::ALL | EventFlags::DONT_WAIT);
        let _ = ch.read_raw(&mut rest, 100).unwrap();
    }
    assert!(ch.eof());
    ch.close().unwrap();
    assert!(i.channel(&name).is_err());
}

#[test]
fn exit_handler_cancel() {
    let tcl = tcl();
    let h = tcl.interp().on_exit(|| {});
    assert!(h.cancel());
}

#[test]
fn interpreters_on_several_threads() {
    let hs: Vec<_> = (0..3)
        .map(|n| {
            std::thread::spawn(move || {
                let tcl = tcl();
                tcl.interp()
                    .eval(&format!("set x {n}; incr x"))
                    .unwrap()
                    .to_string()
            })
        })
        .collect();
    let r: Vec<String> = hs.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(r, ["1", "2", "3"]);
}
