//! Tcl 8.6 list codec: formatting identical to Tcl's `list` command and
//! parsing identical to Tcl's list parser (`lindex`, `llength`).
//!
//! Everything works on bytes: every character that means something to a Tcl
//! list is ASCII, so UTF-8 text passes through untouched and every slice we
//! take falls on a character boundary. Long elements are scanned 64 bytes at
//! a time: the compiler turns the per-block comparisons into vector
//! compare-and-movemask code, and escapes are resolved with carry arithmetic
//! on the resulting bit masks (the technique simdjson uses for JSON strings).
//!
//! Tcl 8.6.13 quirks reproduced here (all checked against `tclsh`):
//! - `\uXXXX` escapes naming a surrogate half: a high half immediately
//!   followed by a low half (from any escape) forms one character; a lone
//!   half, which Tcl would emit as CESU-8 bytes that are not UTF-8, becomes
//!   U+FFFD here.
//! - Escapes whose value is above U+FFFF (`\U0001F600`), and a backslash
//!   followed by a character above U+FFFF, yield U+FFFD (Tcl 8.6 is built
//!   with 16-bit characters).
//! - The "..." in `list element in braces followed by "..." instead of
//!   space` is at most 20 bytes of Tcl's internal encoding (NUL counts 2,
//!   a character above U+FFFF counts 3 per surrogate half), cut at a
//!   character boundary and at the first ASCII whitespace.

use std::borrow::Cow;

use thiserror::Error;

/// A string that is not a well-formed Tcl list. `Display` gives exactly the
/// message Tcl 8.6 gives for the same input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct ListError {
    /// Tcl's own message, e.g. `unmatched open brace in list`.
    pub message: String,
}

impl ListError {
    fn new(message: &str) -> Self {
        ListError {
            message: message.to_owned(),
        }
    }

    /// `list element in {braces|quotes} followed by "<junk>" instead of space`
    fn junk(what: &str, rest: &str) -> Self {
        ListError {
            message: format!(
                "list element in {what} followed by \"{}\" instead of space",
                junk_excerpt(rest)
            ),
        }
    }
}

/// Tcl's excerpt of the bytes after a closing brace or quote: up to 20 bytes
/// of Tcl's internal (modified UTF-8 / CESU-8) form, stopping at whitespace,
/// whole characters only.
fn junk_excerpt(rest: &str) -> Cow<'_, str> {
    const LIMIT: usize = 20;
    let mut used = 0;
    for (i, ch) in rest.char_indices() {
        if ch.is_ascii() && is_space(ch as u8) {
            return Cow::Borrowed(&rest[..i]);
        }
        let internal = match ch {
            '\0' => 2,
            c if u32::from(c) > 0xFFFF => 6,
            c => c.len_utf8(),
        };
        if used + internal > LIMIT {
            // A character above U+FFFF is two 3-byte halves inside Tcl: the
            // high half alone may still fit, and then prints as a lone
            // surrogate (U+FFFD for us).
            if internal == 6 && used + 3 <= LIMIT {
                let mut s = rest[..i].to_owned();
                s.push('\u{FFFD}');
                return Cow::Owned(s);
            }
            return Cow::Borrowed(&rest[..i]);
        }
        used += internal;
    }
    Cow::Borrowed(rest)
}

// ---------------------------------------------------------------------------
// Byte classes and 64-byte block masks
// ---------------------------------------------------------------------------

/// Tcl list whitespace (`TclIsSpaceProc` / `isspace` in the C locale).
#[inline]
const fn is_space(b: u8) -> bool {
    b == b' ' || (b >= b'\t' && b <= b'\r')
}

const BLOCK: usize = 64;

const LO: u64 = 0x0101_0101_0101_0101;
const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;

/// High bit of each byte of `x` set exactly where that byte is zero.
#[inline(always)]
const fn zero_bytes(x: u64) -> u64 {
    !(((x & LOW7).wrapping_add(LOW7)) | x) & !LOW7
}

/// High bit of each byte of `w` set where the byte equals `c`.
#[inline(always)]
const fn eq_bytes(w: u64, c: u8) -> u64 {
    zero_bytes(w ^ (LO * c as u64))
}

