//! The listening side of a channel whose `-socketcmd` is Tcl's own
//! `socket`: sockets bound and accepted here, from file handlers on the
//! Tcl event loop, instead of `socket -server`.
//!
//! Why not `socket -server`: Tcl 8.6's accept handler just returns when
//! `accept()` fails, so at the process's descriptor limit the listening
//! socket stays readable and the event loop spins, serving nobody; and a
//! connection accepted on a descriptor above `FD_SETSIZE` aborts the
//! process as soon as the notifier is asked to watch it. Here a failing
//! accept stops watching the listener and retries from a timer (10 ms,
//! doubling up to 1 s), and a descriptor the notifier cannot watch is
//! closed at once and counted.
//!
//! An accepted socket becomes an ordinary Tcl channel and goes through
//! `::comm::commIncoming chan fid addr remport` as with `socket -server`,
//! so hooks and everything after them are unchanged. The first listening
//! socket is also a Tcl channel (a duplicate descriptor), the channel's
//! `-socket`, so that scripts can `fconfigure` it; closing it (comm's
//! `destroy` and reconfiguration do) stops the listener.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::rc::{Rc, Weak};

use socket2::{Domain, Protocol, Socket, Type};
use tclcomm_tcl::{
    Exception, FileHandler, Interp, InterpRef, Obj, Timer, errno_message, notifier_can_watch,
};

use crate::state::Comm;

/// The first retry after a failed accept, in milliseconds.
const BACKOFF_MIN_MS: u32 = 10;
/// The longest wait between retries.
const BACKOFF_MAX_MS: u32 = 1000;
/// Connections accepted per readable event before other events get a turn.
const ACCEPTS_PER_EVENT: usize = 64;
/// The listen backlog (the kernel caps it at `somaxconn`).
const BACKLOG: i32 = 1024;
/// Attempts at one OS-assigned port free on both 127.0.0.1 and ::1 (or
/// both wildcards) before settling for IPv4 alone.
const SHARED_PORT_TRIES: usize = 8;

/// One channel's listening sockets.
pub(crate) struct Listener {
    /// IPv4 first; IPv6 when it could be bound on the same port.
    socks: Vec<Socket>,
    /// One per socket while accepting; empty while backing off.
    handlers: RefCell<Vec<FileHandler>>,
    backoff_ms: Cell<u32>,
    timer: RefCell<Option<Timer>>,
    /// The Tcl channel wrapping (a duplicate of) the first socket.
    tcl_name: String,
    stopped: Cell<bool>,
}

impl Listener {
    fn unwatch(&self) {
        for h in self.handlers.borrow_mut().drain(..) {
            h.remove();
        }
    }

    fn stop(&self) {
        self.stopped.set(true);
        self.unwatch();
        if let Some(t) = self.timer.borrow_mut().take() {
            t.cancel();
        }
    }
}

/// Tcl's error for a socket that could not be opened.
fn socket_error(e: &io::Error) -> Exception {
    let text = match e.raw_os_error() {
        Some(n) => errno_message(n),
        None => e.to_string(),
    };
    Exception::with_errorcode("POSIX", format!("couldn't open socket: {text}"))
}

fn listen_on(addr: SocketAddr) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // As Tcl's `socket -server`: a restarted server gets its port back.
    s.set_reuse_address(true)?;
    if addr.is_ipv6() {
        // The IPv4 socket has the port on 0.0.0.0 / 127.0.0.1.
        s.set_only_v6(true)?;
    }
    s.bind(&addr.into())?;
    s.listen(BACKLOG)?;
    s.set_nonblocking(true)?;
    if !notifier_can_watch(s.as_raw_fd()) {
        return Err(io::Error::from_raw_os_error(24)); // EMFILE
    }
    Ok(s)
}

fn port_of(s: &Socket) -> u16 {
    s.local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .map_or(0, |a| a.port())
}

