//! [`Obj`]: an owning, reference-counted `Tcl_Obj`.

use std::borrow::Cow;
use std::ffi::c_int;
use std::fmt;
use std::marker::PhantomData;
use std::ptr::{self, NonNull};

use crate::strconv;
use crate::sys;
use crate::{Exception, Interp};

/// An owned reference to a Tcl value (`Tcl_Obj`).
///
/// Creating or cloning an `Obj` takes a reference; dropping it releases one.
/// Tcl reference counts are not atomic and belong to one thread, so `Obj`
/// is neither `Send` nor `Sync`:
///
/// ```compile_fail,E0277
/// fn on_tcl_thread(o: tclcomm_tcl::Obj) {
///     std::thread::spawn(move || drop(o)); // error: `Obj` cannot be sent
/// }
/// ```
///
/// ```compile_fail,E0277
/// fn assert_sync<T: Sync>() {}
/// assert_sync::<tclcomm_tcl::Obj>();
/// ```
///
/// Values are immutable while shared; the mutating methods (`list_append`,
/// `dict_put`, …) take `&mut self` and copy first when the value is shared.
#[repr(transparent)]
pub struct Obj {
    ptr: NonNull<sys::Tcl_Obj>,
    // Raw pointers already make this !Send/!Sync; spelled out for clarity.
    _not_send: PhantomData<*mut ()>,
}

impl Obj {
    /// Wraps a fresh object (refcount 0 or more), taking a reference.
    ///
    /// # Safety
    /// `p` must be a live object of the current thread; stubs initialised.
    pub(crate) unsafe fn from_borrowed(p: *mut sys::Tcl_Obj) -> Obj {
        let ptr = NonNull::new(p).unwrap_or_else(|| panic!("Tcl returned a NULL Tcl_Obj"));
        // SAFETY: guaranteed by the caller.
        unsafe { sys::Tcl_IncrRefCount(p) };
        Obj {
            ptr,
            _not_send: PhantomData,
        }
    }

    /// Like [`Obj::from_borrowed`] but `None` for NULL.
    ///
    /// # Safety
    /// As for `from_borrowed` when non-null.
    pub(crate) unsafe fn from_nullable(p: *mut sys::Tcl_Obj) -> Option<Obj> {
        // SAFETY: guaranteed by the caller.
        (!p.is_null()).then(|| unsafe { Obj::from_borrowed(p) })
    }

    /// The raw pointer (the reference stays with `self`).
    pub(crate) fn as_ptr(&self) -> *mut sys::Tcl_Obj {
        self.ptr.as_ptr()
    }

    /// A slice of `Obj` viewed as the `objv` array Tcl expects.
    pub(crate) fn as_objv(objs: &[Obj]) -> *const *mut sys::Tcl_Obj {
        // `Obj` is `repr(transparent)` over a non-null pointer.
        objs.as_ptr().cast()
    }