/// Gathers the high bits of the 8 bytes of `hi` into bits 0..8, in order.
#[inline(always)]
const fn gather(hi: u64) -> u64 {
    (hi >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56
}

/// Builds a 64-bit mask over the block from a per-word byte predicate that
/// returns high-bit-per-byte masks (SWAR: eight bytes per step).
#[inline(always)]
fn block_mask(block: &[u8; BLOCK], f: impl Fn(u64) -> u64) -> u64 {
    let mut m = 0u64;
    for (k, chunk) in block.chunks_exact(8).enumerate() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        m |= gather(f(u64::from_le_bytes(word))) << (8 * k);
    }
    m
}

/// Whitespace bytes of a word (space, `\t`, `\n`, `\v`, `\f`, `\r`).
#[inline(always)]
const fn space_bytes(w: u64) -> u64 {
    eq_bytes(w, b' ')
        | eq_bytes(w, b'\t')
        | eq_bytes(w, b'\n')
        | eq_bytes(w, 0x0b)
        | eq_bytes(w, 0x0c)
        | eq_bytes(w, b'\r')
}

/// Bit `i` set where `block[i] == c`.
#[inline(always)]
fn eq_mask(block: &[u8; BLOCK], c: u8) -> u64 {
    block_mask(block, |w| eq_bytes(w, c))
}

/// Bit `i` set where `block[i]` is list whitespace.
#[inline(always)]
fn space_mask(block: &[u8; BLOCK]) -> u64 {
    block_mask(block, space_bytes)
}

/// Bit `i` set where `block[i]` makes `list` prefer braces: whitespace,
/// `;`, `$`, `[`, `\`.
#[inline(always)]
fn prefer_brace_mask(block: &[u8; BLOCK]) -> u64 {
    block_mask(block, |w| {
        space_bytes(w)
            | eq_bytes(w, b';')
            | eq_bytes(w, b'$')
            | eq_bytes(w, b'[')
            | eq_bytes(w, b'\\')
    })
}

/// Bit `i` set where `block[i]` is `]` or `"`.
#[inline(always)]
fn prefer_escape_mask(block: &[u8; BLOCK]) -> u64 {
    block_mask(block, |w| eq_bytes(w, b']') | eq_bytes(w, b'"'))
}

/// Iterates over `bytes` in 64-byte blocks; the last one is padded with NUL
/// (a byte that is special to nothing here).
struct Blocks<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Blocks<'a> {
    fn new(bytes: &'a [u8], pos: usize) -> Self {
        Blocks { bytes, pos }
    }
}

impl Iterator for Blocks<'_> {
    /// (offset of the block, its bytes, number of real bytes)
    type Item = (usize, [u8; BLOCK], usize);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.bytes.get(self.pos..)?;
        if rest.is_empty() {
            return None;
        }
        let at = self.pos;
        let mut block = [0u8; BLOCK];
        let n = rest.len().min(BLOCK);
        block[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Some((at, block, n))
    }
}

/// Resolves backslash escapes across blocks: a byte is *escaped* when it
/// follows an unescaped backslash (i.e. an odd-length run of backslashes).
#[derive(Default)]
struct EscapeTracker {
    /// 1 when the first byte of the next block is escaped.
    carry: u64,
}

impl EscapeTracker {
    /// Returns the mask of escaped positions in a block whose backslash
    /// mask is `bs`.
    #[inline(always)]
    fn next(&mut self, bs: u64) -> u64 {
        const EVEN: u64 = 0x5555_5555_5555_5555;
        let bs = bs & !self.carry;
        let follows_escape = (bs << 1) | self.carry;
        let odd_starts = bs & !EVEN & !follows_escape;
        let seq_even = odd_starts.wrapping_add(bs);
        let invert = seq_even << 1;
        // The top bit: a backslash at position 63 that is unescaped escapes
        // the next block's first byte.
        let escaped = (EVEN ^ invert) & follows_escape;
        let last_unescaped_bs = (bs >> 63) & !(escaped >> 63) & 1;
        self.carry = last_unescaped_bs;
        escaped
    }
}

// ---------------------------------------------------------------------------
// Formatting (TclScanElement + TclConvertElement)
// ---------------------------------------------------------------------------

/// How `list` writes one element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Verbatim.
    Bare,
    /// `{...}`.
    Brace,
    /// Backslash before every special character except braces (Tcl's
    /// `CONVERT_MASK`: chosen when only `]` or `"` force quoting).
    EscapeNoBraces,
    /// Backslash before every special character (`CONVERT_ESCAPE`).
    Escape,
}

