//! Raw Tcl 8.6 C API, hand-written (no bindgen).
//!
//! Every function is declared once in the `tcl_api!` table together with its
//! slot number in the `TclStubs` table (the `/* N */` comment in
//! `tclDecls.h`). The macro expands each entry into an `#[inline]` function
//! that calls through `tclStubsPtr`, exactly as C does under
//! `USE_TCL_STUBS`. `tclStubsPtr` is set by `Tcl_InitStubs` (from
//! `libtclstub8.6.a`), which must have run before any of these functions is
//! called. The test `slots_match_tcldecls` checks every slot number against
//! the installed header.
//!
//! Everything here is `unsafe` and takes raw pointers; the rest of the crate
//! is the safe layer on top. The only item meant for other crates is
//! [`init_extension`], the entry point of a loadable extension.
#![allow(non_camel_case_types, non_snake_case, missing_docs)]

use std::ffi::{c_char, c_int, c_uchar, c_uint, c_void};

/// Opaque `Tcl_Interp`.
#[repr(C)]
pub struct Tcl_Interp {
    _private: [u8; 0],
}

/// `Tcl_Obj` as laid out by Tcl 8.6 (48 bytes on LP64).
#[repr(C)]
pub struct Tcl_Obj {
    pub refCount: c_int,
    pub bytes: *mut c_char,
    pub length: c_int,
    pub typePtr: *const c_void,
    pub internalRep: [*mut c_void; 2],
}

/// `Tcl_Event` header; Tcl `ckfree`s the whole (larger) event.
#[repr(C)]
pub struct Tcl_Event {
    pub proc_: Option<Tcl_EventProc>,
    pub nextPtr: *mut Tcl_Event,
}

/// `Tcl_DString` (8.6: `int` lengths, 200 bytes static space).
#[repr(C)]
pub struct Tcl_DString {
    pub string: *mut c_char,
    pub length: c_int,
    pub spaceAvl: c_int,
    pub staticSpace: [c_char; 200],
}

/// `Tcl_DictSearch`.
#[repr(C)]
pub struct Tcl_DictSearch {
    pub next: *mut c_void,
    pub epoch: c_int,
    pub dictionaryPtr: *mut c_void,
}

pub type ClientData = *mut c_void;
pub type Tcl_Channel = *mut c_void;
pub type Tcl_Command = *mut c_void;
pub type Tcl_TimerToken = *mut c_void;
pub type Tcl_ThreadId = *mut c_void;
pub type Tcl_Namespace = c_void;

pub type Tcl_ObjCmdProc =
    unsafe extern "C" fn(ClientData, *mut Tcl_Interp, c_int, *const *mut Tcl_Obj) -> c_int;
pub type Tcl_CmdDeleteProc = unsafe extern "C" fn(ClientData);
pub type Tcl_EventProc = unsafe extern "C" fn(*mut Tcl_Event, c_int) -> c_int;
pub type Tcl_ExitProc = unsafe extern "C" fn(ClientData);
pub type Tcl_IdleProc = unsafe extern "C" fn(ClientData);
pub type Tcl_TimerProc = unsafe extern "C" fn(ClientData);
pub type Tcl_ChannelProc = unsafe extern "C" fn(ClientData, c_int);
pub type Tcl_FileProc = unsafe extern "C" fn(ClientData, c_int);
pub type Tcl_CloseProc = unsafe extern "C" fn(ClientData);
pub type Tcl_InterpDeleteProc = unsafe extern "C" fn(ClientData, *mut Tcl_Interp);
pub type Tcl_NamespaceDeleteProc = unsafe extern "C" fn(ClientData);

pub const TCL_OK: c_int = 0;
pub const TCL_ERROR: c_int = 1;
pub const TCL_RETURN: c_int = 2;
pub const TCL_BREAK: c_int = 3;
pub const TCL_CONTINUE: c_int = 4;

