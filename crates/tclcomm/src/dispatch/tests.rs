#![allow(clippy::unwrap_used)]
//! Expected values were taken from Tcl 8.6.13 (`catch $script r opts`).

use std::sync::{Arc, Mutex};

use proptest::prelude::*;

use super::list::format_list;
use super::*;

/// A dispatcher with `echo`, which returns its arguments as a list.
fn d() -> Dispatcher {
    let d = Dispatcher::new();
    d.register("echo", |_, args| Ok(format_list(args)));
    d
}

fn ok(script: &str) -> String {
    match d().eval(script) {
        Ok(r) => r,
        Err(e) => panic!("{script:?} failed: {e:?}"),
    }
}

/// (code, message, errorcode, errorinfo)
fn err(script: &str) -> (i32, String, String, String) {
    let e = d().eval(script).unwrap_err();
    (
        e.code(),
        e.message().to_owned(),
        e.errorcode().to_owned(),
        e.errorinfo().to_owned(),
    )
}

fn error_info(message: &str, command: &str) -> String {
    format!("{message}\n    while executing\n\"{command}\"")
}

#[test]
fn empty_scripts_give_empty_result() {
    for s in ["", "   ", "\n\n", ";;", "# only a comment", " ; \n ;"] {
        assert_eq!(ok(s), "", "{s:?}");
    }
}

#[test]
fn result_is_last_command() {
    assert_eq!(ok("list a;list b ;"), "b");
    assert_eq!(ok("list {a}   ;   list c   "), "c");
    assert_eq!(ok("list a\nlist b\n"), "b");
    assert_eq!(ok("list a;"), "a");
}

#[test]
fn words_and_quoting() {
    assert_eq!(ok("echo a\tb  c"), "a b c");
    assert_eq!(ok("echo {a b} \"c d\" e"), "{a b} {c d} e");
    assert_eq!(ok("echo {a {b} c}"), "{a {b} c}");
    assert_eq!(ok("echo {$x [y] \\n}"), "{$x [y] \\n}");
    assert_eq!(ok("echo \"a\\\" b\""), "{a\" b}");
    assert_eq!(ok("echo a\"b c{d"), "a\\\"b c\\{d");
    assert_eq!(
        ok("echo \"{\" \\{ \"a b\" \"$ \\[\" ab\\]c"),
        "\\{ \\{ {a b} {$ [} ab\\]c"
    );
    assert_eq!(ok("echo a]b"), "a\\]b");
    assert_eq!(ok("echo {}"), "{}");
    assert_eq!(ok("echo \"\""), "{}");
}

#[test]
fn backslash_sequences() {
    assert_eq!(
        d().eval("list \\x414 \\u00e9z \\400 \\777 \\xg \\ug a\\  \\x4142")
            .unwrap(),
        "A4 éz { 0} ?7 xg ug {a } A42"
    );
    assert_eq!(
        d().eval("list \\u \\u12 \\U \\U00110000 \\U0010FFFFF \\uD83D\\uDE00 \\U1F600")
            .unwrap(),
        format_list(&["u", "\u{12}", "U", "\u{11000}0", "\u{10FFFF}F", "😀", "😀"])
    );
    assert_eq!(
        d().eval("list \\a\\b\\f\\v\\r\\n\\t \\0 \\101 \\q \\é")
            .unwrap(),
        format_list(&["\x07\x08\x0c\x0b\r\n\t", "\0", "A", "q", "é"])
    );
    assert_eq!(ok("list \\uD800x"), "\u{FFFD}x");
    // A trailing backslash is literal.
    assert_eq!(ok("list a\\"), "a\\\\");
}

#[test]
fn backslash_newline() {
    assert_eq!(ok("list a\\\n   b"), "a b");
    assert_eq!(ok("list {a\\\n   b}"), "{a b}");
    assert_eq!(ok("list \"a\\\n \tb\""), "{a b}");
    assert_eq!(ok("list {a}\\\nb"), "a b");
    assert_eq!(ok("list \\\n  a"), "a");
    // Inside braces other backslash sequences stay verbatim.
    assert_eq!(ok("list {a\\nb}"), "{a\\nb}");
}

