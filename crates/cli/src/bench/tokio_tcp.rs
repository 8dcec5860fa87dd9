//! The Rust runtime's floor: the ping-pong of [`super::tcp`] (same lines,
//! same sizes) on tokio sockets, with the threads arranged as in the
//! Rust ↔ Rust column: the echo server on the bench's runtime, the caller
//! blocking on that runtime from the main thread (as `#[tokio::main]`
//! does), or on a runtime of its own for the blocking-facade row, and the
//! concurrent clients as tasks. What tclcomm adds on top of this is its
//! own cost; what this adds on top of plain TCP is tokio's (a readiness
//! wait per read, and a hand-over between threads per answer).

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

use super::Work;

const REQUEST: &[u8] = b"{send 1 {{set a 1}}}\n";

/// Echoes every complete line it reads, in one write per read.
async fn echo(mut s: TcpStream) -> std::io::Result<()> {
    s.set_nodelay(true)?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut held = 0;
    loop {
        let n = s.read(&mut buf[held..]).await?;
        if n == 0 {
            return Ok(());
        }
        held += n;
        let whole = buf[..held]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        s.write_all(&buf[..whole]).await?;
        buf.copy_within(whole..held, 0);
        held -= whole;
        if held == buf.len() {
            return Err(std::io::Error::other("line too long"));
        }
    }
}

/// A tokio echo server on loopback, on `rt`: its port, and its accept task
/// (to abort when done; the connections' tasks end with their clients).
fn server(rt: &Runtime) -> std::io::Result<(u16, tokio::task::JoinHandle<()>)> {
    let l = rt.block_on(TcpListener::bind("127.0.0.1:0"))?;
    let port = l.local_addr()?.port();
    let accept = rt.spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(echo(s));
        }
    });
    Ok((port, accept))
}

async fn connect(port: u16) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect(("127.0.0.1", port)).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// One round trip of [`REQUEST`] on `s`.
async fn ping(s: &mut TcpStream) -> std::io::Result<()> {
    let mut buf = [0u8; 256];
    s.write_all(REQUEST).await?;
    let mut got = 0;
    while got < REQUEST.len() {
        match s.read(&mut buf[got..]).await? {
            0 => return Err(std::io::Error::other("echo server went away")),
            k => got += k,
        }
    }
    Ok(())
}

/// `n` round trips of [`REQUEST`] on `s`.
async fn pings(mut s: TcpStream, n: usize) -> std::io::Result<()> {
    for _ in 0..n {
        ping(&mut s).await?;
    }
    Ok(())
}

/// `fut` on `rt`, given up after `limit` (the timer is made inside the
/// runtime that polls it); errors as text.
fn within<T>(
    rt: &Runtime,
    limit: Duration,
    fut: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T, String> {
    rt.block_on(async { tokio::time::timeout(limit, fut).await })
        .map_err(|_| format!("timeout after {limit:?}"))?
        .map_err(|e| e.to_string())
}

/// Runs `work` (sync, blocking or concurrent) against a fresh echo server
/// on `rt`; the time it took.
pub(super) fn run(rt: &Runtime, work: Work, limit: Duration) -> Result<f64, String> {
    let (port, accept) = server(rt).map_err(|e| e.to_string())?;
    let r = inner(rt, port, work, limit);
    accept.abort();
    r
}

fn inner(rt: &Runtime, port: u16, work: Work, limit: Duration) -> Result<f64, String> {
    match work {
        Work::Sync(n) => within(rt, limit, async {
            let s = connect(port).await?;
            let start = Instant::now();
            pings(s, n).await?;
            Ok(start.elapsed().as_secs_f64())
        }),
        Work::SyncBlocking(n) => {
            // The facade's shape: the connection lives on a runtime of its
            // own, and the caller blocks on it for every round trip.
            let own = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            let mut s = within(&own, limit, connect(port))?;
            let deadline = Instant::now() + limit;
            let start = Instant::now();
            for _ in 0..n {
                if Instant::now() > deadline {
                    return Err(format!("timeout after {limit:?}"));
                }
                own.block_on(ping(&mut s)).map_err(|e| e.to_string())?;
            }
            Ok(start.elapsed().as_secs_f64())
        }
        Work::Concurrent(clients, n) => within(rt, limit, async {
            let mut conns = Vec::with_capacity(clients);
            for _ in 0..clients {
                conns.push(connect(port).await?);
            }
            let start = Instant::now();
            let tasks: Vec<_> = conns
                .into_iter()
                .map(|s| tokio::spawn(pings(s, n)))
                .collect();
            for t in tasks {
                t.await.map_err(std::io::Error::other)??;
            }
            Ok(start.elapsed().as_secs_f64())
        }),
        _ => Err("not a tokio TCP workload".into()),
    }
}
