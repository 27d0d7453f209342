// tbx's egress forwarder for images without python3 (node:22-slim and the like), baked in
// as /opt/tbx-launch/egress-forward.js; the same job as egress_forward.py:
//
//   node egress-forward.js PORT SOCKET READY_FILE
//
// Listens on 127.0.0.1:PORT (the server's proxy address, in a container on network none)
// and carries each connection byte for byte over the Unix socket SOCKET to the toolbox
// gateway's allow-list proxy, which decides everything. Once it listens it writes
// READY_FILE, so the launcher starts the server only when the proxy address answers.
"use strict";
const fs = require("fs");
const net = require("net");

const [port, socketPath, readyFile] = process.argv.slice(2);
const UNREACHABLE =
  "tbx: this server reaches the network only through its toolbox gateway's allow-list proxy, " +
  "and the gateway is not running; start it ('tbx gateway serve', or the console's Gateway)\n";

function unreachableResponse() {
  const body = Buffer.from(UNREACHABLE);
  return Buffer.concat([
    Buffer.from("HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain; charset=utf-8\r\n" +
      `Connection: close\r\nContent-Length: ${body.length}\r\n\r\n`),
    body,
  ]);
}

const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
  client.setNoDelay(true);
  const proxy = net.createConnection({ path: socketPath, allowHalfOpen: true });
  let reached = false;
  proxy.on("connect", () => {
    reached = true;
    client.pipe(proxy);
    proxy.pipe(client);
  });
  proxy.on("error", () => {
    if (!reached) client.end(unreachableResponse());
    else client.destroy();
  });
  client.on("error", () => proxy.destroy());
  proxy.on("close", () => client.end());
});
server.listen({ port: Number(port), host: "127.0.0.1" }, () => {
  fs.writeFileSync(readyFile, "");
});
