//! Differential tests of the list codec, `concat` and `info complete`
//! against the real Tcl (`tclsh`, the oracle: Tcl 8.6.13).
//!
//! Each test generates its cases from a seed (new every run; set
//! `TCL_DIFF_SEED` to replay one), sends them all to ONE `tclsh` process as
//! hex of UTF-8, and compares byte for byte. The child is killed after a
//! deadline, so a wedged `tclsh` fails the test instead of hanging it.
//!
//! Non-BMP characters are included. Tcl 8.6.13 keeps them internally as two
//! surrogate halves; `encoding convertfrom/convertto utf-8` round-trips them,
//! but an escape that yields a lone surrogate half comes back from Tcl as
//! CESU-8 bytes (`ED A0..BF xx`), which are not UTF-8. Our codec returns
//! U+FFFD for a lone half, so Tcl's bytes are normalized the same way before
//! comparing (see `normalize_cesu`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tclcomm_wire::list::{format_list, list_length, parse_list};
use tclcomm_wire::script::{concat, info_complete};

/// Cases per test (each test is one `tclsh` process).
const CASES: usize = 12_000;
/// Kill `tclsh` if it has not answered everything by then.
const DEADLINE: Duration = Duration::from_secs(180);

const DRIVER: &str = r#"
fconfigure stdin -translation binary -encoding binary
fconfigure stdout -translation binary -encoding binary -buffering full
proc u {h} { encoding convertfrom utf-8 [binary format H* [string range $h 1 end]] }
proc h {s} { binary scan [encoding convertto utf-8 $s] H* x; return x$x }
while {[gets stdin line] >= 0} {
    set words [split $line " "]
    set op [lindex $words 0]
    set args {}
    foreach w [lrange $words 1 end] { lappend args [u $w] }
    switch -- $op {
        F { puts [h [list {*}$args]] }
        P {
            set s [lindex $args 0]
            if {[catch {llength $s} n]} {
                puts "E [h $n]"
            } else {
                set out "L $n"
                foreach e $s { append out " " [h $e] }
                puts $out
            }
        }
        C { puts [info complete [lindex $args 0]] }
        K { puts [h [concat {*}$args]] }
        Q { flush stdout; exit 0 }
    }
}
flush stdout
"#;

fn tclsh_available() -> bool {
    Command::new("tclsh")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(|mut c| {
            drop(c.stdin.take());
            let _ = c.kill();
            let _ = c.wait();
        })
        .is_ok()
}

