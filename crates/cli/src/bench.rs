//! `tclcomm bench`: tcllib comm, our comm (Rust, and in tclsh) and a plain
//! TCP ping-pong, side by side, on the same workloads.
//!
//! Every run is bounded: a Tcl process is killed at its deadline and a Rust
//! run is given up; the cell then says so. tcllib's payload cost grows with
//! the square of the size (1 MB ~3 s, 10 MB ~250 s), so its payload rows
//! stop at 1 MB and larger ones read "skipped".

mod chart;
mod tcp;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tclcomm::{Channel, Config, Dispatcher, Id, Script, TclError};
use tokio::runtime::Runtime;

use crate::{Failure, Outcome};

/// Arguments of `tclcomm bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A small, fast run (a few seconds; small counts and payloads).
    #[arg(long)]
    quick: bool,

    /// Where to write bench.md (the table) and bench.svg (the chart).
    #[arg(long, value_name = "DIR", default_value = "target/bench")]
    out: PathBuf,

    /// Instead: MB megabytes through a transfer connection (tclcomm
    /// transmit/receive) against a plain TCP copy, and peak memory.
    #[arg(long, value_name = "MB")]
    transfer: Option<u64>,

    /// Only the workloads whose label contains one of these texts
    /// (comma-separated, e.g. `sync,callbacks`): to look at a few cells.
    #[arg(long, value_name = "TEXT", value_delimiter = ',')]
    rows: Vec<String>,

    /// Only the columns whose name contains one of these texts
    /// (comma-separated, e.g. `plain TCP,tcllib → Rust`).
    #[arg(long, value_name = "TEXT", value_delimiter = ',')]
    columns: Vec<String>,
}

/// Whether `name` is selected by `wanted` (everything when it is empty).
fn selected(wanted: &[String], name: &str) -> bool {
    wanted.is_empty() || wanted.iter().any(|w| name.contains(w.as_str()))
}

/// One workload, with its size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Work {
    /// Sequential synchronous round trips of a tiny script.
    Sync(usize),
    /// A burst of async sends, then one sync send to see them all done.
    Async(usize),
    /// Sends with a callback, all in flight at once.
    Callback(usize),
    /// One sync send of a payload of this many bytes that comes back as
    /// the result.
    Payload(usize, Content),
    /// This many clients at once, each doing this many sync round trips.
    Concurrent(usize, usize),
}

impl Work {
    fn label(&self) -> String {
        match *self {
            Work::Sync(n) => format!("sync round trips ({n})"),
            Work::Async(n) => format!("async burst ({n})"),
            Work::Callback(n) => format!("callbacks ({n})"),
            Work::Payload(b, c) => format!("{} payload {}", size_text(b), c.name()),
            Work::Concurrent(c, n) => format!("{c} clients × {n}"),
        }
    }

    /// Operations per run (for rates), or `None` for payloads (timed).
    fn ops(&self) -> Option<usize> {
        match *self {
            Work::Sync(n) | Work::Async(n) | Work::Callback(n) => Some(n),
            Work::Concurrent(c, n) => Some(c * n),
            Work::Payload(..) => None,
        }
    }
}

fn size_text(bytes: usize) -> String {
    if bytes >= 1 << 20 {
        format!("{} MB", bytes >> 20)
    } else {
        format!("{} KB", bytes >> 10)
    }
}

/// What a payload is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Content {
    /// `x`s.
    Plain,
    /// A mix of every character Tcl treats specially (framing must count
    /// braces), still brace-quotable.
    Special,
    /// The same after an unbalanced `}`: list quoting must backslash-escape
    /// about one byte in two (the codec's worst case).
    Escaped,
}

impl Content {
    fn name(self) -> &'static str {
        match self {
            Content::Plain => "plain",
            Content::Special => "special",
            Content::Escaped => "escaped",
        }
    }
}

