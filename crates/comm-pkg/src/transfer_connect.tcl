# transfer::connect: tclcomm's drop-in for tcllib's package of that name
# (tcllib module `transfer`), in plain Tcl, without snit.
#
# An object holds enough to either connect to its counterpart (mode
# active) or wait for it (mode passive: listen, accept exactly one peer,
# stop listening). Same object command, options, method names, error
# strings and completion (`after 0 {*}command obj sock`) as tcllib's, so
# tcllib's transfer::transmitter and transfer::receiver run on top of it.
#
# Differences, deliberate:
# - Destroying (or deleting the command of) an object waiting in passive
#   mode closes its listening socket; tcllib leaves it open, and the peer
#   that connects later triggers a background error.
# - Not a snit type: the type command offers `create` and `info
#   instances`, objects `configure`, `cget`, `configurelist`, `connect`,
#   `destroy` and `info type|options`.

package require Tcl 8.5-  ;# and 9 ("8.5" alone means 8.5 to 9)

namespace eval ::transfer {}
namespace eval ::transfer::connect {
    # Option names in tcllib's order, with their defaults.
    variable optionlist {
        -host localhost -port 0 -mode active -socketcmd ::socket
        -translation {} -encoding {} -eofchar {}
    }
    # Object counter (state lives in the arrays Obj<n>) and %AUTO% counter.
    variable counter 0
    variable autocounter 0
    # Fully-qualified object name -> object number.
    variable instances
    array set instances {}
}

# The type command: `transfer::connect name ?option value ...?`,
# `transfer::connect create name ...`, `transfer::connect info instances`.
proc ::transfer::connect {args} {
    if {![llength $args]} {
        return -code error "wrong # args: should be\
            \"[lindex [info level 0] 0] subcommand ?arg ...?\""
    }
    set name [lindex $args 0]
    if {$name eq "info" && [lindex $args 1] eq "instances" && [llength $args] == 2} {
        return [lsort [array names ::transfer::connect::instances]]
    }
    if {$name eq "create" && [llength $args] > 1} {
        set args [lrange $args 1 end]
        set name [lindex $args 0]
    }
    set ns [uplevel 1 {namespace current}]
    return [::transfer::connect::Create $ns $name [lrange $args 1 end]]
}

proc ::transfer::connect::Create {ns name options} {
    variable counter
    variable autocounter
    variable optionlist
    variable instances
    if {[string match *%AUTO%* $name]} {
        while 1 {
            incr autocounter
            set try [string map [list %AUTO% connect$autocounter] $name]
            if {![llength [info commands [Qualify $ns $try]]]} break
        }
        set name $try
    }
    set self [Qualify $ns $name]
    if {[llength [info commands $self]]} {
        return -code error "command \"$self\" already exists"
    }
    set id [incr counter]
    upvar #0 ::transfer::connect::Obj$id o
    array set o $optionlist
    set o(self) $self
    set o(sock) {}
    # The object command; `info level 0` gives the name as invoked, which
    # snit's `wrong # args` messages show.
    proc $self {args} [format {
        ::transfer::connect::Dispatch %d [lindex [info level 0] 0] $args
    } $id]
    set instances($self) $id
    trace add command $self delete [list ::transfer::connect::Gone $id]
    trace add command $self rename [list ::transfer::connect::Renamed $id]
    if {[catch {Configurelist $id $options} msg]} {
        Destroy $id
        return -code error "Error in constructor: $msg"
    }
    return $self
}

proc ::transfer::connect::Qualify {ns name} {
    if {[string match ::* $name]} {return $name}
    if {$ns eq "::"} {return ::$name}
    return ${ns}::$name
}

