//! Differential test of the framer on bytes that are not UTF-8, against
//! tcllib comm itself on Tcl 8.6 (the oracle).
//!
//! `tclsh` listens on 127.0.0.1 (port 0), reads the connection exactly as
//! tcllib does (`-translation lf -encoding utf-8`, non-blocking `read` on
//! readable events) and takes words off its buffer with tcllib's own
//! `::comm::Word0` and `info complete`, as `commCollect` does. Each word is
//! written back as hex of its UTF-8. We send one stream of thousands of
//! generated words (braced and bare, with valid, invalid, truncated and
//! overlong sequences, CESU-8 surrogates, 4-byte characters, NUL, and
//! separators that include stray `A0`/`85` bytes), written in random pieces
//! so that sequences are split between reads on both sides, and compare
//! Tcl's words with the framer's and, for braced words, with
//! `tcl_utf8::decode` of the content.
//!
//! One quirk of Tcl 8.6.13's channel is left out of the comparison: when a
//! read ends after the third byte of a valid 4-byte character (every 4096
//! bytes of a burst, or wherever a TCP read ends), Tcl takes the four bytes
//! as four characters (with `TCL_UTF_MAX` 3 it thinks three bytes make a
//! whole character). That depends on timing, not on the bytes; the framer
//! always decodes the whole character, as `encoding convertfrom` does. Both
//! sides' words are compared with such a split character joined again
//! ([`join_split_chars`]); the framer's words must also be exactly the same
//! whatever the chunking.
//!
//! Seeded: a new seed every run, printed on failure; set `TCL_DIFF_SEED` to
//! replay one. A lone surrogate half, which Tcl keeps and writes back as
//! CESU-8, is U+FFFD on our side (a Rust string cannot hold it), so Tcl's
//! answer is normalized the same way before comparing.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use tclcomm_wire::Framer;
use tclcomm_wire::tcl_utf8;

/// Words per run.
const CASES: usize = 20_000;
/// Kill `tclsh` if it has not answered everything by then.
const DEADLINE: Duration = Duration::from_secs(120);

const DRIVER: &str = r#"
package require comm
fconfigure stdout -translation binary -encoding binary -buffering full
set ::buf ""
proc emit {word} {
    binary scan [encoding convertto utf-8 $word] H* x
    puts x$x
}
# commCollect's loop, with tcllib's Word0.
proc collect {sock} {
    upvar #0 ::buf data
    if {[catch {read $sock} nbuf]} { set ::done 1; return }
    append data $nbuf
    while {![catch {set range [::comm::Word0 data]}]} {
        foreach {s e step} $range break
        set cmd [string range $data $s $e]
        if {$cmd eq ""} break
        if {![info complete $cmd]} break
        emit $cmd
        incr e $step
        set data [string range $data $e end]
    }
    if {[eof $sock]} { set ::done 1 }
}
proc accept {sock addr port} {
    fconfigure $sock -translation lf -encoding utf-8 -blocking 0
    fileevent $sock readable [list collect $sock]
}
set srv [socket -server accept -myaddr 127.0.0.1 0]
puts [lindex [fconfigure $srv -sockname] 2]
flush stdout
vwait ::done
puts END
flush stdout
"#;

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
    fn pick<'a>(&mut self, items: &[&'a [u8]]) -> &'a [u8] {
        items[self.below(items.len())]
    }
}

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

