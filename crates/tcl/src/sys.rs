//! Raw Tcl C API, hand-written (no bindgen), for Tcl 8.6 and (feature
//! `tcl9`) Tcl 9.0.
//!
//! Every function is declared once in the `tcl_api!` table together with its
//! slot number in the `TclStubs` table of each version (`[8.6 slot / 9.0
//! slot]`, `-` where 9.0 removed it). Lengths and counts that Tcl 9 widened
//! to `Tcl_Size` (`ptrdiff_t`) are written [`Size`], which is `int` on 8.6.
//! The macro expands each entry into an `#[inline]` function that calls
//! through `tclStubsPtr`, exactly as C does under `USE_TCL_STUBS`.
//! `tclStubsPtr` is set by `Tcl_InitStubs` (from `libtclstub8.6.a` or
//! `libtclstub9.0.a`), which must have run before any of these functions is
//! called. The test `tests/abi.rs` compiles a small C++ file against each
//! version's `tcl.h`/`tclDecls.h` and compares every slot, argument size and
//! struct layout with the table here ([`abi`]), for both versions whichever
//! one this build targets.
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

/// Lengths, counts and indices: `Tcl_Size` on Tcl 9 (`ptrdiff_t`), `int`
/// on 8.6.
#[cfg(not(feature = "tcl9"))]
pub type Size = c_int;
/// Lengths, counts and indices: `Tcl_Size` on Tcl 9 (`ptrdiff_t`), `int`
/// on 8.6.
#[cfg(feature = "tcl9")]
pub type Size = isize;

/// The argument of `Tcl_Alloc`: `unsigned int` on 8.6, `size_t` on 9.
#[cfg(not(feature = "tcl9"))]
pub type AllocSize = c_uint;
/// The argument of `Tcl_Alloc`: `unsigned int` on 8.6, `size_t` on 9.
#[cfg(feature = "tcl9")]
pub type AllocSize = usize;

/// The argument of `Tcl_Free`: `char *` on 8.6, `void *` on 9.
#[cfg(not(feature = "tcl9"))]
pub type FreePtr = *mut c_char;
/// The argument of `Tcl_Free`: `char *` on 8.6, `void *` on 9.
#[cfg(feature = "tcl9")]
pub type FreePtr = *mut c_void;

/// The major version of Tcl this build is for (8 or 9).
pub const TCL_MAJOR: u32 = if cfg!(feature = "tcl9") { 9 } else { 8 };

/// The minimum version asked of `Tcl_InitStubs`.
const TCL_MIN_VERSION: &std::ffi::CStr = if cfg!(feature = "tcl9") {
    c"9.0"
} else {
    c"8.6"
};

/// `Tcl_Obj` with its size type: the same offsets on both versions (on
/// LP64, 48 bytes), only `refCount` and `length` widen on 9.
#[repr(C)]
pub struct Tcl_ObjOf<S> {
    pub refCount: S,
    pub bytes: *mut c_char,
    pub length: S,
    pub typePtr: *const c_void,
    pub internalRep: [*mut c_void; 2],
}

/// `Tcl_Obj` of this build's Tcl.
pub type Tcl_Obj = Tcl_ObjOf<Size>;

/// `Tcl_Event` header; Tcl `ckfree`s the whole (larger) event.
#[repr(C)]
pub struct Tcl_Event {
    pub proc_: Option<Tcl_EventProc>,
    pub nextPtr: *mut Tcl_Event,
}

/// `Tcl_DString` with its size type (200 bytes static space on both).
#[repr(C)]
pub struct Tcl_DStringOf<S> {
    pub string: *mut c_char,
    pub length: S,
    pub spaceAvl: S,
    pub staticSpace: [c_char; 200],
}

/// `Tcl_DString` of this build's Tcl.
pub type Tcl_DString = Tcl_DStringOf<Size>;

/// `Tcl_DictSearch` with the type of its epoch (`int` on 8.6, `size_t` on 9).
#[repr(C)]
pub struct Tcl_DictSearchOf<E> {
    pub next: *mut c_void,
    pub epoch: E,
    pub dictionaryPtr: *mut c_void,
}

