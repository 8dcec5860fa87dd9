//! A pure-Rust evaluator for the scripts a comm peer sends: Tcl's parsing
//! rules, with registered Rust functions as the only commands.
//!
//! ```
//! use tclcomm::dispatch::{Dispatcher, TclError};
//!
//! let d = Dispatcher::new();
//! d.register("add", |_call, args| {
//!     let mut sum = 0i64;
//!     for a in args {
//!         sum += a.parse::<i64>().map_err(|_| {
//!             TclError::new(format!("expected integer but got \"{a}\""))
//!         })?;
//!     }
//!     Ok(sum.to_string())
//! });
//! assert_eq!(d.eval("add 1 [add 2 3] {*}{4 5}").unwrap(), "15");
//!
//! let err = d.eval("error boom {} {MY CODE}").unwrap_err();
//! assert_eq!((err.code(), err.message(), err.errorcode()), (1, "boom", "MY CODE"));
//! assert_eq!(err.errorinfo(), "boom\n    while executing\n\"error boom {} {MY CODE}\"");
//! ```
//!
//! # What is evaluated
//!
//! Scripts are parsed as Tcl 8.6 parses them: commands end at newlines and
//! semicolons; words are separated by spaces and tabs; `#` starts a comment
//! where a command could start; `{...}` words are verbatim (except that
//! backslash-newline-whitespace becomes one space); `"..."` and bare words get
//! backslash and command substitution; `{*}` expands a word as a list;
//! `[script]` is evaluated with the same commands. The result of a script is
//! the result of its last command, `""` for an empty script.
//!
//! There are no variables: `$name` (and `${name}`, `$name(index)`) fails with
//! Tcl's `can't read "name": no such variable`, after the parse has checked it
//! as Tcl would. A `$` not followed by a name is a literal `$`.
//!
//! Built-in commands: `return`, `error`, `list`, `concat`, `break` and
//! `continue`, with Tcl's semantics and messages. A command registered under
//! the same name replaces the built-in.
//!
//! # Completion codes
//!
//! [`Dispatcher::eval`] returns what Tcl's `catch` sees: `Ok` for code 0, and a
//! [`TclError`] carrying any other code, so a top-level `return x` is an
//! `Err` with code 2 and message `x`, exactly as comm transmits it.

mod builtins;
mod list;
mod parse;

use std::collections::HashMap;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, PoisonError, RwLock};

use parse::{Command, MAX_DEPTH, Parser, TOO_DEEP, Token};