# Object methods, dispatched by exact name as snit does.
proc ::transfer::connect::Dispatch {id cmd arguments} {
    variable optionlist
    upvar #0 ::transfer::connect::Obj$id o
    if {![llength $arguments]} {
        return -code error "wrong # args: should be \"$cmd subcommand ?arg ...?\""
    }
    set rest [lrange $arguments 1 end]
    switch -exact -- [lindex $arguments 0] {
        configure {
            switch -exact -- [llength $rest] {
                0 {
                    set spec {}
                    foreach {opt default} $optionlist {
                        lappend spec [Spec $id $opt]
                    }
                    return $spec
                }
                1 {
                    set opt [lindex $rest 0]
                    if {![dict exists $optionlist $opt]} {
                        return -code error "unknown option \"$opt\""
                    }
                    return [Spec $id $opt]
                }
                default {
                    Configurelist $id $rest
                    return
                }
            }
        }
        cget {
            if {[llength $rest] != 1} {
                return -code error "wrong # args: should be \"$cmd cget option\""
            }
            set opt [lindex $rest 0]
            if {![dict exists $optionlist $opt]} {
                return -code error "unknown option \"$opt\""
            }
            return $o($opt)
        }
        configurelist {
            if {[llength $rest] != 1} {
                return -code error "wrong # args: should be \"$cmd configurelist optionlist\""
            }
            Configurelist $id [lindex $rest 0]
            return
        }
        connect {
            if {[llength $rest] != 1} {
                return -code error "wrong # args: should be \"$cmd connect command\""
            }
            return [Connect $id [lindex $rest 0]]
        }
        destroy {
            if {[llength $rest] != 0} {
                return -code error "wrong # args: should be \"$cmd destroy\""
            }
            Destroy $id
            return
        }
        info {
            switch -exact -- [lindex $rest 0] {
                type {return ::transfer::connect}
                options {return [dict keys $optionlist]}
            }
            return -code error "unknown subcommand \"[lindex $rest 0]\": must be options or type"
        }
    }
    return -code error "unknown subcommand \"[lindex $arguments 0]\":\
        must be cget, configure, or configurelist"
}

# `configure -opt` answers as snit does: name, database name and class,
# default, current value.
proc ::transfer::connect::Spec {id opt} {
    variable optionlist
    upvar #0 ::transfer::connect::Obj$id o
    set db [string range $opt 1 end]
    return [list $opt $db [string totitle $db] [dict get $optionlist $opt] $o($opt)]
}

# Sets options in order (the ones before a bad one stay set, as in snit);
# a missing last value is the empty string, as in snit.
proc ::transfer::connect::Configurelist {id options} {
    variable optionlist
    upvar #0 ::transfer::connect::Obj$id o
    foreach {opt value} $options {
        if {![dict exists $optionlist $opt]} {
            return -code error "unknown option \"$opt\""
        }
        if {$opt eq "-mode" && $value ni {active passive}} {
            return -code error "invalid -mode value: invalid value \"$value\",\
                should be one of: active, passive"
        }
        set o($opt) $value
    }
    return
}

# Active: open the socket, configure it, schedule the completion; returns
# "". Passive: listen and return the port; the completion comes with the
# first (and only) peer.
proc ::transfer::connect::Connect {id command} {
    upvar #0 ::transfer::connect::Obj$id o
    if {$o(-mode) eq "active"} {
        set sock [Socket $id $o(-host) $o(-port)]
        Configure $id $sock $command
        return
    }
    set o(sock) [Socket $id -server [list ::transfer::connect::Accepted $id $command] $o(-port)]
    return [lindex [fconfigure $o(sock) -sockname] 2]
}

# -socketcmd is one command word, as in tcllib (and comm).
proc ::transfer::connect::Socket {id args} {
    upvar #0 ::transfer::connect::Obj$id o
    return [eval [linsert $args 0 $o(-socketcmd)]]
}

proc ::transfer::connect::Accepted {id command sock peerhost peerport} {
    upvar #0 ::transfer::connect::Obj$id o
    # Accept only one connection.
    if {$o(sock) ne ""} {
        catch {close $o(sock)}
        set o(sock) {}
    }
    Configure $id $sock $command
    return
}

proc ::transfer::connect::Configure {id sock command} {
    upvar #0 ::transfer::connect::Obj$id o
    foreach opt {-translation -encoding -eofchar} {
        if {$o($opt) eq ""} continue
        fconfigure $sock $opt $o($opt)
    }
    after 0 [linsert $command end $o(self) $sock]
    return
}

# Closes a waiting listener and forgets the object; deletes its command
# unless that is what is being deleted.
proc ::transfer::connect::Destroy {id} {
    variable instances
    upvar #0 ::transfer::connect::Obj$id o
    if {![info exists o(self)]} return
    set self $o(self)
    if {$o(sock) ne ""} {
        catch {close $o(sock)}
    }
    unset o
    unset -nocomplain instances($self)
    if {[llength [info commands $self]]} {
        trace remove command $self delete [list ::transfer::connect::Gone $id]
        trace remove command $self rename [list ::transfer::connect::Renamed $id]
        rename $self {}
    }
    return
}

proc ::transfer::connect::Gone {id args} {
    Destroy $id
}

proc ::transfer::connect::Renamed {id old new op} {
    variable instances
    upvar #0 ::transfer::connect::Obj$id o
    if {$new eq "" || ![info exists o(self)]} return
    unset -nocomplain instances($o(self))
    set o(self) [namespace which -command $new]
    set instances($o(self)) $id
}

package provide transfer::connect 0.4