pub const TCL_GLOBAL_ONLY: c_int = 1;
pub const TCL_LEAVE_ERR_MSG: c_int = 0x200;
pub const TCL_EVAL_GLOBAL: c_int = 0x020000;
pub const TCL_EVAL_DIRECT: c_int = 0x040000;

pub const TCL_DONT_WAIT: c_int = 1 << 1;
pub const TCL_WINDOW_EVENTS: c_int = 1 << 2;
pub const TCL_FILE_EVENTS: c_int = 1 << 3;
pub const TCL_TIMER_EVENTS: c_int = 1 << 4;
pub const TCL_IDLE_EVENTS: c_int = 1 << 5;
pub const TCL_ALL_EVENTS: c_int = !TCL_DONT_WAIT;

pub const TCL_READABLE: c_int = 1 << 1;
pub const TCL_WRITABLE: c_int = 1 << 2;
pub const TCL_EXCEPTION: c_int = 1 << 3;

pub const TCL_QUEUE_TAIL: c_int = 0;

/// Head of `TclStubs`: the function pointers follow `hooks`.
#[repr(C)]
pub struct TclStubsHead {
    pub magic: c_int,
    pub hooks: *const c_void,
    pub slots: [*const c_void; 0],
}

/// `TCL_STUB_MAGIC` for 8.x.
pub const TCL_STUB_MAGIC: c_int = 0xFCA3_BACF_u32 as c_int;

unsafe extern "C" {
    /// From `libtclstub8.6.a`: checks the interp's version and sets `tclStubsPtr`.
    pub fn Tcl_InitStubs(
        interp: *mut Tcl_Interp,
        version: *const c_char,
        exact: c_int,
    ) -> *const c_char;
    /// Hidden symbol of `libtclstub8.6.a`, so every extension has its own copy.
    static mut tclStubsPtr: *const TclStubsHead;
}

/// Direct imports from `libtcl8.6.so`, needed before any stub table exists.
#[cfg(feature = "embed")]
pub mod direct {
    use super::*;
    unsafe extern "C" {
        pub fn Tcl_FindExecutable(argv0: *const c_char);
        pub fn Tcl_CreateInterp() -> *mut Tcl_Interp;
    }
}

/// The stub table pointer (null before `Tcl_InitStubs`).
#[inline(always)]
pub fn stubs_table() -> *const TclStubsHead {
    // SAFETY: a plain read of a pointer-sized static; it is written only by
    // `Tcl_InitStubs`, always with the same value (the core's single table).
    unsafe { tclStubsPtr }
}

/// # Safety
/// `Tcl_InitStubs` must have succeeded; `idx` must be a valid slot.
#[inline(always)]
unsafe fn slot(idx: usize) -> *const c_void {
    // SAFETY: guaranteed by the caller; the table outlives the process.
    unsafe {
        let t = stubs_table();
        *(&raw const (*t).slots).cast::<*const c_void>().add(idx)
    }
}

macro_rules! tcl_api {
    ($( [$idx:literal] fn $name:ident ( $($arg:ident : $ty:ty),* $(,)? ) $(-> $ret:ty)? ; )*) => {
        $(
            #[doc = concat!("`", stringify!($name), "`, stub slot ", stringify!($idx), ".")]
            ///
            /// # Safety
            /// Stubs must be initialised and the arguments valid for the C API.
            #[inline(always)]
            pub unsafe fn $name($($arg: $ty),*) $(-> $ret)? {
                type F = unsafe extern "C" fn($($ty),*) $(-> $ret)?;
                // SAFETY: the slot holds a function of exactly this C signature
                // (checked against tclDecls.h by the `slots` test).
                unsafe { core::mem::transmute::<*const c_void, F>(slot($idx))($($arg),*) }
            }
        )*
        /// Every declared function with its slot, for the header check.
        pub const SLOTS: &[(&str, usize)] = &[ $( (stringify!($name), $idx) ),* ];
    };
}

