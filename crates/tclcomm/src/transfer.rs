//! Bulk data beside comm: tcllib's `transfer::connect`, `transfer::transmitter`
//! and `transfer::receiver` in Rust.
//!
//! comm carries Tcl lists of UTF-8 text; a *transfer connection* is a plain
//! socket (or TLS, as with `-socketcmd tls::socket`) set up between two
//! processes to move raw bytes. One side is **active** (connects to a host
//! and port), the other **passive** (listens, learns its port at once, and
//! waits for exactly one peer, then stops listening). The protocol of
//! tcllib's transmitter and receiver is the simplest there is: the raw
//! bytes, ended by closing the connection. So a [`transmit`] here pairs with
//! tcllib's `transfer::receiver` and a tcllib `transfer::transmitter` with
//! [`receive`], in either connection mode.
//!
//! ```
//! use tclcomm::transfer::{self, Connector, Progress, Sink, Source};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! // The passive side knows its port as soon as it listens.
//! let listener = Connector::passive(0).loopback().listen().await?;
//! let port = listener.port();
//! let rx = tokio::spawn(async move {
//!     let stream = listener.accept().await?;
//!     let mut got = Vec::new();
//!     transfer::receive(stream, Sink::Bytes(&mut got), Progress::none()).await?;
//!     Ok::<_, transfer::TransferError>(got)
//! });
//! let stream = Connector::active("127.0.0.1", port).connect().await?;
//! let (progress, seen) = Progress::watch();
//! transfer::transmit(stream, Source::Bytes(b"hello"), progress).await?;
//! assert_eq!(rx.await.unwrap()?, b"hello");
//! assert_eq!(*seen.borrow(), 5);
//! # Ok::<(), transfer::TransferError>(())
//! # }).unwrap();
//! ```
//!
//! Cancellation: every future here owns its sockets; dropping it (or the
//! [`Listener`], or the [`Stream`]) closes them.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::transport::{TlsConfig, Transport};

/// The size of the copy buffer: large enough that loopback throughput is
/// bound by the kernel, not by the number of system calls.
const CHUNK: usize = 256 * 1024;

/// Why a connection could not be made or a transfer did not complete.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The active side could not connect (`couldn't open socket` in Tcl).
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// `host:port` as given.
        addr: String,
        /// The reason.
        #[source]
        source: io::Error,
    },
    /// The passive side could not listen.
    #[error("cannot listen on port {port}: {source}")]
    Listen {
        /// The port asked for (0: any).
        port: u16,
        /// The reason.
        #[source]
        source: io::Error,
    },
    /// The deadline passed before the connection was made.
    #[error("no connection within {0:?}")]
    Timeout(Duration),
    /// The TLS handshake failed.
    #[error("TLS handshake with {peer}: {source}")]
    Tls {
        /// The peer's address.
        peer: SocketAddr,
        /// The reason.
        #[source]
        source: io::Error,
    },
    /// The connection failed while data moved.
    #[error("transfer connection: {0}")]
    Connection(#[source] io::Error),
    /// A local file could not be opened, read or written.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The reason.
        #[source]
        source: io::Error,
    },
    /// The local reader or writer failed.
    #[error("local data: {0}")]
    Local(#[source] io::Error),
    /// A setting is unusable (for instance TLS without a server
    /// configuration on the passive side).
    #[error("{0}")]
    Config(String),
}

impl TransferError {
    /// Whether the failure is on this side (a file, a reader or writer, a
    /// setting, a port that cannot be listened on) rather than the peer or
    /// the network's.
    pub fn is_local(&self) -> bool {
        matches!(
            self,
            TransferError::File { .. }
                | TransferError::Local(_)
                | TransferError::Config(_)
                | TransferError::Listen { .. }
        )
    }
}

/// Which interfaces a passive connector listens on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bind {
    /// All interfaces, IPv4 and IPv6 (tcllib's passive mode: `socket
    /// -server cmd port` without `-myaddr`).
    Any,
    /// 127.0.0.1, and ::1 on the same port where the machine has it.
    Loopback,
    /// One address.
    Addr(IpAddr),
}