/// Binds 127.0.0.1 and ::1 (`local`) or 0.0.0.0 and :: on `port`; port 0
/// is one OS-assigned port shared by both. IPv6 is best effort (a machine
/// without ::1 still listens on IPv4); an IPv4 failure is the error.
fn bind(local: bool, port: u16) -> io::Result<Vec<Socket>> {
    let (v4, v6): (IpAddr, IpAddr) = if local {
        (Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into())
    } else {
        (Ipv4Addr::UNSPECIFIED.into(), Ipv6Addr::UNSPECIFIED.into())
    };
    let tries = if port == 0 { SHARED_PORT_TRIES } else { 1 };
    let mut last = None;
    for _ in 0..tries {
        let first = listen_on(SocketAddr::new(v4, port))?;
        let chosen = port_of(&first);
        match listen_on(SocketAddr::new(v6, chosen)) {
            Ok(second) => return Ok(vec![first, second]),
            // Someone has that port on IPv6: draw another one.
            Err(e) if port == 0 && e.kind() == io::ErrorKind::AddrInUse => last = Some(first),
            Err(_) => return Ok(vec![first]),
        }
    }
    Ok(last.into_iter().collect())
}

/// `::comm::RListen chan local port`: listens for channel `chan` and
/// returns the name of the Tcl channel standing for the listener (its
/// `-socket`). Errors are `socket -server`'s (`couldn't open socket:
/// address already in use`).
pub(crate) fn cmd_listen(i: Interp<'_>, comm: &Rc<Comm>, objv: &[Obj]) -> Result<Obj, Exception> {
    if objv.len() != 4 {
        return Err(i.wrong_num_args(objv, 1, "chan local port"));
    }
    // Sockets are hidden from safe interpreters; this must not be a way
    // around that.
    if i.eval("::interp issafe")?.to_bool()? {
        return Err(Exception::error(
            "sockets are not available in a safe interpreter",
        ));
    }
    let chan = objv[1].to_str().into_owned();
    let local = objv[2].to_bool()?;
    let port = objv[3].to_i64()?;
    let port = u16::try_from(port).map_err(|_| {
        Exception::error(format!(
            "couldn't open socket: port number {port} out of range"
        ))
    })?;
    unlisten(comm, &chan);
    let socks = bind(local, port).map_err(|e| socket_error(&e))?;
    let dup = socks[0].try_clone().map_err(|e| socket_error(&e))?;
    if !notifier_can_watch(dup.as_raw_fd()) {
        return Err(socket_error(&io::Error::from_raw_os_error(24)));
    }
    let channel = i.make_tcp_channel(OwnedFd::from(dup))?;
    let tcl_name = channel.name().to_owned();
    let l = Rc::new(Listener {
        socks,
        handlers: RefCell::default(),
        backoff_ms: Cell::new(BACKOFF_MIN_MS),
        timer: RefCell::default(),
        tcl_name: tcl_name.clone(),
        stopped: Cell::new(false),
    });
    comm.listeners.borrow_mut().insert(chan.clone(), l.clone());
    // `close $comm($chan,socket)` ends the listener (before Tcl closes
    // the descriptor; ours is another one anyway).
    let (wc, c2, t2) = (Rc::downgrade(comm), chan.clone(), tcl_name.clone());
    channel.on_close(move || {
        if let Some(comm) = wc.upgrade() {
            let current = comm
                .listeners
                .borrow()
                .get(&c2)
                .is_some_and(|l| l.tcl_name == t2);
            if current {
                unlisten(&comm, &c2);
            }
        }
    })?;
    if let Err(e) = watch(i, comm, &chan, &l) {
        unlisten(comm, &chan);
        let _ = channel.close();
        return Err(e);
    }
    Ok(Obj::string(&tcl_name))
}

/// Stops the listener of `chan`, if any.
pub(crate) fn unlisten(comm: &Comm, chan: &str) {
    let l = comm.listeners.borrow_mut().remove(chan);
    if let Some(l) = l {
        l.stop();
    }
}

