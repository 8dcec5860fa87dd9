# comm benchmark: tclsh comm_bench.tcl ours|tcllib ?bigMB?
# This process and a second tclsh (the server) both use the same comm
# (ours: tclcomm's libcomm.so or libtcl9comm.so through TCLLIBPATH;
# tcllib: comm 4.7 on Tcl 8.6, 4.7.3 on Tcl 9), in whichever tclsh runs this.
# Prints one line per measure.
lassign $argv kind bigmb
if {$bigmb eq ""} {set bigmb [expr {$kind eq "ours" ? 10 : 1}]}
# tcllib: comm 4.7 (tcllib 1.21) in tclsh 8.6, 4.7.3 (tcllib 2.0) in tclsh9.0.
if {$kind eq "tcllib"} {
    package require -exact comm [expr {[package vsatisfies [package provide Tcl] 9-] ? "4.7.3" : "4.7"}]
} else {
    package require comm 4.8
}

set here [file dirname [file normalize [info script]]]
set server [file join $here server.tcl]
proc ready {id} {set ::srv $id}
exec [info nameofexecutable] $server $kind [::comm::comm self] &
after 20000 {set ::srv timeout}
vwait ::srv
if {$::srv eq "timeout"} {puts stderr "server did not start"; exit 1}
set srv $::srv

proc measure {label n script} {
    set t0 [clock microseconds]
    uplevel #0 $script
    set us [expr {max(1, [clock microseconds] - $t0)}]
    set rate [expr {$n * 1e6 / $us}]
    puts [format "%-7s %-4s %-34s %10.0f /s  (%d in %.3f s)" $::kind [info tclversion] $label $rate $n [expr {$us / 1e6}]]
    return $rate
}

# warm up
for {set i 0} {$i < 200} {incr i} {::comm::comm send $srv {set x 1}}

set n 5000
measure "sync round trips" $n {
    for {set i 0} {$i < $::n} {incr i} {::comm::comm send $::srv {set x 1}}
}
set burst 20000
::comm::comm send $srv {set ::count 0}
measure "send -async burst (until executed)" $burst {
    for {set i 0} {$i < $::burst} {incr i} {::comm::comm send -async $::srv {incr ::count}}
    if {[::comm::comm send $::srv {set ::count}] != $::burst} {error "lost messages"}
}
# A payload full of special characters (quoting on the wire) and non-ASCII.
set unit "\{\}\\\$\[\] \"x\n\t\u00e9;"
set big [string repeat $unit [expr {$bigmb * 1000000 / [string length [encoding convertto utf-8 $unit]]}]]
set t0 [clock microseconds]
set back [::comm::comm send $srv [list set ::big $big]]
set s [expr {([clock microseconds] - $t0) / 1e6}]
if {![string equal $back $big]} {error "payload corrupted"}
puts [format "%-7s %-4s %-34s %10.3f s" $kind [info tclversion] "${bigmb} MB special-char round trip" $s]
::comm::comm send -async $srv exit
exit 0