/// A payload of `size` bytes made of `content`.
pub(crate) fn payload(size: usize, content: Content) -> String {
    let unit = "{a} [b] $c \"d\" \\e ; f\n";
    let mut s = match content {
        Content::Plain => return "x".repeat(size),
        Content::Special => String::new(),
        Content::Escaped => "}".to_string(),
    };
    s.push_str(&unit.repeat(size / unit.len() + 1));
    s.truncate(size);
    s
}

/// Who runs a side of a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Side {
    /// tclcomm's Rust runtime.
    Rust,
    /// tclsh with tcllib comm.
    Tcllib,
    /// tclsh with our comm package.
    Ours,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Rust => "Rust",
            Side::Tcllib => "tcllib",
            Side::Ours => "ours-in-tclsh",
        }
    }
}

/// A column of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Column {
    /// The plain TCP ping-pong floor.
    Tcp,
    /// A client side and a server side.
    Pair(Side, Side),
}

impl Column {
    fn name(self) -> String {
        match self {
            Column::Tcp => "plain TCP".into(),
            Column::Pair(Side::Ours, Side::Ours) => "ours-in-tclsh ↔ same".into(),
            Column::Pair(a, b) if a == b => format!("{} ↔ {}", a.name(), b.name()),
            Column::Pair(a, b) => format!("{} → {}", a.name(), b.name()),
        }
    }
}

/// What a cell holds.
#[derive(Debug, Clone)]
enum Cell {
    /// Seconds the run took.
    Secs(f64),
    /// Not run, and why.
    Skipped(String),
    /// Failed or timed out.
    Failed(String),
}

/// Rounds per cell for the message workloads (see [`Env::measure`]).
const ROUNDS: usize = 3;

/// The per-process and per-run bounds.
struct Bounds {
    run: Duration,
}

/// Creates `dir` and checks that a file can be written in it.
fn check_out_dir(dir: &Path) -> Outcome {
    let probe = dir.join(format!(".tclcomm-bench-{}", std::process::id()));
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&probe, b""))
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| {
            Failure::local(format!(
                "tclcomm bench: cannot write to {}: {e}\n\
                 Pass --out DIR with a directory you can write.",
                dir.display()
            ))
        })
}

