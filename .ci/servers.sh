#!/usr/bin/env bash
# Real brokers for the bridge tests: `.ci/servers.sh start` installs (Debian packages) and starts redis-server,
# nats-server (JetStream) and PostgreSQL on free loopback ports, waits until each answers, and records their
# PIDs, ports and URLs in $BUBUS_TEST_SERVERS_STATE (JSON, plus a .env twin); `.ci/servers.sh stop` stops them
# by those PIDs. PostgreSQL runs as the `postgres` user (it refuses root). The start/wait/stop logic lives in
# tests/bridges/servers.py (standard library only) so the tests start the very same servers when none run.
set -euo pipefail
cd "$(dirname "$0")/.."
export BUBUS_TEST_SERVERS_STATE="${BUBUS_TEST_SERVERS_STATE:-/tmp/bubus-test-servers/state.json}"

have_all() {
    command -v redis-server >/dev/null || [ -x /usr/bin/redis-server ] || return 1
    command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || return 1
    compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || return 1
}

install() {
    have_all && return 0
    echo "servers.sh: installing redis-server nats-server postgresql (Debian packages)"
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    # The packages' own init scripts must not start system-wide copies: we run our own on free ports.
    local made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        redis-server nats-server postgresql >/dev/null
    if [ "$made_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
    have_all
}

case "${1:-}" in
    start)
        install
        python3 tests/bridges/servers.py start --state "$BUBUS_TEST_SERVERS_STATE"
        ;;
    stop)
        python3 tests/bridges/servers.py stop --state "$BUBUS_TEST_SERVERS_STATE"
        ;;
    status)
        python3 tests/bridges/servers.py status --state "$BUBUS_TEST_SERVERS_STATE"
        ;;
    *)
        echo "usage: $0 start|stop|status" >&2
        exit 2
        ;;
esac
