# tester.tcl: the harness of pagepir's Tcl suite, in the style of SQLite's.
#
# A test file starts with
#     source [file join [file dirname [info script]] tester.tcl]
# and ends with finish_test, which prints "N passed, N failed" as its last line
# and exits nonzero when something failed. test/all.tcl runs every test file in
# a child process and sums those lines. A test file also runs on its own:
#     tclsh test/roundtrip.test
#
# Environment:
#   PAGEPIR_EXT      the extension to load (default ./pagepir, else <repo>/pagepir)
#   PAGEPIR_BACKEND  backend of every table the suite creates (default cpu)
#   PAGEPIR_VERBOSE  1: print every test's name, not just failures
#
# Test commands:
#   do_test NAME SCRIPT EXPECTED        result of SCRIPT equals EXPECTED (exact
#                                       string; /re/ means a regexp match)
#   do_execsql_test NAME SQL EXPECTED   rows of SQL (db), as a flat Tcl list
#   do_catchsql_test NAME SQL EXPECTED  {0 {rows}} or {1 {error message}}
#   finish_test
#
# Helpers: pq_open, pq_create, pq_create_sql (the one place that adds the
# backend), actual_backend, simd_available, cuda_state, snapshot (via
# build/mksnap), hex/unhex, blob_xor, zero_page, read_page, file_sha256,
# vector_json, and ref::* (an independent Tcl implementation of ChaCha8, the
# DPF and the answer/proof formulas, checked by reference.test).
# Before the first test, a preflight opens one table with the chosen backend:
# if that fails, the file reports that as its single failure.

package require Tcl 8.6
package require sqlite3

set ::testdir [file dirname [file normalize [info script]]]
set ::rootdir [file dirname $::testdir]
set ::vectordir [file join $::testdir vectors]
set ::mksnap [file join $::rootdir build mksnap]

# The extension: PAGEPIR_EXT, else ./pagepir, else the one in the repository.
proc find_extension {} {
  global env
  if {[info exists env(PAGEPIR_EXT)] && $env(PAGEPIR_EXT) ne ""} {
    return [file normalize $env(PAGEPIR_EXT)]
  }
  set here [file normalize ./pagepir]
  if {[file exists $here.so] || [file exists $here]} { return $here }
  return [file join $::rootdir pagepir]
}
set ::ext [find_extension]
set ::backend cpu
if {[info exists env(PAGEPIR_BACKEND)] && $env(PAGEPIR_BACKEND) ne ""} {
  set ::backend $env(PAGEPIR_BACKEND)
}
set ::verbose [expr {[info exists env(PAGEPIR_VERBOSE)] && $env(PAGEPIR_VERBOSE) ne "" && $env(PAGEPIR_VERBOSE)}]

# A private folder per test file under test/tmp/ (gitignored), emptied first.
set ::testfile [file rootname [file tail $::argv0]]
set ::tmpdir [file join $::testdir tmp $::testfile]
file delete -force $::tmpdir
file mkdir $::tmpdir

# ---- counters and test commands ---------------------------------------------
set ::nPass 0
set ::nFail 0
set ::failList {}

# At most 400 characters, anything unprintable (answers, keys) as \xNN.
proc _show {s} {
  set n [string length $s]
  set out ""
  foreach c [split [string range $s 0 399] ""] {
    scan $c %c v
    if {$v < 32 || $v > 126} { append out [format {\x%02x} [expr {$v & 0xff}]] } else { append out $c }
  }
  if {$n > 400} { append out "... ($n chars)" }
  return $out
}

proc _matches {result expected} {
  if {[string length $expected] >= 2 && [string index $expected 0] eq "/"
      && [string index $expected end] eq "/"} {
    return [regexp -- [string range $expected 1 end-1] $result]
  }
  return [expr {$result eq $expected}]
}

