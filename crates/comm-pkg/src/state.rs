//! The Tcl-event-loop driver of the protocol engine: per-interpreter and
//! per-channel state, socket I/O through Tcl channels, and the carrying out
//! of the engine's actions (writes, evaluations, completions, losses).
//!
//! Re-entrancy: any Tcl evaluation may run the event loop (a `vwait`, a
//! nested sync `send`) and come back here. No `RefCell` borrow is held
//! across an evaluation, actions are taken from the engine one at a time,
//! and received requests wait in a per-channel queue that whichever event
//! loop level is running drains in arrival order.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::{Rc, Weak};

use std::time::{Duration, Instant};

use tclcomm_tcl::{
    Channel, ChannelHandler, EventFlags, Exception, Idle, Interp, InterpRef, Obj, Queued, Timer,
};
use tclcomm_wire::answer::{CallbackArgs, Failure};
use tclcomm_wire::engine::{
    Action, CallKind, ConnId, Engine, EngineConfig, Loss, Request, RequestKind,
};
use tclcomm_wire::{Code, Id, Outcome, Serial};

/// The name of the per-interpreter AssocData entry.
pub(crate) const ASSOC: &str = "tclcomm-pkg::comm";

/// The largest chunk read from a socket in one go.
const READ_CHUNK: usize = 1 << 20;

/// Output buffer size of comm sockets: large, so bursts of small messages
/// cost few system calls.
const BUFFER_SIZE: &str = "1048576";

/// Output left queued on a closed connection beyond which the C heap is
/// trimmed once the close is done (see [`tclcomm_tcl::trim_heap`]).
const TRIM_AFTER: usize = 1 << 20;

/// When, after such a close, the heap is trimmed (milliseconds).
const TRIM_DELAY_MS: u32 = 100;

/// A request queue longer than this gives its memory back once drained.
const REQUESTS_KEPT: usize = 1024;

/// The request whose script is running (tcllib's `current,state`), for
/// `return_async`.
#[derive(Debug, Clone)]
pub(crate) struct Current {
    chan: String,
    conn: ConnId,
    kind: RequestKind,
    serial: Serial,
    /// Set by `return_async`: the future that will answer.
    future: Option<String>,
}

/// What tcllib's `vwait`/`update` wrappers save around a nested event loop:
/// the current message, and the `remoteid` of its channel.
struct Saved {
    current: Option<Current>,
    remote: Option<(String, Option<Id>)>,
}

/// A `return_async` future (`::comm::futureN`).
#[derive(Debug)]
struct Future {
    chan: String,
    conn: ConnId,
    kind: RequestKind,
    serial: Serial,
    canceled: bool,
    command: String,
}

/// Everything comm keeps per interpreter.
#[derive(Default)]
pub(crate) struct Comm {
    chans: RefCell<HashMap<String, Rc<Chan>>>,
    current: RefCell<Option<Current>>,
    futures: RefCell<HashMap<String, Future>>,
    next_future: Cell<u64>,
    /// States saved by the `vwait`/`update` wrappers (see [`cmd_state`]).
    saved: RefCell<Vec<Saved>>,
    /// How many received requests are being executed (more than one when a
    /// script runs the event loop and a nested one executes inside it).
    depth: Cell<u32>,
    /// The buffer sockets are read into (see [`on_readable`]).
    read_buf: RefCell<Vec<u8>>,
    /// Listeners of channels using Tcl's `socket`, by channel name.
    pub(crate) listeners: RefCell<HashMap<String, Rc<crate::listen::Listener>>>,
    /// Counters `::comm::RStats` reports.
    pub(crate) stats: Stats,
}

/// What the socket layer had to refuse, per interpreter.
#[derive(Default)]
pub(crate) struct Stats {
    /// Sockets closed at once because the Tcl notifier cannot watch their
    /// descriptor (at or above `FD_SETSIZE` on Tcl 8.6).
    pub(crate) unwatchable: Cell<u64>,
    /// Times a listener stopped accepting for a while after `accept`
    /// failed (out of descriptors or memory).
    pub(crate) backoffs: Cell<u64>,
}

struct Sock {
    name: String,
    channel: Channel,
    handler: Option<ChannelHandler>,
    /// Plain sockets are read with `Tcl_ReadRaw`; stacked channels (TLS)
    /// through the channel's buffers and a UTF-8 decoder, which is where
    /// their transformation happens.
    raw: bool,
    /// rustls over the raw socket (`::comm::tls`), if the channel has it.
    tls: Option<crate::tls::Session>,
}

enum Slot {
    Waiting,
    Done(Outcome),
    Lost(Failure),
}

/// One comm channel: its engine and its sockets.
pub(crate) struct Chan {
    name: String,
    engine: RefCell<Engine>,
    socks: RefCell<HashMap<ConnId, Sock>>,
    by_name: RefCell<HashMap<String, ConnId>>,
    /// Socket names of closed connections until their `lost` hook ran.
    closed: RefCell<HashMap<ConnId, String>>,
    slots: RefCell<HashMap<u64, Slot>>,
    callbacks: RefCell<HashMap<u64, String>>,
    remoteid: RefCell<Option<Id>>,
    requests: RefCell<VecDeque<Request>>,
    run_scheduled: Cell<bool>,
    /// The two ways a scheduled run can start (see [`schedule_run`]).
    run_by: RefCell<Option<(Idle, Queued)>>,
    flush_scheduled: Cell<bool>,
    dirty: RefCell<Vec<ConnId>>,
    /// Which hooks are set (bit per event, see [`hook_bit`]) and whether
    /// `-interp` is set: kept up to date by the Tcl library, so the hot
    /// paths need no Tcl variable lookups.
    hooks: Cell<u8>,
    has_interp: Cell<bool>,
    /// The last `-async` script and its value, whose bytecode Tcl caches:
    /// bursts repeat the same script.
    last_async: RefCell<Option<(String, Obj)>>,
    /// The Tcl timer armed for the engine's next deadline, and that deadline.
    timer: RefCell<Option<(Instant, Timer)>>,
    /// Connections dropped for not reading: at their Close, what is queued
    /// for them is thrown away rather than flushed.
    discard: RefCell<Vec<ConnId>>,
    /// `::comm::tls` settings for connections made from now on.
    pub(crate) tls: RefCell<Option<Rc<crate::tls::Settings>>>,
}

/// The bit of hook `event` in [`Chan::hooks`].
fn hook_bit(event: &str) -> u8 {
    match event {
        "connecting" => 1,
        "connected" => 2,
        "incoming" => 4,
        "eval" => 8,
        "callback" => 16,
        "reply" => 32,
        "lost" => 64,
        _ => 0,
    }
}

impl Chan {
    fn new(name: &str) -> Chan {
        Chan {
            name: name.to_owned(),
            engine: RefCell::new(Engine::new(EngineConfig::new(Id::from_text("0")))),
            socks: RefCell::default(),
            by_name: RefCell::default(),
            closed: RefCell::default(),
            slots: RefCell::default(),
            callbacks: RefCell::default(),
            remoteid: RefCell::default(),
            requests: RefCell::default(),
            run_scheduled: Cell::new(false),
            run_by: RefCell::default(),
            flush_scheduled: Cell::new(false),
            dirty: RefCell::default(),
            hooks: Cell::new(0),
            has_interp: Cell::new(false),
            last_async: RefCell::default(),
            timer: RefCell::default(),
            discard: RefCell::default(),
            tls: RefCell::default(),
        }
    }

    fn cancel_timer(&self) {
        if let Some((_, t)) = self.timer.borrow_mut().take() {
            t.cancel();
        }
    }

    fn sock_name(&self, conn: ConnId) -> String {
        self.socks
            .borrow()
            .get(&conn)
            .map(|s| s.name.clone())
            .or_else(|| self.closed.borrow().get(&conn).cloned())
            .unwrap_or_default()
    }

    /// Bytes written to connection `conn` that the operating system has
    /// not taken yet (in the Tcl channel's buffers): what a peer that does
    /// not read makes us hold. 0 for an unknown connection.
    pub(crate) fn queued_bytes(&self, conn: ConnId) -> usize {
        self.socks
            .borrow()
            .get(&conn)
            .map_or(0, |s| s.channel.output_buffered())
    }

