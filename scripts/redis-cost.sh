#!/usr/bin/env bash
# Where each microsecond of Redis CPU goes per published event, for each publish design, next to
# a plain PUBLISH: runs each candidate with `redis-benchmark -P 32` on a redis-server of its own
# and reads Redis's own account (`INFO commandstats` after `CONFIG RESETSTAT`; commands run
# inside a script are counted too). Prints one markdown table.
#
#   scripts/redis-cost.sh [port]        (default: a free port from 20000 up; never 6379)
#
# Columns: events per second, and per event the µs of the script call (everything in it) and of
# each command inside or outside it; "Lua + call" is the script's time not spent in its commands.
set -euo pipefail

port=${1:-}
if [[ -z $port ]]; then
  for p in $(seq 20000 20100); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p; break; fi
  done
fi
[[ $port != 6379 ]] || { echo "refusing the default port" >&2; exit 1; }
dir=$(mktemp -d)
redis-server --port "$port" --save '' --appendonly no --dir "$dir" --daemonize no >"$dir/log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$dir"' EXIT
cli() { redis-cli -p "$port" "$@"; }
until cli PING >/dev/null 2>&1; do sleep 0.1; done

# An event as the load benchmark publishes it: about 200 bytes of JSON.
data=$(printf 'x%.0s' $(seq 200))
requests=${REQUESTS:-200000}

# stat COMMAND: "calls usec" (total) from INFO commandstats, or "0 0".
stat() {
  cli INFO commandstats | tr -d '\r' | awk -F'[:,=]' -v c="cmdstat_$1" \
    '$1 == c { print $3, $5; found = 1 } END { if (!found) print 0, 0 }'
}

# run LABEL EVENTS_PER_REQUEST COMMAND...: one table row.
run() {
  local label=$1 per=$2
  shift 2
  cli FLUSHALL >/dev/null
  cli CONFIG RESETSTAT >/dev/null
  local n=$((requests / per))
  local rps
  # The last line is the result; its first all-digits field is the rate (the test name, the
  # command, may span lines).
  rps=$(redis-benchmark -p "$port" -P 32 -n "$n" -r 100 --csv "$@" | tail -1 |
    grep -o '"[0-9.]*"' | head -1 | tr -d '"')
  local events=$((n * per))
  local row="| $label | $(awk -v r="$rps" -v p="$per" 'BEGIN { printf "%.0f", r * p }')"
  local script_us=0 inner_us=0
  for cmd in eval publish xadd incrby pexpire; do
    read -r _ usec < <(stat "$cmd")
    if [[ $cmd == eval ]]; then
      for script_cmd in evalsha fcall; do
        read -r _ more < <(stat "$script_cmd")
        usec=$((usec + more))
      done
    fi
    local total
    total=$(awk -v u="$usec" -v e="$events" 'BEGIN { printf "%.3f", u / e }')
    row+=" | $total"
    case $cmd in
      eval) script_us=$total ;;
      *) inner_us=$(awk -v a="$inner_us" -v b="$total" 'BEGIN { print a + b }') ;;
    esac
  done
  if awk -v s="$script_us" 'BEGIN { exit !(s > 0) }'; then
    row+=" | $(awk -v s="$script_us" -v i="$inner_us" 'BEGIN { printf "%.3f", s - i }')"
    row+=" | $(awk -v s="$script_us" 'BEGIN { printf "%.3f", s }') |"
  else
    row+=" | | $(awk -v i="$inner_us" 'BEGIN { printf "%.3f", i }') |"
  fi
  echo "$row"
}

# The script of one event per channel batch, as statelesse/2 publishes: XADD then PUBLISH per
# event, n events (ARGV[1]) over n channels.
per_event='local n = tonumber(ARGV[1])
for i = 1, n do
  local id = redis.call('\''XADD'\'', KEYS[1] .. i, '\''MAXLEN'\'', '\''~'\'', ARGV[2], '\''*'\'', '\''e'\'', '\''Tick'\'', '\''d'\'', ARGV[3])
  redis.call('\''PUBLISH'\'', KEYS[1] .. '\'':p'\'' .. i, '\''statelesse/2\n'\'' .. id .. '\''\nTick\n'\'' .. ARGV[3])
