# The Tcl event loop's floor for comm's sync round trip: two tclsh
# processes ping-pong one line each way over a plain socket, each side
# waiting in the event loop on a fileevent, as comm does (no comm at all).
# The lines have the size of comm's sync request and reply for
# `set x 1`. Usage: tclsh floor.tcl ?N?   (the child: floor.tcl -serve)
if {[lindex $argv 0] eq "-serve"} {
    proc accept {s args} {
        fconfigure $s -buffering full -translation binary -blocking 0
        fileevent $s readable [list echo $s]
    }
    proc echo {s} {
        if {[gets $s line] < 0} {
            if {[eof $s]} {close $s; exit 0}
            return
        }
        puts $s {reply 1 {return -code 0 1}}
        flush $s
    }
    set l [socket -server accept -myaddr 127.0.0.1 0]
    puts [lindex [fconfigure $l -sockname] 2]
    flush stdout
    after 600000 exit
    vwait forever
}

set n [expr {[llength $argv] ? [lindex $argv 0] : 5000}]
set child [open |[list [info nameofexecutable] [info script] -serve] r]
if {[gets $child port] <= 0} {puts stderr "floor server did not start"; exit 1}
set s [socket 127.0.0.1 $port]
fconfigure $s -buffering full -translation binary -blocking 0
proc answer {s} {
    if {[gets $s line] >= 0} {set ::got $line} elseif {[eof $s]} {set ::got eof}
}
fileevent $s readable [list answer $s]
proc roundtrip {} {
    puts $::s {send 1 {set x 1}}
    flush $::s
    vwait ::got
    if {$::got eq "eof"} {error "floor server went away"}
}
for {set i 0} {$i < 200} {incr i} roundtrip
set t0 [clock microseconds]
for {set i 0} {$i < $n} {incr i} roundtrip
set us [expr {max(1, [clock microseconds] - $t0)}]
puts [format "%-7s %-4s %-34s %10.0f /s  (%d in %.3f s)" floor [info tclversion] \
    "fileevent ping-pong (no comm)" [expr {$n * 1e6 / $us}] $n [expr {$us / 1e6}]]
close $s
close $child
