//! The incremental receiver: bytes in, complete message words out.
//!
//! This is tcllib's `Word0` (spec Appendix B) made incremental: the scan
//! position, the brace depth and the start of the pending word survive
//! between feeds, so every byte is looked at a bounded number of times
//! whatever the chunking. Consumed bytes are dropped from the front by an
//! offset and compacted only when the dead prefix is at least as large as the
//! live part, which keeps the copying linear too.
//!
//! Where tcllib wedges (`{}`), spins (a word that is not `info complete`) or
//! grows without bound, the framer reports a [`FrameError`] and stays failed.
//!
//! Bytes that are not UTF-8 are not an error: tcllib on Tcl 8.6 reads its
//! sockets with `-encoding utf-8`, whose decoder takes anything, so the
//! framer decodes as that one does (see [`crate::tcl_utf8`]), for the
//! whitespace between and after words as well as for the words. Valid UTF-8
//! takes the fast path: validated piece by piece as it arrives and moved
//! into the pending word. Once a piece of a word is not valid, the rest of
//! that word stays as bytes in the buffer and is decoded only when the word
//! is complete, so a character split between two reads is never decided
//! too early.

use thiserror::Error;

use crate::list::{BLOCK, Block, EscapeTracker, below, hard_closes};

/// The default bound on one message (and so on a connection's buffer): 256 MiB.
pub const DEFAULT_MAX_MESSAGE: usize = 256 * 1024 * 1024;

/// A dead prefix smaller than this is never compacted: moving a few bytes
/// often costs more than it saves.
const COMPACT_MIN: usize = 64 * 1024;

/// A protocol error that ends the connection it happened on.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// The message word is empty (`{}`); tcllib wedges the connection on it.
    #[error("empty message")]
    EmptyWord,
    /// The message word is not a complete Tcl script; tcllib spins on it.
    #[error("message is not a complete script")]
    Incomplete,
    /// The message is larger than the configured maximum.
    #[error("message exceeds the maximum size of {max} bytes")]
    TooLarge {
        /// The configured maximum.
        max: usize,
    },
}

/// What was left in a [`Framer`] when the stream ended (see [`Framer::eof`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eof {
    /// Nothing but whitespace was left: every message was complete.
    Clean,
    /// A message had started but was not complete (tcllib would never have
    /// executed it either). `bytes` is how many bytes it had so far.
    Truncated {
        /// The bytes of the incomplete message.
        bytes: usize,
    },
}

/// Where the scan of the word at the front of the buffer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// Skipping whitespace before the next word; nothing of it is kept.
    Between,
    /// Inside a `{` word whose content begins at `start` (just after the
    /// brace); `pos` is the next byte to look at and `depth` the open braces
    /// before it.
    Brace { pos: usize, depth: usize },
    /// Inside a bare word that began at `start`; `pos` is the next byte.
    Bare { pos: usize },
}

/// Incremental framer. Feed bytes in any chunking; take out words in order.
/// Total work is linear in the bytes fed.
///
/// Driving it: after every [`feed`](Framer::feed), call
/// [`next_word`](Framer::next_word) until it returns `Ok(None)`; when the
/// stream ends, do the same once more and then ask [`eof`](Framer::eof)
/// whether a message was cut off.
#[derive(Debug)]
pub struct Framer {
    max: usize,
    buf: Vec<u8>,
    /// Index in `buf` of the first byte not yet consumed; inside a word, of
    /// the first byte of its content (a `{` before it is already dropped).
    start: usize,
    scan: Scan,
    /// The part of a pending word already scanned and validated, moved out
    /// of `buf` while still in cache: `buf` then holds about one read, and
    /// a complete word needs no second pass to become a `String`.
    word: String,
    /// An empty buffer handed back by [`Framer::recycle`], used for the
    /// next word so that a connection receiving large messages does not
    /// allocate (and page-fault) a fresh buffer for each.
    spare: String,
    /// Large braced groups at the top level of the pending word, as
    /// `(open, close)` offsets of their braces in the word, found while
    /// framing; `info complete` jumps over them instead of scanning them a
    /// second time (see [`crate::script::info_complete_with_groups`]).
    groups: Vec<(usize, usize)>,
    /// Offset in the pending word of the open brace of the top-level group
    /// being scanned, if any.
    group_open: Option<usize>,
    /// The pending word has bytes that are not UTF-8: what is not yet in
    /// `word` stays in `buf` until the word is complete, then is decoded as
    /// Tcl 8.6 does.
    raw: bool,
    failed: Option<FrameError>,
}

/// Braced groups shorter than this are not recorded for `info complete`:
/// scanning them again is cheaper than remembering them.
const GROUP_MIN: usize = 4096;

/// Reads shorter than this are staged in the buffer rather than absorbed
/// into the pending word (see `Framer::absorb`).
const ABSORB_MIN: usize = 256;

/// How many bytes `Framer::absorb` scans, validates and moves at a time.
const PIECE: usize = 1024;