/// `Tcl_DictSearch` of this build's Tcl.
pub type Tcl_DictSearch = Tcl_DictSearchOf<AllocSize>;

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
pub const TCL_STUB_MAGIC_8: c_int = 0xFCA3_BACF_u32 as c_int;
/// `TCL_STUB_MAGIC` for 9.x: `0xFCA3BACB + sizeof(void *)`.
pub const TCL_STUB_MAGIC_9: c_int =
    (0xFCA3_BACB_u32 as c_int).wrapping_add(std::mem::size_of::<*const c_void>() as c_int);
/// `TCL_STUB_MAGIC` of this build's Tcl.
pub const TCL_STUB_MAGIC: c_int = if cfg!(feature = "tcl9") {
    TCL_STUB_MAGIC_9
} else {
    TCL_STUB_MAGIC_8
};

#[cfg(not(feature = "tcl9"))]
unsafe extern "C" {
    /// From `libtclstub8.6.a`: checks the interp's version and sets `tclStubsPtr`.
    fn Tcl_InitStubs(
        interp: *mut Tcl_Interp,
        version: *const c_char,
        exact: c_int,
    ) -> *const c_char;
}

#[cfg(feature = "tcl9")]
unsafe extern "C" {
    /// From `libtclstub9.0.a`; `tcl.h` wraps it in a macro that adds the
    /// version to `exact` and passes the magic, as [`init_stubs`] does.
    fn Tcl_InitStubs(
        interp: *mut Tcl_Interp,
        version: *const c_char,
        exact: c_int,
        magic: c_int,
    ) -> *const c_char;
}

