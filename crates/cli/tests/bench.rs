//! `tclcomm bench --quick` runs and writes its table and chart.

mod common;

use std::time::Duration;

use common::run_with;

#[test]
fn quick_bench_writes_table_and_chart() {
    let dir = std::env::temp_dir().join(format!("tclcomm-bench-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let r = run_with(
        &["bench", "--quick", "--out", dir.to_str().expect("utf-8")],
        b"",
        Duration::from_secs(240),
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let md = std::fs::read_to_string(dir.join("bench.md")).expect("bench.md");
    assert!(
        md.starts_with(
            "| workload | plain TCP | tokio TCP floor | Tcl fileevent floor | Rust ↔ Rust |"
        ),
        "{md}"
    );
    // The floors are measured (a rate, not "failed" or "skipped") on the
    // latency rows, and each side is set against them.
    let sync = md
        .lines()
        .find(|l| l.starts_with("| sync round trips"))
        .expect("sync row");
    let cells: Vec<&str> = sync.split('|').map(str::trim).collect();
    for (i, floor) in [(3, "tokio"), (4, "Tcl")] {
        assert!(cells[i].contains("/s"), "{floor} floor: {sync}");
    }
    assert!(md.contains("Rust ↔ Rust / tokio floor"), "{md}");
    assert!(md.contains("ours-in-tclsh / Tcl floor"), "{md}");
    assert!(md.contains("sync round trips"), "{md}");
    // The rows and columns of issue 14.
    for row in [
        "payload escaped",
        "peak memory",
        "idle clients",
        "fan-out to",
        "fan-out, CLI",
        "ours-in-tclsh → tcllib",
        "tcllib → ours-in-tclsh",
    ] {
        assert!(md.contains(row), "{row}: {md}");
    }
    assert!(r.out().contains("| workload |"));
    let svg = std::fs::read_to_string(dir.join("bench.svg")).expect("bench.svg");
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    let _ = std::fs::remove_dir_all(&dir);
}
