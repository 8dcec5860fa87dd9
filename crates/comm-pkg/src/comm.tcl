# The Tcl half of tclcomm's `comm` package: the API surface that is
# naturally Tcl (tcllib-identical argument errors, hooks evaluated in a frame
# holding tcllib's documented local variables, configuration). The wire,
# connections, serials, pending calls and evaluation fast paths live in Rust
# (commands ::comm::R*). Structure and texts follow tcllib comm 4.7.3
# (BSD-style tcllib license), so that scripts written for it run unchanged.

namespace eval ::comm {
    namespace export comm comm_send
    variable comm
    if {![info exists comm(chans)]} {
        array set comm {
            debug 0 chans {} localhost 127.0.0.1
            connecting,hook 1 connected,hook 1 incoming,hook 1 eval,hook 1
            callback,hook 1 reply,hook 1 lost,hook 1
            offerVers {3 2} acceptVers {3 2} defVers 2
            defaultEncoding utf-8 defaultSilent 0
        }
        set comm(lastport) [expr {[pid] % 32768 + 9999}]
    }
    # The option table, in the order tcllib's `configure` lists them.
    set comm(vars) {events socketcmd port silent encoding interp chan local listen serial socket}
    foreach {v t} {
        port p local b listen b socket ro socketcmd socketcmd chan ro
        serial ro encoding enc silent b interp interp events ev
    } {
        set comm($v,var) $t
    }
    unset -nocomplain v t
}

proc ::comm::comm_send {} {
    proc send {args} {
        uplevel 1 [linsert $args 0 ::comm::comm send]
    }
    rename winfo tk_winfo
    proc winfo {cmd args} {
        if {![string match in* $cmd]} {
            return [uplevel 1 [linsert $args 0 tk_winfo $cmd]]
        }
        return [::comm::comm interps]
    }
    proc ::comm::comm_send {} {}
}

# The channel commands are tcllib's procedures, line for line: a failed
# send's errorInfo shows their frames (`(procedure "::comm::comm" line 6)`),
# and break/continue from a remote turn into errors at their boundary, as in
# tcllib. One line differs: the method lookup, tcllib's
# `info commands ::comm::comm_cmd_$cmd*`, is ::comm::RMethod, which gives
# the same answer without scanning the namespace for a full method name
# (3 of the 5 microseconds a `send -async` spent in the procedure).
proc ::comm::comm {cmd args} {
    set method [::comm::RMethod $cmd]

    if {[llength $method] == 1} {
	set chan ::comm::comm; # passed to methods
	return [uplevel 1 [linsert $args 0 $method $chan]]
    } else {
	foreach c [info commands ::comm::comm_cmd_*] {
	    # remove ::comm::comm_cmd_
	    lappend cmds [string range $c 17 end]
	}
        return -code error "unknown subcommand \"$cmd\":\
		must be one of [join [lsort $cmds] {, }]"
    }
}

proc ::comm::comm_cmd_connect {chan args} {
    uplevel 1 [linsert $args 0 [namespace current]::commConnect $chan]
}
proc ::comm::comm_cmd_self {chan args} {
    variable comm
    return $comm($chan,port)
}
proc ::comm::comm_cmd_channels {chan args} {
    variable comm
    return $comm(chans)
}
proc ::comm::comm_cmd_configure {chan args} {
    uplevel 1 [linsert $args 0 [namespace current]::commConfigure $chan 0]
}
proc ::comm::comm_cmd_ids {chan args} {
    variable comm
    set res $comm($chan,port)
    concat [list $res] [::comm::RIds $chan]
}
interp alias {} ::comm::comm_cmd_interps {} ::comm::comm_cmd_ids
proc ::comm::comm_cmd_remoteid {chan args} {
    ::comm::RRemoteid $chan
}
proc ::comm::comm_cmd_debug {chan bool} {
    variable comm
    return [set comm(debug) [string is true -strict $bool]]
}
proc ::comm::comm_cmd_return_async {chan} {
    ::comm::RReturnAsync $chan
}