    /// Views a Tcl `objv` array as `&[Obj]` without taking references.
    ///
    /// # Safety
    /// The array must hold `objc` live objects for `'a`.
    pub(crate) unsafe fn slice_from_objv<'a>(
        objv: *const *mut sys::Tcl_Obj,
        objc: sys::Size,
    ) -> &'a [Obj] {
        let n = usize::try_from(objc).unwrap_or(0);
        if n == 0 || objv.is_null() {
            return &[];
        }
        // SAFETY: guaranteed by the caller; `Obj` is a transparent non-null
        // pointer, and handing out `&Obj` never releases a reference.
        unsafe { std::slice::from_raw_parts(objv.cast::<Obj>(), n) }
    }

    /// The empty string.
    pub fn new() -> Obj {
        // SAFETY: the constructors below are only reachable once stubs are
        // initialised, because every path to a Tcl thread goes through an
        // `Interp`; `checked` asserts it.
        unsafe { Obj::from_borrowed(checked(|| sys::Tcl_NewObj())) }
    }

    /// A string value (converted to Tcl's modified UTF-8).
    pub fn string(s: &str) -> Obj {
        let b = strconv::to_tcl(s);
        let len =
            sys::Size::try_from(b.len()).unwrap_or_else(|_| panic!("string too long for Tcl"));
        // SAFETY: Tcl copies `len` bytes from the buffer.
        unsafe { Obj::from_borrowed(checked(|| sys::Tcl_NewStringObj(b.as_ptr().cast(), len))) }
    }

    /// A byte-array value (`binary` data).
    pub fn bytes(b: &[u8]) -> Obj {
        let len = sys::Size::try_from(b.len()).unwrap_or_else(|_| panic!("byte array too long"));
        // SAFETY: Tcl copies `len` bytes from the buffer.
        unsafe { Obj::from_borrowed(checked(|| sys::Tcl_NewByteArrayObj(b.as_ptr(), len))) }
    }

    /// An integer value.
    pub fn int(v: i64) -> Obj {
        // SAFETY: plain constructor.
        unsafe { Obj::from_borrowed(checked(|| sys::Tcl_NewWideIntObj(v))) }
    }

    /// A boolean value (`0` or `1`).
    pub fn boolean(v: bool) -> Obj {
        // SAFETY: plain constructor.
        unsafe { Obj::from_borrowed(checked(|| sys::Tcl_NewBooleanObj(c_int::from(v)))) }
    }

    /// A list of the given values.
    pub fn list(items: &[Obj]) -> Obj {
        let n = sys::Size::try_from(items.len()).unwrap_or_else(|_| panic!("list too long"));
        // SAFETY: `items` is a valid objv of `n` live objects; Tcl takes its
        // own references.
        unsafe { Obj::from_borrowed(checked(|| sys::Tcl_NewListObj(n, Obj::as_objv(items)))) }
    }

    /// A list of strings.
    pub fn list_of<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> Obj {
        let v: Vec<Obj> = items.into_iter().map(|s| Obj::string(s.as_ref())).collect();
        Obj::list(&v)
    }

    /// An empty dict.
    pub fn dict() -> Obj {
        // SAFETY: plain constructor.
        unsafe { Obj::from_borrowed(checked(|| sys::Tcl_NewDictObj())) }
    }

    /// The raw string representation (Tcl's modified UTF-8).
    pub fn as_tcl_bytes(&self) -> &[u8] {
        let mut len: sys::Size = 0;
        // SAFETY: the string rep lives as long as the value is not modified;
        // modification needs `&mut self` (and `Tcl_Get*FromObj` shimmering
        // keeps the string rep).
        unsafe {
            let p = sys::Tcl_GetStringFromObj(self.as_ptr(), &mut len);
            std::slice::from_raw_parts(p.cast::<u8>(), usize::try_from(len).unwrap_or(0))
        }
    }

    /// The string value, borrowed when it is valid UTF-8 already.
    pub fn to_str(&self) -> Cow<'_, str> {
        strconv::from_tcl(self.as_tcl_bytes())
    }

    /// Length in characters, as Tcl counts them (`string length`).
    pub fn char_length(&self) -> usize {
        // SAFETY: live object.
        usize::try_from(unsafe { sys::Tcl_GetCharLength(self.as_ptr()) }).unwrap_or(0)
    }

    /// The value as a byte array (`binary` semantics: chars above U+00FF are
    /// truncated, as Tcl 8.6 does).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut len: sys::Size = 0;
        // SAFETY: the returned buffer is valid until the value changes; it
        // is copied at once.
        let p = unsafe { sys::Tcl_GetByteArrayFromObj(self.as_ptr(), &mut len) };
        if p.is_null() {
            // Tcl 9 (TIP 568) refuses a value with characters above U+00FF;
            // truncate them as 8.6 does.
            return self.to_str().chars().map(|c| c as u32 as u8).collect();
        }
        // SAFETY: as above; `p` is non-null with `len` bytes.
        unsafe { std::slice::from_raw_parts(p, usize::try_from(len).unwrap_or(0)).to_vec() }
    }

    /// The value as an integer (`expected integer but got "…"` otherwise).
    pub fn to_i64(&self) -> Result<i64, Exception> {
        let mut v = 0i64;
        // SAFETY: live object; NULL interp means no error message is left.
        let rc = unsafe { sys::Tcl_GetWideIntFromObj(ptr::null_mut(), self.as_ptr(), &mut v) };
        if rc == sys::TCL_OK {
            Ok(v)
        } else {
            Err(Exception::with_errorcode(
                "TCL VALUE NUMBER",
                format!("expected integer but got \"{}\"", self.to_str()),
            ))
        }
    }

    /// The value as a boolean (any form `if` accepts).
    pub fn to_bool(&self) -> Result<bool, Exception> {
        let mut v: c_int = 0;
        // SAFETY: live object; NULL interp.
        let rc = unsafe { sys::Tcl_GetBooleanFromObj(ptr::null_mut(), self.as_ptr(), &mut v) };
        if rc == sys::TCL_OK {
            Ok(v != 0)
        } else {
            Err(Exception::with_errorcode(
                "TCL VALUE NUMBER",
                format!("expected boolean value but got \"{}\"", self.to_str()),
            ))
        }
    }

    /// The elements of a list value.
    pub fn list_elements(&self) -> Result<Vec<Obj>, Exception> {
        with_error_interp(|ip| {
            let mut objc: sys::Size = 0;
            let mut objv: *mut *mut sys::Tcl_Obj = ptr::null_mut();
            // SAFETY: live object; the array is copied (with new references)
            // before anything else can change the list.
            unsafe {
                let rc = sys::Tcl_ListObjGetElements(ip, self.as_ptr(), &mut objc, &mut objv);
                if rc != sys::TCL_OK {
                    return Err(rc);
                }
                Ok(Obj::slice_from_objv(objv, objc).to_vec())
            }
        })
    }

    /// The number of elements of a list value.
    pub fn list_len(&self) -> Result<usize, Exception> {
        with_error_interp(|ip| {
            let mut n: sys::Size = 0;
            // SAFETY: live object.
            let rc = unsafe { sys::Tcl_ListObjLength(ip, self.as_ptr(), &mut n) };
            if rc == sys::TCL_OK {
                Ok(usize::try_from(n).unwrap_or(0))
            } else {
                Err(rc)
            }
        })
    }

    /// Element `index` of a list value (`None` when out of range).
    pub fn list_index(&self, index: usize) -> Result<Option<Obj>, Exception> {
        let Ok(index) = sys::Size::try_from(index) else {
            return Ok(None);
        };
        with_error_interp(|ip| {
            let mut out = ptr::null_mut();
            // SAFETY: live object; the element is borrowed and we take a ref.
            unsafe {
                let rc = sys::Tcl_ListObjIndex(ip, self.as_ptr(), index, &mut out);
                if rc != sys::TCL_OK {
                    return Err(rc);
                }
                Ok(Obj::from_nullable(out))
            }
        })
    }

    /// Appends `item` to a list value (copying first if shared).
    pub fn list_append(&mut self, item: &Obj) -> Result<(), Exception> {
        self.make_unshared();
        with_error_interp(|ip| {
            // SAFETY: `self` is unshared, as Tcl requires for modification.
            let rc = unsafe { sys::Tcl_ListObjAppendElement(ip, self.as_ptr(), item.as_ptr()) };
            if rc == sys::TCL_OK { Ok(()) } else { Err(rc) }
        })
    }

    /// Looks `key` up in a dict value.
    pub fn dict_get(&self, key: &Obj) -> Result<Option<Obj>, Exception> {
        with_error_interp(|ip| {
            let mut out = ptr::null_mut();
            // SAFETY: live objects; the value is borrowed and we take a ref.
            unsafe {
                let rc = sys::Tcl_DictObjGet(ip, self.as_ptr(), key.as_ptr(), &mut out);
                if rc != sys::TCL_OK {
                    return Err(rc);
                }
                Ok(Obj::from_nullable(out))
            }
        })
    }

    /// Sets `key` to `value` in a dict value (copying first if shared).
    pub fn dict_put(&mut self, key: &Obj, value: &Obj) -> Result<(), Exception> {
        self.make_unshared();
        with_error_interp(|ip| {
            // SAFETY: `self` is unshared.
            let rc =
                unsafe { sys::Tcl_DictObjPut(ip, self.as_ptr(), key.as_ptr(), value.as_ptr()) };
            if rc == sys::TCL_OK { Ok(()) } else { Err(rc) }
        })
    }

    /// Removes `key` from a dict value (copying first if shared).
    pub fn dict_remove(&mut self, key: &Obj) -> Result<(), Exception> {
        self.make_unshared();
        with_error_interp(|ip| {
            // SAFETY: `self` is unshared.
            let rc = unsafe { sys::Tcl_DictObjRemove(ip, self.as_ptr(), key.as_ptr()) };
            if rc == sys::TCL_OK { Ok(()) } else { Err(rc) }
        })
    }

    /// The number of entries of a dict value.
    pub fn dict_len(&self) -> Result<usize, Exception> {
        with_error_interp(|ip| {
            let mut n: sys::Size = 0;
            // SAFETY: live object.
            let rc = unsafe { sys::Tcl_DictObjSize(ip, self.as_ptr(), &mut n) };
            if rc == sys::TCL_OK {
                Ok(usize::try_from(n).unwrap_or(0))
            } else {
                Err(rc)
            }
        })
    }

    /// All `(key, value)` pairs of a dict value, in dict order.
    pub fn dict_entries(&self) -> Result<Vec<(Obj, Obj)>, Exception> {
        with_error_interp(|ip| {
            let mut out = Vec::new();
            // SAFETY: a search on a live dict, finished with DictObjDone; the
            // borrowed key/value get references before the next step.
            unsafe {
                let mut search: sys::Tcl_DictSearch = std::mem::zeroed();
                let (mut k, mut v, mut done) = (ptr::null_mut(), ptr::null_mut(), 0);
                let rc = sys::Tcl_DictObjFirst(
                    ip,
                    self.as_ptr(),
                    &mut search,
                    &mut k,
                    &mut v,
                    &mut done,
                );
                if rc != sys::TCL_OK {
                    return Err(rc);
                }
                while done == 0 {
                    out.push((Obj::from_borrowed(k), Obj::from_borrowed(v)));
                    sys::Tcl_DictObjNext(&mut search, &mut k, &mut v, &mut done);
                }
                sys::Tcl_DictObjDone(&mut search);
            }
            Ok(out)
        })
    }

    /// Whether other references to this value exist.
    pub fn is_shared(&self) -> bool {
        // SAFETY: live object.
        unsafe { (*self.as_ptr()).refCount > 1 }
    }

    fn make_unshared(&mut self) {
        if self.is_shared() {
            // SAFETY: live object; the copy has refcount 0 and gets ours.
            *self = unsafe { Obj::from_borrowed(sys::Tcl_DuplicateObj(self.as_ptr())) };
        }
    }
}

