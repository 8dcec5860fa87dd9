//! [`Poster`]: run jobs from any thread on an interpreter's thread.
//!
//! The coalesced scheme of the FFI notes: jobs go onto a Rust queue and
//! only the empty→armed transition queues a Tcl event
//! (`Tcl_ThreadQueueEvent` + `Tcl_ThreadAlert`, the alert being required in
//! 8.6 to wake a blocked notifier). `armed` is cleared *before* the queue is
//! drained, so no wake-up is lost. The next event is allocated on the Tcl
//! thread ahead of time, so foreign threads normally make no `Tcl_Alloc`
//! call. The event proc runs jobs only for `TCL_FILE_EVENTS` (like socket
//! events: `update idletasks` does not run them).
//!
//! The gate closes when the interpreter is deleted, when Tcl exits, or on
//! [`Poster::close`]; posting then fails with [`Closed`] and makes no Tcl
//! call.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::{Arc, Mutex, Once, RwLock, Weak};

use crate::events::report_panic;
use crate::interp::guarded;
use crate::sys;
use crate::{Interp, InterpId};

type Job = Box<dyn FnOnce() + Send>;

/// A cheap, cloneable, thread-safe handle that queues jobs to run on one
/// interpreter's thread, from [`Interp::poster`].
///
/// Jobs get no [`Interp`]: they run on the Tcl thread and look their state
/// up thread-locally (e.g. by [`InterpId`]). A panicking job is reported as
/// a background error of the interpreter.
#[derive(Clone)]
pub struct Poster {
    shared: Arc<Shared>,
}

/// The gate is closed: the interpreter was deleted, Tcl exited, or
/// [`Poster::close`] was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the interpreter no longer accepts posted jobs")]
pub struct Closed;

struct Shared {
    thread: usize,
    interp: InterpId,
    queue: Mutex<VecDeque<Job>>,
    armed: AtomicBool,
    closed: RwLock<bool>,
    spare: AtomicPtr<PostEvent>,
}

#[repr(C)]
struct PostEvent {
    header: sys::Tcl_Event,
    shared: *const Shared,
}

const EVENT_SIZE: sys::AllocSize = std::mem::size_of::<PostEvent>() as sys::AllocSize;

thread_local! {
    /// The poster of each live interpreter of this thread, with the raw
    /// interpreter for panic reports (removed on deletion, so valid).
    static POSTERS: RefCell<HashMap<InterpId, (Arc<Shared>, usize)>> = RefCell::new(HashMap::new());
}

/// Every poster, for the process exit handler.
static ALL: Mutex<Vec<Weak<Shared>>> = Mutex::new(Vec::new());
static EXIT_HOOK: Once = Once::new();

unsafe extern "C" fn close_all(_cd: sys::ClientData) {
    let _ = guarded(|| {
        let all = std::mem::take(&mut *ALL.lock().unwrap_or_else(|p| p.into_inner()));
        for s in all.iter().filter_map(Weak::upgrade) {
            s.close();
        }
    });
}

/// Closes the posters of the current thread (before it leaves Tcl), so
/// that no event is queued to a thread id that may be reused. Used by the
/// embedded interpreter's thread guard.
#[cfg(feature = "embed")]
pub(crate) fn close_thread() {
    // SAFETY: on a Tcl thread.
    let me = unsafe { sys::Tcl_GetCurrentThread() } as usize;
    let all = ALL.lock().unwrap_or_else(|p| p.into_inner()).clone();
    for s in all.iter().filter_map(Weak::upgrade) {
        if s.thread == me {
            s.close();
        }
    }
}

impl Shared {
    fn close(&self) {
        *self.closed.write().unwrap_or_else(|p| p.into_inner()) = true;
        // Drop pending jobs now rather than with the last handle.
        let jobs = std::mem::take(&mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()));
        drop(jobs);
    }

    /// Allocates the next event ahead of time (on the Tcl thread).
    fn restock(&self) {
        if self.spare.load(Ordering::Acquire).is_null() {
            // SAFETY: stubs initialised; a Tcl-allocated block of the right size.
            let ev = unsafe { sys::Tcl_Alloc(EVENT_SIZE) }.cast::<PostEvent>();
            if self
                .spare
                .compare_exchange(ptr::null_mut(), ev, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                // SAFETY: not published.
                unsafe { sys::Tcl_Free(ev.cast()) };
            }
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let ev = *self.spare.get_mut();
        if !ev.is_null() {
            // SAFETY: an unqueued block from `Tcl_Alloc` (any thread may free).
            unsafe { sys::Tcl_Free(ev.cast()) };
        }
    }
}

