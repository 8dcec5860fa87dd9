//! The Tcl event loop: [`Interp::do_one_event`], timers, idle callbacks,
//! interpreter-deletion and exit handlers.
//!
//! Callbacks live in a thread-local registry keyed by a number; Tcl gets the
//! number as its `ClientData`. Cancelling removes the entry first, so a
//! token cancelled after its callback ran (or twice) is harmless. A panic in
//! a callback is caught and reported as a background error (errorCode
//! `RUST PANIC`) on the interpreter that registered it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::c_int;
use std::marker::PhantomData;
use std::ops::BitOr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::interp::guarded;
use crate::sys;
use crate::{Exception, Interp, InterpRef};

/// Which events [`Interp::do_one_event`] processes (`TCL_*_EVENTS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventFlags(i32);

impl EventFlags {
    /// All event kinds (`TCL_ALL_EVENTS`); blocks until one is processed.
    pub const ALL: EventFlags = EventFlags(sys::TCL_ALL_EVENTS);
    /// Do not block (`TCL_DONT_WAIT`); combine with a kind.
    pub const DONT_WAIT: EventFlags = EventFlags(sys::TCL_DONT_WAIT);
    /// Window-system events.
    pub const WINDOW: EventFlags = EventFlags(sys::TCL_WINDOW_EVENTS);
    /// File and channel events, and events queued from other threads.
    pub const FILE: EventFlags = EventFlags(sys::TCL_FILE_EVENTS);
    /// Timers.
    pub const TIMER: EventFlags = EventFlags(sys::TCL_TIMER_EVENTS);
    /// Idle callbacks.
    pub const IDLE: EventFlags = EventFlags(sys::TCL_IDLE_EVENTS);

    /// The raw flag bits.
    pub fn bits(self) -> i32 {
        self.0
    }
}

impl BitOr for EventFlags {
    type Output = EventFlags;
    fn bitor(self, rhs: EventFlags) -> EventFlags {
        EventFlags(self.0 | rhs.0)
    }
}

enum Callback {
    Once(Box<dyn FnOnce()>),
    Many(std::rc::Rc<dyn Fn()>),
}

struct Entry {
    cb: Callback,
    /// Where a panic is reported.
    interp: Option<InterpRef>,
}

/// The callbacks of this thread, by id.
#[derive(Default)]
struct Registry(HashMap<usize, Entry>);

impl Drop for Registry {
    /// The thread is ending (for the main thread: the process is exiting,
    /// from `exit()` after Tcl has run its exit handlers). Entries still
    /// here belong to handlers Tcl never fired or removed; dropping them
    /// would call `Tcl_Release` and `Tcl_DecrRefCount` into a Tcl that may
    /// already be finalised (Tcl 9's `Tcl_Exit` finalises before `exit()`:
    /// a crash). They are left to the process's end instead.
    fn drop(&mut self) {
        for (_, e) in self.0.drain() {
            std::mem::forget(e);
        }
    }
}