tcl_api! {
    [0]   fn Tcl_PkgProvideEx(interp: *mut Tcl_Interp, name: *const c_char, version: *const c_char, cd: *const c_void) -> c_int;
    [3]   fn Tcl_Alloc(size: c_uint) -> *mut c_char;
    [4]   fn Tcl_Free(ptr: *mut c_char);
    [9]   fn Tcl_CreateFileHandler(fd: c_int, mask: c_int, proc_: Tcl_FileProc, cd: ClientData);
    [10]  fn Tcl_DeleteFileHandler(fd: c_int);
    [17]  fn Tcl_ConcatObj(objc: c_int, objv: *const *mut Tcl_Obj) -> *mut Tcl_Obj;
    [29]  fn Tcl_DuplicateObj(obj: *mut Tcl_Obj) -> *mut Tcl_Obj;
    [30]  fn TclFreeObj(obj: *mut Tcl_Obj);
    [32]  fn Tcl_GetBooleanFromObj(interp: *mut Tcl_Interp, obj: *mut Tcl_Obj, out: *mut c_int) -> c_int;
    [33]  fn Tcl_GetByteArrayFromObj(obj: *mut Tcl_Obj, len: *mut c_int) -> *mut c_uchar;
    [35]  fn Tcl_GetDoubleFromObj(interp: *mut Tcl_Interp, obj: *mut Tcl_Obj, out: *mut f64) -> c_int;
    [38]  fn Tcl_GetIntFromObj(interp: *mut Tcl_Interp, obj: *mut Tcl_Obj, out: *mut c_int) -> c_int;
    [41]  fn Tcl_GetStringFromObj(obj: *mut Tcl_Obj, len: *mut c_int) -> *mut c_char;
    [44]  fn Tcl_ListObjAppendElement(interp: *mut Tcl_Interp, list: *mut Tcl_Obj, obj: *mut Tcl_Obj) -> c_int;
    [45]  fn Tcl_ListObjGetElements(interp: *mut Tcl_Interp, list: *mut Tcl_Obj, objc: *mut c_int, objv: *mut *mut *mut Tcl_Obj) -> c_int;
    [46]  fn Tcl_ListObjIndex(interp: *mut Tcl_Interp, list: *mut Tcl_Obj, index: c_int, out: *mut *mut Tcl_Obj) -> c_int;
    [47]  fn Tcl_ListObjLength(interp: *mut Tcl_Interp, list: *mut Tcl_Obj, len: *mut c_int) -> c_int;
    [49]  fn Tcl_NewBooleanObj(value: c_int) -> *mut Tcl_Obj;
    [50]  fn Tcl_NewByteArrayObj(bytes: *const c_uchar, len: c_int) -> *mut Tcl_Obj;
    [51]  fn Tcl_NewDoubleObj(value: f64) -> *mut Tcl_Obj;
    [53]  fn Tcl_NewListObj(objc: c_int, objv: *const *mut Tcl_Obj) -> *mut Tcl_Obj;
    [55]  fn Tcl_NewObj() -> *mut Tcl_Obj;
    [56]  fn Tcl_NewStringObj(bytes: *const c_char, len: c_int) -> *mut Tcl_Obj;
    [66]  fn Tcl_AddErrorInfo(interp: *mut Tcl_Interp, message: *const c_char);
    [68]  fn Tcl_AllowExceptions(interp: *mut Tcl_Interp);
    [79]  fn Tcl_CallWhenDeleted(interp: *mut Tcl_Interp, proc_: Tcl_InterpDeleteProc, cd: ClientData);
    [80]  fn Tcl_CancelIdleCall(proc_: Tcl_IdleProc, cd: ClientData);
    [81]  fn Tcl_Close(interp: *mut Tcl_Interp, chan: Tcl_Channel) -> c_int;
    [89]  fn Tcl_CreateChannelHandler(chan: Tcl_Channel, mask: c_int, proc_: Tcl_ChannelProc, cd: ClientData);
    [90]  fn Tcl_CreateCloseHandler(chan: Tcl_Channel, proc_: Tcl_CloseProc, cd: ClientData);
    [93]  fn Tcl_CreateExitHandler(proc_: Tcl_ExitProc, cd: ClientData);
    [96]  fn Tcl_CreateObjCommand(interp: *mut Tcl_Interp, name: *const c_char, proc_: Tcl_ObjCmdProc, cd: ClientData, delete: Option<Tcl_CmdDeleteProc>) -> Tcl_Command;
    [98]  fn Tcl_CreateTimerHandler(ms: c_int, proc_: Tcl_TimerProc, cd: ClientData) -> Tcl_TimerToken;
    [100] fn Tcl_DeleteAssocData(interp: *mut Tcl_Interp, name: *const c_char);
    [101] fn Tcl_DeleteChannelHandler(chan: Tcl_Channel, proc_: Tcl_ChannelProc, cd: ClientData);
    [102] fn Tcl_DeleteCloseHandler(chan: Tcl_Channel, proc_: Tcl_CloseProc, cd: ClientData);
    [103] fn Tcl_DeleteCommand(interp: *mut Tcl_Interp, name: *const c_char) -> c_int;
    [107] fn Tcl_DeleteExitHandler(proc_: Tcl_ExitProc, cd: ClientData);
    [110] fn Tcl_DeleteInterp(interp: *mut Tcl_Interp);
    [112] fn Tcl_DeleteTimerHandler(token: Tcl_TimerToken);
    [114] fn Tcl_DontCallWhenDeleted(interp: *mut Tcl_Interp, proc_: Tcl_InterpDeleteProc, cd: ClientData);
    [115] fn Tcl_DoOneEvent(flags: c_int) -> c_int;
    [116] fn Tcl_DoWhenIdle(proc_: Tcl_IdleProc, cd: ClientData);
    [120] fn Tcl_DStringFree(ds: *mut Tcl_DString);
    [122] fn Tcl_DStringInit(ds: *mut Tcl_DString);
    [126] fn Tcl_Eof(chan: Tcl_Channel) -> c_int;
    [128] fn Tcl_ErrnoMsg(err: c_int) -> *const c_char;
    [133] fn Tcl_Exit(status: c_int);
    [143] fn Tcl_Finalize();
    [146] fn Tcl_Flush(chan: Tcl_Channel) -> c_int;
    [150] fn Tcl_GetAssocData(interp: *mut Tcl_Interp, name: *const c_char, proc_: *mut Option<Tcl_InterpDeleteProc>) -> ClientData;
    [151] fn Tcl_GetChannel(interp: *mut Tcl_Interp, name: *const c_char, mode: *mut c_int) -> Tcl_Channel;
    [153] fn Tcl_GetChannelHandle(chan: Tcl_Channel, direction: c_int, handle: *mut ClientData) -> c_int;
    [156] fn Tcl_GetChannelName(chan: Tcl_Channel) -> *const c_char;
    [157] fn Tcl_GetChannelOption(interp: *mut Tcl_Interp, chan: Tcl_Channel, option: *const c_char, ds: *mut Tcl_DString) -> c_int;
    [161] fn Tcl_GetErrno() -> c_int;
    [166] fn Tcl_GetObjResult(interp: *mut Tcl_Interp) -> *mut Tcl_Obj;
    [180] fn Tcl_Init(interp: *mut Tcl_Interp) -> c_int;
    [182] fn Tcl_InputBlocked(chan: Tcl_Channel) -> c_int;
    [184] fn Tcl_InterpDeleted(interp: *mut Tcl_Interp) -> c_int;
    [191] fn Tcl_MakeTcpClientChannel(sock: ClientData) -> Tcl_Channel;
    [201] fn Tcl_Preserve(cd: ClientData);
    [206] fn Tcl_Read(chan: Tcl_Channel, buf: *mut c_char, to_read: c_int) -> c_int;
    [210] fn Tcl_RegisterChannel(interp: *mut Tcl_Interp, chan: Tcl_Channel);
    [216] fn Tcl_Release(cd: ClientData);
    [217] fn Tcl_ResetResult(interp: *mut Tcl_Interp);
    [223] fn Tcl_SetAssocData(interp: *mut Tcl_Interp, name: *const c_char, proc_: Option<Tcl_InterpDeleteProc>, cd: ClientData);
    [225] fn Tcl_SetChannelOption(interp: *mut Tcl_Interp, chan: Tcl_Channel, option: *const c_char, value: *const c_char) -> c_int;
    [234] fn Tcl_SetObjErrorCode(interp: *mut Tcl_Interp, errorcode: *mut Tcl_Obj);
    [235] fn Tcl_SetObjResult(interp: *mut Tcl_Interp, obj: *mut Tcl_Obj);
    [252] fn Tcl_UnregisterChannel(interp: *mut Tcl_Interp, chan: Tcl_Channel) -> c_int;
    [254] fn Tcl_UnsetVar2(interp: *mut Tcl_Interp, part1: *const c_char, part2: *const c_char, flags: c_int) -> c_int;
    [263] fn Tcl_Write(chan: Tcl_Channel, s: *const c_char, len: c_int) -> c_int;
    [264] fn Tcl_WrongNumArgs(interp: *mut Tcl_Interp, objc: c_int, objv: *const *mut Tcl_Obj, message: *const c_char);
    [279] fn Tcl_GetVersion(major: *mut c_int, minor: *mut c_int, patch: *mut c_int, kind: *mut c_int);
    [288] fn Tcl_CreateThreadExitHandler(proc_: Tcl_ExitProc, cd: ClientData);
    [289] fn Tcl_DeleteThreadExitHandler(proc_: Tcl_ExitProc, cd: ClientData);
    [291] fn Tcl_EvalEx(interp: *mut Tcl_Interp, script: *const c_char, len: c_int, flags: c_int) -> c_int;
    [292] fn Tcl_EvalObjv(interp: *mut Tcl_Interp, objc: c_int, objv: *const *mut Tcl_Obj, flags: c_int) -> c_int;
    [293] fn Tcl_EvalObjEx(interp: *mut Tcl_Interp, obj: *mut Tcl_Obj, flags: c_int) -> c_int;
    [297] fn Tcl_FinalizeThread();
    [300] fn Tcl_GetCurrentThread() -> Tcl_ThreadId;
    [306] fn Tcl_GetVar2Ex(interp: *mut Tcl_Interp, part1: *const c_char, part2: *const c_char, flags: c_int) -> *mut Tcl_Obj;
    [313] fn Tcl_ReadChars(chan: Tcl_Channel, obj: *mut Tcl_Obj, chars: c_int, append: c_int) -> c_int;
    [317] fn Tcl_SetVar2Ex(interp: *mut Tcl_Interp, part1: *const c_char, part2: *const c_char, value: *mut Tcl_Obj, flags: c_int) -> *mut Tcl_Obj;
    [318] fn Tcl_ThreadAlert(thread: Tcl_ThreadId);
    [319] fn Tcl_ThreadQueueEvent(thread: Tcl_ThreadId, ev: *mut Tcl_Event, position: c_int);
    [339] fn Tcl_WriteObj(chan: Tcl_Channel, obj: *mut Tcl_Obj) -> c_int;
    [380] fn Tcl_GetCharLength(obj: *mut Tcl_Obj) -> c_int;
    [394] fn Tcl_ReadRaw(chan: Tcl_Channel, dst: *mut c_char, to_read: c_int) -> c_int;
    [395] fn Tcl_WriteRaw(chan: Tcl_Channel, src: *const c_char, len: c_int) -> c_int;
    [479] fn Tcl_OutputBuffered(chan: Tcl_Channel) -> c_int;
    [487] fn Tcl_GetWideIntFromObj(interp: *mut Tcl_Interp, obj: *mut Tcl_Obj, out: *mut i64) -> c_int;
    [488] fn Tcl_NewWideIntObj(value: i64) -> *mut Tcl_Obj;
    [494] fn Tcl_DictObjPut(interp: *mut Tcl_Interp, dict: *mut Tcl_Obj, key: *mut Tcl_Obj, value: *mut Tcl_Obj) -> c_int;
    [495] fn Tcl_DictObjGet(interp: *mut Tcl_Interp, dict: *mut Tcl_Obj, key: *mut Tcl_Obj, out: *mut *mut Tcl_Obj) -> c_int;
    [496] fn Tcl_DictObjRemove(interp: *mut Tcl_Interp, dict: *mut Tcl_Obj, key: *mut Tcl_Obj) -> c_int;
    [497] fn Tcl_DictObjSize(interp: *mut Tcl_Interp, dict: *mut Tcl_Obj, size: *mut c_int) -> c_int;
    [498] fn Tcl_DictObjFirst(interp: *mut Tcl_Interp, dict: *mut Tcl_Obj, search: *mut Tcl_DictSearch, key: *mut *mut Tcl_Obj, value: *mut *mut Tcl_Obj, done: *mut c_int) -> c_int;
    [499] fn Tcl_DictObjNext(search: *mut Tcl_DictSearch, key: *mut *mut Tcl_Obj, value: *mut *mut Tcl_Obj, done: *mut c_int);
    [500] fn Tcl_DictObjDone(search: *mut Tcl_DictSearch);
    [503] fn Tcl_NewDictObj() -> *mut Tcl_Obj;
    [506] fn Tcl_CreateNamespace(interp: *mut Tcl_Interp, name: *const c_char, cd: ClientData, delete: Option<Tcl_NamespaceDeleteProc>) -> *mut Tcl_Namespace;
    [538] fn Tcl_SetReturnOptions(interp: *mut Tcl_Interp, options: *mut Tcl_Obj) -> c_int;
    [539] fn Tcl_GetReturnOptions(interp: *mut Tcl_Interp, result: c_int) -> *mut Tcl_Obj;
    [574] fn Tcl_AppendObjToErrorInfo(interp: *mut Tcl_Interp, obj: *mut Tcl_Obj);
    [609] fn Tcl_BackgroundException(interp: *mut Tcl_Interp, code: c_int);
}

