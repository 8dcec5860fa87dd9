//! Lays out the comm package: `cargo run -p tclcomm-pkg --example package -- DIR [LIBRARY]`.
//! LIBRARY defaults to the libcomm.so next to this example's own target dir.

fn main() -> std::io::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let dir = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "pkg".into());
    let lib = match args.next() {
        Some(l) => std::path::PathBuf::from(l),
        None => {
            // target/<profile>/examples/package -> target/<profile>/libcomm.so
            let exe = std::env::current_exe()?;
            let profile = exe
                .parent()
                .and_then(|p| p.parent())
                .unwrap_or(std::path::Path::new("."));
            profile.join(comm::LIBRARY_FILE)
        }
    };
    comm::write_package(&dir, &lib)?;
    println!("{}", dir.display());
    Ok(())
}