    fn write(&self, conn: ConnId, bytes: &[u8]) {
        let socks = self.socks.borrow();
        let Some(s) = socks.get(&conn) else { return };
        // Output already waiting means either a flush of ours is pending
        // (the connection is dirty) or the socket is full and Tcl's
        // background flush will write everything, this message included,
        // when it can: flushing now would only try (and fail) again, once
        // per message.
        let backlog = s.channel.output_buffered() > 0;
        // Write errors mean the peer is gone; the read side reports the loss.
        let written = match &s.tls {
            None => s.channel.write(bytes).map(drop),
            Some(t) => t.write(&s.channel, bytes),
        };
        if written.is_ok() && !backlog {
            let mut d = self.dirty.borrow_mut();
            if !d.contains(&conn) {
                d.push(conn);
            }
        }
        if backlog {
            // The peer is behind: the engine decides whether it reads at
            // all. If not, its connection is dropped and what Tcl holds for
            // it discarded at the Close.
            let queued = s.channel.output_buffered();
            drop(socks);
            if !self.engine.borrow_mut().outbound(conn, queued) {
                self.discard.borrow_mut().push(conn);
            }
        }
    }

    fn flush(&self) {
        let dirty = std::mem::take(&mut *self.dirty.borrow_mut());
        let socks = self.socks.borrow();
        for conn in dirty {
            if let Some(s) = socks.get(&conn) {
                let _ = s.channel.flush();
            }
        }
    }
}

/// Text of a Tcl value as a Rust string.
fn text(o: &Obj) -> String {
    o.to_str().into_owned()
}

impl Comm {
    /// The comm state of `interp`, created on first use.
    pub(crate) fn of(interp: Interp<'_>) -> Rc<Comm> {
        if let Some(c) = interp.assoc_data::<Comm>(ASSOC) {
            return c;
        }
        let c = Rc::new(Comm::default());
        interp.set_assoc_data(ASSOC, c.clone());
        let weak = Rc::downgrade(&c);
        interp.on_delete(move || {
            if let Some(c) = weak.upgrade() {
                c.forget_all();
            }
        });
        c
    }

    fn chan(&self, name: &str) -> Option<Rc<Chan>> {
        self.chans.borrow().get(name).cloned()
    }

    pub(crate) fn chan_or_err(&self, name: &str) -> Result<Rc<Chan>, Exception> {
        self.chan(name).ok_or_else(|| dead_chan(name, "port"))
    }

    /// Drops every channel's sockets without talking to Tcl beyond removing
    /// handlers (used when the interpreter goes away).
    fn forget_all(&self) {
        let names: Vec<String> = self.listeners.borrow().keys().cloned().collect();
        for n in names {
            crate::listen::unlisten(self, &n);
        }
        let chans: Vec<Rc<Chan>> = self.chans.borrow_mut().drain().map(|(_, c)| c).collect();
        for c in chans {
            c.cancel_timer();
            let socks: Vec<Sock> = c.socks.borrow_mut().drain().map(|(_, s)| s).collect();
            for s in socks {
                if let Some(h) = s.handler {
                    s.channel.remove_handler(h);
                }
            }
        }
        self.futures.borrow_mut().clear();
    }

    /// Resets for a fresh load of the package (after `namespace delete
    /// ::comm`): every channel is aborted and forgotten.
    pub(crate) fn reset(self: &Rc<Self>, interp: Interp<'_>) {
        let names: Vec<String> = self.chans.borrow().keys().cloned().collect();
        for n in names {
            if let Some(c) = self.chan(&n) {
                c.engine.borrow_mut().abort();
                process(interp, self, &c, true);
            }
        }
        self.forget_all();
        *self.current.borrow_mut() = None;
        self.saved.borrow_mut().clear();
    }
}

/// Tcl's error for reading a destroyed channel's state, as tcllib's
/// procedures raise it.
fn dead_chan(name: &str, var: &str) -> Exception {
    Exception::with_errorcode(
        "TCL READ VARNAME",
        format!("can't read \"comm({name},{var})\": no such element in array"),
    )
}

/// Is hook `event` set on channel `chan`?
fn hook_set(chan: &Chan, event: &str) -> bool {
    chan.hooks.get() & hook_bit(event) != 0
}

fn chan_var(i: Interp<'_>, chan: &str, var: &str) -> String {
    i.get_var2("::comm::comm", &format!("{chan},{var}"))
        .map(|o| text(&o))
        .unwrap_or_default()
}

/// tcllib's `commBgerror`: `bgerror msg`, or a report on stderr.
fn bgerror(i: Interp<'_>, msg: &str) {
    let _ = i.eval_objv(&[Obj::string("::comm::commBgerror"), Obj::string(msg)]);
}

/// Carries out the engine's actions for `chan`. `flush` says whether
/// written data is flushed now or at idle time (bursts of `-async`).
pub(crate) fn process(i: Interp<'_>, comm: &Rc<Comm>, chan: &Rc<Chan>, flush: bool) {
    // tcllib's `remoteid` names the sender of the latest message of any
    // kind, a `vers` answer included.
    let heard = chan.engine.borrow_mut().take_heard();
    if let Some(id) = heard {
        note_message(comm, chan, &id, "");
        *chan.remoteid.borrow_mut() = Some(id);
    }
    loop {
        let action = chan.engine.borrow_mut().poll_action();
        let Some(action) = action else { break };
        match action {
            Action::Write { conn, bytes } => chan.write(conn, &bytes),
            Action::Established { .. } => {}
            Action::Evaluate(req) => {
                chan.requests.borrow_mut().push_back(req);
                schedule_run(i, comm, chan);
            }
            Action::Complete {
                serial,
                id,
                kind,
                outcome,
            } => complete(i, comm, chan, serial, id, kind, outcome),
            Action::Lost {
                conn,
                id,
                loss,
                failed,
            } => {
                // In the engine's order: failed calls, futures, the hook.
                // What tcllib's loop over the pending calls leaves in the
                // lost hook's frame: `s`, and for callbacks `ser args err`.
                let mut pending = Vec::new();
                let mut last_cb: Option<(u64, Vec<String>, String)> = None;
                for f in failed {
                    match f.kind {
                        CallKind::Sync => {
                            pending.push(f.serial.to_string());
                            chan.slots
                                .borrow_mut()
                                .insert(f.serial, Slot::Lost(Failure::from_loss(&loss)));
                        }
                        CallKind::Callback => {
                            pending.push(format!("{} callback", f.serial));
                            let cb = chan.callbacks.borrow_mut().remove(&f.serial);
                            if let Some(cb) = cb {
                                let args = CallbackArgs::from_loss(&loss)
                                    .to_list(&id, f.serial, &chan.name);
                                let err = invoke_callback(i, &cb, &args);
                                last_cb = Some((f.serial, args.to_vec(), err));
                            }
                        }
                    }
                }
                let reason = loss.to_string();
                cancel_futures(i, comm, &chan.name, conn);
                let fid = chan.closed.borrow_mut().remove(&conn).unwrap_or_default();
                if hook_set(chan, "lost") {
                    let last = match &last_cb {
                        Some((ser, args, err)) => Obj::list(&[
                            Obj::int(i64::try_from(*ser).unwrap_or(0)),
                            Obj::list_of(args),
                            Obj::string(err),
                        ]),
                        None => Obj::new(),
                    };
                    let _ = i.eval_objv(&[
                        Obj::string("::comm::commLostHook"),
                        Obj::string(&chan.name),
                        Obj::string(&fid),
                        Obj::string(id.as_str()),
                        Obj::string(&reason),
                        Obj::list_of(&pending),
                        last,
                    ]);
                }
            }
            Action::Refused { reason, .. } => {
                // Only a bad first line is tcllib's to report; our limits
                // (timeouts, the cap) close quietly.
                let silent = chan_var(i, &chan.name, "silent");
                if (reason.is_protocol() || reason.is_auth())
                    && !matches!(silent.as_str(), "1" | "true" | "yes" | "on")
                {
                    i.background_exception(&Exception::error(reason.to_string()));
                }
            }
            Action::Close { conn } => {
                let queued = chan.queued_bytes(conn);
                let s = chan.socks.borrow_mut().remove(&conn);
                if queued > TRIM_AFTER {
                    // Tcl frees the buffers once its close is done (after a
                    // last background flush); then give the memory back.
                    i.after(TRIM_DELAY_MS, tclcomm_tcl::trim_heap);
                }
                if let Some(s) = s {
                    chan.by_name.borrow_mut().remove(&s.name);
                    chan.closed.borrow_mut().insert(conn, s.name.clone());
                    if let Some(h) = s.handler {
                        s.channel.remove_handler(h);
                    }
                    let discard = {
                        let mut d = chan.discard.borrow_mut();
                        let at = d.iter().position(|c| *c == conn);
                        at.map(|at| d.swap_remove(at)).is_some()
                    };
                    if discard {
                        // A background flush to a peer that never reads
                        // would hold the buffers for good.
                        s.channel.shutdown_socket();
                    } else {
                        if let Some(t) = &s.tls {
                            t.close_notify(&s.channel);
                        }
                        let _ = s.channel.flush();
                    }
                    let _ = s.channel.close();
                }
            }
        }
    }
    arm_timer(i, comm, chan);
    if flush {
        chan.flush();
    } else if !chan.flush_scheduled.replace(true) {
        let (ir, w) = (i.preserve(), Rc::downgrade(chan));
        i.when_idle(move || {
            if let (Some(_), Some(c)) = (ir.get(), w.upgrade()) {
                c.flush_scheduled.set(false);
                c.flush();
            }
        });
    }
}

