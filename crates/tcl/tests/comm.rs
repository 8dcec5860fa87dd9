//! `eval_comm` against the errorInfo tcllib comm 4.7 puts on the wire
//! (transcripts of spec §2.9, captured with Tcl 8.6.13).
#![allow(clippy::unwrap_used)]

use tclcomm_tcl::{Interpreter, code_of, eval_comm};
use tclcomm_wire::{Code, Outcome};

fn run(frags: &[&str]) -> Outcome {
    let tcl = Interpreter::new().unwrap();
    let frags: Vec<String> = frags.iter().map(|s| s.to_string()).collect();
    eval_comm(tcl.interp(), &frags)
}

fn ok(code: Code, result: &str) -> Outcome {
    Outcome {
        code,
        result: result.into(),
        errorinfo: String::new(),
        errorcode: String::new(),
    }
}

#[test]
fn sync_send_ok() {
    assert_eq!(run(&["set a 1"]), ok(Code::Ok, "1"));
}

#[test]
fn multi_fragment_double_eval() {
    let o = run(&["set", "b", "hello world"]);
    assert_eq!(o.code, Code::Error);
    assert_eq!(
        o.result,
        "wrong # args: should be \"set varName ?newValue?\""
    );
    assert_eq!(o.errorcode, "TCL WRONGARGS");
    assert_eq!(
        o.errorinfo,
        "wrong # args: should be \"set varName ?newValue?\"\n    while executing\n\"set b hello world\"\n    (\"uplevel\" body line 1)\n    invoked from within\n\"uplevel #0 set b {hello world}\"\n    invoked from within\n\"catch $thecmd ret\""
    );
}

#[test]
fn sync_send_error() {
    let o = run(&["error boom {my info} {MY CODE}"]);
    assert_eq!(o.code, Code::Error);
    assert_eq!(o.result, "boom");
    assert_eq!(o.errorcode, "MY CODE");
    assert_eq!(
        o.errorinfo,
        "my info\n    (\"uplevel\" body line 1)\n    invoked from within\n\"uplevel #0 {error boom {my info} {MY CODE}}\"\n    invoked from within\n\"catch $thecmd ret\""
    );
}

#[test]
fn runtime_error() {
    let o = run(&["expr 1/0"]);
    assert_eq!(o.code, Code::Error);
    assert_eq!(o.result, "divide by zero");
    assert_eq!(o.errorcode, "ARITH DIVZERO {divide by zero}");
    assert_eq!(
        o.errorinfo,
        "divide by zero\n    invoked from within\n\"expr 1/0\"\n    (\"uplevel\" body line 1)\n    invoked from within\n\"uplevel #0 {expr 1/0}\"\n    invoked from within\n\"catch $thecmd ret\""
    );
}

#[test]
fn command_error_default_errorcode() {
    let o = run(&["error oops"]);
    assert_eq!(o.errorcode, "NONE");
    assert_eq!(
        o.errorinfo,
        "oops\n    while executing\n\"error oops\"\n    (\"uplevel\" body line 1)\n    invoked from within\n\"uplevel #0 {error oops}\"\n    invoked from within\n\"catch $thecmd ret\""
    );
}

#[test]
fn break_continue_return_codes() {
    assert_eq!(run(&["break"]), ok(Code::Break, ""));
    assert_eq!(run(&["continue"]), ok(Code::Continue, ""));
    assert_eq!(run(&["return -code return xyz"]), ok(Code::Return, "xyz"));
    assert_eq!(run(&["return -code 5 five"]), ok(Code::Return, "five"));
    assert_eq!(run(&["return -code error x"]), ok(Code::Return, "x"));
    assert_eq!(
        run(&["return -level 0 -code 5 five"]),
        ok(Code::Other(5), "five")
    );
    assert_eq!(
        run(&["proc p {} {return -code 4 c}; p"]),
        ok(Code::Continue, "c")
    );
}

#[test]
fn zero_fragments() {
    let o = run(&[]);
    assert_eq!(o.code, Code::Error);
    assert_eq!(
        o.result,
        "wrong # args: should be \"uplevel ?level? command ?arg ...?\""
    );
}

