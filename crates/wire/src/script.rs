//! Tcl script helpers that comm relies on: `concat` (how fragments become one
//! script) and `info complete` (whether a received word is a whole script).
//!
//! Both follow Tcl 8.6.13 byte for byte (checked against `tclsh`): `concat`
//! is Tcl_ConcatObj's string path, `info complete` is Tcl_CommandComplete,
//! which runs the real script parser (Tcl_ParseCommand) and asks whether it
//! stopped because the script ended too early.

/// The whitespace `concat` trims (Tcl's `CONCAT_WS`): ASCII only.
const fn is_concat_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\x0c' | b'\x0b' | b'\r' | b'\t' | b'\n')
}

/// Joins fragments as Tcl's `concat` does: each is trimmed of leading and
/// trailing whitespace, empty ones are dropped, and the rest are joined with
/// single spaces.
///
/// One subtlety from Tcl: trimming never exposes a final backslash, so
/// `"a\\  "` contributes `"a\\ "` (the first whitespace character after the
/// backslash is kept).
pub fn concat<I, S>(fragments: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out = String::new();
    for f in fragments {
        let part = concat_one(f.as_ref());
        if part.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(part);
    }
    out
}

/// `concat` of a single fragment, borrowed: the fragment trimmed of Tcl's
/// whitespace, except that a backslash before trailing whitespace keeps one
/// whitespace character after it.
pub fn concat_one(fragment: &str) -> &str {
    let bytes = fragment.as_bytes();
    let start = bytes
        .iter()
        .position(|&b| !is_concat_ws(b))
        .unwrap_or(bytes.len());
    let mut end = bytes
        .iter()
        .rposition(|&b| !is_concat_ws(b))
        .map_or(start, |i| i + 1);
    if end < bytes.len() && end > start && bytes.get(end - 1) == Some(&b'\\') {
        end += 1;
    }
    // Trimmed bytes are ASCII, so both ends are char boundaries.
    fragment.get(start..end.max(start)).unwrap_or_default()
}

/// Whether `script` is complete by Tcl's `info complete` rules (no unclosed
/// brace, bracket or quote, and no trailing backslash-newline continuation).
///
/// As in Tcl, a script with a syntax error that is not about a missing close
/// (`{a}b`, `"a"b`) counts as complete, and parsing stops at the first
/// such error. Command substitutions nested deeper than
/// [`MAX_NESTING`] levels are reported incomplete rather than risking the
/// stack.
pub fn info_complete(script: &str) -> bool {
    info_complete_with_groups(script, &[])
}

/// [`info_complete`] for a script whose braced groups `groups` (sorted
/// `(open, close)` byte offsets of matching braces, as the framer finds them
/// while framing) are already known: when the parser meets a word starting
/// at one of those open braces it jumps to the close instead of scanning the
/// group again.
///
/// The result is the same as [`info_complete`]'s as long as each `close` is
/// where Tcl_ParseBraces would stop for a word starting at `open`, which
/// holds for any brace matching that skips `\` and the byte after it (the
/// framer's and Tcl's).
pub(crate) fn info_complete_with_groups(script: &str, groups: &[(usize, usize)]) -> bool {
    let p = Parser {
        b: script.as_bytes(),
        groups,
    };
    let end = p.b.len();
    let mut pos = 0;
    loop {
        let mut incomplete = false;
        match p.command(pos, false, &mut incomplete, 0) {
            Ok(next) => {
                if next >= end || next <= pos {
                    return !incomplete;
                }
                pos = next;
            }
            Err(()) => return !incomplete,
        }
    }
}

/// Deepest nesting of `[...]` and `$a(...)` that [`info_complete`] follows.
pub const MAX_NESTING: usize = 1000;

