//! [`Channel`]: a Tcl channel registered in an interpreter, by name.
//!
//! The wrapper keeps the name and looks the channel up for every operation,
//! so a channel closed by a script turns into an error instead of a dangling
//! pointer.

use std::ffi::c_int;
use std::marker::PhantomData;
use std::ptr;
use std::rc::Rc;

use crate::events;
use crate::interp::cstring;
use crate::strconv;
use crate::sys;
use crate::{Exception, Interp, InterpRef, Obj};

/// A channel of an interpreter (e.g. a `socket`), addressed by name.
/// Not `Send`: channels belong to their thread.
pub struct Channel {
    interp: InterpRef,
    name: String,
}

/// A readable handler from [`Channel::on_readable`].
#[derive(Debug)]
pub struct ChannelHandler {
    id: usize,
    _not_send: PhantomData<*mut ()>,
}

unsafe extern "C" fn channel_proc(cd: sys::ClientData, _mask: c_int) {
    let _ = crate::interp::guarded(|| events::fire(cd as usize));
}

fn os_error(what: &str) -> Exception {
    // SAFETY: reads Tcl's errno for this thread.
    let errno = unsafe { sys::Tcl_GetErrno() };
    let e = std::io::Error::from_raw_os_error(errno);
    Exception::with_errorcode("POSIX", format!("error {what} channel: {e}"))
}

impl Interp<'_> {
    /// The channel registered in this interpreter under `name`
    /// (`Tcl_GetChannel`).
    pub fn channel(&self, name: &str) -> Result<Channel, Exception> {
        let n = cstring(name);
        // SAFETY: live interp.
        let ch = unsafe { sys::Tcl_GetChannel(self.raw(), n.as_ptr(), ptr::null_mut()) };
        if ch.is_null() {
            return Err(self.take_exception(sys::TCL_ERROR));
        }
        Ok(Channel {
            interp: self.preserve(),
            name: name.to_owned(),
        })
    }
}