proc do_test {name script expected} {
  if {$::verbose} { puts -nonewline "$name..."; flush stdout }
  set rc [catch {uplevel 1 $script} result opts]
  if {$rc == 1} {
    set result "TCL ERROR: $result"
  }
  if {[_matches $result $expected]} {
    incr ::nPass
    if {$::verbose} { puts " Ok" }
  } else {
    incr ::nFail
    lappend ::failList $name
    if {$::verbose} { puts "" }
    puts "! $::testfile $name expected: \[[_show $expected]\]"
    puts "! $::testfile $name got:      \[[_show $result]\]"
    if {$rc == 1 && [dict exists $opts -errorinfo]} {
      puts "! [_show [dict get $opts -errorinfo]]"
    }
    flush stdout
  }
}

proc execsql {sql {db db}} {
  uplevel 1 [list $db eval $sql]
}

proc catchsql {sql {db db}} {
  set rc [catch {uplevel 1 [list $db eval $sql]} msg]
  list $rc $msg
}

# Expected rows are normalised like SQLite's tester: whitespace and newlines
# between values do not matter.
# A /regexp/ is passed on as it is.
proc _normalise {expected} {
  if {[string index $expected 0] eq "/" && [string index $expected end] eq "/"} {
    return $expected
  }
  return [list {*}$expected]
}

proc do_execsql_test {name sql {expected {}}} {
  uplevel 1 [list do_test $name [list execsql $sql] [_normalise $expected]]
}

proc do_catchsql_test {name sql expected} {
  uplevel 1 [list do_test $name [list catchsql $sql] [_normalise $expected]]
}

proc finish_test {} {
  foreach cmd $::pq_dbs {
    if {[llength [info commands ::$cmd]]} { catch {$cmd close} }
  }
  if {$::nFail} {
    puts "$::testfile: failed: $::failList"
  }
  puts "$::nPass passed, $::nFail failed"
  flush stdout
  exit [expr {$::nFail > 0}]
}

# ---- connections and tables ---------------------------------------------------
# Opens a connection with the extension loaded.
set ::pq_dbs {}
proc pq_open {{name db} {file :memory:}} {
  sqlite3 $name $file
  if {$name ni $::pq_dbs} { lappend ::pq_dbs $name }
  $name enable_load_extension 1
  set ext $::ext
  $name eval {SELECT load_extension($ext)}
  $name enable_load_extension 0
  return $name
}

# Quotes a value for an option: 'it''s'.
proc sqlquote {s} { return "'[string map {' ''} $s]'" }

# The CREATE statement of a page_query table. The one place that picks the
# backend: every table of the suite goes through here, so that
# PAGEPIR_BACKEND=cuda runs the whole suite on the GPU.
proc pq_create_sql {tbl file args} {
  set opts [list "file=[sqlquote $file]" "backend=[sqlquote $::backend]"]
  foreach {k v} $args { lappend opts "$k=[sqlquote $v]" }
  return "CREATE VIRTUAL TABLE $tbl USING page_query([join $opts {, }])"
}

# Creates a page_query table: pq_create ?-db DB? TBL FILE ?OPTION VALUE ...?
proc pq_create {args} {
  set db db
  if {[lindex $args 0] eq "-db"} {
    set db [lindex $args 1]
    set args [lrange $args 2 end]
  }
  $db eval [pq_create_sql {*}$args]
}

