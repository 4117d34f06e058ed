// A real OpenID Provider (panva's oidc-provider 8) for the OIDC tests, on 127.0.0.1.
//
// Environment:
//   GLOO_TEST_OIDC_NODE_PATH  node_modules holding oidc-provider (scripts/test.sh installs it)
//   OIDC_PORT                 the port to listen on
//   OIDC_CLIENTS              JSON array of client metadata (oidc-provider's `clients`)
//
// Accounts: any login is accepted (devInteractions); the account id is the login, its email
// `<login>@example.com`. Clients whose id starts with `short` get ID tokens valid 3 seconds
// (to exercise refreshing); clients whose id contains `jwt` get JWT access tokens for the
// resource https://api.example (to exercise access-token claims). Refresh tokens are issued to
// every client allowed the refresh_token grant. PKCE is required (oidc-provider's default).
// Prints `ready <issuer>` once listening.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const nodePath = process.env.GLOO_TEST_OIDC_NODE_PATH;
if (!nodePath) {
  console.error('GLOO_TEST_OIDC_NODE_PATH is not set');
  process.exit(2);
}
const entry = pathToFileURL(join(nodePath, 'oidc-provider', 'lib', 'index.js')).href;
const { default: Provider } = await import(entry);

const port = Number(process.env.OIDC_PORT);
const issuer = `http://127.0.0.1:${port}`;
const clients = JSON.parse(process.env.OIDC_CLIENTS || '[]');
const resource = 'https://api.example';

const provider = new Provider(issuer, {
  clients,
  cookies: { keys: ['gloo-oidc-test-cookie-key'] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'] },
  // Put the scope claims in the ID token too (claims-to-headers reads them from there).
  conformIdTokenClaims: false,
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: `${id}@example.com`, email_verified: true };
      },
    };
  },
  features: {
    devInteractions: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource(ctx, client) {
        return client.clientId.includes('jwt') ? resource : undefined;
      },
      useGrantedResource() {
        return true;
      },
      getResourceServerInfo(ctx, indicator) {
        if (indicator !== resource) throw new Error(`unknown resource ${indicator}`);
        return { scope: 'api:read', audience: resource, accessTokenFormat: 'jwt' };
      },
    },
  },
  async issueRefreshToken(ctx, client) {
    return client.grantTypeAllowed('refresh_token');
  },
  ttl: {
    IdToken(ctx, token, client) {
      return client.clientId.startsWith('short') ? 3 : 3600;
    },
  },
});

provider.listen(port, '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});
