//! [`Interp`]: a borrowed handle to an interpreter on its own thread.

use std::any::Any;
use std::ffi::{CString, c_int, c_void};
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::{self, NonNull};
use std::rc::Rc;

use crate::strconv;
use crate::sys;
use crate::{EvalOutcome, Exception, Obj};

/// A handle to a live Tcl interpreter, valid for `'a`, usable only on the
/// interpreter's thread.
///
/// Handles are handed out by `Interpreter::interp` (embedding, feature `embed`), to
/// Rust commands for the duration of a call, and by [`InterpRef::get`].
/// `Interp` is `Copy` but neither `Send` nor `Sync`:
///
/// ```compile_fail,E0277
/// fn on_tcl_thread(i: tclcomm_tcl::Interp<'static>) {
///     std::thread::spawn(move || drop(i)); // error: `Interp` cannot be sent
/// }
/// ```
///
/// ```compile_fail,E0277
/// fn assert_sync<T: Sync>() {}
/// assert_sync::<tclcomm_tcl::Interp<'static>>();
/// ```
#[derive(Clone, Copy)]
pub struct Interp<'a> {
    raw: NonNull<sys::Tcl_Interp>,
    _life: PhantomData<&'a *mut ()>,
}

/// An interpreter's identity: `Send + Sync`, for keying per-interp state in
/// thread-local maps and for use in posted jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InterpId(usize);

/// Converts a Rust string to a C string in Tcl's encoding (NUL becomes
/// `C0 80`, so this cannot fail).
pub(crate) fn cstring(s: &str) -> CString {
    CString::new(strconv::to_tcl(s).into_owned())
        .unwrap_or_else(|_| unreachable!("modified UTF-8 has no NUL bytes"))
}

/// The message of a caught panic payload.
pub(crate) fn panic_message(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// Runs `f`, turning a panic into `Err(message)`. Every callback from Tcl
/// goes through this: an unwinding panic across `extern "C"` aborts.
pub(crate) fn guarded<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| panic_message(&*p))
}