unsafe extern "C" {
    /// Symbol of the stub library, private to this shared object (Rust
    /// exports only its own `#[no_mangle]` items), so every extension has
    /// its own copy.
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
    ($( [$s8:tt / $s9:tt] fn $name:ident ( $($arg:ident : $ty:ty),* $(,)? ) $(-> $ret:ty)? ; )*) => {
        $( tcl_api!(@fn $s8 $s9 $name ($($arg : $ty),*) ($($ret)?)); )*

        /// The table as each version sees it, for the ABI test
        /// (`tests/abi.rs`), whichever version this build is for.
        pub mod abi {
            /// One function: its slot (`None`: not in this version's table)
            /// and the sizes of its result (0: `void`) and arguments.
            #[derive(Debug)]
            pub struct Sig {
                pub name: &'static str,
                pub slot: Option<usize>,
                pub ret: usize,
                pub args: &'static [usize],
                /// The Rust types of the arguments, as written.
                pub types: &'static [&'static str],
            }

            /// Struct layouts as `(what, bytes)` pairs.
            pub type Layout = &'static [(&'static str, usize)];

            /// Tcl 8.6.
            pub mod v8 {
                #[allow(unused_imports)]
                use super::super::*;
                type Size = c_int;
                type AllocSize = c_uint;
                type FreePtr = *mut c_char;
                /// Every declared function.
                pub const SIGS: &[super::Sig] = &[ $( super::Sig {
                    name: stringify!($name),
                    slot: tcl_api!(@slot $s8),
                    ret: tcl_api!(@size $($ret)?),
                    args: &[ $( core::mem::size_of::<$ty>() ),* ],
                    types: &[ $( stringify!($ty) ),* ],
                } ),* ];
                /// Struct layouts and the stub magic.
                pub const LAYOUT: super::Layout = &tcl_api!(@layout Size AllocSize TCL_STUB_MAGIC_8);
            }

            /// Tcl 9.0.
            pub mod v9 {
                #[allow(unused_imports)]
                use super::super::*;
                type Size = isize;
                type AllocSize = usize;
                type FreePtr = *mut c_void;
                /// Every declared function.
                pub const SIGS: &[super::Sig] = &[ $( super::Sig {
                    name: stringify!($name),
                    slot: tcl_api!(@slot $s9),
                    ret: tcl_api!(@size $($ret)?),
                    args: &[ $( core::mem::size_of::<$ty>() ),* ],
                    types: &[ $( stringify!($ty) ),* ],
                } ),* ];
                /// Struct layouts and the stub magic.
                pub const LAYOUT: super::Layout = &tcl_api!(@layout Size AllocSize TCL_STUB_MAGIC_9);
            }
        }
    };
    (@slot -) => { None };
    (@slot $n:literal) => { Some($n) };
    (@size) => { 0 };
    (@size $ret:ty) => { core::mem::size_of::<$ret>() };
    (@layout $size:ident $alloc:ident $magic:ident) => { [
        ("sizeof(Tcl_Obj)", core::mem::size_of::<Tcl_ObjOf<$size>>()),
        ("offsetof(Tcl_Obj,bytes)", core::mem::offset_of!(Tcl_ObjOf<$size>, bytes)),
        ("offsetof(Tcl_Obj,length)", core::mem::offset_of!(Tcl_ObjOf<$size>, length)),
        ("offsetof(Tcl_Obj,typePtr)", core::mem::offset_of!(Tcl_ObjOf<$size>, typePtr)),
        ("offsetof(Tcl_Obj,internalRep)", core::mem::offset_of!(Tcl_ObjOf<$size>, internalRep)),
        ("sizeof(((Tcl_Obj*)0)->refCount)", core::mem::size_of::<$size>()),
        ("sizeof(Tcl_Event)", core::mem::size_of::<Tcl_Event>()),
        ("sizeof(Tcl_DString)", core::mem::size_of::<Tcl_DStringOf<$size>>()),
        ("offsetof(Tcl_DString,length)", core::mem::offset_of!(Tcl_DStringOf<$size>, length)),
        ("offsetof(Tcl_DString,spaceAvl)", core::mem::offset_of!(Tcl_DStringOf<$size>, spaceAvl)),
        ("offsetof(Tcl_DString,staticSpace)", core::mem::offset_of!(Tcl_DStringOf<$size>, staticSpace)),
        ("sizeof(Tcl_DictSearch)", core::mem::size_of::<Tcl_DictSearchOf<$alloc>>()),
        ("offsetof(Tcl_DictSearch,dictionaryPtr)", core::mem::offset_of!(Tcl_DictSearchOf<$alloc>, dictionaryPtr)),
        ("offsetof(TclStubs,tcl_PkgProvideEx)", core::mem::offset_of!(TclStubsHead, slots)),
        ("(unsigned)TCL_STUB_MAGIC", $magic as u32 as usize),
    ] };
    (@fn $s8:tt - $name:ident ($($arg:ident : $ty:ty),*) ($($ret:ty)?)) => {
        #[cfg(not(feature = "tcl9"))]
        tcl_api!(@def $s8 $name ($($arg : $ty),*) ($($ret)?));
    };
    (@fn - $s9:tt $name:ident ($($arg:ident : $ty:ty),*) ($($ret:ty)?)) => {
        #[cfg(feature = "tcl9")]
        tcl_api!(@def $s9 $name ($($arg : $ty),*) ($($ret)?));
    };
    (@fn $s8:tt $s9:tt $name:ident ($($arg:ident : $ty:ty),*) ($($ret:ty)?)) => {
        #[cfg(not(feature = "tcl9"))]
        tcl_api!(@def $s8 $name ($($arg : $ty),*) ($($ret)?));
        #[cfg(feature = "tcl9")]
        tcl_api!(@def $s9 $name ($($arg : $ty),*) ($($ret)?));
    };
    (@def $idx:literal $name:ident ($($arg:ident : $ty:ty),*) ($($ret:ty)?)) => {
        #[doc = concat!("`", stringify!($name), "`, stub slot ", stringify!($idx), ".")]
        ///
        /// # Safety
        /// Stubs must be initialised and the arguments valid for the C API.
        #[inline(always)]
        pub unsafe fn $name($($arg: $ty),*) $(-> $ret)? {
            type F = unsafe extern "C" fn($($ty),*) $(-> $ret)?;
            // SAFETY: the slot holds a function of exactly this C signature
            // (checked against tclDecls.h by tests/abi.rs).
            unsafe { core::mem::transmute::<*const c_void, F>(slot($idx))($($arg),*) }
        }
    };
}

