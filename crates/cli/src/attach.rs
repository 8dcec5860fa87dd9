//! `tclcomm attach`: an interactive console to a remote interpreter, as
//! tkcon's attach.
//!
//! - Completeness as tclsh judges it: a line is added to the command until
//!   `info complete` holds for the text *with its newline* (so a line ending
//!   in a backslash continues, as in tclsh).
//! - One history entry per command (a multi-line command is one entry);
//!   Up/Down always move through the history (never into the lines of a
//!   recalled multi-line entry), and an entry passed through is never edited.
//! - Tab completes commands, procs and namespaces (or `$`variables) by
//!   asking the remote interpreter (`info commands`, `info procs`,
//!   `namespace children`, `info vars`).
//! - Where the remote is `tclcomm serve`, what its scripts write to stdout
//!   and stderr is shown in the console too (serve forwards it to attached
//!   consoles); other peers (tclsh, wish) print on their own terminal.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::{FileHistory, History};
use rustyline::validate::Validator;
use rustyline::{
    Cmd, CompletionType, Config as EditorConfig, Context, Editor, Helper, KeyCode, KeyEvent,
    Modifiers,
};
use tclcomm::{Channel, Config, Dispatcher, Error, Id, Script};
use tclcomm_wire::list::{format_list, parse_list};
use tclcomm_wire::script::info_complete;
use tokio::runtime::Runtime;

use crate::send::failure_of;
use crate::{Failure, Outcome};

/// Arguments of `tclcomm attach`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    tls: crate::tls::TlsArgs,

    /// The peer: PORT (on 127.0.0.1), HOST:PORT, [V6]:PORT, comm's "PORT
    /// HOST", or a NAME bound at the name server (see --names).
    #[arg(value_name = "ID|NAME")]
    target: String,

    #[command(flatten)]
    names: crate::names::NamesArg,

    /// The history file (default: $TCLCOMM_HISTORY, else
    /// $XDG_DATA_HOME/tclcomm/history or ~/.local/share/tclcomm/history,
    /// else ~/.tclcomm_history). History that cannot be read or written is
    /// simply not kept.
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,

    #[command(flatten)]
    auth: crate::auth::AuthArgs,
}

/// Where the history lives unless `--history` says.
fn default_history() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TCLCOMM_HISTORY") {
        return Some(PathBuf::from(p));
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| home.as_ref().map(|h| h.join(".local/share")));
    if let Some(dir) = data.map(|d| d.join("tclcomm"))
        && std::fs::create_dir_all(&dir).is_ok()
    {
        return Some(dir.join("history"));
    }
    home.map(|h| h.join(".tclcomm_history"))
}

/// One session: the channel, and how to show what comes back.
struct Session {
    rt: Runtime,
    channel: Channel,
    id: Id,
}

impl Session {
    /// Sends one complete command as one fragment and shows the answer:
    /// the result on stdout, an error on stderr prefixed `error: `.
    fn eval(&self, command: &str) {
        let answer = self
            .rt
            .block_on(self.channel.send(self.id.clone(), Script::from(command)));
        match answer {
            Ok(result) => {
                if !result.is_empty() {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(result.as_bytes());
                    let _ = out.write_all(b"\n");
                    let _ = out.flush();
                }
            }
            Err(Error::Remote(r)) => eprintln!("error: {}", r.message),
            // Not fatal: the next command connects again, as comm does.
            Err(e) => eprintln!("{}", failure_of(&e, &self.id, false).message),
        }
    }

    /// Asks the remote for completions of `word`; none on any failure
    /// (a Tab must never hang the console: 2 s at most).
    fn candidates(&self, word: &str) -> Vec<String> {
        let script = format_list(["apply", COMPLETE, word]);
        let answer = self.rt.block_on(self.channel.send_timeout(
            self.id.clone(),
            Script::from(script),
            Duration::from_secs(2),
        ));
        answer
            .ok()
            .and_then(|list| parse_list(&list).ok())
            .unwrap_or_default()
    }
}

/// The remote half of Tab completion: a lambda for `apply` taking the word
/// (glob characters in it match literally). A word starting with `$` is a
/// variable (`info vars`), else a command (`info commands`, `info procs`);
/// both also complete namespaces (`namespace children`), shown with a
/// trailing `::`, relative or absolute as the word is.
const COMPLETE: &str = r#"{w} {
    set var [expr {[string index $w 0] eq "$"}]
    set name [expr {$var ? [string range $w 1 end] : $w}]
    set glob [string map {\\ \\\\ * \\* ? \\? [ \\[ ] \\]} $name]
    set out {}
    if {$var} {
        foreach n [info vars $glob*] {lappend out $n}
    } else {
        foreach n [info commands $glob*] {lappend out $n}
        foreach n [info procs $glob*] {lappend out $n}
    }
    set parent [namespace qualifiers $name]
    if {$parent eq "" && [string match ::* $name]} {set parent ::}
    if {$parent eq ""} {set parent ::}
    if {[namespace exists $parent]} {
        foreach n [namespace children $parent] {
            set shown [expr {[string match ::* $name] ? $n : [string range $n 2 end]}]
            if {[string match $glob* $shown]} {lappend out ${shown}::}
        }
    }
    set res {}
    foreach n [lsort -unique $out] {lappend res [expr {$var ? "\$$n" : $n}]}
    return $res
}"#;