impl<'a> Interp<'a> {
    /// # Safety
    /// `raw` must be a live interpreter of the current thread for `'a`, and
    /// the stub table must be initialised.
    pub(crate) unsafe fn from_raw(raw: *mut sys::Tcl_Interp) -> Interp<'a> {
        Interp {
            raw: NonNull::new(raw).unwrap_or_else(|| panic!("NULL Tcl_Interp")),
            _life: PhantomData,
        }
    }

    pub(crate) fn raw(&self) -> *mut sys::Tcl_Interp {
        self.raw.as_ptr()
    }

    /// This interpreter's identity.
    pub fn id(&self) -> InterpId {
        InterpId(self.raw.as_ptr() as usize)
    }

    /// Runs an evaluation under `Tcl_Preserve` (a script may delete the
    /// interpreter) and converts the outcome.
    fn run(&self, f: impl FnOnce(*mut sys::Tcl_Interp) -> c_int) -> Result<Obj, Exception> {
        let _keep = self.preserve();
        let code = f(self.raw());
        if code == sys::TCL_OK {
            Ok(self.result())
        } else {
            Err(self.take_exception(code))
        }
    }

    /// Evaluates `script` at the current level (`Tcl_EvalEx`).
    pub fn eval(&self, script: &str) -> Result<Obj, Exception> {
        self.eval_flags(script, 0)
    }

    /// Evaluates `script` at global level (`TCL_EVAL_GLOBAL`).
    pub fn eval_global(&self, script: &str) -> Result<Obj, Exception> {
        self.eval_flags(script, sys::TCL_EVAL_GLOBAL)
    }

    fn eval_flags(&self, script: &str, flags: c_int) -> Result<Obj, Exception> {
        let b = strconv::to_tcl(script);
        let Ok(len) = sys::Size::try_from(b.len()) else {
            return Err(Exception::error("script too long"));
        };
        // SAFETY: live interp; Tcl reads exactly `len` bytes.
        self.run(|raw| unsafe { sys::Tcl_EvalEx(raw, b.as_ptr().cast(), len, flags) })
    }

    /// Evaluates a script value (`Tcl_EvalObjEx`, which caches bytecode on
    /// the value).
    pub fn eval_obj(&self, script: &Obj) -> Result<Obj, Exception> {
        // SAFETY: live interp and object.
        self.run(|raw| unsafe { sys::Tcl_EvalObjEx(raw, script.as_ptr(), 0) })
    }

    /// Invokes the command `objv[0]` with the given words, without parsing
    /// (`Tcl_EvalObjv`).
    pub fn eval_objv(&self, objv: &[Obj]) -> Result<Obj, Exception> {
        self.eval_objv_flags(objv, 0)
    }

    fn eval_objv_flags(&self, objv: &[Obj], flags: c_int) -> Result<Obj, Exception> {
        let Ok(n) = sys::Size::try_from(objv.len()) else {
            return Err(Exception::error("too many words"));
        };
        // SAFETY: live interp; `objv` is a valid array of live objects.
        self.run(|raw| unsafe { sys::Tcl_EvalObjv(raw, n, Obj::as_objv(objv), flags) })
    }

    /// Invokes the command made of `objv` at global level (what `uplevel
    /// #0` does with a script of that one command) with exceptions
    /// allowed, and returns the code, result and error options as
    /// [`eval_outcome`](Self::eval_outcome) does. Nothing is parsed.
    pub fn eval_objv_outcome(&self, objv: &[Obj]) -> EvalOutcome {
        self.allow_exceptions();
        EvalOutcome::of(self.eval_objv_flags(objv, sys::TCL_EVAL_GLOBAL))
    }

    /// Evaluates `script` at global level with exceptions allowed, so that
    /// `break`, `continue`, `return` and custom codes come back raw, and
    /// returns the code, result and error options. (Like any top-level
    /// script, and unlike `catch`, a plain `return` completes with code 0.)
    pub fn eval_outcome(&self, script: &str) -> EvalOutcome {
        self.allow_exceptions();
        EvalOutcome::of(self.eval_global(script))
    }

    /// The current result.
    pub fn result(&self) -> Obj {
        // SAFETY: live interp; the result is borrowed and we take a ref.
        unsafe { Obj::from_borrowed(sys::Tcl_GetObjResult(self.raw())) }
    }

    /// Sets the result.
    pub fn set_result(&self, value: &Obj) {
        // SAFETY: live interp and object.
        unsafe { sys::Tcl_SetObjResult(self.raw(), value.as_ptr()) }
    }

    /// Resets the result and error state (`Tcl_ResetResult`).
    pub fn reset_result(&self) {
        // SAFETY: live interp.
        unsafe { sys::Tcl_ResetResult(self.raw()) }
    }

    /// Reads the interp's state after a non-OK `code` into an [`Exception`]
    /// (`-errorinfo`/`-errorcode` from `Tcl_GetReturnOptions` for errors).
    pub(crate) fn take_exception(&self, code: c_int) -> Exception {
        let result = self.result().to_str().into_owned();
        let (mut errorinfo, mut errorcode) = (None, None);
        if code == sys::TCL_ERROR {
            // SAFETY: live interp; the dict has refcount 0 and `Obj` owns it.
            let opts = unsafe { Obj::from_borrowed(sys::Tcl_GetReturnOptions(self.raw(), code)) };
            let get = |k: &str| {
                opts.dict_get(&Obj::string(k))
                    .ok()
                    .flatten()
                    .map(|v| v.to_str().into_owned())
            };
            errorinfo = get("-errorinfo");
            errorcode = get("-errorcode");
        }
        Exception {
            code,
            result,
            errorcode,
            errorinfo,
            errorline: None,
        }
    }

    /// Makes the next evaluation at level 0 return `break`, `continue`,
    /// `return` and custom codes as they are instead of turning them into
    /// errors (`Tcl_AllowExceptions`).
    pub fn allow_exceptions(&self) {
        // SAFETY: live interp.
        unsafe { sys::Tcl_AllowExceptions(self.raw()) }
    }

    /// Reads a variable (`name` may be `arr(elem)` or namespace-qualified);
    /// `None` when it does not exist.
    pub fn get_var(&self, name: &str) -> Option<Obj> {
        let n = cstring(name);
        // SAFETY: live interp; the value is borrowed and we take a ref.
        unsafe { Obj::from_nullable(sys::Tcl_GetVar2Ex(self.raw(), n.as_ptr(), ptr::null(), 0)) }
    }

    /// Reads element `elem` of array `name`.
    pub fn get_var2(&self, name: &str, elem: &str) -> Option<Obj> {
        let (n, e) = (cstring(name), cstring(elem));
        // SAFETY: as for `get_var`.
        unsafe { Obj::from_nullable(sys::Tcl_GetVar2Ex(self.raw(), n.as_ptr(), e.as_ptr(), 0)) }
    }

    /// Sets a variable, returning its new value (traces may change it).
    pub fn set_var(&self, name: &str, value: &Obj) -> Result<Obj, Exception> {
        self.set_var_impl(name, None, value)
    }

    /// Sets element `elem` of array `name`.
    pub fn set_var2(&self, name: &str, elem: &str, value: &Obj) -> Result<Obj, Exception> {
        self.set_var_impl(name, Some(elem), value)
    }

    fn set_var_impl(&self, name: &str, elem: Option<&str>, value: &Obj) -> Result<Obj, Exception> {
        let n = cstring(name);
        let e = elem.map(cstring);
        let ep = e.as_ref().map_or(ptr::null(), |e| e.as_ptr());
        // SAFETY: live interp and object.
        let r = unsafe {
            sys::Tcl_SetVar2Ex(
                self.raw(),
                n.as_ptr(),
                ep,
                value.as_ptr(),
                sys::TCL_LEAVE_ERR_MSG,
            )
        };
        // SAFETY: non-null results are live values.
        unsafe { Obj::from_nullable(r) }.ok_or_else(|| self.take_exception(sys::TCL_ERROR))
    }

    /// Unsets a variable.
    pub fn unset_var(&self, name: &str) -> Result<(), Exception> {
        let n = cstring(name);
        // SAFETY: live interp.
        let rc = unsafe {
            sys::Tcl_UnsetVar2(self.raw(), n.as_ptr(), ptr::null(), sys::TCL_LEAVE_ERR_MSG)
        };
        if rc == sys::TCL_OK {
            Ok(())
        } else {
            Err(self.take_exception(rc))
        }
    }

    /// Registers a Rust command. `objv[0]` is the command name as invoked.
    ///
    /// The closure is `Fn`, not `FnMut`: a command may re-enter itself (via
    /// `vwait`, `update` or a nested evaluation), so use `Cell`/`RefCell`
    /// for state and never hold a borrow across an evaluation. A panic
    /// becomes a Tcl error with errorCode `RUST PANIC`. The closure is
    /// dropped when the command is deleted.
    pub fn create_command<F>(&self, name: &str, f: F)
    where
        F: Fn(Interp<'_>, &[Obj]) -> Result<Obj, Exception> + 'static,
    {
        let n = cstring(name);
        let cd = Box::into_raw(Box::new(f)).cast::<c_void>();
        // SAFETY: live interp; `cd` is a leaked `Box<F>` that
        // `drop_command::<F>` frees exactly once, when Tcl deletes the command.
        unsafe {
            sys::Tcl_CreateObjCommand(
                self.raw(),
                n.as_ptr(),
                command_trampoline::<F>,
                cd,
                Some(drop_command::<F>),
            );
        }
    }

    /// Deletes a command; `false` if it did not exist.
    pub fn delete_command(&self, name: &str) -> bool {
        let n = cstring(name);
        // SAFETY: live interp.
        unsafe { sys::Tcl_DeleteCommand(self.raw(), n.as_ptr()) == sys::TCL_OK }
    }

    /// Creates a namespace (no error if it exists already).
    pub fn create_namespace(&self, name: &str) -> Result<(), Exception> {
        self.eval_objv(&[
            Obj::string("::namespace"),
            Obj::string("eval"),
            Obj::string(name),
            Obj::new(),
        ])
        .map(drop)
    }

    /// Declares that package `name` `version` is present
    /// (`Tcl_PkgProvideEx`).
    pub fn pkg_provide(&self, name: &str, version: &str) -> Result<(), Exception> {
        let (n, v) = (cstring(name), cstring(version));
        // SAFETY: live interp.
        let rc = unsafe { sys::Tcl_PkgProvideEx(self.raw(), n.as_ptr(), v.as_ptr(), ptr::null()) };
        if rc == sys::TCL_OK {
            Ok(())
        } else {
            Err(self.take_exception(rc))
        }
    }

    /// The standard `wrong # args: should be "…"` error for `objv[..n]`
    /// followed by `usage` (`Tcl_WrongNumArgs`), errorCode `TCL WRONGARGS`.
    pub fn wrong_num_args(&self, objv: &[Obj], n: usize, usage: &str) -> Exception {
        let n = sys::Size::try_from(n.min(objv.len())).unwrap_or(0);
        let u = cstring(usage);
        // SAFETY: live interp; `objv` has at least `n` live objects.
        unsafe {
            let up = if usage.is_empty() {
                ptr::null()
            } else {
                u.as_ptr()
            };
            sys::Tcl_WrongNumArgs(self.raw(), n, Obj::as_objv(objv), up);
        }
        Exception::with_errorcode("TCL WRONGARGS", self.result().to_str().into_owned())
    }

    /// Appends `text` to `errorInfo` (`Tcl_AppendObjToErrorInfo`).
    pub fn append_error_info(&self, text: &str) {
        // SAFETY: live interp and a fresh object.
        unsafe { sys::Tcl_AppendObjToErrorInfo(self.raw(), Obj::string(text).as_ptr()) }
    }

    /// Reports `e` as a background error (`Tcl_BackgroundException`): the
    /// interp's `bgerror` handler runs later from the event loop.
    pub fn background_exception(&self, e: &Exception) {
        let code = e.apply(*self);
        // SAFETY: live interp holding the result/options just set.
        unsafe { sys::Tcl_BackgroundException(self.raw(), code) }
    }

    /// Whether the interpreter is being deleted (`Tcl_InterpDeleted`).
    pub fn is_deleted(&self) -> bool {
        // SAFETY: live (possibly deleted but preserved) interp.
        unsafe { sys::Tcl_InterpDeleted(self.raw()) != 0 }
    }

    /// A `'static` handle that keeps the interpreter's memory alive
    /// (`Tcl_Preserve`) and tells whether it has been deleted.
    pub fn preserve(&self) -> InterpRef {
        // SAFETY: live interp; released in `InterpRef::drop`.
        unsafe { sys::Tcl_Preserve(self.raw().cast()) };
        InterpRef {
            raw: self.raw,
            _not_send: PhantomData,
        }
    }

    /// The Tcl version (`major`, `minor`, `patch`), e.g. `(8, 6, 13)`.
    pub fn version(&self) -> (i32, i32, i32) {
        let (mut a, mut b, mut c, mut t) = (0, 0, 0, 0);
        // SAFETY: plain out-parameters.
        unsafe { sys::Tcl_GetVersion(&mut a, &mut b, &mut c, &mut t) };
        (a, b, c)
    }

    /// Attaches `value` to the interpreter under `name` (AssocData); it is
    /// dropped when replaced or when the interpreter is deleted.
    pub fn set_assoc_data<T: Any>(&self, name: &str, value: Rc<T>) {
        let n = cstring(name);
        let old = self.assoc_raw(&n);
        let b: Box<Rc<dyn Any>> = Box::new(value);
        // SAFETY: live interp; the box is freed by `drop_assoc` or below.
        unsafe {
            sys::Tcl_SetAssocData(
                self.raw(),
                n.as_ptr(),
                Some(drop_assoc),
                Box::into_raw(b).cast(),
            );
        }
        if let Some(old) = old {
            // SAFETY: `old` was our box; Tcl no longer references it.
            drop(unsafe { Box::from_raw(old) });
        }
    }

    /// The value attached under `name` by [`Interp::set_assoc_data`], if it
    /// has type `T`.
    pub fn assoc_data<T: Any>(&self, name: &str) -> Option<Rc<T>> {
        let p = self.assoc_raw(&cstring(name))?;
        // SAFETY: `assoc_raw` only returns boxes we created; shared borrow.
        let rc: Rc<dyn Any> = unsafe { (*p).clone() };
        rc.downcast::<T>().ok()
    }

    /// Removes (and drops) the value attached under `name`.
    pub fn delete_assoc_data(&self, name: &str) {
        let n = cstring(name);
        if self.assoc_raw(&n).is_some() {
            // SAFETY: live interp; Tcl calls our delete proc, freeing the box.
            unsafe { sys::Tcl_DeleteAssocData(self.raw(), n.as_ptr()) }
        }
    }

    /// Our box under `name`, or `None` (absent or set by someone else).
    fn assoc_raw(&self, n: &CString) -> Option<*mut Rc<dyn Any>> {
        let mut proc_: Option<sys::Tcl_InterpDeleteProc> = None;
        // SAFETY: live interp.
        let cd = unsafe { sys::Tcl_GetAssocData(self.raw(), n.as_ptr(), &mut proc_) };
        let ours =
            proc_.is_some_and(|p| p as usize == drop_assoc as sys::Tcl_InterpDeleteProc as usize);
        (ours && !cd.is_null()).then_some(cd.cast())
    }
}

