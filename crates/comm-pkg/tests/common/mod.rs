//! What the package's integration tests share.

use std::path::PathBuf;

/// The package directory (our comm laid out for `TCLLIBPATH`), made once
/// per test process in a temp dir named after `tag`. `cargo test` leaves
/// the cdylib it built for the test in `target/<profile>/deps` (only
/// `cargo build` copies it up a level); either is taken.
pub(crate) fn package(tag: &str) -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("test exe");
        let deps = exe.parent().expect("deps dir");
        let lib = [deps.to_path_buf(), deps.join("..")]
            .into_iter()
            .map(|d| d.join(comm::LIBRARY_FILE))
            .find(|p| p.is_file())
            .expect("libcomm.so built by cargo test");
        let dir = std::env::temp_dir().join(format!("tclcomm-pkg-{tag}-{}", std::process::id()));
        comm::write_package(&dir.join("comm"), &lib).expect("write package");
        dir
    })
    .clone()
}