/// Arms a Tcl timer for the engine's next deadline (handshake timeouts),
/// unless one is armed for that time or earlier.
fn arm_timer(i: Interp<'_>, comm: &Rc<Comm>, chan: &Rc<Chan>) {
    let Some(at) = chan.engine.borrow_mut().poll_timeout() else {
        return;
    };
    if chan
        .timer
        .borrow()
        .as_ref()
        .is_some_and(|(armed, _)| *armed <= at)
    {
        return;
    }
    chan.cancel_timer();
    // A millisecond late rather than early: early would only re-arm.
    let ms = at.saturating_duration_since(Instant::now()).as_millis() + 1;
    let (ir, wc, wch) = (i.preserve(), Rc::downgrade(comm), Rc::downgrade(chan));
    let timer = i.after(u32::try_from(ms).unwrap_or(u32::MAX), move || {
        let (Some(i), Some(comm), Some(chan)) = (ir.get(), wc.upgrade(), wch.upgrade()) else {
            return;
        };
        chan.timer.borrow_mut().take();
        chan.engine.borrow_mut().handle_timeout(Instant::now());
        process(i, &comm, &chan, true);
    });
    *chan.timer.borrow_mut() = Some((at, timer));
}

/// Calls a `-command` callback (`uplevel #0 $callback $args`); returns its
/// result or error message (tcllib's `err`).
fn invoke_callback<S: AsRef<str>>(i: Interp<'_>, cb: &str, args: &[S]) -> String {
    let args = Obj::list_of(args.iter().map(AsRef::as_ref));
    let script = tclcomm_wire::script::concat([cb, &text(&args)]);
    match i.eval_global(&script) {
        Ok(r) => text(&r),
        Err(e) => {
            bgerror(i, &e.result);
            e.result
        }
    }
}

/// tcllib's `AsyncPrepare`, for a message that is not a request: every
/// message becomes the "current" one, so `return_async` outside a request
/// refers to the latest message (and fails if it came to another channel).
/// Inside a request's execution the request stays current (tcllib's
/// `vwait`/`update` wrappers restore it).
fn note_message(comm: &Comm, chan: &Chan, id: &Id, serial: &str) {
    if comm.depth.get() > 0 {
        return;
    }
    let conn = chan.engine.borrow().connection(id);
    if let Some(conn) = conn {
        *comm.current.borrow_mut() = Some(Current {
            chan: chan.name.clone(),
            conn,
            // A future for it answers nothing, as tcllib's answers only
            // `send` and `command`.
            kind: RequestKind::Async,
            serial: Serial(serial.to_owned()),
            future: None,
        });
    }
}

fn complete(
    i: Interp<'_>,
    comm: &Comm,
    chan: &Rc<Chan>,
    serial: u64,
    id: Id,
    kind: CallKind,
    outcome: Outcome,
) {
    note_message(comm, chan, &id, &serial.to_string());
    *chan.remoteid.borrow_mut() = Some(id.clone());
    let event = match kind {
        CallKind::Sync => "reply",
        CallKind::Callback => "callback",
    };
    let mut outcome = outcome;
    let mut code_text = outcome.code.to_string();
    if hook_set(chan, event) {
        let conn = chan.engine.borrow().connection(&id);
        let fid = conn.map(|c| chan.sock_name(c)).unwrap_or_default();
        let r = i.eval_objv(&[
            Obj::string("::comm::commReplyHook"),
            Obj::string(&chan.name),
            Obj::string(event),
            Obj::string(&fid),
            Obj::string(id.as_str()),
            Obj::int(i64::try_from(serial).unwrap_or(0)),
            Obj::string(&code_text),
            Obj::string(&outcome.errorinfo),
            Obj::string(&outcome.errorcode),
            Obj::string(&outcome.result),
        ]);
        if let Ok(l) = r
            && let Ok(items) = l.list_elements()
            && items.len() == 4
        {
            code_text = text(&items[0]);
            outcome = Outcome {
                code: Code::parse_exact(&code_text),
                errorinfo: text(&items[1]),
                errorcode: text(&items[2]),
                result: text(&items[3]),
            };
        }
    }
    match kind {
        CallKind::Sync => {
            chan.slots.borrow_mut().insert(serial, Slot::Done(outcome));
        }
        CallKind::Callback => {
            let cb = chan.callbacks.borrow_mut().remove(&serial);
            if let Some(cb) = cb {
                let mut args = CallbackArgs::from_outcome(&outcome);
                // The reply hook may have changed the code's text.
                args.code = code_text;
                let _ = invoke_callback(i, &cb, &args.to_list(&id, serial, &chan.name));
            }
        }
    }
}

/// Schedules the execution of queued requests: at idle time, as tcllib
/// does (so `update idletasks` runs them), or from Tcl's event queue,
/// whichever comes first; the first cancels the other. The queued event
/// spares the event loop a pass that waits: on Tcl 8.6's threaded notifier
/// an idle callback alone costs each request one more round trip to the
/// notifier thread (two thread switches), half of a sync round trip's cost.
fn schedule_run(i: Interp<'_>, comm: &Rc<Comm>, chan: &Rc<Chan>) {
    if chan.run_scheduled.replace(true) {
        return;
    }
    let (ir, wc, wch) = (i.preserve(), Rc::downgrade(comm), Rc::downgrade(chan));
    let idle = i.when_idle(move || run_requests(&ir, &wc, &wch));
    let (ir, wc, wch) = (i.preserve(), Rc::downgrade(comm), Rc::downgrade(chan));
    let queued = i.queue_event(move || run_requests(&ir, &wc, &wch));
    if let Some((idle, queued)) = chan.run_by.borrow_mut().replace((idle, queued)) {
        // A run that was scheduled and has not started (it cannot be).
        idle.cancel();
        queued.cancel();
    }
}

/// Executes queued requests in arrival order (an idle callback, as tcllib
/// executes from the idle queue). A script that runs the event loop lets a
/// nested run carry on with the next requests.
fn run_requests(ir: &InterpRef, wc: &Weak<Comm>, wch: &Weak<Chan>) {
    let (Some(i), Some(comm), Some(chan)) = (ir.get(), wc.upgrade(), wch.upgrade()) else {
        return;
    };
    let other = chan.run_by.borrow_mut().take();
    if let Some((idle, queued)) = other {
        // One of them is running now; the other must not run again.
        idle.cancel();
        queued.cancel();
    }
    chan.run_scheduled.set(false);
    loop {
        let req = chan.requests.borrow_mut().pop_front();
        let Some(req) = req else {
            // A burst of requests (a peer pipelining 100k of them) must
            // not keep its queue's memory for good.
            let mut q = chan.requests.borrow_mut();
            if q.capacity() > REQUESTS_KEPT {
                q.shrink_to(REQUESTS_KEPT);
            }
            break;
        };
        if chan.requests.borrow().is_empty() {
            // Nothing left for a nested run; let a later arrival schedule one.
        } else if !chan.run_scheduled.get() {
            // A nested event loop inside this request continues the queue.
            schedule_run(i, &comm, &chan);
        }
        execute(i, &comm, &chan, req);
        if i.is_deleted() {
            return;
        }
    }
}