tcl_api! {
    [0 / 0]     fn Tcl_PkgProvideEx(interp: *mut Tcl_Interp, name: *const c_char, version: *const c_char, cd: *const c_void) -> c_int;
    [3 / 3]     fn Tcl_Alloc(size: AllocSize) -> *mut c_char;
    [4 / 4]     fn Tcl_Free(ptr: FreePtr);
    [9 / 9]     fn Tcl_CreateFileHandler(fd: c_int, mask: c_int, proc_: Tcl_FileProc, cd: ClientData);
    [10 / 10]   fn Tcl_DeleteFileHandler(fd: c_int);
    [17 / 17]   fn Tcl_ConcatObj(objc: Size, objv: *const *mut Tcl_Obj) -> *mut Tcl_Obj;
    [29 / 29]   fn Tcl_DuplicateObj(obj: *mut Tcl_Obj) -> *mut Tcl_Obj;
    [30 / 30]   fn TclFreeObj(obj: *mut Tcl_Obj);
    [32 / 32]   fn Tcl_GetBooleanFromObj(interp: *mut Tcl_Interp, obj: *mut Tcl_Obj, out: *mut c_int) -> c_int;
    [33 / -]    fn Tcl_GetByteArrayFromObj(obj: *mut Tcl_Obj, len: *mut Size) -> *mut c_uchar;
    [- / 650]   fn Tcl_GetBytesFromObj(interp: *mut Tcl_Interp, obj: *mut Tcl_Obj, len: *mut Size) -> *mut c_uchar;
    [35 / 35]   fn Tcl_GetDoubleFromObj(interp: *mut Tcl_Interp, obj: *mut Tcl_Obj, out: *mut f64) -> c_int;
    [38 / 38]   fn Tcl_GetIntFromObj(interp: *mut Tcl_Interp, obj: *mut Tcl_Obj, out: *mut c_int) -> c_int;
    [41 / 651]  fn Tcl_GetStringFromObj(obj: *mut Tcl_Obj, len: *mut Size) -> *mut c_char;
    [44 / 44]   fn Tcl_ListObjAppendElement(interp: *mut Tcl_Interp, list: *mut Tcl_Obj, obj: *mut Tcl_Obj) -> c_int;
    [45 / 661]  fn Tcl_ListObjGetElements(interp: *mut Tcl_Interp, list: *mut Tcl_Obj, objc: *mut Size, objv: *mut *mut *mut Tcl_Obj) -> c_int;
    [46 / 46]   fn Tcl_ListObjIndex(interp: *mut Tcl_Interp, list: *mut Tcl_Obj, index: Size, out: *mut *mut Tcl_Obj) -> c_int;
    [47 / 662]  fn Tcl_ListObjLength(interp: *mut Tcl_Interp, list: *mut Tcl_Obj, len: *mut Size) -> c_int;
    [49 / -]    fn Tcl_NewBooleanObj(value: c_int) -> *mut Tcl_Obj;
    [50 / 50]   fn Tcl_NewByteArrayObj(bytes: *const c_uchar, len: Size) -> *mut Tcl_Obj;
    [51 / 51]   fn Tcl_NewDoubleObj(value: f64) -> *mut Tcl_Obj;
    [53 / 53]   fn Tcl_NewListObj(objc: Size, objv: *const *mut Tcl_Obj) -> *mut Tcl_Obj;
    [55 / 55]   fn Tcl_NewObj() -> *mut Tcl_Obj;
    [56 / 56]   fn Tcl_NewStringObj(bytes: *const c_char, len: Size) -> *mut Tcl_Obj;
    [66 / -]    fn Tcl_AddErrorInfo(interp: *mut Tcl_Interp, message: *const c_char);
    [68 / 68]   fn Tcl_AllowExceptions(interp: *mut Tcl_Interp);
    [79 / 79]   fn Tcl_CallWhenDeleted(interp: *mut Tcl_Interp, proc_: Tcl_InterpDeleteProc, cd: ClientData);
    [80 / 80]   fn Tcl_CancelIdleCall(proc_: Tcl_IdleProc, cd: ClientData);
    [81 / -]    fn Tcl_Close(interp: *mut Tcl_Interp, chan: Tcl_Channel) -> c_int;
    [- / 624]   fn Tcl_CloseEx(interp: *mut Tcl_Interp, chan: Tcl_Channel, flags: c_int) -> c_int;
    [89 / 89]   fn Tcl_CreateChannelHandler(chan: Tcl_Channel, mask: c_int, proc_: Tcl_ChannelProc, cd: ClientData);
    [90 / 90]   fn Tcl_CreateCloseHandler(chan: Tcl_Channel, proc_: Tcl_CloseProc, cd: ClientData);
    [93 / 93]   fn Tcl_CreateExitHandler(proc_: Tcl_ExitProc, cd: ClientData);
    [96 / 96]   fn Tcl_CreateObjCommand(interp: *mut Tcl_Interp, name: *const c_char, proc_: Tcl_ObjCmdProc, cd: ClientData, delete: Option<Tcl_CmdDeleteProc>) -> Tcl_Command;
    [98 / 98]   fn Tcl_CreateTimerHandler(ms: c_int, proc_: Tcl_TimerProc, cd: ClientData) -> Tcl_TimerToken;
    [100 / 100] fn Tcl_DeleteAssocData(interp: *mut Tcl_Interp, name: *const c_char);
    [101 / 101] fn Tcl_DeleteChannelHandler(chan: Tcl_Channel, proc_: Tcl_ChannelProc, cd: ClientData);
    [102 / 102] fn Tcl_DeleteCloseHandler(chan: Tcl_Channel, proc_: Tcl_CloseProc, cd: ClientData);
    [103 / 103] fn Tcl_DeleteCommand(interp: *mut Tcl_Interp, name: *const c_char) -> c_int;
    [107 / 107] fn Tcl_DeleteExitHandler(proc_: Tcl_ExitProc, cd: ClientData);
    [110 / 110] fn Tcl_DeleteInterp(interp: *mut Tcl_Interp);
    [112 / 112] fn Tcl_DeleteTimerHandler(token: Tcl_TimerToken);
    [114 / 114] fn Tcl_DontCallWhenDeleted(interp: *mut Tcl_Interp, proc_: Tcl_InterpDeleteProc, cd: ClientData);
    [115 / 115] fn Tcl_DoOneEvent(flags: c_int) -> c_int;
    [116 / 116] fn Tcl_DoWhenIdle(proc_: Tcl_IdleProc, cd: ClientData);
    [120 / 120] fn Tcl_DStringFree(ds: *mut Tcl_DString);
    [122 / 122] fn Tcl_DStringInit(ds: *mut Tcl_DString);
    [126 / 126] fn Tcl_Eof(chan: Tcl_Channel) -> c_int;
    [128 / 128] fn Tcl_ErrnoMsg(err: c_int) -> *const c_char;
    [133 / 133] fn Tcl_Exit(status: c_int);
    [143 / 143] fn Tcl_Finalize();
    [146 / 146] fn Tcl_Flush(chan: Tcl_Channel) -> c_int;
    [150 / 150] fn Tcl_GetAssocData(interp: *mut Tcl_Interp, name: *const c_char, proc_: *mut Option<Tcl_InterpDeleteProc>) -> ClientData;
    [151 / 151] fn Tcl_GetChannel(interp: *mut Tcl_Interp, name: *const c_char, mode: *mut c_int) -> Tcl_Channel;
    [153 / 153] fn Tcl_GetChannelHandle(chan: Tcl_Channel, direction: c_int, handle: *mut ClientData) -> c_int;
    [156 / 156] fn Tcl_GetChannelName(chan: Tcl_Channel) -> *const c_char;
    [157 / 157] fn Tcl_GetChannelOption(interp: *mut Tcl_Interp, chan: Tcl_Channel, option: *const c_char, ds: *mut Tcl_DString) -> c_int;
    [161 / 161] fn Tcl_GetErrno() -> c_int;
    [166 / 166] fn Tcl_GetObjResult(interp: *mut Tcl_Interp) -> *mut Tcl_Obj;
    [180 / 180] fn Tcl_Init(interp: *mut Tcl_Interp) -> c_int;
    [182 / 182] fn Tcl_InputBlocked(chan: Tcl_Channel) -> c_int;
    [184 / 184] fn Tcl_InterpDeleted(interp: *mut Tcl_Interp) -> c_int;
    [191 / 191] fn Tcl_MakeTcpClientChannel(sock: ClientData) -> Tcl_Channel;
    [201 / 201] fn Tcl_Preserve(cd: ClientData);
    [206 / 206] fn Tcl_Read(chan: Tcl_Channel, buf: *mut c_char, to_read: Size) -> Size;
    [210 / 210] fn Tcl_RegisterChannel(interp: *mut Tcl_Interp, chan: Tcl_Channel);
    [216 / 216] fn Tcl_Release(cd: ClientData);
    [217 / 217] fn Tcl_ResetResult(interp: *mut Tcl_Interp);
    [223 / 223] fn Tcl_SetAssocData(interp: *mut Tcl_Interp, name: *const c_char, proc_: Option<Tcl_InterpDeleteProc>, cd: ClientData);
    [225 / 225] fn Tcl_SetChannelOption(interp: *mut Tcl_Interp, chan: Tcl_Channel, option: *const c_char, value: *const c_char) -> c_int;
    [234 / 234] fn Tcl_SetObjErrorCode(interp: *mut Tcl_Interp, errorcode: *mut Tcl_Obj);
    [235 / 235] fn Tcl_SetObjResult(interp: *mut Tcl_Interp, obj: *mut Tcl_Obj);
    [252 / 252] fn Tcl_UnregisterChannel(interp: *mut Tcl_Interp, chan: Tcl_Channel) -> c_int;
    [254 / 254] fn Tcl_UnsetVar2(interp: *mut Tcl_Interp, part1: *const c_char, part2: *const c_char, flags: c_int) -> c_int;
    [263 / 263] fn Tcl_Write(chan: Tcl_Channel, s: *const c_char, len: Size) -> Size;
    [264 / 264] fn Tcl_WrongNumArgs(interp: *mut Tcl_Interp, objc: Size, objv: *const *mut Tcl_Obj, message: *const c_char);
    [279 / 279] fn Tcl_GetVersion(major: *mut c_int, minor: *mut c_int, patch: *mut c_int, kind: *mut c_int);
    [288 / 288] fn Tcl_CreateThreadExitHandler(proc_: Tcl_ExitProc, cd: ClientData);
    [289 / 289] fn Tcl_DeleteThreadExitHandler(proc_: Tcl_ExitProc, cd: ClientData);
    [291 / 291] fn Tcl_EvalEx(interp: *mut Tcl_Interp, script: *const c_char, len: Size, flags: c_int) -> c_int;
    [292 / 292] fn Tcl_EvalObjv(interp: *mut Tcl_Interp, objc: Size, objv: *const *mut Tcl_Obj, flags: c_int) -> c_int;
    [293 / 293] fn Tcl_EvalObjEx(interp: *mut Tcl_Interp, obj: *mut Tcl_Obj, flags: c_int) -> c_int;
    [297 / 297] fn Tcl_FinalizeThread();
    [300 / 300] fn Tcl_GetCurrentThread() -> Tcl_ThreadId;
    [306 / 306] fn Tcl_GetVar2Ex(interp: *mut Tcl_Interp, part1: *const c_char, part2: *const c_char, flags: c_int) -> *mut Tcl_Obj;
    [313 / 313] fn Tcl_ReadChars(chan: Tcl_Channel, obj: *mut Tcl_Obj, chars: Size, append: c_int) -> Size;
    [317 / 317] fn Tcl_SetVar2Ex(interp: *mut Tcl_Interp, part1: *const c_char, part2: *const c_char, value: *mut Tcl_Obj, flags: c_int) -> *mut Tcl_Obj;
    [318 / 318] fn Tcl_ThreadAlert(thread: Tcl_ThreadId);
    [319 / 319] fn Tcl_ThreadQueueEvent(thread: Tcl_ThreadId, ev: *mut Tcl_Event, position: c_int);
    [339 / 339] fn Tcl_WriteObj(chan: Tcl_Channel, obj: *mut Tcl_Obj) -> Size;
    [380 / 670] fn Tcl_GetCharLength(obj: *mut Tcl_Obj) -> Size;
    [394 / 394] fn Tcl_ReadRaw(chan: Tcl_Channel, dst: *mut c_char, to_read: Size) -> Size;
    [395 / 395] fn Tcl_WriteRaw(chan: Tcl_Channel, src: *const c_char, len: Size) -> Size;
    [479 / 479] fn Tcl_OutputBuffered(chan: Tcl_Channel) -> c_int;
    [487 / 487] fn Tcl_GetWideIntFromObj(interp: *mut Tcl_Interp, obj: *mut Tcl_Obj, out: *mut i64) -> c_int;
    [488 / 488] fn Tcl_NewWideIntObj(value: i64) -> *mut Tcl_Obj;
    [494 / 494] fn Tcl_DictObjPut(interp: *mut Tcl_Interp, dict: *mut Tcl_Obj, key: *mut Tcl_Obj, value: *mut Tcl_Obj) -> c_int;
    [495 / 495] fn Tcl_DictObjGet(interp: *mut Tcl_Interp, dict: *mut Tcl_Obj, key: *mut Tcl_Obj, out: *mut *mut Tcl_Obj) -> c_int;
    [496 / 496] fn Tcl_DictObjRemove(interp: *mut Tcl_Interp, dict: *mut Tcl_Obj, key: *mut Tcl_Obj) -> c_int;
    [497 / 663] fn Tcl_DictObjSize(interp: *mut Tcl_Interp, dict: *mut Tcl_Obj, size: *mut Size) -> c_int;
    [498 / 498] fn Tcl_DictObjFirst(interp: *mut Tcl_Interp, dict: *mut Tcl_Obj, search: *mut Tcl_DictSearch, key: *mut *mut Tcl_Obj, value: *mut *mut Tcl_Obj, done: *mut c_int) -> c_int;
    [499 / 499] fn Tcl_DictObjNext(search: *mut Tcl_DictSearch, key: *mut *mut Tcl_Obj, value: *mut *mut Tcl_Obj, done: *mut c_int);
    [500 / 500] fn Tcl_DictObjDone(search: *mut Tcl_DictSearch);
    [503 / 503] fn Tcl_NewDictObj() -> *mut Tcl_Obj;
    [506 / 506] fn Tcl_CreateNamespace(interp: *mut Tcl_Interp, name: *const c_char, cd: ClientData, delete: Option<Tcl_NamespaceDeleteProc>) -> *mut Tcl_Namespace;
    [538 / 538] fn Tcl_SetReturnOptions(interp: *mut Tcl_Interp, options: *mut Tcl_Obj) -> c_int;
    [539 / 539] fn Tcl_GetReturnOptions(interp: *mut Tcl_Interp, result: c_int) -> *mut Tcl_Obj;
    [574 / 574] fn Tcl_AppendObjToErrorInfo(interp: *mut Tcl_Interp, obj: *mut Tcl_Obj);
    [609 / 609] fn Tcl_BackgroundException(interp: *mut Tcl_Interp, code: c_int);
}

