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

use multiversion::multiversion;
use multiversion::target::match_target;
use thiserror::Error;
use wide::u8x16;

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
pub(crate) const fn is_space(b: u8) -> bool {
    b == b' ' || (b >= b'\t' && b <= b'\r')
}

pub(crate) const BLOCK: usize = 64;

/// A 64-byte block held as four 16-byte vectors: classifying its bytes is a
/// vector compare per class and a move-mask per vector, giving one bit per
/// byte (bit `i` for byte `i`).
#[derive(Clone, Copy)]
pub(crate) struct Block([u8x16; 4]);

impl Block {
    /// Loads a whole block.
    #[inline(always)]
    pub(crate) fn new(bytes: &[u8; BLOCK]) -> Block {
        let lane = |k: usize| {
            let mut a = [0u8; 16];
            a.copy_from_slice(&bytes[16 * k..16 * k + 16]);
            u8x16::from(a)
        };
        Block([lane(0), lane(1), lane(2), lane(3)])
    }

    /// Loads up to 64 bytes, padding with NUL (special to nothing here).
    #[inline]
    pub(crate) fn padded(bytes: &[u8]) -> Block {
        let mut block = [0u8; BLOCK];
        let n = bytes.len().min(BLOCK);
        block[..n].copy_from_slice(&bytes[..n]);
        Block::new(&block)
    }

    /// Applies a per-vector classifier (all-ones lanes where it holds) and
    /// gathers the result into a bit mask.
    #[inline(always)]
    fn mask(&self, f: impl Fn(u8x16) -> u8x16) -> u64 {
        let bits = |k: usize| u64::from(f(self.0[k]).move_mask() as u16);
        bits(0) | bits(1) << 16 | bits(2) << 32 | bits(3) << 48
    }

    /// Bit `i` set where byte `i` is `c`.
    #[inline(always)]
    pub(crate) fn eq(&self, c: u8) -> u64 {
        let s = u8x16::splat(c);
        self.mask(|v| v.cmp_eq(s))
    }

    /// Bit `i` set where byte `i` is one of `cs`.
    #[inline(always)]
    fn any_of<const N: usize>(&self, cs: [u8; N]) -> u64 {
        self.mask(|v| {
            let mut m = u8x16::splat(0);
            for c in cs {
                m |= v.cmp_eq(u8x16::splat(c));
            }
            m
        })
    }

    /// Bit `i` set where byte `i` is list whitespace.
    #[inline(always)]
    fn space(&self) -> u64 {
        self.mask(space_lanes)
    }

    /// Bit `i` set where byte `i` is whitespace or one of `cs`.
    #[inline(always)]
    fn space_or<const N: usize>(&self, cs: [u8; N]) -> u64 {
        self.mask(|v| {
            let mut m = space_lanes(v);
            for c in cs {
                m |= v.cmp_eq(u8x16::splat(c));
            }
            m
        })
    }
}

/// All-ones lanes where the byte is list whitespace: `\t`..=`\r` (a range,
/// tested as `b - 9 <= 4` unsigned) or space.
#[inline(always)]
fn space_lanes(v: u8x16) -> u8x16 {
    let x = v - u8x16::splat(9);
    x.min(u8x16::splat(4)).cmp_eq(x) | v.cmp_eq(u8x16::splat(b' '))
}

/// Bit `i` set where `block[i]` makes `list` prefer braces: whitespace,
/// `;`, `$`, `[`, `\`.
#[inline(always)]
fn prefer_brace_mask(block: &Block) -> u64 {
    block.space_or([b';', b'$', b'[', b'\\'])
}

/// Bit `i` set where `block[i]` is `]` or `"`.
#[inline(always)]
fn prefer_escape_mask(block: &Block) -> u64 {
    block.any_of([b']', b'"'])
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
    type Item = (usize, Block, usize);

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.bytes.get(self.pos..)?;
        let at = self.pos;
        if let Some(whole) = rest.first_chunk::<BLOCK>() {
            self.pos += BLOCK;
            return Some((at, Block::new(whole), BLOCK));
        }
        if rest.is_empty() {
            return None;
        }
        self.pos += rest.len();
        Some((at, Block::padded(rest), rest.len()))
    }
}

/// The closes of a block that may set a new minimum of the nesting depth:
/// every `}` except those whose previous brace in the block is a `{` (such a
/// close only returns to a depth already reached before its open).
#[inline(always)]
pub(crate) fn hard_closes(o: u64, c: u64) -> u64 {
    let m = o | c;
    // Adding `o << 1` to the non-brace bits carries each open's mark over
    // the non-braces after it onto the next brace.
    let after_open = (!m).wrapping_add(o << 1) & m;
    c & !after_open
}

/// Mask of the bits below bit `i` (`i < 64`).
#[inline(always)]
pub(crate) fn below(i: u32) -> u64 {
    (1u64 << i) - 1
}

/// Resolves backslash escapes across blocks: a byte is *escaped* when it
/// follows an unescaped backslash (i.e. an odd-length run of backslashes).
#[derive(Default)]
pub(crate) struct EscapeTracker {
    /// 1 when the first byte of the next block is escaped.
    pub(crate) carry: u64,
}

