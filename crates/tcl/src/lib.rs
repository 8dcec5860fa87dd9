//! Safe bindings to Tcl 8.6 and (feature `tcl9`) Tcl 9.0 for tclcomm, and
//! the embedded evaluator with tcllib `comm` semantics. The public API is the
//! same for both versions; `embed` (an interpreter created here) is 8.6 only.
//!
//! ```
//! use tclcomm_tcl::{Interpreter, Obj, eval_comm};
//! use tclcomm_wire::Code;
//!
//! # fn main() -> Result<(), tclcomm_tcl::Exception> {
//! let tcl = Interpreter::new()?; // feature `embed`
//! let interp = tcl.interp();
//!
//! // A Rust command: a closure over the words of the call.
//! interp.create_command("add", |i, objv| {
//!     if objv.len() != 3 {
//!         return Err(i.wrong_num_args(objv, 1, "a b"));
//!     }
//!     Ok(Obj::int(objv[1].to_i64()? + objv[2].to_i64()?))
//! });
//! assert_eq!(interp.eval("add 2 [add 1 2]")?.to_str(), "5");
//!
//! // Errors carry message, errorCode and errorInfo.
//! let e = interp.eval("add 1").unwrap_err();
//! assert_eq!(e.result, "wrong # args: should be \"add a b\"");
//! assert_eq!(e.errorcode.as_deref(), Some("TCL WRONGARGS"));
//!
//! // What a comm peer would get back for `comm send id {expr 1/0}`.
//! let out = eval_comm(interp, &["expr 1/0".to_string()]);
//! assert_eq!(out.code, Code::Error);
//! assert_eq!(out.errorcode, "ARITH DIVZERO {divide by zero}");
//! assert!(out.errorinfo.ends_with("invoked from within\n\"catch $thecmd ret\""));
//! # Ok(()) }
//! ```
//!
//! # Layers
//!
//! * [`sys`]: the raw C API, declared by hand with stub-table slot numbers
//!   of both versions and called through `tclStubsPtr` (no bindgen). The
//!   crate links `libtclstub8.6.a` (feature `tcl9`: `libtclstub9.0.a`, see
//!   build.rs); feature `embed` also links `libtcl8.6.so` for programs that
//!   create interpreters (`Interpreter`).
//! * [`Interp`] (a borrowed handle) and [`Obj`] (an owned value) are bound
//!   to the interpreter's thread: neither is `Send` or `Sync`. Only
//!   [`Poster`], [`InterpId`], [`Exception`] and strings cross threads.
//! * Every callback from Tcl (commands, timers, idle and channel handlers,
//!   posted jobs, delete and exit handlers) runs under `catch_unwind`; a
//!   panic becomes a Tcl error with errorCode `RUST PANIC` (a background
//!   error where there is no caller).
//! * Strings are converted to and from Tcl's modified UTF-8 (NUL as
//!   `C0 80`; on 8.6 non-BMP characters as surrogate pairs); see [`strconv`].

pub mod sys;

mod channel;
mod comm;
#[cfg(feature = "embed")]
mod embed;
mod error;
mod events;
#[cfg(unix)]
mod fd;
mod interp;
mod obj;
mod poster;
pub mod strconv;

pub use channel::{Channel, ChannelHandler};
pub use comm::{code_of, comm_command, eval_comm, eval_comm_owned};
#[cfg(feature = "embed")]
pub use embed::Interpreter;
pub use error::{EvalOutcome, Exception};
pub use events::{DeleteHook, EventFlags, ExitHandler, Idle, Queued, Timer};
#[cfg(unix)]
pub use fd::{CloseHandler, FileHandler, errno_message, notifier_can_watch, notifier_fd_limit};
pub use interp::{Interp, InterpId, InterpRef};
pub use obj::Obj;
pub use poster::{Closed, Poster};

#[cfg(all(target_os = "linux", target_env = "gnu"))]
unsafe extern "C" {
    fn malloc_trim(pad: usize) -> std::ffi::c_int;
}

/// Hands the C heap's free memory back to the operating system (glibc's
/// `malloc_trim(0)`; a no-op elsewhere). Tcl's channel buffers and
/// objects live in that heap: after a burst (a peer that did not read
/// megabytes of answers, then went) the freed memory stays mapped,
/// between live allocations, until trimmed.
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free pages; any thread may call it.
    unsafe {
        malloc_trim(0);
    }
}
