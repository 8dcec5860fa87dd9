//! [`Interpreter`]: an owned interpreter, for programs that embed Tcl
//! (feature `embed`).

use std::ffi::CString;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::Mutex;

use crate::sys;
use crate::{Exception, Interp};

/// Finalises Tcl's per-thread data when a thread that created an
/// [`Interpreter`] exits. Without it the thread's notifier stays listed
/// under its thread id, and since pthread ids are reused, events queued to a
/// new thread could land on the dead one's queue (seen as hangs in tests).
struct ThreadFinalizer;

impl Drop for ThreadFinalizer {
    fn drop(&mut self) {
        let _ = crate::interp::guarded(|| {
            crate::poster::close_thread();
            // SAFETY: stubs exist (an interpreter was created on this
            // thread); TLS destructors registered later (our callback
            // registries) have already run.
            unsafe { sys::Tcl_FinalizeThread() }
        });
    }
}

thread_local! {
    static FINALIZER: ThreadFinalizer = const { ThreadFinalizer };
}

/// Whether `Tcl_FindExecutable` and `Tcl_InitStubs` have run.
static INIT: Mutex<bool> = Mutex::new(false);

/// An interpreter created by this program, deleted on drop. It lives on
/// the thread that created it (not `Send`); several threads may each own
/// interpreters.
///
/// ```compile_fail,E0277
/// let tcl = tclcomm_tcl::Interpreter::new().unwrap();
/// std::thread::spawn(move || drop(tcl)); // error: cannot be sent
/// ```
pub struct Interpreter {
    raw: NonNull<sys::Tcl_Interp>,
    _not_send: PhantomData<*mut ()>,
}

impl Interpreter {
    /// Creates and initialises an interpreter: `Tcl_FindExecutable` (once
    /// per process), `Tcl_CreateInterp`, stub table (once), `Tcl_Init`
    /// (`init.tcl`, `auto_path`, so `package require` works).
    pub fn new() -> Result<Interpreter, Exception> {
        let tcl = Interpreter::bare()?;
        // SAFETY: a live interp of this thread.
        let rc = unsafe { sys::Tcl_Init(tcl.raw.as_ptr()) };
        if rc != sys::TCL_OK {
            return Err(tcl.interp().take_exception(rc));
        }
        Ok(tcl)
    }

    /// Like [`Interpreter::new`] without `Tcl_Init`: only the built-in
    /// commands, no library scripts.
    pub fn bare() -> Result<Interpreter, Exception> {
        let mut done = INIT.lock().unwrap_or_else(|p| p.into_inner());
        if !*done {
            let argv0 = std::env::args_os()
                .next()
                .and_then(|a| CString::new(a.into_encoded_bytes()).ok());
            // SAFETY: a valid C string or NULL; called before any interp.
            unsafe {
                sys::direct::Tcl_FindExecutable(
                    argv0.as_ref().map_or(std::ptr::null(), |a| a.as_ptr()),
                )
            };
        }
        // SAFETY: Tcl is initialised (`Tcl_FindExecutable` ran).
        let raw = unsafe { sys::direct::Tcl_CreateInterp() };
        let raw = NonNull::new(raw).ok_or_else(|| Exception::error("Tcl_CreateInterp failed"))?;
        if !*done {
            // SAFETY: a live interp of this thread.
            unsafe { sys::init_stubs(raw.as_ptr()) }.map_err(Exception::error)?;
            *done = true;
        }
        drop(done);
        FINALIZER.with(|_| ());
        Ok(Interpreter {
            raw,
            _not_send: PhantomData,
        })
    }

    /// A handle for evaluating, registering commands, etc.
    pub fn interp(&self) -> Interp<'_> {
        // SAFETY: live until `self` drops; stubs initialised in `bare`.
        unsafe { Interp::from_raw(self.raw.as_ptr()) }
    }
}

impl Drop for Interpreter {
    fn drop(&mut self) {
        // SAFETY: we own the interp; deletion is deferred while preserved.
        unsafe { sys::Tcl_DeleteInterp(self.raw.as_ptr()) }
    }
}

impl std::fmt::Debug for Interpreter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interpreter")
            .field("id", &self.interp().id())
            .finish()
    }
}
