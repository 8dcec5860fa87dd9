//! `tclcomm attach`: an interactive console to a remote interpreter, as
//! tkcon's attach.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use rustyline::error::ReadlineError;
use rustyline::history::{FileHistory, History};
use rustyline::{Config as EditorConfig, Editor};
use tclcomm::{Channel, Config, Error, Id, Script};
use tclcomm_wire::script::info_complete;
use tokio::runtime::Runtime;

use crate::send::{failure_of, runtime};
use crate::{Failure, Outcome};

/// Arguments of `tclcomm attach`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    tls: crate::tls::TlsArgs,

    /// The peer: PORT (on 127.0.0.1), HOST:PORT, or comm's "PORT HOST".
    #[arg(value_name = "ID", value_parser = crate::id::parse_id)]
    id: Id,

    /// The history file (default: $TCLCOMM_HISTORY, else
    /// $XDG_DATA_HOME/tclcomm/history or ~/.local/share/tclcomm/history,
    /// else ~/.tclcomm_history). History that cannot be read or written is
    /// simply not kept.
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
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
            Err(e) => eprintln!("{}", failure_of(&e, false).message),
        }
    }
}

/// What the console does with one line of input.
enum Step {
    /// The buffered command is not complete yet.
    More,
    /// A complete command was run (or was empty).
    Done(Option<String>),
    /// `exit`: end the session.
    Exit,
}

/// Adds `line` to `buffer`; runs the command once it is complete.
fn feed(session: &Session, buffer: &mut String, line: &str) -> Step {
    if !buffer.is_empty() {
        buffer.push('\n');
    }
    buffer.push_str(line);
    if !info_complete(buffer) {
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

/// Runs `tclcomm attach`.
pub(crate) fn run(args: Args) -> Outcome {
    let rt = runtime()?;
    let channel = rt
        .block_on(Channel::new(Config::new().transport(args.tls.transport()?)))
        .map_err(|e| Failure::local(format!("tclcomm: cannot create a channel: {e}")))?;
    rt.block_on(channel.connect(args.id.clone()))
        .map_err(|e| failure_of(&e, false))?;
    let session = Session {
        rt,
        channel,
        id: args.id,
    };
    if std::io::stdin().is_terminal() {
        interactive(&session, args.history.or_else(default_history))
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

/// With a terminal: line editing and history.
fn interactive(session: &Session, history: Option<PathBuf>) -> Outcome {
    let config = EditorConfig::builder()
        .auto_add_history(false)
        .max_history_size(1000)
        .map_err(|e| Failure::local(format!("tclcomm: line editor: {e}")))?;
    let mut editor: Editor<(), FileHistory> = Editor::with_config(config.build())
        .map_err(|e| Failure::local(format!("tclcomm: line editor: {e}")))?;
    if let Some(path) = &history {
        // A missing or unreadable file just means no history yet.
        let _ = editor.load_history(path);
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
