// posthog-node's local evaluation against a live server: it polls the flag definitions with a
// personal API key and evaluates every flag itself. Reads {host, key, personalApiKey,
// contexts} as JSON on stdin; prints {ready, answers, errors} as JSON, where each answer is
// what getAllFlagsAndPayloads gives with onlyEvaluateLocally (flags it cannot decide locally
// are left out) and `errors` are the client's 'error' events.
const { PostHog } = require('posthog-node');

async function main() {
  const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
  const errors = [];
  const client = new PostHog(input.key, {
    host: input.host,
    personalApiKey: input.personalApiKey,
    featureFlagsPollingInterval: 60000,
    flushAt: 1000,
  });
  client.on('error', (error) => errors.push({ message: String(error), status: error?.status ?? null }));
  const ready = await client.waitForLocalEvaluationReady(10000);
  const answers = [];
  for (const context of input.contexts) {
    answers.push(
      await client.getAllFlagsAndPayloads(context.distinct_id, {
        personProperties: context.person_properties,
        groups: context.groups,
        groupProperties: context.group_properties,
        onlyEvaluateLocally: true,
      }),
    );
  }
  await client.shutdown();
  process.stdout.write(JSON.stringify({ ready, answers, errors }));
}

main().catch((error) => {
  process.stderr.write(String(error?.stack ?? error));
  process.exit(1);
});