/// Runs `tclcomm bench`.
pub(crate) fn run(args: Args) -> Outcome {
    if let Some(mb) = args.transfer {
        return crate::transfer::bench(mb);
    }
    let mut works: Vec<Work> = if args.quick {
        vec![
            Work::Sync(200),
            Work::Async(500),
            Work::Callback(200),
            Work::Payload(64 << 10, Content::Plain),
            Work::Payload(64 << 10, Content::Special),
            Work::Payload(64 << 10, Content::Escaped),
            Work::Payload(1 << 20, Content::Plain),
            Work::Concurrent(4, 50),
        ]
    } else {
        vec![
            Work::Sync(20_000),
            Work::Async(20_000),
            Work::Callback(20_000),
            Work::Payload(1 << 20, Content::Plain),
            Work::Payload(1 << 20, Content::Special),
            Work::Payload(1 << 20, Content::Escaped),
            Work::Payload(10 << 20, Content::Plain),
            Work::Payload(10 << 20, Content::Special),
            Work::Payload(50 << 20, Content::Plain),
            Work::Payload(50 << 20, Content::Special),
            Work::Payload(50 << 20, Content::Escaped),
            Work::Concurrent(16, 1_000),
        ]
    };
    works.retain(|w| selected(&args.rows, &w.label()));
    // Before minutes of measuring: a directory that cannot take the
    // results fails now, not at the end.
    check_out_dir(&args.out)?;
    let bounds = Bounds {
        run: if args.quick {
            Duration::from_secs(30)
        } else {
            Duration::from_secs(60)
        },
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::local(format!("tclcomm bench: runtime: {e}")))?;

    let mut notes = Vec::new();
    let tcl = tcllib_available();
    if !tcl {
        notes.push("tclsh with tcllib comm is not installed: tcllib columns skipped.".to_string());
    }
    let ours_dir = if tcl { ours_package(&mut notes) } else { None };

    let mut columns = vec![Column::Tcp, Column::Pair(Side::Rust, Side::Rust)];
    columns.extend([
        Column::Pair(Side::Rust, Side::Tcllib),
        Column::Pair(Side::Tcllib, Side::Rust),
        Column::Pair(Side::Tcllib, Side::Tcllib),
        Column::Pair(Side::Ours, Side::Ours),
        Column::Pair(Side::Ours, Side::Tcllib),
        Column::Pair(Side::Tcllib, Side::Ours),
    ]);
    columns.retain(|c| selected(&args.columns, &c.name()));
    let env = Env {
        rt: &rt,
        ours_dir: ours_dir.as_deref(),
        tcl,
        bounds: &bounds,
    };
    let mut table: HashMap<(usize, Column), Cell> = HashMap::new();
    for (wi, work) in works.iter().enumerate() {
        for &col in &columns {
            let cell = env.measure(col, *work);
            eprintln!(
                "  {:<28} {:<22} {}",
                work.label(),
                col.name(),
                cell_text(&cell, work)
            );
            table.insert((wi, col), cell);
        }
    }
    let md = markdown(&works, &columns, &table, &notes);
    println!("\n{md}");
    std::fs::create_dir_all(&args.out)
        .and_then(|()| std::fs::write(args.out.join("bench.md"), &md))
        .and_then(|()| {
            std::fs::write(
                args.out.join("bench.svg"),
                chart::svg(&chart_rows(&works, &columns, &table)),
            )
        })
        .map_err(|e| {
            Failure::local(format!(
                "tclcomm bench: cannot write to {}: {e}",
                args.out.display()
            ))
        })?;
    eprintln!(
        "wrote {} and {}",
        args.out.join("bench.md").display(),
        args.out.join("bench.svg").display()
    );
    Ok(())
}

fn tcllib_available() -> bool {
    Command::new("tclsh")
        .arg("/dev/stdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .and_then(|mut c| {
            if let Some(mut i) = c.stdin.take() {
                i.write_all(b"exit [catch {package require comm}]\n")?;
            }
            c.wait()
        })
        .is_ok_and(|s| s.success())
}

/// Lays our package (the library this binary carries) out in a temporary
/// directory.
fn ours_package(notes: &mut Vec<String>) -> Option<PathBuf> {
    let dir = std::env::temp_dir().join(format!("tclcomm-bench-pkg-{}", std::process::id()));
    match comm::write_package_bytes(&dir, crate::tcl_package::EMBEDDED) {
        Ok(()) => Some(dir),
        Err(e) => {
            notes.push(format!(
                "cannot lay out our Tcl package in {}: {e}: ours-in-tclsh column skipped.",
                dir.display()
            ));
            None
        }
    }
}

struct Env<'a> {
    rt: &'a Runtime,
    ours_dir: Option<&'a Path>,
    tcl: bool,
    bounds: &'a Bounds,
}

