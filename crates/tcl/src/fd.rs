//! File descriptors on the Tcl event loop: readable handlers on a raw
//! socket ([`Interp::on_fd_readable`]), the notifier's descriptor limit
//! ([`notifier_fd_limit`]), turning a connected socket into a Tcl channel
//! ([`Interp::make_tcp_channel`]) and Tcl's text for an errno
//! ([`errno_message`]).

use std::ffi::{CStr, c_int};
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::rc::Rc;

use crate::events;
use crate::sys;
use crate::{Channel, Exception, Interp};

/// `FD_SETSIZE` of glibc and the BSDs: Tcl 8.6's notifier keeps its
/// descriptors in `fd_set`s, and `FD_SET` of a descriptor at or above it
/// aborts the process (`*** bit out of range 0 - FD_SETSIZE on fd_set ***`).
const FD_SETSIZE: RawFd = 1024;

/// The descriptors Tcl's notifier can watch are those below this number,
/// or `None` if there is no such limit. Tcl 8.6 on Unix selects (limit
/// `FD_SETSIZE`, 1024); Tcl 8.7 and 9 use epoll/kqueue.
///
/// Every descriptor handed to the notifier (a file handler, a channel
/// handler, a `fileevent`) must be checked against it first.
pub fn notifier_fd_limit() -> Option<RawFd> {
    let (mut major, mut minor, mut patch, mut kind) = (0, 0, 0, 0);
    // SAFETY: stubs are initialised (callers hold an interpreter); the
    // function only stores four integers.
    unsafe { sys::Tcl_GetVersion(&mut major, &mut minor, &mut patch, &mut kind) };
    (cfg!(unix) && (major, minor) <= (8, 6)).then_some(FD_SETSIZE)
}

/// Whether the notifier can watch `fd` (see [`notifier_fd_limit`]).
pub fn notifier_can_watch(fd: RawFd) -> bool {
    fd >= 0 && notifier_fd_limit().is_none_or(|limit| fd < limit)
}

/// Tcl's message for a POSIX error number (`Tcl_ErrnoMsg`), e.g.
/// `address already in use` for `EADDRINUSE`: the text `socket` and other
/// Tcl commands put after `couldn't open socket: `.
pub fn errno_message(code: i32) -> String {
    // SAFETY: Tcl returns a static string for any number.
    let p = unsafe { sys::Tcl_ErrnoMsg(code as c_int) };
    if p.is_null() {
        return format!("unknown POSIX error {code}");
    }
    // SAFETY: a NUL-terminated static string.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// A readable handler on a file descriptor from [`Interp::on_fd_readable`].
/// Remove it with [`FileHandler::remove`] before the descriptor is closed.
#[derive(Debug)]
pub struct FileHandler {
    fd: RawFd,
    id: usize,
    _not_send: PhantomData<*mut ()>,
}

unsafe extern "C" fn file_proc(cd: sys::ClientData, _mask: c_int) {
    let _ = crate::interp::guarded(|| events::fire(cd as usize));
}

impl FileHandler {
    /// The descriptor watched.
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// Stops watching the descriptor (`Tcl_DeleteFileHandler`).
    pub fn remove(self) {
        if events::unregister(self.id) {
            // SAFETY: stubs exist (a handler exists); the descriptor has a
            // handler of ours, which this deletes.
            unsafe { sys::Tcl_DeleteFileHandler(self.fd) };
        }
    }
}

impl Interp<'_> {
    /// Calls `f` whenever `fd` is readable (`Tcl_CreateFileHandler`),
    /// until [`FileHandler::remove`]. Tcl keeps one handler per
    /// descriptor: a second one replaces the first. Fails, without
    /// touching the notifier, for a descriptor it cannot watch (see
    /// [`notifier_fd_limit`]). A panic in `f` is a background error.
    pub fn on_fd_readable(
        &self,
        fd: BorrowedFd<'_>,
        f: impl Fn() + 'static,
    ) -> Result<FileHandler, Exception> {
        let fd = fd.as_raw_fd();
        if !notifier_can_watch(fd) {
            return Err(Exception::with_errorcode(
                "POSIX EMFILE",
                format!("file descriptor {fd} is beyond what the Tcl notifier can watch"),
            ));
        }
        let id = events::register_many(self, Rc::new(f));
        // SAFETY: a valid descriptor below the notifier's limit; `file_proc`
        // looks `id` up.
        unsafe { sys::Tcl_CreateFileHandler(fd, sys::TCL_READABLE, file_proc, id as _) };
        Ok(FileHandler {
            fd,
            id,
            _not_send: PhantomData,
        })
    }

    /// Makes a Tcl channel of a connected TCP socket (or of a listening
    /// one, for `fconfigure -sockname`) and registers it in this
    /// interpreter (`Tcl_MakeTcpClientChannel`, `Tcl_RegisterChannel`):
    /// Tcl owns the descriptor from now on and closes it with the channel.
    pub fn make_tcp_channel(&self, fd: OwnedFd) -> Result<Channel, Exception> {
        let raw = fd.into_raw_fd();
        // SAFETY: Tcl takes ownership of an open socket descriptor (passed
        // as its ClientData, as the Unix implementation expects).
        let ch = unsafe { sys::Tcl_MakeTcpClientChannel(raw as isize as sys::ClientData) };
        if ch.is_null() {
            return Err(Exception::error("couldn't make a channel of the socket"));
        }
        // SAFETY: a fresh channel and the live interpreter.
        let name = unsafe {
            sys::Tcl_RegisterChannel(self.raw(), ch);
            CStr::from_ptr(sys::Tcl_GetChannelName(ch))
        };
        self.channel(&name.to_string_lossy())
    }
}

