// panva's oidc-provider (OpenID Certified) on 127.0.0.1 at a port the kernel picks.
//
// Everything OAuth here is the library's own: discovery, the authorization and token
// endpoints, client authentication, PKCE, the device flow, refresh token rotation,
// revocation, introspection, ID tokens signed with the key set it publishes, and the
// login and consent pages of its development interactions, which the tests drive in
// headless Chromium like a user would. This file only configures it.
//
// argv[2] is a JSON object: { "clients": [client metadata...], "accessTokenTtl": s,
// "shortLived": { client_id: access token seconds }, "clientAuthMethods": [...] }. The issuer URL is printed on
// stdout as one JSON line.
import { createServer } from 'node:http';
import { generateKeyPair, exportJWK } from 'jose';
import Provider from 'oidc-provider';

const options = JSON.parse(process.argv[2] || '{}');

const { privateKey } = await generateKeyPair('RS256', { extractable: true });
const signing = { ...(await exportJWK(privateKey)), kid: 'sig-1', use: 'sig', alg: 'RS256' };

const server = createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: options.clients || [],
  ...(options.clientAuthMethods ? { clientAuthMethods: options.clientAuthMethods } : {}),
  jwks: { keys: [signing] },
  cookies: { keys: ['tbx-test-cookie-key-not-a-secret'] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'] },
  scopes: ['openid', 'offline_access', 'email', 'notes:read'],
  features: {
    devInteractions: { enabled: true },
    deviceFlow: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
    userinfo: { enabled: true },
  },
  ttl: {
    AccessToken: (ctx, token, client) => (options.shortLived || {})[client.clientId] || options.accessTokenTtl || 3600,
    RefreshToken: 86400,
    IdToken: 3600,
    DeviceCode: 600,
    Interaction: 600,
    Session: 3600,
    Grant: 86400,
  },
  // The login is the account: "alice" signs in as alice@example.test.
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: `${id}@example.test`, email_verified: true };
      },
    };
  },
});
provider.on('server_error', (ctx, error) => console.error('server_error', error));

server.on('request', provider.callback());
process.stdout.write(`${JSON.stringify({ issuer })}\n`);
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
