# Cost of TLS (::comm::tls, rustls in the package) against plain sockets,
# ours on both sides, measured in the same run:
#   tclsh tls_bench.tcl CERTDIR ?MB?     (bench/tcl/tls-run makes the certs)
# CERTDIR holds ca.pem, server.pem/key, client.pem/key. The server is a
# second tclsh with two channels, one plain and one TLS (client
# certificates required). Prints one line per measure.
lassign $argv certdir bigmb role master
if {$bigmb eq ""} {set bigmb 50}
package require comm 4.8
proc cert {f} {file join $::certdir $f}

if {$role eq "server"} {
    after 600000 exit
    ::comm::comm new ::TLS -listen 1 -local 1
    ::comm::tls ::TLS -certfile [cert server.pem] -keyfile [cert server.key] \
        -cafile [cert ca.pem] -require 1
    ::comm::comm send $master [list ready [::comm::comm self] [::TLS self]]
    vwait forever
}

proc ready {plain tls} {set ::srv [list $plain $tls]}
exec [info nameofexecutable] [info script] $certdir $bigmb server [::comm::comm self] &
after 20000 {set ::srv timeout}
vwait ::srv
if {$::srv eq "timeout"} {puts stderr "server did not start"; exit 1}
lassign $::srv plain tls

::comm::comm new ::C
::comm::tls ::C -certfile [cert client.pem] -keyfile [cert client.key] -cafile [cert ca.pem]

proc measure {label script} {
    set t0 [clock microseconds]
    uplevel #0 $script
    return [expr {max(1, [clock microseconds] - $t0) / 1e6}]
}
# Plain through the default channel, TLS through ::C (same package, same
# server process); warm up both (and make the connections).
set n 5000
foreach {what ch id} [list plain ::comm::comm $plain tls ::C $tls] {
    for {set i 0} {$i < 200} {incr i} {$ch send $id {set x 1}}
}
set unit "\{\}\\\$\[\] \"x\n\t\u00e9;"
set big [string repeat $unit [expr {$bigmb * 1000000 / [string length [encoding convertto utf-8 $unit]]}]]
foreach round {1 2} {
    foreach {what ch id} [list plain ::comm::comm $plain tls ::C $tls] {
        set s [measure sync {for {set i 0} {$i < $::n} {incr i} {$::ch send $::id {set x 1}}}]
        puts [format "round %d %-5s sync round trips %10.0f /s  (%d in %.3f s)" \
                  $round $what [expr {$n / $s}] $n $s]
        set s [measure big {set ::back [$::ch send $::id [list set ::big $::big]]}]
        if {![string equal $::back $big]} {error "payload corrupted"}
        puts [format "round %d %-5s %d MB round trip     %10.3f s  (%.0f MB/s, both ways counted)" \
                  $round $what $bigmb $s [expr {2 * $bigmb / $s}]]
        unset ::back
        $ch send $id {unset ::big}
    }
}
::comm::comm send -async $plain exit
after 200
exit 0