/// Bytes that make an element anything but bare: whitespace, braces, and
/// `;`, `$`, `[`, `]`, `"`, `\\`.
static LIST_SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let specials = b" \t\n\x0b\x0c\r{};$[]\"\\";
    let mut i = 0;
    while i < specials.len() {
        t[specials[i] as usize] = true;
        i += 1;
    }
    t
};

/// Decides the quoting of one element exactly as TclScanElement and
/// TclConvertElement do.
fn scan_element(s: &[u8], first: bool) -> Mode {
    let Some(&lead) = s.first() else {
        return Mode::Brace;
    };
    // Fast path: no byte that means anything to a list (a table lookup per
    // byte, stopping at the first special one) is written bare.
    if (!first || lead != b'#') && !s.iter().any(|&b| LIST_SPECIAL[usize::from(b)]) {
        return Mode::Bare;
    }
    let hash = first && lead == b'#';
    let mut forbid_none = false;
    let mut prefer_brace = hash;
    let mut prefer_escape = false;
    if lead == b'{' || lead == b'"' {
        forbid_none = true;
        prefer_brace = true;
    }
    let mut require_escape = false;
    let mut nesting: i64 = 0;
    let mut esc = EscapeTracker::default();
    let mut last_escaped_end = false;

    for (_, block, n) in Blocks::new(s, 0) {
        let open = eq_mask(&block, b'{');
        let close = eq_mask(&block, b'}');
        let bs = eq_mask(&block, b'\\');
        if !prefer_brace {
            if prefer_brace_mask(&block) != 0 {
                prefer_brace = true;
                forbid_none = true;
            }
            if prefer_escape_mask(&block) != 0 {
                prefer_escape = true;
                forbid_none = true;
            }
        }
        let escaped = esc.next(bs);
        if escaped & eq_mask(&block, b'\n') != 0 {
            // backslash-newline cannot survive brace quoting
            require_escape = true;
        }
        if n < BLOCK {
            last_escaped_end = (escaped >> n) & 1 == 1;
        }
        let o = open & !escaped;
        let c = close & !escaped;
        if i64::from(c.count_ones()) > nesting {
            // Nesting may dip below zero inside this block: walk it.
            let mut m = o | c;
            while m != 0 {
                let bit = m & m.wrapping_neg();
                if o & bit != 0 {
                    nesting += 1;
                } else {
                    nesting -= 1;
                    if nesting < 0 {
                        require_escape = true;
                    }
                }
                m &= m - 1;
            }
        } else {
            nesting += i64::from(o.count_ones()) - i64::from(c.count_ones());
        }
    }
    if s.len() % BLOCK == 0 {
        last_escaped_end = esc.carry == 1;
    }
    // An odd backslash at the very end cannot be brace quoted.
    if last_escaped_end || nesting != 0 {
        require_escape = true;
    }

    if require_escape {
        Mode::Escape
    } else if forbid_none {
        if prefer_escape && !prefer_brace {
            Mode::EscapeNoBraces
        } else {
            Mode::Brace
        }
    } else if hash {
        Mode::Brace
    } else {
        Mode::Bare
    }
}

/// The backslash form of a special byte in escape modes, if it has one.
const fn escape_of(b: u8) -> Option<&'static str> {
    Some(match b {
        b']' => "\\]",
        b'[' => "\\[",
        b'$' => "\\$",
        b';' => "\\;",
        b' ' => "\\ ",
        b'\\' => "\\\\",
        b'"' => "\\\"",
        b'{' => "\\{",
        b'}' => "\\}",
        b'\x0c' => "\\f",
        b'\n' => "\\n",
        b'\r' => "\\r",
        b'\t' => "\\t",
        b'\x0b' => "\\v",
        _ => return None,
    })
}

/// Bit `i` set where `block[i]` needs a backslash in escape mode.
#[inline(always)]
fn escape_mask(block: &[u8; BLOCK], braces: bool) -> u64 {
    block_mask(block, |w| {
        let m = space_bytes(w)
            | eq_bytes(w, b';')
            | eq_bytes(w, b'$')
            | eq_bytes(w, b'[')
            | eq_bytes(w, b']')
            | eq_bytes(w, b'"')
            | eq_bytes(w, b'\\');
        if braces {
            m | eq_bytes(w, b'{') | eq_bytes(w, b'}')
        } else {
            m
        }
    })
}

