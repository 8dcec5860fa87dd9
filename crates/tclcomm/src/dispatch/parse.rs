//! Tcl script parsing by the dodekalogue, in Tcl 8.6's two phases: a whole
//! command is parsed (nested `[...]` scripts included) before any of its
//! substitutions run, and a top-level script is parsed one command at a time,
//! so the commands before a syntax error still run.

use std::borrow::Cow;

/// Nesting limit for `[...]` and nested evaluation. Tcl's own limit is the C
/// stack; ours keeps a hostile peer's `[[[[...]]]]` from overflowing a
/// 2 MiB thread stack.
pub(crate) const MAX_DEPTH: usize = 200;

/// Tcl's message when [`MAX_DEPTH`] is exceeded.
pub(crate) const TOO_DEEP: &str = "too many nested evaluations (infinite loop?)";

/// One parsed command: its source text (for errorInfo) and its words.
#[derive(Debug)]
pub(crate) struct Command<'s> {
    /// From the first character of the first word up to (not including)
    /// the terminator.
    pub(crate) text: &'s str,
    pub(crate) words: Vec<Word<'s>>,
}

/// One word: the pieces to substitute and concatenate, and whether it had the
/// `{*}` prefix.
#[derive(Debug)]
pub(crate) struct Word<'s> {
    pub(crate) expand: bool,
    pub(crate) tokens: Vec<Token<'s>>,
}

/// A piece of a word.
#[derive(Debug)]
pub(crate) enum Token<'s> {
    /// Literal text, backslash sequences already substituted.
    Text(Cow<'s, str>),
    /// `[script]`.
    Script(Vec<Command<'s>>),
    /// `$name`, `${name}` or `$name(index)`.
    Var {
        name: &'s str,
        index: Option<Vec<Token<'s>>>,
    },
}

/// A syntax error: Tcl's message and errorCode, and the byte offset of the
/// character Tcl reports as the end of the offending command.
#[derive(Debug)]
pub(crate) struct ParseError {
    pub(crate) message: String,
    pub(crate) errorcode: &'static str,
    pub(crate) term: usize,
}

impl ParseError {
    fn new(message: impl Into<String>, term: usize) -> Self {
        ParseError {
            message: message.into(),
            errorcode: "NONE",
            term,
        }
    }
}

/// Tcl's TYPE_SPACE characters (word separators; newline is a terminator).
pub(crate) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | 0x0b | 0x0c | b'\r')
}

/// What ends a run of word tokens.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A bare word; `nested` makes `]` a terminator.
    Bare { nested: bool },
    /// Inside double quotes.
    Quoted,
    /// Inside an array index `(...)`.
    Index,
}

/// Parser state over one script string.
pub(crate) struct Parser<'s> {
    src: &'s str,
    b: &'s [u8],
    pos: usize,
    depth: usize,
}

impl<'s> Parser<'s> {
    /// A parser for a script evaluated at nesting `depth`.
    pub(crate) fn new(src: &'s str, depth: usize) -> Self {
        Parser {
            src,
            b: src.as_bytes(),
            pos: 0,
            depth,
        }
    }