#[test]
fn runs_at_global_level_and_binary_safe() {
    let tcl = Interpreter::new().unwrap();
    let i = tcl.interp();
    let frag = |s: &str| vec![s.to_string()];
    assert_eq!(i.eval_comm(&frag("set g 1; info level")).result, "0");
    assert_eq!(i.get_var("::g").unwrap().to_str(), "1");
    let s = "a\0bé中\u{FFFD}\n\r\tz";
    // One fragment, as `comm send id [list string length $s]` sends it.
    let o = i.eval_comm(&frag(&format!("string length {{{s}}}")));
    assert_eq!(o.result, "10");
    let o = i.eval_comm(&frag("set bin \"a\\x00b\u{e9}\u{4e2d}\\n\\r\\t\\{z\""));
    assert_eq!(o.result, "a\0bé中\n\r\t{z");
    assert_eq!(
        i.eval_comm(&frag("string repeat x 200000")).result.len(),
        200_000
    );
    // Repeated calls reuse the cached lambda; state persists between them.
    for n in 0..3 {
        assert_eq!(i.eval_comm(&frag("incr ctr")).result, (n + 1).to_string());
    }
}

#[test]
fn a_repeated_command_runs_what_is_defined_now() {
    // The latest command's object (and its bytecode) is kept for the next
    // request with the same text: what runs must follow redefinitions and
    // errors as a fresh evaluation would.
    let tcl = Interpreter::new().unwrap();
    let i = tcl.interp();
    let frag = |s: &str| vec![s.to_string()];
    i.eval_comm(&frag("proc f {} {return one}"));
    assert_eq!(i.eval_comm(&frag("f")).result, "one");
    i.eval_comm(&frag("proc f {} {return two}"));
    assert_eq!(i.eval_comm(&frag("f")).result, "two");
    i.eval_comm(&frag("rename f {}"));
    let gone = i.eval_comm(&frag("f"));
    assert_eq!(
        (gone.code.clone(), gone.result.as_str()),
        (Code::Error, "invalid command name \"f\"")
    );
    let again = i.eval_comm(&frag("f"));
    assert_eq!(again, gone, "the same error, errorInfo included");
    i.eval_comm(&frag("proc f {} {return three}"));
    assert_eq!(i.eval_comm(&frag("f")).result, "three");
    // The same text in another interpreter is compiled for that one.
    let other = Interpreter::new().unwrap();
    other.interp().eval_comm(&frag("proc f {} {return other}"));
    assert_eq!(other.interp().eval_comm(&frag("f")).result, "other");
    assert_eq!(i.eval_comm(&frag("f")).result, "three");
}

#[test]
fn big_literal_commands_run_as_parsed_scripts_do() {
    // From 1 MiB on, a command of literal words is invoked from its words
    // rather than parsed by Tcl: the outcome and the effects must be those
    // of Tcl's own parse (compared with `eval_outcome` of the same text,
    // in a second interpreter), for commands that take that path and for
    // some that must not.
    use tclcomm_wire::list::format_list;
    let value = "}{a} [b] $c \"d\" \\e ; f\n\té\0\u{1F600} ".repeat(50_000);
    let padding = "x".repeat(1 << 20);
    let scripts = [
        format_list(["set", "::v", value.as_str()]),
        format_list(["string", "length", value.as_str()]),
        format_list(["error", value.as_str(), "info", "MY CODE"]),
        format_list(["return", "-code", "7", value.as_str()]),
        format_list(["nosuchcommand", value.as_str()]),
        format!("set ::v {padding}; set ::w $::v"),
        format!("set ::v {{{padding}}}\nstring length $::v"),
    ];
    for script in scripts {
        assert!(script.len() >= 1 << 20);
        let (a, b) = (Interpreter::new().unwrap(), Interpreter::new().unwrap());
        let got = a.interp().eval_comm_owned(vec![script.clone()]);
        let want = b.interp().eval_outcome(&script);
        let head = &script[..40];
        assert_eq!(got.code, code_of(i64::from(want.code)), "{head}");
        assert_eq!(got.result, want.result, "{head}");
        assert_eq!(got.errorcode, want.errorcode, "{head}");
        assert_eq!(got.errorinfo, want.errorinfo, "{head}");
        for var in ["::v", "::w"] {
            let (x, y) = (a.interp().get_var(var), b.interp().get_var(var));
            assert_eq!(
                x.map(|o| o.to_str().into_owned()),
                y.map(|o| o.to_str().into_owned()),
                "{head} {var}"
            );
        }
    }
}