#[test]
fn comments() {
    assert_eq!(ok("# comment \\\n continued\nlist a ; # c2\nlist b"), "b");
    assert_eq!(ok("  # comment ; list x\nlist y"), "y");
    assert_eq!(ok("list a # not a comment"), "a # not a comment");
    assert_eq!(ok("list [# c ]\nlist z]"), "z");
    assert_eq!(ok("# {\nlist ok"), "ok");
}

#[test]
fn command_substitution() {
    assert_eq!(ok("list [list a b] c"), "{a b} c");
    assert_eq!(ok("list x[]y"), "xy");
    assert_eq!(ok("list \"a]\" [list b]x]"), "a\\] bx\\]");
    assert_eq!(ok("list [list a]b]"), "ab\\]");
    assert_eq!(ok("list [\nlist a\nlist b]"), "b");
    assert_eq!(ok("list [list {a]}] \"[list c]\""), "{a\\]} c");
    assert_eq!(ok("list [list [list [list deep]]]"), "deep");
    assert_eq!(ok("list [list a;list b]"), "b");
}

#[test]
fn expansion() {
    assert_eq!(ok("list {*}{a b {c d}} {*}\"x y\" {*} "), "a b {c d} x y *");
    assert_eq!(ok("list {*}{}"), "");
    assert_eq!(ok("list {*}{a} {*}"), "a *");
    assert_eq!(ok("list {*}[list a b] c"), "a b c");
    assert_eq!(ok("{*}{list a} b"), "a b");
    assert_eq!(ok("list \\{*\\}{a b}"), "\\{*\\}\\{a b\\}");
    assert_eq!(ok("list \"{*}a b\""), "{{*}a b}");
    assert_eq!(ok("{*}{}"), "");
    assert_eq!(ok("list [list {*}]"), "*");
    let (code, msg, ec, ei) = err("list {*}\"a \\{\"");
    assert_eq!((code, msg.as_str()), (1, "unmatched open brace in list"));
    assert_eq!(ec, "TCL VALUE LIST BRACE");
    assert_eq!(ei, error_info(&msg, "list {*}\"a \\{\""));
}

#[test]
fn parse_errors_have_tcl_messages() {
    let cases: &[(&str, &str, &str)] = &[
        ("list {a", "missing close-brace", "list {"),
        ("list {a #x", "missing close-brace", "list {"),
        (
            "list x\nlist {a\n#x {",
            "missing close-brace: possible unbalanced brace in comment",
            "list {",
        ),
        ("list \"a", "missing \"", "list \""),
        ("list [list a", "missing close-bracket", "list ["),
        (
            "list {a}b",
            "extra characters after close-brace",
            "list {a}b",
        ),
        (
            "list {a}{b}",
            "extra characters after close-brace",
            "list {a}{",
        ),
        (
            "list \"a\"b",
            "extra characters after close-quote",
            "list \"a\"b",
        ),
        ("list {*}{a {b", "missing close-brace", "list {*}{"),
        (
            "list {*}{*}{a b}",
            "extra characters after close-brace",
            "list {*}{*}{",
        ),
        ("list x [list {a]", "missing close-brace", "list x [list {"),
        ("list x [list \"a]", "missing \"", "list x [list \""),
        (
            "list ${a",
            "missing close-brace for variable name",
            "list ${",
        ),
        ("list a$ $(", "missing )", "list a$ $("),
        (
            "list \"é\"é",
            "extra characters after close-quote",
            "list \"é\"",
        ),
    ];
    for (script, message, command) in cases {
        let (code, msg, ec, ei) = err(script);
        assert_eq!(code, 1, "{script:?}");
        assert_eq!(msg, *message, "{script:?}");
        assert_eq!(ec, "NONE", "{script:?}");
        assert_eq!(ei, error_info(message, command), "{script:?}");
    }
}

