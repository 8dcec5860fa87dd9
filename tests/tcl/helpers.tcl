# Shared helpers of the comm tcltest files: load OUR comm (and prove it),
# spawn peer tclsh processes (ours or tcllib's) and wait for them, bounded.
package require tcltest 2
namespace import ::tcltest::*

set ::testdir [file dirname [file normalize [info script]]]
package require comm 4.8
if {[package provide tclcomm] eq "" || [package provide comm] ne "4.8"} {
    error "the loaded comm is not tclcomm's"
}

# Waits (bounded) until the variable is set; returns its value or "timeout".
proc waitfor {varname {ms 10000}} {
    upvar #0 $varname v
    if {[info exists v]} {return $v}
    set id [after $ms [list set $varname timeout]]
    vwait $varname
    after cancel $id
    return $v
}

# Which Tcl runs this file, and the other one (for cross-version peers).
set ::tcl9 [package vsatisfies [package provide Tcl] 9-]
set ::othertcl [expr {$::tcl9 ? "8.6" : "9"}]

# The tclsh of Tcl `version` (8.6 | 9; "" is this shell): $env(TCLSH86)
# (default `tclsh`) and $env(TCLSH9) (tcl9-env's tclsh9.0, which
# .ci/tcl-tests sets: missing, it is an error, never a skip).
proc tclsh_for {version} {
    global env
    set mine [expr {$::tcl9 ? "9" : "8.6"}]
    if {$version eq "" || $version eq $mine} {return [info nameofexecutable]}
    if {$version eq "8.6"} {
        if {[info exists env(TCLSH86)]} {return $env(TCLSH86)}
        return tclsh
    }
    if {![info exists env(TCLSH9)] || ![file executable $env(TCLSH9)]} {
        error "a Tcl 9 peer is needed: set TCLSH9 to tclsh9.0\
            (../shared/tools/tcl9-env DIR writes DIR/bin/tclsh9.0)"
    }
    return $env(TCLSH9)
}

# Runs `script` with the environment of a child on Tcl `version`: tcl9-env's
# tclsh9.0 sets TCL_LIBRARY (and a module path) for Tcl 9, which an 8.6
# child must not inherit.
proc with_child_env {version script} {
    global env
    set saved {}
    if {$version eq "8.6"} {
        foreach v {TCL_LIBRARY TCL9_0_TM_PATH} {
            if {[info exists env($v)]} {
                dict set saved $v $env($v)
                unset env($v)
            }
        }
    }
    try {
        uplevel 1 $script
    } finally {
        dict for {v x} $saved {set env($v) $x}
    }
}

# Spawns a peer tclsh running slave.tcl with comm `kind` (ours | tcllib,
# tcllib 1.21's comm 4.7 | tcllib473, tcllib 2.0's comm 4.7.3, found in
# $env(COMM473_TCLTK), which .ci/tcl-tests unpacks: missing, it is an
# error, never a skip); returns its comm id once it reported in. The kind
# may end in @8.6 or @9: the peer then runs in that Tcl (tcllib 1.21 is for
# 8.6 only, so `tcllib` always does); else in this shell's.
proc spawn {{kind ours} args} {
    global slave_seq env
    incr slave_seq
    set var ::slave_at($slave_seq)
    lassign [split $kind @] kind version
    if {$kind eq "tcllib"} {set version 8.6}
    set cmd [list [tclsh_for $version] [file join $::testdir slave.tcl] \
                 [::comm::comm self] $kind $slave_seq {*}$args]
    set had [info exists env(TCLLIBPATH)]
    if {$had} {set saved $env(TCLLIBPATH)}
    if {$kind eq "tcllib473"} {
        if {![info exists env(COMM473_TCLTK)] ||
            ![file isdirectory $env(COMM473_TCLTK)]} {
            error "tcllib comm 4.7.3 is needed: set COMM473_TCLTK to tcllib 2.0's\
                usr/share/tcltk (../shared/tools/tcl9-env DIR unpacks it)"
        }
        set env(TCLLIBPATH) [list $env(COMM473_TCLTK)]
    }
    set code [with_child_env $version {catch {exec {*}$cmd >@ stdout 2>@ stderr &} pid}]
    if {$had} {set env(TCLLIBPATH) $saved} else {unset -nocomplain env(TCLLIBPATH)}
    if {$code} {error $pid}
    lappend ::slave_pids $pid
    set id [waitfor $var 20000]
    if {$id eq "timeout"} {error "peer $kind did not start"}
    return $id
}
proc slaveat {seq id} {set ::slave_at($seq) $id}

# Stops a peer: asks it to exit, then makes sure.
proc stop {id} {
    catch {::comm::comm send -async $id {after 10 exit}}
    catch {::comm::comm shutdown $id}
}
proc cleanup_peers {} {
    foreach p [lsort -unique [lindex [array get ::slave_pids] 1]] {}
    foreach p $::slave_pids {catch {exec kill $p}}
    set ::slave_pids {}
}
set ::slave_pids {}
