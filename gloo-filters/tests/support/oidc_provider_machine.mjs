// The real node-oidc-provider 8 (from GLOO_TEST_OIDC_NODE_PATH) on 127.0.0.1:$OIDC_PORT for the
// extauth access-token tests (machine to machine): one confidential client (`gloo` / `gloo-secret`) with the client_credentials
// grant, token introspection, and RS256 JWT access tokens for the resource `urn:jwt` (opaque
// tokens otherwise). Prints `ready` once it listens.
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const modules = process.env.GLOO_TEST_OIDC_NODE_PATH;
const entry = pathToFileURL(path.join(modules, 'oidc-provider', 'lib', 'index.js')).href;
const { default: Provider } = await import(entry);

const port = Number(process.env.OIDC_PORT);
const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: 'gloo',
    client_secret: 'gloo-secret',
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'read write',
  }],
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
