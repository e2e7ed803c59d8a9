// posthog-node in its default configuration (no personal API key) against a live server.
// Reads {host, key, contexts, capture} as JSON on stdin; for each context asks for every flag
// and payload (one /flags request each), captures one event per context when asked, shuts
// down (which flushes /batch/) and prints {answers, errors, logged} as JSON: `errors` are
// the client's 'error' events, `logged` whatever it wrote to console.warn or console.error.
const { PostHog } = require('posthog-node');

async function main() {
  const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
  const logged = [];
  for (const level of ['warn', 'error']) {
    console[level] = (...args) => logged.push(`${level}: ${args.map(String).join(' ')}`);
  }
  const errors = [];
  const client = new PostHog(input.key, { host: input.host, flushAt: 50, flushInterval: 0 });
  client.on('error', (error) => errors.push({ message: String(error), status: error?.status ?? null }));
  const answers = [];
  for (const context of input.contexts) {
    answers.push(
      await client.getAllFlagsAndPayloads(context.distinct_id, {
        personProperties: context.person_properties,
        groups: context.groups,
        groupProperties: context.group_properties,
      }),
    );
    if (input.capture) client.capture({ distinctId: context.distinct_id, event: 'checked flags' });
  }
  await client.shutdown();
  process.stdout.write(JSON.stringify({ answers, errors, logged }));
}

main().catch((error) => {
  process.stderr.write(String(error?.stack ?? error));
  process.exit(1);
});