/// The largest buffer [`Framer::recycle`] keeps: a connection that once
/// received a huge message must not hold that much memory for good (nor
/// while that message is being evaluated).
const SPARE_MAX: usize = 16 << 20;

impl Default for Framer {
    fn default() -> Self {
        Framer::new(DEFAULT_MAX_MESSAGE)
    }
}

impl Framer {
    /// A framer that refuses messages longer than `max_message` bytes.
    /// The bound is on the bytes received; a word decoded from bytes that
    /// are not UTF-8 can be up to twice as long (each such byte becomes a
    /// two-byte character), so a message never takes more than about three
    /// times `max_message` while it is decoded.
    pub fn new(max_message: usize) -> Self {
        Framer {
            max: max_message,
            buf: Vec::new(),
            start: 0,
            scan: Scan::Between,
            word: String::new(),
            spare: String::new(),
            groups: Vec::new(),
            group_open: None,
            raw: false,
            failed: None,
        }
    }

    /// The configured maximum message size.
    pub fn max_message(&self) -> usize {
        self.max
    }

    /// Appends received bytes. Bytes fed after an error are dropped, so a
    /// failed framer never grows.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.failed.is_some() || bytes.is_empty() {
            return;
        }
        let bytes = self.absorb(bytes);
        if bytes.is_empty() {
            return;
        }
        self.compact();
        self.buf.extend_from_slice(bytes);
    }

    /// While a braced word is in progress and everything buffered has been
    /// scanned, scans `bytes` where they are and moves them straight into
    /// the word, piece by piece (each piece's copy overlaps with the scan of
    /// the next), instead of staging them in `buf` first. Stops before the
    /// piece in which the word closes, or that is invalid or too large, and
    /// returns what is left for `buf`: the state is then exactly the one
    /// [`next_word`](Framer::next_word) would have reached after moving the
    /// absorbed bytes itself, so it finds the same words and errors.
    fn absorb<'b>(&mut self, bytes: &'b [u8]) -> &'b [u8] {
        let Scan::Brace { pos, mut depth } = self.scan else {
            return bytes;
        };
        if self.raw
            || self.start != 0
            || pos != 0
            || !self.buf.is_empty()
            || bytes.len() < ABSORB_MIN
        {
            return bytes;
        }
        self.start_word();
        // `bytes[from..]` is not in the word yet; `bytes[pos..]` not scanned.
        let (mut from, mut pos) = (0, 0);
        while pos < bytes.len() {
            let end = bytes.len().min(pos + PIECE);
            let (open, found) = (self.group_open, self.groups.len());
            let mut groups = Groups {
                base: self.word.len(),
                start: from,
                open,
                min: GROUP_MIN,
                found: &mut self.groups,
            };
            let (scanned, d, closed) = scan_braces(&bytes[..end], pos, depth, &mut groups);
            let open_after = groups.open;
            let piece = &bytes[from..scanned];
            let whole = whole_chars(piece);
            let ok = !closed
                && self.word.len() + piece.len() <= self.max
                && (whole == piece.len() || cut_char(&piece[whole..]));
            let valid = if ok { validate(&piece[..whole]) } else { None };
            let Some(valid) = valid else {
                self.groups.truncate(found);
                self.group_open = open;
                break;
            };
            self.group_open = open_after;
            self.word.push_str(valid);
            from += whole;
            pos = scanned;
            depth = d;
            if end == bytes.len() {
                break;
            }
        }
        self.scan = Scan::Brace {
            pos: pos - from,
            depth,
        };
        &bytes[from..]
    }

    /// How many received bytes are held (the pending part of a message and
    /// any messages not yet taken out). Whitespace between messages is not
    /// held once it has been scanned.
    pub fn buffered(&self) -> usize {
        let brace = matches!(self.scan, Scan::Brace { .. });
        self.word.len() + self.buf.len() - self.start + usize::from(brace)
    }

    /// The error the framer failed with, if it has.
    pub fn error(&self) -> Option<&FrameError> {
        self.failed.as_ref()
    }

    /// The next complete message word, `Ok(None)` if more bytes are needed.
    /// After an error the framer stays failed.
    ///
    /// The word is what tcllib's `Word0` extracts: the text between the outer
    /// braces of a `{...}` word, or a bare non-whitespace run that is followed
    /// by whitespace. It is `info complete`. Its bytes are decoded as Tcl
    /// 8.6 decodes UTF-8 (see [`crate::tcl_utf8`]).
    pub fn next_word(&mut self) -> Result<Option<String>, FrameError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if let Some(word) = self.simple_word() {
            return Ok(Some(word));
        }
        match self.scan_word() {
            Ok(None) => Ok(None),
            Ok(Some((from, to, resume))) => {
                let word = self.take_word(from, to, resume);
                word.map(Some).map_err(|e| self.fail(e))
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Hands back a word returned by [`next_word`](Framer::next_word) once
    /// its owner is done with it: its buffer is cleared and kept (the larger
    /// one if a spare is already held) to receive a later word, so that
    /// large messages reuse memory instead of allocating and faulting in
    /// fresh pages every time. A framer holds at most one spare buffer, of
    /// at most 16 MiB (a larger word's buffer is freed).
    pub fn recycle(&mut self, word: String) {
        if self.failed.is_none()
            && word.capacity() > self.spare.capacity()
            && word.capacity() <= SPARE_MAX
        {
            let mut word = word;
            word.clear();
            self.spare = word;
        }
    }

    /// Like [`next_word`](Framer::next_word), but on success replaces the
    /// contents of `out` with the word and keeps `out`'s old buffer for a
    /// later word (see [`recycle`](Framer::recycle)). Returns whether a word
    /// was produced; on `Ok(false)` and on error `out` is left unchanged.
    pub fn next_word_into(&mut self, out: &mut String) -> Result<bool, FrameError> {
        match self.next_word()? {
            Some(word) => {
                let old = std::mem::replace(out, word);
                self.recycle(old);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// The usual word in one pass over its bytes: between words, a braced
    /// word of at most [`SIMPLE_WORD_MAX`] bytes, all buffered, with no
    /// backslash, of valid UTF-8, and `info complete` (without parsing it
    /// when it holds none of `[`, `]`, `"` and `$`: see
    /// [`trivially_complete`]; its braces balance, as the scan found its
    /// close). `None` for anything else, which the general scan then takes
    /// from the same state, finding the same word or error.
    fn simple_word(&mut self) -> Option<String> {
        if !matches!(self.scan, Scan::Between)
            || self.raw
            || !self.word.is_empty()
            || self.group_open.is_some()
        {
            return None;
        }
        let rest = self.buf.get(self.start..)?;
        // ASCII whitespace only (a multi-byte space goes the general way).
        let open = rest.iter().position(|&b| !crate::list::is_space(b))?;
        if rest[open] != b'{' {
            return None;
        }
        let mut depth = 1usize;
        let mut plain = true;
        let mut close = None;
        let scanned = rest.get(open + 1..)?;
        for (k, &b) in scanned.iter().take(SIMPLE_WORD_MAX + 1).enumerate() {
            match WORD_CLASS[usize::from(b)] {
                1 => depth += 1,
                2 => {
                    depth -= 1;
                    if depth == 0 {
                        close = Some(k);
                        break;
                    }
                }
                3 => return None,
                4 => plain = false,
                _ => {}
            }
        }
        let close = close?;
        if close == 0 || close > self.max {
            return None;
        }
        let text = std::str::from_utf8(&scanned[..close]).ok()?;
        if !plain && !crate::script::info_complete_with_groups(text, &[]) {
            return None;
        }
        // On the fields themselves (`text` borrows the buffer); the word
        // is empty.
        reuse_spare(&mut self.word, &mut self.spare);
        self.word.push_str(text);
        self.start += open + 1 + close + 1;
        self.groups.clear();
        Some(std::mem::take(&mut self.word))
    }

    /// Makes a reused buffer the pending word's, if the word has none yet.
    fn start_word(&mut self) {
        if self.word.is_empty() {
            reuse_spare(&mut self.word, &mut self.spare);
        }
    }

    /// Tells the framer that the stream has ended, after every complete word
    /// has been taken out (call [`next_word`](Framer::next_word) until it
    /// returns `Ok(None)` first). Says whether a message was cut off.
    /// Whatever is left is dropped.
    pub fn eof(&mut self) -> Eof {
        let left = self.buffered();
        self.buf = Vec::new();
        self.word = String::new();
        self.spare = String::new();
        self.groups = Vec::new();
        self.group_open = None;
        self.raw = false;
        self.start = 0;
        self.scan = Scan::Between;
        if left == 0 {
            Eof::Clean
        } else {
            Eof::Truncated { bytes: left }
        }
    }

    fn fail(&mut self, e: FrameError) -> FrameError {
        self.failed = Some(e.clone());
        self.buf = Vec::new();
        self.word = String::new();
        self.spare = String::new();
        self.groups = Vec::new();
        self.group_open = None;
        self.raw = false;
        self.start = 0;
        self.scan = Scan::Between;
        e
    }

    /// Drops the consumed prefix when it is at least as large as the live
    /// part, so each byte is moved at most a bounded number of times.
    fn compact(&mut self) {
        if self.start == 0 {
            return;
        }
        let live = self.buf.len() - self.start;
        if live == 0 || (self.start >= COMPACT_MIN && self.start >= live) {
            self.drop_consumed();
        }
    }

    /// Advances the scan as far as the buffered bytes allow. Returns the word
    /// as `buf[from..to]` plus the index where the rest of the stream starts.
    fn scan_word(&mut self) -> Result<Option<(usize, usize, usize)>, FrameError> {
        loop {
            match self.scan {
                Scan::Between => {
                    let Some(skip) = skip_space(&self.buf[self.start..]) else {
                        // Only whitespace (or half a multi-byte space) is
                        // buffered; drop the whitespace part.
                        self.start = self.buf.len() - pending_tail(&self.buf[self.start..]);
                        return Ok(None);
                    };
                    self.start += skip;
                    self.scan = if self.buf[self.start] == b'{' {
                        self.start += 1;
                        Scan::Brace {
                            pos: self.start,
                            depth: 1,
                        }
                    } else {
                        Scan::Bare { pos: self.start }
                    };
                }
                Scan::Brace { pos, depth } => {
                    // Offset in the word of `buf[i]` is `i - start + word_len`.
                    let mut groups = Groups {
                        base: self.word.len(),
                        start: self.start,
                        open: self.group_open,
                        min: GROUP_MIN,
                        found: &mut self.groups,
                    };
                    let (pos, depth, closed) = scan_braces(&self.buf, pos, depth, &mut groups);
                    self.group_open = groups.open;
                    if closed {
                        // `pos` is just past the closing brace.
                        return Ok(Some((self.start, pos - 1, pos)));
                    }
                    self.scan = Scan::Brace { pos, depth };
                    self.stash(pos)?;
                    return Ok(None);
                }
                Scan::Bare { pos } => match find_space(&self.buf, pos) {
                    Ok(end) => return Ok(Some((self.start, end, end))),
                    Err(pos) => {
                        self.scan = Scan::Bare { pos };
                        self.stash(pos)?;
                        return Ok(None);
                    }
                },
            }
        }
    }

    /// Moves the scanned part `buf[start..pos]` of a pending word into
    /// `word`, as far as it is whole UTF-8, and drops it from `buf`. If it
    /// is not UTF-8, the word goes raw: its bytes stay in `buf` from here on.
    fn stash(&mut self, pos: usize) -> Result<(), FrameError> {
        self.check_size(self.word.len() + (pos - self.start))?;
        if self.raw {
            return Ok(());
        }
        self.start_word();
        let bytes = &self.buf[self.start..pos];
        // A character cut off by the end of what arrived stays in `buf`.
        let end = whole_chars(bytes);
        // The tail must be the start of a character, not an error.
        let valid =
            validate(&bytes[..end]).filter(|_| end == bytes.len() || cut_char(&bytes[end..]));
        let Some(valid) = valid else {
            self.raw = true;
            return Ok(());
        };
        self.word.push_str(valid);
        self.start += end;
        self.drop_consumed();
        Ok(())
    }

    /// Drops the consumed prefix of `buf`, adjusting the scan position.
    fn drop_consumed(&mut self) {
        let shift = self.start;
        if shift == 0 {
            return;
        }
        self.buf.drain(..shift);
        self.start = 0;
        self.scan = match self.scan {
            Scan::Between => Scan::Between,
            Scan::Brace { pos, depth } => Scan::Brace {
                pos: pos - shift,
                depth,
            },
            Scan::Bare { pos } => Scan::Bare { pos: pos - shift },
        };
    }

    fn check_size(&self, len: usize) -> Result<(), FrameError> {
        if len > self.max {
            Err(FrameError::TooLarge { max: self.max })
        } else {
            Ok(())
        }
    }

    fn take_word(&mut self, from: usize, to: usize, resume: usize) -> Result<String, FrameError> {
        self.check_size(self.word.len() + (to - from))?;
        if self.word.is_empty() && from == to {
            return Err(FrameError::EmptyWord);
        }
        self.start_word();
        let last = &self.buf[from..to];
        // `word` holds whole characters of valid UTF-8, so decoding the
        // rest on its own gives what decoding the whole message would.
        match validate(last).filter(|_| !self.raw) {
            Some(last) => self.word.push_str(last),
            None => crate::tcl_utf8::decode_into(last, &mut self.word),
        }
        let word = std::mem::take(&mut self.word);
        let mut groups = std::mem::take(&mut self.groups);
        if std::mem::take(&mut self.raw) {
            // The offsets were counted in received bytes, which decoding
            // has moved: let `info complete` scan the whole word.
            groups.clear();
        }
        self.group_open = None;
        if !trivially_complete(word.as_bytes())
            && !crate::script::info_complete_with_groups(&word, &groups)
        {
            return Err(FrameError::Incomplete);
        }
        // Keep the (cleared) allocation for the next word's groups.
        self.groups = groups;
        self.groups.clear();
        self.scan = Scan::Between;
        self.start = resume;
        Ok(word)
    }
}

/// Gives an empty `word` the spare buffer when that one is larger.
fn reuse_spare(word: &mut String, spare: &mut String) {
    if spare.capacity() > word.capacity() {
        std::mem::swap(word, spare);
    }
}

/// The longest word [`Framer::simple_word`] takes (longer ones go to the
/// block-wise scan).
const SIMPLE_WORD_MAX: usize = 1024;

/// What a byte is to [`Framer::simple_word`]: 1 and 2 open and close a
/// brace, 3 (a backslash) sends the word to the general scan, 4 is one of
/// the bytes that make `info complete` parse the word.
static WORD_CLASS: [u8; 256] =
    crate::list::byte_classes(&[(b"{", 1), (b"}", 2), (b"\\", 3), (b"[]\"$", 4)]);

/// Whether a word is `info complete` without parsing it: with none of the
/// bytes that open or close something other than braces (brackets, quotes,
/// a backslash, or `$`, whose `$a(` needs its `)`), only a brace can be
/// left open; and when the braces balance, never closing more than they
/// opened, every brace that starts a word finds its close (Tcl counts them
/// the same way, with no backslash to skip one). Most messages are such
/// words (`async 12 tick`, `send 5 {{set a 1}}`).
fn trivially_complete(word: &[u8]) -> bool {
    let mut depth = 0usize;
    for &b in word {
        match b {
            b'{' => depth += 1,
            b'}' => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            b'[' | b']' | b'"' | b'\\' | b'$' => return false,
            _ => {}
        }
    }
    depth == 0
}

/// Records the top-level braced groups of a word during a brace scan.
struct Groups<'a> {
    /// Length of the part of the word already moved out of the buffer.
    base: usize,
    /// Index in the buffer of the first byte of the word not moved out.
    start: usize,
    /// Offset in the word of the open brace of the current group.
    open: Option<usize>,
    /// Shortest group recorded (close minus open).
    min: usize,
    found: &'a mut Vec<(usize, usize)>,
}

impl Groups<'_> {
    #[inline]
    fn offset(&self, i: usize) -> usize {
        i - self.start + self.base
    }
}

/// `bytes` as text if they are valid UTF-8 (SIMD validation).
#[inline]
fn validate(bytes: &[u8]) -> Option<&str> {
    simdutf8::basic::from_utf8(bytes).ok()
}

/// Whether `tail` (what [`whole_chars`] left off) can still become a
/// character: it is not already an error whatever follows.
fn cut_char(tail: &[u8]) -> bool {
    match std::str::from_utf8(tail) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    }
}

/// The length of `bytes` without a multi-byte character that the end cuts
/// off (whether the bytes are otherwise valid is checked elsewhere).
fn whole_chars(bytes: &[u8]) -> usize {
    let n = bytes.len();
    for k in 1..=n.min(4) {
        let b = bytes[n - k];
        if b < 0x80 {
            return n;
        }
        if b >= 0xC0 {
            let need = match b {
                0xF0.. => 4,
                0xE0.. => 3,
                _ => 2,
            };
            return if need > k { n - k } else { n };
        }
    }
    n
}

/// Continues a brace scan at `pos` with `depth` open braces. Returns the new
/// position, depth, and whether the word closed (then `pos` is just past the
/// closing brace). Stops before a backslash that ends the buffer, since what
/// follows it decides whether it escapes a brace. Top-level groups of at
/// least [`GROUP_MIN`] bytes are recorded in `groups`.
///
/// Whole 64-byte blocks are classified with vector compares into bit masks
/// (escapes resolved with carry arithmetic); a block in which the depth
/// stays at 2 or more (nothing closes and no top-level group starts or
/// ends) costs a few popcounts, and only the others are walked brace by
/// brace. The tail shorter than a block is scanned byte by byte.
fn scan_braces(
    buf: &[u8],
    mut pos: usize,
    mut depth: usize,
    groups: &mut Groups<'_>,
) -> (usize, usize, bool) {
    let mut esc = EscapeTracker::default();
    while let Some(chunk) = buf.get(pos..).and_then(|r| r.first_chunk::<BLOCK>()) {
        let block = Block::new(chunk);
        let escaped = esc.next(block.eq(b'\\'));
        let o = block.eq(b'{') & !escaped;
        let c = block.eq(b'}') & !escaped;
        if o | c != 0 {
            let (no, nc) = (o.count_ones() as usize, c.count_ones() as usize);
            // The depth stays >= 2 unless a hard close takes it lower.
            let mut quiet = depth >= 2;
            if quiet && nc + 2 > depth {
                let mut h = hard_closes(o, c);
                while h != 0 {
                    let i = h.trailing_zeros();
                    let upto = below(i) | 1 << i;
                    let opened = (o & upto).count_ones() as usize;
                    let closed = (c & upto).count_ones() as usize;
                    if depth + opened < 2 + closed {
                        quiet = false;
                        break;
                    }
                    h &= h - 1;
                }
            }
            if quiet {
                depth = depth + no - nc;
            } else {
                let mut m = o | c;
                while m != 0 {
                    let bit = m & m.wrapping_neg();
                    let at = pos + bit.trailing_zeros() as usize;
                    m &= m - 1;
                    if o & bit != 0 {
                        depth += 1;
                        if depth == 2 {
                            groups.open = Some(groups.offset(at));
                        }
                    } else {
                        depth -= 1;
                        if depth == 0 {
                            return (at + 1, 0, true);
                        }
                        if depth == 1
                            && let Some(open) = groups.open.take()
                        {
                            let close = groups.offset(at);
                            if close - open >= groups.min {
                                groups.found.push((open, close));
                            }
                        }
                    }
                }
            }
        }
        pos += BLOCK;
    }
    if esc.carry == 1 {
        // The last block ended in a backslash that escapes what follows:
        // let the byte-wise scan see it again.
        pos -= 1;
    }
    scan_braces_tail(buf, pos, depth, groups)
}

/// The byte-wise brace scan (see [`scan_braces`]).
fn scan_braces_tail(
    buf: &[u8],
    mut pos: usize,
    mut depth: usize,
    groups: &mut Groups<'_>,
) -> (usize, usize, bool) {
    loop {
        pos = crate::script::next_brace_special(buf, pos);
        let Some(&b) = buf.get(pos) else {
            return (buf.len(), depth, false);
        };
        match b {
            b'{' => {
                depth += 1;
                if depth == 2 {
                    groups.open = Some(groups.offset(pos));
                }
            }
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return (pos + 1, 0, true);
                }
                if depth == 1
                    && let Some(open) = groups.open.take()
                {
                    let close = groups.offset(pos);
                    if close - open >= groups.min {
                        groups.found.push((open, close));
                    }
                }
            }
            _ => match buf.get(pos + 1) {
                // `\\`, `\{` and `\}` are skipped as units.
                Some(b'\\' | b'{' | b'}') => pos += 1,
                Some(_) => {}
                None => return (pos, depth, false),
            },
        }
        pos += 1;
    }
}

