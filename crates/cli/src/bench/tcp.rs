//! The floor: a plain TCP ping-pong with blocking std sockets, carrying
//! messages of the sizes comm would.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use super::{Work, payload};

const REQUEST: &[u8] = b"{send 1 {{set a 1}}}\n";
const ASYNC: &[u8] = b"a{async 1 {{incr ::n}}}\n";

/// An echo server on loopback: every line comes back, except lines that
/// start with `a` (the async ones). Stops when its clients have gone.
fn server(clients: usize) -> std::io::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    let port = l.local_addr()?.port();
    std::thread::spawn(move || {
        for _ in 0..clients {
            let Ok((s, _)) = l.accept() else { return };
            std::thread::spawn(move || {
                let _ = s.set_nodelay(true);
                let Ok(w) = s.try_clone() else { return };
                let mut w = std::io::BufWriter::new(w);
                let mut r = BufReader::new(s);
                let mut line = Vec::new();
                loop {
                    line.clear();
                    match r.read_until(b'\n', &mut line) {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    if line.first() == Some(&b'a') {
                        continue;
                    }
                    if w.write_all(&line).is_err() {
                        return;
                    }
                    // Flush only when nothing else is waiting, as a
                    // server that batches its replies would.
                    if r.buffer().is_empty() && w.flush().is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(port)
}

fn connect(port: u16, limit: Duration) -> std::io::Result<(TcpStream, BufReader<TcpStream>)> {
    let s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(limit))?;
    let r = BufReader::new(s.try_clone()?);
    Ok((s, r))
}

fn ping(
    s: &mut TcpStream,
    r: &mut BufReader<TcpStream>,
    msg: &[u8],
    line: &mut Vec<u8>,
) -> std::io::Result<()> {
    s.write_all(msg)?;
    line.clear();
    r.read_until(b'\n', line)?;
    if line.len() != msg.len() {
        return Err(std::io::Error::other("short echo"));
    }
    Ok(())
}

/// Runs `work` against a fresh echo server; the time it took.
pub(super) fn run(work: Work, limit: Duration) -> Result<f64, String> {
    inner(work, limit).map_err(|e| e.to_string())
}

fn inner(work: Work, limit: Duration) -> std::io::Result<f64> {
    let clients = if let Work::Concurrent(c, _) = work {
        c
    } else {
        1
    };
    let port = server(clients)?;
    if let Work::Concurrent(c, n) = work {
        let mut conns = Vec::new();
        for _ in 0..c {
            conns.push(connect(port, limit)?);
        }
        let start = Instant::now();
        let threads: Vec<_> = conns
            .into_iter()
            .map(|(mut s, mut r)| {
                std::thread::spawn(move || {
                    let mut line = Vec::new();
                    for _ in 0..n {
                        ping(&mut s, &mut r, REQUEST, &mut line)?;
                    }
                    Ok::<(), std::io::Error>(())
                })
            })
            .collect();
        for t in threads {
            t.join()
                .map_err(|_| std::io::Error::other("client thread panicked"))??;
        }
        return Ok(start.elapsed().as_secs_f64());
    }
    let (mut s, mut r) = connect(port, limit)?;
    let mut line = Vec::new();
    let start = Instant::now();
    match work {
        Work::Sync(n) => {
            for _ in 0..n {
                ping(&mut s, &mut r, REQUEST, &mut line)?;
            }
        }
        Work::Async(n) => {
            let mut w = std::io::BufWriter::new(s.try_clone()?);
            for _ in 0..n {
                w.write_all(ASYNC)?;
            }
            w.flush()?;
            ping(&mut s, &mut r, REQUEST, &mut line)?;
        }
        Work::Callback(n) => {
            let mut w = s.try_clone()?;
            let writer = std::thread::spawn(move || {
                let mut out = Vec::with_capacity(n * REQUEST.len());
                for _ in 0..n {
                    out.extend_from_slice(REQUEST);
                }
                w.write_all(&out)
            });
            for _ in 0..n {
                line.clear();
                r.read_until(b'\n', &mut line)?;
            }
            writer
                .join()
                .map_err(|_| std::io::Error::other("writer panicked"))??;
        }
        Work::Payload(size, content) => {
            let mut msg = payload(size, content).replace('\n', " ").into_bytes();
            msg.push(b'\n');
            let start = Instant::now();
            let mut w = s.try_clone()?;
            let writer = std::thread::spawn(move || w.write_all(&msg));
            line.clear();
            r.read_until(b'\n', &mut line)?;
            writer
                .join()
                .map_err(|_| std::io::Error::other("writer panicked"))??;
            if line.len() != size + 1 {
                return Err(std::io::Error::other("short echo"));
            }
            return Ok(start.elapsed().as_secs_f64());
        }
        Work::Concurrent(..) => unreachable!("handled above"),
        Work::SyncBlocking(n) => {
            for _ in 0..n {
                ping(&mut s, &mut r, REQUEST, &mut line)?;
            }
        }
        Work::PeakMemory(..) | Work::Idle(_) | Work::FanOut(..) => {
            return Err(std::io::Error::other("not a plain TCP workload"));
        }
    }
    Ok(start.elapsed().as_secs_f64())
}