impl EscapeTracker {
    /// Returns the mask of escaped positions in a block whose backslash
    /// mask is `bs`.
    #[inline(always)]
    pub(crate) fn next(&mut self, bs: u64) -> u64 {
        const EVEN: u64 = 0x5555_5555_5555_5555;
        let carry = self.carry;
        // The next block's first byte is escaped when this block ends in an
        // odd run of backslashes. A run that starts inside the block starts
        // fresh; one that fills the block keeps the parity it came in with.
        // Computed from the raw mask, so that the chain from block to block
        // is this one select, not the whole computation below.
        let run = (!bs).leading_zeros();
        self.carry = if bs == u64::MAX {
            carry
        } else {
            u64::from(run & 1)
        };
        let bs = bs & !carry;
        let follows_escape = (bs << 1) | carry;
        let odd_starts = bs & !EVEN & !follows_escape;
        let seq_even = odd_starts.wrapping_add(bs);
        let invert = seq_even << 1;
        (EVEN ^ invert) & follows_escape
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

/// All-ones lanes where the byte may mean something to a list: at most
/// `]` (every special but the braces is below it, and so are digits and
/// capitals), `{` or `}`. A cheap filter: blocks with none are skipped.
#[inline(always)]
fn maybe_special_lanes(v: u8x16) -> u8x16 {
    v.min(u8x16::splat(b']')).cmp_eq(v)
        | v.cmp_eq(u8x16::splat(b'{'))
        | v.cmp_eq(u8x16::splat(b'}'))
}

impl Block {
    /// Whether the block may hold a byte special to a list (see
    /// [`maybe_special_lanes`]).
    #[inline(always)]
    fn maybe_special(&self) -> bool {
        let m = maybe_special_lanes(self.0[0])
            | maybe_special_lanes(self.0[1])
            | maybe_special_lanes(self.0[2])
            | maybe_special_lanes(self.0[3]);
        m.move_mask() != 0
    }
}

/// Decides the quoting of one element exactly as TclScanElement and
/// TclConvertElement do.
/// Below this many bytes, a per-byte scan is faster than the block scan
/// (comm's instructions, serials and most commands are this short).
const SMALL: usize = 48;

fn scan_element(s: &[u8], first: bool) -> Mode {
    if s.len() < SMALL {
        scan_small(s, first)
    } else {
        scan_blocks(s, first)
    }
}

/// A table of byte classes for the byte-by-byte scanners: each byte of
/// `classes[k].0` gets class `classes[k].1`, every other byte 0.
pub(crate) const fn byte_classes(classes: &[(&[u8], u8)]) -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < classes.len() {
        let (bytes, class) = classes[c];
        let mut k = 0;
        while k < bytes.len() {
            t[bytes[k] as usize] = class;
            k += 1;
        }
        c += 1;
    }
    t
}

/// The bytes [`scan_small`] looks at (non-zero); the rest it skips.
static QUOTE_SPECIAL: [u8; 256] = byte_classes(&[(b"{}[]\"$; \x0c\n\r\t\x0b\\", 1)]);

/// TclScanElement translated byte by byte: for short elements (where it is
/// faster than setting up blocks), and to check the block scanner.
fn scan_small(s: &[u8], first: bool) -> Mode {
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
        // Most bytes mean nothing to quoting: skip them with one load each.
        if QUOTE_SPECIAL[usize::from(s[i])] == 0 {
            i += 1;
            continue;
        }
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
    decide(nest != 0 || req, forbid, pe, pb, hash)
}

/// The masks the quoting scan needs from one block (all zero for a block
/// with no byte special to a list).
#[derive(Default, Clone, Copy)]
struct ScanMasks {
    backslash: u64,
    newline: u64,
    open: u64,
    close: u64,
    /// Only when asked for: see [`prefer_brace_mask`].
    prefer_brace: u64,
    /// Only when asked for: see [`prefer_escape_mask`].
    prefer_escape: u64,
}

/// [`ScanMasks`] from 16-byte vectors, for any CPU.
#[inline(always)]
fn scan_masks_portable(bytes: &[u8; BLOCK], prefer: bool) -> ScanMasks {
    let block = Block::new(bytes);
    if !block.maybe_special() {
        return ScanMasks::default();
    }
    ScanMasks {
        backslash: block.eq(b'\\'),
        newline: block.eq(b'\n'),
        open: block.eq(b'{'),
        close: block.eq(b'}'),
        prefer_brace: if prefer { prefer_brace_mask(&block) } else { 0 },
        prefer_escape: if prefer {
            prefer_escape_mask(&block)
        } else {
            0
        },
    }
}

/// Splits `bytes[from..]` into whole blocks and a NUL-padded last one:
/// (offset, block, number of real bytes).
#[inline(always)]
fn raw_blocks<'a>(
    bytes: &'a [u8],
    from: usize,
    tail: &'a mut [u8; BLOCK],
) -> impl Iterator<Item = (usize, &'a [u8; BLOCK], usize)> {
    let (chunks, rest) = bytes.get(from..).unwrap_or_default().as_chunks::<BLOCK>();
    tail[..rest.len()].copy_from_slice(rest);
    let last = (!rest.is_empty()).then_some((&*tail, rest.len()));
    chunks
        .iter()
        .map(|c| (c, BLOCK))
        .chain(last)
        .enumerate()
        .map(move |(k, (b, n))| (from + k * BLOCK, b, n))
}

/// The quoting scan over blocks, on the widest vectors the CPU has.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+popcnt+bmi1+bmi2+lzcnt",
    "x86_64+avx2+popcnt+bmi1+bmi2+lzcnt",
    "x86_64+popcnt"
))]
fn scan_blocks(s: &[u8], first: bool) -> Mode {
    match_target! {
        "x86_64+avx512f+avx512bw" => scan_kernel(s, first, |b, prefer| x86::scan_masks(b, prefer)),
        _ => scan_kernel(s, first, scan_masks_portable),
    }
}

/// [`scan_blocks`] on 16-byte vectors whatever the CPU (to test both).
#[cfg(test)]
fn scan_blocks_portable(s: &[u8], first: bool) -> Mode {
    scan_kernel(s, first, scan_masks_portable)
}

/// TclScanElement over 64-byte blocks, with `classify` giving each block's
/// masks (asked for the preference masks only while they can still matter).
#[inline(always)]
fn scan_kernel(s: &[u8], first: bool, classify: impl Fn(&[u8; BLOCK], bool) -> ScanMasks) -> Mode {
    let Some(&lead) = s.first() else {
        return Mode::Brace;
    };
    let hash = first && lead == b'#';
    let mut forbid_none = false;
    let mut prefer_brace = hash;
    let mut prefer_escape = false;
    if lead == b'{' || lead == b'"' {
        forbid_none = true;
        prefer_brace = true;
    }
    let mut nesting: i64 = 0;
    let mut esc = EscapeTracker::default();
    let mut tail = [0u8; BLOCK];

    for (_, block, n) in raw_blocks(s, 0, &mut tail) {
        let m = classify(block, !prefer_brace);
        if !prefer_brace {
            if m.prefer_brace != 0 {
                prefer_brace = true;
                forbid_none = true;
            }
            if m.prefer_escape != 0 {
                prefer_escape = true;
                forbid_none = true;
            }
        }
        if m.backslash | m.open | m.close | esc.carry == 0 {
            continue;
        }
        let escaped = esc.next(m.backslash);
        // A backslash-newline cannot survive brace quoting, and neither can
        // an odd backslash at the very end.
        if escaped & m.newline != 0 || (n < BLOCK && (escaped >> n) & 1 == 1) {
            return Mode::Escape;
        }
        let o = m.open & !escaped;
        let c = m.close & !escaped;
        if c == 0 {
            nesting += i64::from(o.count_ones());
            continue;
        }
        let (no, nc) = (i64::from(o.count_ones()), i64::from(c.count_ones()));
        if nc > nesting {
            // The depth may dip below zero here; its new minima can only be
            // at hard closes.
            let mut h = hard_closes(o, c);
            while h != 0 {
                let i = h.trailing_zeros();
                let upto = below(i) | 1 << i;
                let d = nesting + i64::from((o & upto).count_ones())
                    - i64::from((c & upto).count_ones());
                if d < 0 {
                    return Mode::Escape;
                }
                h &= h - 1;
            }
        }
        nesting += no - nc;
    }
    if s.len().is_multiple_of(BLOCK) && esc.carry == 1 {
        // An odd backslash at the very end cannot be brace quoted.
        return Mode::Escape;
    }
    decide(nesting != 0, forbid_none, prefer_escape, prefer_brace, hash)
}

