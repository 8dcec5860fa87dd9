//! [`eval_comm`]: evaluate received script fragments as tcllib comm does.

use std::rc::Rc;

use tclcomm_wire::{Code, Outcome};

use crate::{Interp, Obj};

/// The evaluation step of tcllib `comm::commExec` (comm 4.7, main-interp
/// case):
///
/// ```tcl
/// set thecmd [concat [list uplevel \#0] $buffer]
/// set err    [catch $thecmd ret]
/// ```
///
/// followed by what `commSendReply` reads (`global errorInfo errorCode`).
/// The `concat` is done in Rust ([`comm_command`]), so that a big script
/// is not held as both `$buffer` and `$thecmd` while it runs; the lambda
/// gets `$thecmd` and runs the rest verbatim.
/// Running the same bytecode shape (a compiled `catch` of a non-literal
/// script inside a procedure body) makes Tcl produce the same `errorInfo`
/// frames, down to `invoked from within "catch $thecmd ret"`.
const LAMBDA: &str = r#"{thecmd} {
    set err    [catch $thecmd ret]
    if {$err == 1} {
        global errorInfo errorCode
        return [list $err $ret $errorInfo $errorCode]
    }
    list $err $ret
}"#;

const CACHE_KEY: &str = "tclcomm-tcl::eval_comm";

/// Kept per interpreter: the lambda value, so `apply` compiles it once,
/// and the latest command run through it, with its text.
struct Lambda {
    lambda: Obj,
    latest: std::cell::RefCell<Option<(String, Obj)>>,
}

/// Commands up to this size are kept (one, the latest) for the next
/// request (see [`run_command`]).
const KEPT_COMMAND: usize = 4096;

/// Evaluates the script fragments of a `send`/`async`/`command` message at
/// global level with tcllib comm's semantics, and returns what comm would
/// put in the `reply`/`callback`.
///
/// The fragments are joined with `concat` semantics (Tk-`send` double
/// evaluation: `set b {hello world}` as three fragments runs
/// `set b hello world`), the completion code is `catch`'s (a top-level
/// `return -code error x` yields code 2, `break` code 3), and for code 1
/// `errorinfo`/`errorcode` are the global `::errorInfo`/`::errorCode`
/// afterwards, including tcllib's own frames:
///
/// ```text
/// my info
///     ("uplevel" body line 1)
///     invoked from within
/// "uplevel #0 {error boom {my info} {MY CODE}}"
///     invoked from within
/// "catch $thecmd ret"
/// ```
///
/// For other codes `errorinfo` and `errorcode` are empty (not transmitted).
///
/// The one input tcllib has that this function does not is the payload's
/// original wire text: the fragments are re-quoted as a canonical Tcl list,
/// which is byte-identical for payloads built with `list` (every comm
/// sender) and only changes the quoting shown in `errorInfo` otherwise.
pub fn eval_comm(interp: Interp<'_>, fragments: &[String]) -> Outcome {
    run_command(interp, comm_command(fragments))
}

/// [`eval_comm`] taking the fragments by value: they are freed once the
/// command is built, before it runs, so that a big script is held once
/// less during its evaluation.
pub fn eval_comm_owned(interp: Interp<'_>, mut fragments: Vec<String>) -> Outcome {
    let size: usize = fragments.iter().map(String::len).sum();
    if size >= BIG_SCRIPT {
        // Evaluated straight from our text at level #0 (what `uplevel #0`
        // does), not compiled through `catch $thecmd`: Tcl's compile would
        // hold two more copies of the script (the literal of the `uplevel`
        // word, then the literals of the script's own words). The result
        // and codes are the same; errorInfo ends at the script's own
        // frames, without tcllib's `uplevel`/`catch` lines.
        let script = if fragments.len() == 1 {
            fragments.pop().unwrap_or_default()
        } else {
            let joined = tclcomm_wire::script::concat(&fragments);
            drop(fragments);
            joined
        };
        let o = match literal_command(&script) {
            Some(words) => {
                let objv: Vec<Obj> = words.iter().map(|w| Obj::string(w)).collect();
                drop(words);
                drop(script);
                interp.eval_objv_outcome(&objv)
            }
            None => {
                let o = interp.eval_outcome(&script);
                drop(script);
                o
            }
        };
        return Outcome {
            code: code_of(i64::from(o.code)),
            result: o.result,
            errorinfo: o.errorinfo,
            errorcode: o.errorcode,
        };
    }
    let thecmd = comm_command(&fragments);
    drop(fragments);
    run_command(interp, thecmd)
}

/// The words of `script` when it is one command of literal words that
/// parse the same as a script and as a list: no substitution (`$`, `[`),
/// no quotes, no command separator (`;`, newline), no backslash-newline,
/// not a comment, and a valid list. What `list` writes for a command is
/// such a script. Tcl's parser makes a token of every backslash sequence
/// and every run between them, 24 bytes each: a big value that had to be
/// backslash-quoted (one byte in two escaped) would take twelve times its
/// size in tokens while being parsed. Such a command is invoked from its
/// words instead, parsed here at the cost of one copy.
fn literal_command(script: &str) -> Option<Vec<std::borrow::Cow<'_, str>>> {
    let bytes = script.as_bytes();
    // Plain bytes and simple backslash pairs (no hex, octal, Unicode or
    // backslash-newline sequence) from start to end, none of the stops.
    if tclcomm_wire::list::simple_run_end(bytes, 0, b"$[;\n\"") != bytes.len() {
        return None;
    }
    let first = bytes.iter().find(|&&b| !b" \t\x0b\x0c\r".contains(&b))?;
    if *first == b'#' {
        return None;
    }
    let words = tclcomm_wire::list::parse_list_cow(script).ok()?;
    (!words.is_empty()).then_some(words)
}