#[derive(Clone, Debug)]
enum Mode {
    Active { host: String, port: u16 },
    Passive { port: u16, bind: Bind },
}

/// Sets up one transfer connection, as tcllib's `transfer::connect` object:
/// [`Connector::active`] connects to a host and port,
/// [`Connector::passive`] listens and accepts exactly one peer.
///
/// The connection is handed to the caller as a [`Stream`], to use with
/// [`transmit`], [`receive`] or directly.
#[derive(Clone, Debug)]
pub struct Connector {
    mode: Mode,
    transport: Transport,
    timeout: Option<Duration>,
}

impl Connector {
    /// Connects to `host`:`port` (tcllib's `-mode active -host H -port P`).
    pub fn active(host: impl Into<String>, port: u16) -> Connector {
        Connector {
            mode: Mode::Active {
                host: host.into(),
                port,
            },
            transport: Transport::Tcp,
            timeout: None,
        }
    }

    /// Listens on `port` (0: one the system picks) on all interfaces and
    /// accepts one peer (tcllib's `-mode passive -port P`).
    pub fn passive(port: u16) -> Connector {
        Connector {
            mode: Mode::Passive {
                port,
                bind: Bind::Any,
            },
            transport: Transport::Tcp,
            timeout: None,
        }
    }

    /// Passive mode: listen on these interfaces (default [`Bind::Any`]).
    /// Ignored in active mode.
    pub fn bind(mut self, bind: Bind) -> Connector {
        if let Mode::Passive { bind: b, .. } = &mut self.mode {
            *b = bind;
        }
        self
    }

    /// Passive mode: listen on the loopback interface only.
    pub fn loopback(self) -> Connector {
        self.bind(Bind::Loopback)
    }

    /// TCP (default) or TLS (the peer of `-socketcmd tls::socket`). With
    /// TLS, the passive side needs [`TlsConfig::server`]; the active side
    /// verifies the peer's certificate against the host name (or
    /// [`TlsConfig::server_name`]).
    pub fn transport(mut self, transport: Transport) -> Connector {
        self.transport = transport;
        self
    }

    /// Gives up when no connection is made within `timeout` (for the
    /// passive side, counted from [`Connector::listen`]), TLS handshake
    /// included. Default: wait as long as it takes, as tcllib does.
    pub fn timeout(mut self, timeout: Duration) -> Connector {
        self.timeout = Some(timeout);
        self
    }

    /// Whether this connector listens.
    pub fn is_passive(&self) -> bool {
        matches!(self.mode, Mode::Passive { .. })
    }

    /// Passive mode: opens the listening socket; its port is known at once
    /// ([`Listener::port`]). Active mode: a configuration error.
    pub async fn listen(self) -> Result<Listener, TransferError> {
        let Mode::Passive { port, bind } = self.mode else {
            return Err(TransferError::Config(
                "an active connector does not listen: use connect()".into(),
            ));
        };
        if let Transport::Tls(tls) = &self.transport
            && tls.server.is_none()
        {
            return Err(TransferError::Config(
                "a passive TLS connector needs a server configuration (certificate and key)".into(),
            ));
        }
        let (port, listeners) =
            bind_listeners(bind, port).map_err(|source| TransferError::Listen { port, source })?;
        Ok(Listener {
            listeners,
            port,
            transport: self.transport,
            deadline: self.timeout.map(|t| (Instant::now() + t, t)),
        })
    }

    /// Makes the connection: active mode connects; passive mode listens and
    /// waits for one peer (use [`Connector::listen`] to learn the port
    /// first).
    pub async fn connect(self) -> Result<Stream, TransferError> {
        match self.mode.clone() {
            Mode::Passive { .. } => self.listen().await?.accept().await,
            Mode::Active { host, port } => {
                let work = dial(&self.transport, &host, port);
                match self.timeout {
                    Some(t) => tokio::time::timeout(t, work)
                        .await
                        .map_err(|_| TransferError::Timeout(t))?,
                    None => work.await,
                }
            }
        }
    }
}