# The simd names this CPU has, from page_query_version().
proc simd_available {{db db}} {
  set v [$db onecolumn {SELECT page_query_version()}]
  if {![regexp {\(available: ([^)]*)\)} $v -> list]} { error "cannot parse version '$v'" }
  return $list
}
proc simd_default {{db db}} {
  set v [$db onecolumn {SELECT page_query_version()}]
  if {![regexp {; simd (\S+) \(} $v -> name]} { error "cannot parse version '$v'" }
  return $name
}
# The backend the suite's tables actually get: cpu or cuda (auto resolved).
proc actual_backend {} {
  if {$::backend ne "auto"} { return $::backend }
  if {![info exists ::_actual_backend]} {
    sqlite3 _probe :memory:
    _probe enable_load_extension 1
    set ext $::ext
    _probe eval {SELECT load_extension($ext)}
    set ::_actual_backend [expr {[cuda_state _probe] eq "device" ? "cuda" : "cpu"}]
    _probe close
  }
  return $::_actual_backend
}
# "none" (not compiled in), "nodevice" (compiled in, no device) or "device".
proc cuda_state {{db db}} {
  set v [$db onecolumn {SELECT page_query_version()}]
  if {[string match "*cuda (not compiled in)*" $v]} { return none }
  if {[string match "*cuda (compiled in, no usable device)*" $v]} { return nodevice }
  return device
}

# ---- snapshots ------------------------------------------------------------------
# Writes (once) a snapshot of PAGES pages with build/mksnap and the vectors'
# splitmix64-le-v1 formula; returns its absolute path.
proc snapshot {name pages {seed 0} {dir {}}} {
  if {$dir eq ""} { set dir $::tmpdir }
  set path [file join $dir $name]
  if {![info exists ::_snapmade($path)] || $::_snapmade($path) ne [list $pages $seed]} {
    if {![file executable $::mksnap]} { error "missing $::mksnap (run make build/mksnap)" }
    exec $::mksnap $path $pages $seed 2
    set ::_snapmade($path) [list $pages $seed]
  }
  return $path
}

# A file of exactly N bytes (for the wrong-size errors).
proc sized_file {name nbytes} {
  set path [file join $::tmpdir $name]
  set f [open $path wb]
  if {$nbytes > 0} { puts -nonewline $f [string repeat \x5a $nbytes] }
  close $f
  return $path
}

proc file_sha256 {path} {
  return [lindex [exec sha256sum $path] 0]
}

proc blob_sha256 {blob} {
  set path [file join $::tmpdir sha256.tmp]
  set f [open $path wb]
  puts -nonewline $f $blob
  close $f
  set h [file_sha256 $path]
  file delete $path
  return $h
}

# Page p of a snapshot file, read by Tcl (not through the extension).
proc read_page {path p} {
  set f [open $path rb]
  seek $f [expr {$p * 4096}]
  set data [read $f 4096]
  close $f
  return $data
}

# ---- blobs --------------------------------------------------------------------------
proc hex {blob} { binary encode hex $blob }
proc unhex {h} { binary decode hex $h }
proc zero_page {} { string repeat \0 4096 }
proc blob_xor {a b} {
  if {[string length $a] != [string length $b]} { error "blob_xor: lengths differ" }
  set n [string length $a]
  set pad [expr {(8 - $n % 8) % 8}]
  binary scan $a[string repeat \0 $pad] w* wa
  binary scan $b[string repeat \0 $pad] w* wb
  set out [binary format w* [lmap x $wa y $wb {expr {$x ^ $y}}]]
  return [string range $out 0 [expr {$n - 1}]]
}
# The byte at offset i of a blob, as a number.
proc byte_at {blob i} {
  binary scan [string index $blob $i] cu v
  return $v
}
proc set_byte {blob i v} {
  return [string replace $blob $i $i [binary format c $v]]
}

# ---- vectors --------------------------------------------------------------------------
proc vector_json {name} {
  set f [open [file join $::vectordir $name] r]
  set text [read $f]
  close $f
  return $text
}

# ---- an independent reference implementation ---------------------------------------
# Straight from PROTOCOL.md / vectors/README.md, written without looking at
# the C code's structure: slow, meant for small snapshots and single points.
namespace eval ref {
  # ChaCha8 block: the body is generated from the quarter-round template.
  variable qr {
    set xA [expr {($xA + $xB) & 0xffffffff}]; set t [expr {$xD ^ $xA}]; set xD [expr {(($t << 16) | ($t >> 16)) & 0xffffffff}]
    set xC [expr {($xC + $xD) & 0xffffffff}]; set t [expr {$xB ^ $xC}]; set xB [expr {(($t << 12) | ($t >> 20)) & 0xffffffff}]
    set xA [expr {($xA + $xB) & 0xffffffff}]; set t [expr {$xD ^ $xA}]; set xD [expr {(($t << 8) | ($t >> 24)) & 0xffffffff}]
    set xC [expr {($xC + $xD) & 0xffffffff}]; set t [expr {$xB ^ $xC}]; set xB [expr {(($t << 7) | ($t >> 25)) & 0xffffffff}]
  }
  proc _gen_chacha {} {
    variable qr
    set body {
      lassign $state x0 x1 x2 x3 x4 x5 x6 x7 x8 x9 x10 x11 x12 x13 x14 x15
    }
    set dr ""
    foreach {a b c d} {0 4 8 12 1 5 9 13 2 6 10 14 3 7 11 15 0 5 10 15 1 6 11 12 2 7 8 13 3 4 9 14} {
      append dr [string map [list xA x$a xB x$b xC x$c xD x$d] $qr]
    }
    append body "for {set r 0} {\$r < 4} {incr r} {$dr}\n"
    append body {
      set out {}
      foreach s $state x [list $x0 $x1 $x2 $x3 $x4 $x5 $x6 $x7 $x8 $x9 $x10 $x11 $x12 $x13 $x14 $x15] {
        lappend out [expr {($s + $x) & 0xffffffff}]
      }
      return $out
    }
    proc chacha8_words {state} $body
  }
  _gen_chacha

  # 64-byte block for a 32-byte key (8 words), counter, nonce 0.
  proc chacha8_block {key32 counter} {
    binary scan $key32 iu8 k
    set state [list 0x61707865 0x3320646e 0x79622d32 0x6b206574 {*}$k $counter 0 0 0]
    return [binary format i16 [chacha8_words $state]]
  }

  # PRG G(seed): {left_seed right_seed left_t right_t}
  proc prg {seed} {
    set b0 [chacha8_block $seed$seed 0]
    set b1 [chacha8_block $seed$seed 1]
    binary scan $b1 iu2 w
    return [list [string range $b0 0 15] [string range $b0 16 31] \
                [expr {[lindex $w 0] & 1}] [expr {[lindex $w 1] & 1}]]
  }

  proc xor16 {a b} {
    binary scan $a w2 x
    binary scan $b w2 y
    return [binary format w2 [list [expr {[lindex $x 0] ^ [lindex $y 0]}] [expr {[lindex $x 1] ^ [lindex $y 1]}]]]
  }

  # Key wire format -> dict (no validation beyond the length).
  proc parse_key {key} {
    binary scan $key cu19 hdr
    set d [lindex $hdr 18]
    if {[string length $key] != 35 + 18 * $d} { error "ref::parse_key: bad length" }
    set cw {}
    for {set l 0} {$l < $d} {incr l} {
      set off [expr {19 + 18 * $l}]
      binary scan [string range $key [expr {$off + 16}] [expr {$off + 17}]] cu2 tt
      lappend cw [list [string range $key $off [expr {$off + 15}]] {*}$tt]
    }
    return [dict create seed [string range $key 0 15] t [lindex $hdr 16] \
                party [lindex $hdr 17] d $d cw $cw \
                final [string range $key [expr {19 + 18 * $d}] end]]
  }

  # One step down the tree from (seed, t) towards `bit` at level l.
  proc step {k seed t l bit} {
    lassign [prg $seed] sl sr tl tr
    set s [expr {$bit ? $sr : $sl}]
    set nt [expr {$bit ? $tr : $tl}]
    if {$t} {
      lassign [lindex [dict get $k cw] $l] scw tcl tcr
      set s [xor16 $s $scw]
      set nt [expr {$nt ^ ($bit ? $tcr : $tcl)}]
    }
    return [list $s $nt]
  }

  proc leaf_mask {k seed t} {
    return [expr {$t ? [xor16 $seed [dict get $k final]] : $seed}]
  }

  # Eval(x): the 16-byte mask of key at index x (path from the root).
  proc eval_point {key x} {
    set k [parse_key $key]
    set d [dict get $k d]
    set s [dict get $k seed]
    set t [dict get $k t]
    for {set l 0} {$l < $d} {incr l} {
      lassign [step $k $s $t $l [expr {($x >> ($d - 1 - $l)) & 1}]] s t
    }
    return [leaf_mask $k $s $t]
  }

  # Masks of every index p < n (tree expansion, pruned to p < n).
  proc eval_all {key n} {
    set k [parse_key $key]
    set d [dict get $k d]
    set level [list [list [dict get $k seed] [dict get $k t]]]
    for {set l 0} {$l < $d} {incr l} {
      set span [expr {1 << ($d - 1 - $l)}]
      set next {}
      set i 0
      foreach node $level {
        lassign $node s t
        lassign [prg $s] sl sr tl tr
        if {$t} {
          lassign [lindex [dict get $k cw] $l] scw tcl tcr
          set sl [xor16 $sl $scw]; set tl [expr {$tl ^ $tcl}]
          set sr [xor16 $sr $scw]; set tr [expr {$tr ^ $tcr}]
        }
        if {(2 * $i) * $span < $n} { lappend next [list $sl $tl] }
        if {(2 * $i + 1) * $span < $n} { lappend next [list $sr $tr] }
        incr i
      }
      set level $next
    }
    return [lmap node $level { leaf_mask $k {*}$node }]
  }

  # GF(2^128) in the polynomial basis, blocks as little-endian numbers.
  proc block_to_int {b} {
    binary scan [string reverse $b] H* h
    return [expr {"0x$h" + 0}]
  }
  proc int_to_block {n} {
    return [string reverse [binary decode hex [format %032llx $n]]]
  }
  proc gf_mul {a b} {
    set x [block_to_int $a]
    set y [block_to_int $b]
    set r 0
    for {set i 0} {$i < 128} {incr i} {
      if {($y >> $i) & 1} { set r [expr {$r ^ ($x << $i)}] }
    }
    set poly [expr {(1 << 128) | 0x87}]
    for {set i 254} {$i >= 128} {incr i -1} {
      if {($r >> $i) & 1} { set r [expr {$r ^ ($poly << ($i - 128))}] }
    }
    return [int_to_block $r]
  }

  # fold(P): XOR of the 256 16-byte vectors of a page.
  proc fold {page} {
    binary scan $page w* w
    set a 0
    set b 0
    foreach {x y} $w { set a [expr {$a ^ $x}]; set b [expr {$b ^ $y}] }
    return [binary format w2 [list $a $b]]
  }

  # {answer proof} of one key over the snapshot file (pages p < N).
  proc answer {snapfile key} {
    set f [open $snapfile rb]
    set data [read $f]
    close $f
    set n [expr {[string length $data] / 4096}]
    set masks [eval_all $key $n]
    set acc [lrepeat 512 0]
    set proof [binary format w2 {0 0}]
    for {set p 0} {$p < $n} {incr p} {
      set page [string range $data [expr {$p * 4096}] [expr {$p * 4096 + 4095}]]
      set mask [lindex $masks $p]
      binary scan $mask w2 m
      binary scan $page w* pw
      set mrep [lrepeat 256 {*}$m]
      set acc [lmap a $acc x $pw y $mrep {expr {$a ^ ($x & $y)}}]
      set proof [xor16 $proof [gf_mul [fold $page] $mask]]
    }
    return [list [binary format w* $acc] $proof]
  }

  # The client check of PROTOCOL.md.
  proc verify {a0 p0 a1 p1} {
    set want [gf_mul [string repeat \xff 16] [fold [::blob_xor $a0 $a1]]]
    return [expr {[xor16 $p0 $p1] eq $want}]
  }
}

# ---- preflight ----------------------------------------------------------------------------
# The extension loads and the chosen backend can open a table; otherwise the
# file reports one clear failure instead of a pile of unrelated ones.
proc _preflight {} {
  if {[catch {
    sqlite3 _pre :memory:
    _pre enable_load_extension 1
    set ext $::ext
    _pre eval {SELECT load_extension($ext)}
    set snap [snapshot preflight.bin 1 1]
    _pre eval [pq_create_sql pre $snap]
  } err]} {
    catch {_pre close}
    do_test preflight [list set _ $err] "the extension ($::ext) opens a table with backend='$::backend'"
    finish_test
  }
  _pre close
}
_preflight
