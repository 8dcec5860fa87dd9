# The Tcl event loop's floor for comm's sync round trip: tclsh processes
# ping-pong one line each way over a plain socket, each side waiting in the
# event loop on a fileevent, as comm does (no comm at all). The lines have
# the size of comm's sync request and reply for `set a 1`.
#   tclsh floor.tcl ?N?            N round trips against a child server; prints a line
#   tclsh floor.tcl -serve ?-once? the server: prints "PORT p" and echoes (for 10
#                                  minutes at most; -once: until a client leaves)
#   tclsh floor.tcl -client P N    a client of port P: prints READY, waits for a
#                                  line on stdin, runs N round trips, prints "RESULT secs"
# (`tclcomm bench` runs the last two for its "Tcl fileevent floor" column.)
proc serve {once} {
    set ::once $once
    proc accept {s args} {
        fconfigure $s -buffering full -translation binary -blocking 0
        fileevent $s readable [list echo $s]
    }
    proc echo {s} {
        while {[gets $s line] >= 0} { puts $s {{reply 1 {return -code 0 1}}} }
        if {[eof $s]} { close $s; if {$::once} exit; return }
        flush $s
    }
    set l [socket -server accept -myaddr 127.0.0.1 0]
    puts "PORT [lindex [fconfigure $l -sockname] 2]"
    flush stdout
    after 600000 exit
    vwait forever
}

proc connect {port} {
    set s [socket 127.0.0.1 $port]
    fconfigure $s -buffering full -translation binary -blocking 0
    fileevent $s readable [list answer $s]
    return $s
}
proc answer {s} {
    if {[gets $s line] >= 0} {set ::got $line} elseif {[eof $s]} {set ::got eof}
}
proc roundtrip {} {
    puts $::s {{send 1 {{set a 1}}}}
    flush $::s
    vwait ::got
    if {$::got eq "eof"} {error "floor server went away"}
}
proc timed {n} {
    set t0 [clock microseconds]
    for {set i 0} {$i < $n} {incr i} roundtrip
    return [expr {max(1, [clock microseconds] - $t0)}]
}

switch -- [lindex $argv 0] {
    -serve {
        serve [expr {[lindex $argv 1] eq "-once"}]
    }
    -client {
        lassign $argv - port n
        set s [connect $port]
        roundtrip
        puts READY
        flush stdout
        gets stdin
        puts "RESULT [expr {[timed $n] / 1e6}]"
        flush stdout
        close $s
    }
    default {
        set n [expr {[llength $argv] ? [lindex $argv 0] : 5000}]
        set child [open |[list [info nameofexecutable] [info script] -serve -once] r]
        if {[gets $child line] <= 0 || ![regexp {^PORT (\d+)$} $line -> port]} {
            puts stderr "floor server did not start"
            exit 1
        }
        set s [connect $port]
        for {set i 0} {$i < 200} {incr i} roundtrip
        set us [timed $n]
        puts [format "%-7s %-4s %-34s %10.0f /s  (%d in %.3f s)" floor [info tclversion] \
            "fileevent ping-pong (no comm)" [expr {$n * 1e6 / $us}] $n [expr {$us / 1e6}]]
        close $s
        close $child
    }
}