/// Pieces of word content: no braces, backslashes or other characters that
/// could leave a word not `info complete` (tcllib would spin on it), and no
/// ASCII whitespace (bare words get their separators separately).
const ATOMS: &[&[u8]] = &[
    b"a",
    b"Z",
    b"0",
    b"\x00",
    b"\xc0\x80",
    // Valid 2- and 3-byte characters, including the non-ASCII spaces. No
    // valid 4-byte character can arise in the stream (neither whole nor
    // from a lone F0..F4 lead and continuation atoms): where a read of
    // Tcl's ends inside one, Tcl 8.6 takes its bytes as separate characters,
    // which may be white space (85, A0) and move word boundaries, depending
    // on timing only. 4-byte characters are compared with Tcl's
    // `encoding convertfrom` in the tcl_utf8 unit tests and the engine test.
    "é".as_bytes(),
    "\u{a0}".as_bytes(),
    "\u{85}".as_bytes(),
    "\u{2028}".as_bytes(),
    "中".as_bytes(),
    "\u{ffff}".as_bytes(),
    // Stray continuation bytes and bytes that begin nothing.
    b"\x80",
    b"\x85",
    b"\xa0",
    b"\xbf",
    b"\xf8",
    b"\xfe",
    b"\xff",
    // Lead bytes on their own (truncated sequences).
    b"\xc2",
    b"\xc3",
    b"\xe2",
    b"\xe2\x82",
    // Overlong forms.
    b"\xc0\xaf",
    b"\xc1\xbf",
    b"\xc1\x81",
    b"\xe0\x80\x80",
    b"\xe0\x9f\xbf",
    b"\xf0\x80\x80\x80",
    b"\xf0\x8f\xbf\xbf",
    // Beyond U+10FFFF, and the F5..F7 leads.
    b"\xf4\x90\x80\x80",
    b"\xf5\x80\x80\x80",
    b"\xf7\xbf\xbf\xbf",
    // CESU-8 surrogates: halves and a pair.
    b"\xed\xa0\x80",
    b"\xed\xaf\xbf",
    b"\xed\xb0\x80",
    b"\xed\xbf\xbf",
    b"\xed\xa0\xbd\xed\xb8\x80",
    // Just below and above the surrogates.
    b"\xed\x9f\xbf",
    b"\xee\x80\x80",
];

/// What may stand between words: ASCII and non-ASCII whitespace, valid or
/// as a stray byte that Tcl takes as U+00A0 / U+0085.
const SEPARATORS: &[&[u8]] = &[
    b" ",
    b"\n",
    b"\t",
    b"\r",
    b"\xa0",
    b"\x85",
    "\u{a0}".as_bytes(),
    "\u{3000}".as_bytes(),
];

/// A word's content: a few atoms (never empty).
fn content(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..1 + rng.below(8) {
        out.extend_from_slice(rng.pick(ATOMS));
        if rng.below(4) == 0 {
            // Spaces inside a braced word are kept; in a bare one they split it.
            out.extend_from_slice(rng.pick(SEPARATORS));
        }
    }
    out
}

/// Tcl writes a lone surrogate half as CESU-8 (`ED A0..BF xx`); we have
/// U+FFFD there. Halves that pair up come back as one 4-byte character.
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

