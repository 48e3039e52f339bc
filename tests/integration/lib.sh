# lib.sh - the scaffolding every end-to-end test of a real mount shares (sourced, bash).
#
#   . "$(dirname "$0")/lib.sh"
#   lib_init NAME            work dir /tmp/mailfs-NAME.XXXXXX ($work, $mnt), cleanup trap,
#                            the servers' ports ($MAILFS_SERVER_DIR/ports) sourced
#   on_cleanup 'COMMAND'     run COMMAND (eval) at exit, before the work dir is removed
#   ok / bad / check / finish   results: "ok   ..." / "FAIL ...", counted in $failures;
#                            finish [LABEL] prints the count and returns its truth
#   wait_for SECONDS CMD...  run CMD every 0.1 s until it succeeds (1 after SECONDS)
#   mount_start CONFIG [ARGS...]   mailfs -f on $mnt (log: $work/daemon.log), $daemon set;
#                            returns when mounted (1 if the daemon died or 10 s passed)
#   unmount                  fusermount3 -u, then the daemon gets 10 s to exit, then kill -9
#   daemon_kill9             kill -9 of the daemon and a lazy unmount of what it leaves
#   relay_start [DELAY_MS] / relay_stop   a TCP relay $relay_port -> Dovecot's IMAPS
#                            (scripts/servers/relay.py), each chunk held DELAY_MS (a slow
#                            link); stopping it cuts every connection (offline)
#   status_is ACCT KEY VALUE   .status of the mount says KEY = VALUE for [account ACCT]
#   status_get ACCT KEY      the value
#   wait_drained ACCT SECONDS  the account's journal is empty (after .status was rebuilt)
#   wait_synced ACCT SECONDS   .status says first_sync = done for the account
#   fake_start SCRIPT MODE [ARGS...]   a scripted server of this directory (fake-imap.py,
#                            fake-smtp.py, tls-reset.py: SCRIPT MODE PORTFILE LOG [ARGS...])
#                            in the background, stopped at exit; sets $fport and $flog
#                            ($work/fake-MODE.log) once it listens (exit 1 after 10 s)
#   bg_track PID             kill PID at exit
#   account_conf NAME[=USER] [LINES...]   a config block [account NAME] with LINES (server
#                            URLs, options), then USER's login on the test servers (user,
#                            password_cmd, ca_file); USER (default NAME) is alice or bob
#   dova ARGS...             doveadm of the test servers
#   imap_state USER ARGS...  tests/integration/imap-state.py: the server's view over IMAP
#
# Variables a test may read: $work $mnt $daemon $here $top $failures $relay_port, and
# everything of the ports file ($IMAPS, $CA, $ALICE_PASS, $DOVEADM, $MAILDIR_ALICE, ...).
# shellcheck shell=bash disable=SC2034

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
mailfs=${mailfs:-}
work=
mnt=
daemon=
relay_pid=
relay_port=
failures=0
fport=
flog=
_lib_cleanups=()
_lib_pids=()

lib_init() { # name
	: "${MAILFS_SERVER_DIR:?start the servers first: scripts/test-servers start DIR and export MAILFS_SERVER_DIR=DIR}"
	# shellcheck disable=SC1091
	. "$MAILFS_SERVER_DIR/ports"
	work=$(mktemp -d "/tmp/mailfs-$1.XXXXXX")
	mnt=$work/mnt
	mkdir -p "$mnt"
	relay_port=$((IMAPS + 90))
	trap _lib_cleanup EXIT
}

on_cleanup() { _lib_cleanups+=("$1"); }

_lib_cleanup() {
	if [ "$failures" -gt 0 ] && [ -s "$work/daemon.log" ]; then
		echo "--- the last lines of the daemon's log:"
		tail -n 60 "$work/daemon.log"
	fi
	unmount
	relay_stop
	local c p
	for p in "${_lib_pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	for c in "${_lib_cleanups[@]}"; do eval "$c" || true; done
	[ -n "$work" ] && rm -rf "$work"
}