fn hex(s: &str) -> String {
    let mut out = String::with_capacity(1 + 2 * s.len());
    out.push('x');
    for b in s.bytes() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn unhex(h: &str) -> Vec<u8> {
    let h = h.strip_prefix('x').expect("hex word starts with x");
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Tcl emits a lone surrogate half as CESU-8 (`ED A0..BF 80..BF`); we emit
/// U+FFFD. Map Tcl's bytes to ours before comparing.
fn normalize_cesu(bytes: &[u8]) -> String {
    let mut v = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == 0xED
            && i + 2 < bytes.len()
            && (0xA0..=0xBF).contains(&bytes[i + 1])
            && (0x80..=0xBF).contains(&bytes[i + 2])
        {
            v.extend_from_slice("\u{FFFD}".as_bytes());
            i += 3;
        } else {
            v.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(v).expect("Tcl answered UTF-8 apart from lone surrogates")
}

/// Runs `tclsh` on the request lines and returns one answer line per request.
fn run_tclsh(lines: &[String]) -> Vec<String> {
    let dir = std::env::temp_dir().join(format!("tclcomm-tcl-diff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let driver =
        dir.join(format!("driver-{:?}.tcl", std::thread::current().id()).replace(['(', ')'], ""));
    std::fs::write(&driver, DRIVER).unwrap();

    let mut child = Command::new("tclsh")
        .arg(&driver)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn tclsh");
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let child: Arc<Mutex<Child>> = Arc::new(Mutex::new(child));

    // Watchdog: kill the child if it outlives the deadline.
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let (child, done) = (Arc::clone(&child), Arc::clone(&done));
        std::thread::spawn(move || {
            let start = Instant::now();
            while !done.load(Ordering::SeqCst) {
                if start.elapsed() > DEADLINE {
                    let _ = child.lock().unwrap().kill();
                    return true;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            false
        })
    };

    // Write from another thread so neither pipe can fill up and deadlock.
    let payload: String = lines.iter().map(|l| format!("{l}\n")).collect::<String>() + "Q\n";
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(payload.as_bytes());
        let _ = stdin.flush();
    });

    let mut answers = Vec::with_capacity(lines.len());
    for line in BufReader::new(stdout).lines() {
        match line {
            Ok(l) => answers.push(l),
            Err(_) => break,
        }
        if answers.len() == lines.len() {
            break;
        }
    }
    let _ = writer.join();
    done.store(true, Ordering::SeqCst);
    let killed = watchdog.join().unwrap();
    {
        let mut c = child.lock().unwrap();
        let _ = c.kill();
        let _ = c.wait();
    }
    let _ = std::fs::remove_file(&driver);
    assert!(!killed, "tclsh did not answer within {DEADLINE:?}");
    assert_eq!(
        answers.len(),
        lines.len(),
        "tclsh answered {} of {} requests",
        answers.len(),
        lines.len()
    );
    answers
}

// ---------------------------------------------------------------------------
// Seeded generation
// ---------------------------------------------------------------------------

fn seed() -> u64 {
    if let Ok(s) = std::env::var("TCL_DIFF_SEED") {
        return s.parse().expect("TCL_DIFF_SEED is a u64");
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ u64::from(std::process::id()).rotate_left(32)
}

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Single characters: every list/script special, whitespace, NUL,
/// non-ASCII (2-, 3- and 4-byte UTF-8), and letters that start escapes.
const ATOMS: &[&str] = &[
    "a",
    "b",
    "x",
    "u",
    "U",
    "0",
    "7",
    "8",
    "f",
    "n",
    "t",
    "{",
    "}",
    "[",
    "]",
    "$",
    ";",
    "\"",
    "\\",
    "#",
    " ",
    "\t",
    "\n",
    "\r",
    "\x0b",
    "\x0c",
    "\0",
    "é",
    "\u{141}",
    "中",
    "\u{FFFD}",
    "\u{1F600}",
    "\u{1D41A}",
    "\u{10000}",
    "(",
    ")",
    ":",
    "*",
    "\u{a0}",
    "\u{2000}",
];

/// Multi-character pieces that exercise particular rules.
const PIECES: &[&str] = &[
    "\\\n",
    "\\\n  \t x",
    "\\\\",
    "\\{",
    "\\}",
    "\\x41",
    "\\x4",
    "\\xg",
    "\\u00e9",
    "\\u4e2d",
    "\\uD83D",
    "\\uDE00",
    "\\uD83D\\uDE00",
    "\\U0001F600",
    "\\U00110000",
    "\\U0000D83D\\U0000DE00",
    "\\777",
    "\\400",
    "\\0",
    "\\08",
    "\\1234",
    "\\a\\b\\f\\n\\r\\t\\v",
    "\\\u{1F600}",
    "\\é",
    "\\\0",
    "{a b}",
    "{}",
    "\"\"",
    "{*}",
    "$a(",
    "$a(b)",
    "${a}",
    "${",
    "$::a::b",
    "[a]",
    "[a;b]",
    "#",
    "# c\n",
    "{a}b",
    "\"a\"b",
    "a::",
    "\u{1F600}\u{1F600}\u{1F600}",
];

fn gen_string(rng: &mut Rng, max_len: usize) -> String {
    let len = if rng.below(20) == 0 {
        rng.below(max_len * 16 + 1)
    } else {
        rng.below(max_len + 1)
    };
    let mut s = String::new();
    let plain = rng.below(3) == 0;
    for _ in 0..len {
        match rng.below(10) {
            0..=1 => s.push_str(rng.pick(PIECES)),
            2..=4 if !plain => s.push_str(rng.pick(ATOMS)),
            _ => s.push_str(rng.pick(&["a", "b", "c", "{", "}", " ", "\\", "\"", "]"])),
        }
    }
    s
}

fn gen_elements(rng: &mut Rng) -> Vec<String> {
    let n = rng.below(5);
    (0..n).map(|_| gen_string(rng, 8)).collect()
}

/// Strings to parse: random junk, well-formed lists, and mutated lists.
fn gen_list_text(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 => gen_string(rng, 12),
        1 => format_list(gen_elements(rng)),
        2 => {
            // A well-formed list with one random edit.
            let mut s = format_list(gen_elements(rng));
            let at = {
                let mut i = rng.below(s.len() + 1);
                while !s.is_char_boundary(i) {
                    i -= 1;
                }
                i
            };
            if rng.below(2) == 0 || s.is_empty() {
                s.insert_str(at, rng.pick(ATOMS));
            } else {
                let mut end = at + 1;
                while end < s.len() && !s.is_char_boundary(end) {
                    end += 1;
                }
                if end <= s.len() {
                    s.replace_range(at..end, "");
                }
            }
            s
        }
        _ => {
            // Junk after a closing brace or quote, for the error excerpt.
            let open = if rng.below(2) == 0 { "{a}" } else { "\"a\"" };
            let mut junk = String::new();
            for _ in 0..rng.below(30) + 1 {
                junk.push_str(rng.pick(&[
                    "x",
                    "é",
                    "中",
                    "\0",
                    "\u{1F600}",
                    "{",
                    "\"",
                    "\\",
                    " ",
                    "\n",
                ]));
            }
            format!("{}{open}{junk} b", gen_string(rng, 2))
        }
    }
}

fn gen_script(rng: &mut Rng) -> String {
    const SCRIPT: &[&str] = &[
        "set",
        "a",
        " ",
        "\n",
        ";",
        "{",
        "}",
        "[",
        "]",
        "\"",
        "$",
        "(",
        ")",
        "\\",
        "\\\n",
        "#",
        "::",
        "*",
        "{*}",
        "x",
        "\t",
        "$a(",
        "${",
        "\u{141}",
        "é",
        "\u{1F600}",
        "\0",
    ];
    let len = rng.below(14);
    (0..len).map(|_| rng.pick(SCRIPT)).collect()
}

fn fail(seed: u64, what: &str, input: &str, ours: &str, tcl: &str) -> ! {
    panic!(
        "{what} mismatch (TCL_DIFF_SEED={seed})\n  input: {input:?}\n  ours:  {ours:?}\n  tcl:   {tcl:?}"
    );
}

/// Fails the test when tclsh is missing: a differential test that compared
/// nothing must not pass.
fn require_tclsh() {
    assert!(
        tclsh_available(),
        "the differential tests need `tclsh` 8.6 on PATH (apt-get install tcl)"
    );
}

#[test]
fn format_matches_tcl_list() {
    require_tclsh();
    let seed = seed();
    eprintln!("format: TCL_DIFF_SEED={seed}");
    let mut rng = Rng(seed);
    let cases: Vec<Vec<String>> = (0..CASES).map(|_| gen_elements(&mut rng)).collect();
    let lines: Vec<String> = cases
        .iter()
        .map(|els| {
            std::iter::once("F".to_owned())
                .chain(els.iter().map(|e| hex(e)))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let answers = run_tclsh(&lines);
    for (els, answer) in cases.iter().zip(&answers) {
        let tcl = normalize_cesu(&unhex(answer));
        let ours = format_list(els);
        if ours != tcl {
            fail(seed, "list", &format!("{els:?}"), &ours, &tcl);
        }
        // And the round trip through our own parser.
        let back = parse_list(&ours)
            .unwrap_or_else(|e| fail(seed, "round trip", &ours, &e.to_string(), ""));
        if &back != els {
            fail(
                seed,
                "round trip",
                &ours,
                &format!("{back:?}"),
                &format!("{els:?}"),
            );
        }
    }
    eprintln!("format: {} cases agree with tclsh", cases.len());
}

#[test]
fn parse_matches_tcl_lindex() {
    require_tclsh();
    let seed = seed();
    eprintln!("parse: TCL_DIFF_SEED={seed}");
    let mut rng = Rng(seed ^ 1);
    let cases: Vec<String> = (0..CASES).map(|_| gen_list_text(&mut rng)).collect();
    let lines: Vec<String> = cases.iter().map(|s| format!("P {}", hex(s))).collect();
    let answers = run_tclsh(&lines);
    let (mut ok, mut errs) = (0, 0);
    for (s, answer) in cases.iter().zip(&answers) {
        let mut words = answer.split(' ');
        let kind = words.next().unwrap_or_default();
        let ours = parse_list(s);
        match (kind, &ours) {
            ("E", Err(e)) => {
                let tcl = normalize_cesu(&unhex(words.next().unwrap_or("x")));
                if e.to_string() != tcl {
                    fail(seed, "parse error", s, &e.to_string(), &tcl);
                }
                if list_length(s).is_ok() {
                    fail(seed, "llength", s, "ok", &tcl);
                }
                errs += 1;
            }
            ("L", Ok(elems)) => {
                let n: usize = words.next().unwrap_or_default().parse().unwrap();
                let tcl: Vec<String> = words.map(|w| normalize_cesu(&unhex(w))).collect();
                assert_eq!(tcl.len(), n);
                if elems != &tcl {
                    fail(seed, "parse", s, &format!("{elems:?}"), &format!("{tcl:?}"));
                }
                if list_length(s).ok() != Some(n) {
                    fail(
                        seed,
                        "llength",
                        s,
                        &format!("{:?}", list_length(s)),
                        &n.to_string(),
                    );
                }
                ok += 1;
            }
            _ => fail(seed, "parse", s, &format!("{ours:?}"), answer),
        }
    }
    eprintln!(
        "parse: {} cases agree with tclsh ({ok} lists, {errs} errors)",
        cases.len()
    );
    assert!(
        ok > CASES / 10 && errs > CASES / 20,
        "generator too lopsided: {ok} lists, {errs} errors"
    );
}

#[test]
fn info_complete_matches_tcl() {
    require_tclsh();
    let seed = seed();
    eprintln!("info complete: TCL_DIFF_SEED={seed}");
    let mut rng = Rng(seed ^ 2);
    let cases: Vec<String> = (0..CASES)
        .map(|i| {
            if i % 3 == 0 {
                gen_string(&mut rng, 10)
            } else {
                gen_script(&mut rng)
            }
        })
        .collect();
    let lines: Vec<String> = cases.iter().map(|s| format!("C {}", hex(s))).collect();
    let answers = run_tclsh(&lines);
    let mut complete = 0;
    for (s, answer) in cases.iter().zip(&answers) {
        let ours = info_complete(s);
        if answer != if ours { "1" } else { "0" } {
            fail(seed, "info complete", s, &ours.to_string(), answer);
        }
        complete += usize::from(ours);
    }
    eprintln!(
        "info complete: {} cases agree with tclsh ({complete} complete)",
        cases.len()
    );
}

#[test]
fn concat_matches_tcl() {
    require_tclsh();
    let seed = seed();
    eprintln!("concat: TCL_DIFF_SEED={seed}");
    let mut rng = Rng(seed ^ 3);
    const EDGES: &[&str] = &[
        " ", "\t", "\n", "\r", "\x0b", "\x0c", "\\", "\\ ", "\u{a0}", "", "a",
    ];
    let cases: Vec<Vec<String>> = (0..CASES)
        .map(|_| {
            (0..rng.below(5))
                .map(|_| {
                    let mut s = String::new();
                    for _ in 0..rng.below(3) {
                        s.push_str(rng.pick(EDGES));
                    }
                    s.push_str(&gen_string(&mut rng, 4));
                    for _ in 0..rng.below(4) {
                        s.push_str(rng.pick(EDGES));
                    }
                    s
                })
                .collect()
        })
        .collect();
    let lines: Vec<String> = cases
        .iter()
        .map(|parts| {
            std::iter::once("K".to_owned())
                .chain(parts.iter().map(|p| hex(p)))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let answers = run_tclsh(&lines);
    for (parts, answer) in cases.iter().zip(&answers) {
        let tcl = normalize_cesu(&unhex(answer));
        let ours = concat(parts);
        if ours != tcl {
            fail(seed, "concat", &format!("{parts:?}"), &ours, &tcl);
        }
    }
    eprintln!("concat: {} cases agree with tclsh", cases.len());
}