/// `Tcl_IncrRefCount` (a macro in `tcl.h`).
///
/// # Safety
/// `obj` must be a live object owned by the current thread.
#[inline(always)]
pub unsafe fn Tcl_IncrRefCount(obj: *mut Tcl_Obj) {
    // SAFETY: guaranteed by the caller.
    unsafe { (*obj).refCount += 1 }
}

/// `Tcl_DecrRefCount` (a macro in `tcl.h`, non-debug build).
///
/// # Safety
/// `obj` must be a live object owned by the current thread, holding a
/// reference that the caller gives up.
#[inline(always)]
pub unsafe fn Tcl_DecrRefCount(obj: *mut Tcl_Obj) {
    // SAFETY: guaranteed by the caller.
    unsafe {
        let old = (*obj).refCount;
        (*obj).refCount = old - 1;
        if old <= 1 {
            TclFreeObj(obj);
        }
    }
}

/// Initialises the stub table from `interp` (first Tcl call of an
/// extension or embedder). Returns the actual version on success.
///
/// # Safety
/// `interp` must be a live interpreter on the current thread.
pub unsafe fn init_stubs(interp: *mut Tcl_Interp) -> Result<(), String> {
    // SAFETY: guaranteed by the caller.
    let v = unsafe { Tcl_InitStubs(interp, c"8.6".as_ptr(), 0) };
    if v.is_null() {
        // SAFETY: the interp result explains why; stubs may be unusable, so
        // read the result without the table (it is a plain field read via the
        // table though) only if the table exists.
        if stubs_table().is_null() {
            return Err("Tcl_InitStubs failed".into());
        }
        // SAFETY: the table exists, the interp is live.
        let msg = unsafe { crate::obj::Obj::from_borrowed(Tcl_GetObjResult(interp)) };
        return Err(msg.to_string());
    }
    Ok(())
}

