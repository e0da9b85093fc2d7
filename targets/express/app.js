// An Express SSE endpoint as tutorials write it: ten events 300 ms apart (times the suite's time
// scale). With COMPRESS=1 the compression middleware is on, as many apps have it globally; with
// FLUSH=1 the handler calls res.flush() after each write, as the middleware's README says a
// server-sent events endpoint must. Usage: node app.js PORT
const express = require('express');
const compression = require('compression');
const scale = parseFloat(process.env.CONFORMANCE_TIME_SCALE || '1');
const app = express();
if (process.env.COMPRESS === '1') app.use(compression());
app.get('/events', (req, res) => {
  res.setHeader('Content-Type', 'text/event-stream');
  res.setHeader('Cache-Control', 'no-cache');
  res.flushHeaders();
  let n = 0;
  const timer = setInterval(() => {
    res.write(`data: ${JSON.stringify({ n, text: 'token ' + n })}\n\n`);
    if (process.env.FLUSH === '1' && res.flush) res.flush();
    if (++n === 10) { clearInterval(timer); res.end(); }
  }, 300 * scale);
  req.on('close', () => clearInterval(timer));
});
app.listen(parseInt(process.argv[2], 10), '127.0.0.1');