/// The line editor's helper: Tab completion through the session.
struct Console<'a> {
    session: &'a Session,
}

/// Where the word under the cursor starts: after the last character that
/// separates Tcl words or opens a command.
fn word_start(line: &str, pos: usize) -> usize {
    line[..pos]
        .char_indices()
        .rev()
        .find(|(_, c)| c.is_whitespace() || "[]{};\"".contains(*c))
        .map_or(0, |(i, c)| i + c.len_utf8())
}

impl Completer for Console<'_> {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let start = word_start(line, pos);
        let word = &line[start..pos];
        let pairs = self
            .session
            .candidates(word)
            .into_iter()
            .map(|c| Pair {
                display: c.clone(),
                replacement: c,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for Console<'_> {
    type Hint = String;
}
impl Highlighter for Console<'_> {}
impl Validator for Console<'_> {}
impl Helper for Console<'_> {}

/// What the console does with one line of input.
enum Step {
    /// The buffered command is not complete yet.
    More,
    /// A complete command was run (or was empty).
    Done(Option<String>),
    /// `exit`: end the session.
    Exit,
}

/// Whether `command` is complete as tclsh judges it: tclsh adds the newline
/// before asking `info complete`, so a trailing backslash (a
/// backslash-newline) continues the command.
fn complete_as_tclsh(command: &str) -> bool {
    let mut with_newline = String::with_capacity(command.len() + 1);
    with_newline.push_str(command);
    with_newline.push('\n');
    info_complete(&with_newline)
}

/// Adds `line` to `buffer`; runs the command once it is complete.
fn feed(session: &Session, buffer: &mut String, line: &str) -> Step {
    if !buffer.is_empty() {
        buffer.push('\n');
    }
    buffer.push_str(line);
    if !complete_as_tclsh(buffer) {
        return Step::More;
    }
    let command = std::mem::take(buffer);
    let trimmed = command.trim();
    if trimmed.is_empty() {
        return Step::Done(None);
    }
    if trimmed == "exit" {
        return Step::Exit;
    }
    session.eval(&command);
    Step::Done(Some(command))
}

/// Asks a `tclcomm serve` peer to forward its stdout/stderr to this
/// console (`::tclcomm::serve::forward`, see serve.rs). Other peers have no
/// such command: nothing is asked of them beyond `info commands`.
fn ask_for_output(session: &Session) -> bool {
    let probe = session.rt.block_on(session.channel.send_timeout(
        session.id.clone(),
        Script::from("info commands ::tclcomm::serve::forward"),
        Duration::from_secs(5),
    ));
    if !matches!(probe, Ok(ref r) if !r.is_empty()) {
        return false;
    }
    // serve sends the output back to `comm remoteid`: this channel's port,
    // on the address it sees us at.
    session
        .rt
        .block_on(session.channel.send_timeout(
            session.id.clone(),
            Script::from("::tclcomm::serve::forward"),
            Duration::from_secs(5),
        ))
        .is_ok()
}

/// The command a serve peer calls with its output: `tclcomm_output STREAM
/// TEXT`.
///
/// Printed at once, from the runtime's thread: during a command that is
/// before its result (serve writes it first). rustyline's external printer
/// would redraw the prompt around output that comes while one is shown,
/// but with it typed-ahead input stalls (keys after the first wait for the
/// next key press), so it is not used.
fn output_commands() -> Dispatcher {
    let commands = Dispatcher::new();
    commands.register("tclcomm_output", move |_call, args| {
        let [stream, text] = args else {
            return Ok(String::new());
        };
        if stream == "stderr" {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(text.as_bytes());
            let _ = err.flush();
        } else {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
        Ok(String::new())
    });
    commands
}

/// Runs `tclcomm attach`.
pub(crate) fn run(args: Args) -> Outcome {
    // Two threads: the channel's tasks (forwarded output) run while the
    // main thread waits in the line editor.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| Failure::local(format!("tclcomm: cannot start the runtime: {e}")))?;
    // Listening (on 127.0.0.1, a port the system assigns) so that a serve
    // peer can send its output back.
    // Over TLS the console only sends (it has no certificate to accept
    // serve's output connections with), so serve's output stays there.
    let transport = args.tls.transport()?;
    let listen = matches!(transport, tclcomm::Transport::Tcp);
    let mut config = Config::new()
        .listen(listen)
        .evaluator(output_commands())
        .transport(transport);
    config.auth = args.auth.config()?;
    let lookup = Config {
        evaluator: None,
        ..config.clone()
    };
    let id = rt.block_on(crate::names::resolve_target(
        &args.target,
        &args.names,
        lookup,
    ))?;
    let channel = rt
        .block_on(Channel::new(config))
        .map_err(|e| Failure::local(format!("tclcomm: cannot create a channel: {e}")))?;
    rt.block_on(channel.connect(id.clone()))
        .map_err(|e| failure_of(&e, &id, false))?;
    let session = Session { rt, channel, id };
    let forwarded = ask_for_output(&session);
    if std::io::stdin().is_terminal() {
        interactive(&session, args.history.or_else(default_history), forwarded)
    } else {
        piped(&session)
    }
}

/// Without a terminal: lines from stdin, the same completion rules, no prompts.
fn piped(session: &Session) -> Outcome {
    let mut buffer = String::new();
    let stdin = std::io::stdin();
    let mut line = String::new();
    let mut input = stdin.lock();
    loop {
        line.clear();
        match input.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                return Err(Failure::comm(format!(
                    "tclcomm: cannot read standard input: {e}"
                )));
            }
        }
        let text = line.strip_suffix('\n').unwrap_or(&line);
        let text = text.strip_suffix('\r').unwrap_or(text);
        if let Step::Exit = feed(session, &mut buffer, text) {
            return Ok(());
        }
    }
    if !buffer.trim().is_empty() {
        eprintln!("error: incomplete command at end of input");
    }
    Ok(())
}