impl Env<'_> {
    /// The best of [`ROUNDS`] measurements for the message workloads (their
    /// rates swing with CPU placement on a small machine), one for the
    /// payloads and the concurrent clients; the same for every column.
    fn measure(&self, col: Column, work: Work) -> Cell {
        let rounds = match work {
            Work::Sync(_) | Work::Async(_) | Work::Callback(_) => ROUNDS,
            Work::Payload(..) | Work::Concurrent(..) => 1,
        };
        let mut best = self.measure_once(col, work);
        for _ in 1..rounds {
            match (&best, self.measure_once(col, work)) {
                (Cell::Secs(b), Cell::Secs(s)) if s < *b => best = Cell::Secs(s),
                (Cell::Secs(_), _) => {}
                _ => break,
            }
        }
        best
    }

    fn measure_once(&self, col: Column, work: Work) -> Cell {
        let (client, server) = match col {
            Column::Tcp => {
                return match tcp::run(work, self.bounds.run) {
                    Ok(s) => Cell::Secs(s),
                    Err(e) => Cell::Failed(e),
                };
            }
            Column::Pair(c, s) => (c, s),
        };
        for side in [client, server] {
            if side != Side::Rust && !self.tcl {
                return Cell::Skipped("no tcllib".into());
            }
            if side == Side::Ours && self.ours_dir.is_none() {
                return Cell::Skipped("no libcomm.so".into());
            }
        }
        if let Work::Payload(size, _) = work
            && (client == Side::Tcllib || server == Side::Tcllib)
            && size > (1 << 20)
        {
            return Cell::Skipped("skipped: >60 s".into());
        }
        let server = match self.server(server) {
            Ok(s) => s,
            Err(e) => return Cell::Failed(e),
        };
        let r = match client {
            Side::Rust => self.rust_client(&server.id, work),
            tcl => self.tcl_client(tcl, &server.id, work),
        };
        drop(server);
        match r {
            Ok(s) => Cell::Secs(s),
            Err(e) => Cell::Failed(e),
        }
    }

    fn server(&self, side: Side) -> Result<Server, String> {
        match side {
            Side::Rust => {
                let store: Arc<Mutex<HashMap<String, String>>> = Arc::default();
                let d = Dispatcher::new();
                let s = store.clone();
                d.register("set", move |_, args| {
                    let mut m = s.lock().unwrap_or_else(|p| p.into_inner());
                    match args {
                        [name] => m
                            .get(name)
                            .cloned()
                            .ok_or_else(|| TclError::new("no such variable")),
                        [name, value] => {
                            m.insert(name.clone(), value.clone());
                            Ok(value.clone())
                        }
                        _ => Err(TclError::wrong_args("set varName ?newValue?")),
                    }
                });
                let s = store;
                d.register("incr", move |_, args| {
                    let mut m = s.lock().unwrap_or_else(|p| p.into_inner());
                    let name = args.first().map(String::as_str).unwrap_or_default();
                    // In place when the variable exists (as Tcl's `incr`
                    // updates its object), so the only allocation is the result.
                    if let Some(value) = m.get_mut(name) {
                        let v = value.parse::<i64>().unwrap_or(0) + 1;
                        value.clear();
                        let _ = write!(value, "{v}");
                        return Ok(value.clone());
                    }
                    m.insert(name.to_string(), "1".into());
                    Ok("1".into())
                });
                let ch = self
                    .rt
                    .block_on(Channel::new(Config::listening().evaluator(d)))
                    .map_err(|e| e.to_string())?;
                Ok(Server {
                    id: ch.self_id().to_string(),
                    rust: Some(ch),
                    _tcl: None,
                })
            }
            tcl => {
                let mut p = TclProc::spawn(self.tcl_env(tcl), SERVER_TCL, &[], self.bounds.run)?;
                let id = p.line_with("ID ")?;
                Ok(Server {
                    id,
                    rust: None,
                    _tcl: Some(p),
                })
            }
        }
    }

    fn tcl_env(&self, side: Side) -> Option<&Path> {
        if side == Side::Ours {
            self.ours_dir
        } else {
            None
        }
    }

    fn tcl_client(&self, side: Side, id: &str, work: Work) -> Result<f64, String> {
        let (name, n, size, clients) = match work {
            Work::Sync(n) => ("sync", n, 0, 1),
            Work::Async(n) => ("async", n, 0, 1),
            Work::Callback(n) => ("callback", n, 0, 1),
            Work::Payload(b, c) => (c.name(), 1, b, 1),
            Work::Concurrent(c, n) => ("concurrent", n, 0, c),
        };
        let args = [
            id.to_string(),
            name.to_string(),
            n.to_string(),
            size.to_string(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        if clients == 1 {
            let mut p = TclProc::spawn(self.tcl_env(side), CLIENT_TCL, &args, self.bounds.run)?;
            let secs = p.line_with("RESULT ")?;
            return secs.parse().map_err(|_| format!("bad result {secs:?}"));
        }
        let mut procs = Vec::new();
        for _ in 0..clients {
            procs.push(TclProc::spawn(
                self.tcl_env(side),
                CLIENT_TCL,
                &args,
                self.bounds.run,
            )?);
        }
        for p in &mut procs {
            p.line_with("READY")?;
        }
        let start = Instant::now();
        for p in &mut procs {
            p.go()?;
        }
        for p in &mut procs {
            p.line_with("RESULT ")?;
        }
        Ok(start.elapsed().as_secs_f64())
    }

    fn rust_client(&self, id: &str, work: Work) -> Result<f64, String> {
        let id = Id::from_text(id);
        let limit = self.bounds.run;
        self.rt.block_on(async move {
            let bounded = tokio::time::timeout(limit, rust_work(id, work)).await;
            bounded.unwrap_or_else(|_| Err(format!("timeout after {limit:?}")))
        })
    }
}

async fn rust_work(id: Id, work: Work) -> Result<f64, String> {
    let e = |e: tclcomm::Error| e.to_string();
    let client = Channel::new(Config::new()).await.map_err(e)?;
    client.connect(id.clone()).await.map_err(e)?;
    let start = Instant::now();
    match work {
        Work::Sync(n) => {
            for _ in 0..n {
                client.send(id.clone(), "set a 1").await.map_err(e)?;
            }
        }
        Work::Async(n) => {
            client.send(id.clone(), "set ::n 0").await.map_err(e)?;
            let start = Instant::now();
            for _ in 0..n {
                client.send_async(id.clone(), "incr ::n").await.map_err(e)?;
            }
            let got = client.send(id.clone(), "set ::n").await.map_err(e)?;
            if got != n.to_string() {
                return Err(format!("{got} of {n} async sends arrived"));
            }
            return Ok(start.elapsed().as_secs_f64());
        }
        Work::Callback(n) => {
            let done = Arc::new(AtomicUsize::new(0));
            let all = Arc::new(tokio::sync::Notify::new());
            for _ in 0..n {
                let (done, all) = (done.clone(), all.clone());
                client
                    .send_callback(id.clone(), "set a 1", move |_| {
                        if done.fetch_add(1, Ordering::AcqRel) + 1 == n {
                            all.notify_one();
                        }
                    })
                    .await
                    .map_err(e)?;
            }
            all.notified().await;
        }
        Work::Payload(size, content) => {
            let p = payload(size, content);
            let start = Instant::now();
            let got = client
                .send(id.clone(), Script::command(["set", "::p", p.as_str()]))
                .await
                .map_err(e)?;
            if got.len() != p.len() {
                return Err(format!(
                    "payload came back with {} bytes, not {}",
                    got.len(),
                    p.len()
                ));
            }
            return Ok(start.elapsed().as_secs_f64());
        }
        Work::Concurrent(clients, n) => {
            let mut chans = Vec::new();
            for _ in 0..clients {
                let c = Channel::new(Config::new()).await.map_err(e)?;
                c.connect(id.clone()).await.map_err(e)?;
                chans.push(c);
            }
            let start = Instant::now();
            let mut tasks = Vec::new();
            for c in chans {
                let id = id.clone();
                tasks.push(tokio::spawn(async move {
                    for _ in 0..n {
                        c.send(id.clone(), "set a 1").await?;
                    }
                    Ok::<(), tclcomm::Error>(())
                }));
            }
            for t in tasks {
                t.await.map_err(|j| j.to_string())?.map_err(e)?;
            }
            return Ok(start.elapsed().as_secs_f64());
        }
    }
    Ok(start.elapsed().as_secs_f64())
}

/// A benchmark server; stopped on drop.
struct Server {
    id: String,
    rust: Option<Channel>,
    /// Held for its `Drop`, which kills the process.
    _tcl: Option<TclProc>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(c) = &self.rust {
            c.destroy();
        }
    }
}

