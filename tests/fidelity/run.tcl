# Runs the differential suite (cases.tcl) under tcllib comm 4.7, tcllib comm
# 4.7.3 and our comm, each in its own tclsh, and compares ours with each
# case by case. A difference passes only if deliberate.txt lists it.
#
# usage: tclsh run.tcl -ours PKGDIR -tcllib473 TCLTKDIR ?-out DIR? ?-verbose 1?
#   PKGDIR     a directory holding our package (comm/ with pkgIndex.tcl),
#              put first on TCLLIBPATH
#   TCLTKDIR   tcllib 2.0's usr/share/tcltk (from ../shared/tools/tcl9-env)
# Exits 0 when every difference is deliberate, 1 otherwise (or when a
# run fails, or an implementation is missing).

set here [file dirname [file normalize [info script]]]
array set opt {-out "" -verbose 0 -ours "" -tcllib473 ""}
array set opt $argv
foreach k {-ours -tcllib473} {
    if {$opt($k) eq ""} {puts stderr "usage: tclsh run.tcl -ours PKGDIR -tcllib473 TCLTKDIR"; exit 2}
}
if {$opt(-out) eq ""} {
    set opt(-out) [file join [expr {[info exists env(TMPDIR)] ? $env(TMPDIR) : "/tmp"}] fidelity-[pid]]
}
file mkdir $opt(-out)

# name -> {TCLLIBPATH expected-version}
set impls [list \
    4.7 [list "" 4.7] \
    4.7.3 [list $opt(-tcllib473) 4.7.3] \
    ours [list $opt(-ours) 4.8]]

proc run_impl {name path version} {
    global here opt env
    set out [file join $opt(-out) $name.out]
    set err [file join $opt(-out) $name.err]
    file delete $out
    if {$path eq ""} {
        unset -nocomplain env(TCLLIBPATH)
    } else {
        set env(TCLLIBPATH) [list $path]
    }
    set cmd [list timeout 300 [info nameofexecutable] [file join $here cases.tcl] $out]
    set rc [catch {exec {*}$cmd 2> $err} msg]
    unset -nocomplain env(TCLLIBPATH)
    if {![file exists $out]} {
        error "$name: no output ($msg)"
    }
    set f [open $out]
    fconfigure $f -encoding utf-8
    set lines [split [string trimright [read $f] \n] \n]
    close $f
    set got [lindex $lines 0 1]
    if {[lindex $lines 0 0] ne "version" || $got ne $version} {
        error "$name: package require comm gave \"$got\", not $version"
    }
    if {[lindex $lines end] ne "done"} {
        error "$name: the run stopped early ([lindex $lines end]); see $err"
    }
    set d [dict create]
    foreach l [lrange $lines 1 end-1] {
        set l [string map [list \\\\ \\ \\n \n \\r \r \\0 \0] $l]
        set name2 [lindex $l 0]
        if {[dict exists $d $name2]} {error "$name: duplicate case $name2"}
        dict set d $name2 [lindex $l 1]
    }
    return $d
}

# deliberate.txt: `REF CASE-PATTERN REASON...`; REF is 4.7, 4.7.3 or all;
# CASE-PATTERN a glob on case names.
set deliberate {}
set f [open [file join $here deliberate.txt]]
fconfigure $f -encoding utf-8
foreach l [split [read $f] \n] {
    set l [string trim $l]
    if {$l eq "" || [string match #* $l]} continue
    regexp {^(\S+)\s+(\S+)\s*(.*)$} $l -> ref pat reason
    if {$reason eq ""} {error "deliberate.txt: no reason for $ref $pat"}
    lappend deliberate [list $ref $pat $reason]
}
close $f

set results {}
foreach {name spec} $impls {
    if {[catch {dict set results $name [run_impl $name {*}$spec]} msg]} {
        puts stderr "fidelity: $msg"
        exit 1
    }
}

set status 0
set used {}
set ours [dict get $results ours]
foreach ref {4.7.3 4.7} {
    set theirs [dict get $results $ref]
    set same 0
    set delib 0
    set bad {}
    foreach c [dict keys $theirs] {
        if {![dict exists $ours $c]} {
            lappend bad $c
            continue
        }
        if {[dict get $theirs $c] eq [dict get $ours $c]} {
            incr same
            continue
        }
        set why ""
        foreach e $deliberate {
            lassign $e r p reason
            if {$r ne $ref && $r ne "all"} continue
            foreach pp [split $p ,] {
                if {[string match $pp $c]} {
                    set why $reason
                    dict set used $e 1
                    break
                }
            }
            if {$why ne ""} break
        }
        if {$why ne ""} {
            incr delib
            if {$opt(-verbose)} {puts "deliberate vs $ref: $c ($why)"}
        } else {
            lappend bad $c
        }
    }
    foreach c [dict keys $ours] {
        if {![dict exists $theirs $c]} {lappend bad $c}
    }
    set n [dict size $theirs]
    puts "fidelity vs tcllib comm $ref: $n cases, $same same, $delib deliberate differences, [llength $bad] other differences"
    foreach c $bad {
        set status 1
        puts "  DIFF $c"
        puts "    tcllib $ref: [expr {[dict exists $theirs $c] ? [dict get $theirs $c] : "(missing)"}]"
        puts "    ours:        [expr {[dict exists $ours $c] ? [dict get $ours $c] : "(missing)"}]"
    }
}
foreach e $deliberate {
    if {![dict exists $used $e]} {
        puts "fidelity: deliberate.txt entry matches no difference: [lrange $e 0 1]"
        set status 1
    }
}
puts "fidelity: outputs in $opt(-out)"
exit $status
