// Starts the pinned unleash-server for the integration tests.
// Everything comes from the environment the fixture sets: DATABASE_URL, HTTP_PORT and
// INIT_ADMIN_API_TOKENS (read by Unleash itself). Version checks and telemetry are off
// because the test machines have no internet.
import { start } from 'unleash-server';

const port = Number(process.env.HTTP_PORT || 4242);

const unleash = await start({
  db: { connectionString: process.env.DATABASE_URL, ssl: false },
  server: { port, host: '127.0.0.1' },
  authentication: { type: 'open-source', createAdminUser: false },
  versionCheck: { enable: false },
  telemetry: false,
  logLevel: process.env.UNLEASH_LOG_LEVEL || 'warn',
});

const stop = async () => {
  await unleash.stop();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
