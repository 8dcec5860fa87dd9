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

# Spawns a peer tclsh running slave.tcl with comm `kind` (ours | tcllib,
# tcllib 1.21's comm 4.7 | tcllib473, tcllib 2.0's comm 4.7.3, found in
# $env(COMM473_TCLTK), which .ci/tcl-tests unpacks: missing, it is an
# error, never a skip); returns its comm id once it reported in.
proc spawn {{kind ours} args} {
    global slave_seq env
    incr slave_seq
    set var ::slave_at($slave_seq)
    set cmd [list [info nameofexecutable] [file join $::testdir slave.tcl] \
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
    set code [catch {exec {*}$cmd >@ stdout 2>@ stderr &} pid]
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