proc ::comm::comm_cmd_hook {chan hook {script +}} {
    variable comm
    if {![info exists comm($hook,hook)]} {
        return -code error "Unknown hook invoked"
    }
    if {!$comm($hook,hook)} {
        return -code error "Unimplemented hook invoked"
    }
    if {[string equal + $script]} {
        if {[catch {set comm($chan,hook,$hook)} ret]} {
            return
        }
        return $ret
    }
    if {[string match +* $script]} {
        append comm($chan,hook,$hook) \n [string range $script 1 end]
    } else {
        set comm($chan,hook,$hook) $script
    }
    ::comm::RHook $chan $hook 1
    return
}

proc ::comm::comm_cmd_abort {chan} {
    ::comm::RAbort $chan
    return
}

proc ::comm::comm_cmd_destroy {chan} {
    variable comm
    catch {close $comm($chan,socket)}
    ::comm::RDestroy $chan
    if {$comm($chan,interp) != {}} {
        interp delete $comm($chan,interp)
    }
    foreach v {port local silent interp events socket socketcmd} {
        unset -nocomplain comm($chan,$v)
    }
    unset comm($chan,chan) comm($chan,encoding) comm($chan,listen)
    foreach pattern {hook,* interp,* vers,*} {
        foreach k [array names comm $chan,$pattern] {unset comm($k)}
    }
    set pos [lsearch -exact $comm(chans) $chan]
    set comm(chans) [lreplace $comm(chans) $pos $pos]
    if {![string equal ::comm::comm $chan] && [llength [info commands $chan]]} {
        rename $chan {}
    }
    return
}

proc ::comm::comm_cmd_shutdown {chan id} {
    ::comm::RShutdown $chan $id
}

proc ::comm::comm_cmd_new {chan ch args} {
    variable comm
    if {[lsearch -exact $comm(chans) $ch] >= 0} {
        return -code error "Already existing channel: $ch"
    }
    if {([llength $args] % 2) != 0} {
        return -code error "Must have an even number of config arguments"
    }
    set ch ::[string trimleft $ch :]
    if {[string equal ::comm::comm $ch]} {
        # allow comm to be recreated after destroy
    } elseif {[string equal $ch [info commands $ch]]} {
        return -code error "Already existing command: $ch"
    } else {
	proc $ch {cmd args} {
	    set method [::comm::RMethod $cmd]

	    if {[llength $method] == 1} {
		# this should work right even if aliased
		# it is passed to methods to identify itself
		set chan [namespace origin [lindex [info level 0] 0]]
		return [uplevel 1 [linsert $args 0 $method $chan]]
	    } else {
		foreach c [info commands ::comm::comm_cmd_*] {
		    # remove ::comm::comm_cmd_
		    lappend cmds [string range $c 17 end]
		}
		return -code error "unknown subcommand \"$cmd\":\
			must be one of [join [lsort $cmds] {, }]"
	    }
	}
    }
    ::comm::RNew $ch
    lappend comm(chans) $ch
    set chan $ch
    set comm($chan,chan)   $chan
    set comm($chan,port)   0
    set comm($chan,listen) 0
    set comm($chan,socket) ""
    set comm($chan,local)  1
    set comm($chan,silent)   $comm(defaultSilent)
    set comm($chan,encoding) $comm(defaultEncoding)
    set comm($chan,interp)   {}
    set comm($chan,events)   {}
    set comm($chan,socketcmd) ::socket
    if {[llength $args] > 0} {
        if {[catch [linsert $args 0 commConfigure $chan 1] err]} {
            comm_cmd_destroy $chan
            return -code error $err
        }
    }
    return $chan
}

proc ::comm::commDebug {cmd} {
    variable comm
    if {$comm(debug)} {
        uplevel 1 $cmd
    }
}

