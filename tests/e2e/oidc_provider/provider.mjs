// A certified OpenID provider (panva's oidc-provider) for the sign-in and `terraform login` tests.
// Usage: node provider.mjs <port> <client_id> <client_secret> <redirect_uri>
// Prints "listening <issuer>" once it accepts connections. Its development interactions show a login form
// (any password; the login is the account) and a consent form. Known accounts carry email and groups claims;
// an unknown login is refused at the token endpoint because findAccount does not know it.
import Provider from 'oidc-provider';

const [port, clientId, clientSecret, redirectUri] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;

const accounts = {
  alice: { email: 'alice@example.test', email_verified: true, groups: ['platform'] },
  bob: { email: 'bob@example.test', email_verified: true, groups: ['platform', 'payments'] },
  carol: { email: 'carol@example.test', email_verified: true, groups: ['nobody-maps-this'] },
};

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], groups: ['groups'] },
  scopes: ['openid', 'email', 'groups'],
  // Claims go into the id token itself (the relying party reads the id token, not userinfo).
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['statesman-test-cookie-key'] },
  async findAccount(ctx, id) {
    const account = accounts[id];
    if (!account) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...account }; } };
  },
});
provider.proxy = false;

const server = provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`listening ${issuer}`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