async fn dial(transport: &Transport, host: &str, port: u16) -> Result<Stream, TransferError> {
    // A bracketed IPv6 literal is accepted as the host too.
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let tcp = TcpStream::connect((bare, port))
        .await
        .map_err(|source| TransferError::Connect {
            addr: format!("{host}:{port}"),
            source,
        })?;
    let peer = tcp.peer_addr().map_err(TransferError::Connection)?;
    let _ = tcp.set_nodelay(true);
    match transport {
        Transport::Tcp => Ok(Stream {
            inner: Inner::Tcp(tcp),
            peer,
        }),
        Transport::Tls(tls) => {
            let name = tls.server_name.clone().unwrap_or_else(|| bare.to_string());
            let name = rustls::pki_types::ServerName::try_from(name)
                .map_err(|e| TransferError::Config(format!("TLS server name: {e}")))?;
            let s = tokio_rustls::TlsConnector::from(tls.client.clone())
                .connect(name, tcp)
                .await
                .map_err(|source| TransferError::Tls { peer, source })?;
            Ok(Stream {
                inner: Inner::Tls(Box::new(s.into())),
                peer,
            })
        }
    }
}

/// A passive connector's listening socket(s), waiting for one peer.
/// Dropping it stops listening.
#[derive(Debug)]
pub struct Listener {
    listeners: Vec<TcpListener>,
    port: u16,
    transport: Transport,
    deadline: Option<(Instant, Duration)>,
}

impl Listener {
    /// The port listened on (the one the system picked for port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The listening addresses.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// Waits for the first peer and stops listening: only one connection
    /// is ever accepted, as in tcllib. With TLS, the handshake is part of
    /// the wait (and of the deadline).
    pub async fn accept(self) -> Result<Stream, TransferError> {
        let Listener {
            listeners,
            transport,
            deadline,
            ..
        } = self;
        let work = async move {
            let (tcp, peer) = std::future::poll_fn(|cx| {
                for l in &listeners {
                    if let Poll::Ready(r) = l.poll_accept(cx) {
                        return Poll::Ready(r);
                    }
                }
                Poll::Pending
            })
            .await
            .map_err(TransferError::Connection)?;
            // Exactly one peer: close the listening sockets before anything else.
            drop(listeners);
            let _ = tcp.set_nodelay(true);
            match &transport {
                Transport::Tcp => Ok(Stream {
                    inner: Inner::Tcp(tcp),
                    peer,
                }),
                Transport::Tls(tls) => accept_tls(tls, tcp, peer).await,
            }
        };
        match deadline {
            Some((at, t)) => tokio::time::timeout_at(at, work)
                .await
                .map_err(|_| TransferError::Timeout(t))?,
            None => work.await,
        }
    }
}

async fn accept_tls(
    tls: &Arc<TlsConfig>,
    tcp: TcpStream,
    peer: SocketAddr,
) -> Result<Stream, TransferError> {
    let server = tls.server.clone().ok_or_else(|| {
        TransferError::Config("a passive TLS connector needs a server configuration".into())
    })?;
    // No TLS 1.3 session tickets: a tcl-tls peer that only writes never
    // reads them, and closing a socket with unread data sends a reset that
    // can destroy the end of the data in flight.
    let server = if server.send_tls13_tickets == 0 {
        server
    } else {
        let mut c = (*server).clone();
        c.send_tls13_tickets = 0;
        Arc::new(c)
    };
    let s = tokio_rustls::TlsAcceptor::from(server)
        .accept(tcp)
        .await
        .map_err(|source| TransferError::Tls { peer, source })?;
    Ok(Stream {
        inner: Inner::Tls(Box::new(s.into())),
        peer,
    })
}