/// Evaluates one received request and answers it (tcllib's `commExec` for
/// send/async/command).
fn execute(i: Interp<'_>, comm: &Rc<Comm>, chan: &Rc<Chan>, mut req: Request) {
    let prev_remote = chan.remoteid.replace(Some(req.id.clone()));
    let prev = comm.current.replace(Some(Current {
        chan: chan.name.clone(),
        conn: req.conn,
        kind: req.kind,
        serial: req.serial.clone(),
        future: None,
    }));
    comm.depth.set(comm.depth.get() + 1);
    let slow = hook_set(chan, "eval") || chan.has_interp.get();
    let outcome = if slow {
        let fid = chan.sock_name(req.conn);
        let r = i.eval_objv(&[
            Obj::string("::comm::commExecSlow"),
            Obj::string(&chan.name),
            Obj::string(&fid),
            Obj::string(req.id.as_str()),
            Obj::string(req.kind.name()),
            Obj::string(&req.serial.0),
            Obj::list_of(&req.script),
        ]);
        match r {
            Ok(l) => {
                let items = l.list_elements().unwrap_or_default();
                let get = |k: usize| items.get(k).map(text).unwrap_or_default();
                Outcome {
                    code: Code::parse(&get(0)),
                    result: get(1),
                    errorinfo: get(2),
                    errorcode: get(3),
                }
            }
            Err(e) => Outcome {
                code: Code::Error,
                result: e.result,
                errorinfo: e.errorinfo.unwrap_or_default(),
                errorcode: e.errorcode.unwrap_or_default(),
            },
        }
    } else if req.kind == RequestKind::Async {
        // Nothing is sent back for `async`: evaluate the concatenated
        // fragments at level #0 directly (what `uplevel #0` does), without
        // tcllib's catch frame; an error still goes to bgerror below.
        let script = tclcomm_wire::script::concat(&req.script);
        let cached = chan.last_async.borrow_mut().take();
        let obj = match cached {
            Some((text, obj)) if text == script => obj,
            _ => Obj::string(&script),
        };
        let r = {
            i.allow_exceptions();
            i.eval_objv(&[Obj::string("::uplevel"), Obj::string("#0"), obj.clone()])
        };
        *chan.last_async.borrow_mut() = Some((script, obj));
        match r {
            Ok(_) => Outcome::ok(""),
            Err(e) => Outcome::with_code(Code::from(i64::from(e.code)), e.result),
        }
    } else {
        i.eval_comm_owned(std::mem::take(&mut req.script))
    };
    let is_async = comm
        .current
        .borrow()
        .as_ref()
        .is_some_and(|c| c.future.is_some() && c.conn == req.conn && c.serial == req.serial);
    comm.depth.set(comm.depth.get().saturating_sub(1));
    if comm.depth.get() > 0 {
        // A request served inside another one's event loop: give the outer
        // one back its identity, as tcllib's `vwait`/`update` wrappers do.
        // (At top level the latest request's identity stays, as in tcllib.)
        *comm.current.borrow_mut() = prev;
        *chan.remoteid.borrow_mut() = prev_remote;
    }
    if is_async {
        return;
    }
    let ok = chan
        .engine
        .borrow_mut()
        .respond(req.conn, req.kind, &req.serial, &outcome);
    if ok {
        process(i, comm, chan, true);
    }
    if outcome.code == Code::Error {
        bgerror(i, &outcome.result);
    }
}

fn cancel_futures(i: Interp<'_>, comm: &Rc<Comm>, chan: &str, conn: ConnId) {
    let mut calls = Vec::new();
    for (name, f) in comm.futures.borrow_mut().iter_mut() {
        if f.chan == chan && f.conn == conn && !f.canceled {
            f.canceled = true;
            if !f.command.is_empty() {
                calls.push((name.clone(), f.command.clone()));
            }
        }
    }
    calls.sort();
    for (name, cmd) in calls {
        let mut l = Obj::string(&cmd);
        let script = match l.list_append(&Obj::string(&name)) {
            Ok(()) => l,
            Err(e) => {
                bgerror(i, &e.result);
                continue;
            }
        };
        if let Err(e) = i.eval_global(&text(&script)) {
            bgerror(i, &e.result);
        }
    }
}

// ---------------------------------------------------------------------------
// Rust commands called by the Tcl library.

/// The methods of a channel (tcllib's `::comm::comm_cmd_*` procedures).
const METHODS: [&str; 15] = [
    "abort",
    "channels",
    "configure",
    "connect",
    "debug",
    "destroy",
    "hook",
    "ids",
    "interps",
    "new",
    "remoteid",
    "return_async",
    "self",
    "send",
    "shutdown",
];

/// `::comm::RMethod cmd`: what tcllib's channel procedures look up with
/// `info commands ::comm::comm_cmd_$cmd*`. A full method name is the one
/// command matching it (no method name is a prefix of another); anything
/// else (a prefix, a glob pattern) asks Tcl, so the answer is the same.
pub(crate) fn cmd_method(i: Interp<'_>, _: &Rc<Comm>, objv: &[Obj]) -> Result<Obj, Exception> {
    want(i, objv, 2, "cmd")?;
    let cmd = arg(objv, 1);
    if METHODS.contains(&cmd.as_str()) {
        return Ok(Obj::string(&format!("::comm::comm_cmd_{cmd}")));
    }
    i.eval_objv(&[
        Obj::string("::info"),
        Obj::string("commands"),
        Obj::string(&format!("::comm::comm_cmd_{cmd}*")),
    ])
}

/// `::comm::RState` saves the current message and its channel's `remoteid`
/// (returning a token); `::comm::RState token` restores that save, as
/// tcllib's `vwait`/`update` wrappers do (only what existed is restored).
pub(crate) fn cmd_state(i: Interp<'_>, comm: &Rc<Comm>, objv: &[Obj]) -> Result<Obj, Exception> {
    match objv.len() {
        1 => {
            let current = comm.current.borrow().clone();
            let remote = current.as_ref().and_then(|c| {
                comm.chan(&c.chan)
                    .map(|ch| (c.chan.clone(), ch.remoteid.borrow().clone()))
            });
            let mut saved = comm.saved.borrow_mut();
            saved.push(Saved { current, remote });
            Ok(Obj::int(i64::try_from(saved.len() - 1).unwrap_or(0)))
        }
        2 => {
            let n = usize::try_from(objv[1].to_i64()?).unwrap_or(usize::MAX);
            let s = {
                let mut saved = comm.saved.borrow_mut();
                if n >= saved.len() {
                    return Ok(Obj::new());
                }
                let s = saved.swap_remove(n);
                saved.truncate(n);
                s
            };
            if s.current.is_some() {
                *comm.current.borrow_mut() = s.current;
            }
            if let Some((name, Some(id))) = s.remote
                && let Some(c) = comm.chan(&name)
            {
                *c.remoteid.borrow_mut() = Some(id);
            }
            Ok(Obj::new())
        }
        _ => Err(i.wrong_num_args(objv, 1, "?token?")),
    }
}

fn arg(objv: &[Obj], k: usize) -> String {
    objv.get(k).map(text).unwrap_or_default()
}

fn want(i: Interp<'_>, objv: &[Obj], n: usize, usage: &str) -> Result<(), Exception> {
    if objv.len() == n {
        Ok(())
    } else {
        Err(i.wrong_num_args(objv, 1, usage))
    }
}

/// `::comm::RNew chan`: creates the Rust side of a channel.
pub(crate) fn cmd_new(i: Interp<'_>, comm: &Rc<Comm>, objv: &[Obj]) -> Result<Obj, Exception> {
    want(i, objv, 2, "chan")?;
    let name = arg(objv, 1);
    // The channel's command is tcllib's procedure, created by the library.
    comm.chans
        .borrow_mut()
        .insert(name.clone(), Rc::new(Chan::new(&name)));
    Ok(Obj::new())
}

/// `::comm::RDestroy chan`: aborts and forgets a channel.
pub(crate) fn cmd_destroy(i: Interp<'_>, comm: &Rc<Comm>, objv: &[Obj]) -> Result<Obj, Exception> {
    want(i, objv, 2, "chan")?;
    let name = arg(objv, 1);
    if let Some(c) = comm.chan(&name) {
        c.engine.borrow_mut().abort();
        process(i, comm, &c, true);
        c.cancel_timer();
    }
    crate::listen::unlisten(comm, &name);
    comm.chans.borrow_mut().remove(&name);
    Ok(Obj::new())
}

/// `::comm::RSetId chan port`: the channel's own id after (re)listening.
pub(crate) fn cmd_set_id(i: Interp<'_>, comm: &Rc<Comm>, objv: &[Obj]) -> Result<Obj, Exception> {
    want(i, objv, 3, "chan port")?;
    let c = comm.chan_or_err(&arg(objv, 1))?;
    c.engine
        .borrow_mut()
        .set_own_id(Id::from_text(arg(objv, 2)));
    Ok(Obj::new())
}

/// `::comm::RHook chan event set`: the Tcl library reports a hook change.
pub(crate) fn cmd_hook(i: Interp<'_>, comm: &Rc<Comm>, objv: &[Obj]) -> Result<Obj, Exception> {
    want(i, objv, 4, "chan event set")?;
    if let Some(c) = comm.chan(&arg(objv, 1)) {
        let bit = hook_bit(&arg(objv, 2));
        let on = objv[3].to_bool()?;
        c.hooks.set(if on {
            c.hooks.get() | bit
        } else {
            c.hooks.get() & !bit
        });
    }
    Ok(Obj::new())
}

