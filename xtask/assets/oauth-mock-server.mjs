// Runs oauth2-mock-server on 127.0.0.1:<port> for `cargo xtask test`. The library API
// (rather than the package's CLI) is used for two hooks the OAuth tests drive:
//  - GET /authorize with `mock_consent=deny` redirects back with `error=access_denied`,
//    as a provider does when the person clicks "Deny";
//  - a refresh_token grant for the refresh token `revoked-refresh-token` is refused
//    with `invalid_grant`, as a provider does once a grant is revoked.
//  - every token it signs carries a fresh `jti`, so a refresh within the same second
//    still hands back a new access token, as a real provider does.
// It also answers authorize and token requests at `/auth/oauth2/authorize` and
// `/auth/oauth2/token`, the fixed paths of OVHcloud's regional servers, so the OVH
// flow can reach it through an upstream override of the region's host.
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { OAuth2Server } from 'oauth2-mock-server';

const REVOKED_REFRESH_TOKEN = 'revoked-refresh-token';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: node oauth-mock-server.mjs <port>');
  process.exit(2);
}

const server = new OAuth2Server();
await server.issuer.keys.generate('RS256');

server.service.on('beforeAuthorizeRedirect', (redirect, req) => {
  if (req.query.mock_consent !== 'deny') {
    return;
  }
  const params = redirect.url.searchParams;
  params.delete('code');
  params.set('error', 'access_denied');
  params.set('error_description', 'The user denied the request');
});

server.service.on('beforeTokenSigning', (token) => {
  token.payload.jti = randomUUID();
});

server.service.on('beforeResponse', (response, req) => {
  if (req.body.grant_type === 'refresh_token' && req.body.refresh_token === REVOKED_REFRESH_TOKEN) {
    response.statusCode = 400;
    response.body = { error: 'invalid_grant', error_description: 'The refresh token was revoked' };
  }
});

// The package names the issuer `localhost`, which may resolve to ::1 where nothing listens.
server.issuer.url = `http://127.0.0.1:${port}`;

// OVHcloud's paths, answered by the package's own authorize and token handlers.
const ALIASES = new Map([
  ['/auth/oauth2/authorize', '/authorize'],
  ['/auth/oauth2/token', '/token'],
]);
const listener = createServer((req, res) => {
  const queryAt = req.url.indexOf('?');
  const path = queryAt < 0 ? req.url : req.url.slice(0, queryAt);
  const alias = ALIASES.get(path);
  if (alias !== undefined) {
    req.url = alias + (queryAt < 0 ? '' : req.url.slice(queryAt));
  }
  server.service.requestHandler(req, res);
});
listener.listen(port, '127.0.0.1', () => {
  console.log(`oauth2-mock-server issuer ${server.issuer.url}`);
});