proc ::comm::commConfigure {chan {force 0} args} {
    variable comm
    if {[llength $args] == 0} {
        foreach v $comm(vars) {
            if {$v eq "serial"} {
                lappend res -serial [::comm::RSerial $chan]
            } else {
                lappend res -$v $comm($chan,$v)
            }
        }
        return $res
    } elseif {[llength $args] == 1} {
        set arg [lindex $args 0]
        set var [string range $arg 1 end]
        if {![string match -* $arg] || ![info exists comm($var,var)]} {
            return -code error "Unknown configuration option: $arg"
        }
        if {$var eq "serial"} {
            return [::comm::RSerial $chan]
        }
        return $comm($chan,$var)
    }
    set opt 0
    foreach arg $args {
        incr opt
        if {[info exists skip]} {unset skip; continue}
        set var [string range $arg 1 end]
        if {![string match -* $arg] || ![info exists comm($var,var)]} {
            return -code error "Unknown configuration option: $arg"
        }
        set optval [lindex $args $opt]
        switch $comm($var,var) {
            ev {
                if {![string equal $optval ""]} {
                    set err 0
                    if {[catch {
                        foreach ev $optval {
                            if {[lsearch -exact {connecting connected incoming eval callback reply lost} $ev] < 0} {
                                set err 1
                                break
                            }
                        }
                    }]} {
                        set err 1
                    }
                    if {$err} {
                        return -code error "Non-event to configuration option: -$var"
                    }
                }
                set $var $optval
                set skip 1
            }
            interp {
                if {![string equal $optval ""] && ![interp exists $optval]} {
                    return -code error "Non-interpreter to configuration option: -$var"
                }
                set $var $optval
                set skip 1
            }
            b {
                set $var [string is true -strict $optval]
                set skip 1
            }
            p {
                # 4.7.3 validation and normalisation.
                if {![string is integer -strict $optval]} {
                    return -code error "Non-port to configuration option: -$var"
                } else {
                    set $var [format %d $optval]
                }
                set skip 1
            }
            enc {
                return -code error "encoding not configurable"
            }
            ro {
                return -code error "Readonly configuration option: -$var"
            }
            socketcmd {
                if {$optval eq {}} {
                    return -code error "Non-command to configuration option: -$var"
                }
                set $var $optval
                set skip 1
            }
        }
    }
    if {[info exists skip]} {
        return -code error "Missing value for option: $arg"
    }
    foreach var {port listen local socketcmd} {
        if {[info exists $var] && [set $var] != $comm($chan,$var)} {
            incr force
            set comm($chan,$var) [set $var]
        }
    }
    foreach var {silent interp events} {
        if {[info exists $var] && ([set $var] != $comm($chan,$var))} {
            set comm($chan,$var) [set ip [set $var]]
            if {$var eq "interp"} {
                ::comm::RInterp $chan [expr {$ip ne ""}]
            }
            if {[string equal $var "interp"] && ($ip != "")} {
                set comm($chan,interp,set)  [Capability $ip set]
                set comm($chan,interp,aset) [Capability $ip array]
                set comm($chan,interp,upl)  [Capability $ip uplevel]
            }
        }
    }
    if {!$force} {return ""}

    # Recycle: abort connections, close the listener, listen again.
    if {[info exists comm($chan,socket)]} {
        ::comm::RAbort $chan
        catch {close $comm($chan,socket)}
        unset comm($chan,socket)
    }
    set comm($chan,socket) ""
    if {!$comm($chan,listen)} {
        set comm($chan,port) 0
        ::comm::RSetId $chan 0
        return ""
    }
    if {[info exists port] && [string equal "" $comm($chan,port)]} {
        set nport [incr comm(lastport)]
    } else {
        set userport 1
        set nport $comm($chan,port)
    }
    while {1} {
        if {$comm($chan,socketcmd) in {::socket socket} && ![interp issafe]} {
            # Tcl's own sockets: listened on and accepted in Rust (both
            # 127.0.0.1 and ::1 with -local 1), still through commIncoming.
            # (A safe interpreter has no sockets: it gets Tcl's error.)
            set cmd [list ::comm::RListen $chan $comm($chan,local) $nport]
        } else {
            set cmd [list $comm($chan,socketcmd) -server [list ::comm::commIncoming $chan]]
            if {$comm($chan,local)} {
                lappend cmd -myaddr $comm(localhost)
            }
            lappend cmd $nport
        }
        if {![catch $cmd ret]} {
            break
        }
        if {[info exists userport] || ![string match "*already in use" $ret]} {
            if {![string equal ::comm::comm $chan] && [llength [info commands $chan]]} {
                rename $chan {}
            }
            return -code error $ret
        }
        set nport [incr comm(lastport)]
    }
    set comm($chan,socket) $ret
    set comm($chan,port) [lindex [fconfigure $ret -sockname] 2]
    ::comm::RSetId $chan $comm($chan,port)
    return ""
}