const SERVER_TCL: &str = r#"
package require comm $::want
proc bgerror args {}
puts "ID [::comm::comm self]"
flush stdout
vwait forever
"#;

const CLIENT_TCL: &str = r#"
package require comm $::want
lassign $argv id work n size
proc payload {size content} {
    if {$content eq "plain"} { return [string repeat x $size] }
    set unit "{a} \[b\] \$c \"d\" \\e ; f\n"
    set lead [expr {$content eq "escaped" ? "\}" : ""}]
    return [string range $lead[string repeat $unit [expr {$size / [string length $unit] + 1}]] 0 [expr {$size - 1}]]
}
proc cb {args} { if {[incr ::done] == $::n} { set ::fin 1 } }
switch -- $work {
    sync {
        ::comm::comm send $id {set a 1}
        set t [clock microseconds]
        for {set i 0} {$i < $n} {incr i} { ::comm::comm send $id {set a 1} }
    }
    async {
        ::comm::comm send $id {set ::n 0}
        set t [clock microseconds]
        for {set i 0} {$i < $n} {incr i} { ::comm::comm send -async $id {incr ::n} }
        set got [::comm::comm send $id {set ::n}]
        if {$got != $n} { error "$got of $n async sends arrived" }
    }
    callback {
        ::comm::comm send $id {set a 1}
        set ::done 0
        set t [clock microseconds]
        for {set i 0} {$i < $n} {incr i} { ::comm::comm send -command cb $id {set a 1} }
        vwait ::fin
    }
    plain - special - escaped {
        set p [payload $size $work]
        ::comm::comm send $id {set a 1}
        set t [clock microseconds]
        set r [::comm::comm send $id [list set ::p $p]]
        if {[string length $r] != $size} { error "payload came back with [string length $r] chars" }
    }
    concurrent {
        ::comm::comm send $id {set a 1}
        puts READY
        flush stdout
        gets stdin
        set t [clock microseconds]
        for {set i 0} {$i < $n} {incr i} { ::comm::comm send $id {set a 1} }
    }
}
puts "RESULT [expr {([clock microseconds] - $t) / 1e6}]"
flush stdout
"#;