#[test]
fn commands_before_a_syntax_error_run() {
    let ran = Arc::new(Mutex::new(Vec::new()));
    let d = Dispatcher::new();
    let r = Arc::clone(&ran);
    d.register("note", move |_, args| {
        r.lock().unwrap().push(args.join(" "));
        Ok(String::new())
    });
    let e = d.eval("note a\nnote [note b] {c\n").unwrap_err();
    assert_eq!(e.message(), "missing close-brace");
    // The whole failing command is parsed before any of it runs.
    assert_eq!(*ran.lock().unwrap(), ["a"]);
}

#[test]
fn unknown_command() {
    let (code, msg, ec, ei) = err("nosuch a b");
    assert_eq!(
        (code, msg.as_str(), ec.as_str()),
        (
            1,
            "invalid command name \"nosuch\"",
            "TCL LOOKUP COMMAND nosuch"
        )
    );
    assert_eq!(ei, error_info(&msg, "nosuch a b"));
    let (_, msg, ec, ei) = err("list \"a\" \"b\" [nosuch \"c d\"]");
    assert_eq!(msg, "invalid command name \"nosuch\"");
    assert_eq!(ec, "TCL LOOKUP COMMAND nosuch");
    assert_eq!(ei, error_info(&msg, "nosuch \"c d\""));
    let (_, msg, ec, _) = err("{a b} x");
    assert_eq!(msg, "invalid command name \"a b\"");
    assert_eq!(ec, "TCL LOOKUP COMMAND {a b}");
}

#[test]
fn variables_are_refused() {
    let cases: &[(&str, &str, &str)] = &[
        ("list $x", "x", "x"),
        ("list [list x] $y", "y", "y"),
        ("list ${a b}", "a b", "{a b}"),
        ("list $a:b", "a", "a"),
        ("list $a::b:", "a::b", "a::b"),
        ("list $::x", "::x", "::x"),
        ("list \"$x(a b)\"", "x(a b)", "x"),
        ("list $x([list i])", "x(i)", "x"),
    ];
    for (script, shown, name) in cases {
        let (code, msg, ec, ei) = err(script);
        let want = format!("can't read \"{shown}\": no such variable");
        assert_eq!((code, &msg), (1, &want), "{script:?}");
        assert_eq!(ec, format!("TCL LOOKUP VARNAME {name}"), "{script:?}");
        assert_eq!(ei, error_info(&want, script), "{script:?}");
    }
    // Command substitution in an index runs before the read fails.
    let (_, msg, _, ei) = err("list $x(a[nosuch])");
    assert_eq!(msg, "invalid command name \"nosuch\"");
    assert_eq!(ei, error_info(&msg, "nosuch"));
    // A `$` without a name is literal.
    assert_eq!(ok("list $ a$ $é"), "{$} {a$} {$é}");
}

#[test]
fn error_command() {
    let (code, msg, ec, ei) = err("error boom {my info} {MY CODE}");
    assert_eq!(
        (code, msg.as_str(), ec.as_str(), ei.as_str()),
        (1, "boom", "MY CODE", "my info")
    );
    assert_eq!(
        err("error oops"),
        (
            1,
            "oops".into(),
            "NONE".into(),
            error_info("oops", "error oops")
        )
    );
    assert_eq!(
        err("error oops {} {}"),
        (
            1,
            "oops".into(),
            String::new(),
            error_info("oops", "error oops {} {}")
        )
    );
    assert_eq!(err("error oops info").3, "info");
    assert_eq!(err("list [error oops info]").3, "info");
    assert_eq!(err("error oops   ;").3, error_info("oops", "error oops   "));
    let usage = "wrong # args: should be \"error message ?errorInfo? ?errorCode?\"";
    for s in ["error", "error a b c d"] {
        let (code, msg, ec, ei) = err(s);
        assert_eq!(
            (code, msg.as_str(), ec.as_str()),
            (1, usage, "TCL WRONGARGS")
        );
        assert_eq!(ei, error_info(usage, s));
    }
}