impl Channel {
    /// The channel's name (e.g. `sock55d0c8a1b2c0`).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(Interp<'_>, sys::Tcl_Channel) -> Result<T, Exception>,
    ) -> Result<T, Exception> {
        let i = self
            .interp
            .get()
            .ok_or_else(|| Exception::error("interpreter deleted"))?;
        let n = cstring(&self.name);
        // SAFETY: live interp; the result is NULL if the channel is gone.
        let ch = unsafe { sys::Tcl_GetChannel(i.raw(), n.as_ptr(), ptr::null_mut()) };
        if ch.is_null() {
            return Err(i.take_exception(sys::TCL_ERROR));
        }
        f(i, ch)
    }

    /// Sets an option (`fconfigure $chan -blocking 0` is
    /// `configure("-blocking", "0")`).
    pub fn configure(&self, option: &str, value: &str) -> Result<(), Exception> {
        self.with(|i, ch| {
            let (o, v) = (cstring(option), cstring(value));
            // SAFETY: live interp and channel.
            let rc = unsafe { sys::Tcl_SetChannelOption(i.raw(), ch, o.as_ptr(), v.as_ptr()) };
            if rc == sys::TCL_OK {
                Ok(())
            } else {
                Err(i.take_exception(rc))
            }
        })
    }

    /// Reads an option (`fconfigure $chan -peername`).
    pub fn cget(&self, option: &str) -> Result<String, Exception> {
        self.with(|i, ch| {
            let o = cstring(option);
            // SAFETY: a DString initialised, read and freed here.
            unsafe {
                let mut ds: sys::Tcl_DString = std::mem::zeroed();
                sys::Tcl_DStringInit(&mut ds);
                let rc = sys::Tcl_GetChannelOption(i.raw(), ch, o.as_ptr(), &mut ds);
                let len = usize::try_from(ds.length).unwrap_or(0);
                let s = strconv::from_tcl(std::slice::from_raw_parts(ds.string.cast::<u8>(), len))
                    .into_owned();
                sys::Tcl_DStringFree(&mut ds);
                if rc == sys::TCL_OK {
                    Ok(s)
                } else {
                    Err(i.take_exception(rc))
                }
            }
        })
    }

    /// Reads up to `max` bytes, appending them to `buf`, bypassing
    /// encoding and translation (`Tcl_ReadRaw`; bytes already buffered by
    /// the channel come first). Returns the number of bytes read: `0`
    /// means nothing available on a non-blocking channel (see
    /// [`Channel::blocked`]) or end of file (see [`Channel::eof`]).
    pub fn read_raw(&self, buf: &mut Vec<u8>, max: usize) -> Result<usize, Exception> {
        self.with(|_, ch| {
            let max = max.min(sys::Size::MAX as usize);
            buf.reserve(max);
            let start = buf.len();
            // SAFETY: Tcl writes at most `max` bytes into the reserved spare
            // capacity; we only extend the length by what it reports.
            let n = unsafe {
                let dst = buf.as_mut_ptr().add(start);
                sys::Tcl_ReadRaw(ch, dst.cast(), max as sys::Size)
            };
            let Ok(n) = usize::try_from(n) else {
                // -1 with the blocked flag means "would block", not an error.
                // SAFETY: live channel.
                if unsafe { sys::Tcl_InputBlocked(ch) } != 0 {
                    return Ok(0);
                }
                return Err(os_error("reading"));
            };
            // SAFETY: `n <= max` bytes were initialised by Tcl.
            unsafe { buf.set_len(start + n.min(max)) };
            Ok(n)
        })
    }

    /// Reads up to `max` characters through the channel's encoding and
    /// translation (`Tcl_ReadChars`).
    pub fn read_chars(&self, max: usize) -> Result<String, Exception> {
        self.read_obj(max).map(|obj| obj.to_str().into_owned())
    }

    /// `Tcl_ReadChars` of up to `max` characters into a fresh object.
    fn read_obj(&self, max: usize) -> Result<Obj, Exception> {
        self.with(|_, ch| {
            let obj = Obj::new();
            let max = sys::Size::try_from(max).unwrap_or(sys::Size::MAX);
            // SAFETY: `obj` is fresh and unshared, as Tcl requires.
            let n = unsafe { sys::Tcl_ReadChars(ch, obj.as_ptr(), max, 0) };
            if n < 0 {
                return Err(os_error("reading"));
            }
            Ok(obj)
        })
    }

    /// Reads up to `max` characters through the channel's buffers,
    /// translation and encoding (`Tcl_ReadChars`) and returns them as
    /// bytes: with `-encoding binary` (or `iso8859-1`) these are the bytes
    /// the channel received, which a stacked channel (TLS) may only give
    /// this way.
    pub fn read_binary(&self, max: usize) -> Result<Vec<u8>, Exception> {
        self.read_obj(max).map(|obj| obj.to_bytes())
    }

    /// Writes bytes through the channel's buffers (`Tcl_Write`; no encoding,
    /// but end-of-line translation applies). Returns the bytes accepted.
    pub fn write(&self, data: &[u8]) -> Result<usize, Exception> {
        self.write_with(data, |ch, p, n| {
            // SAFETY: live channel; Tcl reads `n` bytes.
            unsafe { sys::Tcl_Write(ch, p, n) }
        })
    }

    /// Writes bytes directly to the device, bypassing buffers, encoding and
    /// translation (`Tcl_WriteRaw`).
    pub fn write_raw(&self, data: &[u8]) -> Result<usize, Exception> {
        self.write_with(data, |ch, p, n| {
            // SAFETY: live channel; Tcl reads `n` bytes.
            unsafe { sys::Tcl_WriteRaw(ch, p, n) }
        })
    }

    /// Writes a string through the channel's encoding (`Tcl_WriteObj`).
    pub fn write_str(&self, s: &str) -> Result<usize, Exception> {
        let obj = Obj::string(s);
        self.with(|_, ch| {
            // SAFETY: live channel and object.
            let n = unsafe { sys::Tcl_WriteObj(ch, obj.as_ptr()) };
            usize::try_from(n).map_err(|_| os_error("writing"))
        })
    }

    fn write_with(
        &self,
        data: &[u8],
        f: impl FnOnce(sys::Tcl_Channel, *const std::ffi::c_char, sys::Size) -> sys::Size,
    ) -> Result<usize, Exception> {
        let Ok(len) = sys::Size::try_from(data.len()) else {
            return Err(Exception::error("write too large"));
        };
        self.with(|_, ch| {
            let n = f(ch, data.as_ptr().cast(), len);
            usize::try_from(n).map_err(|_| os_error("writing"))
        })
    }

    /// Flushes buffered output (`Tcl_Flush`); on a non-blocking channel the
    /// rest is written in the background.
    pub fn flush(&self) -> Result<(), Exception> {
        self.with(|_, ch| {
            // SAFETY: live channel.
            if unsafe { sys::Tcl_Flush(ch) } == sys::TCL_OK {
                Ok(())
            } else {
                Err(os_error("flushing"))
            }
        })
    }

    /// Whether the last read hit end of file (`Tcl_Eof`). `true` also when
    /// the channel is gone.
    pub fn eof(&self) -> bool {
        // SAFETY: live channel.
        self.with(|_, ch| Ok(unsafe { sys::Tcl_Eof(ch) } != 0))
            .unwrap_or(true)
    }

    /// Whether the last read on a non-blocking channel lacked data
    /// (`Tcl_InputBlocked`).
    pub fn blocked(&self) -> bool {
        // SAFETY: live channel.
        self.with(|_, ch| Ok(unsafe { sys::Tcl_InputBlocked(ch) } != 0))
            .unwrap_or(false)
    }

    /// Calls `f` whenever the channel is readable
    /// (`Tcl_CreateChannelHandler`), until [`Channel::remove_handler`] or
    /// the channel is closed. A panic is reported as a background error.
    pub fn on_readable(&self, f: impl Fn() + 'static) -> Result<ChannelHandler, Exception> {
        self.with(|i, ch| {
            let id = events::register_many(&i, Rc::new(f));
            // SAFETY: live channel; `channel_proc` looks `id` up.
            unsafe { sys::Tcl_CreateChannelHandler(ch, sys::TCL_READABLE, channel_proc, id as _) };
            Ok(ChannelHandler {
                id,
                _not_send: PhantomData,
            })
        })
    }

    /// Removes a handler set by [`Channel::on_readable`]; `false` if it was
    /// already removed.
    pub fn remove_handler(&self, h: ChannelHandler) -> bool {
        let pending = events::unregister(h.id);
        if pending {
            // The channel may be gone already (Tcl then dropped the handler).
            let _ = self.with(|_, ch| {
                // SAFETY: live channel; matches the registration.
                unsafe { sys::Tcl_DeleteChannelHandler(ch, channel_proc, h.id as _) };
                Ok(())
            });
        }
        pending
    }

    /// Closes the channel: unregisters it from the interpreter
    /// (`Tcl_UnregisterChannel`, which closes it unless other interpreters
    /// share it). Handlers registered here should be removed first.
    pub fn close(self) -> Result<(), Exception> {
        self.with(|i, ch| {
            // SAFETY: live interp and channel, registered in it.
            let rc = unsafe { sys::Tcl_UnregisterChannel(i.raw(), ch) };
            if rc == sys::TCL_OK {
                Ok(())
            } else {
                Err(i.take_exception(rc))
            }
        })
    }
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel").field("name", &self.name).finish()
    }
}
