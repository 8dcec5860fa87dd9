//! List codec throughput on 10 MB elements, next to the same work done by
//! `tclsh` (Tcl 8.6's own `list` and `lindex`) on the same data.
//!
//! Data sets:
//! - `special`: a 24-byte pattern full of list specials (braces, brackets,
//!   `$`, `;`, quotes, backslashes, whitespace) repeated to 10 MB; its braces
//!   balance, so `list` brace-quotes it.
//! - `special-escaped`: the same with a leading `}`, which forces backslash
//!   quoting of every special character.
//! - `plain`: 10 MB of letters (written bare).
//!
//! For Tcl, each iteration works on a fresh string object (built before the
//! clock starts) because Tcl caches list representations: `list` is timed as
//! `string bytelength [list $s]`, which forces the string rep and nothing
//! else (`string length` would also count characters and convert the object,
//! work that is not list formatting), parsing as `lindex $fresh 0` (which,
//! like our owned parse, copies the element out).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tclcomm_wire::list::{
    format_list_into, parse_list, parse_list_cow, quote_element, quote_element_cow,
};

const SIZE: usize = 10 * 1024 * 1024;
const PATTERN: &str = "a{b}c d\ne$f[g]h;i\"j\\\\k\tl";

fn data() -> Vec<(&'static str, String)> {
    let special = PATTERN.repeat(SIZE / PATTERN.len());
    vec![
        ("special", special.clone()),
        ("special-escaped", format!("}}{special}")),
        ("plain", "abcdefgh".repeat(SIZE / 8)),
    ]
}

/// Milliseconds per operation measured inside `tclsh` for (list, lindex),
/// or None when `tclsh` is missing. Bounded by a deadline.
fn tcl_millis(element: &str) -> Option<(f64, f64)> {
    const SCRIPT: &str = r#"
fconfigure stdin -translation binary -encoding binary
set s [encoding convertfrom utf-8 [read stdin]]
set n 5
set fresh {}
for {set i 0} {$i < $n} {incr i} { lappend fresh [string range "x$s" 1 end] }
set t0 [clock microseconds]
foreach c $fresh { string bytelength [list $c] }
set tl [expr {([clock microseconds] - $t0) / 1000.0 / $n}]
set l [list $s]
set fresh {}
for {set i 0} {$i < $n} {incr i} { lappend fresh [string range "x$l" 1 end] }
set t0 [clock microseconds]
foreach c $fresh { lindex $c 0 }
set tp [expr {([clock microseconds] - $t0) / 1000.0 / $n}]
if {[lindex $l 0] ne $s} { error "round trip failed" }
puts "$tl $tp"
"#;
    let dir = std::env::temp_dir().join(format!("tclcomm-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let script = dir.join("codec.tcl");
    std::fs::write(&script, SCRIPT).ok()?;
    let mut child = Command::new("tclsh")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take()?;
    let payload = element.as_bytes().to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&payload);
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let _ = writer.join();
    let out = child.wait_with_output().ok()?;
    let _ = std::fs::remove_dir_all(&dir);
    let text = String::from_utf8(out.stdout).ok()?;
    let mut it = text.split_whitespace().map(|w| w.parse::<f64>());
    Some((it.next()?.ok()?, it.next()?.ok()?))
}

/// Our own best-of-N milliseconds for `f`.
fn ours_millis(mut f: impl FnMut()) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..15 {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64() * 1000.0);
    }
    best
}

fn codec(c: &mut Criterion) {
    let mut summary = Vec::new();
    for (name, element) in data() {
        let mut group = c.benchmark_group(format!("codec/{name}"));
        group.throughput(Throughput::Bytes(element.len() as u64));
        group.sample_size(20);
        group.measurement_time(Duration::from_secs(3));

        let mut buf = String::with_capacity(2 * element.len() + 16);
        group.bench_function("format (reused buffer)", |b| {
            b.iter(|| {
                buf.clear();
                format_list_into([black_box(element.as_str())], &mut buf);
                black_box(buf.len())
            })
        });
        group.bench_function("format (new String)", |b| {
            b.iter(|| {
                let mut s = String::new();
                quote_element(black_box(&element), true, &mut s);
                black_box(s.len())
            })
        });
        group.bench_function("format (zero-copy Quoted)", |b| {
            b.iter(|| black_box(quote_element_cow(black_box(&element), true).len()))
        });
        let mut formatted = String::new();
        format_list_into([element.as_str()], &mut formatted);
        let mut written = String::new();
        quote_element_cow(&element, true).write_to(&mut written);
        assert_eq!(written, formatted);
        assert_eq!(
            parse_list(&formatted).unwrap(),
            std::slice::from_ref(&element)
        );
        group.bench_function("parse (Cow)", |b| {
            b.iter(|| black_box(parse_list_cow(black_box(&formatted)).unwrap().len()))
        });
        group.bench_function("parse (owned)", |b| {
            b.iter(|| black_box(parse_list(black_box(&formatted)).unwrap().len()))
        });
        group.finish();

        let fmt_reuse = ours_millis(|| {
            buf.clear();
            format_list_into([black_box(element.as_str())], &mut buf);
            black_box(buf.len());
        });
        let fmt_new = ours_millis(|| {
            let mut s = String::new();
            quote_element(black_box(&element), true, &mut s);
            black_box(s.len());
        });
        let fmt_cow = ours_millis(|| {
            black_box(quote_element_cow(black_box(&element), true).len());
        });
        let parse_cow = ours_millis(|| {
            black_box(parse_list_cow(black_box(&formatted)).unwrap().len());
        });
        let parse_owned = ours_millis(|| {
            black_box(parse_list(black_box(&formatted)).unwrap().len());
        });
        summary.push((
            name,
            element.len(),
            fmt_reuse,
            fmt_new,
            fmt_cow,
            parse_cow,
            parse_owned,
            tcl_millis(&element),
        ));
    }

    println!("\n=== list codec vs tclsh (ms per 10 MB element; ratio = tclsh / ours) ===");
    for (name, len, fr, fnew, fc, pc, po, tcl) in summary {
        println!("{name} ({len} bytes):");
        match tcl {
            Some((tl, tp)) => {
                println!(
                    "  format: ours {fc:.3} (zero-copy), {fr:.3} (reused buffer), {fnew:.3} (new String); tclsh list {tl:.3}; ratio {:.1}x / {:.1}x / {:.1}x",
                    tl / fc,
                    tl / fr,
                    tl / fnew
                );
                println!(
                    "  parse:  ours {pc:.3} (Cow), {po:.3} (owned); tclsh lindex {tp:.3}; ratio {:.1}x / {:.1}x",
                    tp / pc,
                    tp / po
                );
            }
            None => {
                println!(
                    "  format: ours {fc:.3} / {fr:.3} / {fnew:.3}; parse: ours {pc:.3} / {po:.3}; tclsh not available"
                );
            }
        }
    }
}

criterion_group!(benches, codec);
criterion_main!(benches);