fn watch(i: Interp<'_>, comm: &Rc<Comm>, chan: &str, l: &Rc<Listener>) -> Result<(), Exception> {
    let mut hs = Vec::with_capacity(l.socks.len());
    for (k, s) in l.socks.iter().enumerate() {
        let (ir, wc, wl, c) = (
            i.preserve(),
            Rc::downgrade(comm),
            Rc::downgrade(l),
            chan.to_owned(),
        );
        match i.on_fd_readable(s.as_fd(), move || on_acceptable(&ir, &wc, &wl, &c, k)) {
            Ok(h) => hs.push(h),
            Err(e) => {
                for h in hs {
                    h.remove();
                }
                return Err(e);
            }
        }
    }
    *l.handlers.borrow_mut() = hs;
    Ok(())
}

/// Stops watching after a failed accept and retries later, so that a
/// process out of descriptors (or memory) sleeps instead of spinning.
fn back_off(i: Interp<'_>, comm: &Rc<Comm>, chan: &str, l: &Rc<Listener>) {
    l.unwatch();
    comm.stats.backoffs.set(comm.stats.backoffs.get() + 1);
    let ms = l.backoff_ms.get();
    l.backoff_ms.set((ms * 2).min(BACKOFF_MAX_MS));
    let (ir, wc, wl, c) = (
        i.preserve(),
        Rc::downgrade(comm),
        Rc::downgrade(l),
        chan.to_owned(),
    );
    let t = i.after(ms, move || {
        let (Some(i), Some(comm), Some(l)) = (ir.get(), wc.upgrade(), wl.upgrade()) else {
            return;
        };
        l.timer.borrow_mut().take();
        if !l.stopped.get() && watch(i, &comm, &c, &l).is_err() {
            // Cannot happen for descriptors that were watched before;
            // try again later rather than never.
            back_off(i, &comm, &c, &l);
        }
    });
    *l.timer.borrow_mut() = Some(t);
}

fn on_acceptable(ir: &InterpRef, wc: &Weak<Comm>, wl: &Weak<Listener>, chan: &str, k: usize) {
    let (Some(i), Some(comm), Some(l)) = (ir.get(), wc.upgrade(), wl.upgrade()) else {
        return;
    };
    for _ in 0..ACCEPTS_PER_EVENT {
        if l.stopped.get() {
            return;
        }
        let Some(sock) = l.socks.get(k) else { return };
        match sock.accept() {
            Ok((s, addr)) => {
                l.backoff_ms.set(BACKOFF_MIN_MS);
                if let Some(addr) = addr.as_socket() {
                    incoming(i, &comm, chan, s, addr);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            // The peer gave up before we took it, or a signal: next one.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted
                ) => {}
            // EMFILE, ENFILE, ENOBUFS, ENOMEM, or anything else that would
            // fail again at once.
            Err(_) => return back_off(i, &comm, chan, &l),
        }
    }
}

/// Hands an accepted connection to comm as `socket -server` would.
fn incoming(i: Interp<'_>, comm: &Rc<Comm>, chan: &str, s: Socket, addr: SocketAddr) {
    if !notifier_can_watch(s.as_raw_fd()) {
        // Closed at once: the notifier cannot wait on it.
        comm.stats.unwatchable.set(comm.stats.unwatchable.get() + 1);
        return;
    }
    let Ok(channel) = i.make_tcp_channel(OwnedFd::from(s)) else {
        return;
    };
    let fid = channel.name().to_owned();
    let r = i.eval_objv(&[
        Obj::string("::comm::commIncoming"),
        Obj::string(chan),
        Obj::string(&fid),
        Obj::string(&addr.ip().to_string()),
        Obj::int(i64::from(addr.port())),
    ]);
    if let Err(e) = r {
        // As Tcl's accept callback: a background error, and the socket
        // closed if the script did not.
        i.background_exception(&e);
        if let Ok(c) = i.channel(&fid) {
            let _ = c.close();
        }
    }
}