/// `Tcl_NewBooleanObj`: a macro over `Tcl_NewWideIntObj` on Tcl 9.
///
/// # Safety
/// Stubs must be initialised.
#[cfg(feature = "tcl9")]
#[inline(always)]
pub unsafe fn Tcl_NewBooleanObj(value: c_int) -> *mut Tcl_Obj {
    // SAFETY: guaranteed by the caller.
    unsafe { Tcl_NewWideIntObj(i64::from(value != 0)) }
}

/// `Tcl_GetByteArrayFromObj`: on Tcl 9 its slot (33) is empty in a build
/// without the deprecated API (Debian's), and C code reaches
/// `Tcl_GetBytesFromObj(NULL, …)`, which returns NULL for a value with
/// characters above U+00FF instead of truncating them.
///
/// # Safety
/// Stubs must be initialised; `obj` live, `len` writable.
#[cfg(feature = "tcl9")]
#[inline(always)]
pub unsafe fn Tcl_GetByteArrayFromObj(obj: *mut Tcl_Obj, len: *mut Size) -> *mut c_uchar {
    // SAFETY: guaranteed by the caller.
    unsafe { Tcl_GetBytesFromObj(std::ptr::null_mut(), obj, len) }
}

/// `Tcl_Close`: a macro over `Tcl_CloseEx(interp, chan, 0)` on Tcl 9 (its
/// own slot is empty there).
///
/// # Safety
/// Stubs must be initialised; `chan` a live channel.
#[cfg(feature = "tcl9")]
#[inline(always)]
pub unsafe fn Tcl_Close(interp: *mut Tcl_Interp, chan: Tcl_Channel) -> c_int {
    // SAFETY: guaranteed by the caller.
    unsafe { Tcl_CloseEx(interp, chan, 0) }
}

