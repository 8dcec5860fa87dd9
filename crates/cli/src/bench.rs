//! `tclcomm bench`: tcllib comm, our comm (Rust, and in tclsh) and a plain
//! TCP ping-pong, side by side, on the same workloads.
//!
//! Every run is bounded: a Tcl process is killed at its deadline and a Rust
//! run is given up; the cell then says so. tcllib's payload cost grows with
//! the square of the size (1 MB ~3 s, 10 MB ~250 s), so its payload rows
//! stop at 1 MB and larger ones read "skipped".

mod chart;
mod tcp;
mod tokio_tcp;

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

    /// Internal (the idle-clients row): hold this many idle connections
    /// to the server with this id until stdin closes.
    #[arg(long, value_name = "ID", hide = true)]
    idle_helper: Option<String>,

    /// Internal: how many connections `--idle-helper` holds.
    #[arg(long, value_name = "N", hide = true, default_value_t = 0)]
    idle_count: usize,
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
    /// The same from a thread of its own through the blocking facade
    /// (`tclcomm::blocking`), against plain TCP and a Rust server.
    SyncBlocking(usize),
    /// A burst of async sends, then one sync send to see them all done.
    Async(usize),
    /// Sends with a callback, all in flight at once.
    Callback(usize),
    /// One sync send of a payload of this many bytes that comes back as
    /// the result.
    Payload(usize, Content),
    /// This many clients at once, each doing this many sync round trips.
    Concurrent(usize, usize),
    /// Peak memory (resident) of the processes of a pair while a payload
    /// of this many bytes makes its round trip.
    PeakMemory(usize, Content),
    /// This many idle connected clients on a Rust server: its memory per
    /// connection, its CPU time while they idle, and the sync rate of one
    /// active client with and without them.
    Idle(usize),
    /// One client sending to this many servers at once, this many sync
    /// sends to each (`true`: each send by a `tclcomm send` process).
    FanOut(usize, usize, bool),
}

impl Work {
    fn label(&self) -> String {
        match *self {
            Work::Sync(n) => format!("sync round trips ({n})"),
            Work::SyncBlocking(n) => format!("sync, blocking facade ({n})"),
            Work::Async(n) => format!("async burst ({n})"),
            Work::Callback(n) => format!("callbacks ({n})"),
            Work::Payload(b, c) => format!("{} payload {}", size_text(b), c.name()),
            Work::Concurrent(c, n) => format!("{c} clients × {n}"),
            Work::PeakMemory(b, c) => format!("peak memory, {} payload {}", size_text(b), c.name()),
            Work::Idle(n) => format!("{n} idle clients"),
            Work::FanOut(servers, n, false) => format!("fan-out to {servers} servers × {n}"),
            Work::FanOut(servers, _, true) => format!("fan-out, CLI, to {servers} servers"),
        }
    }

