# SPDX-License-Identifier: MIT
# The chart of bench/run: requests/s and p99 latency against connections (1 request in flight
# each) for the four servers. bench/run calls it as
#
#     gnuplot -e "datafile='FILE'; outfile='PNG'; subtitle='TEXT'" bench/plot.gnuplot
#
# FILE: one line per connection count: connections, then requests/s of mbsec serve, libmodbus,
# pymodbus and the floor, then their p99 latency in µs (NaN where a run failed).
if (!exists("datafile")) datafile = 'bench/results/latest.dat'
if (!exists("outfile")) outfile = 'bench/results/latest.png'
if (!exists("subtitle")) subtitle = ''

set terminal pngcairo size 1400,600 font 'sans,11'
set output outfile
set datafile missing 'NaN'
set multiplot layout 1,2 title "Modbus/TCP servers side by side, FC 3 x 10 registers\n{/*0.8 ".subtitle."}"

set logscale x 2
set xrange [0.8:80]
set xtics ('1' 1, '8' 8, '64' 64)
set xlabel 'connections (1 request in flight each)'
set logscale y 10
set grid xtics ytics mytics
set key below horizontal maxrows 2 width 2
set format y '%.0s%c'

set style line 1 lc rgb '#1b7837' lw 2.5 pt 7 ps 1.3
set style line 2 lc rgb '#2166ac' lw 2 pt 5 ps 1.2
set style line 3 lc rgb '#b2182b' lw 2 pt 9 ps 1.3
set style line 4 lc rgb '#666666' lw 2 dt 2 pt 13 ps 1.2

set title 'throughput (higher is better)'
set ylabel 'requests/s'
plot datafile using 1:2 with linespoints ls 1 title 'mbsec serve', \
     ''       using 1:3 with linespoints ls 2 title 'libmodbus (select)', \
     ''       using 1:4 with linespoints ls 3 title 'pymodbus (asyncio)', \
     ''       using 1:5 with linespoints ls 4 title 'floor (epoll, canned answer)'

set title 'p99 latency (lower is better)'
set ylabel 'p99 latency (µs)'
set format y '%.0f'
set key below horizontal maxrows 2 width 2
plot datafile using 1:6 with linespoints ls 1 title 'mbsec serve', \
     ''       using 1:7 with linespoints ls 2 title 'libmodbus (select)', \
     ''       using 1:8 with linespoints ls 3 title 'pymodbus (asyncio)', \
     ''       using 1:9 with linespoints ls 4 title 'floor (epoll, canned answer)'

unset multiplot