#[test]
fn nested_errors_log_the_innermost_command_once() {
    assert_eq!(err("list [error x]").3, error_info("x", "error x"));
    assert_eq!(err("list [list [error x]]").3, error_info("x", "error x"));
    assert_eq!(
        err("  list [\n  error a\n  ]").3,
        error_info("a", "error a")
    );
}

#[test]
fn long_commands_are_cut_in_errorinfo() {
    let msg = "invalid command name \"nosuch\"";
    let long = format!("nosuch {}", "y".repeat(200));
    assert_eq!(
        err(&long).3,
        error_info(msg, &format!("{}...", &long[..150]))
    );
    // Cut at 150 bytes, backing off to a character boundary (7 + 71 * 2).
    let wide = format!("nosuch {}", "é".repeat(200));
    assert_eq!(
        err(&wide).3,
        error_info(msg, &format!("{}...", &wide[..149]))
    );
}

#[test]
fn return_command() {
    let d = d();
    let e = d.eval("return x").unwrap_err();
    assert_eq!(
        (e.code(), e.message(), e.errorinfo()),
        (CODE_RETURN, "x", "")
    );
    assert_eq!(
        d.eval("return -code error x").unwrap_err().code(),
        CODE_RETURN
    );
    assert_eq!(
        d.eval("return -code 5 five").unwrap_err().code(),
        CODE_RETURN
    );
    assert_eq!(
        d.eval("return -level 2 -code 3").unwrap_err().code(),
        CODE_RETURN
    );
    let e = d.eval("return -code").unwrap_err();
    assert_eq!((e.code(), e.message()), (CODE_RETURN, "-code"));
    let e = d.eval("return -code 3").unwrap_err();
    assert_eq!((e.code(), e.message()), (CODE_RETURN, ""));
    let e = d.eval("return -level 0 -code 5 x").unwrap_err();
    assert_eq!((e.code(), e.message()), (5, "x"));
    assert_eq!(
        d.eval("return -level 0 -code break").unwrap_err().code(),
        CODE_BREAK
    );
    assert_eq!(d.eval("return -level 0 -code 0x10").unwrap_err().code(), 16);
    assert_eq!(
        d.eval("return -level 0 -code \" 7 \"").unwrap_err().code(),
        7
    );
    assert_eq!(d.eval("return -level 0 -code ok x").unwrap(), "x");
    assert_eq!(d.eval("return -code 0 -level 0 -foo bar x").unwrap(), "x");
    assert_eq!(
        d.eval("return -options {-code 5} x").unwrap_err().code(),
        CODE_RETURN
    );
    // An early return stops the script.
    let e = d.eval("nosuch [return 7]; list").unwrap_err();
    assert_eq!((e.code(), e.message()), (CODE_RETURN, "7"));
}

