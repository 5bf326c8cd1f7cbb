#!/usr/bin/env tclsh
# pagepir CPU benchmark driver: batches of private reads against a snapshot
# much larger than the last-level cache, each compared with a plain SIMD read
# pass over the same mapped bytes measured in the same run.
#
#   tclsh bench/bench.tcl ?options?      (from the repository root; see
#                                        bench/README.md, or `make bench`)
# Options (defaults in brackets):
#   --pages N        snapshot pages of 4096 bytes [262144 = 1 GiB]
#   --seed S         snapshot seed for build/mksnap [2026]
#   --batches LIST   batch sizes, e.g. "1 3 12 48" [1 3 12 48]
#   --reps R         timed repetitions per batch size, each a read pass and
#                    a batch, interleaved [15]
#   --warmup W       untimed read pass + batch pairs per batch size [2]
#   --threads N      scan threads; the read pass uses the same [nproc]
#   --simd S         auto | avx512 | avx2 | portable [auto]
#   --csv PATH       summary CSV [docs/benchmarks/DATE-cpu-scan-SIZE[-SIMD].csv]
#   --samples PATH   every timed sample [the CSV's name with -samples]; "" = none
#   --cache DIR      where snapshots are made and kept [bench/cache]
#   --ext PATH       the extension to load [./pagepir]
#   --sql PATH       the benchmark's SQL [bench/cpu_scan.sql]
#   --mksnap PATH    snapshot generator [build/mksnap]
#
# Timings are Tcl's [clock microseconds] around the whole statement, every
# row and column read, so the SQLite layer is inside them.

package require sqlite3
fconfigure stdout -buffering line

proc usage {msg} {
    puts stderr "bench.tcl: $msg"
    puts stderr "usage: tclsh bench/bench.tcl ?--pages N? ?--seed S? ?--batches \"1 3 12 48\"? ?--reps R?\
                 ?--warmup W? ?--threads N? ?--simd S? ?--csv PATH? ?--samples PATH? ?--cache DIR?\
                 ?--ext PATH? ?--sql PATH? ?--mksnap PATH?"
    exit 2
}

proc nproc {} {
    if {![catch {exec nproc} n] && [string is integer -strict $n] && $n > 0} { return $n }
    return 1
}

# ---- options ---------------------------------------------------------------
array set opt [list pages 262144 seed 2026 batches {1 3 12 48} reps 15 warmup 2 \
                   threads [nproc] simd auto csv {} samples - cache bench/cache \
                   ext ./pagepir sql bench/cpu_scan.sql mksnap build/mksnap]
if {[lindex $argv 0] in {-h -help --help}} {
    # The option list at the top of this file.
    set f [open [info script] r]
    foreach line [lrange [split [read $f] \n] 1 end] {
        if {![string match "#*" $line]} break
        puts [string range $line 2 end]
    }
    close $f
    exit 0
}
if {[llength $argv] % 2} { usage "options come in pairs: --name value" }
foreach {k v} $argv {
    set name [string range $k 2 end]
    if {[string range $k 0 1] ne "--" || ![info exists opt($name)]} { usage "unknown option '$k'" }
    set opt($name) $v
}
foreach {name lo} {pages 1 reps 1 warmup 0 threads 1} {
    if {![string is wideinteger -strict $opt($name)] || $opt($name) < $lo} {
        usage "--$name must be a whole number >= $lo, got '$opt($name)'"
    }
}
if {$opt(pages) > (1 << 32)} { usage "--pages must be at most 2^32" }
if {![string is wideinteger -strict $opt(seed)]} { usage "--seed must be a whole number" }
if {[llength $opt(batches)] == 0} { usage "--batches is empty" }
foreach b $opt(batches) {
    if {![string is integer -strict $b] || $b < 1} { usage "batch size '$b' is not a positive whole number" }
}
if {$opt(simd) ni {auto avx512 avx2 portable}} { usage "--simd must be auto, avx512, avx2 or portable" }

set PAGE 4096
set bytes [expr {wide($opt(pages)) * $PAGE}]

proc human_size {b} {
    foreach {unit div} {GiB 1073741824 MiB 1048576 KiB 1024} {
        if {$b >= $div && $b % $div == 0} { return "[expr {$b / $div}]$unit" }
    }
    return "${b}B"
}

# The command that reproduces this run, every option spelled out.
set command "tclsh bench/bench.tcl"
foreach name {pages seed batches reps warmup threads simd} {
    set v $opt($name)
    append command " --$name " [expr {[string match "* *" $v] ? "\"$v\"" : $v}]
}