proc ::comm::Capability {interp cmd} {
    if {[lsearch -exact [interp hidden $interp] $cmd] >= 0} {
        return hidden
    }
    if {[catch {
        set has [llength [interp eval $interp [list info commands $cmd]]]
    }] && [catch {
        set has [llength [interp invokehidden $interp info commands $cmd]]
    }]} {
        set has 0
    }
    return [expr {$has ? "ok" : "no"}]
}

# Laid out as tcllib's: errorInfo names its line numbers.
proc ::comm::commConnect {chan id} {
    variable comm

    commDebug {puts stderr "<$chan> commConnect $id"}

    # process connecting hook now
    CommRunHook $chan connecting

    if {[set fid [::comm::RPeer $chan $id]] ne ""} {
	return $fid
    }
    if {[lindex $id 0] == 0} {
	return -code error "Remote comm is anonymous; cannot connect"
    }

    if {[llength $id] > 1} {
	set host [lindex $id 1]
    } else {
	set host $comm(localhost)
    }
    set port [lindex $id 0]
    set fid [$comm($chan,socketcmd) $host $port]
    if {[catch {
        CommRunHook $chan connected
    } err]} {
        global errorInfo
        set ei $errorInfo
        close $fid
        error $err $ei
    }
    ::comm::RConnected $chan $id $fid
    set comm($chan,vers,$id) $comm(defVers)
    return $fid
}

proc ::comm::commIncoming {chan fid addr remport} {
    variable comm
    if {[catch {
        CommRunHook $chan incoming
    } err]} {
        global errorInfo
        set ei $errorInfo
        close $fid
        error $err $ei
    }
    ::comm::RAccepted $chan $fid $addr $remport
    return
}

