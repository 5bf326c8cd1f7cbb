# all.tcl: runs every test/*.test file, each in its own child tclsh, and sums
# their counts. The last line printed is exactly "N passed, N failed"; the
# exit status is nonzero when anything failed.
#
#   tclsh test/all.tcl [FILE.test ...]
#
# Environment (passed on to the children): PAGEPIR_BACKEND (default cpu; cuda
# on a GPU host makes every table of the suite use backend='cuda'),
# PAGEPIR_EXT (the extension, default ./pagepir, else the repository's;
# tester.tcl resolves it), PAGEPIR_VERBOSE.
# A child that dies, or ends without its summary line, counts as 1 failed.

set testdir [file dirname [file normalize [info script]]]
if {![info exists env(PAGEPIR_BACKEND)] || $env(PAGEPIR_BACKEND) eq ""} {
  set env(PAGEPIR_BACKEND) cpu
}

if {[llength $argv]} {
  set files [lmap f $argv {file normalize $f}]
} else {
  set files [lsort [glob -directory $testdir *.test]]
}

set tclsh [info nameofexecutable]
set passed 0
set failed 0
set failed_files {}
set start [clock milliseconds]
foreach f $files {
  set name [file tail $f]
  set t0 [clock milliseconds]
  # Output streams through; the summary line is picked out at the end.
  set chan [open |[list $tclsh $f 2>@1] r]
  set last ""
  while {[gets $chan line] >= 0} {
    puts $line
    flush stdout
    if {[string trim $line] ne ""} { set last $line }
  }
  set rc 0
  if {[catch {close $chan} err opts]} {
    set code [lindex [dict get $opts -errorcode] 0]
    set rc [expr {$code eq "CHILDSTATUS" ? [lindex [dict get $opts -errorcode] 2] : 1}]
  }
  set secs [format %.1f [expr {([clock milliseconds] - $t0) / 1000.0}]]
  if {[regexp {^(\d+) passed, (\d+) failed$} $last -> p fl]} {
    if {$rc != 0 && $fl == 0} {
      puts "$name: exited with status $rc after its summary: counted as 1 failed"
      set fl 1
    }
  } else {
    puts "$name: no summary line (exit status $rc): counted as 1 failed"
    set p 0
    set fl 1
  }
  incr passed $p
  incr failed $fl
  if {$fl} { lappend failed_files $name }
  puts "== $name: $p passed, $fl failed (${secs}s)"
}
set secs [format %.1f [expr {([clock milliseconds] - $start) / 1000.0}]]
puts "== Tcl suite, backend $env(PAGEPIR_BACKEND): [llength $files] files in ${secs}s[expr {[llength $failed_files] ? "; failures in: $failed_files" : ""}]"
puts "$passed passed, $failed failed"
exit [expr {$failed > 0}]