#[test]
fn return_errors() {
    assert_eq!(
        err("return -level 0 -code error x"),
        (
            1,
            "x".into(),
            "NONE".into(),
            error_info("x", "return -level 0 -code error x")
        )
    );
    assert_eq!(
        err("return -level 0 -code error -errorinfo foo -errorcode {A B} x"),
        (1, "x".into(), "A B".into(), "foo".into())
    );
    assert_eq!(
        err("return -level 0 -code 1 -errorinfo {} x").3,
        error_info("x", "return -level 0 -code 1 -errorinfo {} x")
    );
    let s = "return -level 0 -options {-code error -errorcode {X Y}} x";
    assert_eq!(err(s), (1, "x".into(), "X Y".into(), error_info("x", s)));
    let bad_code = |c: &str| {
        format!(
            "bad completion code \"{c}\": must be ok, error, return, break, continue, or an integer"
        )
    };
    for (s, msg, ec) in [
        (
            "return -code foo x",
            bad_code("foo"),
            "TCL RESULT ILLEGAL_CODE",
        ),
        (
            "return -level 0 -code ERROR",
            bad_code("ERROR"),
            "TCL RESULT ILLEGAL_CODE",
        ),
        (
            "return -level x x",
            "bad -level value: expected non-negative integer but got \"x\"".into(),
            "TCL RESULT ILLEGAL_LEVEL",
        ),
        (
            "return -level -1 x",
            "bad -level value: expected non-negative integer but got \"-1\"".into(),
            "TCL RESULT ILLEGAL_LEVEL",
        ),
        (
            "return -options {a} x",
            "expected dict but got \"a\"".into(),
            "TCL RESULT ILLEGAL_OPTIONS",
        ),
        (
            "return -options {-code} x",
            "expected dict but got \"-code\"".into(),
            "TCL RESULT ILLEGAL_OPTIONS",
        ),
    ] {
        assert_eq!(
            err(s),
            (1, msg.clone(), ec.into(), error_info(&msg, s)),
            "{s:?}"
        );
    }
}

#[test]
fn break_and_continue() {
    assert_eq!(
        err("break"),
        (CODE_BREAK, String::new(), "NONE".into(), String::new())
    );
    assert_eq!(err("continue").0, CODE_CONTINUE);
    assert_eq!(err("break x").1, "wrong # args: should be \"break\"");
    assert_eq!(err("list [continue] [nosuch]").0, CODE_CONTINUE);
}

#[test]
fn concat_command() {
    assert_eq!(
        ok("concat \" a \" \"b\\ \" \" c\\\\ \" \"\" \"  \""),
        "a b c\\ "
    );
    assert_eq!(ok("concat {a b} {c {d e}}"), "a b c {d e}");
    assert_eq!(ok("concat"), "");
}

#[test]
fn registered_commands_and_calls() {
    let d = Dispatcher::empty();
    assert!(d.command_names().is_empty());
    d.register("name", |call, _| Ok(call.name().to_owned()));
    d.register("eval", |call, args| {
        let script = args.join(" ");
        call.eval(&script)
    });
    assert_eq!(d.eval("name").unwrap(), "name");
    assert_eq!(d.eval("eval name").unwrap(), "name");
    assert!(d.has_command("eval"));
    assert_eq!(d.command_names(), ["eval", "name"]);
    // Errors crossing an evaluation level get "invoked from within".
    let e = d.eval("eval nosuch").unwrap_err();
    assert_eq!(
        e.errorinfo(),
        "invalid command name \"nosuch\"\n    while executing\n\"nosuch\"\n    invoked from within\n\"eval nosuch\""
    );
    // Replacing and removing.
    d.register("name", |_, _| Ok("other".into()));
    assert_eq!(d.eval("name").unwrap(), "other");
    assert!(d.unregister("name"));
    assert!(!d.unregister("name"));
    assert_eq!(
        d.eval("name").unwrap_err().message(),
        "invalid command name \"name\""
    );
    // Built-ins can be replaced.
    let d = Dispatcher::new();
    d.register("list", |_, _| Ok("mine".into()));
    assert_eq!(d.eval("list a").unwrap(), "mine");
    assert!(format!("{d:?}").contains("concat"));
}