/// Block classification on AVX-512 (64 bytes to a mask in one compare).
/// Only called from code compiled for these features and chosen at run
/// time when the CPU has them.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{
        __m512i, _mm512_cmpeq_epi8_mask, _mm512_cmpge_epu8_mask, _mm512_cmple_epu8_mask,
        _mm512_cmplt_epu8_mask, _mm512_mask_mov_epi8, _mm512_mask_permutexvar_epi8,
        _mm512_maskz_compress_epi8, _mm512_permutexvar_epi8, _mm512_set1_epi8, _mm512_sub_epi8,
        _pdep_u64,
    };

    use super::{BLOCK, ScanMasks};

    #[target_feature(enable = "avx512f,avx512bw")]
    #[inline]
    fn load(bytes: &[u8; BLOCK]) -> __m512i {
        bytemuck::cast(*bytes)
    }

    #[target_feature(enable = "avx512f,avx512bw")]
    #[inline]
    fn splat(c: u8) -> __m512i {
        _mm512_set1_epi8(c as i8)
    }

    #[target_feature(enable = "avx512f,avx512bw")]
    #[inline]
    fn eq(v: __m512i, c: u8) -> u64 {
        _mm512_cmpeq_epi8_mask(v, splat(c))
    }

    /// [`ScanMasks`](super::ScanMasks) of a block.
    #[target_feature(enable = "avx512f,avx512bw")]
    #[inline]
    pub(super) fn scan_masks(bytes: &[u8; BLOCK], prefer: bool) -> ScanMasks {
        let v = load(bytes);
        // Every special but the braces is at most `]` (as in
        // `maybe_special_lanes`).
        let special = _mm512_cmple_epu8_mask(v, splat(b']')) | eq(v, b'{') | eq(v, b'}');
        if special == 0 {
            return ScanMasks::default();
        }
        let backslash = eq(v, b'\\');
        let (prefer_brace, prefer_escape) = if prefer {
            // Whitespace: `\t`..=`\r` (as `b - 9 <= 4` unsigned) or space.
            let space =
                _mm512_cmple_epu8_mask(_mm512_sub_epi8(v, splat(9)), splat(4)) | eq(v, b' ');
            (
                space | eq(v, b';') | eq(v, b'$') | eq(v, b'[') | backslash,
                eq(v, b']') | eq(v, b'"'),
            )
        } else {
            (0, 0)
        };
        ScanMasks {
            backslash,
            newline: eq(v, b'\n'),
            open: eq(v, b'{'),
            close: eq(v, b'}'),
            prefer_brace,
            prefer_escape,
        }
    }

    /// For a byte below 64: the letter written after its backslash in
    /// escape mode (`t` for a tab...), else the byte itself (see
    /// [`ESCAPE_AS`](super::ESCAPE_AS)).
    const LETTERS: [u8; 64] = {
        let mut t = [0u8; 64];
        let mut i = 0;
        while i < 64 {
            t[i] = i as u8;
            i += 1;
        }
        t[0x09] = b't';
        t[0x0a] = b'n';
        t[0x0b] = b'v';
        t[0x0c] = b'f';
        t[0x0d] = b'r';
        t
    };

    /// Indices doubling each of the first (or last) 32 bytes of a vector.
    const DOUBLE: [[u8; 64]; 2] = {
        let mut t = [[0u8; 64]; 2];
        let mut i = 0;
        while i < 64 {
            t[0][i] = (i / 2) as u8;
            t[1][i] = (32 + i / 2) as u8;
            i += 1;
        }
        t
    };

    /// [`escape_block_portable`](super::escape_block_portable) on
    /// AVX-512: each half block is doubled (every byte twice), a backslash
    /// replaces the first copy of each escaped byte and its letter the
    /// second, and a compress keeps the backslashes and second copies.
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vbmi2,bmi2")]
    #[inline]
    pub(super) fn escape_block(bytes: &[u8; BLOCK], mask: u64, dst: &mut [u8; 2 * BLOCK]) -> usize {
        let v = load(bytes);
        let letters = _mm512_mask_permutexvar_epi8(
            v,
            _mm512_cmplt_epu8_mask(v, splat(64)),
            v,
            bytemuck::cast(LETTERS),
        );
        let mut n = 0;
        for (half, double) in DOUBLE.iter().enumerate() {
            let pairs = _mm512_permutexvar_epi8(bytemuck::cast(*double), letters);
            let escaped = _pdep_u64((mask >> (32 * half)) & 0xFFFF_FFFF, 0x5555_5555_5555_5555);
            let pairs = _mm512_mask_mov_epi8(pairs, escaped, splat(b'\\'));
            let keep = escaped | 0xAAAA_AAAA_AAAA_AAAA;
            let packed: [u8; 64] = bytemuck::cast(_mm512_maskz_compress_epi8(keep, pairs));
            // `n` is at most 64 here, so the 64 bytes fit.
            if let Some(d) = dst.get_mut(n..n + 64) {
                d.copy_from_slice(&packed);
            }
            n += keep.count_ones() as usize;
        }
        n
    }

    /// [`SIMPLE_ESCAPES`](super::SIMPLE_ESCAPES) from `@` to DEL, by
    /// the low six bits: what an escaped byte from `@` on stands for (the
    /// bytes below `@` stand for themselves).
    const SIMPLE_HIGH: [u8; 64] = {
        let mut t = [0u8; 64];
        let mut i = 0;
        while i < 64 {
            let e = super::SIMPLE_ESCAPES[64 + i];
            t[i] = if e == super::FULL { 64 + i as u8 } else { e };
            i += 1;
        }
        t
    };

    /// [`collapse_block_portable`](super::collapse_block_portable) on
    /// AVX-512: a permute substitutes the escaped letters and a compress
    /// drops the backslashes before them.
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vbmi2")]
    #[inline]
    pub(super) fn collapse_block(
        bytes: &[u8; BLOCK],
        escaped: u64,
        dropped: u64,
        dst: &mut [u8; BLOCK],
    ) -> usize {
        let v = load(bytes);
        let high = escaped & !_mm512_cmplt_epu8_mask(v, splat(64));
        let mapped = _mm512_mask_permutexvar_epi8(v, high, v, bytemuck::cast(SIMPLE_HIGH));
        *dst = bytemuck::cast(_mm512_maskz_compress_epi8(!dropped, mapped));
        (!dropped).count_ones() as usize
    }

    /// [`RunMasks`](super::RunMasks) of a block.
    #[target_feature(enable = "avx512f,avx512bw")]
    #[inline]
    pub(super) fn run_masks(bytes: &[u8; BLOCK], stops: &[u8]) -> super::RunMasks {
        let v = load(bytes);
        let mut stop = 0;
        for &c in stops {
            stop |= eq(v, c);
        }
        let mut not_simple = 0;
        for c in super::NOT_SIMPLE {
            not_simple |= eq(v, c);
        }
        super::RunMasks {
            backslash: eq(v, b'\\'),
            stop,
            non_ascii: _mm512_cmpge_epu8_mask(v, splat(0x80)),
            not_simple,
        }
    }

    /// Backslashes, opening and closing braces of a block.
    #[target_feature(enable = "avx512f,avx512bw")]
    #[inline]
    pub(super) fn brace_masks(bytes: &[u8; BLOCK]) -> (u64, u64, u64) {
        let v = load(bytes);
        (eq(v, b'\\'), eq(v, b'{'), eq(v, b'}'))
    }
}

/// TclScanElement's conclusion: braces are impossible (`escape`), or some
/// quoting is needed (`forbid_none`, with a preference for backslashes when
/// only `]` or `"` asked for it), or a leading `#` needs braces, or none.
fn decide(
    escape: bool,
    forbid_none: bool,
    prefer_escape: bool,
    prefer_brace: bool,
    hash: bool,
) -> Mode {
    if escape {
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

/// For each byte, the character written after a backslash in escape modes
/// (`n` for a newline, the byte itself for `{`, ...), or 0 when it is
/// written as is. A table, not a `match`: a jump per special character
/// mispredicts on mixed text.
const ESCAPE_AS: [u8; 256] = {
    let mut t = [0u8; 256];
    let same = *b"][$; \\\"{}";
    let mut i = 0;
    while i < same.len() {
        t[same[i] as usize] = same[i];
        i += 1;
    }
    t[0x0c] = b'f';
    t[b'\n' as usize] = b'n';
    t[b'\r' as usize] = b'r';
    t[b'\t' as usize] = b't';
    t[0x0b] = b'v';
    t
};

/// Bit `i` set where `block[i]` needs a backslash in escape mode.
#[inline(always)]
fn escape_mask(block: &Block, braces: bool) -> u64 {
    if braces {
        block.space_or([b';', b'$', b'[', b']', b'"', b'\\', b'{', b'}'])
    } else {
        block.space_or([b';', b'$', b'[', b']', b'"', b'\\'])
    }
}

/// [`ESCAPE_AS`] for the mode that leaves braces alone.
const ESCAPE_AS_NO_BRACES: [u8; 256] = {
    let mut t = ESCAPE_AS;
    t[b'{' as usize] = 0;
    t[b'}' as usize] = 0;
    t
};

/// Output gathered before it is checked and appended to the `String` (see
/// [`write_escaped`]): small enough to stay in cache.
const ESCAPED_PIECE: usize = 64 * 1024;

/// From this size on, [`escape_kernel`] reserves room for the most its
/// output can take rather than counting the escapes first.
const RESERVE_MOST: usize = 1 << 20;

/// Appends `s` backslash-quoted (braces too when `braces`) to `out`, on
/// the widest vectors the CPU has.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vbmi+avx512vbmi2+popcnt+bmi1+bmi2+lzcnt",
    "x86_64+avx2+popcnt+bmi1+bmi2+lzcnt",
    "x86_64+popcnt"
))]
fn write_escaped(s: &str, braces: bool, out: &mut String) {
    match_target! {
        "x86_64+avx512f+avx512bw+avx512vbmi+avx512vbmi2+bmi2" => escape_kernel(s, braces, out, |b, m, dst| x86::escape_block(b, m, dst)),
        _ => escape_kernel(s, braces, out, escape_block_portable),
    }
}

