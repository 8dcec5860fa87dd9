//! Serving safely from the command line: authentication with a cookie file
//! (serve in driver 2, send in driver 1: the two engines' auth1 meet), a
//! safe interpreter, an allow-list interpreter, and a per-request check.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Server, run};

fn cookie(dir: &std::path::Path, name: &str, secret: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, secret).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.display().to_string()
}

fn tempdir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tclcomm-guard-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_required_secret_is_needed_and_checked_across_drivers() {
    let dir = tempdir("auth");
    let good = cookie(&dir, "good", "s3cret");
    let bad = cookie(&dir, "bad", "guess");
    let server = Server::start(&["--cookie", &good, "--auth-required"]);
    let id = server.id.as_str();

    let ok = run(&[
        "send",
        "--cookie",
        &good,
        "--auth-required",
        id,
        "expr",
        "{6*7}",
    ]);
    assert_eq!((ok.code, ok.out().trim()), (Some(0), "42"), "{}", ok.stderr);

    // Without the secret: the server answers why (a remote error, exit 1).
    let plain = run(&["send", id, "expr", "1"]);
    assert_eq!(plain.code, Some(1), "{}", plain.stderr);
    assert!(
        plain.stderr.contains("authentication required"),
        "{}",
        plain.stderr
    );

    // A wrong secret: refused on both sides (a communication failure).
    let wrong = run(&["send", "--cookie", &bad, id, "expr", "1"]);
    assert_eq!(wrong.code, Some(2), "{}", wrong.stderr);
    assert!(wrong.stderr.contains("wrong secret"), "{}", wrong.stderr);

    // A cookie file others may read is refused before anything is sent.
    let open = dir.join("open");
    std::fs::write(&open, "s3cret").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let refused = run(&[
        "send",
        "--cookie",
        &open.display().to_string(),
        id,
        "expr",
        "1",
    ]);
    assert_eq!(refused.code, Some(3), "{}", refused.stderr);
    assert!(refused.stderr.contains("chmod 600"), "{}", refused.stderr);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_safe_interpreter_refuses_files_and_exec() {
    let server = Server::start(&["--safe"]);
    let id = server.id.as_str();
    let r = run(&["send", id, "expr", "{1+1}"]);
    assert_eq!((r.code, r.out().trim()), (Some(0), "2"), "{}", r.stderr);
    for script in ["exec ls", "open /etc/passwd", "socket localhost 1"] {
        let r = run(&["send", id, script]);
        assert_eq!(r.code, Some(1), "{script}: {}", r.stderr);
        assert!(
            r.stderr.contains("invalid command name"),
            "{script}: {}",
            r.stderr
        );
    }
}

#[test]
fn an_allow_list_interpreter_has_only_the_commands_given() {
    let server = Server::start(&[
        "--init",
        "proc add {a b} {expr {$a + $b}}",
        "--allow",
        "add",
    ]);
    let id = server.id.as_str();
    let r = run(&["send", id, "add", "1", "2"]);
    assert_eq!((r.code, r.out().trim()), (Some(0), "3"), "{}", r.stderr);
    let r = run(&["send", id, "set", "x", "1"]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr.contains("invalid command name \"set\""),
        "{}",
        r.stderr
    );
    let r = run(&["send", id, "add 1 [set x 1]"]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
}

#[test]
fn a_check_refuses_with_the_error_the_sender_sees() {
    let server = Server::start(&[
        "--check",
        "apply {{id script} {if {[string match *exec* $script]} {error \"no exec from $id\"}}}",
    ]);
    let id = server.id.as_str();
    let r = run(&["send", id, "expr", "{2*3}"]);
    assert_eq!((r.code, r.out().trim()), (Some(0), "6"), "{}", r.stderr);
    let r = run(&["send", id, "exec", "ls"]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("no exec from"), "{}", r.stderr);
}