/// A tclsh running a bench script, killed at its deadline or on drop.
struct TclProc {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    deadline: Instant,
    script: PathBuf,
}

impl TclProc {
    fn spawn(
        ours: Option<&Path>,
        body: &str,
        args: &[&str],
        limit: Duration,
    ) -> Result<TclProc, String> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let script = std::env::temp_dir().join(format!(
            "tclcomm-bench-{}-{}.tcl",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        // tcllib is 4.7.x; ours is 4.8, found through TCLLIBPATH.
        let want = if ours.is_some() {
            "set ::want 4.8\n"
        } else {
            "set ::want 4.7-4.8\n"
        };
        std::fs::write(&script, format!("{want}{body}")).map_err(|e| e.to_string())?;
        let mut cmd = Command::new("tclsh");
        cmd.arg(&script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match ours {
            Some(dir) => cmd.env("TCLLIBPATH", dir),
            None => cmd.env_remove("TCLLIBPATH"),
        };
        let mut child = cmd.spawn().map_err(|e| format!("tclsh: {e}"))?;
        let (tx, lines) = std::sync::mpsc::channel();
        if let Some(out) = child.stdout.take() {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        return;
                    }
                }
            });
        }
        if let Some(err) = child.stderr.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    if tx.send(format!("STDERR {line}")).is_err() {
                        return;
                    }
                }
            });
        }
        let stdin = child.stdin.take();
        Ok(TclProc {
            child,
            stdin,
            lines,
            deadline: Instant::now() + limit,
            script,
        })
    }

    /// Waits for a line starting with `prefix`; returns the rest.
    fn line_with(&mut self, prefix: &str) -> Result<String, String> {
        let mut errors = String::new();
        loop {
            let left = self.deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return Ok(rest.trim().to_string());
                    }
                    if let Some(e) = line.strip_prefix("STDERR ")
                        && errors.len() < 300
                    {
                        errors.push_str(e);
                        errors.push(' ');
                    }
                }
                Err(RecvTimeoutError::Timeout) => return Err("timeout".into()),
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(format!("tclsh failed: {}", errors.trim()));
                }
            }
        }
    }

    fn go(&mut self) -> Result<(), String> {
        let i = self.stdin.as_mut().ok_or("no stdin")?;
        i.write_all(b"go\n")
            .and_then(|()| i.flush())
            .map_err(|e| e.to_string())
    }
}