/// [`write_escaped`] byte by byte whatever the CPU (to test both).
#[cfg(test)]
fn write_escaped_portable(s: &str, braces: bool, out: &mut String) {
    escape_kernel(s, braces, out, escape_block_portable);
}

/// Escapes a whole block whose escape mask is `mask` (see [`escape_mask`])
/// into `dst`; returns the bytes written. Without a branch per byte (mixed
/// text would mispredict): the byte or a backslash, then its escape letter,
/// which the next byte overwrites when there was no escape.
#[inline(always)]
fn escape_block_portable(bytes: &[u8; BLOCK], mask: u64, dst: &mut [u8; 2 * BLOCK]) -> usize {
    let mut j = 0;
    for (k, &b) in bytes.iter().enumerate() {
        let e = if (mask >> k) & 1 != 0 {
            ESCAPE_AS[usize::from(b)]
        } else {
            0
        };
        // `j` stays below 128 (two bytes out per byte in, 64 in); the mask
        // only lets the compiler drop the bounds checks.
        dst[j & 127] = if e == 0 { b } else { b'\\' };
        dst[(j + 1) & 127] = e;
        j += 1 + usize::from(e != 0);
    }
    j
}

/// [`write_escaped`] with `block` escaping each whole 64-byte block that
/// needs it.
#[inline(always)]
fn escape_kernel(
    s: &str,
    braces: bool,
    out: &mut String,
    block_fn: impl Fn(&[u8; BLOCK], u64, &mut [u8; 2 * BLOCK]) -> usize,
) {
    let bytes = s.as_bytes();
    let table = if braces {
        &ESCAPE_AS
    } else {
        &ESCAPE_AS_NO_BRACES
    };
    // The exact size (a count of the escapes, a popcount per block): a
    // guess that falls short copies everything already written. A big
    // element gets the most it can take instead (two bytes out per byte
    // in), without the counting pass: the pages it does not use are never
    // touched, so they cost address space, not memory.
    if bytes.len() >= RESERVE_MOST {
        out.reserve(2 * bytes.len());
    } else {
        let escapes: usize = Blocks::new(bytes, 0)
            .map(|(_, block, _)| escape_mask(&block, braces).count_ones() as usize)
            .sum();
        out.reserve(bytes.len() + escapes);
    }
    // Bytes, not a String, so that each byte is a store without a UTF-8
    // length check; appended to `out` in pieces that end on a character
    // boundary (each piece is checked once: only ASCII bytes are added or
    // changed, so it is valid UTF-8 whenever the input is). Written in
    // place (`p` bytes so far), not appended block by block: a copy call
    // per block cost as much as the escaping.
    const ROOM: usize = 2 * BLOCK + 2;
    let mut buf = vec![0u8; ESCAPED_PIECE + ROOM];
    let mut p = 0;
    for (at, block, n) in Blocks::new(bytes, 0) {
        let real = bytes.get(at..at + n).unwrap_or_default();
        if buf.len() < p + ROOM {
            // Only when block ends keep splitting characters.
            buf.resize(p + ROOM, 0);
        }
        let Some(dst) = buf.get_mut(p..p + ROOM) else {
            break;
        };
        let mask = escape_mask(&block, braces);
        if mask == 0 {
            if let Some(d) = dst.get_mut(..n) {
                d.copy_from_slice(real);
            }
            p += n;
        } else if let (Some(whole), Some(d)) = (
            <&[u8; BLOCK]>::try_from(real).ok(),
            dst.first_chunk_mut::<{ 2 * BLOCK }>(),
        ) {
            p += block_fn(whole, mask, d);
        } else {
            // Without a branch per byte (mixed text would mispredict): the
            // byte or a backslash, then its escape letter, which the next
            // byte overwrites when there was no escape. `j` stays below 128
            // (two bytes out per byte in, 64 in); the mask only lets the
            // compiler drop the bounds checks.
            let Ok(dst) = <&mut [u8; ROOM]>::try_from(dst) else {
                break;
            };
            let mut j = 0;
            for &b in real {
                let e = table[usize::from(b)];
                dst[j & 127] = if e == 0 { b } else { b'\\' };
                dst[(j & 127) + 1] = e;
                j += 1 + usize::from(e != 0);
            }
            p += j;
        }
        if p >= ESCAPED_PIECE && s.is_char_boundary(at + n) {
            push_checked(buf.get(..p).unwrap_or_default(), out);
            p = 0;
        }
    }
    push_checked(buf.get(..p).unwrap_or_default(), out);
}

/// Appends `piece` (valid UTF-8 by construction) to `out`.
fn push_checked(piece: &[u8], out: &mut String) {
    match simdutf8::basic::from_utf8(piece) {
        Ok(text) => out.push_str(text),
        // Not reached (the input was a `str`); lossy rather than a panic.
        Err(_) => out.push_str(&String::from_utf8_lossy(piece)),
    }
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
    if bytes.len().saturating_sub(from) < SMALL {
        find_close_brace_small(bytes, from)
    } else {
        find_close_brace_blocks(bytes, from)
    }
}

/// [`find_close_brace`] byte by byte.
fn find_close_brace_small(bytes: &[u8], from: usize) -> Option<usize> {
    let mut level = 1u32;
    let mut i = from;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\\' => i += 1,
            b'{' => level += 1,
            b'}' => {
                level -= 1;
                if level == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Backslashes, opening and closing braces of a block, on 16-byte vectors.
#[inline(always)]
fn brace_masks_portable(bytes: &[u8; BLOCK]) -> (u64, u64, u64) {
    let block = Block::new(bytes);
    (block.eq(b'\\'), block.eq(b'{'), block.eq(b'}'))
}

#[multiversion(targets(
    "x86_64+avx512f+avx512bw+popcnt+bmi1+bmi2+lzcnt",
    "x86_64+avx2+popcnt+bmi1+bmi2+lzcnt",
    "x86_64+popcnt"
))]
fn find_close_brace_blocks(bytes: &[u8], from: usize) -> Option<usize> {
    match_target! {
        "x86_64+avx512f+avx512bw" => close_brace_kernel(bytes, from, |b| x86::brace_masks(b)),
        _ => close_brace_kernel(bytes, from, brace_masks_portable),
    }
}

/// [`find_close_brace_blocks`] on 16-byte vectors whatever the CPU.
#[cfg(test)]
fn find_close_brace_portable(bytes: &[u8], from: usize) -> Option<usize> {
    close_brace_kernel(bytes, from, brace_masks_portable)
}

#[inline(always)]
fn close_brace_kernel(
    bytes: &[u8],
    from: usize,
    classify: impl Fn(&[u8; BLOCK]) -> (u64, u64, u64),
) -> Option<usize> {
    let mut level: i64 = 1;
    let mut esc = EscapeTracker::default();
    let mut tail = [0u8; BLOCK];
    for (at, block, _) in raw_blocks(bytes, from, &mut tail) {
        let (bs, open, close) = classify(block);
        let escaped = esc.next(bs);
        let c = close & !escaped;
        let o = open & !escaped;
        let (no, nc) = (i64::from(o.count_ones()), i64::from(c.count_ones()));
        if nc >= level {
            // The level can only first reach zero at a hard close.
            let mut h = hard_closes(o, c);
            while h != 0 {
                let i = h.trailing_zeros();
                let upto = below(i) | 1 << i;
                if level + i64::from((o & upto).count_ones()) == i64::from((c & upto).count_ones())
                {
                    return Some(at + i as usize);
                }
                h &= h - 1;
            }
        }
        level += no - nc;
    }
    None
}