/// `Tcl_AddErrorInfo`: a macro over `Tcl_AppendObjToErrorInfo` on Tcl 9.
///
/// # Safety
/// Stubs must be initialised; `interp` live, `message` NUL-terminated.
#[cfg(feature = "tcl9")]
#[inline(always)]
pub unsafe fn Tcl_AddErrorInfo(interp: *mut Tcl_Interp, message: *const c_char) {
    // SAFETY: guaranteed by the caller; the new object's reference is
    // taken over by the error info.
    unsafe { Tcl_AppendObjToErrorInfo(interp, Tcl_NewStringObj(message, -1)) }
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
    #[cfg(not(feature = "tcl9"))]
    // SAFETY: guaranteed by the caller.
    let v = unsafe { Tcl_InitStubs(interp, TCL_MIN_VERSION.as_ptr(), 0) };
    // What the `Tcl_InitStubs` macro of Tcl 9's `tcl.h` passes (final
    // release): `exact | major << 8 | minor << 16`, and the magic.
    #[cfg(feature = "tcl9")]
    // SAFETY: guaranteed by the caller.
    let v = unsafe { Tcl_InitStubs(interp, TCL_MIN_VERSION.as_ptr(), 9 << 8, TCL_STUB_MAGIC) };
    if !v.is_null() {
        return check_slots();
    }
    // The interp result explains why; stubs may be unusable, so read the
    // result (through the table) only if the table exists.
    if stubs_table().is_null() {
        return Err("Tcl_InitStubs failed".into());
    }
    // SAFETY: the table exists, the interp is live.
    let msg = unsafe { crate::obj::Obj::from_borrowed(Tcl_GetObjResult(interp)) };
    Err(msg.to_string())
}

