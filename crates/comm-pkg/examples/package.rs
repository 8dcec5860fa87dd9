//! Lays out the comm package:
//! `cargo run -p tclcomm-pkg --example package -- DIR [LIBRARY...]`.
//! LIBRARY defaults to the libcomm.so next to this example's own target dir.
//! Each LIBRARY may be a build for Tcl 8.6 or for Tcl 9 (feature `tcl9`,
//! e.g. target/tcl9/debug/libcomm.so): its marker decides its name in DIR
//! (libcomm.so or libtcl9comm.so), so one DIR can serve both shells.

use comm::TclVersion;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let dir = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "pkg".into());
    let mut libs: Vec<std::path::PathBuf> = args.map(Into::into).collect();
    if libs.is_empty() {
        // target/<profile>/examples/package -> target/<profile>/libcomm.so
        let exe = std::env::current_exe()?;
        let profile = exe
            .parent()
            .and_then(|p| p.parent())
            .unwrap_or(std::path::Path::new("."));
        libs.push(profile.join(comm::LIBRARY_FILE));
    }
    let mut contents = Vec::new();
    for lib in &libs {
        let bytes = std::fs::read(lib)?;
        let version = TclVersion::of_library(&bytes).ok_or_else(|| {
            std::io::Error::other(format!(
                "{}: not a build of the comm package",
                lib.display()
            ))
        })?;
        contents.push((version, bytes));
    }
    let refs: Vec<(TclVersion, &[u8])> = contents.iter().map(|(v, b)| (*v, b.as_slice())).collect();
    comm::write_package_for(&dir, &refs)?;
    for (v, _) in &refs {
        eprintln!(
            "{}: {} for Tcl {}",
            dir.display(),
            v.library_file(),
            v.label()
        );
    }
    println!("{}", dir.display());
    Ok(())
}