ok() { printf 'ok   %s\n' "$*"; }
bad() { printf 'FAIL %s\n' "$*"; failures=$((failures + 1)); }
check() { # description, command...
	local what=$1
	shift
	if "$@"; then ok "$what"; else bad "$what"; fi
}
finish() { # [label]
	echo "${1:+$1: }$failures failure(s)"
	[ "$failures" -eq 0 ]
}

wait_for() { # seconds, command...
	local s=$1
	shift
	for _ in $(seq $((s * 10))); do "$@" && return 0; sleep 0.1; done
	return 1
}

mount_start() { # config, extra args...
	local config=$1
	shift
	"$mailfs" -f -o config="$config" "$@" "$mnt" >>"$work/daemon.log" 2>&1 &
	daemon=$!
	for _ in $(seq 200); do
		mountpoint -q "$mnt" && return 0
		kill -0 "$daemon" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

unmount() {
	if [ -n "$mnt" ] && mountpoint -q "$mnt"; then
		fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null || true
	fi
	if [ -n "$daemon" ]; then
		for _ in $(seq 100); do kill -0 "$daemon" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$daemon" 2>/dev/null || true
		wait "$daemon" 2>/dev/null || true
		daemon=
	fi
}

daemon_kill9() {
	if [ -n "$daemon" ]; then
		kill -9 "$daemon" 2>/dev/null || true
		wait "$daemon" 2>/dev/null || true
		daemon=
	fi
	fusermount3 -uz "$mnt" 2>/dev/null || true
}

relay_start() { # [delay_ms]
	rm -f "$work/relay.pid"
	python3 "$top/scripts/servers/relay.py" ${1:+--delay-ms "$1"} "$work/relay.pid" "$relay_port:$IMAPS" \
		>>"$work/relay.log" 2>&1 &
	relay_pid=$!
	for _ in $(seq 100); do [ -s "$work/relay.pid" ] && return 0; sleep 0.05; done
	return 1
}

relay_stop() {
	if [ -n "$relay_pid" ]; then
		kill "$relay_pid" 2>/dev/null || true
		wait "$relay_pid" 2>/dev/null || true
		relay_pid=
	fi
}

status_get() { # account key
	grep -A80 "^\[account $1\]" "$mnt/.status" 2>/dev/null | grep -m1 "^$2 " | sed 's/^[^=]*= //'
}
status_is() { # account key value
	[ "$(status_get "$1" "$2")" = "$3" ]
}
wait_drained() { # account seconds
	sleep 1.1 # .status is rebuilt at most once a second
	wait_for "$2" status_is "$1" journal 0
}

wait_synced() { # account seconds
	wait_for "$2" status_is "$1" first_sync done
}

bg_track() { _lib_pids+=("$1"); }

fake_start() { # script mode [args...]
	local script=$1 mode=$2
	shift 2
	rm -f "$work/fport"
	flog=$work/fake-$mode.log
	: >"$flog"
	python3 "$here/$script" "$mode" "$work/fport" "$flog" "$@" >>"$work/fake.out" 2>&1 &
	bg_track $!
	if ! wait_for 10 test -s "$work/fport"; then
		bad "$script $mode did not start: $(tail -3 "$work/fake.out")"
		exit 1
	fi
	fport=$(cat "$work/fport")
}

account_conf() { # name[=user] [lines...]
	local name=${1%%=*} user=${1#*=} pass
	shift
	case $user in
	alice) pass=$ALICE_PASS ;;
	bob) pass=$BOB_PASS ;;
	*) echo "account_conf: no test login for '$user'" >&2; return 1 ;;
	esac
	echo "[account $name]"
	[ $# -eq 0 ] || printf '%s\n' "$@"
	printf 'user = %s\npassword_cmd = echo %s\nca_file = %s\n' "$user" "$pass" "$CA"
}

dova() { $DOVEADM "$@"; }
imap_state() { "$here/imap-state.py" "$@"; }
