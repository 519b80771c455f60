# Helpers shared by the benchmarks (sourced, not run).
now() { date +%s.%N; }
# median: of the numbers on stdin, one per line.
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