    /// The next non-empty command of a top-level script, `None` at the end.
    /// On error, the command text Tcl logs in errorInfo is returned with it.
    pub(crate) fn next_command(&mut self) -> Result<Option<Command<'s>>, (ParseError, &'s str)> {
        loop {
            self.skip_comments();
            if self.pos >= self.b.len() {
                return Ok(None);
            }
            let start = self.pos;
            match self.parse_command(false, self.depth) {
                Ok(cmd) if cmd.words.is_empty() => continue,
                Ok(cmd) => return Ok(Some(cmd)),
                Err(e) => {
                    let end = self.char_end(e.term);
                    let text = &self.src[start..end];
                    return Err((e, text));
                }
            }
        }
    }

    /// Where the logged text of a failed command ends: Tcl logs one byte
    /// past `at`, and a character cut by that is dropped whole.
    fn char_end(&self, at: usize) -> usize {
        match self.b.get(at) {
            Some(c) if c.is_ascii() => at + 1,
            Some(_) => at,
            None => self.b.len(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    /// Skips spaces and backslash-newlines (ParseWhiteSpace); returns how
    /// many bytes were skipped.
    fn skip_space(&mut self) -> usize {
        let start = self.pos;
        loop {
            match self.peek() {
                Some(c) if is_space(c) => self.pos += 1,
                Some(b'\\') if self.b.get(self.pos + 1) == Some(&b'\n') => self.pos += 2,
                _ => return self.pos - start,
            }
        }
    }

    /// Skips whitespace, newlines and comments before a command
    /// (ParseComment).
    fn skip_comments(&mut self) {
        loop {
            loop {
                self.skip_space();
                if self.peek() == Some(b'\n') {
                    self.pos += 1;
                } else {
                    break;
                }
            }
            if self.peek() != Some(b'#') {
                return;
            }
            while let Some(c) = self.peek() {
                if c == b'\\' {
                    if self.skip_space() == 0 {
                        // Any other backslash sequence is skipped whole.
                        self.pos = (self.pos + 2).min(self.b.len());
                    }
                } else {
                    self.pos += 1;
                    if c == b'\n' {
                        break;
                    }
                }
            }
        }
    }

    /// Parses one command starting at a non-space character (Tcl_ParseCommand
    /// after ParseComment). A `;` or newline terminator is consumed; a `]`
    /// ending a nested command is not.
    fn parse_command(&mut self, nested: bool, depth: usize) -> Result<Command<'s>, ParseError> {
        let start = self.pos;
        let mut words = Vec::new();
        let term;
        loop {
            self.skip_space();
            match self.peek() {
                None => {
                    term = self.pos;
                    break;
                }
                Some(b'\n' | b';') => {
                    term = self.pos;
                    self.pos += 1;
                    break;
                }
                Some(b']') if nested => {
                    term = self.pos;
                    break;
                }
                Some(_) => {}
            }
            words.push(self.parse_word(nested, depth)?);
            if self.skip_space() > 0 {
                continue;
            }
            match self.peek() {
                None | Some(b'\n' | b';') => {}
                Some(b']') if nested => {}
                Some(_) => {
                    let message = if self.b[self.pos - 1] == b'"' {
                        "extra characters after close-quote"
                    } else {
                        "extra characters after close-brace"
                    };
                    return Err(ParseError::new(message, self.pos));
                }
            }
        }
        Ok(Command {
            text: &self.src[start..term],
            words,
        })
    }

    fn parse_word(&mut self, nested: bool, depth: usize) -> Result<Word<'s>, ParseError> {
        let mut expand = false;
        if self.b[self.pos..].starts_with(b"{*}") {
            // `{*}` is a prefix only when a word follows immediately.
            let after = self.pos + 3;
            let word_follows = match self.b.get(after) {
                None | Some(b'\n' | b';') => false,
                Some(b']') if nested => false,
                Some(&c) if is_space(c) => false,
                Some(b'\\') => self.b.get(after + 1) != Some(&b'\n'),
                Some(_) => true,
            };
            if word_follows {
                expand = true;
                self.pos = after;
            }
        }
        let tokens = match self.peek() {
            Some(b'{') => self.parse_braces()?,
            Some(b'"') => {
                let open = self.pos;
                self.pos += 1;
                let tokens = self.parse_tokens(Mode::Quoted, depth)?;
                if self.peek() != Some(b'"') {
                    return Err(ParseError::new("missing \"", open));
                }
                self.pos += 1;
                tokens
            }
            _ => self.parse_tokens(Mode::Bare { nested }, depth)?,
        };
        Ok(Word { expand, tokens })
    }

    /// A braced word: verbatim except backslash-newline-whitespace → space.
    fn parse_braces(&mut self) -> Result<Vec<Token<'s>>, ParseError> {
        let open = self.pos;
        self.pos += 1;
        let mut level = 1usize;
        let mut text = Text::default();
        let mut seg = self.pos;
        loop {
            let Some(c) = self.peek() else {
                let mut message = String::from("missing close-brace");
                if self.unbalanced_brace_in_comment(open) {
                    message.push_str(": possible unbalanced brace in comment");
                }
                return Err(ParseError::new(message, open));
            };
            match c {
                b'{' => level += 1,
                b'}' => {
                    level -= 1;
                    if level == 0 {
                        text.push_borrowed(self.src, seg, self.pos);
                        self.pos += 1;
                        return Ok(text.into_tokens());
                    }
                }
                b'\\' => match self.b.get(self.pos + 1) {
                    Some(b'\n') => {
                        text.push_borrowed(self.src, seg, self.pos);
                        let (piece, used) = backslash(&self.src[self.pos..]);
                        text.push_owned(&piece);
                        self.pos += used;
                        seg = self.pos;
                        continue;
                    }
                    Some(_) => self.pos += 1,
                    None => {}
                },
                _ => {}
            }
            self.pos += 1;
        }
    }

    /// Tcl's guess after a missing close-brace: an open brace preceded on the
    /// same line by `<whitespace>#`, scanning back from the end of the script.
    fn unbalanced_brace_in_comment(&self, open: usize) -> bool {
        let mut open_brace = false;
        let mut i = self.b.len();
        while i > open + 1 {
            i -= 1;
            match self.b[i] {
                b'{' => open_brace = true,
                b'\n' => open_brace = false,
                b'#' if open_brace && (is_space(self.b[i - 1]) || self.b[i - 1] == b'\n') => {
                    return true;
                }
                _ => {}
            }
        }
        false
    }

    /// Parses substitutable text until the end condition of `mode`, leaving
    /// the position at the terminating character (or at the end).
    fn parse_tokens(&mut self, mode: Mode, depth: usize) -> Result<Vec<Token<'s>>, ParseError> {
        let mut tokens = Vec::new();
        let mut text = Text::default();
        let mut seg = self.pos;
        while let Some(c) = self.peek() {
            let stop = match mode {
                Mode::Bare { nested } => {
                    is_space(c)
                        || c == b'\n'
                        || c == b';'
                        || (nested && c == b']')
                        || (c == b'\\' && self.b.get(self.pos + 1) == Some(&b'\n'))
                }
                Mode::Quoted => c == b'"',
                Mode::Index => c == b')',
            };
            if stop {
                break;
            }
            match c {
                b'\\' => {
                    text.push_borrowed(self.src, seg, self.pos);
                    // A backslash and one ASCII character standing for one
                    // character (the common case, and every escape `list`
                    // writes) without a String per escape.
                    match self.b.get(self.pos + 1) {
                        Some(&n) if simple_escape(n).is_some() => {
                            // Then, in one tight loop, the plain ASCII and
                            // simple escapes that follow (dense escaping).
                            self.simple_run(mode, text.owned());
                        }
                        _ => {
                            let (piece, used) = backslash(&self.src[self.pos..]);
                            text.push_owned(&piece);
                            self.pos += used;
                        }
                    }
                    seg = self.pos;
                }
                b'$' => {
                    text.push_borrowed(self.src, seg, self.pos);
                    match self.parse_var(depth)? {
                        Some(var) => {
                            text.flush_into(&mut tokens);
                            tokens.push(var);
                        }
                        None => text.push_owned("$"),
                    }
                    seg = self.pos;
                }
                b'[' => {
                    text.push_borrowed(self.src, seg, self.pos);
                    text.flush_into(&mut tokens);
                    let script = self.parse_nested(depth + 1)?;
                    tokens.push(Token::Script(script));
                    seg = self.pos;
                }
                _ => self.pos += 1,
            }
        }
        text.push_borrowed(self.src, seg, self.pos);
        text.flush_into(&mut tokens);
        Ok(tokens)
    }

    /// From a simple escape at the current position: appends to `t` the
    /// plain ASCII characters and simple escapes (see [`simple_escape`])
    /// that follow, up to anything else (which the caller's loop handles).
    fn simple_run(&mut self, mode: Mode, t: &mut String) {
        // A long run (dense escaping in a big argument: what `list` writes
        // for a value that must be backslash-quoted; other characters than
        // ASCII included) is found a block at a time and substituted in one
        // go, into `t`'s place when `t` is still empty, instead of a push
        // per byte.
        let end = tclcomm_wire::list::simple_run_end(self.b, self.pos, run_stops(mode));
        if end - self.pos >= LONG_RUN {
            let piece = tclcomm_wire::list::collapse(&self.src[self.pos..end]);
            if t.is_empty() {
                *t = piece;
            } else {
                t.push_str(&piece);
            }
            self.pos = end;
            return;
        }
        loop {
            match self.b.get(self.pos) {
                Some(&b'\\') => match self.b.get(self.pos + 1).and_then(|&n| simple_escape(n)) {
                    Some(c) => {
                        t.push(char::from(c));
                        self.pos += 2;
                    }
                    None => return,
                },
                Some(&c) if c.is_ascii() && !ends_plain(mode, c) => {
                    t.push(char::from(c));
                    self.pos += 1;
                }
                _ => return,
            }
        }
    }

    /// `$...` at the current position (Tcl_ParseVarName). `None` (with the
    /// `$` consumed) when no variable name follows, making `$` literal.
    fn parse_var(&mut self, depth: usize) -> Result<Option<Token<'s>>, ParseError> {
        let name_start = self.pos + 1;
        if self.b.get(name_start) == Some(&b'{') {
            let open = name_start;
            let Some(len) = self.src[open + 1..].find('}') else {
                return Err(ParseError::new(
                    "missing close-brace for variable name",
                    open,
                ));
            };
            self.pos = open + 1 + len + 1;
            return Ok(Some(Token::Var {
                name: &self.src[open + 1..open + 1 + len],
                index: None,
            }));
        }
        let mut q = name_start;
        loop {
            match self.b.get(q) {
                Some(c) if c.is_ascii_alphanumeric() || *c == b'_' => q += 1,
                Some(b':') if self.b.get(q + 1) == Some(&b':') => {
                    q += 2;
                    while self.b.get(q) == Some(&b':') {
                        q += 1;
                    }
                }
                _ => break,
            }
        }
        let name = &self.src[name_start..q];
        if self.b.get(q) == Some(&b'(') {
            self.pos = q + 1;
            let index = self.parse_tokens(Mode::Index, depth)?;
            if self.peek() != Some(b')') {
                return Err(ParseError::new("missing )", q));
            }
            self.pos += 1;
            return Ok(Some(Token::Var {
                name,
                index: Some(index),
            }));
        }
        self.pos = q;
        if name.is_empty() {
            return Ok(None);
        }
        Ok(Some(Token::Var { name, index: None }))
    }

    /// The commands of a `[...]` script, the position at its `[`.
    fn parse_nested(&mut self, depth: usize) -> Result<Vec<Command<'s>>, ParseError> {
        let open = self.pos;
        if depth > MAX_DEPTH {
            return Err(ParseError {
                message: TOO_DEEP.into(),
                errorcode: "TCL LIMIT STACK",
                term: open,
            });
        }
        self.pos += 1;
        let mut commands = Vec::new();
        loop {
            self.skip_comments();
            match self.peek() {
                None => return Err(ParseError::new("missing close-bracket", open)),
                Some(b']') => {
                    self.pos += 1;
                    return Ok(commands);
                }
                Some(_) => {
                    let cmd = self.parse_command(true, depth)?;
                    if !cmd.words.is_empty() {
                        commands.push(cmd);
                    }
                }
            }
        }
    }
}

