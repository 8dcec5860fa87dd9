//! `tclcomm tcl-package`: the laid-out package loads in tclsh and talks to
//! `tclcomm serve`.

mod common;

use std::process::Command;
use std::time::Duration;

use std::path::PathBuf;

use common::{BIN, Server, run};

/// Runs `tclsh FILE` with TCLLIBPATH=dir, bounded; returns its stdout.
fn tclsh_with(dir: &std::path::Path, file: &std::path::Path) -> String {
    shell_with(std::path::Path::new("tclsh"), dir, file)
}

/// Runs `SHELL FILE` with TCLLIBPATH=dir, bounded; returns its stdout.
fn shell_with(shell: &std::path::Path, dir: &std::path::Path, file: &std::path::Path) -> String {
    assert!(
        Command::new(shell)
            .arg("/dev/null")
            .status()
            .is_ok_and(|s| s.success()),
        "this test needs {} (tclsh: apt-get install tcl; tclsh9.0: ../shared/tools/tcl9-env)",
        shell.display()
    );
    let mut child = Command::new(shell)
        .arg(file)
        .env("TCLLIBPATH", dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("tclsh");
    let start = std::time::Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("tclsh hung");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().expect("output");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tclcomm-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The binary alone, copied away from the build tree and run from another
/// directory (as after `cargo install`), lays out a package that loads.
#[test]
fn installed_binary_lays_out_a_package_anywhere() {
    let root = temp("installed");
    let bin_dir = root.join("bin");
    std::fs::create_dir_all(&bin_dir).expect("mkdir");
    let bin = bin_dir.join("tclcomm");
    std::fs::copy(BIN, &bin).expect("copy the binary");
    let dir = root.join("lib").join("comm");
    let out = Command::new(&bin)
        .args(["tcl-package", "lib/comm"])
        .current_dir(&root)
        .env_remove("TCLCOMM_LIBRARY")
        .output()
        .expect("run the copied tclcomm");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("TCLLIBPATH=lib/comm tclsh"), "{stderr}");
    let s = Server::start(&[]);
    let file = root.join("t.tcl");
    std::fs::write(
        &file,
        format!(
            "puts [package require comm]\nputs [::comm::comm send {} {{expr {{6*7}}}}]\n\
             puts [package require transfer::connect]\n",
            s.id
        ),
    )
    .expect("write script");
    assert_eq!(tclsh_with(&dir, &file), "4.8\n42\n0.4\n");
    let _ = std::fs::remove_dir_all(&root);
}

/// Built with Tcl 9 available (TCL9_PREFIX, as .ci/run does), the binary
/// lays out the Tcl 9 library beside the 8.6 one, and tclsh9.0 loads it
/// and talks to `tclcomm serve` (which embeds Tcl 8.6).
#[test]
fn the_tcl9_library_is_laid_out_and_loads_in_tclsh9() {
    let prefix = std::env::var_os("TCL9_PREFIX").expect(
        "this test needs Tcl 9: set TCL9_PREFIX to a directory unpacked by \
         ../shared/tools/tcl9-env (the build then carries the Tcl 9 library)",
    );
    let tclsh9 = PathBuf::from(prefix).join("bin/tclsh9.0");
    let root = temp("tcl9");
    let dir = root.join("comm");
    let r = run(&["tcl-package", dir.to_str().expect("utf-8")]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("Tcl 8.6 (libcomm.so) and Tcl 9.0 (libtcl9comm.so)"),
        "{}",
        r.stderr
    );
    assert!(dir.join(comm::LIBRARY_FILE_TCL9).is_file());
    let s = Server::start(&[]);
    let file = root.join("t.tcl");
    std::fs::write(
        &file,
        format!(
            "puts [package require comm]\nputs $::tclcomm::built_for\n\
             puts [::comm::comm send {} {{list [info tclversion] [expr {{6*7}}]}}]\n",
            s.id
        ),
    )
    .expect("write script");
    assert_eq!(
        shell_with(&tclsh9, &dir, &file),
        "4.8\ntclcomm comm package for Tcl 9.0\n8.6 42\n"
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn missing_library_is_explained() {
    let r = run(&[
        "tcl-package",
        "/nonexistent-dir-tclcomm",
        "--library",
        "/nonexistent/libcomm.so",
    ]);
    assert_eq!(r.code, Some(3));
    assert!(r.stderr.contains("no library at"), "{}", r.stderr);
    assert!(r.stderr.contains("Leave out --library"), "{}", r.stderr);
}

#[test]
fn a_library_that_is_not_one_is_refused() {
    let dir = temp("notlib");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let fake = dir.join("libcomm.so.txt");
    std::fs::write(&fake, "not a library").expect("write");
    let target = dir.join("pkg");
    // A text file, and the tclcomm executable itself (ET_DYN, holds Comm_Init).
    for library in [fake.to_str().expect("utf-8"), BIN] {
        let r = run(&[
            "tcl-package",
            target.to_str().expect("utf-8"),
            "--library",
            library,
        ]);
        assert_eq!(r.code, Some(3), "{library}: {}", r.stderr);
        assert!(
            r.stderr.contains("is not a comm package library"),
            "{}",
            r.stderr
        );
        assert!(!target.exists(), "wrote a package from {library}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn foreign_files_are_not_overwritten_without_force() {
    let dir = temp("foreign");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let index = dir.join("pkgIndex.tcl");
    std::fs::write(&index, "package ifneeded other 1.0 {}\n").expect("write");
    let d = dir.to_str().expect("utf-8");
    let r = run(&["tcl-package", d]);
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("pkgIndex.tcl that tcl-package did not write")
            && r.stderr.contains("--force"),
        "{}",
        r.stderr
    );
    assert_eq!(
        std::fs::read_to_string(&index).expect("read"),
        "package ifneeded other 1.0 {}\n"
    );
    // Its own files it replaces without --force; others with --force.
    let r = run(&["tcl-package", d, "--force"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let r = run(&["tcl-package", d]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unwritable_directory_is_explained() {
    let r = run(&["tcl-package", "/proc/tclcomm-pkg"]);
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("cannot write the package to /proc/tclcomm-pkg")
            && r.stderr.contains("Choose a directory you can write"),
        "{}",
        r.stderr
    );
}
