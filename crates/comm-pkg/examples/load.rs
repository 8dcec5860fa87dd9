//! A load generator speaking comm's wire protocol over plain TCP, for
//! measuring a comm server (our package in tclsh, `tclcomm serve`, tcllib):
//!
//! ```text
//! cargo run --release -p tclcomm-pkg --example load -- sync PORT [CLIENTS [N]]
//! cargo run --release -p tclcomm-pkg --example load -- big PORT [BYTES]
//! cargo run --release -p tclcomm-pkg --example load -- noread PORT [N [HOLD_MS [SIZE]]]
//! ```
//!
//! `sync`: CLIENTS connections (default 200), each doing N (default 1000)
//! sequential sync sends of `set x 1`; prints the rate. `big`: one sync
//! send of `string length xxx…` with a BYTES-long (default 200 MB) word;
//! prints the answer and the time. `noread`: N (default 100000) sync
//! requests (`string repeat y SIZE`, default 1) written without ever
//! reading a reply, the connection held
//! for HOLD_MS (default 3000), then closed.
//!
//! Every socket has a 60 s read timeout, so a dead server ends the run.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn connect(port: u16) -> std::io::Result<(TcpStream, BufReader<TcpStream>)> {
    let s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut w = s.try_clone()?;
    // The offer: versions 3 and 2, our (unused) id 1.
    w.write_all(b"{3 2} 1\n")?;
    let mut r = BufReader::new(s.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    if !line.starts_with("{vers 3}") {
        return Err(std::io::Error::other(format!("handshake: {line:?}")));
    }
    Ok((w, r))
}

fn reply(r: &mut BufReader<TcpStream>, line: &mut String) -> std::io::Result<()> {
    line.clear();
    if r.read_line(line)? == 0 {
        return Err(std::io::Error::other("server closed"));
    }
    if !line.starts_with("{reply ") {
        return Err(std::io::Error::other(format!("unexpected: {line:?}")));
    }
    Ok(())
}

fn sync(port: u16, clients: usize, n: usize) -> std::io::Result<()> {
    let start = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            std::thread::spawn(move || -> std::io::Result<()> {
                let (mut w, mut r) = connect(port)?;
                let mut line = String::new();
                for k in 1..=n {
                    writeln!(w, "{{send {k} {{{{set x 1}}}}}}")?;
                    reply(&mut r, &mut line)?;
                }
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join()
            .map_err(|_| std::io::Error::other("client panicked"))??;
    }
    let s = start.elapsed().as_secs_f64();
    let ops = clients * n;
    println!(
        "{clients} clients x {n}: {ops} sync sends in {s:.2} s = {:.0}/s",
        ops as f64 / s
    );
    Ok(())
}

fn big(port: u16, bytes: usize) -> std::io::Result<()> {
    let (mut w, mut r) = connect(port)?;
    let mut msg = Vec::with_capacity(bytes + 64);
    msg.extend_from_slice(b"{send 1 {{string length ");
    msg.resize(msg.len() + bytes, b'x');
    msg.extend_from_slice(b"}}}\n");
    let start = Instant::now();
    w.write_all(&msg)?;
    drop(msg);
    let mut line = String::new();
    reply(&mut r, &mut line)?;
    println!(
        "{} in {:.2} s",
        line.trim_end(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn noread(port: u16, n: usize, hold_ms: u64, size: usize) -> std::io::Result<()> {
    let (mut w, _r) = connect(port)?;
    w.set_write_timeout(Some(Duration::from_secs(30)))?;
    let mut buf = Vec::new();
    for k in 1..=n {
        writeln!(buf, "{{send {k} {{{{string repeat y {size}}}}}}}")?;
    }
    w.write_all(&buf)?;
    println!("wrote {n} requests; holding {hold_ms} ms");
    std::thread::sleep(Duration::from_millis(hold_ms));
    Ok(())
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num =
        |k: usize, d: usize| -> usize { args.get(k).and_then(|a| a.parse().ok()).unwrap_or(d) };
    let port = u16::try_from(num(1, 0)).unwrap_or(0);
    match args.first().map(String::as_str) {
        Some("sync") => sync(port, num(2, 200), num(3, 1000)),
        Some("big") => big(port, num(2, 200_000_000)),
        Some("noread") => noread(port, num(2, 100_000), num(3, 3000) as u64, num(4, 1)),
        _ => Err(std::io::Error::other(
            "usage: load sync|big|noread PORT [...]",
        )),
    }
}