unsafe extern "C" fn drop_assoc(cd: sys::ClientData, _interp: *mut sys::Tcl_Interp) {
    let _ = guarded(|| {
        // SAFETY: `cd` is the `Box<Rc<dyn Any>>` leaked by `set_assoc_data`.
        drop(unsafe { Box::from_raw(cd.cast::<Rc<dyn Any>>()) })
    });
}

unsafe extern "C" fn command_trampoline<F>(
    cd: sys::ClientData,
    interp: *mut sys::Tcl_Interp,
    objc: c_int,
    objv: *const *mut sys::Tcl_Obj,
) -> c_int
where
    F: Fn(Interp<'_>, &[Obj]) -> Result<Obj, Exception> + 'static,
{
    // SAFETY: Tcl passes the live interp of this thread.
    let i = unsafe { Interp::from_raw(interp) };
    let r = guarded(|| {
        // SAFETY: `cd` is the `Box<F>` from `create_command`, alive until the
        // delete proc runs; only shared references are ever made (`Fn`).
        let f = unsafe { &*cd.cast::<F>() };
        // SAFETY: Tcl guarantees `objc` live objects for the call.
        // (A widening cast on Tcl 9, none on 8.6.)
        let args = unsafe { Obj::slice_from_objv(objv, objc as sys::Size) };
        f(i, args)
    });
    match r {
        Ok(Ok(obj)) => {
            i.set_result(&obj);
            sys::TCL_OK
        }
        Ok(Err(e)) => e.apply(i),
        Err(msg) => Exception::panic(&msg).apply(i),
    }
}

unsafe extern "C" fn drop_command<F>(cd: sys::ClientData) {
    let _ = guarded(|| {
        // SAFETY: called once by Tcl when the command is deleted.
        drop(unsafe { Box::from_raw(cd.cast::<F>()) })
    });
}

/// A `'static`, preserved handle to an interpreter (`Tcl_Preserve` …
/// `Tcl_Release`): the memory stays valid while it lives, and
/// [`InterpRef::get`] says whether the interpreter is still usable. Keep one
/// in callbacks that need the interpreter later. Not `Send`.
pub struct InterpRef {
    raw: NonNull<sys::Tcl_Interp>,
    _not_send: PhantomData<*mut ()>,
}

impl InterpRef {
    /// The interpreter, unless it has been deleted.
    pub fn get(&self) -> Option<Interp<'_>> {
        // SAFETY: preserved, so the memory is valid; stubs exist because an
        // `Interp` existed.
        let i = unsafe { Interp::from_raw(self.raw.as_ptr()) };
        (!i.is_deleted()).then_some(i)
    }

    /// The interpreter's identity (also after deletion).
    pub fn id(&self) -> InterpId {
        InterpId(self.raw.as_ptr() as usize)
    }
}

impl Clone for InterpRef {
    fn clone(&self) -> InterpRef {
        // SAFETY: preserved memory; stubs initialised.
        unsafe { sys::Tcl_Preserve(self.raw.as_ptr().cast()) };
        InterpRef {
            raw: self.raw,
            _not_send: PhantomData,
        }
    }
}

impl Drop for InterpRef {
    fn drop(&mut self) {
        // SAFETY: balances the `Tcl_Preserve` of `preserve`/`clone`; may run
        // the deferred deletion of the interpreter.
        unsafe { sys::Tcl_Release(self.raw.as_ptr().cast()) }
    }
}