/// From this size on, a received script is evaluated directly rather than
/// through tcllib's `catch $thecmd` (see [`eval_comm_owned`]).
pub(crate) const BIG_SCRIPT: usize = 1 << 20;

/// tcllib's `concat [list uplevel \#0] $buffer` for `$buffer` the list of
/// the fragments as received: `concat` trims each argument and joins the
/// non-empty ones with a space, and a formatted list neither starts nor
/// ends with (unescaped) white space, so this is `uplevel #0` followed by
/// the list, if it is not empty.
pub fn comm_command(fragments: &[String]) -> String {
    let size: usize = fragments.iter().map(|f| f.len() + 3).sum();
    let mut thecmd = String::with_capacity(11 + size + size / 8);
    thecmd.push_str("uplevel #0");
    if !fragments.is_empty() {
        thecmd.push(' ');
        tclcomm_wire::list::format_list_into(fragments, &mut thecmd);
    }
    thecmd
}

fn run_command(interp: Interp<'_>, thecmd: String) -> Outcome {
    let lambda = match interp.assoc_data::<Lambda>(CACHE_KEY) {
        Some(l) => l,
        None => {
            let l = Rc::new(Lambda {
                lambda: Obj::string(LAMBDA),
                latest: Default::default(),
            });
            interp.set_assoc_data(CACHE_KEY, l.clone());
            l
        }
    };
    // A pure string, not a list, as tcllib's `$thecmd` (a `concat` of
    // strings): `catch` compiles it as a script. The same text as the
    // latest request's (a client polling, or looping over one command)
    // reuses its object, and with it the bytecode Tcl compiled into it
    // (and into the literal `uplevel` runs): Tcl recompiles it when it is
    // out of date (a command redefined, another interpreter), so what runs
    // is the same; only the compile is saved.
    let kept = lambda
        .latest
        .borrow()
        .as_ref()
        .filter(|(text, _)| *text == thecmd)
        .map(|(_, obj)| obj.clone());
    let thecmd = match kept {
        Some(obj) => obj,
        None => {
            let obj = Obj::string(&thecmd);
            if thecmd.len() <= KEPT_COMMAND {
                *lambda.latest.borrow_mut() = Some((thecmd, obj.clone()));
            } else {
                // Not held a second time while it runs.
                drop(thecmd);
            }
            obj
        }
    };
    let r = interp.eval_objv(&[Obj::string("::apply"), lambda.lambda.clone(), thecmd]);
    match r {
        Ok(list) => outcome_of(&list),
        // Only if `apply` itself failed (e.g. redefined by a script).
        Err(e) => Outcome {
            code: code_of(i64::from(e.code)),
            result: e.result,
            errorinfo: e.errorinfo.unwrap_or_default(),
            errorcode: e.errorcode.unwrap_or_default(),
        },
    }
}

fn outcome_of(list: &Obj) -> Outcome {
    let items = list.list_elements().unwrap_or_default();
    let text = |i: usize| {
        items
            .get(i)
            .map(|o| o.to_str().into_owned())
            .unwrap_or_default()
    };
    let code = items.first().and_then(|c| c.to_i64().ok()).unwrap_or(1);
    Outcome {
        code: code_of(code),
        result: text(1),
        errorinfo: text(2),
        errorcode: text(3),
    }
}

/// The wire [`Code`] of a numeric completion code.
pub fn code_of(code: i64) -> Code {
    Code::from(code)
}

impl Interp<'_> {
    /// [`eval_comm`] as a method.
    pub fn eval_comm(&self, fragments: &[String]) -> Outcome {
        eval_comm(*self, fragments)
    }

    /// [`eval_comm_owned`] as a method.
    pub fn eval_comm_owned(&self, fragments: Vec<String>) -> Outcome {
        eval_comm_owned(*self, fragments)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::literal_command;

    #[test]
    fn list_formatted_commands_are_literal() {
        let big = "}{a} [b] $c \"d\" \\e ; f\n\té\0".repeat(100);
        for words in [
            vec!["set", "::p", big.as_str()],
            vec!["set", "x", "plain"],
            vec!["puts", "{a b}", "é"],
        ] {
            let script = tclcomm_wire::list::format_list(&words);
            let got = literal_command(&script).unwrap();
            assert_eq!(got, words, "{script:?}");
        }
    }

    #[test]
    fn scripts_tcl_reads_otherwise_are_not() {
        for script in [
            // Substitutions, separators, quotes, comments.
            "set x $y",
            "set x [y]",
            "set x {a $y}",
            "set x 1; set y 2",
            "set x 1\nset y 2",
            "set x \"a b\"",
            "# set x 1",
            "  #set x 1",
            // Backslash-newline (a word separator in a script, even in
            // braces), sequences beyond the simple ones, a trailing
            // backslash.
            "set x a\\\nb",
            "set x {a\\\nb}",
            "set x \\x41",
            "set x \\u00e9",
            "set x \\101",
            "set x a\\",
            // Not a list (expansion, junk after braces), or no command.
            "set x {*}{a b}",
            "set x {a}b",
            "   ",
            "",
        ] {
            assert!(literal_command(script).is_none(), "{script:?}");
        }
    }
}
