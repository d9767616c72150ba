/**
 * Runs inside a test host's network namespace (testhosts.ts): on
 * GET /get?url=URL it fetches URL from here and answers with the status and
 * the body, so a test outside can act as a client on another host.
 * GET /ping answers "ok". Listens only on the test host's own address.
 */
import { createServer } from 'node:http';

const [address, port] = process.argv.slice(2);
createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://agent');
  if (url.pathname === '/ping') {
    res.end('ok');
    return;
  }
  const target = url.searchParams.get('url');
  if (url.pathname !== '/get' || !target) {
    res.writeHead(404).end('unknown request');
    return;
  }
  fetch(target, { signal: AbortSignal.timeout(5000) })
    .then(async (r) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: r.status, body: await r.text() }));
    })
    .catch((e: Error) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: String((e.cause as Error | undefined)?.message ?? e.message) }));
    });
}).listen(Number(port), address);