fn write_escaped(s: &str, braces: bool, out: &mut String) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + bytes.len() / 4 + 2);
    let mut copied = 0;
    for (at, block, _) in Blocks::new(bytes, 0) {
        let mut m = escape_mask(&block, braces);
        while m != 0 {
            let i = at + m.trailing_zeros() as usize;
            m &= m - 1;
            // Special bytes are ASCII, so `i` is a char boundary.
            if let (Some(run), Some(esc)) =
                (s.get(copied..i), bytes.get(i).and_then(|&b| escape_of(b)))
            {
                out.push_str(run);
                out.push_str(esc);
                copied = i + 1;
            }
        }
    }
    out.push_str(s.get(copied..).unwrap_or_default());
}

/// Appends `element`, quoted as Tcl's `list` quotes it, to `out`.
/// `first` says whether this is the first element of its list (a leading `#`
/// is quoted only there).
pub fn quote_element(element: &str, first: bool, out: &mut String) {
    match scan_element(element.as_bytes(), first) {
        Mode::Bare => out.push_str(element),
        Mode::Brace => {
            out.reserve(element.len() + 2);
            out.push('{');
            out.push_str(element);
            out.push('}');
        }
        Mode::EscapeNoBraces => write_escaped(element, false, out),
        Mode::Escape => {
            if first && element.starts_with('#') {
                out.push_str("\\#");
                write_escaped(element.get(1..).unwrap_or_default(), true, out);
            } else {
                write_escaped(element, true, out);
            }
        }
    }
}

/// How one element is written, borrowing the element where Tcl writes it
/// verbatim; lets a writer send large elements without copying them (for
/// instance with vectored writes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Quoted<'a> {
    /// Written as is.
    Bare(&'a str),
    /// Written as `{`, the text, `}`.
    Braced(&'a str),
    /// Written as this backslash-quoted text.
    Escaped(String),
}

impl Quoted<'_> {
    /// Appends the quoted form to `out`.
    pub fn write_to(&self, out: &mut String) {
        match self {
            Quoted::Bare(s) => out.push_str(s),
            Quoted::Braced(s) => {
                out.reserve(s.len() + 2);
                out.push('{');
                out.push_str(s);
                out.push('}');
            }
            Quoted::Escaped(s) => out.push_str(s),
        }
    }

    /// Length in bytes of the quoted form.
    pub fn len(&self) -> usize {
        match self {
            Quoted::Bare(s) => s.len(),
            Quoted::Braced(s) => s.len() + 2,
            Quoted::Escaped(s) => s.len(),
        }
    }

    /// Whether the quoted form is empty (only for an empty bare element,
    /// which Tcl never produces: the empty element is `{}`).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Decides how Tcl's `list` writes `element` without copying it unless
/// backslash quoting is needed. `first` as in [`quote_element`].
pub fn quote_element_cow(element: &str, first: bool) -> Quoted<'_> {
    match scan_element(element.as_bytes(), first) {
        Mode::Bare => Quoted::Bare(element),
        Mode::Brace => Quoted::Braced(element),
        Mode::EscapeNoBraces | Mode::Escape => {
            let mut s = String::new();
            quote_element(element, first, &mut s);
            Quoted::Escaped(s)
        }
    }
}

/// Formats the elements as one Tcl list, exactly as Tcl's `list` does.
pub fn format_list<I, S>(elements: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out = String::new();
    format_list_into(elements, &mut out);
    out
}

/// Like [`format_list`], appending to `out` (whose existing content is
/// kept; the list's first element is still treated as first).
pub fn format_list_into<I, S>(elements: I, out: &mut String)
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    for (i, e) in elements.into_iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        quote_element(e.as_ref(), i == 0, out);
    }
}

// ---------------------------------------------------------------------------
// Parsing (TclFindElement + TclCopyAndCollapse + TclParseBackslash)
// ---------------------------------------------------------------------------

/// Finds the `}` closing a braced element whose content starts at `from`
/// (just after the opening brace). Escaped braces do not count.
fn find_close_brace(bytes: &[u8], from: usize) -> Option<usize> {
    let mut level: i64 = 1;
    let mut esc = EscapeTracker::default();
    for (at, block, _) in Blocks::new(bytes, from) {
        let escaped = esc.next(eq_mask(&block, b'\\'));
        let o = eq_mask(&block, b'{') & !escaped;
        let c = eq_mask(&block, b'}') & !escaped;
        if i64::from(c.count_ones()) < level {
            level += i64::from(o.count_ones()) - i64::from(c.count_ones());
            continue;
        }
        let mut m = o | c;
        while m != 0 {
            let bit = m & m.wrapping_neg();
            if o & bit != 0 {
                level += 1;
            } else {
                level -= 1;
                if level == 0 {
                    return Some(at + bit.trailing_zeros() as usize);
                }
            }
            m &= m - 1;
        }
    }
    None
}