/// Accumulates literal text, borrowing from the script while it can.
#[derive(Default)]
struct Text<'s> {
    text: Option<Cow<'s, str>>,
}

impl<'s> Text<'s> {
    fn push_borrowed(&mut self, src: &'s str, from: usize, to: usize) {
        if from == to {
            return;
        }
        let piece = &src[from..to];
        match &mut self.text {
            None => self.text = Some(Cow::Borrowed(piece)),
            Some(t) => t.to_mut().push_str(piece),
        }
    }

    fn push_owned(&mut self, piece: &str) {
        match &mut self.text {
            None => self.text = Some(Cow::Owned(piece.to_owned())),
            Some(t) => t.to_mut().push_str(piece),
        }
    }

    /// The text so far, made owned, to append to.
    fn owned(&mut self) -> &mut String {
        self.text
            .get_or_insert_with(|| Cow::Owned(String::new()))
            .to_mut()
    }

    fn flush_into(&mut self, tokens: &mut Vec<Token<'s>>) {
        if let Some(t) = self.text.take() {
            tokens.push(Token::Text(t));
        }
    }

    fn into_tokens(mut self) -> Vec<Token<'s>> {
        let mut tokens = Vec::new();
        self.flush_into(&mut tokens);
        tokens
    }
}

/// For the byte after a backslash: the byte the pair stands for when it is
/// one ASCII character standing for one (the common case, and every escape
/// `list` writes); `None` for the rest (hex, octal, Unicode, a
/// backslash-newline, non-ASCII), which [`backslash`] handles.
fn simple_escape(n: u8) -> Option<u8> {
    match n {
        b'x' | b'u' | b'U' | b'\n' | b'0'..=b'7' => None,
        b'a' => Some(0x07),
        b'b' => Some(0x08),
        b'f' => Some(0x0c),
        b'n' => Some(b'\n'),
        b'r' => Some(b'\r'),
        b't' => Some(b'\t'),
        b'v' => Some(0x0b),
        other if other.is_ascii() => Some(other),
        _ => None,
    }
}