    /// Operations per run (for rates), or `None` for payloads (timed).
    fn ops(&self) -> Option<usize> {
        match *self {
            Work::Sync(n) | Work::SyncBlocking(n) | Work::Async(n) | Work::Callback(n) => Some(n),
            Work::Concurrent(c, n) => Some(c * n),
            Work::FanOut(servers, n, _) => Some(servers * n),
            Work::Payload(..) | Work::PeakMemory(..) | Work::Idle(_) => None,
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
    /// The same ping-pong on tokio sockets, threads as in Rust ↔ Rust:
    /// the floor of the Rust runtime (sync, blocking, concurrent rows).
    TokioTcp,
    /// The same ping-pong between tclsh processes on fileevents, no comm:
    /// the floor of the Tcl event loop (sync and concurrent rows).
    TclFloor,
    /// A client side and a server side.
    Pair(Side, Side),
}

impl Column {
    fn name(self) -> String {
        match self {
            Column::Tcp => "plain TCP".into(),
            Column::TokioTcp => "tokio TCP floor".into(),
            Column::TclFloor => "Tcl fileevent floor".into(),
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
    /// A figure that is not a time (memory, several measures).
    Text(String),
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
    if let Some(id) = &args.idle_helper {
        return idle_helper(id, args.idle_count)
            .map_err(|e| Failure::local(format!("tclcomm bench --idle-helper: {e}")));
    }
    let mut works: Vec<Work> = if args.quick {
        vec![
            Work::Sync(200),
            Work::SyncBlocking(200),
            Work::Async(500),
            Work::Callback(200),
            Work::Payload(64 << 10, Content::Plain),
            Work::Payload(64 << 10, Content::Special),
            Work::Payload(64 << 10, Content::Escaped),
            Work::Payload(1 << 20, Content::Plain),
            Work::Concurrent(4, 50),
            Work::PeakMemory(1 << 20, Content::Escaped),
            Work::Idle(500),
            Work::FanOut(10, 10, false),
            Work::FanOut(10, 1, true),
        ]
    } else {
        vec![
            Work::Sync(20_000),
            Work::SyncBlocking(20_000),
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
            Work::PeakMemory(50 << 20, Content::Plain),
            Work::PeakMemory(50 << 20, Content::Escaped),
            Work::Idle(10_000),
            Work::FanOut(100, 100, false),
            Work::FanOut(100, 1, true),
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

    let mut columns = vec![
        Column::Tcp,
        Column::TokioTcp,
        Column::TclFloor,
        Column::Pair(Side::Rust, Side::Rust),
    ];
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
        let cells = env.measure_row(&columns, *work);
        for (&col, cell) in columns.iter().zip(cells) {
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
    /// Every column of one workload: the best of [`ROUNDS`] measurements
    /// for the message workloads (their rates swing with CPU placement on
    /// a small machine), one for the payloads and the concurrent clients.
    /// The rounds go across the columns (each column once, then again), so
    /// that the columns of a row are measured close together in time and
    /// a slow stretch of the machine does not fall on one column alone.
    fn measure_row(&self, columns: &[Column], work: Work) -> Vec<Cell> {
        let rounds = match work {
            Work::Sync(_) | Work::SyncBlocking(_) | Work::Async(_) | Work::Callback(_) => ROUNDS,
            Work::Payload(..)
            | Work::Concurrent(..)
            | Work::PeakMemory(..)
            | Work::Idle(_)
            | Work::FanOut(..) => 1,
        };
        let mut best: Vec<Cell> = columns
            .iter()
            .map(|&col| self.measure_once(col, work))
            .collect();
        for _ in 1..rounds {
            for (i, &col) in columns.iter().enumerate() {
                // A column that failed or was skipped is not run again.
                let Cell::Secs(b) = best[i] else { continue };
                if let Cell::Secs(s) = self.measure_once(col, work)
                    && s < b
                {
                    best[i] = Cell::Secs(s);
                }
            }
        }
        best
    }

    fn measure_once(&self, col: Column, work: Work) -> Cell {
        match (col, work) {
            (Column::TokioTcp, Work::Sync(_) | Work::SyncBlocking(_) | Work::Concurrent(..)) => {
                return tokio_tcp::run(self.rt, work, self.bounds.run)
                    .map(Cell::Secs)
                    .unwrap_or_else(Cell::Failed);
            }
            (Column::TclFloor, Work::Sync(_) | Work::Concurrent(..)) if !self.tcl => {
                return Cell::Skipped("no tclsh".into());
            }
            (Column::TclFloor, Work::Sync(_) | Work::Concurrent(..)) => {
                return self
                    .tcl_floor(work)
                    .map(Cell::Secs)
                    .unwrap_or_else(Cell::Failed);
            }
            (Column::TokioTcp | Column::TclFloor, _) => return Cell::Skipped("-".into()),
            _ => {}
        }
        match work {
            Work::Idle(n) => {
                return if col == Column::Pair(Side::Rust, Side::Rust) {
                    self.idle(n).map(Cell::Text).unwrap_or_else(Cell::Failed)
                } else {
                    Cell::Skipped("-".into())
                };
            }
            Work::FanOut(servers, n, cli) => {
                return if col == Column::Pair(Side::Rust, Side::Rust) {
                    self.fan_out(servers, n, cli)
                        .map(Cell::Secs)
                        .unwrap_or_else(Cell::Failed)
                } else {
                    Cell::Skipped("-".into())
                };
            }
            Work::PeakMemory(..) if col == Column::Tcp => return Cell::Skipped("-".into()),
            Work::SyncBlocking(n) => {
                return match col {
                    Column::Tcp => tcp::run(Work::Sync(n), self.bounds.run)
                        .map(Cell::Secs)
                        .unwrap_or_else(Cell::Failed),
                    Column::Pair(Side::Rust, Side::Rust) => self
                        .blocking_sync(n)
                        .map(Cell::Secs)
                        .unwrap_or_else(Cell::Failed),
                    _ => Cell::Skipped("-".into()),
                };
            }
            _ => {}
        }
        let (client, server) = match col {
            Column::Tcp => {
                return match tcp::run(work, self.bounds.run) {
                    Ok(s) => Cell::Secs(s),
                    Err(e) => Cell::Failed(e),
                };
            }
            Column::Pair(c, s) => (c, s),
            Column::TokioTcp | Column::TclFloor => unreachable!("handled above"),
        };
        for side in [client, server] {
            if side != Side::Rust && !self.tcl {
                return Cell::Skipped("no tcllib".into());
            }
            if side == Side::Ours && self.ours_dir.is_none() {
                return Cell::Skipped("no libcomm.so".into());
            }
        }
        if let Work::Payload(size, _) | Work::PeakMemory(size, _) = work
            && (client == Side::Tcllib || server == Side::Tcllib)
            && size > (1 << 20)
        {
            return Cell::Skipped("skipped: >60 s".into());
        }
        let rust_side = client == Side::Rust || server == Side::Rust;
        if rust_side && matches!(work, Work::PeakMemory(..)) {
            // The peak is this process's from now on (Linux: "5" resets
            // the high-water mark to the current resident size).
            let _ = std::fs::write("/proc/self/clear_refs", "5");
        }
        let server = match self.server(server) {
            Ok(s) => s,
            Err(e) => return Cell::Failed(e),
        };
        let r = match client {
            Side::Rust => self.rust_client(&server.id, work).map(|s| (s, 0)),
            tcl => self.tcl_client(tcl, &server.id, work),
        };
        let server_peak = server.tcl.as_ref().map_or(0, |p| peak_kb(p.child.id()));
        drop(server);
        match (r, work) {
            (Ok((_, client_peak)), Work::PeakMemory(..)) => {
                let own = if rust_side {
                    peak_kb(std::process::id())
                } else {
                    0
                };
                Cell::Text(format!(
                    "{:.0} MB",
                    (own + server_peak + client_peak) as f64 / 1024.0
                ))
            }
            (Ok((s, _)), _) => Cell::Secs(s),
            (Err(e), _) => Cell::Failed(e),
        }
    }

    fn server(&self, side: Side) -> Result<Server, String> {
        self.server_with(side, |c| c)
    }

    /// [`Env::server`], with `config` adjusting a Rust server's settings.
    fn server_with(
        &self,
        side: Side,
        config: impl FnOnce(Config) -> Config,
    ) -> Result<Server, String> {
        match side {
            Side::Rust => {
                let store: Arc<Mutex<HashMap<String, String>>> = Arc::default();
                let d = Dispatcher::new();
                let s = store.clone();
                // Given its arguments, `set` stores one copy of the value
                // and returns the argument itself, as Tcl shares the object
                // between the variable and the result.
                d.register_owned("set", move |_, args| {
                    let mut m = s.lock().unwrap_or_else(|p| p.into_inner());
                    let mut args = args.into_iter();
                    match (args.next(), args.next(), args.next()) {
                        (Some(name), None, None) => m
                            .get(&name)
                            .cloned()
                            .ok_or_else(|| TclError::new("no such variable")),
                        (Some(name), Some(value), None) => {
                            m.insert(name, value.clone());
                            Ok(value)
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
                    .block_on(Channel::new(config(Config::listening().evaluator(d))))
                    .map_err(|e| e.to_string())?;
                Ok(Server {
                    id: ch.self_id().to_string(),
                    rust: Some(ch),
                    tcl: None,
                })
            }
            tcl => {
                let mut p = TclProc::spawn(self.tcl_env(tcl), SERVER_TCL, &[], self.bounds.run)?;
                let id = p.line_with("ID ")?;
                Ok(Server {
                    id,
                    rust: None,
                    tcl: Some(p),
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

    /// Runs `work` from tclsh processes: the seconds it took, and (for
    /// one process) its peak resident size in KiB.
    fn tcl_client(&self, side: Side, id: &str, work: Work) -> Result<(f64, u64), String> {
        let (name, n, size, clients) = match work {
            Work::Sync(n) => ("sync", n, 0, 1),
            Work::Async(n) => ("async", n, 0, 1),
            Work::Callback(n) => ("callback", n, 0, 1),
            Work::Payload(b, c) | Work::PeakMemory(b, c) => (c.name(), 1, b, 1),
            Work::Concurrent(c, n) => ("concurrent", n, 0, c),
            Work::SyncBlocking(n) => ("sync", n, 0, 1),
            Work::Idle(_) | Work::FanOut(..) => return Err("not a Tcl workload".into()),
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
            let line = p.line_with("RESULT ")?;
            let mut words = line.split_whitespace();
            let secs = words.next().and_then(|w| w.parse().ok());
            let peak = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
            return secs
                .map(|s| (s, peak))
                .ok_or_else(|| format!("bad result {line:?}"));
        }
        let secs = self.tcl_clients(self.tcl_env(side), CLIENT_TCL, &args, clients)?;
        Ok((secs, 0))
    }

    /// Starts `clients` tclsh processes running `body` with `args`, waits
    /// until each says READY, starts them all at once and waits for each
    /// one's RESULT: the seconds from the start to the last result.
    fn tcl_clients(
        &self,
        ours: Option<&Path>,
        body: &str,
        args: &[&str],
        clients: usize,
    ) -> Result<f64, String> {
        let mut procs = Vec::new();
        for _ in 0..clients {
            procs.push(TclProc::spawn(ours, body, args, self.bounds.run)?);
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

    /// The Tcl event loop's floor: `work` (sync or concurrent) as a
    /// fileevent ping-pong between tclsh processes, without comm.
    fn tcl_floor(&self, work: Work) -> Result<f64, String> {
        let (n, clients) = match work {
            Work::Sync(n) => (n, 1),
            Work::Concurrent(c, n) => (n, c),
            _ => return Err("not a Tcl floor workload".into()),
        };
        let mut server = TclProc::spawn(None, FLOOR_TCL, &["-serve"], self.bounds.run)?;
        let port = server.line_with("PORT ")?;
        let args = ["-client", port.as_str(), &n.to_string()].map(str::to_string);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let secs = self.tcl_clients(None, FLOOR_TCL, &args, clients);
        drop(server);
        secs
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
        Work::Payload(size, content) | Work::PeakMemory(size, content) => {
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
        Work::SyncBlocking(_) | Work::Idle(_) | Work::FanOut(..) => {
            return Err("not a pair workload".into());
        }
    }
    Ok(start.elapsed().as_secs_f64())
}

/// Peak resident size (`VmHWM`) of process `pid` in KiB, or 0 where
/// /proc does not tell.
fn peak_kb(pid: u32) -> u64 {
    status_kb(pid, "VmHWM:")
}

/// A KiB figure of /proc/PID/status, or 0.
fn status_kb(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time (user + system) this process has used so far.
fn own_cpu() -> Duration {
    // Fields 14 and 15 of /proc/self/stat, in clock ticks (100 a second
    // on Linux), after the command name in parentheses.
    let ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.to_string();
            let f: Vec<u64> = rest
                .split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|w| w.parse().ok())
                .collect();
            Some(f.iter().sum::<u64>())
        })
        .unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// Raises this process's soft limit of open files to `want` (at most the
/// hard limit; never lowers it), with util-linux's `prlimit` on our own
/// pid.
fn raise_nofile(want: usize) -> Result<(), String> {
    let limit = |field: usize| {
        std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|s| {
                let line = s.lines().find(|l| l.starts_with("Max open files"))?;
                line.split_whitespace().nth(field)?.parse::<usize>().ok()
            })
    };
    // Never lowered: descriptors of an earlier row may still be closing.
    if limit(3).is_some_and(|soft| soft >= want) {
        return Ok(());
    }
    let hard = limit(4).unwrap_or(want);
    let status = Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg(format!("--nofile={}:", want.min(hard)))
        .status()
        .map_err(|e| format!("prlimit: {e}"))?;
    if !status.success() {
        return Err(format!("prlimit failed: {status}"));
    }
    if want > hard {
        return Err(format!("{want} descriptors wanted, hard limit {hard}"));
    }
    Ok(())
}

/// The idle clients (run as a child process, so that the server's memory
/// is measured alone): `n` plain connections that make comm's handshake
/// offer and then say nothing until stdin closes.
fn idle_helper(id: &str, n: usize) -> Result<(), String> {
    raise_nofile(n + 64)?;
    let port: u16 = Id::from_text(id)
        .port_number()
        .ok_or_else(|| format!("no port in {id:?}"))?;
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        // Distinct ids (the server keys peers by id); never dialled back.
        s.write_all(&tclcomm_wire::handshake::client_offer(&(i + 1).to_string()))
            .map_err(|e| e.to_string())?;
        conns.push(s);
    }
    let mut out = std::io::stdout();
    writeln!(out, "READY")
        .and_then(|()| out.flush())
        .map_err(|e| e.to_string())?;
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    Ok(())
}

impl Env<'_> {
    /// The idle-clients row: `n` idle connections held by a child process
    /// on a Rust server in this process.
    fn idle(&self, n: usize) -> Result<String, String> {
        const ACTIVE: usize = 10_000;
        // Best of 3, as the sync row (rates swing with CPU placement).
        let active = |id: &str| -> Result<f64, String> {
            let mut best = f64::MAX;
            for _ in 0..ROUNDS {
                best = best.min(self.rust_client(id, Work::Sync(ACTIVE))?);
            }
            Ok(best)
        };
        // Room for them all (the default cap is 1024 incoming connections).
        let server = self.server_with(Side::Rust, |c| {
            let mut limits = c.limits.clone();
            limits.max_connections = n + 100;
            c.limits(limits)
        })?;
        let ch = server.rust.clone().ok_or("no Rust server")?;
        raise_nofile(n + 1_000)?;
        let without = active(&server.id)?;
        let rss0 = status_kb(std::process::id(), "VmRSS:");
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut helper = Command::new(exe)
            .args(["bench", "--idle-helper", &server.id, "--idle-count"])
            .arg(n.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        let result = (|| {
            let out = helper.stdout.take().ok_or("no stdout")?;
            let mut line = String::new();
            BufReader::new(out)
                .read_line(&mut line)
                .map_err(|e| e.to_string())?;
            if line.trim() != "READY" {
                return Err("the idle clients did not connect".to_string());
            }
            // Until the server has taken every connection's handshake.
            let deadline = Instant::now() + self.bounds.run;
            while ch.interps().len() < n {
                if Instant::now() > deadline {
                    return Err(format!("{} of {n} connected", ch.interps().len()));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let rss1 = status_kb(std::process::id(), "VmRSS:");
            // The idle window: nothing but the idle connections.
            let cpu0 = own_cpu();
            std::thread::sleep(Duration::from_secs(2));
            let idle_cpu = own_cpu().saturating_sub(cpu0);
            let with = active(&server.id)?;
            Ok(format!(
                "{:.1} KiB/conn; CPU idle {} ms in 2 s; sync {} (alone {})",
                rss1.saturating_sub(rss0) as f64 / n as f64,
                idle_cpu.as_millis(),
                rate_text(ACTIVE as f64 / with),
                rate_text(ACTIVE as f64 / without),
            ))
        })();
        let _ = helper.kill();
        let _ = helper.wait();
        result
    }

    /// The blocking-facade row: `n` sync sends from this thread through
    /// `tclcomm::blocking` (its own runtime) to a Rust server.
    fn blocking_sync(&self, n: usize) -> Result<f64, String> {
        let server = self.server(Side::Rust)?;
        let e = |e: tclcomm::Error| e.to_string();
        let client = tclcomm::blocking::Channel::new(Config::new()).map_err(e)?;
        let id = Id::from_text(&server.id);
        client.connect(id.clone()).map_err(e)?;
        client.send(id.clone(), "set a 1").map_err(e)?;
        let start = Instant::now();
        for _ in 0..n {
            client.send(id.clone(), "set a 1").map_err(e)?;
        }
        let secs = start.elapsed().as_secs_f64();
        client.as_async().destroy();
        Ok(secs)
    }

    /// The fan-out rows: one client, `servers` Rust servers, `n` sync
    /// sends to each, all servers at once; or (`cli`) one `tclcomm send`
    /// process per server, all at once.
    fn fan_out(&self, servers: usize, n: usize, cli: bool) -> Result<f64, String> {
        raise_nofile(4 * servers + 1_000)?;
        let all = (0..servers)
            .map(|_| self.server(Side::Rust))
            .collect::<Result<Vec<_>, _>>()?;
        let ids: Vec<String> = all.iter().map(|s| s.id.clone()).collect();
        if cli {
            let exe = std::env::current_exe().map_err(|e| e.to_string())?;
            let start = Instant::now();
            let mut procs = Vec::new();
            for id in &ids {
                procs.push(
                    Command::new(&exe)
                        .args(["send", id, "set", "a", "1"])
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .map_err(|e| e.to_string())?,
                );
            }
            let mut failed = 0;
            for mut p in procs {
                if !p.wait().is_ok_and(|s| s.success()) {
                    failed += 1;
                }
            }
            if failed > 0 {
                return Err(format!("{failed} sends failed"));
            }
            return Ok(start.elapsed().as_secs_f64());
        }
        let limit = self.bounds.run;
        self.rt.block_on(async move {
            let e = |e: tclcomm::Error| e.to_string();
            let work = async {
                let client = Channel::new(Config::new()).await.map_err(e)?;
                for id in &ids {
                    client.connect(Id::from_text(id)).await.map_err(e)?;
                }
                let start = Instant::now();
                let mut tasks = tokio::task::JoinSet::new();
                for id in ids {
                    let c = client.clone();
                    tasks.spawn(async move {
                        let id = Id::from_text(&id);
                        for _ in 0..n {
                            c.send(id.clone(), "set a 1").await?;
                        }
                        Ok::<(), tclcomm::Error>(())
                    });
                }
                while let Some(t) = tasks.join_next().await {
                    t.map_err(|j| j.to_string())?.map_err(e)?;
                }
                let secs = start.elapsed().as_secs_f64();
                client.destroy();
                Ok(secs)
            };
            tokio::time::timeout(limit, work)
                .await
                .unwrap_or_else(|_| Err(format!("timeout after {limit:?}")))
        })
    }
}

/// A benchmark server; stopped on drop.
struct Server {
    id: String,
    rust: Option<Channel>,
    /// The tclsh running it (killed on drop).
    tcl: Option<TclProc>,
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

/// The Tcl floor (`bench/tcl/floor.tcl`): run with `-serve` as the echo
/// server, with `-client PORT N` as a client.
const FLOOR_TCL: &str = include_str!("../../../bench/tcl/floor.tcl");

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
set secs [expr {([clock microseconds] - $t) / 1e6}]
set peak 0
catch {
    set f [open /proc/self/status]
    regexp {VmHWM:\s+(\d+)} [read $f] -> peak
    close $f
}
puts "RESULT $secs $peak"
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
        Cell::Text(t) => t.clone(),
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
         Sync, async and callback cells are the best of 3 runs in every column (the columns taken in turns, \
         so that each row's columns are measured close together in time), the others one run. \
         tcllib's payload cost grows with the square of the size, so its payloads above 1 MB are skipped.\n",
    );
    s.push_str(&floor_ratios(works, table));
    for n in notes {
        let _ = writeln!(s, "\nNote: {n}");
    }
    s
}

/// The latency rows against their floors, as ratios of this run: each
/// implementation's rate over plain TCP's, and over the floor of the event
/// loop it runs on (tokio for Rust, Tcl's fileevents for tclsh).
fn floor_ratios(works: &[Work], table: &HashMap<(usize, Column), Cell>) -> String {
    let rust = Column::Pair(Side::Rust, Side::Rust);
    let ours = Column::Pair(Side::Ours, Side::Ours);
    let tcllib = Column::Pair(Side::Tcllib, Side::Tcllib);
    let secs = |wi: usize, c: Column| match table.get(&(wi, c)) {
        Some(Cell::Secs(s)) if *s > 0.0 => Some(*s),
        _ => None,
    };
    let mut lines = String::new();
    for (wi, w) in works.iter().enumerate() {
        if !matches!(
            w,
            Work::Sync(_) | Work::SyncBlocking(_) | Work::Concurrent(..)
        ) {
            continue;
        }
        let mut parts = Vec::new();
        // Rates are inverse to times: a / b as rates is time(b) / time(a).
        let mut ratio = |what: &str, a: Column, b: Column| {
            if let (Some(ta), Some(tb)) = (secs(wi, a), secs(wi, b)) {
                parts.push(format!("{what} {:.2}×", tb / ta));
            }
        };
        ratio("Rust ↔ Rust / plain TCP", rust, Column::Tcp);
        ratio("Rust ↔ Rust / tokio floor", rust, Column::TokioTcp);
        ratio("tokio floor / plain TCP", Column::TokioTcp, Column::Tcp);
        ratio("ours-in-tclsh / plain TCP", ours, Column::Tcp);
        ratio("ours-in-tclsh / Tcl floor", ours, Column::TclFloor);
        ratio("tcllib / Tcl floor", tcllib, Column::TclFloor);
        ratio("Tcl floor / plain TCP", Column::TclFloor, Column::Tcp);
        if !parts.is_empty() {
            let _ = writeln!(lines, "- {}: {}", w.label(), parts.join("; "));
        }
    }
    if lines.is_empty() {
        return lines;
    }
    format!(
        "\nAgainst the floors (rates of this run: each side over plain TCP, and over the \
         same ping-pong on the event loop it runs on):\n\n{lines}"
    )
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