/// Joins four characters U+00F0..U+00F4, U+0080..U+00BF x3 that are the
/// bytes of a valid 4-byte UTF-8 character into that character (see the
/// module documentation).
fn join_split_chars(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        if let Some(four) = chars.get(i..i + 4)
            && four.iter().all(|&c| ('\u{80}'..='\u{f4}').contains(&c))
        {
            let bytes: Vec<u8> = four.iter().map(|&c| c as u8).collect();
            if let Ok(joined) = std::str::from_utf8(&bytes) {
                out.push_str(joined);
                i += 4;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
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

/// Sends `stream` to tcllib's reader in `tclsh` in the given pieces and
/// returns the words it took off, in order.
fn tcllib_words(stream: &[u8], pieces: &[usize]) -> Vec<String> {
    let dir = std::env::temp_dir().join(format!("tclcomm-utf8-diff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let driver = dir.join("driver.tcl");
    std::fs::write(&driver, DRIVER).unwrap();
    let mut child = Command::new("tclsh")
        .arg(&driver)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("tclsh (Tcl 8.6) is needed for this test");
    let stdout = child.stdout.take().unwrap();
    let child = Arc::new(Mutex::new(child));

    // Kill `tclsh` at the deadline unless everything was read before.
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let watchdog = {
        let child = Arc::clone(&child);
        std::thread::spawn(move || {
            let timed_out = done_rx.recv_timeout(DEADLINE).is_err();
            if timed_out {
                let _ = child.lock().unwrap().kill();
            }
            timed_out
        })
    };

    let mut lines = BufReader::new(stdout).lines();
    let port: u16 = lines
        .next()
        .expect("tclsh printed its port")
        .unwrap()
        .trim()
        .parse()
        .expect("tclsh printed a port (is tcllib installed?)");
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (stream, pieces) = (stream.to_vec(), pieces.to_vec());
    let writer = std::thread::spawn(move || {
        let mut at = 0;
        for n in pieces {
            let end = (at + n).min(stream.len());
            if sock.write_all(&stream[at..end]).is_err() {
                return;
            }
            at = end;
        }
        let _ = sock.write_all(&stream[at..]);
        let _ = sock.shutdown(std::net::Shutdown::Write);
        // Keep the socket open until tclsh has read everything.
        let _ = sock.read(&mut [0u8; 1]);
    });

    let mut words = Vec::new();
    for line in lines {
        let Ok(line) = line else { break };
        if line == "END" {
            break;
        }
        words.push(normalize_cesu(&unhex(&line)));
    }
    let _ = done_tx.send(());
    let timed_out = watchdog.join().unwrap();
    {
        let mut child = child.lock().unwrap();
        let _ = child.kill();
        let _ = child.wait();
    }
    let _ = writer.join();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!timed_out, "tclsh did not answer within {DEADLINE:?}");
    words
}

/// The framer's words for `stream` fed in the given pieces.
fn framer_words(stream: &[u8], pieces: &[usize]) -> Vec<String> {
    let mut f = Framer::default();
    let mut words = Vec::new();
    let mut at = 0;
    let mut feed = |f: &mut Framer, bytes: &[u8]| {
        f.feed(bytes);
        while let Some(w) = f.next_word().expect("no framing error") {
            words.push(w);
        }
    };
    for &n in pieces {
        let end = (at + n).min(stream.len());
        feed(&mut f, &stream[at..end]);
        at = end;
    }
    feed(&mut f, &stream[at..]);
    words
}

#[test]
fn framer_decodes_and_frames_as_tcllib_on_tcl_8_6() {
    let seed = seed();
    let mut rng = Rng(seed);
    let mut stream = Vec::new();
    // For each word: the content of a braced word, or None for a bare one
    // (where the oracle decides where Tcl sees the word end).
    let mut braced = Vec::new();
    for _ in 0..CASES {
        for _ in 0..1 + rng.below(2) {
            stream.extend_from_slice(rng.pick(SEPARATORS));
        }
        let c = content(&mut rng);
        if rng.below(3) == 0 {
            stream.extend_from_slice(&c);
            braced.push(None);
        } else {
            stream.push(b'{');
            stream.extend_from_slice(&c);
            stream.push(b'}');
            braced.push(Some(c));
        }
    }
    stream.push(b'\n');
    // Pieces from 1 byte to a few reads, so that both sides see sequences
    // split between reads.
    let mut pieces = Vec::new();
    let mut total = 0;
    while total < stream.len() {
        let n = match rng.below(4) {
            0 => 1 + rng.below(3),
            1 => 1 + rng.below(64),
            _ => 1 + rng.below(9000),
        };
        pieces.push(n);
        total += n;
    }

    let theirs = tcllib_words(&stream, &pieces);
    let ours = framer_words(&stream, &pieces);
    assert_eq!(
        ours,
        framer_words(&stream, &[]),
        "seed {seed}: the chunking changed the framer's words"
    );
    assert!(
        theirs.len() >= CASES,
        "seed {seed}: tcllib took {} words",
        theirs.len()
    );
    for (i, (t, o)) in theirs.iter().zip(&ours).enumerate() {
        assert_eq!(
            join_split_chars(o),
            join_split_chars(t),
            "seed {seed}: word {i} differs"
        );
    }
    assert_eq!(ours.len(), theirs.len(), "seed {seed}: word counts differ");

    // A braced word on its own is the decoding of its content, which
    // `tcl_utf8::decode` gives too.
    let mut f = Framer::default();
    for c in braced.iter().flatten() {
        let mut msg = vec![b'{'];
        msg.extend_from_slice(c);
        msg.extend_from_slice(b"}\n");
        f.feed(&msg);
        let w = f.next_word().unwrap().expect("a braced word");
        assert_eq!(tcl_utf8::decode(c), w, "seed {seed}: {c:02x?}");
    }
}
