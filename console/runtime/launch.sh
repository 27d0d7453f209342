# tbx's launcher: the entrypoint of a server container whose server has secrets.
#
#   /bin/sh /opt/tbx-launch/launch NAMES WAIT -- COMMAND...
#
# The secrets are not in the container's configuration (only their NAMES are, for the
# message below): tbx writes them as the first line on the server's stdin, over the
# Engine API attach stream, on every start. That line is
#
#   tbx-handover/1 ITEM...   with each ITEM  e:NAME:BASE64(VALUE)       an environment variable
#                                            f:BASE64(PATH):BASE64(TEXT) a file, mode 600 (a token file on the tmpfs)
#
# Then COMMAND is exec'd with the same stdin, so the MCP stdio starts right after the line.
# `read` takes a pipe one byte at a time, so nothing of the MCP stream is consumed here.
# Every NAME must come (a path: a file). Without a handover within WAIT seconds the
# container exits (78) saying why, rather than running its server without its secrets.
tbx_names=$1 tbx_wait=$2
shift 2
[ "$1" = "--" ] && shift

say() { printf 'tbx-launch: %s\n' "$*" >&2; }
fail() { say "$*"; exit 78; }

tbx_main=$$
(
  sleep "$tbx_wait"
  say "no secrets were handed over within ${tbx_wait}s, so the server does not start without them ($tbx_names)." \
      "They come only from tbx over the attach stream: start it with 'tbx server start TOOLBOX/SERVER'" \
      "or keep 'tbx gateway serve' running, not with 'docker start'"
  kill -TERM "$tbx_main"
) &
tbx_dog=$!
# After the fork, so the watchdog keeps the default action (and even as PID 1 the launcher
# ends on its TERM); the watchdog is KILLed, as a shell may defer a TERM it just received
# and then, its sleep done, kill the server this process has become.
trap 'exit 78' TERM
IFS= read -r tbx_frame || fail "stdin closed before tbx handed over the secrets ($tbx_names)"
kill -KILL "$tbx_dog" 2>/dev/null

set -f
tbx_first=1
for tbx_item in $tbx_frame; do
  if [ "$tbx_first" = 1 ]; then
    [ "$tbx_item" = "tbx-handover/1" ] || fail "the first line on stdin was not tbx's secret handover (expected $tbx_names)"
    tbx_first=0
    continue
  fi
  tbx_kind=${tbx_item%%:*} tbx_rest=${tbx_item#*:}
  tbx_key=${tbx_rest%%:*} tbx_data=${tbx_rest#*:}
  tbx_value=$(printf '%s' "$tbx_data" | base64 -d && printf .) || fail "an item of the handover is not base64"
  tbx_value=${tbx_value%.}
  case $tbx_kind in
    e)
      case $tbx_key in ''|[0-9]*|tbx_*|*[!A-Za-z0-9_]*) fail "the handover names a bad variable";; esac
      export "$tbx_key=$tbx_value"
      ;;
    f)
      tbx_path=$(printf '%s' "$tbx_key" | base64 -d) || fail "a file path of the handover is not base64"
      (umask 077 && mkdir -p "${tbx_path%/*}" && printf '%s' "$tbx_value" > "$tbx_path") || fail "cannot write $tbx_path"
      ;;
    *) fail "the handover has an item of unknown kind";;
  esac
done
[ "$tbx_first" = 0 ] || fail "the handover line was empty (expected $tbx_names)"
# Each name the container was made for must have come: a server never runs short of one.
IFS=,
for tbx_want in $tbx_names; do
  case $tbx_want in
    /*) [ -f "$tbx_want" ] || fail "the handover lacked the file $tbx_want" ;;
    ''|[0-9]*|*[!A-Za-z0-9_]*) fail "the container names a bad variable" ;;
    *) eval "[ -n \"\${$tbx_want+set}\" ]" || fail "the handover lacked $tbx_want" ;;
  esac
done
unset IFS tbx_want
unset tbx_names tbx_wait tbx_main tbx_dog tbx_frame tbx_first tbx_item tbx_kind tbx_rest tbx_key tbx_data tbx_value tbx_path
say "secrets placed, starting the server"
exec "$@"
