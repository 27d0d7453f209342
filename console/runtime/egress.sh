# tbx's egress wrapper: the entrypoint of a server container whose server may reach
# allow-listed hosts.
#
#   /bin/sh /opt/tbx-launch/egress PORT -- COMMAND...
#
# The container is on network none: it has loopback only, no route and no resolver. The
# forwarder started here listens on 127.0.0.1:PORT (the server's HTTP_PROXY/HTTPS_PROXY)
# and carries each connection over the Unix socket mounted at /run/tbx-egress to the
# toolbox gateway's allow-list proxy, outside, which decides. The server starts only once
# the forwarder listens. It is Python where the image has python3, else Node.
# COMMAND may itself be the secrets launcher (launch): stdin is left to it untouched.
tbx_port=$1
shift
[ "$1" = "--" ] && shift
tbx_socket=/run/tbx-egress/proxy.sock
say() { printf 'tbx-egress: %s\n' "$*" >&2; }
if command -v python3 >/dev/null 2>&1; then
  # It forks once it listens: its exit is the signal.
  python3 -I -S /opt/tbx-launch/egress-forward "$tbx_port" "$tbx_socket" </dev/null >&2 \
    || { say "the egress forwarder did not start"; exit 78; }
elif command -v node >/dev/null 2>&1; then
  tbx_ready=/tmp/.tbx-egress-ready
  rm -f "$tbx_ready"
  node /opt/tbx-launch/egress-forward.js "$tbx_port" "$tbx_socket" "$tbx_ready" </dev/null >&2 &
  tbx_waited=0
  until [ -e "$tbx_ready" ]; do
    kill -0 $! 2>/dev/null || { say "the egress forwarder did not start"; exit 78; }
    tbx_waited=$((tbx_waited + 1))
    [ "$tbx_waited" -le 200 ] || { say "the egress forwarder did not listen within 10s"; exit 78; }
    sleep 0.05
  done
  unset tbx_ready tbx_waited
else
  say "this image has neither python3 nor node, which the egress forwarder needs; use an image with" \
      "one of them, or give the server no egress ('tbx server egress TOOLBOX/SERVER --off')"
  exit 78
fi
unset tbx_port tbx_socket
exec "$@"
