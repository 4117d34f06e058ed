// The real node-oidc-provider 8 (from GLOO_TEST_OIDC_NODE_PATH) on 127.0.0.1:$OIDC_PORT for the
// extauth access-token tests (machine to machine) and the edge gateway example: confidential
// clients (`gloo` / `gloo-secret`, or those OIDC_CLIENTS lists) with the client_credentials
// grant, token introspection, and RS256 JWT access tokens for the resource `urn:jwt` (opaque
// tokens otherwise). Prints `ready` once it listens.
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const modules = process.env.GLOO_TEST_OIDC_NODE_PATH;
const entry = pathToFileURL(path.join(modules, 'oidc-provider', 'lib', 'index.js')).href;
const { default: Provider } = await import(entry);

// A machine client: client_credentials with HTTP Basic client authentication.
const machine = (client_id, client_secret) => ({
  client_id,
  client_secret,
  grant_types: ['client_credentials'],
  redirect_uris: [],
  response_types: [],
  token_endpoint_auth_method: 'client_secret_basic',
  scope: 'read write',
});
// OIDC_CLIENTS, a JSON array of {"client_id", "client_secret"}, replaces the default client.
const listed = JSON.parse(process.env.OIDC_CLIENTS || '[]');
const clients = listed.length > 0
  ? listed.map((c) => machine(c.client_id, c.client_secret))
  : [machine('gloo', 'gloo-secret')];

const port = Number(process.env.OIDC_PORT);
const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients,
  scopes: ['read', 'write'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => undefined,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource) => ({
        scope: 'read write',
        audience: resource,
        accessTokenFormat: resource === 'urn:jwt' ? 'jwt' : 'opaque',
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
});
provider.listen(port, '127.0.0.1', () => console.log('ready'));
