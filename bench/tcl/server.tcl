# The server side of comm_bench.tcl.
lassign $argv kind master
if {$kind eq "tcllib"} {package require -exact comm 4.7} else {package require comm 4.8}
after 600000 exit
::comm::comm send $master [list ready [::comm::comm self]]
vwait forever