/// The signature of a command: the call context and the words after the
/// command name; the result string, or any non-OK completion.
pub type CommandFn = dyn Fn(&mut Call<'_>, &[String]) -> Result<String, TclError> + Send + Sync;

/// The signature of a command registered with
/// [`Dispatcher::register_owned`]: it is given the words after the command
/// name, so that it can keep one (store a big argument, or return it) by
/// moving it rather than copying it.
pub type OwnedCommandFn =
    dyn Fn(&mut Call<'_>, Vec<String>) -> Result<String, TclError> + Send + Sync;

/// Tcl's `TCL_ERROR` completion code.
pub const CODE_ERROR: i32 = 1;
/// Tcl's `TCL_RETURN` completion code.
pub const CODE_RETURN: i32 = 2;
/// Tcl's `TCL_BREAK` completion code.
pub const CODE_BREAK: i32 = 3;
/// Tcl's `TCL_CONTINUE` completion code.
pub const CODE_CONTINUE: i32 = 4;

/// FNV-1a: command names are looked up once per command evaluated, and
/// the map holds only names its owner registered (a peer's names are looked
/// up, never inserted), so a fast hash without collision defence is safe.
#[derive(Clone, Copy)]
struct NameHasher(u64);

impl Default for NameHasher {
    fn default() -> Self {
        NameHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for NameHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

type CommandMap = HashMap<String, Arc<OwnedCommandFn>, std::hash::BuildHasherDefault<NameHasher>>;

/// Evaluates Tcl scripts whose commands are registered Rust functions.
///
/// Cheap to clone (an [`Arc`] inside); clones share their commands. Commands
/// may be registered and scripts evaluated from any number of threads at
/// once; no lock is held while a command runs, so commands may evaluate
/// scripts and register commands themselves.
///
/// Scripts run on the task of the connection that brought them. A command
/// that blocks its thread should be registered with
/// [`register_blocking`](Dispatcher::register_blocking), so that other
/// connections go on being served while it runs, and so that the answers
/// to requests read together with it (which are otherwise written together,
/// once all have run) go out before it blocks.
#[derive(Clone)]
pub struct Dispatcher {
    commands: Arc<RwLock<CommandMap>>,
}

impl Default for Dispatcher {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("commands", &self.command_names())
            .finish()
    }
}

/// Runs `f`, which may block, telling a multi-thread tokio runtime first
/// so that it moves its other work off this thread.
fn blocking_section<R>(f: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    // Answers held for this read go out now, not after the wait.
    crate::channel::release_held();
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

impl Dispatcher {
    /// A dispatcher with the built-in commands (`return`, `error`, `list`,
    /// `concat`, `break`, `continue`).
    pub fn new() -> Self {
        let d = Self::empty();
        builtins::install(&d);
        d
    }

    /// A dispatcher with no commands at all.
    pub fn empty() -> Self {
        Dispatcher {
            commands: Arc::default(),
        }
    }

    /// Registers `f` as the command `name`, replacing any command of that
    /// name. `f` gets the words after the command name.
    pub fn register<F>(&self, name: impl Into<String>, f: F)
    where
        F: Fn(&mut Call<'_>, &[String]) -> Result<String, TclError> + Send + Sync + 'static,
    {
        self.register_owned(name, move |call, args| f(call, &args));
    }

    /// Registers `f` as the command `name`, as [`register`](Self::register)
    /// does, for a command that keeps its arguments: `f` gets them as its
    /// own, so that it can keep a big one by moving it (a `set` that stores
    /// its value and returns it copies it once, not twice).
    pub fn register_owned<F>(&self, name: impl Into<String>, f: F)
    where
        F: Fn(&mut Call<'_>, Vec<String>) -> Result<String, TclError> + Send + Sync + 'static,
    {
        self.commands
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.into(), Arc::new(f));
    }

    /// Registers `f` as the command `name`, for a command that blocks (waits
    /// on I/O, a lock, a device, a long computation). The dispatcher runs on
    /// the connection's task; while `f` runs, a multi-thread tokio runtime
    /// is told so (`block_in_place`) and moves its other work, other
    /// connections included, to another thread. On a current-thread
    /// runtime there is no other thread, and `f` simply runs; wrap the
    /// whole evaluator in [`Blocking`](crate::Blocking) there instead.
    pub fn register_blocking<F>(&self, name: impl Into<String>, f: F)
    where
        F: Fn(&mut Call<'_>, &[String]) -> Result<String, TclError> + Send + Sync + 'static,
    {
        self.register(name, move |call, args| blocking_section(|| f(call, args)));
    }

    /// Removes the command `name`; says whether it existed.
    pub fn unregister(&self, name: &str) -> bool {
        self.commands
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name)
            .is_some()
    }

    /// Whether a command `name` exists.
    pub fn has_command(&self, name: &str) -> bool {
        self.lookup(name).is_some()
    }

    /// The names of all commands, sorted.
    pub fn command_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .commands
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }

    /// Evaluates `script` and returns what Tcl's `catch` would: the result
    /// of the last command, or the first non-OK completion (errors carry
    /// Tcl-style errorInfo and errorCode).
    pub fn eval(&self, script: &str) -> Result<String, TclError> {
        self.eval_script(script, 0)
    }

    /// [`eval`](Self::eval) of a script the caller gives up: for one
    /// command of plain words, the last word takes the script's memory
    /// (cut in place) instead of being copied, so a big argument is held
    /// once while the command runs.
    pub(crate) fn eval_owned(&self, script: String) -> Result<String, TclError> {
        match self.eval_simple_owned(script) {
            Ok(outcome) => outcome,
            Err(script) => self.eval_script(&script, 0),
        }
    }

    /// [`eval_simple`](Self::eval_simple) taking the script; hands it back
    /// when it is not that simple.
    fn eval_simple_owned(&self, script: String) -> Result<Result<String, TclError>, String> {
        let bytes = script.as_bytes();
        if !bytes.iter().all(|&b| plain_byte(b) || parse::is_space(b)) {
            return Err(script);
        }
        // Word ranges (all ASCII here, so every index is a char boundary).
        let mut ranges = Vec::new();
        let mut k = 0;
        while k < bytes.len() {
            if parse::is_space(bytes[k]) {
                k += 1;
                continue;
            }
            let from = k;
            while k < bytes.len() && !parse::is_space(bytes[k]) {
                k += 1;
            }
            ranges.push((from, k));
        }
        let Some(&(ns, ne)) = ranges.first() else {
            return Err(script);
        };
        let name = script[ns..ne].to_owned();
        let Some(f) = self.lookup(&name) else {
            return Err(script);
        };
        // Errors show at most 150 bytes of the command: a longer prefix
        // logs the same.
        let text = script[ns..script.len().min(ns + 256)].to_owned();
        let mut args: Vec<String> = ranges[1..]
            .iter()
            .take(ranges.len().saturating_sub(2))
            .map(|&(a, b)| script[a..b].to_owned())
            .collect();
        if let Some(&(ls, le)) = ranges.get(1..).and_then(|r| r.last()) {
            let mut last = script;
            last.truncate(le);
            last.drain(..ls);
            args.push(last);
        }
        let outcome = self.invoke(&*f, &name, args, &text, 0);
        Ok(outcome.map_err(|mut e| {
            e.logged = false;
            e
        }))
    }

    fn lookup(&self, name: &str) -> Option<Arc<OwnedCommandFn>> {
        self.commands
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// One script level (a Tcl "eval"): errors are logged once per level.
    fn eval_script(&self, script: &str, depth: usize) -> Result<String, TclError> {
        if depth > MAX_DEPTH {
            return Err(TclError::new(TOO_DEEP).with_errorcode("TCL LIMIT STACK"));
        }
        if let Some(outcome) = self.eval_simple(script, depth) {
            return outcome;
        }
        let mut parser = Parser::new(script, depth);
        let mut result = String::new();
        let outcome = loop {
            match parser.next_command() {
                Ok(None) => break Ok(result),
                Ok(Some(cmd)) => match self.eval_command(cmd, depth) {
                    Ok(r) => result = r,
                    Err(e) => break Err(e),
                },
                Err((pe, text)) => {
                    let mut e = TclError::new(pe.message).with_errorcode(pe.errorcode);
                    e.log(text);
                    break Err(e);
                }
            }
        };
        outcome.map_err(|mut e| {
            // The enclosing level adds its own "invoked from within".
            e.logged = false;
            e
        })
    }

    /// The fast path of [`eval_script`](Self::eval_script) for the most
    /// common script, one command of plain words (`tick`, `add 1 2`): no
    /// quoting, substitution, comment or terminator, so the words are the
    /// runs of non-space bytes and the command text is the script from its
    /// first word on. `None` when the script is not that simple, or names no
    /// command (the full path then reports it).
    fn eval_simple(&self, script: &str, depth: usize) -> Option<Result<String, TclError>> {
        let bytes = script.as_bytes();
        if !bytes.iter().all(|&b| plain_byte(b) || parse::is_space(b)) {
            return None;
        }
        let start = bytes.iter().position(|&b| plain_byte(b))?;
        let text = &script[start..];
        let mut words = text.split(|c: char| c.is_ascii() && parse::is_space(c as u8));
        let name = words.next()?;
        let f = self.lookup(name)?;
        let args: Vec<String> = words.filter(|w| !w.is_empty()).map(str::to_owned).collect();
        let outcome = self.invoke(&*f, name, args, text, depth);
        Some(outcome.map_err(|mut e| {
            // As eval_script: the enclosing level adds its own "invoked from within".
            e.logged = false;
            e
        }))
    }

    /// Evaluates one parsed command, taking it: a word that is one piece
    /// of text the parser already owns (a word with backslash escapes)
    /// becomes the argument as it is, not a copy of it.
    fn eval_command(&self, cmd: Command<'_>, depth: usize) -> Result<String, TclError> {
        let mut words = Vec::with_capacity(cmd.words.len());
        for w in cmd.words {
            let value = self.subst(w.tokens, cmd.text, depth)?;
            if w.expand {
                let items = list::parse_list(&value).map_err(|le| {
                    let mut e = TclError::new(le.message).with_errorcode(le.errorcode);
                    e.log(cmd.text);
                    e
                })?;
                words.extend(items);
            } else {
                words.push(value);
            }
        }
        if words.is_empty() {
            return Ok(String::new());
        }
        let name = words.remove(0);
        let Some(f) = self.lookup(&name) else {
            let mut e = TclError::new(format!("invalid command name \"{name}\""))
                .with_errorcode(list::format_list(&["TCL", "LOOKUP", "COMMAND", &name]));
            e.log(cmd.text);
            return Err(e);
        };
        self.invoke(&*f, &name, words, cmd.text, depth)
    }

    /// Calls the command `f` named `name` with `args`; a panic becomes a Tcl
    /// error, and an error names `text` (the command) in its errorInfo.
    fn invoke(
        &self,
        f: &OwnedCommandFn,
        name: &str,
        args: Vec<String>,
        text: &str,
        depth: usize,
    ) -> Result<String, TclError> {
        let mut call = Call {
            dispatcher: self,
            name,
            depth,
        };
        let outcome =
            catch_unwind(AssertUnwindSafe(|| f(&mut call, args))).unwrap_or_else(|payload| {
                let what = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                Err(
                    TclError::new(format!("command \"{name}\" panicked: {what}"))
                        .with_errorcode("TCLCOMM PANIC"),
                )
            });
        outcome.map_err(|mut e| {
            if e.code == CODE_ERROR {
                e.log(text);
            }
            e
        })
    }

    /// Substitutes one word's tokens. `text` is the command logged for
    /// errors raised here (variable reads). Takes the tokens: a word of one
    /// piece of text the parser already owns (one with backslash escapes)
    /// is returned as it is, not copied.
    fn subst(
        &self,
        mut tokens: Vec<Token<'_>>,
        text: &str,
        depth: usize,
    ) -> Result<String, TclError> {
        if let [Token::Text(t)] = tokens.as_mut_slice() {
            return Ok(std::mem::take(t).into_owned());
        }
        let mut out = String::new();
        for t in tokens {
            match t {
                Token::Text(s) => out.push_str(&s),
                Token::Script(cmds) => {
                    // Same script level: errors are logged by the innermost
                    // command only, as in Tcl 8.6's compiled scripts.
                    let mut r = String::new();
                    for c in cmds {
                        r = self.eval_command(c, depth + 1)?;
                    }
                    out.push_str(&r);
                }
                Token::Var { name, index } => {
                    let shown = match index {
                        Some(idx) => format!("{name}({})", self.subst(idx, text, depth)?),
                        None => (*name).to_owned(),
                    };
                    let mut e = TclError::new(format!("can't read \"{shown}\": no such variable"))
                        .with_errorcode(list::format_list(&["TCL", "LOOKUP", "VARNAME", name]));
                    e.log(text);
                    return Err(e);
                }
            }
        }
        Ok(out)
    }
}

/// The context of one command invocation.
pub struct Call<'a> {
    dispatcher: &'a Dispatcher,
    name: &'a str,
    depth: usize,
}

impl fmt::Debug for Call<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("name", &self.name)
            .field("depth", &self.depth)
            .finish()
    }
}

impl Call<'_> {
    /// The dispatcher running this command.
    pub fn dispatcher(&self) -> &Dispatcher {
        self.dispatcher
    }

    /// The command's name as invoked (word 0).
    pub fn name(&self) -> &str {
        self.name
    }

    /// Evaluates `script` one level deeper, as Tcl's `eval` or `uplevel`
    /// would (an error gets "invoked from within" this command in its
    /// errorInfo). Fails with `too many nested evaluations` past the nesting
    /// limit.
    pub fn eval(&mut self, script: &str) -> Result<String, TclError> {
        self.dispatcher.eval_script(script, self.depth + 1)
    }
}

/// A non-OK completion of a Tcl script or command: an error (code 1) or a
/// `return`/`break`/`continue`/other code.
///
/// For code 1, [`message`](Self::message) is the error message; for other
/// codes it is the result (e.g. `return x` gives code 2 and `x`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TclError {
    code: i32,
    message: String,
    errorcode: String,
    errorinfo: String,
    /// errorInfo already names the failing command at this script level
    /// (Tcl's ERR_ALREADY_LOGGED).
    logged: bool,
}