/// Finds the first unescaped `"` at or after `from`, and whether the text
/// before it holds a backslash.
fn find_close_quote(bytes: &[u8], from: usize) -> Option<(usize, bool)> {
    if bytes.len().saturating_sub(from) < SMALL {
        find_close_quote_small(bytes, from)
    } else {
        find_close_quote_blocks(bytes, from)
    }
}

/// [`find_close_quote`] byte by byte.
fn find_close_quote_small(bytes: &[u8], from: usize) -> Option<(usize, bool)> {
    let mut any_bs = false;
    let mut i = from;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\\' => {
                any_bs = true;
                i += 1;
            }
            b'"' => return Some((i, any_bs)),
            _ => {}
        }
        i += 1;
    }
    None
}

#[multiversion(targets("x86_64+avx2+popcnt+bmi1+bmi2+lzcnt", "x86_64+popcnt"))]
fn find_close_quote_blocks(bytes: &[u8], from: usize) -> Option<(usize, bool)> {
    let mut esc = EscapeTracker::default();
    let mut any_bs = false;
    for (at, block, _) in Blocks::new(bytes, from) {
        let bs = block.eq(b'\\');
        let escaped = esc.next(bs);
        let q = block.eq(b'"') & !escaped;
        if q != 0 {
            let i = q.trailing_zeros();
            return Some((at + i as usize, any_bs || bs & below(i) != 0));
        }
        any_bs |= bs != 0;
    }
    None
}

/// Finds the end of a bare element starting at `from`: the first whitespace
/// not consumed by a backslash sequence. Returns (end, had a backslash).
fn find_bare_end(bytes: &[u8], from: usize) -> (usize, bool) {
    if bytes.len().saturating_sub(from) < SMALL {
        find_bare_end_small(bytes, from)
    } else {
        find_bare_end_blocks(bytes, from)
    }
}

/// [`find_bare_end`] byte by byte.
fn find_bare_end_small(bytes: &[u8], from: usize) -> (usize, bool) {
    let mut any_bs = false;
    let mut i = from;
    while let Some(&b) = bytes.get(i) {
        if b == b'\\' {
            any_bs = true;
            if bytes.get(i + 1) == Some(&b'\n') {
                // A backslash-newline swallows the spaces and tabs after it.
                i += 2;
                while matches!(bytes.get(i), Some(b' ' | b'\t')) {
                    i += 1;
                }
            } else {
                i += 2;
            }
            continue;
        }
        if is_space(b) {
            return (i, any_bs);
        }
        i += 1;
    }
    (bytes.len(), any_bs)
}

#[multiversion(targets("x86_64+avx2+popcnt+bmi1+bmi2+lzcnt", "x86_64+popcnt"))]
fn find_bare_end_blocks(bytes: &[u8], from: usize) -> (usize, bool) {
    let mut esc = EscapeTracker::default();
    let mut any_bs = false;
    // 1 when the next block starts inside the spaces/tabs that follow a
    // backslash-newline (Tcl's backslash sequence swallows them).
    let mut run_carry = 0u64;
    for (at, block, n) in Blocks::new(bytes, from) {
        let space = block.space();
        let bs = block.eq(b'\\');
        if space | bs | esc.carry | run_carry == 0 {
            continue;
        }
        let escaped = esc.next(bs);
        let st = block.any_of([b' ', b'\t']);
        // Spaces/tabs right after an escaped newline, and the runs they start.
        let escaped_nl = escaped & block.eq(b'\n');
        let starts = ((escaped_nl << 1) | run_carry) & st;
        let sum = st.wrapping_add(starts);
        let swallowed = st & !sum;
        // A run reaching the end of the block, or a backslash-newline
        // ending it, goes on in the next one.
        run_carry = u64::from((sum < st && starts != 0) || escaped_nl >> 63 == 1);
        let term = space & !escaped & !swallowed;
        if term != 0 {
            let i = term.trailing_zeros();
            return (at + i as usize, any_bs || bs & below(i) != 0);
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
    if simple_elements(s, |e| out.push(Cow::Borrowed(e))) {
        return Ok(out);
    }
    out.clear();
    for e in ListIter::new(s) {
        out.push(e?);
    }
    Ok(out)
}

/// The longest text [`simple_elements`] looks at: it goes byte by byte,
/// which beats setting up the general parser on short lists only (a big
/// payload goes to the block-wise scanners at once).
pub(crate) const SIMPLE_MAX: usize = 512;

/// What ends [`simple_elements`]'s reading of a bare element and sends
/// the list to the general parser: a backslash, or whitespace other than
/// a space (one table load a byte, not the two compares of [`is_space`]).
static SIMPLE_STOP: [u8; 256] = byte_classes(&[(b"\\\t\n\x0b\x0c\r", 1)]);

/// Calls `each` with the elements of `s` when `s` is a list in its
/// simplest form, as comm's messages nearly always are: up to
/// [`SIMPLE_MAX`] bytes, elements separated by single spaces, with no
/// space before the first or after the last, and no backslash anywhere;
/// each element bare (no whitespace; not starting with a quote or a
/// brace) or braced, with braces that balance inside it (never closing
/// more than they opened), so that its close is where it ends, followed by
/// a space or the end. Every element is then what Tcl takes verbatim.
/// Returns whether `s` was of that form; if not, `each` may have been
/// called for some elements, which the caller drops before parsing `s`
/// with the general parser.
pub(crate) fn simple_elements<'a>(s: &'a str, mut each: impl FnMut(&'a str)) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > SIMPLE_MAX {
        return false;
    }
    let mut i = 0;
    loop {
        let start = i;
        let element = match b[i] {
            b'"' | b' ' => return false,
            b'{' => {
                let mut depth = 1usize;
                i += 1;
                loop {
                    let Some(&c) = b.get(i) else { return false };
                    i += 1;
                    match c {
                        b'{' => depth += 1,
                        b'}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        b'\\' => return false,
                        _ => {}
                    }
                }
                // Between the braces (both ASCII: char boundaries).
                s.get(start + 1..i - 1)
            }
            _ => {
                while let Some(&c) = b.get(i) {
                    if c == b' ' {
                        break;
                    }
                    if SIMPLE_STOP[usize::from(c)] != 0 {
                        return false;
                    }
                    i += 1;
                }
                s.get(start..i)
            }
        };
        let Some(element) = element else { return false };
        each(element);
        match b.get(i) {
            None => return true,
            Some(b' ') if i + 1 < b.len() => i += 1,
            _ => return false,
        }
    }
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

/// For a list of exactly three elements whose first two are literal and
/// whose third is `{{fragment}}` (a braced one-element list of a braced
/// element: a request carrying one script fragment, as comm senders write
/// it): the first two elements and where `fragment` starts and ends in
/// `s`. Found in one scan of the fragment: the close of the inner brace,
/// followed at once by the outer one, is where both groups end. `None`
/// when the list is not of that shape (or not a list).
pub(crate) fn one_braced_fragment(s: &str) -> Option<(&str, &str, usize, usize)> {
    let mut items = ListIter::new(s);
    let Some(Ok(Cow::Borrowed(first))) = items.next() else {
        return None;
    };
    let Some(Ok(Cow::Borrowed(second))) = items.next() else {
        return None;
    };
    let bytes = s.as_bytes();
    let open = items.pos;
    if bytes.get(open..open + 2) != Some(b"{{") {
        return None;
    }
    let inner = find_close_brace(bytes, open + 2)?;
    if bytes.get(inner + 1) != Some(&b'}') {
        return None;
    }
    // Nothing but whitespace after the outer close: no junk, no fourth
    // element.
    if !bytes.get(inner + 2..)?.iter().all(|&b| is_space(b)) {
        return None;
    }
    Some((first, second, open + 2, inner))
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

/// For the ASCII byte after a backslash: the byte the pair stands for, or
/// [`FULL`] when the sequence needs [`backslash`] (hex, octal, or a
/// backslash-newline, which also swallows the blanks after it).
const SIMPLE_ESCAPES: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut i = 0;
    while i < 128 {
        t[i] = i as u8;
        i += 1;
    }
    t[b'a' as usize] = 0x07;
    t[b'b' as usize] = 0x08;
    t[b'f' as usize] = 0x0C;
    t[b'n' as usize] = 0x0A;
    t[b'r' as usize] = 0x0D;
    t[b't' as usize] = 0x09;
    t[b'v' as usize] = 0x0B;
    t[b'x' as usize] = FULL;
    t[b'u' as usize] = FULL;
    t[b'U' as usize] = FULL;
    t[b'\n' as usize] = FULL;
    let mut d = b'0';
    while d <= b'7' {
        t[d as usize] = FULL;
        d += 1;
    }
    t
};

/// Marks a sequence [`SIMPLE_ESCAPES`] leaves to [`backslash`].
const FULL: u8 = 0xFF;

/// The end of the run of `bytes` from `from` that holds nothing but
/// bytes other than `stops` (ASCII) and backslash, and simple backslash
/// pairs: a backslash and an ASCII byte standing for one byte (not the
/// start of a hex, octal or Unicode escape, nor a backslash-newline).
/// A script parser substitutes such a run with [`collapse`] in one go
/// instead of byte by byte. The run never ends inside a pair; `from` must
/// not be inside one. Scanned a 64-byte block at a time.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+popcnt+bmi1+bmi2+lzcnt",
    "x86_64+avx2+popcnt+bmi1+bmi2+lzcnt",
    "x86_64+popcnt"
))]
pub fn simple_run_end(bytes: &[u8], from: usize, stops: &[u8]) -> usize {
    match_target! {
        "x86_64+avx512f+avx512bw" => run_end_kernel(bytes, from, stops, |b, s| x86::run_masks(b, s)),
        _ => run_end_kernel(bytes, from, stops, run_masks_portable),
    }
}