/// From this length on, a run of plain text and simple escapes is
/// substituted by the codec's block-wise [`collapse`](tclcomm_wire::list::collapse).
const LONG_RUN: usize = 256;

/// The bytes for which [`ends_plain`] holds in `mode`.
fn run_stops(mode: Mode) -> &'static [u8] {
    match mode {
        Mode::Bare { nested: false } => b" \t\x0b\x0c\r\n;$[",
        Mode::Bare { nested: true } => b" \t\x0b\x0c\r\n;$[]",
        Mode::Quoted => b"\"$[",
        Mode::Index => b")$[",
    }
}

/// Whether `c` (not a backslash) stops a run of plain text in `mode`: what
/// ends the word, or starts a substitution.
fn ends_plain(mode: Mode, c: u8) -> bool {
    match c {
        b'$' | b'[' => true,
        _ => match mode {
            Mode::Bare { nested } => {
                is_space(c) || c == b'\n' || c == b';' || (nested && c == b']')
            }
            Mode::Quoted => c == b'"',
            Mode::Index => c == b')',
        },
    }
}

/// Backslash substitution at the start of `s` (which starts with `\`), by
/// Tcl 8.6's TclParseBackslash: returns the replacement and the number of
/// bytes consumed.
///
/// Differences from Tcl 8.6, which cannot represent characters beyond the
/// BMP: `\U` escapes above U+FFFF give the real character instead of
/// U+FFFD, and a lone surrogate (`\uD800`) gives U+FFFD; a `\uD8xx\uDCxx`
/// pair is combined, as Tcl does.
pub(crate) fn backslash(s: &str) -> (Cow<'static, str>, usize) {
    let b = s.as_bytes();
    debug_assert_eq!(b.first(), Some(&b'\\'));
    let Some(&c) = b.get(1) else {
        return (Cow::Borrowed("\\"), 1);
    };
    let simple = |r: &'static str| (Cow::Borrowed(r), 2);
    match c {
        b'a' => simple("\x07"),
        b'b' => simple("\x08"),
        b'f' => simple("\x0c"),
        b'n' => simple("\n"),
        b'r' => simple("\r"),
        b't' => simple("\t"),
        b'v' => simple("\x0b"),
        b'x' | b'u' | b'U' => {
            let max = match c {
                b'x' => 2,
                b'u' => 4,
                _ => 8,
            };
            let (value, digits) = parse_hex(&b[2..], max);
            if digits == 0 {
                return (Cow::Owned((c as char).to_string()), 2);
            }
            let used = 2 + digits;
            if (0xD800..0xDC00).contains(&value) {
                // A high surrogate combines with an immediately following
                // `\u` low surrogate.
                if b.get(used) == Some(&b'\\') && b.get(used + 1) == Some(&b'u') {
                    let (low, ldigits) = parse_hex(&b[used + 2..], 4);
                    if ldigits == 4 && (0xDC00..0xE000).contains(&low) {
                        let cp = 0x10000 + ((value - 0xD800) << 10) + (low - 0xDC00);
                        let ch = char::from_u32(cp).unwrap_or('\u{FFFD}');
                        return (Cow::Owned(ch.to_string()), used + 6);
                    }
                }
            }
            let ch = char::from_u32(value).unwrap_or('\u{FFFD}');
            (Cow::Owned(ch.to_string()), used)
        }
        b'\n' => {
            let mut used = 2;
            while matches!(b.get(used), Some(b' ' | b'\t')) {
                used += 1;
            }
            (Cow::Borrowed(" "), used)
        }
        b'0'..=b'7' => {
            let mut value = u32::from(c - b'0');
            let mut used = 2;
            // At most three digits, and never past \377.
            while used < 4 && value < 0o40 {
                match b.get(used) {
                    Some(&d @ b'0'..=b'7') => {
                        value = value * 8 + u32::from(d - b'0');
                        used += 1;
                    }
                    _ => break,
                }
            }
            let ch = char::from_u32(value).unwrap_or('\u{FFFD}');
            (Cow::Owned(ch.to_string()), used)
        }
        _ => {
            let ch = s[1..].chars().next().unwrap_or('\\');
            (Cow::Owned(ch.to_string()), 1 + ch.len_utf8())
        }
    }
}

/// Up to `max` hex digits (TclParseHex: stops before a digit that would take
/// the value past U+10FFFF). Returns the value and the digits used.
fn parse_hex(b: &[u8], max: usize) -> (u32, usize) {
    let mut value = 0u32;
    let mut n = 0;
    while n < max {
        let Some(d) = b.get(n).and_then(|c| (*c as char).to_digit(16)) else {
            break;
        };
        if value > 0x10fff {
            break;
        }
        value = (value << 4) | d;
        n += 1;
    }
    (value, n)
}
