# The server side of comm_bench.tcl.
lassign $argv kind master
# tcllib: comm 4.7 (tcllib 1.21) in tclsh 8.6, 4.7.3 (tcllib 2.0) in tclsh9.0.
if {$kind eq "tcllib"} {
    package require -exact comm [expr {[package vsatisfies [package provide Tcl] 9-] ? "4.7.3" : "4.7"}]
} else {
    package require comm 4.8
}
after 600000 exit
::comm::comm send $master [list ready [::comm::comm self]]
vwait forever