unsafe extern "C" fn post_event_proc(
    ev: *mut sys::Tcl_Event,
    flags: std::ffi::c_int,
) -> std::ffi::c_int {
    if flags & sys::TCL_FILE_EVENTS == 0 {
        return 0; // keep it queued
    }
    // SAFETY: `ev` is our `PostEvent`, whose `shared` came from `Arc::into_raw`.
    let shared = unsafe { Arc::from_raw((*ev.cast::<PostEvent>()).shared) };
    let _ = guarded(|| shared.restock());
    shared.armed.store(false, Ordering::Release);
    loop {
        let job = shared
            .queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front();
        let Some(job) = job else { break };
        if let Err(msg) = guarded(job) {
            let raw = POSTERS
                .try_with(|m| m.borrow().get(&shared.interp).map(|e| e.1))
                .ok()
                .flatten();
            // SAFETY: entries are removed when their interpreter is deleted,
            // so a present pointer is a live interp of this thread.
            let i = raw.map(|r| unsafe { Interp::from_raw(r as *mut sys::Tcl_Interp) });
            report_panic(i, &msg);
        }
    }
    1
}

impl Poster {
    /// Queues `job` to run on the interpreter's thread.
    pub fn post(&self, job: impl FnOnce() + Send + 'static) -> Result<(), Closed> {
        let s = &self.shared;
        // Held while queueing, so that closing waits for in-flight posts and
        // nothing touches Tcl after the gate closed.
        let gate = s.closed.read().unwrap_or_else(|p| p.into_inner());
        if *gate {
            return Err(Closed);
        }
        s.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(Box::new(job));
        if !s.armed.swap(true, Ordering::AcqRel) {
            let mut ev = s.spare.swap(ptr::null_mut(), Ordering::AcqRel);
            if ev.is_null() {
                // SAFETY: stubs initialised (a Poster exists); Tcl frees it.
                ev = unsafe { sys::Tcl_Alloc(EVENT_SIZE) }.cast();
            }
            let tid = s.thread as sys::Tcl_ThreadId;
            // SAFETY: `ev` is a Tcl-allocated block of our size; the gate is
            // open, so the thread's notifier exists.
            unsafe {
                ev.write(PostEvent {
                    header: sys::Tcl_Event {
                        proc_: Some(post_event_proc),
                        nextPtr: ptr::null_mut(),
                    },
                    shared: Arc::into_raw(s.clone()),
                });
                sys::Tcl_ThreadQueueEvent(tid, ev.cast(), sys::TCL_QUEUE_TAIL);
                sys::Tcl_ThreadAlert(tid);
            }
        }
        drop(gate);
        Ok(())
    }

    /// Closes the gate: later posts fail, pending jobs are dropped.
    pub fn close(&self) {
        self.shared.close();
    }

    /// Whether the gate is closed.
    pub fn is_closed(&self) -> bool {
        *self.shared.closed.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The interpreter the jobs are meant for.
    pub fn interp_id(&self) -> InterpId {
        self.shared.interp
    }
}

impl std::fmt::Debug for Poster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poster")
            .field("interp", &self.shared.interp)
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Interp<'_> {
    /// The [`Poster`] of this interpreter (one per interpreter, shared by
    /// all clones).
    pub fn poster(&self) -> Poster {
        let id = self.id();
        if let Some(s) = POSTERS.with(|m| m.borrow().get(&id).map(|e| e.0.clone())) {
            return Poster { shared: s };
        }
        EXIT_HOOK.call_once(|| {
            // SAFETY: stubs initialised; `close_all` takes no data.
            unsafe { sys::Tcl_CreateExitHandler(close_all, ptr::null_mut()) }
        });
        // SAFETY: on the Tcl thread.
        let thread = unsafe { sys::Tcl_GetCurrentThread() } as usize;
        let shared = Arc::new(Shared {
            thread,
            interp: id,
            queue: Mutex::new(VecDeque::new()),
            armed: AtomicBool::new(false),
            closed: RwLock::new(false),
            spare: AtomicPtr::new(ptr::null_mut()),
        });
        shared.restock();
        {
            let mut all = ALL.lock().unwrap_or_else(|p| p.into_inner());
            all.retain(|w| w.strong_count() > 0);
            all.push(Arc::downgrade(&shared));
        }
        POSTERS.with(|m| {
            m.borrow_mut()
                .insert(id, (shared.clone(), self.raw() as usize))
        });
        let s = shared.clone();
        self.on_delete(move || {
            let _ = POSTERS.try_with(|m| m.borrow_mut().remove(&id));
            s.close();
        });
        Poster { shared }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync_clone<T: Send + Sync + Clone>() {}

    #[test]
    fn poster_is_send_sync_clone() {
        assert_send_sync_clone::<Poster>();
    }
}