/// A close callback from [`Channel::on_close`].
#[derive(Debug)]
pub struct CloseHandler {
    id: usize,
    _not_send: PhantomData<*mut ()>,
}

unsafe extern "C" fn close_proc(cd: sys::ClientData) {
    let _ = crate::interp::guarded(|| events::fire(cd as usize));
}

impl Channel {
    /// The operating system's descriptor of the channel (for a stacked
    /// channel such as TLS, of the socket underneath), from
    /// `Tcl_GetChannelHandle`; `None` if it has none or is gone.
    pub fn os_handle(&self) -> Option<RawFd> {
        self.with(|_, ch| {
            let mut h: sys::ClientData = std::ptr::null_mut();
            // SAFETY: live channel; Tcl stores the handle in `h`.
            let rc = unsafe { sys::Tcl_GetChannelHandle(ch, sys::TCL_READABLE, &mut h) };
            Ok((rc == sys::TCL_OK).then_some(h as isize as RawFd))
        })
        .ok()
        .flatten()
    }

    /// Shuts the channel's socket down both ways (`shutdown(2)`), so that
    /// what Tcl still holds to write fails at once and is dropped instead of
    /// waiting in a background flush for a peer that never reads. Returns
    /// whether there was a descriptor to shut down.
    pub fn shutdown_socket(&self) -> bool {
        unsafe extern "C" {
            fn shutdown(fd: std::ffi::c_int, how: std::ffi::c_int) -> std::ffi::c_int;
        }
        const SHUT_RDWR: std::ffi::c_int = 2;
        match self.os_handle() {
            // SAFETY: shutdown(2) on a descriptor the live channel owns;
            // it does not close or free it (Tcl's close still does).
            Some(fd) => unsafe { shutdown(fd, SHUT_RDWR) == 0 },
            None => false,
        }
    }

    /// Bytes written to the channel and not yet handed to the operating
    /// system (`Tcl_OutputBuffered`); 0 when the channel is gone.
    pub fn output_buffered(&self) -> usize {
        self.with(|_, ch| {
            // SAFETY: live channel.
            Ok(usize::try_from(unsafe { sys::Tcl_OutputBuffered(ch) }).unwrap_or(0))
        })
        .unwrap_or(0)
    }

    /// Calls `f` once when the channel is closed, before its descriptor is
    /// (`Tcl_CreateCloseHandler`): by a script's `close`, or when the
    /// interpreter goes. A panic in `f` is a background error.
    pub fn on_close(&self, f: impl FnOnce() + 'static) -> Result<CloseHandler, Exception> {
        self.with(|i, ch| {
            let id = events::register_once(&i, Box::new(f));
            // SAFETY: live channel; `close_proc` looks `id` up.
            unsafe { sys::Tcl_CreateCloseHandler(ch, close_proc, id as _) };
            Ok(CloseHandler {
                id,
                _not_send: PhantomData,
            })
        })
    }

    /// Cancels an [`Channel::on_close`] callback; `false` if it already
    /// ran (or the channel is gone).
    pub fn cancel_on_close(&self, h: CloseHandler) -> bool {
        let pending = events::unregister(h.id);
        if pending {
            let _ = self.with(|_, ch| {
                // SAFETY: live channel; matches the registration.
                unsafe { sys::Tcl_DeleteCloseHandler(ch, close_proc, h.id as _) };
                Ok(())
            });
        }
        pending
    }
}