/// [`simple_run_end`] on 16-byte vectors whatever the CPU (to test both).
#[cfg(test)]
fn simple_run_end_portable(bytes: &[u8], from: usize, stops: &[u8]) -> usize {
    run_end_kernel(bytes, from, stops, run_masks_portable)
}

/// What [`simple_run_end`] looks at in a block: backslashes, `stops`,
/// bytes beyond ASCII, and the bytes after a backslash that start a
/// sequence [`SIMPLE_ESCAPES`] leaves to [`backslash`].
#[derive(Clone, Copy)]
struct RunMasks {
    backslash: u64,
    stop: u64,
    non_ascii: u64,
    not_simple: u64,
}

/// The sequences after a backslash that [`SIMPLE_ESCAPES`] does not map.
const NOT_SIMPLE: [u8; 12] = [
    b'x', b'u', b'U', b'\n', b'0', b'1', b'2', b'3', b'4', b'5', b'6', b'7',
];

/// [`RunMasks`] of a block on 16-byte vectors.
#[inline(always)]
fn run_masks_portable(bytes: &[u8; BLOCK], stops: &[u8]) -> RunMasks {
    let block = Block::new(bytes);
    let mut stop = 0;
    for &c in stops {
        stop |= block.eq(c);
    }
    RunMasks {
        backslash: block.eq(b'\\'),
        stop,
        non_ascii: block.mask(|x| x),
        not_simple: block.any_of(NOT_SIMPLE),
    }
}

/// [`simple_run_end`] with `classify` giving each block's masks.
#[inline(always)]
fn run_end_kernel(
    bytes: &[u8],
    from: usize,
    stops: &[u8],
    classify: impl Fn(&[u8; BLOCK], &[u8]) -> RunMasks,
) -> usize {
    let mut esc = EscapeTracker::default();
    let mut tail = [0u8; BLOCK];
    for (at, block, n) in raw_blocks(bytes, from, &mut tail) {
        let m = classify(block, stops);
        let escaped = esc.next(m.backslash);
        let past = if n < BLOCK { !below(n as u32) } else { 0 };
        // A plain byte that ends the run, or the padding after the input.
        let plain_end = (m.stop & !escaped & !m.backslash) | past;
        // An escaped byte that is not simple: the run ends at its backslash
        // (the block before's last byte when it is the first). Escaped
        // padding: a backslash at the very end, which stands for itself.
        let hard = escaped & (m.non_ascii | m.not_simple | past);
        let at_plain = at + plain_end.trailing_zeros() as usize;
        let at_hard = (at + hard.trailing_zeros() as usize).saturating_sub(1);
        match (plain_end != 0, hard != 0) {
            (false, false) => {}
            (true, false) => return at_plain,
            (false, true) => return at_hard,
            (true, true) => return at_plain.min(at_hard),
        }
    }
    // The input ends on a whole block: a backslash at its very end (escaping
    // nothing) is not part of the run.
    bytes.len() - esc.carry as usize
}

/// Substitutes every backslash sequence in `raw` (TclCopyAndCollapse).
pub fn collapse(raw: &str) -> String {
    let (s, from) = collapse_simple(raw.as_bytes());
    collapse_from(raw, s, from)
}

/// The general loop of [`collapse`]: substitutes from `from` (not inside a
/// backslash sequence) to the end, appending to `s`.
fn collapse_from(raw: &str, s: String, from: usize) -> String {
    let bytes = raw.as_bytes();
    let mut i = from;
    let mut out = Sink { s, high: None };
    while let Some(j) = next_backslash(bytes, i) {
        if j - i <= 8 && bytes.get(i..j).is_some_and(<[u8]>::is_ascii) {
            // Short runs between escapes (dense escaping) byte by byte: a
            // copy call per run would cost more.
            for &b in bytes.get(i..j).unwrap_or_default() {
                out.ascii(b);
            }
        } else {
            out.text(raw.get(i..j).unwrap_or_default());
        }
        // The common sequences (a backslash and one ASCII byte standing for
        // one byte) without the general parser; the rest with it.
        match bytes.get(j + 1) {
            Some(&c) if c < 0x80 && SIMPLE_ESCAPES[usize::from(c)] != FULL => {
                out.ascii(SIMPLE_ESCAPES[usize::from(c)]);
                i = j + 2;
            }
            _ => {
                let (value, used) = backslash(raw, j);
                out.code(value);
                i = j + used;
            }
        }
    }
    out.text(raw.get(i..).unwrap_or_default());
    out.finish()
}

/// The leading part of [`collapse`] while every backslash sequence is a
/// backslash and one ASCII byte that [`SIMPLE_ESCAPES`] maps: a block at a
/// time, without a branch per byte (dense escapes would mispredict).
/// Returns the output and where the general loop goes on (never inside a
/// backslash sequence).
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vbmi+avx512vbmi2+popcnt+bmi1+bmi2+lzcnt",
    "x86_64+avx2+popcnt+bmi1+bmi2+lzcnt",
    "x86_64+popcnt"
))]
fn collapse_simple(bytes: &[u8]) -> (String, usize) {
    match_target! {
        "x86_64+avx512f+avx512bw+avx512vbmi+avx512vbmi2" => collapse_kernel(bytes, |b, e, d, dst| x86::collapse_block(b, e, d, dst)),
        _ => collapse_kernel(bytes, collapse_block_portable),
    }
}

