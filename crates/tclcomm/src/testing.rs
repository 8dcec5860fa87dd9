//! tclsh peer harness for integration tests (work in progress).