# Called by Rust for a received send/async/command when the channel has an
# eval hook or an -interp: tcllib's commExec from the hook on. Returns
# {code result ?errorInfo errorCode?}.
proc ::comm::commExecSlow {chan fid id cmd ser buffer} {
    variable comm
    set remoteid $id
    set buf [list $buffer]
    set done 0
    set err  0
    if {[info exists comm($chan,hook,eval)]} {
        set err [catch {CommRunHook $chan eval} ret]
        switch $err {
            1 {
                set done 1
            }
            2 - 3 {
                set err 0
                set done 1
            }
        }
    }
    if {!$done} {
        if {$comm($chan,interp) == {}} {
            set thecmd [concat [list uplevel \#0] $buffer]
            set err    [catch $thecmd ret]
        } else {
            set interp $comm($chan,interp)
            if {$comm($chan,interp,upl) == "ok"} {
                set thecmd [concat [list uplevel \#0] $buffer]
                set err [catch {interp eval $interp $thecmd} ret]
            } elseif {$comm($chan,interp,aset) == "hidden"} {
                set thecmd [linsert $buffer 0 interp invokehidden $interp uplevel \#0]
                set err [catch $thecmd ret]
            } else {
                set thecmd [concat [list interp eval $interp] $buffer]
                set err [catch $thecmd ret]
            }
        }
    }
    if {$err == 1} {
        global errorInfo errorCode
        return [list $err $ret $errorInfo $errorCode]
    }
    return [list $err $ret]
}

# Called by Rust for a reply or callback when the channel has that hook:
# the hook may change `ret` and `return(...)`.
proc ::comm::commReplyHook {chan cmd fid id ser args} {
    variable comm
    set remoteid $id
    lassign $args c e1 e2 ret
    if {$c == 1} {
        set buffer [list return -code $c -errorinfo $e1 -errorcode $e2 $ret]
    } else {
        set buffer [list return -code $c $ret]
    }
    unset args c e1 e2
    set buf [list $buffer]
    array set return {-code "" -errorinfo "" -errorcode ""}
    set len [llength $buffer]
    incr len -2
    foreach {sw val} [lrange $buffer 1 $len] {
        if {![info exists return($sw)]} continue
        set return($sw) $val
    }
    catch {CommRunHook $chan $cmd}
    list $return(-code) $return(-errorinfo) $return(-errorcode) $ret
}

# The lost hook, in a frame holding what tcllib's commLostConn has: its
# loop over the failed calls leaves `s` (the last one) and, if a callback
# was among them, `ser args err` of the last callback.
proc ::comm::commLostHook {chan fid id reason pending last} {
    foreach s $pending {}
    if {[llength $last]} {
        lassign $last ser args err
    }
    unset pending last
    catch {CommRunHook $chan lost}
    return
}

proc ::comm::commBgerror {err} {
    if {[catch {bgerror $err} msg]} {
        puts stderr "bgerror failed to handle background error."
        puts stderr "    Original error: $err"
        puts stderr "    Error in bgerror: $msg"
        flush stderr
    }
}

# tcllib's, verbatim (its line numbers show in errorInfo).
proc ::comm::CommRunHook {chan event} {
    variable comm

    # The documentation promises the hook scripts to have access to a
    # number of internal variables. For a regular hook we simply
    # execute it in the calling level to fulfill this. When the hook
    # is redirected into an interpreter however we do a best-effort
    # copying of the variable values into the interpreter. Best-effort
    # because the 'set' command may not be available in the
    # interpreter, not even hidden.

    if {![info exists comm($chan,hook,$event)]} return
    set cmd    $comm($chan,hook,$event)
    set interp $comm($chan,interp)
    commDebug {puts stderr "<$chan> hook($event) run <$cmd>"}

    if {
	($interp != {}) &&
	([lsearch -exact $comm($chan,events) $event] >= 0)
    } {
	# Best-effort to copy the context into the interpreter for
	# access by the hook script.
	set vars   {
	    addr buffer chan cmd fid host
	    id port reason remport ret var
	}

	if {$comm($chan,interp,set) == "ok"} {
	    foreach v $vars {
		upvar 1 $v V
		if {![info exists V]} continue
		interp eval $interp [list set $v $V]
	    }
	} elseif {$comm($chan,interp,set) == "hidden"} {
	    foreach v $vars {
		upvar 1 $v V
		if {![info exists V]} continue
		interp invokehidden $interp set $v $V
	    }
	}
	upvar 1 return AV
	if {[info exists AV]} {
	    if {$comm($chan,interp,aset) == "ok"} {
		interp eval $interp [list array set return [array get AV]]
	    } elseif {$comm($chan,interp,aset) == "hidden"} {
		interp invokehidden $interp array set return [array get AV]
	    }
	}

	commDebug {puts stderr "<$chan> /interp $interp"}
	set code [catch {interp eval $interp $cmd} res options]
    } else {
	commDebug {puts stderr "<$chan> /main"}
	set code [catch {uplevel 1 $cmd} res options]
    }

    # Perform the return code propagation promised
    # to the hook scripts.
    return -options $options -code $code $res
}

# tcllib wraps the global vwait and update: a request that runs the event
# loop keeps its identity (`remoteid`, and what `return_async` refers to)
# across whatever is processed meanwhile. The state is the package's (Rust);
# `::comm::RState` saves it and `::comm::RState N` restores save N. The
# originals are kept in ::tclcomm, so that `namespace delete ::comm` and a
# new load (tcllib's test suite does it) find them again.
proc ::comm::InitWrappers {} {
    if {![llength [info commands ::tclcomm::VwaitOrig]]} {
        rename ::vwait  ::tclcomm::VwaitOrig
        rename ::update ::tclcomm::UpdateOrig
    }
    interp alias {} ::comm::VwaitOrig  {} ::tclcomm::VwaitOrig
    interp alias {} ::comm::UpdateOrig {} ::tclcomm::UpdateOrig
    proc ::vwait {varname} {
        set state [::comm::RState]
        set code [catch {uplevel 1 [list ::comm::VwaitOrig $varname]} res]
        ::comm::RState $state
        return -code $code $res
    }
    proc ::update {args} {
        set state [::comm::RState]
        set code [catch {uplevel 1 [linsert $args 0 ::comm::UpdateOrig]} res]
        ::comm::RState $state
        return -code $code $res
    }
    proc ::comm::InitWrappers {} {}
    return
}
::comm::InitWrappers

if {![info exists ::comm::comm(::comm::comm,port)]} {
    ::comm::comm_cmd_new ::comm::comm ::comm::comm -port 0 -local 1 -listen 1
}