/// Tcl_ParseCommand and friends, reduced to what completeness needs. Every
/// method takes the position to start at and `inc`, the parse's `incomplete`
/// flag, and returns the position after what it parsed, or `Err` on a parse
/// error (after which `inc` tells whether the error was a missing close).
struct Parser<'a> {
    b: &'a [u8],
    /// Known braced groups (see [`info_complete_with_groups`]).
    groups: &'a [(usize, usize)],
}

/// 1 for the bytes that matter inside braces: `{`, `}` and `\\`.
static BRACE_SPECIAL: [u8; 256] = crate::list::byte_classes(&[(b"{}\\", 1)]);

/// Index of the first `{`, `}` or `\\` at or after `pos` (or `b.len()`):
/// a few bytes one by one (cheapest when they are dense), then `memchr3`.
#[inline]
pub(crate) fn next_brace_special(b: &[u8], pos: usize) -> usize {
    const PROBE: usize = 64;
    let Some(rest) = b.get(pos..) else {
        return b.len();
    };
    let probe = rest.len().min(PROBE);
    if let Some(off) = rest[..probe]
        .iter()
        .position(|&c| BRACE_SPECIAL[usize::from(c)] != 0)
    {
        return pos + off;
    }
    match memchr::memchr3(b'{', b'}', b'\\', &rest[probe..]) {
        Some(off) => pos + probe + off,
        None => b.len(),
    }
}

/// Character types of Tcl's parser (tclParse.c `CHAR_TYPE`).
const SPACE: u8 = 1;
const COMMAND_END: u8 = 2;
const QUOTE: u8 = 8;
const CLOSE_PAREN: u8 = 16;
const CLOSE_BRACK: u8 = 32;

const fn char_type(b: u8) -> u8 {
    match b {
        b' ' | b'\t' | b'\x0b' | b'\x0c' | b'\r' => SPACE,
        b'\n' | b';' => COMMAND_END,
        b'"' => QUOTE,
        b')' => CLOSE_PAREN,
        b']' => CLOSE_BRACK,
        _ => 0,
    }
}