/// [`collapse_simple`] byte by byte whatever the CPU (to test both).
#[cfg(test)]
fn collapse_simple_portable(bytes: &[u8]) -> (String, usize) {
    collapse_kernel(bytes, collapse_block_portable)
}

/// Collapses one block whose `escaped` bytes (all ASCII and mapped by
/// [`SIMPLE_ESCAPES`]) are substituted and whose `dropped` bytes (the
/// backslashes before them) are left out, into `dst`; returns the bytes
/// written. Without a branch per byte (dense escapes would mispredict).
#[inline(always)]
fn collapse_block_portable(
    real: &[u8; BLOCK],
    escaped: u64,
    dropped: u64,
    dst: &mut [u8; BLOCK],
) -> usize {
    let mut j = 0;
    for (k, &b) in real.iter().enumerate() {
        let e = (escaped >> k) & 1 != 0;
        dst[j & 63] = if e {
            SIMPLE_ESCAPES[usize::from(b & 0x7F)]
        } else {
            b
        };
        j += 1 - ((dropped >> k) & 1) as usize;
    }
    j
}

/// [`collapse_simple`] with `block_fn` collapsing each whole block that has
/// an escape.
#[inline(always)]
fn collapse_kernel(
    bytes: &[u8],
    block_fn: impl Fn(&[u8; BLOCK], u64, u64, &mut [u8; BLOCK]) -> usize,
) -> (String, usize) {
    // Written in place (`p` bytes so far; the output is never longer than
    // what it came from), not appended block by block: a copy call per
    // block would cost as much as the substitution.
    let mut v = vec![0u8; bytes.len() + BLOCK];
    let mut p = 0;
    let mut esc = EscapeTracker::default();
    for (at, block, n) in Blocks::new(bytes, 0) {
        let real = bytes.get(at..at + n).unwrap_or_default();
        let bs = block.eq(b'\\');
        let carry_in = esc.carry;
        let Some(dst) = v.get_mut(p..p + BLOCK) else {
            // Not reached (`p <= at`): the general loop if it were.
            return fall_back(bytes, v, p, at - carry_in as usize);
        };
        if bs | carry_in == 0 {
            if let Some(d) = dst.get_mut(..n) {
                d.copy_from_slice(real);
            }
            p += n;
            continue;
        }
        let escaped = esc.next(bs);
        // Escaped bytes the table cannot take: non-ASCII, the starts of
        // hex, octal and Unicode escapes, a backslash-newline, and (past the
        // real bytes) a backslash at the very end.
        let hard = block.mask(|x| x)
            | block.any_of([
                b'x', b'u', b'U', b'\n', b'0', b'1', b'2', b'3', b'4', b'5', b'6', b'7',
            ])
            | if n < BLOCK { !below(n as u32) } else { 0 };
        if escaped & hard != 0 {
            // The general loop from here; from the backslash before the
            // block when it escapes the block's first byte.
            return fall_back(bytes, v, p, at - carry_in as usize);
        }
        let (Ok(dst), Ok(whole)) = (
            <&mut [u8; BLOCK]>::try_from(dst),
            <&[u8; BLOCK]>::try_from(real),
        ) else {
            // A partial (last) block.
            return fall_back(bytes, v, p, at - carry_in as usize);
        };
        p += block_fn(whole, escaped, bs & !escaped, dst);
    }
    v.truncate(p);
    // A whole last block ending in an unescaped backslash: that backslash
    // (not written) is the general loop's.
    let from = if esc.carry != 0 {
        bytes.len() - 1
    } else {
        bytes.len()
    };
    (utf8_or_lossy(v), from)
}

/// Ends [`collapse_simple`] at `from` (where the first `p` bytes of `v`
/// end), or at the start of the character `from` splits (its first bytes,
/// copied as they were, are taken back).
fn fall_back(bytes: &[u8], mut v: Vec<u8>, mut p: usize, mut from: usize) -> (String, usize) {
    while from > 0 && p > 0 && bytes.get(from).is_some_and(|&b| b & 0xC0 == 0x80) {
        from -= 1;
        p -= 1;
    }
    v.truncate(p);
    (utf8_or_lossy(v), from)
}

