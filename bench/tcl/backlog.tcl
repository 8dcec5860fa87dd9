# Why a fast peer can make tcllib comm's receiver slower, and what would
# avoid it: tcllib's receiver (commCollect) schedules one `after idle` per
# message it reads, and Tcl removes each one, when it runs, by walking its
# list of pending `after` events from the newest (AfterProc): executing a
# backlog of K messages costs K*K/2 steps. Tcl services file events before
# idle handlers, so while data keeps arriving the backlog only grows. A
# sender slower than the receiver (tcllib's own) keeps it small; a faster
# one hands it everything at once.
#
# Three measures, each against tcllib comm in a child tclsh, no tclcomm:
# 1. the receive path alone, in this process: K messages found in one read;
# 2. an async burst of N messages into a tcllib server, written at once
#    (as any fast sender does) or paced (4 KB every G ms);
# 3. N callbacks from a tcllib client to a raw server that answers them
#    at once (as any fast server does) or paced.
# The paced runs show the fast path exists; no pace is right on every
# machine, and tcllib gives no signal of how far it has got (callbacks and
# async sends send nothing back, and TCP acknowledges reads, not the idle
# work that follows them).
# Usage: tclsh backlog.tcl ?N?   (children: backlog.tcl -server|-client ...)
package require comm

set mode [lindex $argv 0]
if {$mode eq "-server"} {
    proc bgerror args {}
    puts [::comm::comm self]
    flush stdout
    after 600000 exit
    vwait forever
}
if {$mode eq "-client"} {
    lassign $argv - port n
    after 120000 {puts -1; exit 1}
    proc cb {args} { if {[incr ::done] == $::n} { set ::fin 1 } }
    set ::done 0
    set t [clock microseconds]
    for {set i 0} {$i < $n} {incr i} { ::comm::comm send -command cb $port {set a 1} }
    vwait ::fin
    puts [expr {([clock microseconds] - $t) / 1e6}]
    exit 0
}
set n [expr {[llength $argv] ? [lindex $argv 0] : 20000}]
# Every wait below is in the event loop: a peer that dies or hangs ends
# the run here rather than holding it.
after 600000 {puts stderr "backlog.tcl: timed out"; exit 1}

# 1. The receive path alone: commCollect's loop over one read of K
# messages, then the K `after idle` handlers it scheduled.
proc receive {k} {
    set data [string repeat "{async 1 {{incr ::n}}}\n" $k]
    set t0 [clock microseconds]
    while {![catch {::comm::Word0 data} range]} {
        lassign $range s e step
        set cmd [string range $data $s $e]
        if {$cmd eq "" || ![info complete $cmd]} break
        set data [string range $data [incr e $step] end]
        after idle [list incr ::ran]
    }
    set t1 [clock microseconds]
    update idletasks
    set t2 [clock microseconds]
    puts [format "receive path, %6d messages in one read: collect %5.0f ms, run %5.0f ms" \
        $k [expr {($t1 - $t0) / 1e3}] [expr {($t2 - $t1) / 1e3}]]
}
foreach k [list [expr {$n / 4}] [expr {$n / 2}] $n] { receive $k }

proc child {args} {
    return [open |[list [info nameofexecutable] [info script] {*}$args] r]
}
proc stop {f} {
    catch {exec kill {*}[pid $f]}
    catch {close $f}
}

# 2. An async burst into a tcllib server, then one sync send that sees
# them all done.
proc gotline {s} {
    if {[gets $s line] >= 0} {
        if {[string match "*reply $::want *" $line]} { set ::got 1 }
    } elseif {[eof $s]} { set ::got eof }
}
proc burst {pace} {
    set srv [child -server]
    if {[gets $srv port] <= 0} { error "tcllib server did not start" }
    set s [socket 127.0.0.1 $port]
    fconfigure $s -buffering full -translation lf -blocking 0
    fileevent $s readable [list gotline $s]
    set ::want 1
    puts $s [list {3 2} 0]
    puts $s {{send 1 {{set ::n 0}}}}
    flush $s
    vwait ::got
    set msgs ""
    for {set i 2} {$i < $::n + 2} {incr i} { append msgs "{async $i {{incr ::n}}}\n" }
    set t [clock microseconds]
    if {$pace == 0} {
        puts -nonewline $s $msgs
        flush $s
    } else {
        for {set at 0} {$at < [string length $msgs]} {incr at 4096} {
            puts -nonewline $s [string range $msgs $at [expr {$at + 4095}]]
            flush $s
            after $pace
        }
    }
    set ::want [expr {$::n + 2}]
    puts $s "{send $::want {{set ::n}}}"
    flush $s
    vwait ::got
    set secs [expr {([clock microseconds] - $t) / 1e6}]
    close $s
    stop $srv
    return $secs
}
foreach pace {0 2 5 10 20} {
    set secs [burst $pace]
    puts [format "async burst of %d into tcllib, %-18s %.3f s (%.1fk/s)" $::n \
        [expr {$pace ? "4 KB every $pace ms:" : "written at once:"}] $secs [expr {$::n / $secs / 1e3}]]
}

# 3. Callbacks from a tcllib client to a raw server.
proc accept {pace s args} {
    fconfigure $s -buffering full -translation lf -blocking 0
    set ::out($s) ""
    fileevent $s readable [list request $pace $s]
    if {$pace} { after $pace [list release $pace $s] }
}
proc request {pace s} {
    while {[gets $s line] >= 0} {
        if {[catch {lindex $line 0} m] || [llength $m] != 3} continue
        lassign $m kind serial
        if {$kind eq "command"} { append ::out($s) "{callback $serial {return -code 0 1}}\n" }
    }
    if {[eof $s]} { close $s; unset ::out($s); return }
    if {!$pace} { puts -nonewline $s $::out($s); flush $s; set ::out($s) "" }
}
proc release {pace s} {
    if {![info exists ::out($s)]} return
    set cut [string last "\n" $::out($s) 4095]
    if {$cut >= 0} {
        puts -nonewline $s [string range $::out($s) 0 $cut]
        flush $s
        set ::out($s) [string range $::out($s) [incr cut] end]
    }
    after $pace [list release $pace $s]
}
foreach pace {0 2 5 10 20} {
    set l [socket -server [list accept $pace] -myaddr 127.0.0.1 0]
    set cli [child -client [lindex [fconfigure $l -sockname] 2] $n]
    fileevent $cli readable [list set ::ended($pace) 1]
    vwait ::ended($pace)
    set secs [gets $cli]
    if {![string is double -strict $secs] || $secs < 0} { error "tcllib client failed" }
    stop $cli
    close $l
    puts [format "%d callbacks from tcllib, %-18s %.3f s (%.1fk/s)" $::n \
        [expr {$pace ? "4 KB every $pace ms:" : "answered at once:"}] $secs [expr {$::n / $secs / 1e3}]]
}