/// `::comm::RInterp chan set`: whether received scripts go to an `-interp`.
pub(crate) fn cmd_interp(i: Interp<'_>, comm: &Rc<Comm>, objv: &[Obj]) -> Result<Obj, Exception> {
    want(i, objv, 3, "chan set")?;
    if let Some(c) = comm.chan(&arg(objv, 1)) {
        c.has_interp.set(objv[2].to_bool()?);
    }
    Ok(Obj::new())
}

/// `::comm::RSerial chan`.
pub(crate) fn cmd_serial(i: Interp<'_>, comm: &Rc<Comm>, objv: &[Obj]) -> Result<Obj, Exception> {
    want(i, objv, 2, "chan")?;
    let name = arg(objv, 1);
    let c = comm.chan(&name).ok_or_else(|| dead_chan(&name, "serial"))?;
    let s = c.engine.borrow().serial();
    Ok(Obj::int(i64::try_from(s).unwrap_or(i64::MAX)))
}

/// `::comm::RIds chan`: one id per established connection.
pub(crate) fn cmd_ids(i: Interp<'_>, comm: &Rc<Comm>, objv: &[Obj]) -> Result<Obj, Exception> {
    want(i, objv, 2, "chan")?;
    let c = comm.chan_or_err(&arg(objv, 1))?;
    let ids = c.engine.borrow().ids();
    Ok(Obj::list_of(ids.iter().map(|id| id.as_str())))
}

/// `::comm::RRemoteid chan`.
pub(crate) fn cmd_remoteid(i: Interp<'_>, comm: &Rc<Comm>, objv: &[Obj]) -> Result<Obj, Exception> {
    want(i, objv, 2, "chan")?;
    let c = comm.chan(&arg(objv, 1));
    match c.and_then(|c| c.remoteid.borrow().clone()) {
        Some(id) => Ok(Obj::string(id.as_str())),
        None => Err(Exception::error("No remote commands processed yet")),
    }
}

/// `::comm::RPeer chan id`: the socket carrying sends to `id`, or "".
pub(crate) fn cmd_peer(i: Interp<'_>, comm: &Rc<Comm>, objv: &[Obj]) -> Result<Obj, Exception> {
    want(i, objv, 3, "chan id")?;
    // A destroyed channel has no connection; commConnect then fails on its
    // settings, as tcllib's does.
    let Some(c) = comm.chan(&arg(objv, 1)) else {
        return Ok(Obj::new());
    };
    let conn = c.engine.borrow().connection(&Id::from_text(arg(objv, 2)));
    Ok(Obj::string(
        &conn.map(|k| c.sock_name(k)).unwrap_or_default(),
    ))
}

/// `::comm::RShutdown chan id`.
pub(crate) fn cmd_shutdown(i: Interp<'_>, comm: &Rc<Comm>, objv: &[Obj]) -> Result<Obj, Exception> {
    want(i, objv, 3, "chan id")?;
    let c = comm.chan_or_err(&arg(objv, 1))?;
    let r = c.engine.borrow_mut().shutdown(&Id::from_text(arg(objv, 2)));
    process(i, comm, &c, true);
    Ok(Obj::string(r.unwrap_or("")))
}

/// `::comm::RAbort chan`.
pub(crate) fn cmd_abort(i: Interp<'_>, comm: &Rc<Comm>, objv: &[Obj]) -> Result<Obj, Exception> {
    want(i, objv, 2, "chan")?;
    if let Some(c) = comm.chan(&arg(objv, 1)) {
        c.engine.borrow_mut().abort();
        process(i, comm, &c, true);
    }
    Ok(Obj::new())
}

fn register_sock(
    i: Interp<'_>,
    comm: &Rc<Comm>,
    c: &Rc<Chan>,
    conn: ConnId,
    name: &str,
    outgoing_host: Option<&str>,
) -> Result<(), Exception> {
    let channel = i.channel(name)?;
    let raw = matches!(
        chan_var(i, &c.name, "socketcmd").as_str(),
        "::socket" | "socket"
    );
    // rustls only over a plain socket: a stacked channel (tcl-tls through
    // -socketcmd) already does TLS.
    let settings = c.tls.borrow().clone().filter(|_| raw);
    let tls = match settings {
        Some(t) => Some(t.session(outgoing_host).map_err(Exception::error)?),
        None => None,
    };
    channel.configure("-translation", "binary")?;
    if !raw {
        // Writes stay raw bytes (Tcl_Write); reads decode UTF-8. On Tcl 9
        // the channel's decoder would stall at a peer's invalid UTF-8 and
        // then fail the connection (strict profile) or take bytes 80..9F
        // as cp1252 (profile tcl8): reads stay bytes (`-translation binary`)
        // and the engine decodes them, as on a plain socket (README:
        // invalid UTF-8).
        if !TCL9 {
            channel.configure("-encoding", "utf-8")?;
        }
    }
    channel.configure("-blocking", "0")?;
    channel.configure("-buffersize", BUFFER_SIZE)?;
    let (ir, wc, wch) = (i.preserve(), Rc::downgrade(comm), Rc::downgrade(c));
    let handler = channel.on_readable(move || on_readable(&ir, &wc, &wch, conn))?;
    if let Some(t) = &tls {
        t.start(&channel);
    }
    c.by_name.borrow_mut().insert(name.to_owned(), conn);
    c.socks.borrow_mut().insert(
        conn,
        Sock {
            name: name.to_owned(),
            channel,
            handler: Some(handler),
            raw,
            tls,
        },
    );
    Ok(())
}

/// Whether the Tcl notifier cannot watch the socket `name` (asking it to
/// would abort the process: Tcl 8.6's `FD_SET`); if so it is closed here
/// and counted.
fn refuse_unwatchable(i: Interp<'_>, comm: &Comm, name: &str) -> bool {
    let Ok(channel) = i.channel(name) else {
        return false;
    };
    match channel.os_handle() {
        Some(fd) if !tclcomm_tcl::notifier_can_watch(fd) => {
            comm.stats.unwatchable.set(comm.stats.unwatchable.get() + 1);
            let _ = channel.close();
            true
        }
        _ => false,
    }
}

/// `::comm::RStats chan`: the interpreter's socket-layer counters, as a
/// dict (`unwatchable`: sockets closed because the notifier cannot watch
/// them; `backoffs`: pauses of a listener after a failed accept; `queued`:
/// bytes written to the channel's connections and not yet sent).
pub(crate) fn cmd_stats(i: Interp<'_>, comm: &Rc<Comm>, objv: &[Obj]) -> Result<Obj, Exception> {
    want(i, objv, 2, "chan")?;
    let queued: usize = match comm.chan(&arg(objv, 1)) {
        Some(c) => {
            let conns: Vec<ConnId> = c.socks.borrow().keys().copied().collect();
            conns.into_iter().map(|k| c.queued_bytes(k)).sum()
        }
        None => 0,
    };
    Ok(Obj::list_of([
        "unwatchable",
        &comm.stats.unwatchable.get().to_string(),
        "backoffs",
        &comm.stats.backoffs.get().to_string(),
        "queued",
        &queued.to_string(),
    ]))
}

/// `::comm::RConnected chan id fid`: a new outgoing connection.
pub(crate) fn cmd_connected(
    i: Interp<'_>,
    comm: &Rc<Comm>,
    objv: &[Obj],
) -> Result<Obj, Exception> {
    want(i, objv, 4, "chan id fid")?;
    let c = comm.chan_or_err(&arg(objv, 1))?;
    let fid = arg(objv, 3);
    // Configure before the engine knows the connection: a bad channel name
    // must not leave a connection behind.
    i.channel(&fid)?;
    if refuse_unwatchable(i, comm, &fid) {
        return Err(Exception::with_errorcode(
            "POSIX EMFILE {too many open files}",
            "couldn't open socket: too many open files",
        ));
    }
    let id = Id::from_text(arg(objv, 2));
    let host = id.host();
    let conn = c.engine.borrow_mut().outgoing(id);
    if let Err(e) = register_sock(i, comm, &c, conn, &fid, Some(&host)) {
        c.engine.borrow_mut().close_conn(conn, Loss::Closed);
        // Not registered: nothing else closes it (a TLS setting missing).
        if let Ok(ch) = i.channel(&fid) {
            let _ = ch.close();
        }
        process(i, comm, &c, true);
        return Err(e);
    }
    process(i, comm, &c, true);
    Ok(Obj::string(&fid))
}