impl Drop for TclProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.script);
    }
}

fn rate_text(per_sec: f64) -> String {
    if per_sec >= 1e6 {
        format!("{:.2}M/s", per_sec / 1e6)
    } else if per_sec >= 1e3 {
        format!("{:.1}k/s", per_sec / 1e3)
    } else {
        format!("{per_sec:.0}/s")
    }
}

fn cell_text(cell: &Cell, work: &Work) -> String {
    match cell {
        Cell::Secs(s) => match work.ops() {
            Some(n) => rate_text(n as f64 / s),
            None => format!("{s:.3} s"),
        },
        Cell::Skipped(why) => why.clone(),
        Cell::Failed(why) => format!("failed: {why}"),
    }
}

/// The table: one row per workload, a rate (or a time for payloads) per
/// column, and each cell's speed relative to tcllib ↔ tcllib.
fn markdown(
    works: &[Work],
    columns: &[Column],
    table: &HashMap<(usize, Column), Cell>,
    notes: &[String],
) -> String {
    let base = Column::Pair(Side::Tcllib, Side::Tcllib);
    let mut s = String::from("| workload |");
    for c in columns {
        let _ = write!(s, " {} |", c.name());
    }
    s.push_str("\n|---|");
    for _ in columns {
        s.push_str("---:|");
    }
    s.push('\n');
    for (wi, w) in works.iter().enumerate() {
        let _ = write!(s, "| {} |", w.label());
        let base_secs = match table.get(&(wi, base)) {
            Some(Cell::Secs(b)) => Some(*b),
            _ => None,
        };
        for c in columns {
            let cell = table
                .get(&(wi, *c))
                .cloned()
                .unwrap_or(Cell::Skipped("-".into()));
            let mut text = cell_text(&cell, w);
            if let (Cell::Secs(secs), Some(b), true) = (&cell, base_secs, *c != base) {
                let _ = write!(text, " (×{:.1})", b / secs);
            }
            let _ = write!(s, " {text} |");
        }
        s.push('\n');
    }
    s.push_str(
        "\nRates are operations per second (payloads: seconds for one round trip of the payload, \
         which comes back as the result); (×N) is the speed relative to tcllib ↔ tcllib. \
         Sync, async and callback cells are the best of 3 runs in every column, the others one run. \
         tcllib's payload cost grows with the square of the size, so its payloads above 1 MB are skipped.\n",
    );
    for n in notes {
        let _ = writeln!(s, "\nNote: {n}");
    }
    s
}

fn chart_rows(
    works: &[Work],
    columns: &[Column],
    table: &HashMap<(usize, Column), Cell>,
) -> Vec<chart::Row> {
    works
        .iter()
        .enumerate()
        .map(|(wi, w)| chart::Row {
            label: w.label(),
            bars: columns
                .iter()
                .map(|c| {
                    let speed = match table.get(&(wi, *c)) {
                        Some(Cell::Secs(s)) if *s > 0.0 => Some(1.0 / s),
                        _ => None,
                    };
                    (
                        c.name(),
                        speed,
                        table
                            .get(&(wi, *c))
                            .map(|cell| cell_text(cell, w))
                            .unwrap_or_default(),
                    )
                })
                .collect(),
        })
        .collect()
}
