// An OpenID provider for session-buddy's tests: panva's oidc-provider (OpenID Certified),
// configured from a JSON file that testkit/oidc.py writes.
//
//   node provider.mjs CONFIG.json
//
// It listens on config.host:config.port and prints `ready generation=N` once it serves,
// then `request METHOD "PATH"` for every request (the path only: no query, no body).
// SIGHUP re-reads the file (new keys, signers, clients, lifetimes) and swaps in a new
// Provider on the same socket, so the issuer never changes; tokens, grants and dynamically
// registered clients live in one in-process store (oidc-provider's memory adapter) and
// survive the swap; a restarted process starts empty.
// It prints `reloaded generation=N` (or `reload failed: …`, keeping the old one) after it.
//
// The JSON (snake_case, all keys written by testkit/oidc.py):
//   issuer             "http://127.0.0.1:PORT" or with a path ("…/realms/test")
//   host, port, generation
//   jwks               {"keys": [private JWKs, each with kid, alg, use "sig"]}
//   signers            {"RS256": kid, "ES256": kid, …}: the key that signs each algorithm
//   scopes             provider-level scopes besides openid / offline_access
//   resources          {resource URI: policy}; policy: scope, alg, format ("jwt" | "opaque"),
//                      ttl (seconds), audience (instead of the resource URI)
//   default_resource   the policy for any other absolute resource URI, or null (invalid_target)
//   clients            oidc-provider client metadata, plus three keys read here and removed:
//                      allowed_scopes (list), allowed_resources (list), access_token (policy
//                      fields overriding the resource's for this client's tokens)
//   ttl                {"AccessToken": s, "ClientCredentials": s, "AuthorizationCode": s, …}
//   registration       open dynamic client registration (RFC 7591) on or off
//   cookie_keys        keys signing the interaction cookies (stable across reloads)
import * as fs from 'node:fs';
import * as http from 'node:http';

import Provider, { errors } from 'oidc-provider';
// oidc-provider's own in-memory adapter, one store for the whole process (the package
// builds a fresh store per Provider), so a reload keeps what the provider issued.
import { createMemoryAdapter } from 'oidc-provider/lib/adapters/memory_adapter.js';

const TESTKIT_KEYS = ['allowed_scopes', 'allowed_resources', 'access_token'];
const adapter = createMemoryAdapter();

function readConfig(path) {
  return JSON.parse(fs.readFileSync(path, 'utf8'));
}

function policyFor(config, clientPolicies, resource, client) {
  const base = config.resources[resource] ?? config.default_resource;
  if (!base) {
    throw new errors.InvalidTarget(`unknown resource indicator ${resource}`);
  }
  const own = clientPolicies.get(client.clientId);
  if (own?.allowed_resources && !own.allowed_resources.includes(resource)) {
    throw new errors.InvalidTarget('resource not allowed for this client');
  }
  const policy = { ...base, ...own?.access_token };
  let scopes = (policy.scope ?? config.scopes.join(' ')).split(' ').filter(Boolean);
  if (own?.allowed_scopes) {
    scopes = scopes.filter((scope) => own.allowed_scopes.includes(scope));
  }
  return { policy, scope: scopes.join(' ') };
}

function buildProvider(config) {
  const clientPolicies = new Map();
  const clients = config.clients.map((entry) => {
    const metadata = { ...entry };
    const own = {};
    for (const key of TESTKIT_KEYS) {
      if (key in metadata) {
        own[key] = metadata[key];
        delete metadata[key];
      }
    }
    clientPolicies.set(metadata.client_id, own);
    return metadata;
  });

  const firstAlg = Object.keys(config.signers)[0];
  const ttl = config.ttl ?? {};
  const lifetime = (name, fallback) => (ctx, token) => (
    token?.resourceServer?.accessTokenTTL ?? ttl[name] ?? fallback
  );

  const provider = new Provider(config.issuer, {
    adapter,
    clients,
    jwks: config.jwks,
    scopes: ['openid', 'offline_access', ...config.scopes],
    cookies: { keys: config.cookie_keys },
    clientDefaults: {
      grant_types: ['authorization_code'],
      id_token_signed_response_alg: firstAlg,
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    pkce: { required: () => true },
    ttl: {
      AccessToken: lifetime('AccessToken', 3600),
      ClientCredentials: lifetime('ClientCredentials', 600),
      AuthorizationCode: ttl.AuthorizationCode ?? 60,
      Grant: ttl.Grant ?? 14 * 24 * 3600,
      IdToken: ttl.IdToken ?? 3600,
      Interaction: ttl.Interaction ?? 3600,
      RefreshToken: ttl.RefreshToken ?? 24 * 3600,
      Session: ttl.Session ?? 14 * 24 * 3600,
    },
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      registration: { enabled: Boolean(config.registration) },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (ctx, client, oneOf) => oneOf,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (ctx, resource, client) => {
          const { policy, scope } = policyFor(config, clientPolicies, resource, client);
          const format = policy.format ?? 'jwt';
          const info = {
            scope,
            audience: policy.audience ?? resource,
            accessTokenFormat: format,
          };
          if (policy.ttl !== undefined && policy.ttl !== null) {
            info.accessTokenTTL = policy.ttl;
          }
          if (format === 'jwt') {
            const alg = policy.alg ?? firstAlg;
            const kid = config.signers[alg];
            if (!kid) {
              throw new errors.InvalidTarget(`no signing key for ${alg}`);
            }
            info.jwt = { sign: { alg, kid } };
          }
          return info;
        },
      },
    },
  });
  provider.on('server_error', (ctx, error) => {
    console.error(`server_error ${ctx.method} ${ctx.path}: ${error.stack}`);
  });
  return provider;
}

// Requests for the issuer's path are handed to the provider with that path stripped (its
// mount point). oidc-provider serves RFC 8414 metadata under its mount; RFC 8414 §3.1 puts
// it between the host and the issuer's path, so that form is answered with the document.
function route(issuerPath, getHandler) {
  const rfc8414 = `/.well-known/oauth-authorization-server${issuerPath}`;
  return (req, res) => {
    const [path, query] = req.url.split(/\?(.*)/s, 2);
    console.log(`request ${req.method} ${JSON.stringify(path)}`);
    if (!issuerPath) {
      getHandler()(req, res);
      return;
    }
    const url = path === rfc8414
      ? `${issuerPath}/.well-known/oauth-authorization-server${query === undefined ? '' : `?${query}`}`
      : req.url;
    if (url !== issuerPath && !url.startsWith(`${issuerPath}/`) && !url.startsWith(`${issuerPath}?`)) {
      res.statusCode = 404;
      res.end();
      return;
    }
    req.originalUrl = url;
    req.url = url.slice(issuerPath.length) || '/';
    getHandler()(req, res);
  };
}

const configPath = process.argv[2];
let config = readConfig(configPath);
let handler = buildProvider(config).callback();
const issuerPath = new URL(config.issuer).pathname.replace(/\/$/, '');

const server = http.createServer(route(issuerPath, () => handler));
server.keepAliveTimeout = 1000;
server.listen(config.port, config.host, () => {
  console.log(`ready generation=${config.generation}`);
});

process.on('SIGHUP', () => {
  try {
    const next = readConfig(configPath);
    if (next.issuer !== config.issuer || next.port !== config.port) {
      throw new Error('the issuer and port cannot change on reload');
    }
    handler = buildProvider(next).callback();
    config = next;
    console.log(`reloaded generation=${config.generation}`);
  } catch (error) {
    console.log(`reload failed: ${error.message}`);
  }
});

const stop = () => {
  server.close();
  server.closeAllConnections();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
