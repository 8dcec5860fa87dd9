//! Runtime benchmarks, measured side by side in one run (run with `cargo
//! bench -p tclcomm --bench runtime`; `-- --quick` for a short run):
//! - sync round trips Rust↔Rust against a plain blocking TCP ping-pong of
//!   the same message sizes (target: ≥ 80%);
//! - async bursts of 20,000 / 80,000 / 200,000 messages (target: flat rate,
//!   ≥ 100× tcllib's ~15k/s at 20,000);
//! - a 50 MB sync send full of special characters (target: < 1 s).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tclcomm::{Channel, Config, Dispatcher, Script};

fn ping_pong(request: usize, reply: usize, iterations: usize) -> f64 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_nodelay(true).unwrap();
        let mut buf = vec![0u8; request];
        let out = vec![b'y'; reply];
        while s.read_exact(&mut buf).is_ok() {
            if s.write_all(&out).is_err() {
                break;
            }
        }
    });
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_nodelay(true).unwrap();
    let msg = vec![b'x'; request];
    let mut buf = vec![0u8; reply];
    for _ in 0..iterations / 10 {
        c.write_all(&msg).unwrap();
        c.read_exact(&mut buf).unwrap();
    }
    let t = Instant::now();
    for _ in 0..iterations {
        c.write_all(&msg).unwrap();
        c.read_exact(&mut buf).unwrap();
    }
    let rate = iterations as f64 / t.elapsed().as_secs_f64();
    drop(c);
    server.join().unwrap();
    rate
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    // `--big`: only the 50 MB payload (for profiling).
    let big_only = std::env::args().any(|a| a == "--big");
    // `--async`: only the async bursts (for profiling).
    let async_only = std::env::args().any(|a| a == "--async");
    // `--sync`: only the sync round trips.
    let sync_only = std::env::args().any(|a| a == "--sync");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let counter = Arc::new(AtomicUsize::new(0));
    let d = Dispatcher::new();
    d.register("ping", |_c, _a| Ok("pong".into()));
    let c2 = counter.clone();
    d.register("tick", move |_c, _a| {
        c2.fetch_add(1, Ordering::Relaxed);
        Ok(String::new())
    });
    d.register("echo", |_c, a| Ok(a.first().cloned().unwrap_or_default()));
    let server = rt
        .block_on(Channel::new(Config::listening().evaluator(d)))
        .unwrap();
    let client = rt.block_on(Channel::new(Config::new())).unwrap();
    let id = server.self_id();

    // Sync round trips, then the same message sizes over plain TCP.
    let n = if quick || big_only || async_only {
        200
    } else {
        20_000
    };
    // Rounds alternate between the two, and each side keeps its best, so
    // that a bad moment of the (shared, 2-core) machine hits neither alone.
    let rounds = if quick || big_only || async_only {
        1
    } else {
        3
    };
    let (mut task_rate, mut thread_rate, mut own_rate, mut tcp_rate) = (0f64, 0f64, 0f64, 0f64);
    for _ in 0..rounds {
        // The caller as a task on the runtime, as in an async program: the
        // scheduler may then run both ends on one CPU.
        let (c, i) = (client.clone(), id.clone());
        let rate = rt
            .block_on(rt.spawn(async move {
                for _ in 0..n / 10 {
                    c.send(i.clone(), "ping").await.unwrap();
                }
                let t = Instant::now();
                for _ in 0..n {
                    c.send(i.clone(), "ping").await.unwrap();
                }
                n as f64 / t.elapsed().as_secs_f64()
            }))
            .unwrap();
        task_rate = task_rate.max(rate);
        // The caller on its own thread (as the blocking facade, or another
        // process): each answer crosses threads, as in the TCP ping-pong.
        let rate = rt.block_on(async {
            for _ in 0..n / 10 {
                client.send(id.clone(), "ping").await.unwrap();
            }
            let t = Instant::now();
            for _ in 0..n {
                client.send(id.clone(), "ping").await.unwrap();
            }
            n as f64 / t.elapsed().as_secs_f64()
        });
        thread_rate = thread_rate.max(rate);
        // The caller on its own thread driving a runtime of its own (a
        // current-thread runtime, as a client program would have): the
        // answer wakes the caller directly, as in the TCP ping-pong.
        let own = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let rate = own.block_on(async {
            let c = Channel::new(Config::new()).await.unwrap();
            for _ in 0..n / 10 {
                c.send(id.clone(), "ping").await.unwrap();
            }
            let t = Instant::now();
            for _ in 0..n {
                c.send(id.clone(), "ping").await.unwrap();
            }
            let rate = n as f64 / t.elapsed().as_secs_f64();
            c.destroy();
            rate
        });
        own_rate = own_rate.max(rate);
        // `{send 123 ping}\n` and `{reply 123 {return -code 0 pong}}\n`
        tcp_rate = tcp_rate.max(ping_pong(16, 35, n));
    }
    println!(
        "sync round trips (best of {rounds}): plain TCP ping-pong {tcp_rate:.0}/s; tclcomm: caller on another thread than the runtime {thread_rate:.0}/s (ratio {:.2}), caller driving its own current-thread runtime {own_rate:.0}/s (ratio {:.2}), caller a task on the runtime {task_rate:.0}/s (ratio {:.2}); target >= 0.80",
        thread_rate / tcp_rate,
        own_rate / tcp_rate,
        task_rate / tcp_rate
    );

    // Async bursts: send N, then one sync send that arrives after all of
    // them (same connection, in order), so the time covers their execution.
    let bursts: &[usize] = if big_only || sync_only {
        &[]
    } else if quick {
        &[20_000]
    } else {
        &[20_000, 80_000, 200_000]
    };
    // Bursts are short (tens of ms) and the machine is shared: every burst
    // runs several times, and the best and the median are reported.
    let burst_rounds = if quick { 1 } else { 5 };
    for &burst in bursts {
        let mut runs = Vec::with_capacity(burst_rounds);
        for _ in 0..burst_rounds {
            counter.store(0, Ordering::Relaxed);
            let t = Instant::now();
            let sent = rt.block_on(async {
                for _ in 0..burst {
                    client.send_async(id.clone(), "tick").await.unwrap();
                }
                let sent = t.elapsed();
                client.send(id.clone(), "ping").await.unwrap();
                sent
            });
            let el = t.elapsed().as_secs_f64();
            assert_eq!(counter.load(Ordering::Relaxed), burst);
            runs.push((el, sent.as_secs_f64()));
        }
        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let best = runs[0];
        let median = runs[runs.len() / 2];
        let rate = burst as f64 / best.0;
        println!(
            "async burst of {burst} (best of {burst_rounds}): {rate:.0} messages/s ({:.0}x tcllib's ~15k/s); sending took {:.0}% of it; median {:.0} messages/s ({:.0}x)",
            rate / 15_000.0,
            100.0 * best.1 / best.0,
            burst as f64 / median.0,
            burst as f64 / median.0 / 15_000.0,
        );
    }

    // Big payloads full of special characters, echoed back.
    let sizes: &[usize] = if async_only || sync_only {
        &[]
    } else if big_only {
        &[50 << 20]
    } else if quick {
        &[1 << 20]
    } else {
        &[1 << 20, 10 << 20, 50 << 20]
    };
    // Two kinds of data full of special characters: every character Tcl
    // quotes (brace-quotable, as most Tcl data is), and the worst case,
    // where a backslash-newline forces backslash quoting at every level.
    let kinds = [
        ("special characters", "{a} [b] $c \"d\" \\e ; f\n\té中 "),
        (
            "special characters, backslash-quoted",
            "{\"}[$;\\\n\t\0é😀 }",
        ),
    ];
    for &size in sizes {
        for (kind, unit) in kinds {
            let payload = unit.repeat(size / unit.len());
            let script = Script::command(["echo", payload.as_str()]);
            let t = Instant::now();
            let got = rt
                .block_on(client.send_timeout(id.clone(), script, Duration::from_secs(120)))
                .unwrap();
            let el = t.elapsed();
            assert!(got == payload);
            println!(
                "sync echo of {} MB of {kind}: {:.3} s",
                size >> 20,
                el.as_secs_f64()
            );
        }
    }
}