/// With a terminal: line editing, history, completion.
fn interactive(session: &Session, history: Option<PathBuf>, forwarded: bool) -> Outcome {
    let config = EditorConfig::builder()
        .auto_add_history(false)
        .completion_type(CompletionType::List)
        .max_history_size(1000)
        .map_err(|e| Failure::local(format!("tclcomm: line editor: {e}")))?;
    let mut editor: Editor<Console<'_>, FileHistory> = Editor::with_config(config.build())
        .map_err(|e| Failure::local(format!("tclcomm: line editor: {e}")))?;
    editor.set_helper(Some(Console { session }));
    // Up/Down walk the history, whole entries at a time: by default they
    // first move between the lines of a multi-line entry, which put the
    // cursor inside a recalled command (and typing edited it there).
    editor.bind_sequence(KeyEvent(KeyCode::Up, Modifiers::NONE), Cmd::PreviousHistory);
    editor.bind_sequence(KeyEvent(KeyCode::Down, Modifiers::NONE), Cmd::NextHistory);
    if let Some(path) = &history {
        // A missing or unreadable file just means no history yet.
        let _ = editor.load_history(path);
    }
    if !forwarded {
        eprintln!(
            "tclcomm: attached to {}; its puts output stays on its own terminal \
             (only tclcomm serve forwards it). Ctrl-D ends.",
            session.id
        );
    }
    let prompt = format!("{}% ", session.id);
    let mut buffer = String::new();
    loop {
        let p = if buffer.is_empty() {
            prompt.as_str()
        } else {
            "> "
        };
        match editor.readline(p) {
            Ok(line) => match feed(session, &mut buffer, &line) {
                Step::More | Step::Done(None) => {}
                Step::Done(Some(command)) => {
                    let _ = editor.add_history_entry(command.as_str());
                    if let Some(path) = &history {
                        // Unwritable history is not an error.
                        let _ = editor.history_mut().append(path);
                    }
                }
                Step::Exit => break,
            },
            Err(ReadlineError::Interrupted) => {
                // Ctrl-C drops what was typed so far.
                buffer.clear();
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(Failure::local(format!("tclcomm: reading input: {e}"))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{complete_as_tclsh, word_start};

    #[test]
    fn backslash_newline_continues_as_in_tclsh() {
        assert!(!complete_as_tclsh("list a \\"));
        assert!(complete_as_tclsh("list a \\\nb"));
        assert!(complete_as_tclsh("list a \\\\"));
        assert!(!complete_as_tclsh("proc f {} {"));
        assert!(complete_as_tclsh("set x 1"));
    }

    #[test]
    fn words_start_after_separators() {
        assert_eq!(word_start("set x [info co", 14), 12);
        assert_eq!(word_start("set x [inf", 10), 7);
        assert_eq!(word_start("puts $::tc", 10), 5);
        assert_eq!(word_start("comm", 4), 0);
        assert_eq!(word_start("a;b", 3), 2);
        assert_eq!(word_start("x {é", 5), 3);
    }
}
