//! `tclcomm completions SHELL` and `tclcomm man`, generated from clap.

mod common;

use common::run;

#[test]
fn completions_know_every_subcommand() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let r = run(&["completions", shell]);
        assert_eq!(r.code, Some(0), "{shell}: {}", r.stderr);
        let out = r.out();
        for sub in ["serve", "send", "attach", "tcl-package", "cp", "man"] {
            assert!(out.contains(sub), "{shell} completions lack {sub}");
        }
    }
    assert!(
        run(&["completions", "bash"])
            .out()
            .contains("--quiet-errors")
    );
    let r = run(&["completions", "tcsh"]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
}

#[test]
fn man_page_prints_and_installs() {
    let r = run(&["man"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let page = r.out();
    assert!(page.contains(".TH tclcomm 1"), "{page}");
    assert!(page.contains("tclcomm\\-attach(1)"), "{page}");
    let dir = std::env::temp_dir().join(format!("tclcomm-man-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let r = run(&["man", "--dir", dir.to_str().expect("utf-8")]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    for page in ["tclcomm.1", "tclcomm-attach.1", "tclcomm-tcl-package.1"] {
        let text = std::fs::read_to_string(dir.join(page)).expect(page);
        assert!(text.contains(".TH"), "{page}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    let r = run(&["man", "--dir", "/proc/tclcomm-man"]);
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("cannot write man pages to /proc/tclcomm-man"),
        "{}",
        r.stderr
    );
}

#[test]
fn attach_help_says_where_output_goes() {
    let r = run(&["attach", "--help"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let out = r.out();
    assert!(
        out.contains("where the peer is `tclcomm serve`") && out.contains("Any other peer"),
        "{out}"
    );
    assert!(out.contains("Tab completes"), "{out}");
}