/// `::comm::RAccepted chan fid addr remport`: a new incoming connection.
pub(crate) fn cmd_accepted(i: Interp<'_>, comm: &Rc<Comm>, objv: &[Obj]) -> Result<Obj, Exception> {
    want(i, objv, 5, "chan fid addr remport")?;
    let c = comm.chan_or_err(&arg(objv, 1))?;
    let fid = arg(objv, 2);
    let channel = i.channel(&fid)?;
    if refuse_unwatchable(i, comm, &fid) {
        // Counted, not reported: a flood must not flood stderr too.
        return Ok(Obj::new());
    }
    let local = channel.cget("-sockname").unwrap_or_default();
    let local = Obj::string(&local)
        .list_index(0)
        .ok()
        .flatten()
        .map(|o| text(&o))
        .unwrap_or_default();
    drop(channel);
    let port: u16 = arg(objv, 4).parse().unwrap_or(0);
    // At the connection cap the engine may refuse it at once: its Close,
    // carried out by `process` below, closes the registered socket.
    let loopback_only = matches!(
        chan_var(i, &c.name, "local").as_str(),
        "1" | "true" | "yes" | "on"
    );
    let conn = {
        let mut e = c.engine.borrow_mut();
        if e.config().loopback_only != loopback_only {
            let mut config = e.config().clone();
            config.loopback_only = loopback_only;
            e.set_limits(&config);
        }
        e.accepted(&arg(objv, 3), port, &local, std::time::Instant::now())
    };
    if let Err(e) = register_sock(i, comm, &c, conn, &fid, None) {
        c.engine.borrow_mut().close_conn(conn, Loss::Closed);
        if let Ok(ch) = i.channel(&fid) {
            let _ = ch.close();
        }
        process(i, comm, &c, true);
        return Err(e);
    }
    process(i, comm, &c, true);
    Ok(Obj::new())
}

/// Built for Tcl 9 (see where stacked channels are configured).
const TCL9: bool = tclcomm_tcl::sys::TCL_MAJOR >= 9;

/// The most bytes taken from one socket in one readable event before the
/// other sockets get their turn (the rest stays for the next event).
const READ_PER_EVENT: usize = 64 * READ_CHUNK;

/// Reads what the socket has (bounded per event) into `buf`, one chunk
/// at a time, handing each chunk to the engine; returns whether the
/// connection ended. `buf` is reused from event to event: only its length
/// changes, so no read allocates or copies a buffer once it has grown to
/// [`READ_CHUNK`].
fn read_available(chan: &Chan, conn: ConnId, buf: &mut Vec<u8>) -> Result<bool, String> {
    let mut total = 0;
    loop {
        buf.clear();
        let (n, eof) = {
            let socks = chan.socks.borrow();
            let Some(s) = socks.get(&conn) else {
                return Ok(false);
            };
            if !s.raw {
                let read = if TCL9 {
                    s.channel.read_binary(READ_CHUNK)
                } else {
                    s.channel.read_chars(READ_CHUNK).map(String::into_bytes)
                };
                match read {
                    Ok(t) if t.is_empty() => (0, s.channel.eof()),
                    Ok(t) => {
                        buf.extend_from_slice(&t);
                        (buf.len(), false)
                    }
                    Err(_) => (0, true),
                }
            } else {
                match s.channel.read_raw(buf, READ_CHUNK) {
                    Ok(0) => (0, s.channel.eof()),
                    // TLS: `buf` becomes the plaintext the records carried.
                    Ok(n) => match &s.tls {
                        None => (n, false),
                        Some(t) => (n, t.received(&s.channel, buf)?),
                    },
                    Err(_) => (0, true),
                }
            }
        };
        if n == 0 {
            return Ok(eof);
        }
        if !buf.is_empty() {
            chan.engine.borrow_mut().received(conn, buf);
        }
        if eof {
            return Ok(true);
        }
        total += n;
        // A short read drained the socket (and the channel's buffer): a
        // second read would only fail with EAGAIN. A stacked channel
        // (TLS) may hold decoded data back, so it is read until empty.
        let raw = chan.socks.borrow().get(&conn).is_some_and(|s| s.raw);
        if (raw && n < READ_CHUNK) || total >= READ_PER_EVENT {
            return Ok(false);
        }
    }
}

fn on_readable(ir: &InterpRef, wc: &Weak<Comm>, wch: &Weak<Chan>, conn: ConnId) {
    let (Some(i), Some(comm), Some(chan)) = (ir.get(), wc.upgrade(), wch.upgrade()) else {
        return;
    };
    let read = {
        // One buffer for every socket of the interpreter: reads do not
        // nest (nothing here evaluates Tcl), and one grown buffer is all
        // the read path holds however many connections there are.
        let mut buf = comm.read_buf.borrow_mut();
        read_available(&chan, conn, &mut buf)
    };
    match read {
        Ok(false) => {}
        Ok(true) => chan.engine.borrow_mut().closed(conn),
        // A TLS failure: the calls waiting on the connection fail with it.
        Err(reason) => chan
            .engine
            .borrow_mut()
            .close_conn(conn, Loss::Other(reason)),
    }
    process(i, &comm, &chan, true);
}

// ---------------------------------------------------------------------------
// send

/// `::comm::comm_cmd_send chan ?-async | -command callback? id cmd ?arg
/// ...?`: the `send` method, reached as in tcllib through the channel's
/// procedure (`uplevel 1 [linsert $args 0 $method $chan]`), so errors show
/// tcllib's frames. `objv` is the whole command.
pub(crate) fn send(i: Interp<'_>, comm: &Rc<Comm>, objv: &[Obj]) -> Result<Obj, Exception> {
    if objv.len() < 2 {
        return Err(i.wrong_num_args(objv, 1, "chan ?arg ...?"));
    }
    let chan_name = text(&objv[1]);
    let args = &objv[2..];
    let mut k = 0;
    let mut kind = RequestKind::Send;
    let mut callback = String::new();
    match args.first().map(|a| a.to_str()).as_deref() {
        Some("-async") => {
            kind = RequestKind::Async;
            k = 1;
        }
        Some("-command") => {
            kind = RequestKind::Command;
            callback = arg(args, 1);
            k = 2;
        }
        _ => {}
    }
    let id_obj = args.get(k).cloned().unwrap_or_default();
    let frags = args.get(k + 1..).unwrap_or_default();
    if frags.is_empty() {
        return Err(Exception::error(
            "wrong # args: should be \"send ?-async? id arg ?arg ...?\"",
        ));
    }
    let id = Id::from_text(text(&id_obj));
    let chan = comm.chan(&chan_name);
    let connected = chan
        .as_ref()
        .is_some_and(|c| c.engine.borrow().connection(&id).is_some());
    if !connected || chan.as_ref().is_some_and(|c| hook_set(c, "connecting")) {
        let r = i.eval_objv(&[
            Obj::string("::comm::commConnect"),
            Obj::string(&chan_name),
            id_obj.clone(),
        ]);
        let fid = match r {
            Ok(fid) => text(&fid),
            Err(e) => {
                // tcllib: `return -code error "Connect to remote failed:
                // $fid"`, a fresh error (errorCode NONE, errorInfo from
                // here on).
                i.reset_result();
                return Err(Exception::error(format!(
                    "Connect to remote failed: {}",
                    e.result
                )));
            }
        };
        let known = chan
            .as_ref()
            .is_some_and(|c| c.by_name.borrow().contains_key(&fid));
        if !known {
            // A `connecting` hook did `return x`: tcllib takes a serial,
            // then fails to write to "socket" x.
            if let Some(c) = &chan {
                c.engine.borrow_mut().skip_serial();
            }
            return Err(Exception::with_errorcode(
                format!("TCL LOOKUP CHANNEL {}", text(&Obj::list_of([&fid]))),
                format!("can not find channel named \"{fid}\""),
            ));
        }
    }
    let chan = comm.chan_or_err(&chan_name)?;
    let script: Vec<String> = frags.iter().map(text).collect();
    let serial = chan
        .engine
        .borrow_mut()
        .send(&id, kind, script)
        .map_err(|e| Exception::error(format!("Connect to remote failed: {e}")))?;
    match kind {
        RequestKind::Async => {
            process(i, comm, &chan, false);
            Ok(Obj::new())
        }
        RequestKind::Command => {
            chan.callbacks.borrow_mut().insert(serial, callback);
            process(i, comm, &chan, true);
            Ok(Obj::int(i64::try_from(serial).unwrap_or(i64::MAX)))
        }
        RequestKind::Send => {
            chan.slots.borrow_mut().insert(serial, Slot::Waiting);
            process(i, comm, &chan, true);
            wait(i, comm, &chan, serial, objv)
        }
    }
}

