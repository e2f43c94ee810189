#!/bin/sh
# The compose demo's load generator: a live generated stream (events stamped with the wall
# clock) published to Kafka with Kafka's own console producer. Ownership events (assign,
# transfer, release, lock, unlock, won) go to the ownership topic, the rest to the activity
# topic. Each message is keyed by its customer id (or, for an id-less event, by its customer
# object) so that one customer's events stay in one partition.
set -eu

BOOTSTRAP="${KAFKA_BOOTSTRAP:-kafka:9092}"
ACTIVITY_TOPIC="${ACTIVITY_TOPIC:-leadguard.activity}"
OWNERSHIP_TOPIC="${OWNERSHIP_TOPIC:-leadguard.ownership}"
RATE="${LOADGEN_RATE:-20}"
SEED="${LOADGEN_SEED:-7}"
CUSTOMERS="${LOADGEN_CUSTOMERS:-2000}"
REPS="${LOADGEN_REPS:-60}"

produce() {
    /opt/kafka/bin/kafka-console-producer.sh --bootstrap-server "$BOOTSTRAP" --topic "$1" \
        --property parse.key=true --property key.separator="$(printf '\t')"
}

fifo="$(mktemp -u /tmp/ownership.XXXXXX)"
mkfifo "$fifo"
produce "$OWNERSHIP_TOPIC" < "$fifo" &

leadguard gen --live --rate "$RATE" --seed "$SEED" --customers "$CUSTOMERS" --reps "$REPS" \
    | awk -v own="$fifo" '
        {
            key = "unknown"
            if (match($0, /"customer":\{[^}]*\}/)) {
                c = substr($0, RSTART, RLENGTH)
                key = c
                if (match(c, /"id":"[^"]*"/)) key = substr(c, RSTART + 6, RLENGTH - 7)
            }
            if ($0 ~ /"kind":"(assign|transfer|release|lock|unlock|won)"/) {
                print key "\t" $0 > own
                fflush(own)
            } else {
                print key "\t" $0
                fflush()
            }
        }' \
    | produce "$ACTIVITY_TOPIC"
