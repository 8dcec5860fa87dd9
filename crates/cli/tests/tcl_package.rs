//! `tclcomm tcl-package`: the laid-out package loads in tclsh and talks to
//! `tclcomm serve`.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Server, run};

#[test]
fn package_loads_in_tclsh_and_reaches_serve() {
    let dir = std::env::temp_dir().join(format!("tclcomm-pkg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let r = run(&["tcl-package", dir.to_str().expect("utf-8 path")]);
    // cargo builds libcomm.so (tclcomm-pkg is a dependency of this crate):
    // a missing library is a failure, not a skip.
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(dir.join("pkgIndex.tcl").is_file());
    assert!(
        Command::new("tclsh")
            .arg("/dev/null")
            .status()
            .is_ok_and(|s| s.success()),
        "this test needs tclsh 8.6 (apt-get install tcl)"
    );
    let s = Server::start(&[]);
    let script = format!(
        "puts [package require comm]\nputs [::comm::comm send {} {{expr {{6*7}}}}]\n\
         puts [package require transfer::connect]\n",
        s.id
    );
    let file = dir.join("t.tcl");
    std::fs::write(&file, script).expect("write script");
    let mut child = Command::new("tclsh")
        .arg(&file)
        .env("TCLLIBPATH", &dir)
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
    assert_eq!(String::from_utf8_lossy(&out.stdout), "4.8\n42\n0.4\n");
    let _ = std::fs::remove_dir_all(&dir);
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
}