#[test]
fn custom_errors_and_codes() {
    let d = Dispatcher::new();
    d.register("fail", |_, _| {
        Err(TclError::new("bad thing").with_errorcode("APP BAD"))
    });
    d.register("traced", |_, _| {
        Err(TclError::new("bad").with_errorinfo("custom trace"))
    });
    d.register("code7", |_, _| Err(TclError::with_code(7, "seven")));
    d.register("usage", |_, _| Err(TclError::wrong_args("usage a b")));
    let e = d.eval("list [fail 1]").unwrap_err();
    assert_eq!((e.message(), e.errorcode()), ("bad thing", "APP BAD"));
    assert_eq!(e.errorinfo(), error_info("bad thing", "fail 1"));
    assert_eq!(e.to_string(), "bad thing");
    assert!(e.is_error());
    assert_eq!(d.eval("traced").unwrap_err().errorinfo(), "custom trace");
    let e = d.eval("code7").unwrap_err();
    assert_eq!((e.code(), e.message(), e.is_error()), (7, "seven", false));
    let e = d.eval("usage").unwrap_err();
    assert_eq!(
        (e.message(), e.errorcode()),
        ("wrong # args: should be \"usage a b\"", "TCL WRONGARGS")
    );
}

#[test]
fn panicking_commands_become_errors() {
    let d = Dispatcher::new();
    d.register("boom", |_, _| panic!("kaboom"));
    let e = d.eval("boom").unwrap_err();
    assert_eq!(e.message(), "command \"boom\" panicked: kaboom");
    assert_eq!(e.errorcode(), "TCLCOMM PANIC");
    // The dispatcher is still usable.
    assert_eq!(d.eval("list ok").unwrap(), "ok");
}

#[test]
fn deep_nesting_is_bounded() {
    // Runs on a test thread (2 MiB stack by default).
    let deep = format!("{}list x{}", "[".repeat(10_000), "]".repeat(10_000));
    let e = d().eval(&format!("list {deep}")).unwrap_err();
    assert_eq!(e.message(), "too many nested evaluations (infinite loop?)");
    assert_eq!(e.errorcode(), "TCL LIMIT STACK");
    let ok_depth = format!("{}list x{}", "list [".repeat(150), "]".repeat(150));
    assert_eq!(d().eval(&ok_depth).unwrap(), "x");

    let d = Dispatcher::new();
    d.register("recurse", |call, _| call.eval("recurse"));
    let e = d.eval("recurse").unwrap_err();
    assert_eq!(e.message(), "too many nested evaluations (infinite loop?)");
}

#[test]
fn dispatcher_is_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<Dispatcher>();
    let d = d();
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let d = d.clone();
            std::thread::spawn(move || {
                for j in 0..100 {
                    let name = format!("cmd{i}");
                    d.register(name.clone(), move |_, _| Ok(format!("{i}-{j}")));
                    assert_eq!(d.eval(&name).unwrap(), format!("{i}-{j}"));
                    assert_eq!(d.eval("echo a [echo b]").unwrap(), "a b");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert!(d.has_command("cmd3"));
}

fn tcl_word() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        proptest::collection::vec(
            prop_oneof![
                Just("{".to_owned()),
                Just("}".to_owned()),
                Just("\\".to_owned()),
                Just("\"".to_owned()),
                Just("[".to_owned()),
                Just("]".to_owned()),
                Just("$".to_owned()),
                Just(";".to_owned()),
                Just("#".to_owned()),
                Just("{*}".to_owned()),
                Just(" ".to_owned()),
                Just("\n".to_owned()),
                Just("\\\n".to_owned()),
                Just("\t\r\x0b\x0c".to_owned()),
                Just("\0".to_owned()),
                Just("é中😀".to_owned()),
                "[a-z]{1,3}",
            ],
            0..12,
        )
        .prop_map(|parts| parts.concat()),
    ]
}