fn bind_listeners(bind: Bind, port: u16) -> io::Result<(u16, Vec<TcpListener>)> {
    // One peer is accepted; a short backlog is enough.
    let open = |addr, v6only| crate::transport::open_listener(addr, v6only, 8);
    fn port_of(l: &TcpListener) -> io::Result<u16> {
        Ok(l.local_addr()?.port())
    }
    match bind {
        Bind::Addr(ip) => {
            let l = open(SocketAddr::new(ip, port), ip.is_ipv6().then_some(true))?;
            Ok((port_of(&l)?, vec![l]))
        }
        Bind::Loopback => {
            let v4 = open(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), None)?;
            let port = port_of(&v4)?;
            let mut v = vec![v4];
            if let Ok(v6) = open(SocketAddr::from((Ipv6Addr::LOCALHOST, port)), Some(true)) {
                v.push(v6);
            }
            Ok((port, v))
        }
        Bind::Any => {
            let l = match open(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)), Some(false)) {
                Ok(l) => l,
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => return Err(e),
                // No IPv6 on this machine.
                Err(_) => open(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)), None)?,
            };
            Ok((port_of(&l)?, vec![l]))
        }
    }
}

enum Inner {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::TlsStream<TcpStream>>),
}

/// An established transfer connection (TCP or TLS), readable and writable.
/// Dropping it closes the connection.
pub struct Stream {
    inner: Inner,
    peer: SocketAddr,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("peer", &self.peer)
            .field("tls", &self.is_tls())
            .finish()
    }
}

