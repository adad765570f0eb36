// Starts the pinned oidc-provider on loopback for the sign-in tests.
// Everything comes from the environment the fixture sets:
//   OIDC_PORT        port to listen on (127.0.0.1 only)
//   OIDC_CLIENT      JSON {client_id, client_secret, redirect_uri} of the console
//   OIDC_ACCOUNTS    JSON {login: {email, name, groups}}: who may sign in
// The provider's own development login page is the sign-in form (any password): it is the
// page a browser test fills in. Claims go into the ID token, where Streamlit reads them.
import Provider from 'oidc-provider';

const port = Number(process.env.OIDC_PORT);
const client = JSON.parse(process.env.OIDC_CLIENT);
const accounts = JSON.parse(process.env.OIDC_ACCOUNTS);
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: client.client_id,
    client_secret: client.client_secret,
    redirect_uris: [client.redirect_uri],
    post_logout_redirect_uris: [client.redirect_uri.replace(/\/oauth2callback$/, '/')],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  conformIdTokenClaims: false,
  cookies: { keys: ['rollback-desk-oidc-fixture-cookie-key'] },
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, id) {
    const account = accounts[id];
    if (!account) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, email_verified: true, ...account };
      },
    };
  },
});
provider.proxy = false;

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
