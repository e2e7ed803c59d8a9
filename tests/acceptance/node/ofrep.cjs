// OpenFeature's Node server SDK with the OFREP provider against a live server.
// Reads {host, key, contexts, bulkContexts, flags} as JSON on stdin (`flags`: [{key,
// multivariate}]). For each of `contexts` asks every flag as its type (boolean flags with
// getBooleanDetails, multivariate ones with getStringDetails and the default "code-default");
// for each of `bulkContexts` asks the bulk evaluation through ofrep-core's OFREPApi (what the
// web provider polls with) twice, the second time with the ETag of the first; then asks once
// with a mistyped key. Prints {answers, bulk, wrongKey, logged} as JSON: `answers` per context
// and flag {value, variant, reason, errorCode, payload}, `bulk` per context {status, flags,
// revalidated}, `logged` whatever the SDK wrote to console.warn or console.error.
const { OpenFeature } = require('@openfeature/server-sdk');
const { OFREPProvider } = require('@openfeature/ofrep-provider');
const { OFREPApi } = require('@openfeature/ofrep-core');

function evaluationContext(context) {
  const attributes = { ...context.person_properties };
  if (Object.keys(context.groups).length > 0) {
    attributes.$groups = context.groups;
    attributes.$group_properties = context.group_properties;
  }
  return { targetingKey: context.distinct_id, ...attributes };
}

async function main() {
  const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
  const logged = [];
  for (const level of ['warn', 'error']) {
    console[level] = (...args) => logged.push(`${level}: ${args.map(String).join(' ')}`);
  }
  const headers = [['X-API-Key', input.key]];
  await OpenFeature.setProviderAndWait('ofrep', new OFREPProvider({ baseUrl: input.host, headers }));
  const client = OpenFeature.getClient('ofrep');
  const answers = [];
  for (const context of input.contexts) {
    const ctx = evaluationContext(context);
    const answer = {};
    for (const flag of input.flags) {
      const details = flag.multivariate
        ? await client.getStringDetails(flag.key, 'code-default', ctx)
        : await client.getBooleanDetails(flag.key, false, ctx);
      answer[flag.key] = {
        value: details.value,
        variant: details.variant ?? null,
        reason: details.reason ?? null,
        errorCode: details.errorCode ?? null,
        payload: details.flagMetadata?.payload ?? null,
      };
    }
    answers.push(answer);
  }
  const api = new OFREPApi(input.host);
  const bulk = [];
  for (const context of input.bulkContexts) {
    const first = await api.postBulkEvaluateFlags({ context: evaluationContext(context) }, { headers });
    const etag = first.httpResponse.headers.get('ETag');
    const again = await api.postBulkEvaluateFlags(
      { context: evaluationContext(context) },
      { headers: [...headers, ['If-None-Match', etag]] },
    );
    bulk.push({ status: first.httpStatus, flags: first.value.flags, revalidated: again.httpStatus });
  }
  let wrongKey = null;
  const wrong = new OFREPProvider({ baseUrl: input.host, headers: [['X-API-Key', 'phc_mistyped']] });
  await OpenFeature.setProviderAndWait('wrong', wrong);
  const refused = await OpenFeature.getClient('wrong').getBooleanDetails(input.flags[0].key, true, {
    targetingKey: 'someone',
  });
  wrongKey = { value: refused.value, errorCode: refused.errorCode ?? null, message: refused.errorMessage ?? null };
  await OpenFeature.close();
  process.stdout.write(JSON.stringify({ answers, bulk, wrongKey, logged }));
}

main().catch((error) => {
  process.stderr.write(String(error?.stack ?? error));
  process.exit(1);
});