/// Finds the first unescaped `"` at or after `from`, and whether the text
/// before it holds a backslash.
fn find_close_quote(bytes: &[u8], from: usize) -> Option<(usize, bool)> {
    let mut esc = EscapeTracker::default();
    let mut any_bs = false;
    for (at, block, _) in Blocks::new(bytes, from) {
        let bs = eq_mask(&block, b'\\');
        let escaped = esc.next(bs);
        let q = eq_mask(&block, b'"') & !escaped;
        if q != 0 {
            let i = q.trailing_zeros();
            let before = if i == 0 { 0 } else { u64::MAX >> (64 - i) };
            return Some((at + i as usize, any_bs || bs & before != 0));
        }
        any_bs |= bs != 0;
    }
    None
}

/// Finds the end of a bare element starting at `from`: the first whitespace
/// not consumed by a backslash sequence. Returns (end, had a backslash).
fn find_bare_end(bytes: &[u8], from: usize) -> (usize, bool) {
    let mut esc = EscapeTracker::default();
    let mut any_bs = false;
    // 1 when the next block starts inside the spaces/tabs that follow a
    // backslash-newline (Tcl's backslash sequence swallows them).
    let mut run_carry = 0u64;
    for (at, block, n) in Blocks::new(bytes, from) {
        let bs = eq_mask(&block, b'\\');
        let escaped = esc.next(bs);
        let space = space_mask(&block);
        let st = eq_mask(&block, b' ') | eq_mask(&block, b'\t');
        // Spaces/tabs right after an escaped newline, and the runs they start.
        let starts = (((escaped & eq_mask(&block, b'\n')) << 1) | run_carry) & st;
        let sum = st.wrapping_add(starts);
        let swallowed = st & !sum;
        run_carry = u64::from(sum < st && starts != 0);
        let term = space & !escaped & !swallowed;
        if term != 0 {
            let i = term.trailing_zeros();
            let before = if i == 0 { 0 } else { u64::MAX >> (64 - i) };
            return (at + i as usize, any_bs || bs & before != 0);
        }
        any_bs |= bs != 0;
        if n < BLOCK {
            break;
        }
    }
    (bytes.len(), any_bs)
}

/// One parsed element: the slice of the list holding it and whether it needs
/// backslash substitution.
struct Found {
    start: usize,
    end: usize,
    literal: bool,
}

/// TclFindElement: locates the element starting at `pos` (already past
/// whitespace, not at the end); returns it and the position after it and any
/// following whitespace.
fn find_element(s: &str, pos: usize) -> Result<(Found, usize), ListError> {
    let bytes = s.as_bytes();
    let (found, after) = match bytes.get(pos) {
        Some(b'{') => {
            let close = find_close_brace(bytes, pos + 1)
                .ok_or_else(|| ListError::new("unmatched open brace in list"))?;
            let f = Found {
                start: pos + 1,
                end: close,
                literal: true,
            };
            let after = close + 1;
            if let Some(&b) = bytes.get(after)
                && !is_space(b)
            {
                return Err(ListError::junk(
                    "braces",
                    s.get(after..).unwrap_or_default(),
                ));
            }
            (f, after)
        }
        Some(b'"') => {
            let (close, any_bs) = find_close_quote(bytes, pos + 1)
                .ok_or_else(|| ListError::new("unmatched open quote in list"))?;
            let f = Found {
                start: pos + 1,
                end: close,
                literal: !any_bs,
            };
            let after = close + 1;
            if let Some(&b) = bytes.get(after)
                && !is_space(b)
            {
                return Err(ListError::junk(
                    "quotes",
                    s.get(after..).unwrap_or_default(),
                ));
            }
            (f, after)
        }
        _ => {
            let (end, any_bs) = find_bare_end(bytes, pos);
            (
                Found {
                    start: pos,
                    end,
                    literal: !any_bs,
                },
                end,
            )
        }
    };
    Ok((found, skip_space(bytes, after)))
}

#[inline]
fn skip_space(bytes: &[u8], mut pos: usize) -> usize {
    while bytes.get(pos).is_some_and(|&b| is_space(b)) {
        pos += 1;
    }
    pos
}

