# A peer process: slave.tcl master-id kind seq ?setup-script?
lassign $argv master kind seq setup
if {$kind eq "tcllib"} {
    package require -exact comm 4.7
} elseif {$kind eq "tcllib473"} {
    # tcllib 2.0's comm, on TCLLIBPATH (see helpers.tcl).
    package require -exact comm 4.7.3
} else {
    package require comm 4.8
}
# Never outlive the test run.
after 120000 exit
proc bgerror {m} {}
set foo {}
set fox {}
if {$setup ne ""} {eval $setup}
proc slaveid {} {::comm::comm self}
::comm::comm send $::master [list slaveat $seq [::comm::comm self]]
vwait forever