impl Stream {
    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// Whether the connection is TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self.inner, Inner::Tls(_))
    }

    /// The TCP socket of a plain connection (for instance to hand it to
    /// code that wants a `TcpStream`); a TLS stream is given back.
    pub fn into_tcp(self) -> Result<TcpStream, Stream> {
        match self.inner {
            Inner::Tcp(t) => Ok(t),
            inner => Err(Stream {
                inner,
                peer: self.peer,
            }),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.get_mut().inner {
            Inner::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().inner {
            Inner::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().inner {
            Inner::Tcp(s) => Pin::new(s).poll_flush(cx),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().inner {
            Inner::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().inner {
            Inner::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.inner {
            Inner::Tcp(s) => s.is_write_vectored(),
            Inner::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// Where [`transmit`] takes its bytes from.
pub enum Source<'a> {
    /// A file, read to its end.
    File(&'a Path),
    /// A reader, read to its end.
    Reader(&'a mut (dyn AsyncRead + Unpin + Send)),
    /// Bytes in memory.
    Bytes(&'a [u8]),
}

/// Where [`receive`] puts the bytes.
pub enum Sink<'a> {
    /// A file, created or truncated. After a failure it holds what arrived.
    File(&'a Path),
    /// A writer (flushed at the end, not shut down).
    Writer(&'a mut (dyn AsyncWrite + Unpin + Send)),
    /// Appended to a vector.
    Bytes(&'a mut Vec<u8>),
}

/// How a transfer reports the bytes moved so far (called after every
/// chunk, at most every 256 KiB, and once at the end).
pub struct Progress(Option<Box<dyn FnMut(u64) + Send>>);

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Progress(callback)"
        } else {
            "Progress(none)"
        })
    }
}

impl Progress {
    /// No reporting.
    pub fn none() -> Progress {
        Progress(None)
    }

    /// Calls `f` with the running total.
    pub fn callback(f: impl FnMut(u64) + Send + 'static) -> Progress {
        Progress(Some(Box::new(f)))
    }

    /// Publishes the running total on a watch channel.
    pub fn watch() -> (Progress, watch::Receiver<u64>) {
        let (tx, rx) = watch::channel(0u64);
        (
            Progress::callback(move |n| {
                tx.send_replace(n);
            }),
            rx,
        )
    }

    fn report(&mut self, n: u64) {
        if let Some(f) = &mut self.0 {
            f(n);
        }
    }
}

/// Sends `source` over `stream` and closes it: the protocol of tcllib's
/// `transfer::transmitter` (raw bytes, the end marked by the close).
/// Returns the number of bytes sent, once the receiver has closed its end
/// too (or after 10 s).
pub async fn transmit<S>(
    mut stream: S,
    source: Source<'_>,
    mut progress: Progress,
) -> Result<u64, TransferError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let n = match source {
        Source::Bytes(b) => {
            let mut total = 0u64;
            for chunk in b.chunks(CHUNK) {
                stream
                    .write_all(chunk)
                    .await
                    .map_err(TransferError::Connection)?;
                total += chunk.len() as u64;
                progress.report(total);
            }
            if b.is_empty() {
                progress.report(0);
            }
            total
        }
        Source::Reader(r) => copy(r, &mut stream, &mut progress).await?,
        Source::File(path) => {
            let file = |source| TransferError::File {
                path: path.to_path_buf(),
                source,
            };
            let mut f = tokio::fs::File::open(path).await.map_err(file)?;
            match copy(&mut f, &mut stream, &mut progress).await {
                Err(TransferError::Local(e)) => return Err(file(e)),
                other => other?,
            }
        }
    };
    stream.shutdown().await.map_err(TransferError::Connection)?;
    linger(&mut stream).await;
    Ok(n)
}

/// How long [`transmit`] waits for the receiver to close after the end of
/// the data.
const LINGER: Duration = Duration::from_secs(10);

/// Reads (and drops) whatever the receiver still sends, until it closes or
/// [`LINGER`] passes. Closing a socket that holds unread bytes (a TLS
/// peer's session tickets, its close_notify) makes the kernel send a reset,
/// and a reset can destroy data the receiver has not read yet: waiting for
/// the receiver's own close, as tcllib's receiver does on end of data, keeps
/// the tail of the transfer safe.
async fn linger<S: AsyncRead + Unpin>(stream: &mut S) {
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(LINGER, async {
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// Reads everything from `stream` until the peer closes it, into `sink`:
/// the protocol of tcllib's `transfer::receiver`. Returns the number of
/// bytes received.
///
/// A TLS peer that closes without TLS's close_notify (tcl-tls does so) ends
/// the data as a plain close would: this protocol has no other end marker.
pub async fn receive<S>(
    mut stream: S,
    sink: Sink<'_>,
    mut progress: Progress,
) -> Result<u64, TransferError>
where
    S: AsyncRead + Unpin,
{
    match sink {
        Sink::Bytes(v) => {
            let mut total = 0u64;
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = read_chunk(&mut stream, &mut buf).await?;
                if n == 0 {
                    break;
                }
                v.extend_from_slice(&buf[..n]);
                total += n as u64;
                progress.report(total);
            }
            if total == 0 {
                progress.report(0);
            }
            Ok(total)
        }
        Sink::Writer(w) => {
            let n = copy_in(&mut stream, w, &mut progress).await?;
            w.flush().await.map_err(TransferError::Local)?;
            Ok(n)
        }
        Sink::File(path) => {
            let file = |source| TransferError::File {
                path: path.to_path_buf(),
                source,
            };
            let mut f = tokio::fs::File::create(path).await.map_err(file)?;
            let n = match copy_in(&mut stream, &mut f, &mut progress).await {
                Err(TransferError::Local(e)) => return Err(file(e)),
                other => other?,
            };
            // tokio's File writes in the background: wait for the last write.
            f.flush().await.map_err(file)?;
            Ok(n)
        }
    }
}

/// One read from the connection; an EOF without TLS close_notify is an end.
async fn read_chunk<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut [u8],
) -> Result<usize, TransferError> {
    match stream.read(buf).await {
        Ok(n) => Ok(n),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
        Err(e) => Err(TransferError::Connection(e)),
    }
}

/// Copies a local reader to the connection.
async fn copy<R, W>(r: &mut R, w: &mut W, progress: &mut Progress) -> Result<u64, TransferError>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = r.read(&mut buf).await.map_err(TransferError::Local)?;
        if n == 0 {
            break;
        }
        w.write_all(&buf[..n])
            .await
            .map_err(TransferError::Connection)?;
        total += n as u64;
        progress.report(total);
    }
    if total == 0 {
        progress.report(0);
    }
    Ok(total)
}

/// Copies the connection to a local writer.
async fn copy_in<R, W>(r: &mut R, w: &mut W, progress: &mut Progress) -> Result<u64, TransferError>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf).await {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(TransferError::Connection(e)),
        };
        if n == 0 {
            break;
        }
        w.write_all(&buf[..n]).await.map_err(TransferError::Local)?;
        total += n as u64;
        progress.report(total);
    }
    if total == 0 {
        progress.report(0);
    }
    Ok(total)
}