# ---- the snapshot: bench/cache/snap-<pages>p-s<seed>.bin ----------------------
file mkdir $opt(cache)
set snap [file normalize [file join $opt(cache) "snap-$opt(pages)p-s$opt(seed).bin"]]
if {![file exists $snap] || [file size $snap] != $bytes} {
    puts "making $snap ([human_size $bytes]) with $opt(mksnap) ..."
    if {![file executable $opt(mksnap)]} {
        puts stderr "bench.tcl: $opt(mksnap) not found: run `make build/mksnap` (or `make bench`)"
        exit 1
    }
    set t0 [clock milliseconds]
    exec $opt(mksnap) $snap $opt(pages) $opt(seed) [nproc] >@ stdout 2>@ stderr
    puts "  done in [format %.1f [expr {([clock milliseconds] - $t0) / 1000.0}]] s"
}

# ---- the SQL file, split into its sections -----------------------------------
proc read_sections {path subst} {
    set f [open $path r]
    set text [string map $subst [read $f]]
    close $f
    set cur {}
    foreach line [split $text \n] {
        if {[regexp {^-- @section (\S+)} $line -> name]} {
            set cur $name
            if {![info exists sec($cur)]} { set sec($cur) {} }
            continue
        }
        if {$cur eq "" || $cur eq "shell"} continue
        # Comment lines stay out: [db eval] would take a leading "--" for an option.
        if {[string match "--*" [string trimleft $line]]} continue
        append sec($cur) $line \n
    }
    foreach name {setup batch scan read_pass metrics} {
        if {![info exists sec($name)]} {
            puts stderr "bench.tcl: $path has no '-- @section $name'"
            exit 1
        }
    }
    return [array get sec]
}
array set sql [read_sections $opt(sql) [list @FILE@ [string map {' ''} $snap] \
                                             @THREADS@ $opt(threads) @SIMD@ $opt(simd)]]

# ---- the connection ----------------------------------------------------------
sqlite3 db :memory:
db cache size 32
db enable_load_extension 1
db eval {SELECT load_extension($opt(ext))}
db enable_load_extension 0
db eval $sql(setup)
db eval {SELECT simd AS simd_name, threads AS nthreads, backend AS backend_name
           FROM page_query_info WHERE schema = 'main' AND tbl = 't'} {}
set version [db onecolumn {SELECT page_query_version()}]

# Runs the timed batch statement, reading every column of every row; returns
# microseconds around the statement. Its text never changes, so Tcl's
# statement cache prepares it once and reuses it for every run.
proc run_scan {} {
    global sql nrows
    set nrows 0
    set t0 [clock microseconds]
    db eval $sql(scan) row {
        incr nrows
        set k $row(key); set a $row(answer); set p $row(proof)
    }
    return [expr {[clock microseconds] - $t0}]
}
# One read pass; returns microseconds around the statement (and sets the
# function's own figure in ::rp_inner).
proc run_read_pass {} {
    global sql rp_inner
    set t0 [clock microseconds]
    set rp_inner [db onecolumn $sql(read_pass)]
    return [expr {[clock microseconds] - $t0}]
}

proc median {xs} {
    set s [lsort -real $xs]
    set n [llength $s]
    if {$n % 2} { return [lindex $s [expr {$n / 2}]] }
    return [expr {([lindex $s [expr {$n / 2 - 1}]] + [lindex $s [expr {$n / 2}]]) / 2.0}]
}
proc getdef {d k} { return [expr {[dict exists $d $k] ? [dict get $d $k] : 0}] }
proc mean {xs} { return [expr {double([tcl::mathop::+ {*}$xs]) / [llength $xs]}] }
proc min {xs} { return [lindex [lsort -real $xs] 0] }

# ---- machine description -------------------------------------------------------
set cpu unknown
catch {
    set f [open /proc/cpuinfo r]
    foreach line [split [read $f] \n] {
        if {[regexp {^model name\s*:\s*(.*)$} $line -> cpu]} break
    }
    close $f
}
set commit unknown
catch { set commit [exec git rev-parse --short HEAD 2>/dev/null] }
catch { if {[exec git status --porcelain --untracked-files=no -- ext gpu Makefile] ne ""} { append commit "+dirty" } }
# Other work on the machine skews both sides; say how busy it was.
set loadavg unknown
catch { set f [open /proc/loadavg r]; set loadavg [lrange [read $f] 0 2]; close $f }
# Share of the CPUs that other processes kept busy over half a second just
# before the run (from /proc/stat): above a few percent, the numbers are suspect.
proc cpu_idle_total {} {
    set f [open /proc/stat r]; set line [gets $f]; close $f
    set v [lrange $line 1 end]
    return [list [expr {[lindex $v 3] + [lindex $v 4]}] [tcl::mathop::+ {*}$v]]
}
# CPU time (jiffies) used by everything, and by this process (all threads):
# their difference over a measurement is what other processes took.
proc cpu_used {} {
    lassign [cpu_idle_total] idle total
    set f [open /proc/self/stat r]; set st [read $f]; close $f
    set st [string range $st [expr {[string last ")" $st] + 2}] end]
    return [list [expr {$total - $idle}] $total [expr {[lindex $st 11] + [lindex $st 12]}]]
}
proc others_pct {before after} {
    lassign $before b0 t0 s0
    lassign $after b1 t1 s1
    if {$t1 <= $t0} { return 0.0 }
    set o [expr {100.0 * (($b1 - $b0) - ($s1 - $s0)) / ($t1 - $t0)}]
    return [expr {$o < 0 ? 0.0 : $o}]
}
set busy unknown
catch {
    lassign [cpu_idle_total] i0 t0
    after 500
    lassign [cpu_idle_total] i1 t1
    set busy [format %.0f%% [expr {100.0 * (1 - double($i1 - $i0) / max(1, $t1 - $t0))}]]
}
set date [clock format [clock seconds] -format %Y-%m-%d -gmt 1]
set stamp [clock format [clock seconds] -format %Y-%m-%dT%H:%M:%SZ -gmt 1]

puts "pagepir CPU scan benchmark"
puts "  $version"
puts "  cpu: $cpu, [nproc] cores; table: backend=$backend_name simd=$simd_name threads=$nthreads"
puts "  before the run: load average $loadavg, CPUs busy $busy over 0.5 s"
if {[string is double -strict [string trimright $busy %]] && [string trimright $busy %] > 10} {
    puts "  WARNING: other processes are using the CPUs; timings will be noisy"
}
puts "  snapshot: $snap, $opt(pages) pages, $bytes bytes ([human_size $bytes]), seed $opt(seed)"
puts "  $opt(reps) timed repetitions per batch size, read pass and batch interleaved, after $opt(warmup) warm-up pairs"

# ---- warm-up: fault the mapping in, fill the fold cache ---------------------------
set nkeys [lindex $opt(batches) 0]
db eval $sql(batch)
set t0 [clock microseconds]
run_read_pass
set first_rp [expr {[clock microseconds] - $t0}]
set first_scan [run_scan]
puts "  first read pass [format %.1f [expr {$first_rp / 1000.0}]] ms, first batch [format %.1f [expr {$first_scan / 1000.0}]] ms (faults, fold cache; not counted)"

# ---- the measurement ----------------------------------------------------------------
set results {}
set samples {}
foreach nkeys $opt(batches) {
    db eval $sql(batch)
    set got [db onecolumn {SELECT count(*) FROM batch}]
    if {$got != $nkeys} { puts stderr "bench.tcl: batch has $got keys, wanted $nkeys"; exit 1 }
    for {set i 0} {$i < $opt(warmup)} {incr i} { run_read_pass; run_scan }
    db eval {DELETE FROM page_query_metrics}
    set scan_us {}; set rp_us {}; set rp_in_us {}; set pair {}
    set used0 [cpu_used]
    for {set r 0} {$r < $opt(reps)} {incr r} {
        # Alternate which goes first, so neither always follows the other.
        if {$r % 2 == 0} {
            set a [run_read_pass]; set ai $rp_inner; set b [run_scan]
        } else {
            set b [run_scan]; set a [run_read_pass]; set ai $rp_inner
        }
        lappend rp_us $a; lappend rp_in_us $ai; lappend scan_us $b
        lappend pair [expr {double($b) / $a}]
        lappend samples [list $nkeys $r $b $a [format %.1f $ai]]
    }
    set others [others_pct $used0 [cpu_used]]
    if {$nrows != $nkeys} { puts stderr "bench.tcl: scan returned $nrows rows for $nkeys keys"; exit 1 }
    set m [dict create]
    set mm [dict create]
    db eval $sql(metrics) row {
        dict set m $row(phase) $row(p50_us)
        dict set mm $row(phase) $row(mean_us)
    }
    if {![dict exists $m scan]} {
        puts stderr "bench.tcl: page_query_metrics has no scan row for table 't' (scan ms will read 0)"
    }
    set s_med [median $scan_us]; set s_min [min $scan_us]
    set r_med [median $rp_us];   set r_min [min $rp_us]
    lappend results [dict create keys $nkeys \
        batch_ms_median [expr {$s_med / 1000.0}] batch_ms_min [expr {$s_min / 1000.0}] \
        gbps_median [expr {$bytes / ($s_med * 1000.0)}] gbps_best [expr {$bytes / ($s_min * 1000.0)}] \
        read_pass_ms_median [expr {$r_med / 1000.0}] read_pass_ms_min [expr {$r_min / 1000.0}] \
        read_pass_inner_ms_median [expr {[median $rp_in_us] / 1000.0}] \
        read_pass_gbps_median [expr {$bytes / ($r_med * 1000.0)}] \
        ratio_median [expr {double($s_med) / $r_med}] ratio_min [expr {double($s_min) / $r_min}] \
        ratio_paired_median [median $pair] \
        scan_p50_ms [expr {[getdef $m scan] / 1000.0}] \
        total_p50_ms [expr {[getdef $m total] / 1000.0}] \
        batch_ms_mean [expr {[mean $scan_us] / 1000.0}] scan_mean_ms [expr {[getdef $mm scan] / 1000.0}] \
        sql_ms_mean [expr {([mean $scan_us] - [getdef $mm scan]) / 1000.0}] \
        others_pct $others]
    set d [lindex $results end]
    puts [format "  %3d keys: batch %8.2f ms, read pass %7.2f ms, ratio %.2f (other processes: %.0f%% of the CPUs)" \
              $nkeys [dict get $d batch_ms_median] [dict get $d read_pass_ms_median] [dict get $d ratio_median] $others]
}

# ---- the table --------------------------------------------------------------------------
puts ""
puts [format "%5s  %10s  %7s  %11s  %6s  %9s  %8s  %8s  %6s" keys "ms/batch" "GB/s" "read ms" ratio "(min/min)" "scan ms" "sql ms" "other%"]
foreach d $results {
    puts [format "%5d  %10.2f  %7.2f  %11.2f  %6.2f  %9.2f  %8.2f  %8.2f  %6.0f" \
              [dict get $d keys] [dict get $d batch_ms_median] [dict get $d gbps_median] \
              [dict get $d read_pass_ms_median] [dict get $d ratio_median] [dict get $d ratio_min] \
              [dict get $d scan_p50_ms] [dict get $d sql_ms_mean] [dict get $d others_pct]]
}
puts "ms/batch and read ms: medians of $opt(reps) interleaved runs; GB/s = snapshot bytes / median batch time;"
puts "ratio = median batch / median read pass; (min/min) = fastest batch / fastest read pass;"
puts "scan ms = the extension's scan phase p50 (histogram, ~4% bins); sql ms = mean batch - mean scan phase (SQLite layer);"
puts "other% = CPU time other processes took during that batch size's timed runs (should be ~0)."
foreach d $results {
    if {[dict get $d keys] == 3} {
        set ok [expr {[dict get $d ratio_median] <= 1.5 ? "meets" : "misses"}]
        puts [format "3-key batch: %.2fx the read pass (target 1.5x on 2 cores): %s" [dict get $d ratio_median] $ok]
    }
}

# ---- the CSV -----------------------------------------------------------------------------
if {$opt(csv) eq ""} {
    set suffix [expr {$opt(simd) eq "auto" ? "" : "-$opt(simd)"}]
    set opt(csv) "docs/benchmarks/$date-cpu-scan-[human_size $bytes]$suffix.csv"
}
if {$opt(samples) eq "-"} { set opt(samples) "[file rootname $opt(csv)]-samples.csv" }
set header "# command=$command, commit=$commit, cpu=$cpu, cores=[nproc], threads=$nthreads,\
 simd=$simd_name, backend=$backend_name, snapshot=$opt(pages) pages $bytes bytes seed $opt(seed),\
 date=$stamp, loadavg=$loadavg, busy_before=$busy, version=[string map {{, } {; }} $version]"
set cols {keys batch_ms_median batch_ms_min gbps_median gbps_best read_pass_ms_median read_pass_ms_min
          read_pass_inner_ms_median read_pass_gbps_median ratio_median ratio_min ratio_paired_median
          scan_p50_ms total_p50_ms batch_ms_mean scan_mean_ms sql_ms_mean others_pct}
file mkdir [file dirname $opt(csv)]
set f [open $opt(csv) w]
puts $f $header
puts $f [join $cols ,]
foreach d $results {
    set line {}
    foreach c $cols {
        set v [dict get $d $c]
        lappend line [expr {$c eq "keys" ? $v : [format %.4f $v]}]
    }
    puts $f [join $line ,]
}
close $f
puts "wrote $opt(csv)"
if {$opt(samples) ne ""} {
    set f [open $opt(samples) w]
    puts $f $header
    puts $f "keys,rep,batch_us,read_pass_us,read_pass_inner_us"
    foreach s $samples { puts $f [join $s ,] }
    close $f
    puts "wrote $opt(samples)"
}
db close