impl TclError {
    /// An error (code 1) with errorCode `NONE`. Its errorInfo is built as it
    /// propagates: the message, then `while executing "<command>"`.
    pub fn new(message: impl Into<String>) -> Self {
        Self::with_code(CODE_ERROR, message)
    }

    /// A completion with `code` (2 return, 3 break, 4 continue, or any other
    /// integer; 1 is an error) and result or message `message`.
    pub fn with_code(code: i32, message: impl Into<String>) -> Self {
        TclError {
            code,
            message: message.into(),
            errorcode: "NONE".into(),
            errorinfo: String::new(),
            logged: false,
        }
    }

    /// Tcl's argument-count error: `wrong # args: should be "<usage>"`,
    /// errorCode `TCL WRONGARGS`.
    pub fn wrong_args(usage: &str) -> Self {
        Self::new(format!("wrong # args: should be \"{usage}\"")).with_errorcode("TCL WRONGARGS")
    }

    /// Sets the errorCode (a Tcl list, e.g. `POSIX ENOENT {no such file}`).
    #[must_use]
    pub fn with_errorcode(mut self, errorcode: impl Into<String>) -> Self {
        self.errorcode = errorcode.into();
        self
    }

    /// Sets the start of errorInfo, as `error msg info` does: the command
    /// raising the error is then not added to it, but enclosing evaluations
    /// are. An empty `info` leaves errorInfo to be built from the message.
    #[must_use]
    pub fn with_errorinfo(mut self, info: impl Into<String>) -> Self {
        self.errorinfo = info.into();
        self.logged = !self.errorinfo.is_empty();
        self
    }