impl std::ops::Deref for Registry {
    type Target = HashMap<usize, Entry>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Registry {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

thread_local! {
    static REGISTRY: RefCell<Registry> = RefCell::new(Registry::default());
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

fn next_id() -> usize {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

pub(crate) fn register_once(interp: &Interp<'_>, f: Box<dyn FnOnce()>) -> usize {
    register(interp, Callback::Once(f))
}

pub(crate) fn register_many(interp: &Interp<'_>, f: std::rc::Rc<dyn Fn()>) -> usize {
    register(interp, Callback::Many(f))
}

fn register(interp: &Interp<'_>, cb: Callback) -> usize {
    let id = next_id();
    let entry = Entry {
        cb,
        interp: Some(interp.preserve()),
    };
    REGISTRY.with(|r| r.borrow_mut().insert(id, entry));
    id
}

// Callbacks may run while this thread's TLS is being torn down (a deferred
// interp deletion released from a destructor), hence `try_with` below.

/// Removes an entry; `true` if it was still registered.
pub(crate) fn unregister(id: usize) -> bool {
    // Drop the entry (and its InterpRef) outside the borrow.
    let e = REGISTRY
        .try_with(|r| r.borrow_mut().remove(&id))
        .ok()
        .flatten();
    e.is_some()
}

/// Runs the callback `id` (removing it if one-shot), reporting a panic.
pub(crate) fn fire(id: usize) {
    let taken = REGISTRY.try_with(|r| {
        let mut r = r.borrow_mut();
        match r.get(&id).map(|e| &e.cb) {
            Some(Callback::Many(f)) => {
                let f = f.clone();
                let ip = r.get(&id).and_then(|e| e.interp.clone());
                Some((Callback::Many(f), ip))
            }
            Some(Callback::Once(_)) => r.remove(&id).map(|e| (e.cb, e.interp)),
            None => None,
        }
    });
    let taken = taken.ok().flatten();
    // No borrow is held while the callback runs: it may re-enter.
    let Some((cb, ip)) = taken else { return };
    let r = guarded(move || match cb {
        Callback::Once(f) => f(),
        Callback::Many(f) => f(),
    });
    if let Err(msg) = r {
        report_panic(ip.as_ref().and_then(|ip| ip.get()), &msg);
    }
}

/// Reports a panic from a callback as a background error on `interp`.
pub(crate) fn report_panic(interp: Option<Interp<'_>>, msg: &str) {
    if let Some(i) = interp {
        i.background_exception(&Exception::panic(msg));
    }
}

fn id_cd(id: usize) -> sys::ClientData {
    id as sys::ClientData
}

fn cd_id(cd: sys::ClientData) -> usize {
    cd as usize
}

unsafe extern "C" fn fire_proc(cd: sys::ClientData) {
    // `fire` catches panics of the callback; guard the bookkeeping too.
    let _ = guarded(|| fire(cd_id(cd)));
}

/// A pending timer from [`Interp::after`]. Dropping the token does not
/// cancel the timer (as with Tcl's `after`); call [`Timer::cancel`].
#[derive(Debug)]
pub struct Timer {
    id: usize,
    token: sys::Tcl_TimerToken,
    _not_send: PhantomData<*mut ()>,
}

impl Timer {
    /// Cancels the timer; `false` if it already fired or was cancelled.
    pub fn cancel(self) -> bool {
        let pending = unregister(self.id);
        if pending {
            // SAFETY: the token is still pending (its callback has not run),
            // and stubs exist since a `Timer` exists.
            unsafe { sys::Tcl_DeleteTimerHandler(self.token) };
        }
        pending
    }
}

/// A pending idle callback from [`Interp::when_idle`].
#[derive(Debug)]
pub struct Idle {
    id: usize,
    _not_send: PhantomData<*mut ()>,
}

impl Idle {
    /// Cancels the callback; `false` if it already ran or was cancelled.
    pub fn cancel(self) -> bool {
        let pending = unregister(self.id);
        if pending {
            // SAFETY: matches the `Tcl_DoWhenIdle` registration.
            unsafe { sys::Tcl_CancelIdleCall(fire_proc, id_cd(self.id)) };
        }
        pending
    }
}

/// A pending callback from [`Interp::queue_event`].
#[derive(Debug)]
pub struct Queued {
    id: usize,
    _not_send: PhantomData<*mut ()>,
}

impl Queued {
    /// Cancels the callback; `false` if it already ran or was cancelled.
    /// The event stays in Tcl's queue and does nothing when serviced.
    pub fn cancel(self) -> bool {
        unregister(self.id)
    }
}

/// The Tcl event of [`Interp::queue_event`]: the registry id of its
/// callback behind Tcl's header.
#[repr(C)]
struct QueuedEvent {
    header: sys::Tcl_Event,
    id: usize,
}

unsafe extern "C" fn queued_event_proc(ev: *mut sys::Tcl_Event, flags: c_int) -> c_int {
    if flags & sys::TCL_FILE_EVENTS == 0 {
        return 0; // keep it queued, as a socket event would be
    }
    // SAFETY: Tcl hands back the `QueuedEvent` queued below (it frees the
    // block after we return 1).
    let id = unsafe { (*ev.cast::<QueuedEvent>()).id };
    let _ = guarded(|| fire(id));
    1
}

/// A callback for interpreter deletion from [`Interp::on_delete`].
#[derive(Debug)]
pub struct DeleteHook {
    id: usize,
    _not_send: PhantomData<*mut ()>,
}

/// A process exit handler from [`Interp::on_exit`].
#[derive(Debug)]
pub struct ExitHandler {
    id: usize,
}

type ExitFn = Box<dyn FnOnce() + Send>;

static EXIT_HANDLERS: Mutex<Option<HashMap<usize, ExitFn>>> = Mutex::new(None);

fn exit_handlers() -> std::sync::MutexGuard<'static, Option<HashMap<usize, ExitFn>>> {
    EXIT_HANDLERS.lock().unwrap_or_else(|p| p.into_inner())
}

unsafe extern "C" fn exit_proc(cd: sys::ClientData) {
    let f = exit_handlers().as_mut().and_then(|m| m.remove(&cd_id(cd)));
    if let Some(f) = f {
        // Nobody to report to during exit.
        let _ = guarded(f);
    }
}

impl ExitHandler {
    /// Unregisters the handler; `false` if it already ran.
    pub fn cancel(self) -> bool {
        let f = exit_handlers().as_mut().and_then(|m| m.remove(&self.id));
        if f.is_some() {
            // SAFETY: matches the `Tcl_CreateExitHandler` registration.
            unsafe { sys::Tcl_DeleteExitHandler(exit_proc, id_cd(self.id)) };
        }
        f.is_some()
    }
}

unsafe extern "C" fn delete_proc(cd: sys::ClientData, _interp: *mut sys::Tcl_Interp) {
    let _ = guarded(|| fire(cd_id(cd)));
}

impl<'a> Interp<'a> {
    /// Processes one event (`Tcl_DoOneEvent`); `false` when `DONT_WAIT` was
    /// given and nothing was ready. Commands, timers and handlers may run
    /// re-entrantly inside.
    pub fn do_one_event(&self, flags: EventFlags) -> bool {
        // SAFETY: we are on a Tcl thread (an `Interp` exists).
        unsafe { sys::Tcl_DoOneEvent(flags.bits()) != 0 }
    }

    /// Runs the event loop until `done()` holds (checked before each event).
    pub fn wait_until(&self, mut done: impl FnMut() -> bool) {
        while !done() {
            self.do_one_event(EventFlags::ALL);
        }
    }

    /// Calls `f` once after `ms` milliseconds (`Tcl_CreateTimerHandler`).
    pub fn after(&self, ms: u32, f: impl FnOnce() + 'static) -> Timer {
        let id = register_once(self, Box::new(f));
        let ms = c_int::try_from(ms).unwrap_or(c_int::MAX);
        // SAFETY: `fire_proc` looks `id` up in this thread's registry.
        let token = unsafe { sys::Tcl_CreateTimerHandler(ms, fire_proc, id_cd(id)) };
        Timer {
            id,
            token,
            _not_send: PhantomData,
        }
    }

    /// Calls `f` once when the event loop is idle (`Tcl_DoWhenIdle`).
    pub fn when_idle(&self, f: impl FnOnce() + 'static) -> Idle {
        let id = register_once(self, Box::new(f));
        // SAFETY: as for `after`.
        unsafe { sys::Tcl_DoWhenIdle(fire_proc, id_cd(id)) };
        Idle {
            id,
            _not_send: PhantomData,
        }
    }

    /// Calls `f` once from Tcl's event queue (`Tcl_QueueEvent` at the
    /// tail), serviced like a socket event: the event loop's next pass
    /// runs it before waiting for anything, and `update idletasks` does
    /// not. Unlike [`when_idle`](Interp::when_idle), this costs no wait:
    /// on Tcl 8.6's threaded notifier every pass that has idle callbacks
    /// pending is a round trip to the notifier thread.
    pub fn queue_event(&self, f: impl FnOnce() + 'static) -> Queued {
        let id = register_once(self, Box::new(f));
        let size = sys::AllocSize::try_from(std::mem::size_of::<QueuedEvent>())
            .unwrap_or(sys::AllocSize::MAX);
        // SAFETY: stubs initialised (an `Interp` exists); the block is
        // Tcl-allocated and of our size, and Tcl frees it once serviced.
        unsafe {
            let ev = sys::Tcl_Alloc(size).cast::<QueuedEvent>();
            ev.write(QueuedEvent {
                header: sys::Tcl_Event {
                    proc_: Some(queued_event_proc),
                    nextPtr: std::ptr::null_mut(),
                },
                id,
            });
            sys::Tcl_ThreadQueueEvent(sys::Tcl_GetCurrentThread(), ev.cast(), sys::TCL_QUEUE_TAIL);
        }
        Queued {
            id,
            _not_send: PhantomData,
        }
    }

    /// Calls `f` when this interpreter is deleted (`Tcl_CallWhenDeleted`).
    pub fn on_delete(&self, f: impl FnOnce() + 'static) -> DeleteHook {
        let id = next_id();
        // No InterpRef here: preserving would be pointless during deletion.
        let entry = Entry {
            cb: Callback::Once(Box::new(f)),
            interp: None,
        };
        REGISTRY.with(|r| r.borrow_mut().insert(id, entry));
        // SAFETY: live interp; `delete_proc` looks `id` up.
        unsafe { sys::Tcl_CallWhenDeleted(self.raw(), delete_proc, id_cd(id)) };
        DeleteHook {
            id,
            _not_send: PhantomData,
        }
    }

    /// Cancels an [`Interp::on_delete`] callback of this interpreter;
    /// `false` if it already ran.
    pub fn cancel_on_delete(&self, hook: DeleteHook) -> bool {
        let pending = unregister(hook.id);
        if pending {
            // SAFETY: live interp; matches the registration.
            unsafe { sys::Tcl_DontCallWhenDeleted(self.raw(), delete_proc, id_cd(hook.id)) };
        }
        pending
    }

    /// Calls `f` when Tcl exits or is finalised (`Tcl_CreateExitHandler`),
    /// on whichever thread calls `exit`/`Tcl_Finalize`.
    pub fn on_exit(&self, f: impl FnOnce() + Send + 'static) -> ExitHandler {
        let id = next_id();
        exit_handlers()
            .get_or_insert_with(HashMap::new)
            .insert(id, Box::new(f));
        // SAFETY: stubs initialised; `exit_proc` looks `id` up.
        unsafe { sys::Tcl_CreateExitHandler(exit_proc, id_cd(id)) };
        ExitHandler { id }
    }
}