proptest! {
    #[test]
    fn list_quoted_words_parse_back(words in proptest::collection::vec(tcl_word(), 0..8)) {
        let got = Arc::new(Mutex::new(None));
        let d = Dispatcher::new();
        let g = Arc::clone(&got);
        d.register("capture", move |_, args| {
            *g.lock().unwrap() = Some(args.to_vec());
            Ok(String::new())
        });
        let mut command = vec!["capture".to_owned()];
        command.extend(words.iter().cloned());
        let script = format_list(&command);
        prop_assert_eq!(d.eval(&script), Ok(String::new()));
        prop_assert_eq!(got.lock().unwrap().take(), Some(words.clone()));
        // The same words survive `{*}` expansion and `[list ...]`.
        let script = format!("capture {{*}}{}", format_list(&[format_list(&words)]));
        prop_assert_eq!(d.eval(&script), Ok(String::new()));
        prop_assert_eq!(got.lock().unwrap().take(), Some(words.clone()));
        let script = format!("capture {{*}}[list {}]", format_list(&words));
        prop_assert_eq!(d.eval(&script), Ok(String::new()));
        prop_assert_eq!(got.lock().unwrap().take(), Some(words));
    }

    /// Scripts of one command of plain words take a fast path; a newline
    /// after them (a terminator, so the full parser) must change nothing:
    /// same words, result, code, errorCode and errorInfo.
    #[test]
    fn simple_commands_evaluate_as_the_full_parser_does(
        lead in "[ \t\r\x0b\x0c]{0,2}",
        name in prop_oneof![
            Just("echo"), Just("error"), Just("return"), Just("list"), Just("concat"),
            Just("break"), Just("nosuch"), Just("boom"), Just("echo#"),
        ],
        rest in "[ \t\r\x0b\x0ca-z0-9()#<>=.:*-]{0,24}",
    ) {
        let d = d();
        d.register("boom", |_, args| panic!("boom {}", args.len()));
        let script = format!("{lead}{name}{rest}");
        prop_assert_eq!(d.eval(&script), d.eval(&format!("{script}\n")), "{:?}", script);
    }

    #[test]
    fn any_script_evaluates_without_panic(script in any::<String>()) {
        let _ = d().eval(&script);
    }
}

#[test]
fn a_script_given_up_evaluates_as_a_borrowed_one() {
    let d = Dispatcher::new();
    d.register("len", |_, args| {
        Ok(args
            .iter()
            .map(|a| a.len().to_string())
            .collect::<Vec<_>>()
            .join(" "))
    });
    d.register("fail", |_, args| {
        Err(TclError::new(format!("failed with {}", args.len())))
    });
    let big = "x".repeat(3 << 20);
    for script in [
        format!("len {big}"),
        format!("  len a b {big}  "),
        "len".to_string(),
        format!("fail a {big}"),
        format!("len {{{big}}}"),
        format!("nosuch {big}"),
    ] {
        let want = d.eval(&script);
        let got = d.eval_owned(script.clone());
        assert_eq!(
            got.as_ref()
                .map_err(|e| (e.message().to_string(), e.errorinfo().to_string())),
            want.as_ref()
                .map_err(|e| (e.message().to_string(), e.errorinfo().to_string())),
            "{}",
            &script[..script.len().min(20)]
        );
    }
}

#[test]
fn dense_escapes_come_back_whole() {
    // Elements `list` must backslash-quote (an unbalanced brace), with
    // escapes next to each other, to plain text and to other sequences:
    // the parser's run of simple escapes must stop and resume exactly.
    let pieces = [
        "}", "{", "a", " ", "\t", "\n", "$", "[", "]", "\"", "\\", ";", "é", "x", "\\u00e9", "0",
    ];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..3000 {
        let mut s = String::from("}");
        // Now and then long enough for the block-wise path (runs of at
        // least 256 bytes), across several blocks.
        let n = if seed.is_multiple_of(4) {
            seed % 800
        } else {
            seed % 40
        };
        for _ in 0..n {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            s.push_str(pieces[(seed % pieces.len() as u64) as usize]);
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let listed = format_list(&[s.as_str(), "tail"]);
        assert_eq!(ok(&format!("echo {listed}")), listed, "{s:?}");
        // Inside brackets, where `]` also ends a word (right after the
        // escaped one).
        let last = format_list(&["tail", s.as_str()]);
        assert_eq!(
            ok(&format!("echo [echo {last}]")),
            format_list(&[last.as_str()]),
            "{s:?}"
        );
    }
}
