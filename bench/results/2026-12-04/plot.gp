# gnuplot script written by scripts/bench-report; run it in this folder.
set terminal pngcairo size 1400,1680 font 'sans,10'
set output 'throughput_p99.png'
set multiplot layout 4,2
set logscale x 2
set logscale y 10
set grid
set key below horizontal font ',9'
set xtics (1, 16, 64, 256)
set xrange [0.7692307692307692:332.8]
set xlabel 'clients'
set title 'write-only (SET / Put): throughput'
set ylabel 'ops/s'
plot 'plot.dat' index 0 using 1:2 with linespoints lw 2 pt 7 lc rgb '#d62728' title 'MiceDB, 3 nodes', \
     'plot.dat' index 1 using 1:2 with linespoints lw 2 pt 7 lc rgb '#1f77b4' title 'etcd, 3 members', \
     'plot.dat' index 2 using 1:2 with linespoints lw 2 pt 7 lc rgb '#2ca02c' title 'Redis, appendfsync always', \
     'plot.dat' index 3 using 1:2 with linespoints lw 2 pt 7 lc rgb '#9aa0a6' title 'Redis, appendfsync everysec'
set title 'write-only (SET / Put): p99'
set ylabel 'p99 latency, ms'
plot 'plot.dat' index 0 using 1:3 with linespoints lw 2 pt 7 lc rgb '#d62728' title 'MiceDB, 3 nodes', \
     'plot.dat' index 1 using 1:3 with linespoints lw 2 pt 7 lc rgb '#1f77b4' title 'etcd, 3 members', \
     'plot.dat' index 2 using 1:3 with linespoints lw 2 pt 7 lc rgb '#2ca02c' title 'Redis, appendfsync always', \
     'plot.dat' index 3 using 1:3 with linespoints lw 2 pt 7 lc rgb '#9aa0a6' title 'Redis, appendfsync everysec'
set title 'read-only (linearizable GET / Range): throughput'
set ylabel 'ops/s'
plot 'plot.dat' index 4 using 1:2 with linespoints lw 2 pt 7 lc rgb '#d62728' title 'MiceDB, 3 nodes', \
     'plot.dat' index 5 using 1:2 with linespoints lw 2 pt 7 lc rgb '#1f77b4' title 'etcd, 3 members', \
     'plot.dat' index 6 using 1:2 with linespoints lw 2 pt 7 lc rgb '#2ca02c' title 'Redis, appendfsync always', \
     'plot.dat' index 7 using 1:2 with linespoints lw 2 pt 7 lc rgb '#9aa0a6' title 'Redis, appendfsync everysec'
set title 'read-only (linearizable GET / Range): p99'
set ylabel 'p99 latency, ms'
plot 'plot.dat' index 4 using 1:3 with linespoints lw 2 pt 7 lc rgb '#d62728' title 'MiceDB, 3 nodes', \
     'plot.dat' index 5 using 1:3 with linespoints lw 2 pt 7 lc rgb '#1f77b4' title 'etcd, 3 members', \
     'plot.dat' index 6 using 1:3 with linespoints lw 2 pt 7 lc rgb '#2ca02c' title 'Redis, appendfsync always', \
     'plot.dat' index 7 using 1:3 with linespoints lw 2 pt 7 lc rgb '#9aa0a6' title 'Redis, appendfsync everysec'
set title '50% reads, 50% writes: throughput'
set ylabel 'ops/s'
plot 'plot.dat' index 8 using 1:2 with linespoints lw 2 pt 7 lc rgb '#d62728' title 'MiceDB, 3 nodes', \
     'plot.dat' index 9 using 1:2 with linespoints lw 2 pt 7 lc rgb '#1f77b4' title 'etcd, 3 members', \
     'plot.dat' index 10 using 1:2 with linespoints lw 2 pt 7 lc rgb '#2ca02c' title 'Redis, appendfsync always', \
     'plot.dat' index 11 using 1:2 with linespoints lw 2 pt 7 lc rgb '#9aa0a6' title 'Redis, appendfsync everysec'
set title '50% reads, 50% writes: p99'
set ylabel 'p99 latency, ms'
plot 'plot.dat' index 8 using 1:3 with linespoints lw 2 pt 7 lc rgb '#d62728' title 'MiceDB, 3 nodes', \
     'plot.dat' index 9 using 1:3 with linespoints lw 2 pt 7 lc rgb '#1f77b4' title 'etcd, 3 members', \
     'plot.dat' index 10 using 1:3 with linespoints lw 2 pt 7 lc rgb '#2ca02c' title 'Redis, appendfsync always', \
     'plot.dat' index 11 using 1:3 with linespoints lw 2 pt 7 lc rgb '#9aa0a6' title 'Redis, appendfsync everysec'
set title '95% reads, 5% writes: throughput'
set ylabel 'ops/s'
plot 'plot.dat' index 12 using 1:2 with linespoints lw 2 pt 7 lc rgb '#d62728' title 'MiceDB, 3 nodes', \
     'plot.dat' index 13 using 1:2 with linespoints lw 2 pt 7 lc rgb '#1f77b4' title 'etcd, 3 members', \
     'plot.dat' index 14 using 1:2 with linespoints lw 2 pt 7 lc rgb '#2ca02c' title 'Redis, appendfsync always', \
     'plot.dat' index 15 using 1:2 with linespoints lw 2 pt 7 lc rgb '#9aa0a6' title 'Redis, appendfsync everysec'
set title '95% reads, 5% writes: p99'
set ylabel 'p99 latency, ms'
plot 'plot.dat' index 12 using 1:3 with linespoints lw 2 pt 7 lc rgb '#d62728' title 'MiceDB, 3 nodes', \
     'plot.dat' index 13 using 1:3 with linespoints lw 2 pt 7 lc rgb '#1f77b4' title 'etcd, 3 members', \
     'plot.dat' index 14 using 1:3 with linespoints lw 2 pt 7 lc rgb '#2ca02c' title 'Redis, appendfsync always', \
     'plot.dat' index 15 using 1:3 with linespoints lw 2 pt 7 lc rgb '#9aa0a6' title 'Redis, appendfsync everysec'
unset multiplot