/// `v` as a `String` (it is valid UTF-8 by construction: only ASCII bytes
/// were dropped or changed in valid input); lossy rather than a panic.
fn utf8_or_lossy(v: Vec<u8>) -> String {
    String::from_utf8(v).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The first backslash at or after `from`: a short look first (escapes
/// often come close together), then `memchr`.
#[inline]
fn next_backslash(bytes: &[u8], from: usize) -> Option<usize> {
    let rest = bytes.get(from..)?;
    let near = rest.len().min(16);
    if let Some(k) = rest.get(..near)?.iter().position(|&b| b == b'\\') {
        return Some(from + k);
    }
    memchr::memchr(b'\\', rest.get(near..)?).map(|k| from + near + k)
}

/// Collects substituted text, pairing surrogate halves from escapes as Tcl's
/// UTF-8 output does.
struct Sink {
    s: String,
    high: Option<u32>,
}

impl Sink {
    #[inline]
    fn flush(&mut self) {
        if self.high.take().is_some() {
            self.s.push('\u{FFFD}');
        }
    }

    #[inline]
    fn ascii(&mut self, b: u8) {
        self.flush();
        self.s.push(char::from(b));
    }

    #[inline]
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
    use crate::test_rng::{Cases, Draws};

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

    /// A backslash-newline at the end of a 64-byte block swallows the
    /// spaces and tabs at the start of the next one.
    #[test]
    fn backslash_newline_across_blocks() {
        for pad in 0..140 {
            let s = format!("{}\\\n  \t x", "b".repeat(pad));
            assert_eq!(parse_list(&s).unwrap().len(), 1, "pad {pad}");
            assert_eq!(list_length(&s).unwrap(), 1, "pad {pad}");
        }
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

    /// [`simple_run_end`] byte by byte.
    fn simple_run_end_bytewise(b: &[u8], from: usize, stops: &[u8]) -> usize {
        let mut i = from;
        loop {
            match b.get(i) {
                Some(b'\\') => match b.get(i + 1) {
                    Some(&c) if c < 0x80 && SIMPLE_ESCAPES[usize::from(c)] != FULL => i += 2,
                    _ => return i,
                },
                Some(&c) if c != b'\\' && !stops.contains(&c) => i += 1,
                _ => return i,
            }
        }
    }

    #[test]
    fn simple_run_end_matches_byte_by_byte() {
        let alphabet = [
            "a", "\\", "\\", "\\", "{", " ", "\n", ";", "$", "]", "é", "x", "0", "n",
        ];
        let mut cases = Cases::new(0x5133_e1e5_0123_4567);
        for _ in 0..50_000 {
            let seed = cases.next_seed();
            let len = (seed % 300) as usize;
            let mut draws = Draws::new(seed);
            // Sparse stops, so that runs cross blocks.
            let text: String = (0..len)
                .map(|_| {
                    if draws.below(8) == 0 {
                        draws.pick(&alphabet)
                    } else {
                        let k = 2 + draws.below(2);
                        draws.pick(&["a", "\\", "b", "\\n"][..k])
                    }
                })
                .collect();
            let b = text.as_bytes();
            for stops in [&b" \n;$[]"[..], &b"\"$["[..], &b""[..]] {
                // From the start, and from just after where the first run
                // ends on a plain ASCII byte (never inside a pair).
                let first = simple_run_end_bytewise(b, 0, stops);
                let mut starts = vec![0];
                if b.get(first)
                    .is_some_and(|&c| c != b'\\' && text.is_char_boundary(first + 1))
                {
                    starts.push(first + 1);
                }
                for from in starts {
                    let want = simple_run_end_bytewise(b, from, stops);
                    let why = format!("{text:?} from {from} stops {stops:?}");
                    assert_eq!(simple_run_end(b, from, stops), want, "{why}");
                    assert_eq!(simple_run_end_portable(b, from, stops), want, "{why}");
                }
            }
        }
    }

    #[test]
    fn block_collapse_matches_byte_by_byte() {
        // Mostly simple escapes (so that whole blocks take the vector path
        // where the CPU has it), a few that are not, and lengths across
        // several 64-byte blocks.
        let alphabet = [
            "a", "\\", "\\", "\\", "{", "}", "n", "t", "v", " ", "$", "\"", "é", "x", "0",
        ];
        let mut cases = Cases::new(0x00c0_11a9_5e5e_ed01);
        for _ in 0..20_000 {
            let seed = cases.next_seed();
            let len = (seed % 400) as usize;
            let mut draws = Draws::new(seed);
            let text: String = (0..len).map(|_| draws.pick(&alphabet)).collect();
            let want = collapse_from(&text, String::new(), 0);
            assert_eq!(collapse(&text), want, "{text:?}");
            let (s, from) = collapse_simple_portable(text.as_bytes());
            assert_eq!(collapse_from(&text, s, from), want, "{text:?}");
            assert_eq!(
                collapse_simple(text.as_bytes()),
                collapse_simple_portable(text.as_bytes())
            );
        }
    }

    #[test]
    fn simple_lists_read_as_the_general_parser_reads_them() {
        // Mostly the pieces of simple lists (so that many are), and every
        // byte that makes one not simple.
        let alphabet = [
            "a", "b", " ", " ", "{", "{", "}", "}", "\"", "\\", "\n", "\t", "é", "#", "$", "[",
        ];
        let mut cases = Cases::new(0x5151_e1e3_e475_0001);
        let mut simple = 0;
        for _ in 0..50_000 {
            let seed = cases.next_seed();
            let len = (seed % 24) as usize;
            let mut draws = Draws::new(seed);
            let text: String = (0..len).map(|_| draws.pick(&alphabet)).collect();
            let mut got = Vec::new();
            if simple_elements(&text, |e| got.push(e)) {
                simple += 1;
                let want: Vec<Cow<'_, str>> =
                    ListIter::new(&text).collect::<Result<_, _>>().unwrap();
                assert!(
                    want.iter().all(|e| matches!(e, Cow::Borrowed(_))),
                    "{text:?}"
                );
                assert_eq!(got, want, "{text:?}");
            }
        }
        // The test means something only if many lists were simple.
        assert!(simple > 2_000, "{simple}");
        let long = format!("{{{}}}", "a".repeat(SIMPLE_MAX));
        assert!(!simple_elements(&long, |_| {}));
        assert_eq!(parse_list_cow(&long).unwrap().len(), 1);
    }

    #[test]
    fn block_escaping_matches_byte_by_byte() {
        // Dense escapes, every kind of sequence, multi-byte characters, and
        // lengths around the 64-byte blocks (trailing backslashes included).
        let alphabet = [
            "a",
            "\\",
            "\\",
            "{",
            "}",
            "x",
            "u",
            "0",
            "7",
            "n",
            "\n",
            " ",
            "\t",
            "$",
            "[",
            "\"",
            "é",
            "\u{1F600}",
            "\r",
            "U",
            "8",
        ];
        let mut cases = Cases::new(0x0005_eed0_fe5c_a9e5);
        for _ in 0..20_000 {
            let seed = cases.next_seed();
            let len = (seed % 180) as usize;
            let mut draws = Draws::new(seed);
            let text: String = (0..len).map(|_| draws.pick(&alphabet)).collect();
            assert_eq!(
                collapse(&text),
                collapse_from(&text, String::new(), 0),
                "{text:?}"
            );
            for braces in [true, false] {
                let table = if braces {
                    &ESCAPE_AS
                } else {
                    &ESCAPE_AS_NO_BRACES
                };
                let mut want = String::new();
                for c in text.chars() {
                    match u8::try_from(c).map(|b| table[usize::from(b)]) {
                        Ok(e) if e != 0 => {
                            want.push('\\');
                            want.push(char::from(e));
                        }
                        _ => want.push(c),
                    }
                }
                let mut got = String::from("kept ");
                write_escaped(&text, braces, &mut got);
                assert_eq!(got, format!("kept {want}"), "{text:?}");
                // The portable kernel too, whatever this CPU dispatches to.
                let mut got = String::from("kept ");
                write_escaped_portable(&text, braces, &mut got);
                assert_eq!(got, format!("kept {want}"), "{text:?}");
            }
            let listed = format_list([text.as_str(), "b"]);
            assert_eq!(
                parse_list(&listed).ok(),
                Some(vec![text.clone(), "b".into()]),
                "{text:?}"
            );
        }
    }

    #[test]
    fn small_finders_match_block_finders() {
        let alphabet = b"ab{}\\\n \t\"]\x0b\r";
        let mut cases = Cases::new(0x0bad_5eed_1234_5678);
        for _ in 0..50_000 {
            let seed = cases.next_seed();
            let len = (seed % 60) as usize;
            let mut draws = Draws::new(seed);
            let v: Vec<u8> = (0..len).map(|_| draws.pick(alphabet)).collect();
            let from = if len == 0 {
                0
            } else {
                (seed >> 40) as usize % len
            };
            let shown = String::from_utf8_lossy(&v);
            assert_eq!(
                find_close_brace_small(&v, from),
                find_close_brace_blocks(&v, from),
                "{shown:?} {from}"
            );
            assert_eq!(
                find_close_quote_small(&v, from),
                find_close_quote_blocks(&v, from),
                "{shown:?} {from}"
            );
            assert_eq!(
                find_bare_end_small(&v, from),
                find_bare_end_blocks(&v, from),
                "{shown:?} {from}"
            );
            assert_eq!(scan_small(&v, true), scan_blocks(&v, true), "{shown:?}");
            assert_eq!(scan_small(&v, false), scan_blocks(&v, false), "{shown:?}");
            // The portable kernels too, whatever this CPU dispatches to.
            assert_eq!(
                find_close_brace_small(&v, from),
                find_close_brace_portable(&v, from),
                "{shown:?} {from}"
            );
            assert_eq!(
                scan_small(&v, true),
                scan_blocks_portable(&v, true),
                "{shown:?}"
            );
        }
    }

    #[test]
    fn block_scanner_matches_reference() {
        let alphabet = b"ab{}\\\n \t\"]#x";
        let mut cases = Cases::new(0x1234_5678_9abc_def0);
        for _ in 0..20_000 {
            let seed = cases.next_seed();
            let len = (seed % 200) as usize;
            let mut v = Vec::with_capacity(len);
            let mut draws = Draws::new(seed);
            for _ in 0..len {
                // Bias towards plain letters so braces stay balanced sometimes.
                let k = draws.below(alphabet.len() * 2);
                v.push(if k < alphabet.len() {
                    alphabet[k]
                } else {
                    b'a'
                });
            }
            assert_eq!(
                scan_blocks(&v, true),
                scan_small(&v, true),
                "{:?}",
                String::from_utf8_lossy(&v)
            );
            assert_eq!(
                scan_blocks_portable(&v, false),
                scan_small(&v, false),
                "{:?}",
                String::from_utf8_lossy(&v)
            );
            let from = (seed >> 48) as usize % (len + 1);
            assert_eq!(
                find_close_brace_portable(&v, from),
                find_close_brace_small(&v, from),
                "{:?} {from}",
                String::from_utf8_lossy(&v)
            );
            assert_eq!(
                find_close_brace_blocks(&v, from),
                find_close_brace_small(&v, from),
                "{:?} {from}",
                String::from_utf8_lossy(&v)
            );
            let s = String::from_utf8(v).unwrap();
            let f = format_list([s.as_str(), s.as_str()]);
            assert_eq!(parse_list(&f).unwrap(), [s.clone(), s.clone()], "{f:?}");
        }
    }
}
