# Runs every tests/tcl/*.test (each in its own tclsh) with the comm package
# found through TCLLIBPATH (see .ci/tcl-tests).
package require tcltest 2
namespace import ::tcltest::*
configure -testdir [file dirname [file normalize [info script]]]
if {[info exists ::env(COMM_PKG_DIR)]} {
    file mkdir [file join $::env(COMM_PKG_DIR) tmp]
    configure -tmpdir [file join $::env(COMM_PKG_DIR) tmp]
}
configure {*}$argv
runAllTests
