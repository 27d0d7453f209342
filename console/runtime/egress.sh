# tbx's egress wrapper: the entrypoint of a server container whose server may reach
# allow-listed hosts.
#
#   /bin/sh /opt/tbx-launch/egress PORT -- COMMAND...
#
# The container is on network none: it has loopback only, no route and no resolver. The
# forwarder started here listens on 127.0.0.1:PORT (the server's HTTP_PROXY/HTTPS_PROXY)
# and carries each connection over the Unix socket mounted at /run/tbx-egress to the
# toolbox gateway's allow-list proxy, outside, which decides. The forwarder returns once
# it listens, so the server never starts before its proxy address answers.
# COMMAND may itself be the secrets launcher (launch): stdin is left to it untouched.
tbx_port=$1
shift
[ "$1" = "--" ] && shift
if ! command -v python3 >/dev/null 2>&1; then
  printf 'tbx-egress: %s\n' "this image has no python3, which the egress forwarder needs; use an image with python3 or give the server no egress ('tbx server egress TOOLBOX/SERVER --off')" >&2
  exit 78
fi
python3 -I -S /opt/tbx-launch/egress-forward "$tbx_port" /run/tbx-egress/proxy.sock </dev/null >&2 \
  || { printf 'tbx-egress: the egress forwarder did not start\n' >&2; exit 78; }
unset tbx_port
exec "$@"