/// Runs a Tcl object call that needs an interp only for its error message:
/// uses a NULL interp and rebuilds Tcl's message from the value on failure.
fn with_error_interp<T>(
    f: impl FnOnce(*mut sys::Tcl_Interp) -> Result<T, c_int>,
) -> Result<T, Exception> {
    f(ptr::null_mut()).map_err(|_| {
        Exception::with_errorcode("TCL VALUE", "value is not a well-formed list or dict")
    })
}

/// Asserts that the stub table exists before calling a constructor: an
/// `Obj` can be built without an `Interp` in hand.
fn checked<T>(f: impl FnOnce() -> T) -> T {
    assert!(
        !sys::stubs_table().is_null(),
        "Tcl is not initialised: create an interpreter first"
    );
    // The caller's unsafe block covers `f`.
    f()
}

impl Default for Obj {
    fn default() -> Obj {
        Obj::new()
    }
}

impl Clone for Obj {
    fn clone(&self) -> Obj {
        // SAFETY: live object.
        unsafe { Obj::from_borrowed(self.as_ptr()) }
    }
}

impl Drop for Obj {
    fn drop(&mut self) {
        // SAFETY: we hold one reference.
        unsafe { sys::Tcl_DecrRefCount(self.as_ptr()) }
    }
}

impl fmt::Display for Obj {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_str())
    }
}