/// The length of the leading whitespace of `bytes` if a non-space character
/// follows it, `None` if everything buffered is (or may still turn out to
/// be) whitespace.
fn skip_space(bytes: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < bytes.len() {
        match space_at(bytes, i) {
            Some(Space::Yes(n)) => i += n,
            Some(Space::No(_)) => return Some(i),
            None => return None,
        }
    }
    None
}

/// How many bytes at the end of `bytes` (all whitespace before them) may be
/// the start of a multi-byte space and must be kept.
fn pending_tail(bytes: &[u8]) -> usize {
    let mut i = 0;
    while i < bytes.len() {
        match space_at(bytes, i) {
            Some(Space::Yes(n)) => i += n,
            _ => return bytes.len() - i,
        }
    }
    0
}

/// The end of the bare word scanned up to `pos`: `Ok(index of the
/// whitespace after it)`, or `Err(where to resume)` if no whitespace is
/// buffered yet.
fn find_space(buf: &[u8], mut pos: usize) -> Result<usize, usize> {
    while pos < buf.len() {
        let b = buf[pos];
        if b < 0x80 {
            if is_ascii_space(b) {
                return Ok(pos);
            }
            pos += 1;
            continue;
        }
        match space_at(buf, pos) {
            Some(Space::Yes(_)) => return Ok(pos),
            Some(Space::No(n)) => pos += n,
            None => return Err(pos),
        }
    }
    Err(pos)
}