/// Parses a Tcl list into its elements, with all of Tcl's backslash
/// substitutions, or fails with Tcl's own message.
pub fn parse_list(s: &str) -> Result<Vec<String>, ListError> {
    Ok(parse_list_cow(s)?
        .into_iter()
        .map(Cow::into_owned)
        .collect())
}

/// Like [`parse_list`], but elements that Tcl takes verbatim (braced ones,
/// and quoted or bare ones without backslashes) borrow from `s`.
pub fn parse_list_cow(s: &str) -> Result<Vec<Cow<'_, str>>, ListError> {
    let mut out = Vec::new();
    for e in ListIter::new(s) {
        out.push(e?);
    }
    Ok(out)
}

/// Iterator over the elements of a Tcl list, yielding each element (or the
/// error that stops the parse, after which it yields nothing).
#[derive(Debug, Clone)]
pub struct ListIter<'a> {
    s: &'a str,
    pos: usize,
    done: bool,
}

impl<'a> ListIter<'a> {
    /// Starts parsing `s`.
    pub fn new(s: &'a str) -> Self {
        ListIter {
            s,
            pos: skip_space(s.as_bytes(), 0),
            done: false,
        }
    }
}

impl<'a> Iterator for ListIter<'a> {
    type Item = Result<Cow<'a, str>, ListError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.s.len() {
            return None;
        }
        match find_element(self.s, self.pos) {
            Ok((f, next)) => {
                self.pos = next;
                let raw = self.s.get(f.start..f.end).unwrap_or_default();
                Some(Ok(if f.literal {
                    Cow::Borrowed(raw)
                } else {
                    Cow::Owned(collapse(raw))
                }))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Number of elements in a Tcl list (`llength`), or Tcl's error.
pub fn list_length(s: &str) -> Result<usize, ListError> {
    let mut n = 0;
    let mut pos = skip_space(s.as_bytes(), 0);
    while pos < s.len() {
        pos = find_element(s, pos)?.1;
        n += 1;
    }
    Ok(n)
}

/// Substitutes every backslash sequence in `raw` (TclCopyAndCollapse).
pub fn collapse(raw: &str) -> String {
    let mut out = Sink {
        s: String::with_capacity(raw.len()),
        high: None,
    };
    let bytes = raw.as_bytes();
    let mut i = 0;
    while let Some(off) = bytes
        .get(i..)
        .and_then(|r| r.iter().position(|&b| b == b'\\'))
    {
        let j = i + off;
        out.text(raw.get(i..j).unwrap_or_default());
        let (value, used) = backslash(raw, j);
        out.code(value);
        i = j + used;
    }
    out.text(raw.get(i..).unwrap_or_default());
    out.finish()
}

/// Collects substituted text, pairing surrogate halves from escapes as Tcl's
/// UTF-8 output does.
struct Sink {
    s: String,
    high: Option<u32>,
}

impl Sink {
    fn flush(&mut self) {
        if self.high.take().is_some() {
            self.s.push('\u{FFFD}');
        }
    }

    fn text(&mut self, t: &str) {
        if !t.is_empty() {
            self.flush();
            self.s.push_str(t);
        }
    }

    fn code(&mut self, v: u32) {
        match v {
            0xD800..=0xDBFF => {
                self.flush();
                self.high = Some(v);
            }
            0xDC00..=0xDFFF => match self.high.take() {
                Some(h) => {
                    let c = 0x10000 + ((h - 0xD800) << 10) + (v - 0xDC00);
                    self.s.push(char::from_u32(c).unwrap_or('\u{FFFD}'));
                }
                None => self.s.push('\u{FFFD}'),
            },
            _ => {
                self.flush();
                self.s.push(char::from_u32(v).unwrap_or('\u{FFFD}'));
            }
        }
    }

    fn finish(mut self) -> String {
        self.flush();
        self.s
    }
}

/// Parses up to `max` hex digits (TclParseHex, which also stops before a
/// value could pass U+10FFFF). Returns (value, digits used).
fn parse_hex(bytes: &[u8], max: usize) -> (u32, usize) {
    let mut v: u32 = 0;
    let mut n = 0;
    for &b in bytes.iter().take(max) {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => break,
        };
        if v > 0x10FFF {
            break;
        }
        v = (v << 4) | u32::from(d);
        n += 1;
    }
    (v, n)
}

/// TclParseBackslash on `raw[at..]` (which starts with `\`), limited to the
/// end of `raw`. Returns (code point, bytes consumed). Code points above
/// U+FFFF come back as U+FFFD, as in Tcl 8.6.
fn backslash(raw: &str, at: usize) -> (u32, usize) {
    let bytes = raw.as_bytes();
    let rest = bytes.get(at..).unwrap_or_default();
    let num = rest.len();
    let Some(&c) = rest.get(1) else {
        return (u32::from(b'\\'), 1);
    };
    let simple = |v: u8| (u32::from(v), 2);
    match c {
        b'a' => simple(0x07),
        b'b' => simple(0x08),
        b'f' => simple(0x0C),
        b'n' => simple(0x0A),
        b'r' => simple(0x0D),
        b't' => simple(0x09),
        b'v' => simple(0x0B),
        b'x' | b'u' | b'U' => {
            let max = match c {
                b'x' => 2,
                b'u' => 4,
                _ => 8,
            };
            let (v, n) = parse_hex(rest.get(2..).unwrap_or_default(), max.min(num - 2));
            if n == 0 {
                (u32::from(c), 2)
            } else if c == b'x' {
                (v & 0xFF, 2 + n)
            } else if v > 0xFFFF {
                (0xFFFD, 2 + n)
            } else {
                (v, 2 + n)
            }
        }
        b'\n' => {
            let mut n = 2;
            while n < num && matches!(rest.get(n), Some(b' ' | b'\t')) {
                n += 1;
            }
            (u32::from(b' '), n)
        }
        b'0'..=b'7' => {
            let mut v = u32::from(c - b'0');
            let mut n = 2;
            if let Some(&d @ b'0'..=b'7') = rest.get(2) {
                v = (v << 3) | u32::from(d - b'0');
                n = 3;
                if v < 0x20
                    && let Some(&d @ b'0'..=b'7') = rest.get(3)
                {
                    v = ((v << 3) | u32::from(d - b'0')) & 0xFF;
                    n = 4;
                }
            }
            (v, n)
        }
        _ => {
            let ch = raw
                .get(at + 1..)
                .and_then(|t| t.chars().next())
                .unwrap_or('\\');
            let v = u32::from(ch);
            (if v > 0xFFFF { 0xFFFD } else { v }, 1 + ch.len_utf8())
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn q(e: &str) -> String {
        format_list([e])
    }

    #[test]
    fn appendix_a_examples() {
        assert_eq!(q(""), "{}");
        assert_eq!(q("\0"), "\0");
        assert_eq!(q("a b"), "{a b}");
        assert_eq!(q("a{b"), "a\\{b");
        assert_eq!(q("{a}"), "{{a}}");
        assert_eq!(q("a\\"), "a\\\\");
        assert_eq!(q("a\\b"), "{a\\b}");
        assert_eq!(q("a\\\nb"), "a\\\\\\nb");
        assert_eq!(q("a\nb"), "{a\nb}");
        assert_eq!(q("$x"), "{$x}");
        assert_eq!(q("a\"b"), "a\\\"b");
        assert_eq!(q("\""), "{\"}");
        assert_eq!(q("a\\{"), "{a\\{}");
        assert_eq!(q("}{"), "\\}\\{");
        assert_eq!(q("{\\}"), "\\{\\\\\\}");
        assert_eq!(format_list(["#a", "#a"]), "{#a} #a");
        assert_eq!(format_list(["a b", "c"]), "{a b} c");
    }

    #[test]
    fn more_format_cases() {
        assert_eq!(q("a{b}"), "a{b}");
        assert_eq!(
            format_list([
                "#a{", "#}", "#\\", "#a\"", "#a]", "{", "\"", "a\"", "a]{", "a]{}"
            ]),
            "\\#a\\{ #\\} #\\\\ #a\\\" #a\\] \\{ {\"} a\\\" a\\]\\{ a\\]{}"
        );
        assert_eq!(q("#a\""), "{#a\"}");
        assert_eq!(q("a\tb"), "{a\tb}");
    }

    #[test]
    fn parse_basics() {
        assert_eq!(parse_list("a {b c} \"d e\"").unwrap(), ["a", "b c", "d e"]);
        assert_eq!(parse_list("  ").unwrap(), Vec::<String>::new());
        assert_eq!(parse_list("{a\\\nb}").unwrap(), ["a\\\nb"]);
        assert_eq!(parse_list("a\\\n \t b").unwrap(), ["a b"]);
        assert_eq!(parse_list("\\x41\\x4142\\x").unwrap(), ["AA42x"]);
        assert_eq!(
            parse_list("\\777\\400\\0\\08\\1234").unwrap(),
            ["?7 0\0\08S4"]
        );
        assert_eq!(parse_list("\\uD83D\\uDE00").unwrap(), ["\u{1F600}"]);
        assert_eq!(parse_list("\\U0001F600").unwrap(), ["\u{FFFD}"]);
        assert_eq!(parse_list("\\U00110000").unwrap(), ["\u{FFFD}0"]);
        assert_eq!(parse_list("\\\u{1F600}x").unwrap(), ["\u{FFFD}x"]);
        assert_eq!(parse_list("a\\").unwrap(), ["a\\"]);
    }

    #[test]
    fn parse_errors() {
        let e = |s: &str| parse_list(s).unwrap_err().to_string();
        assert_eq!(e("{a"), "unmatched open brace in list");
        assert_eq!(e("\"a"), "unmatched open quote in list");
        assert_eq!(
            e("\"a\"b"),
            "list element in quotes followed by \"b\" instead of space"
        );
        assert_eq!(
            e("{a}xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx yy"),
            "list element in braces followed by \"xxxxxxxxxxxxxxxxxxxx\" instead of space"
        );
        assert_eq!(
            e(&format!("{{a}}x{} yy", "é".repeat(11))),
            format!(
                "list element in braces followed by \"x{}\" instead of space",
                "é".repeat(9)
            )
        );
        assert_eq!(
            e(&format!("{{a}}xxx{} yy", "\u{1F600}".repeat(9))),
            "list element in braces followed by \"xxx\u{1F600}\u{1F600}\u{FFFD}\" instead of space"
        );
    }

    /// Straightforward per-byte translation of TclScanElement, to check the
    /// block scanner on long inputs.
    fn scan_reference(s: &[u8], first: bool) -> Mode {
        if s.is_empty() {
            return Mode::Brace;
        }
        let hash = first && s[0] == b'#';
        let (mut forbid, mut pb, mut pe, mut req) = (false, hash, false, false);
        if s[0] == b'{' || s[0] == b'"' {
            forbid = true;
            pb = true;
        }
        let mut nest = 0i64;
        let mut i = 0;
        while i < s.len() {
            match s[i] {
                b'{' => nest += 1,
                b'}' => {
                    nest -= 1;
                    if nest < 0 {
                        req = true;
                    }
                }
                b']' | b'"' => {
                    forbid = true;
                    pe = true;
                }
                b'[' | b'$' | b';' | b' ' | b'\x0c' | b'\n' | b'\r' | b'\t' | b'\x0b' => {
                    forbid = true;
                    pb = true;
                }
                b'\\' => {
                    if i + 1 == s.len() {
                        req = true;
                    } else if s[i + 1] == b'\n' {
                        req = true;
                        i += 1;
                    } else {
                        if matches!(s[i + 1], b'{' | b'}' | b'\\') {
                            i += 1;
                        }
                        forbid = true;
                        pb = true;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        if nest != 0 || req {
            Mode::Escape
        } else if forbid {
            if pe && !pb {
                Mode::EscapeNoBraces
            } else {
                Mode::Brace
            }
        } else if hash {
            Mode::Brace
        } else {
            Mode::Bare
        }
    }

    #[test]
    fn block_scanner_matches_reference() {
        let alphabet = b"ab{}\\\n \t\"]#x";
        let mut seed: u64 = 0x1234_5678_9abc_def0;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 200) as usize;
            let mut v = Vec::with_capacity(len);
            let mut r = seed;
            for _ in 0..len {
                r = r
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                // Bias towards plain letters so braces stay balanced sometimes.
                let k = (r >> 33) as usize % (alphabet.len() * 2);
                v.push(if k < alphabet.len() {
                    alphabet[k]
                } else {
                    b'a'
                });
            }
            assert_eq!(
                scan_element(&v, true),
                scan_reference(&v, true),
                "{:?}",
                String::from_utf8_lossy(&v)
            );
            let s = String::from_utf8(v).unwrap();
            let f = format_list([s.as_str(), s.as_str()]);
            assert_eq!(parse_list(&f).unwrap(), [s.clone(), s.clone()], "{f:?}");
        }
    }
}