/// Runs the event loop until the answer to `serial` is in (tcllib's
/// `vwait`), keeping the identity of the request being served, as
/// tcllib's `vwait` wrapper does.
fn wait(
    i: Interp<'_>,
    comm: &Rc<Comm>,
    chan: &Rc<Chan>,
    serial: u64,
    objv: &[Obj],
) -> Result<Obj, Exception> {
    let saved = comm.current.borrow().clone();
    let saved_remote = saved
        .as_ref()
        .and_then(|c| comm.chan(&c.chan))
        .map(|c| (c.clone(), c.remoteid.borrow().clone()));
    let done = || !matches!(chan.slots.borrow().get(&serial), Some(Slot::Waiting));
    while !done() {
        i.do_one_event(EventFlags::ALL);
        if i.is_deleted() {
            break;
        }
    }
    if saved.is_some() {
        *comm.current.borrow_mut() = saved;
    }
    if let Some((c, r)) = saved_remote {
        *c.remoteid.borrow_mut() = r;
    }
    let slot = chan.slots.borrow_mut().remove(&serial);
    match slot {
        Some(Slot::Done(o)) => sync_answer(i, o, objv),
        Some(Slot::Lost(failure)) => {
            // tcllib: `return -code error $reason`.
            i.reset_result();
            Err(Exception::error(failure.message))
        }
        _ => Err(Exception::error("interpreter deleted")),
    }
}

/// What tcllib's `send` makes of an answer: `switch -- $return(-code)
/// {"" - 0 {return $result} 1 {return -code 1 -errorinfo .. -errorcode ..
/// $result} default {return -code $code $result}}`. Codes other than 0 and
/// 1 are returned as such, and the channel's procedure turns break and
/// continue into Tcl's errors, as tcllib's does.
fn sync_answer(i: Interp<'_>, o: Outcome, objv: &[Obj]) -> Result<Obj, Exception> {
    let code = match &o.code {
        Code::Invalid(t) if t.is_empty() => Code::Ok,
        Code::Invalid(t) => match Code::parse(t) {
            // `return -code error`: a plain error.
            Code::Error => {
                i.reset_result();
                return Err(Exception::error(o.result));
            }
            Code::Invalid(_) => {
                return Err(Exception::with_errorcode(
                    "TCL RESULT ILLEGAL_CODE",
                    format!(
                        "bad completion code \"{t}\": must be ok, error, return, break, continue, or an integer"
                    ),
                ));
            }
            c => c,
        },
        c => c.clone(),
    };
    match code {
        Code::Ok | Code::Return => Ok(Obj::string(&o.result)),
        Code::Error => {
            // `return -errorinfo` leaves the remote errorInfo logged: Tcl
            // adds the frame of the call of tcllib's `comm_cmd_send`, not
            // of the `return`.
            let info = format!(
                "{}\n    invoked from within\n\"{}\"",
                o.errorinfo,
                command_text(objv)
            );
            // The call is line 1 of the `uplevel` in the channel's
            // procedure.
            Err(Exception::with_options(1, o.result, Some(info), Some(o.errorcode)).at_line(1))
        }
        c => Err(Exception::with_options(
            i32::try_from(c.number().unwrap_or(1)).unwrap_or(1),
            o.result,
            None,
            None,
        )),
    }
}

/// A command as Tcl's error log quotes it: the words as a list, cut at 150
/// characters with `...`.
fn command_text(objv: &[Obj]) -> String {
    let t = text(&Obj::list(objv));
    if t.len() <= 150 {
        return t;
    }
    let cut: String = t.chars().take(150).collect();
    format!("{cut}...")
}

// ---------------------------------------------------------------------------
// return_async and futures

/// `::comm::RReturnAsync chan`.
pub(crate) fn cmd_return_async(
    i: Interp<'_>,
    comm: &Rc<Comm>,
    objv: &[Obj],
) -> Result<Obj, Exception> {
    want(i, objv, 2, "chan")?;
    let chan = arg(objv, 1);
    let mut cur = comm.current.borrow_mut();
    let Some(c) = cur.as_mut() else {
        return Err(Exception::error("No remote commands processed yet"));
    };
    if let Some(f) = &c.future {
        return Ok(Obj::string(f));
    }
    if c.chan != chan {
        return Err(Exception::error(
            "Internal error: Trying to activate async return for a command on a different channel",
        ));
    }
    // snit's `%AUTO%` names: tcllib's futures are ::comm::future1, 3, 5...
    // (snit's counter also numbers each instance's namespace).
    let n = comm.next_future.get() + 1;
    comm.next_future.set(n + 1);
    let name = format!("::comm::future{n}");
    comm.futures.borrow_mut().insert(
        name.clone(),
        Future {
            chan: c.chan.clone(),
            conn: c.conn,
            kind: c.kind,
            serial: c.serial.clone(),
            canceled: false,
            command: String::new(),
        },
    );
    c.future = Some(name.clone());
    drop(cur);
    let (cm, fname) = (comm.clone(), name.clone());
    i.create_command(&name, move |i, objv| future_cmd(i, &cm, &fname, objv));
    Ok(Obj::string(&name))
}

fn future_cmd(i: Interp<'_>, comm: &Rc<Comm>, name: &str, objv: &[Obj]) -> Result<Obj, Exception> {
    if objv.len() < 2 {
        return Err(Exception::with_errorcode(
            "TCL WRONGARGS",
            format!("wrong # args: should be \"{name} subcommand ?arg ...?\""),
        ));
    }
    let method = arg(objv, 1);
    let rest = objv.get(2..).unwrap_or_default();
    let with = |f: &mut dyn FnMut(&mut Future) -> Result<Obj, Exception>| match comm
        .futures
        .borrow_mut()
        .get_mut(name)
    {
        Some(fu) => f(fu),
        None => Err(Exception::error(format!("invalid command name \"{name}\""))),
    };
    match method.as_str() {
        "return" => {
            let mut rcode = String::from("0");
            let mut args = rest;
            while args.first().is_some_and(|a| a.to_str() == "-code") {
                rcode = arg(args, 1);
                args = args.get(2..).unwrap_or_default();
            }
            if args.len() > 1 {
                return Err(Exception::error(
                    "wrong#args, expected \"?-code errcode? ?result?\"",
                ));
            }
            let value = arg(args, 0);
            let fu = comm.futures.borrow_mut().remove(name);
            i.delete_command(name);
            if let Some(fu) = fu
                && !fu.canceled
            {
                future_done(i, comm, &fu, &rcode, &value);
            }
            Ok(Obj::new())
        }
        "cget" => {
            if rest.len() != 1 {
                return Err(i.wrong_num_args(objv, 2, "option"));
            }
            let opt = arg(rest, 0);
            if opt != "-command" {
                return Err(Exception::error(format!("unknown option \"{opt}\"")));
            }
            with(&mut |fu| Ok(Obj::string(&fu.command)))
        }
        "configure" => match rest.len() {
            0 => with(&mut |fu| {
                Ok(Obj::list(&[Obj::list_of([
                    "-command",
                    "command",
                    "Command",
                    "",
                    &fu.command,
                ])]))
            }),
            1 => {
                let opt = arg(rest, 0);
                if opt != "-command" {
                    return Err(Exception::error(format!("unknown option \"{opt}\"")));
                }
                with(&mut |fu| {
                    Ok(Obj::list_of([
                        "-command",
                        "command",
                        "Command",
                        "",
                        &fu.command,
                    ]))
                })
            }
            _ => {
                // snit: `foreach {option value} $args`, so a last option
                // without a value is set to "".
                let mut pairs = Vec::new();
                for p in rest.chunks(2) {
                    let opt = text(&p[0]);
                    if opt != "-command" {
                        return Err(Exception::error(format!("unknown option \"{opt}\"")));
                    }
                    pairs.push(p.get(1).map(text).unwrap_or_default());
                }
                with(&mut |fu| {
                    for v in &pairs {
                        fu.command = v.clone();
                    }
                    Ok(Obj::new())
                })
            }
        },
        "destroy" => {
            let canceled = with(&mut |fu| Ok(Obj::boolean(fu.canceled)))?;
            if canceled.to_bool().unwrap_or(false) {
                comm.futures.borrow_mut().remove(name);
                i.delete_command(name);
                Ok(Obj::new())
            } else {
                Err(Exception::error(format!(
                    "Illegal attempt to destroy unresolved future \"{name}\""
                )))
            }
        }
        "Cancel" => {
            let cmd = with(&mut |fu| {
                fu.canceled = true;
                Ok(Obj::string(&fu.command))
            })?;
            if !cmd.to_str().is_empty() {
                let mut l = cmd;
                l.list_append(&Obj::string(name))?;
                i.eval_global(&text(&l))?;
            }
            Ok(Obj::new())
        }
        // snit's introspection, as far as it is not snit's internals.
        "info" => match rest.first().map(text).as_deref() {
            None => Err(Exception::with_errorcode(
                "TCL WRONGARGS",
                format!("wrong # args: should be \"{name} info command ?arg ...?\""),
            )),
            Some("type") => Ok(Obj::string("::comm::future")),
            Some("options") => Ok(Obj::string("-command")),
            Some(sub) => Err(Exception::with_errorcode(
                format!("TCL LOOKUP SUBCOMMAND {}", text(&Obj::list_of([sub]))),
                format!("unknown subcommand \"{sub}\": must be options, or type"),
            )),
        },
        _ => Err(Exception::with_errorcode(
            format!("TCL LOOKUP SUBCOMMAND {}", text(&Obj::list_of([&method]))),
            format!("unknown subcommand \"{method}\": must be cget, configure, or destroy"),
        )),
    }
}