    /// The completion code: 1 for errors, 2 return, 3 break, 4 continue, or
    /// any other integer.
    pub fn code(&self) -> i32 {
        self.code
    }

    /// Whether this is an error (code 1).
    pub fn is_error(&self) -> bool {
        self.code == CODE_ERROR
    }

    /// The error message, or the result for codes other than 1.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The errorCode (`NONE` unless set).
    pub fn errorcode(&self) -> &str {
        &self.errorcode
    }

    /// The errorInfo stack trace built so far (empty for codes other than 1
    /// and for errors that have not passed through an evaluation).
    pub fn errorinfo(&self) -> &str {
        &self.errorinfo
    }

    /// Adds `command` to errorInfo unless this level already did
    /// (Tcl_LogCommandInfo): `while executing` for the first entry,
    /// `invoked from within` after that; commands longer than 150 characters
    /// are cut at 150 bytes and marked with `...`.
    fn log(&mut self, command: &str) {
        if self.logged {
            return;
        }
        let header = if self.errorinfo.is_empty() {
            self.errorinfo = self.message.clone();
            "while executing"
        } else {
            "invoked from within"
        };
        // Tcl cuts at 150 bytes, backing off to a character boundary.
        const LIMIT: usize = 150;
        let (shown, ellipsis) = if command.len() > LIMIT {
            let mut cut = LIMIT;
            while !command.is_char_boundary(cut) {
                cut -= 1;
            }
            (&command[..cut], "...")
        } else {
            (command, "")
        };
        self.errorinfo
            .push_str(&format!("\n    {header}\n\"{shown}{ellipsis}\""));
        self.logged = true;
    }
}

#[cfg(test)]
mod tests;

/// Bytes with no meaning to the parser inside a bare word, and not `#` (a
/// comment where a command starts): the words of the fast paths.
fn plain_byte(b: u8) -> bool {
    b.is_ascii_graphic()
        && !matches!(
            b,
            b'{' | b'}' | b'[' | b']' | b'$' | b'\\' | b'"' | b';' | b'#'
        )
}
