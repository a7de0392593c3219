// One node-postgres connection, the URL from $URL: prints "OK <current_user> <ssl>" or fails
// (tests/docker/test_clients.py). The URL alone configures TLS (pg-connection-string).
const { Client } = require('pg');

(async () => {
  const client = new Client({ connectionString: process.env.URL, connectionTimeoutMillis: 10000 });
  try {
    await client.connect();
    const res = await client.query('SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
    console.log(`OK ${res.rows[0].current_user} ${res.rows[0].ssl} pg ${require('pg/package.json').version}`);
    await client.end();
  } catch (e) {
    console.error(`FAILED ${e.name}: ${String(e.message).split('\n')[0]}`);
    process.exit(1);
  }
})();