fn future_done(i: Interp<'_>, comm: &Rc<Comm>, fu: &Future, rcode: &str, value: &str) {
    let Some(chan) = comm.chan(&fu.chan) else {
        return;
    };
    // tcllib writes `return -code <rcode>` as given (`ok` stays `ok`), and
    // adds the (current, global) errorInfo and errorCode, and reports a
    // background error, only when `$rcode == 1`.
    let is_one = is_one(rcode);
    let code = if is_one {
        Code::Error
    } else {
        Code::parse_exact(rcode)
    };
    let (errorinfo, errorcode) = if is_one {
        (
            i.get_var("::errorInfo")
                .map(|o| text(&o))
                .unwrap_or_default(),
            i.get_var("::errorCode")
                .map(|o| text(&o))
                .unwrap_or_default(),
        )
    } else {
        (String::new(), String::new())
    };
    let outcome = Outcome {
        code,
        result: value.to_owned(),
        errorinfo,
        errorcode,
    };
    let ok = chan
        .engine
        .borrow_mut()
        .respond(fu.conn, fu.kind, &fu.serial, &outcome);
    if ok {
        process(i, comm, &chan, true);
    }
    if is_one {
        bgerror(i, value);
    }
}

/// Tcl's `$x == 1` for a completion code given as text: numeric equality
/// (integers in Tcl's syntax, or reals), else string equality.
fn is_one(text: &str) -> bool {
    match Code::parse(text) {
        Code::Error => text != "error",
        Code::Invalid(t) => t.trim().parse::<f64>().is_ok_and(|x| x == 1.0),
        _ => false,
    }
}

// ---------------------------------------------------------------------------
// Limits

/// The options of `::comm::limits`, in the order it lists them.
const LIMIT_OPTIONS: [&str; 6] = [
    "-handshaketimeout",
    "-maxconnections",
    "-maxoutbound",
    "-maxmessage",
    "-maxbuffered",
    "-maxnesting",
];

fn limit_value(c: &EngineConfig, option: &str) -> i64 {
    let n = match option {
        "-handshaketimeout" => {
            usize::try_from(c.handshake_timeout.as_millis()).unwrap_or(usize::MAX)
        }
        "-maxconnections" => c.max_connections,
        "-maxoutbound" => c.max_outbound,
        "-maxmessage" => c.max_message,
        "-maxbuffered" => c.max_buffered,
        _ => c.max_nesting,
    };
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `::comm::limits chan ?-option? ?-option value ...?`: the engine's limits
/// of a channel (tcllib has none; `configure` keeps listing exactly
/// tcllib's options). With only `chan`, a dict of every option; with one
/// option, its value; with pairs, sets them (a value of 0 or less is
/// refused). `-handshaketimeout` is in milliseconds, the sizes in bytes.
pub(crate) fn cmd_limits(i: Interp<'_>, comm: &Rc<Comm>, objv: &[Obj]) -> Result<Obj, Exception> {
    if objv.len() < 2 {
        return Err(i.wrong_num_args(objv, 1, "chan ?-option? ?-option value ...?"));
    }
    let c = comm.chan_or_err(&arg(objv, 1))?;
    let known = |o: &str| -> Result<(), Exception> {
        if LIMIT_OPTIONS.contains(&o) {
            Ok(())
        } else {
            Err(Exception::error(format!(
                "bad option \"{o}\": must be {}",
                LIMIT_OPTIONS.join(", ")
            )))
        }
    };
    let rest = &objv[2..];
    if rest.is_empty() {
        let config = c.engine.borrow().config().clone();
        let mut out = Obj::list(&[]);
        for o in LIMIT_OPTIONS {
            out.list_append(&Obj::string(o))?;
            out.list_append(&Obj::int(limit_value(&config, o)))?;
        }
        return Ok(out);
    }
    if rest.len() == 1 {
        let o = text(&rest[0]);
        known(&o)?;
        return Ok(Obj::int(limit_value(c.engine.borrow().config(), &o)));
    }
    if !rest.len().is_multiple_of(2) {
        return Err(Exception::error(format!(
            "value for \"{}\" missing",
            arg(rest, rest.len() - 1)
        )));
    }
    let mut config = c.engine.borrow().config().clone();
    for pair in rest.chunks(2) {
        let o = text(&pair[0]);
        known(&o)?;
        let v = text(&pair[1]);
        let n = v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| {
                Exception::error(format!(
                    "expected a positive integer for {o} but got \"{v}\""
                ))
            })?;
        match o.as_str() {
            "-handshaketimeout" => config.handshake_timeout = Duration::from_millis(n as u64),
            "-maxconnections" => config.max_connections = n,
            "-maxoutbound" => config.max_outbound = n,
            "-maxmessage" => config.max_message = n,
            "-maxbuffered" => config.max_buffered = n,
            _ => config.max_nesting = n,
        }
    }
    c.engine.borrow_mut().set_limits(&config);
    Ok(Obj::new())
}

// ---------------------------------------------------------------------------
// Authentication

/// `::comm::auth chan ?-option value ...?`: mutual authentication of a
/// channel with a shared secret (see the README and docs/auth-protocol.md).
/// Options: `-secret TEXT` (given directly), `-cookie FILE` (read from a
/// file only its owner may read, created with a fresh secret when
/// missing), `-required BOOL` (refuse peers that do not authenticate, such
/// as tcllib's), `-off 1` (back to plain comm). With only `chan`, a dict
/// `-enabled B -required B` (the secret is never shown). Applies to
/// connections made from now on.
pub(crate) fn cmd_auth(i: Interp<'_>, comm: &Rc<Comm>, objv: &[Obj]) -> Result<Obj, Exception> {
    if objv.len() < 2 {
        return Err(i.wrong_num_args(objv, 1, "chan ?-option value ...?"));
    }
    let c = comm.chan_or_err(&arg(objv, 1))?;
    let rest = &objv[2..];
    let mut config = c.engine.borrow().config().clone();
    if rest.is_empty() {
        let (on, required) = config
            .auth
            .as_ref()
            .map_or((false, false), |a| (true, a.required));
        return Ok(Obj::list_of([
            "-enabled",
            if on { "1" } else { "0" },
            "-required",
            if required { "1" } else { "0" },
        ]));
    }
    if !rest.len().is_multiple_of(2) {
        return Err(Exception::error(format!(
            "value for \"{}\" missing",
            arg(rest, rest.len() - 1)
        )));
    }
    let mut secret = config.auth.as_ref().map(|a| a.secret.clone());
    let mut required = config.auth.as_ref().is_some_and(|a| a.required);
    for pair in rest.chunks(2) {
        let (o, v) = (text(&pair[0]), &pair[1]);
        match o.as_str() {
            "-secret" => {
                let s = text(v);
                if s.is_empty() {
                    return Err(Exception::error("the secret is empty"));
                }
                secret = Some(tclcomm_wire::auth::Secret::new(s.into_bytes()));
            }
            "-cookie" => {
                let path = std::path::PathBuf::from(text(v));
                let s = tclcomm_wire::auth::read_or_create_cookie(&path)
                    .map_err(|e| Exception::error(e.to_string()))?;
                secret = Some(s);
            }
            "-required" => required = v.to_bool()?,
            "-off" => {
                if v.to_bool()? {
                    secret = None;
                    required = false;
                }
            }
            _ => {
                return Err(Exception::error(format!(
                    "bad option \"{o}\": must be -secret, -cookie, -required, or -off"
                )));
            }
        }
    }
    config.auth = match secret {
        Some(secret) => Some(tclcomm_wire::auth::AuthConfig { secret, required }),
        None if required => {
            return Err(Exception::error(
                "-required needs a secret: give -secret or -cookie",
            ));
        }
        None => None,
    };
    c.engine.borrow_mut().set_limits(&config);
    Ok(Obj::new())
}