impl fmt::Debug for Obj {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Obj({:?})", self.to_str())
    }
}

impl From<&str> for Obj {
    fn from(s: &str) -> Obj {
        Obj::string(s)
    }
}

impl From<&String> for Obj {
    fn from(s: &String) -> Obj {
        Obj::string(s)
    }
}

impl From<String> for Obj {
    fn from(s: String) -> Obj {
        Obj::string(&s)
    }
}

impl From<i64> for Obj {
    fn from(v: i64) -> Obj {
        Obj::int(v)
    }
}

impl From<i32> for Obj {
    fn from(v: i32) -> Obj {
        Obj::int(v.into())
    }
}

impl From<bool> for Obj {
    fn from(v: bool) -> Obj {
        Obj::boolean(v)
    }
}

impl Interp<'_> {
    /// The elements of a list value, with Tcl's own error message (left in
    /// the interp result too) when it is not a list.
    pub fn list_elements(&self, list: &Obj) -> Result<Vec<Obj>, Exception> {
        let mut objc: sys::Size = 0;
        let mut objv: *mut *mut sys::Tcl_Obj = ptr::null_mut();
        // SAFETY: live interp and object; the array is copied at once.
        unsafe {
            let rc = sys::Tcl_ListObjGetElements(self.raw(), list.as_ptr(), &mut objc, &mut objv);
            if rc != sys::TCL_OK {
                return Err(self.take_exception(rc));
            }
            Ok(Obj::slice_from_objv(objv, objc).to_vec())
        }
    }
}