impl Parser<'_> {
    fn at(&self, i: usize) -> Option<u8> {
        self.b.get(i).copied()
    }

    /// Bytes a backslash sequence at `i` spans (TclParseBackslash's count,
    /// simplified where the difference cannot matter: the bytes it would
    /// also swallow are never special).
    fn backslash_len(&self, i: usize) -> usize {
        match self.at(i + 1) {
            None => 1,
            Some(b'\n') => {
                let mut n = 2;
                while matches!(self.at(i + n), Some(b' ' | b'\t')) {
                    n += 1;
                }
                n
            }
            Some(_) => 2,
        }
    }

    /// ParseWhiteSpace: spaces (not newlines) and backslash-newlines.
    /// Returns the bytes skipped.
    fn white(&self, start: usize, inc: &mut bool) -> usize {
        let end = self.b.len();
        let mut p = start;
        loop {
            while self.at(p).is_some_and(|b| char_type(b) == SPACE) {
                p += 1;
            }
            if self.at(p) == Some(b'\\') && self.at(p + 1) == Some(b'\n') {
                p += 2;
                if p >= end {
                    *inc = true;
                    break;
                }
                continue;
            }
            break;
        }
        p - start
    }

    /// ParseComment: leading whitespace, blank lines and comments.
    fn comments(&self, start: usize, inc: &mut bool) -> usize {
        let end = self.b.len();
        let mut p = start;
        while p < end {
            loop {
                p += self.white(p, inc);
                if self.at(p) == Some(b'\n') {
                    p += 1;
                    continue;
                }
                break;
            }
            if self.at(p) != Some(b'#') {
                break;
            }
            while p < end {
                if self.at(p) == Some(b'\\') {
                    let n = self.white(p, inc);
                    p += if n > 0 { n } else { self.backslash_len(p) };
                } else {
                    p += 1;
                    if self.at(p - 1) == Some(b'\n') {
                        break;
                    }
                }
            }
        }
        p
    }

    /// Tcl_ParseCommand. Returns the position after the command (past its
    /// terminator), and records in `term_out` where it stopped.
    fn command(
        &self,
        start: usize,
        nested: bool,
        inc: &mut bool,
        depth: usize,
    ) -> Result<usize, ()> {
        self.command_term(start, nested, inc, depth)
            .map(|(next, _)| next)
    }

    fn command_term(
        &self,
        start: usize,
        nested: bool,
        inc: &mut bool,
        depth: usize,
    ) -> Result<(usize, usize), ()> {
        if depth > MAX_NESTING {
            *inc = true;
            return Err(());
        }
        let end = self.b.len();
        let terminators = if nested {
            COMMAND_END | CLOSE_BRACK
        } else {
            COMMAND_END
        };
        let mut p = self.comments(start, inc);
        if p >= end && nested {
            *inc = true;
        }
        loop {
            p += self.white(p, inc);
            let Some(c) = self.at(p) else {
                return Ok((p, p));
            };
            if char_type(c) & terminators != 0 {
                return Ok((p + 1, p));
            }
            let mut expand = false;
            loop {
                match self.at(p) {
                    Some(b'"') => p = self.quoted(p, inc, depth)?,
                    Some(b'{') => {
                        let (after, star) = self.braces(p, inc)?;
                        p = after;
                        if !expand && star && p < end {
                            let mut ignored = *inc;
                            let n = self.white(p, &mut ignored);
                            *inc = ignored;
                            if n == 0 && self.at(p).is_some_and(|b| char_type(b) != COMMAND_END) {
                                expand = true;
                                continue;
                            }
                        }
                    }
                    _ => p = self.tokens(p, SPACE | terminators, inc, depth)?,
                }
                break;
            }
            let n = self.white(p, inc);
            if n > 0 {
                p += n;
                continue;
            }
            let Some(c) = self.at(p) else {
                return Ok((p, p));
            };
            if char_type(c) & terminators != 0 {
                return Ok((p + 1, p));
            }
            // extra characters after close-quote / close-brace
            return Err(());
        }
    }

    /// Tcl_ParseBraces. Returns (position after `}`, whether the braces held
    /// exactly `*`).
    fn braces(&self, start: usize, inc: &mut bool) -> Result<(usize, bool), ()> {
        if let Ok(i) = self.groups.binary_search_by_key(&start, |g| g.0) {
            let close = self.groups[i].1;
            return Ok((
                close + 1,
                close == start + 2 && self.at(start + 1) == Some(b'*'),
            ));
        }
        let end = self.b.len();
        let mut level = 1usize;
        let mut p = start;
        loop {
            p = next_brace_special(self.b, p + 1);
            let Some(c) = self.at(p) else {
                *inc = true;
                return Err(());
            };
            match c {
                b'{' => level += 1,
                b'}' => {
                    level -= 1;
                    if level == 0 {
                        return Ok((p + 1, p == start + 2 && self.at(start + 1) == Some(b'*')));
                    }
                }
                b'\\' => {
                    let n = self.backslash_len(p);
                    if n > 1 && self.at(p + 1) == Some(b'\n') && end - p == 2 {
                        *inc = true;
                    }
                    p += n - 1;
                }
                _ => {}
            }
        }
    }

    /// Tcl_ParseQuotedString. Returns the position after the closing quote.
    fn quoted(&self, start: usize, inc: &mut bool, depth: usize) -> Result<usize, ()> {
        let term = self.tokens(start + 1, QUOTE, inc, depth)?;
        if self.at(term) != Some(b'"') {
            *inc = true;
            return Err(());
        }
        Ok(term + 1)
    }

    /// ParseTokens: text, `$` variables, `[...]` and backslashes up to the
    /// first unquoted byte whose type is in `mask`. Returns that position.
    fn tokens(&self, start: usize, mask: u8, inc: &mut bool, depth: usize) -> Result<usize, ()> {
        let end = self.b.len();
        let mut p = start;
        while let Some(c) = self.at(p) {
            if char_type(c) & mask != 0 {
                break;
            }
            match c {
                b'$' => p = self.variable(p, inc, depth)?,
                b'[' => {
                    p += 1;
                    loop {
                        let mut nested_inc = false;
                        match self.command_term(p, true, &mut nested_inc, depth + 1) {
                            Ok((next, term)) => {
                                p = next;
                                if term < end && self.at(term) == Some(b']') && !nested_inc {
                                    break;
                                }
                                if p >= end {
                                    // missing close-bracket
                                    *inc = true;
                                    return Err(());
                                }
                            }
                            Err(()) => {
                                *inc = nested_inc;
                                return Err(());
                            }
                        }
                    }
                }
                b'\\' => {
                    let n = self.backslash_len(p);
                    if n > 1 && self.at(p + 1) == Some(b'\n') {
                        if end - p == 2 {
                            *inc = true;
                        }
                        if mask & SPACE != 0 {
                            break;
                        }
                    }
                    p += n;
                }
                _ => p += 1,
            }
        }
        Ok(p)
    }

    /// Tcl_ParseVarName for a `$` at `start`. Returns the position after the
    /// variable reference (or after the `$` when it is just a dollar sign).
    fn variable(&self, start: usize, inc: &mut bool, depth: usize) -> Result<usize, ()> {
        let end = self.b.len();
        let mut p = start + 1;
        if p >= end {
            return Ok(p);
        }
        if self.at(p) == Some(b'{') {
            return match self
                .b
                .get(p + 1..)
                .and_then(|r| r.iter().position(|&b| b == b'}'))
            {
                Some(i) => Ok(p + 1 + i + 1),
                None => {
                    // missing close-brace for variable name
                    *inc = true;
                    Err(())
                }
            };
        }
        loop {
            match self.at(p) {
                Some(b) if b.is_ascii_alphanumeric() || b == b'_' => p += 1,
                Some(b':') if self.at(p + 1) == Some(b':') => {
                    p += 2;
                    while self.at(p) == Some(b':') {
                        p += 1;
                    }
                }
                _ => break,
            }
        }
        let array = self.at(p) == Some(b'(');
        if p == start + 1 && !array {
            return Ok(p);
        }
        if array {
            if depth >= MAX_NESTING {
                *inc = true;
                return Err(());
            }
            let term = self.tokens(p + 1, CLOSE_PAREN, inc, depth + 1)?;
            if self.at(term) != Some(b')') {
                // missing )
                *inc = true;
                return Err(());
            }
            return Ok(term + 1);
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concat_rules() {
        assert_eq!(concat(["a\\ ", "x"]), "a\\  x");
        assert_eq!(concat(["a\\  \n", "x"]), "a\\  x");
        assert_eq!(concat([" a \t", "x"]), "a x");
        assert_eq!(concat(["\\", "x"]), "\\ x");
        assert_eq!(concat(["", "  ", "a"]), "a");
        assert_eq!(concat([" \u{2000}x\u{2000} ", "x"]), "\u{2000}x\u{2000} x");
    }

    #[test]
    fn complete_rules() {
        let cases: &[(&str, bool)] = &[
            ("\\\n", false),
            ("# a\\\n", false),
            ("# a\\\n\n", true),
            ("# a\\\n\nset x", true),
            ("a \\\n", false),
            ("a\\\n", false),
            ("{a}b {", true),
            ("$\u{141}(", true),
            ("$a(", false),
            ("${a", false),
            ("{*}\"a", false),
            ("[", false),
            ("[a]]", true),
            ("\"a\"b {", true),
            ("#{\n{", false),
            ("", true),
            ("set a {b c}", true),
        ];
        for &(s, want) in cases {
            assert_eq!(info_complete(s), want, "{s:?}");
        }
        assert!(!info_complete(&"[".repeat(100_000)));
    }
}