end'
# One stream entry and one PUBLISH per channel batch: ARGV[1] channels, ARGV[3] the batch body
# (its events already framed by the client), shared by the entry and the envelope.
per_channel='local n = tonumber(ARGV[1])
for i = 1, n do
  local id = redis.call('\''XADD'\'', KEYS[1] .. i, '\''MAXLEN'\'', '\''~'\'', ARGV[2], '\''*'\'', '\''b'\'', ARGV[3])
  redis.call('\''PUBLISH'\'', KEYS[1] .. '\'':p'\'' .. i, '\''statelesse/3\n'\'' .. id .. '\''\n'\'' .. ARGV[3])
end'
# History off without a stream: one INCRBY per channel batch reserves its ids.
incr='local n = tonumber(ARGV[1])
for i = 1, n do
  local id = redis.call('\''INCRBY'\'', KEYS[1] .. i, ARGV[2])
  redis.call('\''PUBLISH'\'', KEYS[1] .. '\'':p'\'' .. i, '\''statelesse/3\n'\'' .. id .. '\''\n'\'' .. ARGV[3])
end'

# A channel batch body of k events of `data` (count line, then name, length, data each).
body() {
  local k=$1 out="$1"$'\n'
  for _ in $(seq "$k"); do out+="Tick"$'\n'"${#data}"$'\n'"$data"; done
  printf '%s' "$out"
}

echo "| design (events per call) | events/s | EVAL/EVALSHA/FCALL µs | PUBLISH µs | XADD µs | INCRBY µs | PEXPIRE µs | Lua + call µs | total µs per event |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
run "plain PUBLISH" 1 PUBLISH 'ch:{__rand_int__}' "$data"
run "plain XADD MAXLEN ~ 1000" 1 XADD 'st:{__rand_int__}' MAXLEN '~' 1000 '*' e Tick d "$data"
run "plain XADD MAXLEN 0" 1 XADD 'st:{__rand_int__}' MAXLEN 0 '*' e '' d ''
run "plain INCRBY" 1 INCRBY 'n:{__rand_int__}' 1
for n in 1 32; do
  run "per event, history on ($n)" "$n" EVAL "$per_event" 1 's:{__rand_int__}' "$n" 1000 "$data"
  run "per event, history off ($n)" "$n" EVAL "$per_event" 1 's:{__rand_int__}' "$n" 0 "$data"
done
for k in 1 2 8 32 128; do
  b=$(body "$k")
  run "per channel, history on, 1 channel x $k" "$k" EVAL "$per_channel" 1 's:{__rand_int__}' 1 1000 "$b"
done
b=$(body 1)
run "per channel, history on, 32 channels x 1" 32 EVAL "$per_channel" 1 's:{__rand_int__}' 32 1000 "$b"
run "per channel, history off, 32 channels x 1" 32 EVAL "$per_channel" 1 's:{__rand_int__}' 32 0 "$b"
# The same loop as a Redis Function (Redis 7): FCALL instead of EVAL, the same Lua engine.
cli FUNCTION LOAD REPLACE "#!lua name=statelesse_cost
redis.register_function('per_channel', function(KEYS, ARGV)
$per_channel
end)" >/dev/null
run "per channel as a function (FCALL), history on, 32 channels x 1" 32 FCALL per_channel 1 's:{__rand_int__}' 32 1000 "$b"
run "INCRBY ids, 32 channels x 1" 32 EVAL "$incr" 1 's:{__rand_int__}' 32 1 "$b"
b=$(body 32)
run "per channel, history off, 1 channel x 32" 32 EVAL "$per_channel" 1 's:{__rand_int__}' 1 0 "$b"
run "INCRBY ids, 1 channel x 32" 32 EVAL "$incr" 1 's:{__rand_int__}' 1 32 "$b"