/// Every slot this build calls is filled in the running Tcl's table (a Tcl
/// built without its deprecated API leaves some empty): a clear error at
/// load time instead of a crash at the first call.
fn check_slots() -> Result<(), String> {
    let sigs = if cfg!(feature = "tcl9") {
        abi::v9::SIGS
    } else {
        abi::v8::SIGS
    };
    let missing: Vec<&str> = sigs
        .iter()
        .filter(|s| {
            // SAFETY: stubs are initialised and every declared slot is
            // within the table of the version it was declared for.
            s.slot.is_some_and(|n| unsafe { slot(n) }.is_null())
        })
        .map(|s| s.name)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "this Tcl's stubs table lacks {} (a Tcl built without them?)",
            missing.join(", ")
        ))
    }
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
        if let Err(msg) = unsafe { init_stubs(raw) } {
            if !stubs_table().is_null() {
                // `load`'s error is the interp result: say why (a missing
                // slot; for a failed version check, Tcl's own message).
                let b = crate::strconv::to_tcl(&msg);
                // SAFETY: the table exists (the slots used here are in
                // every table), the interp is live; the new object's
                // reference goes to the result.
                unsafe {
                    Tcl_SetObjResult(raw, Tcl_NewStringObj(b.as_ptr().cast(), b.len() as Size));
                }
            }
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