enum Space {
    /// A whitespace character of this many bytes.
    Yes(usize),
    /// A character of this many bytes that is not whitespace.
    No(usize),
}

/// Whether the character at `bytes[i]`, decoded as Tcl 8.6 decodes UTF-8,
/// is whitespace by Tcl's ARE `\s`; `None` if the character is cut off by
/// the end of the buffer. A byte that is not UTF-8 stands for itself, so a
/// stray `A0` or `85` is whitespace (U+00A0, U+0085) as it is to tcllib.
fn space_at(bytes: &[u8], i: usize) -> Option<Space> {
    let b = bytes[i];
    if b < 0x80 {
        return Some(if is_ascii_space(b) {
            Space::Yes(1)
        } else {
            Space::No(1)
        });
    }
    let c = crate::tcl_utf8::char_at(bytes, i)?;
    Some(match char::from_u32(c.code) {
        Some(ch) if is_unicode_space(ch) => Space::Yes(c.len),
        _ => Space::No(c.len),
    })
}

fn is_ascii_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Tcl 8.6's `[[:space:]]` above ASCII (checked against tclsh 8.6.13).
fn is_unicode_space(c: char) -> bool {
    matches!(
        c,
        '\u{85}' | '\u{a0}' | '\u{1680}' | '\u{180e}' | '\u{2000}'
            ..='\u{200b}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{2060}'
                | '\u{3000}'
                | '\u{feff}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::{Cases, Draws};

    fn scan(buf: &[u8]) -> (usize, usize, bool) {
        scan_groups(buf).0
    }

    fn scan_groups(buf: &[u8]) -> ((usize, usize, bool), Vec<(usize, usize)>) {
        let mut found = Vec::new();
        let mut g = Groups {
            base: 0,
            start: 0,
            open: None,
            min: 0,
            found: &mut found,
        };
        let r = scan_braces(buf, 0, 1, &mut g);
        (r, found)
    }

    /// `info complete` with the groups the framer finds gives the same
    /// answer as without them, on every word the framer can deliver.
    #[test]
    fn group_hints_do_not_change_completeness() {
        let alphabet: &[&str] = &[
            "{", "}", "\\", "\n", " ", "\"", "[", "]", "$", "a", "*", "(", ")", ";", "#", "\t",
            "{*}", "é",
        ];
        let mut cases = Cases::new(0x9e37_79b9_7f4a_7c15);
        let mut checked = 0;
        for _ in 0..60_000 {
            let seed = cases.next_seed();
            let len = (seed % 40) as usize;
            let mut draws = Draws::new(seed);
            let mut w = String::new();
            for _ in 0..len {
                w.push_str(draws.pick(alphabet));
            }
            let ((pos, _, closed), groups) = scan_groups(w.as_bytes());
            if closed || pos < w.len() {
                continue;
            }
            checked += 1;
            assert_eq!(
                crate::script::info_complete_with_groups(&w, &groups),
                crate::script::info_complete(&w),
                "{w:?} {groups:?}"
            );
        }
        assert!(checked > 10_000, "{checked}");
    }

    type ScanFn = fn(&[u8], usize, usize, &mut Groups<'_>) -> (usize, usize, bool);

    /// The block scan agrees with the byte-wise one (position, depth,
    /// closing and groups) on long brace- and backslash-heavy inputs, from
    /// every starting depth.
    #[test]
    fn block_scan_matches_bytewise() {
        let alphabet: &[&[u8]] = &[b"{", b"}", b"\\", b"a", b"b", b" ", b"{", b"}", b"xyz"];
        let mut cases = Cases::new(0x2545_f491_4f6c_dd1d);
        for round in 0..4000 {
            let seed = cases.next_seed();
            let len = (seed % 400) as usize;
            let mut draws = Draws::new(seed);
            let mut w = Vec::new();
            for _ in 0..len {
                w.extend_from_slice(draws.pick(alphabet));
            }
            let depth = 1 + round % 4;
            let run = |f: ScanFn| {
                let mut found = Vec::new();
                let mut g = Groups {
                    base: 0,
                    start: 0,
                    open: None,
                    min: 0,
                    found: &mut found,
                };
                let r = f(&w, 0, depth, &mut g);
                (r, g.open, found)
            };
            assert_eq!(
                run(scan_braces),
                run(scan_braces_tail),
                "{:?} {depth}",
                String::from_utf8_lossy(&w)
            );
        }
    }

    /// Every word and error taken out after each feed, then the end state.
    fn frame_all(wire: &[u8], max: usize, chunk: usize) -> (Vec<Result<String, FrameError>>, Eof) {
        let mut f = Framer::new(max);
        let mut out = Vec::new();
        for read in wire.chunks(chunk) {
            f.feed(read);
            loop {
                match f.next_word() {
                    Ok(Some(w)) => out.push(Ok(w)),
                    Ok(None) => break,
                    Err(e) => {
                        out.push(Err(e));
                        return (out, Eof::Clean);
                    }
                }
            }
        }
        (out, f.eof())
    }

    /// Large reads absorbed straight into the pending word give the same
    /// words, errors and end state as byte-by-byte feeding.
    #[test]
    fn absorbing_matches_small_reads() {
        let alphabet: &[&[u8]] = &[
            b"{",
            b"}",
            b"\\",
            b"\\",
            b"a",
            b"bc ",
            b"\n",
            "é".as_bytes(),
            "中".as_bytes(),
            b"xxxxxxxxxxxxxxxx",
            b"{y}",
            b"{zz}",
        ];
        let mut cases = Cases::new(0x1234_5678_9abc_def1);
        for round in 0..300 {
            let mut draws = Draws::new(cases.next_seed());
            let mut wire = Vec::new();
            for _ in 0..3 {
                wire.extend_from_slice(b" {x ");
                let len = 200 + (draws.peek() % 3000) as usize;
                for _ in 0..len {
                    wire.extend_from_slice(draws.pick(alphabet));
                }
                if round % 7 == 0 {
                    wire.push(0xFF);
                }
                wire.extend_from_slice(b"}\n");
            }
            let max = if round % 5 == 0 {
                2000
            } else {
                DEFAULT_MAX_MESSAGE
            };
            let expect = frame_all(&wire, max, 1);
            for chunk in [256, 300, 1000, 4096, 5000] {
                assert_eq!(
                    frame_all(&wire, max, chunk),
                    expect,
                    "round {round} chunk {chunk}"
                );
            }
        }
    }

    /// Short words taken whole (in one pass) give the same words, errors
    /// and end state as the general scan, which byte-by-byte feeding uses.
    #[test]
    fn simple_words_match_the_general_scan() {
        let alphabet: &[&[u8]] = &[
            b"{",
            b"}",
            b"{",
            b"}",
            b"\\",
            b"a",
            b"b c",
            b"\n",
            b" ",
            b"[",
            b"]",
            b"$",
            b"\"",
            "é".as_bytes(),
            b"\xFF",
            b"{}",
            b"{x}",
            b"\n{",
            b"}\n",
            "\u{a0}".as_bytes(),
        ];
        let mut cases = Cases::new(0x51e9_1e00_a0b0_c0d0);
        for round in 0..3000 {
            let mut draws = Draws::new(cases.next_seed());
            let mut wire = Vec::new();
            for _ in 0..1 + draws.below(6) {
                wire.extend_from_slice(draws.pick(&[&b"{"[..], b" {", b"\n{", b"x{"]));
                for _ in 0..draws.below(12) {
                    wire.extend_from_slice(draws.pick(alphabet));
                }
                wire.extend_from_slice(draws.pick(&[&b"}\n"[..], b"}", b"}}\n", b"\n"]));
            }
            let max = if round % 5 == 0 {
                6
            } else {
                DEFAULT_MAX_MESSAGE
            };
            let expect = frame_all(&wire, max, 1);
            for chunk in [3, 7, 64, wire.len().max(1)] {
                assert_eq!(
                    frame_all(&wire, max, chunk),
                    expect,
                    "round {round} chunk {chunk} {:?}",
                    String::from_utf8_lossy(&wire)
                );
            }
        }
    }

    #[test]
    fn braces_and_escapes() {
        assert_eq!(scan(b"a}"), (2, 0, true));
        assert_eq!(scan(b"a\\}b}"), (5, 0, true));
        assert_eq!(scan(b"\\\\}"), (3, 0, true));
        assert_eq!(scan(b"a\\"), (1, 1, false));
        assert_eq!(scan(b"{a}"), (3, 1, false));
    }

    #[test]
    fn long_groups_are_recorded() {
        let inner = format!("x {{{}}} y", "a\\}{b}".repeat(2000));
        let wire = format!("{{{inner}}}\n");
        let mut f = Framer::default();
        let cut = wire.len() - 2;
        for chunk in wire.as_bytes()[..cut].chunks(777) {
            f.feed(chunk);
            assert_eq!(f.next_word(), Ok(None));
        }
        assert_eq!(f.groups, [(2, inner.len() - 3)]);
        f.feed(&wire.as_bytes()[cut..]);
        assert_eq!(f.next_word(), Ok(Some(inner)));
        assert!(f.groups.is_empty());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// The shortcut never calls a word complete that the parser does not:
        /// on any words, and on words made mostly of braces, so that many
        /// balance.
        #[test]
        fn trivially_complete_words_are_info_complete(
            word in proptest::prop_oneof![
                "[ -~\t\n\r\x0b\x0c\u{a0}\u{85}é(){}\\[\\]\"$;#]{0,40}",
                "[{}{}{} a#;\n*]{0,24}",
            ]
        ) {
            if trivially_complete(word.as_bytes()) {
                proptest::prop_assert!(crate::script::info_complete(&word), "{:?}", word);
            }
        }
    }

    #[test]
    fn trivial_completeness() {
        assert!(trivially_complete(b"async 12 tick"));
        assert!(trivially_complete(b"a(1 # ; x"));
        assert!(trivially_complete(b"send 5 {{set a {1 2}}}"));
        assert!(trivially_complete(b"a{ {b}} {*}{c} # {\n}"));
        for w in [
            "a {b", "a }", "[a", "a]", "\"a", "a\\", "$a(1", "a } {", "{a}}{",
        ] {
            assert!(!trivially_complete(w.as_bytes()), "{w:?}");
        }
        // The parser agrees where it matters: these are not complete.
        for w in ["a {b", "[a", "\"a", "$a(1", "a\\\n"] {
            assert!(!crate::script::info_complete(w), "{w:?}");
        }
    }

    #[test]
    fn spaces() {
        assert!(matches!(
            space_at("\u{a0}".as_bytes(), 0),
            Some(Space::Yes(2))
        ));
        assert!(space_at(&"\u{3000}".as_bytes()[..2], 0).is_none());
        assert!(matches!(space_at("é".as_bytes(), 0), Some(Space::No(2))));
        // Bytes that are not UTF-8 stand for themselves, as in Tcl 8.6.
        assert!(matches!(space_at(b"\xa0x", 0), Some(Space::Yes(1))));
        assert!(matches!(space_at(b"\xc3\xa0", 0), Some(Space::No(2))));
        assert!(matches!(space_at(b"\xe2\xa0x", 1), Some(Space::Yes(1))));
        assert_eq!(find_space("\u{e0}\u{2026}x ".as_bytes(), 0), Ok(6));
        assert_eq!(find_space(b"\xe2\x85x", 0), Ok(1));
        assert_eq!(skip_space(b" \r\n x"), Some(4));
        assert_eq!(skip_space(b" \r\n "), None);
    }
}