/// The entry point of a loadable extension: initialises stubs from the raw
/// interp pointer that Tcl passes to `<Prefix>_Init`, then runs `init` with
/// a safe handle, under `catch_unwind`. Returns the Tcl completion code to
/// hand back to `load`.
///
/// ```ignore
/// #[unsafe(no_mangle)]
/// pub unsafe extern "C" fn Comm_Init(interp: *mut std::ffi::c_void) -> std::ffi::c_int {
///     // SAFETY: Tcl calls this with a live interp on the current thread.
///     unsafe { tclcomm_tcl::sys::init_extension(interp, |i| i.pkg_provide("comm", "5.0")) }
/// }
/// ```
///
/// # Safety
/// `interp` must be the live interpreter Tcl passed to the init function,
/// on the current thread.
pub unsafe fn init_extension<F>(interp: *mut c_void, init: F) -> c_int
where
    F: FnOnce(crate::Interp<'_>) -> Result<(), crate::Exception>,
{
    let raw = interp.cast::<Tcl_Interp>();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: guaranteed by the caller.
        if unsafe { init_stubs(raw) }.is_err() {
            return TCL_ERROR;
        }
        // SAFETY: stubs are initialised and the interp is live for the call.
        let i = unsafe { crate::Interp::from_raw(raw) };
        match init(i) {
            Ok(()) => TCL_OK,
            Err(e) => e.apply(i),
        }
    }));
    r.unwrap_or(TCL_ERROR)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every slot number in the table equals the `/* N */` comment that
    /// precedes the declaration in the installed `tclDecls.h`.
    #[test]
    fn slots_match_tcldecls() {
        let path = std::env::var("TCL_DECLS_H")
            .unwrap_or_else(|_| "/usr/include/tcl8.6/tclDecls.h".into());
        let text = std::fs::read_to_string(&path).expect("tclDecls.h (install tcl8.6-dev)");
        let mut found = std::collections::HashMap::new();
        let mut cur: Option<usize> = None;
        let mut pending: Option<usize> = None;
        for line in text.lines() {
            let t = line.trim();
            if let Some(n) = t
                .strip_prefix("/* ")
                .and_then(|r| r.strip_suffix(" */"))
                .and_then(|n| n.parse::<usize>().ok())
            {
                cur = Some(n);
                continue;
            }
            let decl_line = if t.starts_with("EXTERN") {
                pending = cur;
                t
            } else if pending.is_some() {
                t
            } else {
                continue;
            };
            if let Some(open) = decl_line.find('(') {
                let head = &decl_line[..open];
                let name = head
                    .rsplit(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .next()
                    .unwrap_or("");
                if !name.is_empty()
                    && let Some(n) = pending.take()
                {
                    found.entry(name.to_string()).or_insert(n);
                }
            }
        }
        assert!(
            found.len() > 500,
            "parsed only {} declarations",
            found.len()
        );
        for (name, idx) in SLOTS {
            assert_eq!(found.get(*name), Some(idx), "slot of {name}");
        }
    }

    #[test]
    fn layouts() {
        assert_eq!(std::mem::size_of::<Tcl_Obj>(), 48);
        assert_eq!(std::mem::offset_of!(Tcl_Obj, length), 16);
        assert_eq!(std::mem::offset_of!(Tcl_Obj, typePtr), 24);
        assert_eq!(std::mem::size_of::<Tcl_Event>(), 16);
        assert_eq!(std::mem::size_of::<Tcl_DString>(), 216);
        assert_eq!(std::mem::size_of::<Tcl_DictSearch>(), 24);
        assert_eq!(std::mem::offset_of!(TclStubsHead, slots), 16);
    }
}
