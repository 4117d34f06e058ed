// A proxyless gRPC client in Node: dials xds:///TARGET (resolved through the xDS server named in
// GRPC_XDS_BOOTSTRAP), makes N unary calls and prints a JSON object counting answers by backend.
//
// Usage: node client.js TARGET N   (NODE_PATH must reach @grpc/grpc-js and @grpc/grpc-js-xds)
const grpc = require('@grpc/grpc-js');
require('@grpc/grpc-js-xds').register();

const [target, countText] = process.argv.slice(2);
const count = Number(countText);
const client = new grpc.Client(`xds:///${target}`, grpc.credentials.createInsecure());
const identity = (b) => b;
const deadline = Date.now() + 30000;
const counts = {};

function call() {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest('/gloo.test.Echo/Call', identity, identity, Buffer.from('ping'),
      { deadline: Date.now() + 5000, waitForReady: true },
      (err, reply) => (err ? reject(err) : resolve(reply.toString())));
  });
}

(async () => {
  let done = 0;
  while (done < count) {
    try {
      const answer = await call();
      counts[answer] = (counts[answer] || 0) + 1;
      done += 1;
    } catch (err) {
      if (Date.now() > deadline) {
        console.log(JSON.stringify({ error: String(err) }));
        process.exit(1);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  console.log(JSON.stringify(counts));
  process.exit(0);
})();
